//! Bounds on the blocking plugin calls a client can cause before it has logged in.
//!
//! Every authentication (an authenticator may hash a password with argon2, about 19 MiB and
//! tens of milliseconds each) and every app-handler call runs on a blocking thread. Without a
//! bound, a thousand concurrent guesses are a thousand threads and gigabytes of memory. A
//! [`CallGate`] lets `concurrency` calls run at once and `queue` more wait for a slot; beyond
//! that a call is refused at once ([`GateError::Busy`]). A slot stays taken until the call
//! returns, also after its caller timed out, so the bound holds for the work really running.
//! Authentication and app-handler calls have gates of their own, so a flood of one does not
//! starve the other.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::sync::Semaphore;

/// Why a gated call gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("too many {0} calls waiting; refused")]
    Busy(&'static str),
    #[error("the {0} call timed out")]
    TimedOut(&'static str),
    #[error("the {0} call failed")]
    Failed(&'static str),
}

pub struct CallGate {
    what: &'static str,
    slots: Arc<Semaphore>,
    /// Calls admitted and not yet finished (running or waiting for a slot).
    admitted: AtomicUsize,
    /// Most calls admitted at once: `concurrency + queue`.
    max_admitted: usize,
}

impl CallGate {
    /// `concurrency` 0 is taken as 1.
    pub fn new(what: &'static str, concurrency: usize, queue: usize) -> Arc<Self> {
        let concurrency = concurrency.max(1);
        Arc::new(Self {
            what,
            slots: Arc::new(Semaphore::new(concurrency)),
            admitted: AtomicUsize::new(0),
            max_admitted: concurrency.saturating_add(queue),
        })
    }

    /// Calls admitted now (running or waiting).
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Relaxed)
    }

    /// Runs `work` on a blocking thread once a slot is free, answering within `timeout`
    /// (waiting included). Refused at once when the queue is full.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        timeout: Duration,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, GateError> {
        let admitted = Admitted::enter(self).ok_or(GateError::Busy(self.what))?;
        let what = self.what;
        let slots = self.slots.clone();
        let call = async move {
            let permit = slots
                .acquire_owned()
                .await
                .map_err(|_| GateError::Failed(what))?;
            // The slot and the admission go with the work: a call that outlives its timeout
            // still counts until it returns.
            let h = tokio::task::spawn_blocking(move || {
                let out = work();
                drop(permit);
                drop(admitted);
                out
            });
            h.await.map_err(|_| GateError::Failed(what))
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(GateError::TimedOut(what)),
        }
    }
}

/// One admitted call; leaving (drop) frees its place in the queue.
struct Admitted(Arc<CallGate>);

impl Admitted {
    fn enter(gate: &Arc<CallGate>) -> Option<Self> {
        let mut n = gate.admitted.load(Ordering::Relaxed);
        loop {
            if n >= gate.max_admitted {
                return None;
            }
            match gate
                .admitted
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(Self(gate.clone())),
                Err(now) => n = now,
            }
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The same bound for code already on a blocking thread (an app handler asking the host to
/// authenticate): `concurrency` at once, `queue` more waiting up to a timeout.
pub struct SyncSlots {
    what: &'static str,
    state: std::sync::Mutex<(usize, usize)>,
    freed: std::sync::Condvar,
    concurrency: usize,
    queue: usize,
}

/// A slot of [`SyncSlots`], given back on drop.
pub struct SyncSlot<'a>(&'a SyncSlots);

impl SyncSlots {
    pub fn new(what: &'static str, concurrency: usize, queue: usize) -> Self {
        Self {
            what,
            state: std::sync::Mutex::new((0, 0)),
            freed: std::sync::Condvar::new(),
            concurrency: concurrency.max(1),
            queue,
        }
    }

    /// Takes a slot, waiting up to `timeout`; refused at once when `queue` callers wait.
    pub fn enter(&self, timeout: Duration) -> Result<SyncSlot<'_>, GateError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.0 < self.concurrency {
            st.0 += 1;
            return Ok(SyncSlot(self));
        }
        if st.1 >= self.queue {
            return Err(GateError::Busy(self.what));
        }
        st.1 += 1;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                st.1 -= 1;
                return Err(GateError::TimedOut(self.what));
            }
            st = self
                .freed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            if st.0 < self.concurrency {
                st.1 -= 1;
                st.0 += 1;
                return Ok(SyncSlot(self));
            }
        }
    }

    /// (running, waiting)
    pub fn load(&self) -> (usize, usize) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for SyncSlot<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        st.0 = st.0.saturating_sub(1);
        drop(st);
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sync_slots_bound_running_and_waiting() {
        let s = Arc::new(SyncSlots::new("t", 1, 1));
        let first = s.enter(Duration::from_secs(1)).unwrap();
        let s2 = s.clone();
        let waiter = std::thread::spawn(move || s2.enter(Duration::from_secs(5)).map(|_| ()));
        while s.load().1 == 0 {
            std::thread::yield_now();
        }
        assert_eq!(
            s.enter(Duration::from_secs(1)).err(),
            Some(GateError::Busy("t"))
        );
        drop(first);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        let _a = s.enter(Duration::from_secs(1)).unwrap();
        let s3 = s.clone();
        let late = std::thread::spawn(move || s3.enter(Duration::from_millis(30)).map(|_| ()));
        assert_eq!(late.join().unwrap(), Err(GateError::TimedOut("t")));
    }

    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_at_most_concurrency_and_refuses_past_the_queue() {
        let gate = CallGate::new("test", 2, 3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut calls = Vec::new();
        for _ in 0..10 {
            let (g, running, most) = (gate.clone(), running.clone(), most.clone());
            calls.push(tokio::spawn(async move {
                g.run(Duration::from_secs(10), move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
            // Admission is synchronous with the call's first poll; give each a moment.
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut ok = 0;
        let mut busy = 0;
        for c in calls {
            match c.await.unwrap() {
                Ok(()) => ok += 1,
                Err(GateError::Busy(_)) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!((ok, busy), (5, 5));
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(gate.admitted(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timed_out_call_keeps_its_slot_until_it_returns() {
        let gate = CallGate::new("test", 1, 0);
        let slow = gate.run(Duration::from_millis(20), || {
            std::thread::sleep(Duration::from_millis(300))
        });
        assert_eq!(slow.await, Err(GateError::TimedOut("test")));
        // Still running: the gate is full.
        assert_eq!(
            gate.run(Duration::from_secs(1), || ()).await,
            Err(GateError::Busy("test"))
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(gate.run(Duration::from_secs(1), || 7).await, Ok(7));
    }
}
