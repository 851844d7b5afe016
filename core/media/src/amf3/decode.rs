//! AMF3 decoder with reference tables, depth limit and output budget.

use super::{marker, Amf3Array, Amf3Error, Amf3Object, Amf3Value};
use crate::limits::{AmfLimits, Budget, Cost};
use crate::reader::Reader;

/// Decodes one AMF3 value (with fresh reference tables) from the start of `input`, returning it
/// and the number of bytes used.
pub fn decode(input: &[u8], limits: &AmfLimits) -> Result<(Amf3Value, usize), Amf3Error> {
    let mut r = Reader::new(input);
    let mut budget = Budget::new(*limits);
    let v = Amf3Decoder::new(&mut r, &mut budget).value(0)?;
    Ok((v, r.pos()))
}

#[derive(Debug, Clone)]
struct Traits {
    class_name: String,
    sealed: Vec<String>,
    dynamic: bool,
    externalizable: bool,
}

/// One AMF3 decoding context: reference tables live as long as this value.
pub(crate) struct Amf3Decoder<'r, 'a> {
    r: &'r mut Reader<'a>,
    budget: &'r mut Budget,
    strings: Vec<String>,
    /// `None` while the object is still being decoded (a reference to it would be a cycle).
    objects: Vec<Option<Registered>>,
    traits: Vec<Traits>,
    /// The deepest nesting level reached so far inside the container being decoded, so a
    /// container knows its height when it is registered.
    deepest: usize,
}

/// A complete value in the object reference table.
struct Registered {
    value: Amf3Value,
    /// What decoding it cost, charged again for every copy a reference makes.
    cost: Cost,
    /// How many levels it nests below itself (0 for a scalar), so a reference to it can be
    /// refused where the copy would exceed `max_depth`.
    height: usize,
}

impl<'r, 'a> Amf3Decoder<'r, 'a> {
    pub(crate) fn new(r: &'r mut Reader<'a>, budget: &'r mut Budget) -> Self {
        Amf3Decoder {
            r,
            budget,
            strings: Vec::new(),
            objects: Vec::new(),
            traits: Vec::new(),
            deepest: 0,
        }
    }

    fn max_refs(&self) -> usize {
        self.budget.limits().max_refs
    }

    /// Reads a U29: up to 4 bytes, 7 bits from each of the first three, 8 from the fourth.
    fn u29(&mut self) -> Result<u32, Amf3Error> {
        let mut v: u32 = 0;
        for _ in 0..3 {
            let b = self.r.u8()?;
            v = (v << 7) | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        let b = self.r.u8()?;
        Ok((v << 8) | u32::from(b))
    }

    pub(crate) fn value(&mut self, depth: usize) -> Result<Amf3Value, Amf3Error> {
        let limit = self.budget.limits().max_depth;
        if depth > limit {
            return Err(Amf3Error::TooDeep { limit });
        }
        self.deepest = self.deepest.max(depth);
        let before = self.budget.used();
        self.budget.node()?;
        let offset = self.r.pos();
        let m = self.r.u8()?;
        Ok(match m {
            marker::UNDEFINED => Amf3Value::Undefined,
            marker::NULL => Amf3Value::Null,
            marker::FALSE => Amf3Value::Boolean(false),
            marker::TRUE => Amf3Value::Boolean(true),
            marker::INTEGER => {
                // Sign-extend the 29-bit value.
                let v = self.u29()?;
                Amf3Value::Integer(((v << 3) as i32) >> 3)
            }
            marker::DOUBLE => Amf3Value::Double(self.r.f64_be()?),
            marker::STRING => Amf3Value::String(self.string()?),
            marker::XML_DOC | marker::XML => {
                let h = self.u29()?;
                if h & 1 == 0 {
                    return self.object_ref(h >> 1, offset, depth);
                }
                let s = self.utf8(h >> 1)?;
                let v = if m == marker::XML {
                    Amf3Value::Xml(s)
                } else {
                    Amf3Value::XmlDocument(s)
                };
                self.register(v, before)?
            }
            marker::DATE => {
                let h = self.u29()?;
                if h & 1 == 0 {
                    return self.object_ref(h >> 1, offset, depth);
                }
                let v = Amf3Value::Date(self.r.f64_be()?);
                self.register(v, before)?
            }
            marker::BYTE_ARRAY => {
                let h = self.u29()?;
                if h & 1 == 0 {
                    return self.object_ref(h >> 1, offset, depth);
                }
                let len = (h >> 1) as usize;
                let bytes = self.r.bytes(len)?.to_vec();
                self.budget.bytes(len)?;
                self.register(Amf3Value::ByteArray(bytes), before)?
            }
            marker::ARRAY => self.array(depth, offset, before)?,
            marker::OBJECT => self.object(depth, offset, before)?,
            marker::VECTOR_INT
            | marker::VECTOR_UINT
            | marker::VECTOR_DOUBLE
            | marker::VECTOR_OBJECT
            | marker::DICTIONARY => return Err(Amf3Error::UnsupportedMarker { marker: m, offset }),
            _ => return Err(Amf3Error::UnknownMarker { marker: m, offset }),
        })
    }

    fn utf8(&mut self, len: u32) -> Result<String, Amf3Error> {
        let len = len as usize;
        let bytes = self.r.bytes(len)?;
        self.budget.bytes(len)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// A string value, key or class name (U29S-ref or inline); non-empty inline strings are
    /// added to the string table.
    fn string(&mut self) -> Result<String, Amf3Error> {
        let offset = self.r.pos();
        let h = self.u29()?;
        if h & 1 == 0 {
            let index = (h >> 1) as usize;
            let s = self
                .strings
                .get(index)
                .ok_or(Amf3Error::BadReference {
                    table: "string",
                    index,
                    offset,
                })?
                .clone();
            self.budget.bytes(s.len())?;
            return Ok(s);
        }
        let s = self.utf8(h >> 1)?;
        if !s.is_empty() {
            if self.strings.len() >= self.max_refs() {
                return Err(Amf3Error::TooManyReferences {
                    table: "string",
                    limit: self.max_refs(),
                });
            }
            self.strings.push(s.clone());
        }
        Ok(s)
    }

    /// A copy of a value decoded earlier, placed at `depth`.
    fn object_ref(
        &mut self,
        index: u32,
        offset: usize,
        depth: usize,
    ) -> Result<Amf3Value, Amf3Error> {
        let index = index as usize;
        match self.objects.get(index) {
            None => Err(Amf3Error::BadReference {
                table: "object",
                index,
                offset,
            }),
            Some(None) => Err(Amf3Error::CyclicReference { index, offset }),
            Some(Some(r)) => {
                // The copy nests as deep below `depth` as the original did below itself:
                // without this check, references to references build values far deeper than
                // `max_depth` (and recursive code on them can overflow the stack).
                let limit = self.budget.limits().max_depth;
                let bottom = depth.saturating_add(r.height);
                if bottom > limit {
                    return Err(Amf3Error::TooDeep { limit });
                }
                // The reference itself was charged one node already; charge the copy too.
                self.budget.charge(r.cost)?;
                let v = r.value.clone();
                self.deepest = self.deepest.max(bottom);
                Ok(v)
            }
        }
    }

    fn reserve(&mut self) -> Result<usize, Amf3Error> {
        if self.objects.len() >= self.max_refs() {
            return Err(Amf3Error::TooManyReferences {
                table: "object",
                limit: self.max_refs(),
            });
        }
        self.objects.push(None);
        Ok(self.objects.len() - 1)
    }

    fn fill(&mut self, slot: usize, v: &Amf3Value, before: Cost, height: usize) {
        let cost = self.budget.since(before);
        if let Some(s) = self.objects.get_mut(slot) {
            *s = Some(Registered {
                value: v.clone(),
                cost,
                height,
            });
        }
    }

    /// Registers a value without children (XML, date, byte array).
    fn register(&mut self, v: Amf3Value, before: Cost) -> Result<Amf3Value, Amf3Error> {
        let slot = self.reserve()?;
        self.fill(slot, &v, before, 0);
        Ok(v)
    }

    /// Starts the children of a container at `depth`; returns what [`Self::end_children`] needs.
    fn begin_children(&mut self, depth: usize) -> usize {
        std::mem::replace(&mut self.deepest, depth)
    }

    /// The container's height, with the outer container's deepest level restored.
    fn end_children(&mut self, depth: usize, outer: usize) -> usize {
        let height = self.deepest.saturating_sub(depth);
        self.deepest = self.deepest.max(outer);
        height
    }

    fn array(&mut self, depth: usize, offset: usize, before: Cost) -> Result<Amf3Value, Amf3Error> {
        let h = self.u29()?;
        if h & 1 == 0 {
            return self.object_ref(h >> 1, offset, depth);
        }
        let dense_len = (h >> 1) as usize;
        let slot = self.reserve()?;
        let outer = self.begin_children(depth);
        let mut a = Amf3Array::default();
        loop {
            let key = self.string()?;
            if key.is_empty() {
                break;
            }
            let v = self.value(depth + 1)?;
            a.assoc.push((key, v));
        }
        a.dense.reserve(dense_len.min(self.r.remaining()));
        for _ in 0..dense_len {
            a.dense.push(self.value(depth + 1)?);
        }
        let height = self.end_children(depth, outer);
        let v = Amf3Value::Array(a);
        self.fill(slot, &v, before, height);
        Ok(v)
    }

    fn object(
        &mut self,
        depth: usize,
        offset: usize,
        before: Cost,
    ) -> Result<Amf3Value, Amf3Error> {
        let h = self.u29()?;
        if h & 1 == 0 {
            return self.object_ref(h >> 1, offset, depth);
        }
        let traits = if h & 2 == 0 {
            let index = (h >> 2) as usize;
            let t = self
                .traits
                .get(index)
                .ok_or(Amf3Error::BadReference {
                    table: "traits",
                    index,
                    offset,
                })?
                .clone();
            self.budget.bytes(t.class_name.len())?;
            t
        } else {
            let externalizable = h & 4 != 0;
            let dynamic = h & 8 != 0;
            let count = (h >> 4) as usize;
            let class_name = self.string()?;
            let mut sealed = Vec::with_capacity(count.min(self.r.remaining()));
            for _ in 0..count {
                sealed.push(self.string()?);
            }
            let t = Traits {
                class_name,
                sealed,
                dynamic,
                externalizable,
            };
            if self.traits.len() >= self.max_refs() {
                return Err(Amf3Error::TooManyReferences {
                    table: "traits",
                    limit: self.max_refs(),
                });
            }
            self.traits.push(t.clone());
            t
        };
        if traits.externalizable {
            // The body format is private to the class; nothing sensible to decode.
            return Err(Amf3Error::Externalizable {
                class_name: traits.class_name,
            });
        }
        let slot = self.reserve()?;
        let outer = self.begin_children(depth);
        let mut o = Amf3Object {
            class_name: traits.class_name,
            dynamic: traits.dynamic,
            sealed: Vec::with_capacity(traits.sealed.len().min(self.r.remaining())),
            dynamic_members: Vec::new(),
        };
        for name in traits.sealed {
            self.budget.bytes(name.len())?;
            let v = self.value(depth + 1)?;
            o.sealed.push((name, v));
        }
        if o.dynamic {
            loop {
                let key = self.string()?;
                if key.is_empty() {
                    break;
                }
                let v = self.value(depth + 1)?;
                o.dynamic_members.push((key, v));
            }
        }
        let height = self.end_children(depth, outer);
        let v = Amf3Value::Object(o);
        self.fill(slot, &v, before, height);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> AmfLimits {
        AmfLimits::default()
    }

    fn dec(b: &[u8]) -> Result<Amf3Value, Amf3Error> {
        decode(b, &lim()).map(|(v, _)| v)
    }

    #[test]
    fn integers_u29() {
        assert_eq!(dec(&[0x04, 0x00]), Ok(Amf3Value::Integer(0)));
        assert_eq!(dec(&[0x04, 0x7F]), Ok(Amf3Value::Integer(127)));
        assert_eq!(dec(&[0x04, 0x81, 0x00]), Ok(Amf3Value::Integer(128)));
        assert_eq!(dec(&[0x04, 0xFF, 0x7F]), Ok(Amf3Value::Integer(0x3FFF)));
        assert_eq!(
            dec(&[0x04, 0xBF, 0xFF, 0xFF, 0xFF]),
            Ok(Amf3Value::Integer((1 << 28) - 1))
        );
        assert_eq!(
            dec(&[0x04, 0xFF, 0xFF, 0xFF, 0xFF]),
            Ok(Amf3Value::Integer(-1))
        );
        assert_eq!(
            dec(&[0x04, 0xC0, 0x80, 0x80, 0x00]),
            Ok(Amf3Value::Integer(-(1 << 28)))
        );
    }

    #[test]
    fn scalars_and_string_refs() {
        assert_eq!(dec(&[0x00]), Ok(Amf3Value::Undefined));
        assert_eq!(dec(&[0x01]), Ok(Amf3Value::Null));
        assert_eq!(dec(&[0x02]), Ok(Amf3Value::Boolean(false)));
        assert_eq!(dec(&[0x03]), Ok(Amf3Value::Boolean(true)));
        let mut d = vec![0x05];
        d.extend_from_slice(&2.5f64.to_be_bytes());
        assert_eq!(dec(&d), Ok(Amf3Value::Double(2.5)));
        // array ["ab", ref 0]
        let b = [0x09, 0x05, 0x01, 0x06, 0x05, b'a', b'b', 0x06, 0x00];
        assert_eq!(
            dec(&b),
            Ok(Amf3Value::Array(Amf3Array {
                assoc: vec![],
                dense: vec!["ab".into(), "ab".into()]
            }))
        );
        // the empty string is never a table entry
        assert!(matches!(
            dec(&[0x09, 0x05, 0x01, 0x06, 0x01, 0x06, 0x00]),
            Err(Amf3Error::BadReference {
                table: "string",
                ..
            })
        ));
    }

    #[test]
    fn dynamic_object_and_trait_reference() {
        // [ {class "", sealed [a], dynamic {b: true}}, {traits ref 0, a: 1, dyn end} ]
        let b = [
            0x09, 0x05, 0x01, // dense array of 2, no assoc
            0x0A, 0x1B, 0x01, 0x03, b'a', // inline traits: 1 sealed, dynamic; class ""; "a"
            0x04, 0x05, // a = 5
            0x03, b'b', 0x03, // b = true
            0x01, // end dynamic
            0x0A, 0x01, // object, traits ref 0
            0x04, 0x01, // a = 1
            0x01, // end dynamic
        ];
        let v = dec(&b).unwrap();
        let Amf3Value::Array(a) = v else {
            panic!("array expected")
        };
        assert_eq!(a.dense[0].get("a"), Some(&Amf3Value::Integer(5)));
        assert_eq!(a.dense[0].get("b"), Some(&Amf3Value::Boolean(true)));
        assert_eq!(a.dense[1].get("a"), Some(&Amf3Value::Integer(1)));
        assert_eq!(a.dense[1].get("b"), None);
    }

    #[test]
    fn object_reference_and_cycle() {
        // [ bytearray [1,2], ref to object index 1 (the bytearray; index 0 is the outer array) ]
        let b = [0x09, 0x05, 0x01, 0x0C, 0x05, 1, 2, 0x0C, 0x02];
        let Amf3Value::Array(a) = dec(&b).unwrap() else {
            panic!("array expected")
        };
        assert_eq!(a.dense[1], Amf3Value::ByteArray(vec![1, 2]));
        // array containing a reference to itself
        assert_eq!(
            dec(&[0x09, 0x03, 0x01, 0x09, 0x00]),
            Err(Amf3Error::CyclicReference {
                index: 0,
                offset: 3
            })
        );
        assert!(matches!(
            dec(&[0x09, 0x03, 0x01, 0x09, 0x08]),
            Err(Amf3Error::BadReference {
                table: "object",
                index: 4,
                ..
            })
        ));
    }

    #[test]
    fn reference_amplification_is_bounded() {
        // A 1000-byte byte array referenced 10_000 times: 10 MB of output from 20 KB of input.
        let mut b = vec![0x09];
        let count: u32 = 10_001;
        let h = (count << 1) | 1;
        b.extend_from_slice(&[
            0x80 | ((h >> 14) & 0x7F) as u8,
            0x80 | ((h >> 7) & 0x7F) as u8,
            (h & 0x7F) as u8,
        ]);
        b.push(0x01);
        b.extend_from_slice(&[0x0C, 0x8F, 0x51]); // len 1000: (1000<<1)|1 = 2001
        b.extend(std::iter::repeat_n(7u8, 1000));
        for _ in 0..10_000 {
            b.extend_from_slice(&[0x0C, 0x02]);
        }
        let small = AmfLimits {
            max_bytes: 1_000_000,
            ..lim()
        };
        assert_eq!(
            decode(&b, &small).map(|_| ()),
            Err(Amf3Error::TooManyBytes { limit: 1_000_000 })
        );
        let big = AmfLimits {
            max_bytes: 20_000_000,
            ..lim()
        };
        assert!(decode(&b, &big).is_ok());
    }

    #[test]
    fn malformed_inputs() {
        assert!(matches!(dec(&[]), Err(Amf3Error::Truncated { .. })));
        assert!(matches!(
            dec(&[0x04, 0x80]),
            Err(Amf3Error::Truncated { .. })
        ));
        assert!(matches!(
            dec(&[0x06, 0x07, b'a']),
            Err(Amf3Error::Truncated { .. })
        ));
        assert!(matches!(dec(&[0x12]), Err(Amf3Error::UnknownMarker { .. })));
        assert!(matches!(
            dec(&[0x0D, 0x01]),
            Err(Amf3Error::UnsupportedMarker { .. })
        ));
        assert!(matches!(
            dec(&[0x0A, 0x07, 0x07, b'C', b'l', b's']),
            Err(Amf3Error::Externalizable { .. })
        ));
        assert!(matches!(
            dec(&[0x0A, 0x05]),
            Err(Amf3Error::BadReference {
                table: "traits",
                ..
            })
        ));
        // dense array claiming 2^27 items
        assert!(matches!(
            dec(&[0x09, 0xBF, 0xFF, 0xFF, 0xFF, 0x01, 0x01]),
            Err(Amf3Error::Truncated { .. })
        ));
        let mut deep = Vec::new();
        for _ in 0..64 {
            deep.extend_from_slice(&[0x09, 0x03, 0x01]);
        }
        deep.push(0x01);
        assert_eq!(dec(&deep), Err(Amf3Error::TooDeep { limit: 32 }));
        let few_refs = AmfLimits {
            max_refs: 1,
            ..lim()
        };
        assert_eq!(
            decode(
                &[0x09, 0x05, 0x01, 0x06, 0x03, b'a', 0x06, 0x03, b'b'],
                &few_refs
            ),
            Err(Amf3Error::TooManyReferences {
                table: "string",
                limit: 1
            })
        );
    }

    /// Levels of nesting below `v` (0 for a scalar).
    fn height(v: &Amf3Value) -> usize {
        let children: Vec<&Amf3Value> = match v {
            Amf3Value::Array(a) => a
                .dense
                .iter()
                .chain(a.assoc.iter().map(|(_, v)| v))
                .collect(),
            Amf3Value::Object(o) => o
                .sealed
                .iter()
                .chain(o.dynamic_members.iter())
                .map(|(_, v)| v)
                .collect(),
            _ => Vec::new(),
        };
        children
            .into_iter()
            .map(|c| 1 + height(c))
            .max()
            .unwrap_or(0)
    }

    /// Found by the `amf3` fuzz target (fuzz/regressions/amf3/reference-exceeds-max-depth): an
    /// object reference copied a value without counting its nesting, so a copy placed deep in
    /// the tree (or references to values holding references) built values far deeper than
    /// `max_depth`.
    #[test]
    fn object_reference_exceeds_max_depth() {
        let three = AmfLimits {
            max_depth: 3,
            ..lim()
        };
        // [A, [[ref A]]] with A = [[1]]: A has height 2; the reference sits at depth 3.
        let a = [0x09, 0x03, 0x01, 0x09, 0x03, 0x01, 0x04, 0x01];
        let mut input = vec![0x09, 0x05, 0x01];
        input.extend_from_slice(&a);
        input.extend_from_slice(&[0x09, 0x03, 0x01, 0x09, 0x03, 0x01, 0x09, 0x02]);
        assert_eq!(decode(&input, &three), Err(Amf3Error::TooDeep { limit: 3 }));
        // The same reference one level up fits exactly: 2 + 2 levels would not, 1 + 2 does.
        let mut input = vec![0x09, 0x05, 0x01];
        input.extend_from_slice(&a);
        input.extend_from_slice(&[0x09, 0x02]);
        let (v, _) = decode(&input, &three).unwrap();
        assert_eq!(height(&v), 3);

        // A chain of containers each holding a reference to the previous one: every value the
        // decoder returns, or refuses, stays within max_depth.
        let mut chain = vec![0x09, 0x81, 0x01, 0x01]; // dense array of 64 items
        chain.extend_from_slice(&[0x09, 0x01, 0x01]); // item 0: [] (object 1)
        for i in 1..64u8 {
            // item i: [ref object i] (object i + 1), so it nests one level more than item i-1
            chain.extend_from_slice(&[0x09, 0x03, 0x01, 0x09, i << 1]);
        }
        for max_depth in [2, 8, 32, 80] {
            let l = AmfLimits { max_depth, ..lim() };
            match decode(&chain, &l) {
                Ok((v, _)) => assert!(height(&v) <= max_depth, "{max_depth}"),
                Err(e) => assert_eq!(e, Amf3Error::TooDeep { limit: max_depth }),
            }
        }
        assert!(decode(
            &chain,
            &AmfLimits {
                max_depth: 65,
                ..lim()
            }
        )
        .is_ok());
    }
}
