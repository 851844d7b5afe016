//! The bound on calls in flight: a counter and a permit that gives its place back on drop.
//! Nothing waits for a place; a request past the bound is answered at once.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

pub struct Gate {
    limit: usize,
    in_flight: Arc<AtomicUsize>,
}

/// One call's place; dropping it frees the place.
pub struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A place, or `None` when `limit` calls are in flight.
    pub fn try_enter(&self) -> Option<Permit> {
        let mut now = self.in_flight.load(Ordering::Acquire);
        loop {
            if now >= self.limit {
                return None;
            }
            match self.in_flight.compare_exchange_weak(
                now,
                now + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(Permit(self.in_flight.clone())),
                Err(seen) => now = seen,
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_limit_permits_and_a_dropped_one_frees_its_place() {
        let g = Gate::new(2);
        let a = g.try_enter().unwrap();
        let _b = g.try_enter().unwrap();
        assert!(g.try_enter().is_none());
        assert_eq!(g.in_flight(), 2);
        drop(a);
        assert!(g.try_enter().is_some());
        assert_eq!(g.in_flight(), 1);
    }

    #[test]
    fn many_threads_never_hold_more_than_the_limit() {
        let g = Arc::new(Gate::new(3));
        let most = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (g, most, refused) = (g.clone(), most.clone(), refused.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        match g.try_enter() {
                            Some(_p) => {
                                most.fetch_max(g.in_flight(), Ordering::SeqCst);
                                std::thread::yield_now();
                            }
                            None => {
                                refused.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(g.in_flight(), 0);
    }
}
