//! Decoding limits for AMF0/AMF3 and the shared output budget.
//!
//! AMF input is attacker-controlled (RTMP commands, FLV script tags). Lengths are naturally bounded
//! by the input slice, but nesting depth and AMF3 reference expansion are not, so the caller states
//! how much structure one decode call may produce.

/// Caller-given bounds for one AMF decode call (including any AMF0 -> AMF3 switches inside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmfLimits {
    /// Maximum container nesting depth; 0 allows scalars only.
    pub max_depth: usize,
    /// Maximum number of values produced, counting values cloned out of AMF3 reference tables.
    pub max_nodes: usize,
    /// Maximum total bytes of strings, keys and byte arrays produced (again counting clones).
    pub max_bytes: usize,
    /// Maximum entries in each AMF3 reference table (strings, objects, traits).
    pub max_refs: usize,
}

impl Default for AmfLimits {
    /// Generous for RTMP commands and FLV metadata, small enough to be safe per message.
    fn default() -> Self {
        AmfLimits {
            max_depth: 32,
            max_nodes: 65_536,
            max_bytes: 16 * 1024 * 1024,
            max_refs: 4096,
        }
    }
}

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BudgetExceeded {
    Nodes(usize),
    Bytes(usize),
}

/// Running totals of what a decode call has produced so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cost {
    pub nodes: usize,
    pub bytes: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Budget {
    limits: AmfLimits,
    used: Cost,
}

impl Budget {
    pub fn new(limits: AmfLimits) -> Self {
        Budget {
            limits,
            used: Cost::default(),
        }
    }

    pub fn limits(&self) -> &AmfLimits {
        &self.limits
    }

    pub fn used(&self) -> Cost {
        self.used
    }

    pub fn node(&mut self) -> Result<(), BudgetExceeded> {
        self.charge(Cost { nodes: 1, bytes: 0 })
    }

    pub fn bytes(&mut self, n: usize) -> Result<(), BudgetExceeded> {
        self.charge(Cost { nodes: 0, bytes: n })
    }

    pub fn charge(&mut self, c: Cost) -> Result<(), BudgetExceeded> {
        let nodes = self.used.nodes.saturating_add(c.nodes);
        if nodes > self.limits.max_nodes {
            return Err(BudgetExceeded::Nodes(self.limits.max_nodes));
        }
        let bytes = self.used.bytes.saturating_add(c.bytes);
        if bytes > self.limits.max_bytes {
            return Err(BudgetExceeded::Bytes(self.limits.max_bytes));
        }
        self.used = Cost { nodes, bytes };
        Ok(())
    }

    /// Cost produced since `before` (a value returned by [`Budget::used`]).
    pub fn since(&self, before: Cost) -> Cost {
        Cost {
            nodes: self.used.nodes.saturating_sub(before.nodes),
            bytes: self.used.bytes.saturating_sub(before.bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_stops_at_limits() {
        let mut b = Budget::new(AmfLimits {
            max_nodes: 2,
            max_bytes: 10,
            ..AmfLimits::default()
        });
        assert!(b.node().is_ok());
        assert!(b.node().is_ok());
        assert_eq!(b.node(), Err(BudgetExceeded::Nodes(2)));
        assert!(b.bytes(10).is_ok());
        assert_eq!(b.bytes(1), Err(BudgetExceeded::Bytes(10)));
        assert_eq!(
            b.used(),
            Cost {
                nodes: 2,
                bytes: 10
            }
        );
    }
}
