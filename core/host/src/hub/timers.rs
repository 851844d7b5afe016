//! The hub's timers (a publisher's grace period, a subscriber's wait for a publisher).
//!
//! A [`Timer`] is owned by what it times: dropping it cancels it, so a timer never outlives its
//! subscriber or publication. The hub schedules through [`Timers`]: on the runtime in the
//! server ([`RuntimeTimers`]), on a virtual clock in tests ([`ManualTimers`]).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

/// What runs when a timer fires.
pub type TimerFn = Box<dyn FnOnce() + Send>;

/// Schedules the hub's timers.
pub trait Timers: Send + Sync {
    /// Runs `f` after `after` unless the returned [`Timer`] is dropped first.
    fn start(&self, after: Duration, f: TimerFn) -> Timer;
}

/// A scheduled call; dropping it cancels the call.
pub struct Timer {
    cancel: Option<Box<dyn FnOnce() + Send>>,
}

impl Timer {
    fn new(cancel: impl FnOnce() + Send + 'static) -> Self {
        Self {
            cancel: Some(Box::new(cancel)),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(c) = self.cancel.take() {
            c();
        }
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Timer")
    }
}

/// Timers on the tokio runtime the hub is called from: a sleeping task per timer, aborted when
/// its [`Timer`] is dropped. Without a runtime (benchmarks) nothing is scheduled.
#[derive(Default)]
pub struct RuntimeTimers;

impl Timers for RuntimeTimers {
    fn start(&self, after: Duration, f: TimerFn) -> Timer {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("hub timer requested outside a runtime; it will not fire");
            return Timer::new(|| {});
        };
        let task = rt.spawn(async move {
            tokio::time::sleep(after).await;
            f();
        });
        let abort = task.abort_handle();
        Timer::new(move || abort.abort())
    }
}

/// A virtual clock for driving the hub in tests: timers fire only in [`ManualTimers::advance`].
#[derive(Default)]
pub struct ManualTimers {
    inner: Arc<Mutex<Manual>>,
}

#[derive(Default)]
struct Manual {
    now_ms: u64,
    next_id: u64,
    /// (due, id) -> call
    pending: BTreeMap<(u64, u64), TimerFn>,
}

impl ManualTimers {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Timers scheduled and neither fired nor cancelled.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    pub fn now_ms(&self) -> u64 {
        self.lock().now_ms
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Manual> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the clock forward, firing every timer that falls due, in order (each called with
    /// no lock of the clock held, so it may start or cancel timers).
    pub fn advance(&self, ms: u64) {
        let target = self.lock().now_ms.saturating_add(ms);
        loop {
            let next = {
                let mut m = self.lock();
                match m.pending.keys().next().copied() {
                    Some(key) if key.0 <= target => {
                        m.now_ms = key.0;
                        m.pending.remove(&key)
                    }
                    _ => {
                        m.now_ms = target;
                        None
                    }
                }
            };
            match next {
                Some(f) => f(),
                None => return,
            }
        }
    }
}

impl Timers for ManualTimers {
    fn start(&self, after: Duration, f: TimerFn) -> Timer {
        let key = {
            let mut m = self.lock();
            let due = m
                .now_ms
                .saturating_add(after.as_millis().min(u64::MAX as u128) as u64);
            m.next_id += 1;
            let key = (due, m.next_id);
            m.pending.insert(key, f);
            key
        };
        let inner: Weak<Mutex<Manual>> = Arc::downgrade(&self.inner);
        Timer::new(move || {
            if let Some(inner) = inner.upgrade() {
                // Take the call out under the lock, drop it after (it may own other timers).
                let f = inner
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pending
                    .remove(&key);
                drop(f);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn manual_timers_fire_in_order_and_cancel_on_drop() {
        let t = ManualTimers::new();
        let fired = Arc::new(Mutex::new(Vec::new()));
        let mk = |n: u32| {
            let fired = fired.clone();
            Box::new(move || fired.lock().unwrap().push(n)) as TimerFn
        };
        let a = t.start(Duration::from_millis(30), mk(30));
        let b = t.start(Duration::from_millis(10), mk(10));
        let c = t.start(Duration::from_millis(20), mk(20));
        assert_eq!(t.pending(), 3);
        drop(c);
        assert_eq!(t.pending(), 2);
        t.advance(15);
        assert_eq!(*fired.lock().unwrap(), vec![10]);
        t.advance(100);
        assert_eq!(*fired.lock().unwrap(), vec![10, 30]);
        assert_eq!(t.pending(), 0);
        // Dropping a fired timer is harmless.
        drop(a);
        drop(b);
        assert_eq!(t.now_ms(), 115);
    }

    #[tokio::test(start_paused = true)]
    async fn runtime_timer_dropped_never_fires() {
        let n = Arc::new(AtomicUsize::new(0));
        let t = RuntimeTimers;
        let n1 = n.clone();
        let keep = t.start(
            Duration::from_millis(10),
            Box::new(move || {
                n1.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let n2 = n.clone();
        let gone = t.start(
            Duration::from_millis(10),
            Box::new(move || {
                n2.fetch_add(10, Ordering::SeqCst);
            }),
        );
        drop(gone);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        drop(keep);
    }
}
