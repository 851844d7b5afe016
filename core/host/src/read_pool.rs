//! The threads that run source plugins' blocking calls (opening a file, reading and seeking in
//! it), so that a recorded-stream player is a task paced by the runtime's timers and no worker
//! thread ever waits on a disk.
//!
//! The pool is bounded twice: `threads` calls run at once, and at most `queue` calls wait or
//! run; a player asking past that waits its turn (its own pace slows, nobody else's). A call
//! that panics is caught here; the player that asked is told the source failed.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Arc, Mutex,
    },
};

use tokio::sync::{oneshot, Semaphore};

type Job = Box<dyn FnOnce() + Send>;

pub struct ReadPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// A permit per call waiting or running.
    slots: Arc<Semaphore>,
    threads: usize,
    /// Players alive, and their bound (0: none).
    players: AtomicUsize,
    max_players: usize,
}

/// A player's place in [`ReadPool`]'s count; freed when dropped.
pub struct PlayerSlot(Arc<ReadPool>);

impl Drop for PlayerSlot {
    fn drop(&mut self) {
        self.0.players.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The call could not run: it panicked (the pool logged it).
#[derive(Debug, thiserror::Error)]
#[error("the source call panicked")]
pub struct CallPanicked;

impl ReadPool {
    /// `threads` (at least 1) run calls, `queue` (at least `threads`) may wait or run, and at
    /// most `max_players` players exist at once (0: no bound).
    pub fn new(threads: usize, queue: usize, max_players: usize) -> Arc<Self> {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("source-read-{n}"))
                .spawn(move || loop {
                    let job = {
                        let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
                        rx.recv()
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a source read thread");
            }
        }
        Arc::new(Self {
            jobs: Mutex::new(tx),
            slots: Arc::new(Semaphore::new(queue.max(threads))),
            threads,
            players: AtomicUsize::new(0),
            max_players,
        })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Players alive now.
    pub fn players(&self) -> usize {
        self.players.load(Ordering::Relaxed)
    }

    /// Takes a player's place, or `None` past `max_players`.
    pub fn admit(self: &Arc<Self>) -> Option<PlayerSlot> {
        let max = if self.max_players == 0 {
            usize::MAX
        } else {
            self.max_players
        };
        self.players
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| PlayerSlot(self.clone()))
    }

    /// Runs `f` on a pool thread and gives its result back.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CallPanicked> {
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return Err(CallPanicked);
        };
        let (tx, rx) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move || {
            let _enter = span.enter();
            let _permit = permit;
            match catch_unwind(AssertUnwindSafe(f)) {
                Ok(v) => {
                    let _ = tx.send(v);
                }
                Err(_) => tracing::error!("a source call panicked; that player stops"),
            }
        });
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .is_ok();
        if !sent {
            return Err(CallPanicked);
        }
        rx.await.map_err(|_| CallPanicked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn calls_run_on_the_pool_and_a_panic_is_contained() {
        let pool = ReadPool::new(2, 4, 0);
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("source-read-"));
        assert!(pool.run(|| panic!("boom")).await.is_err());
        // The thread that caught the panic still serves.
        let sum: u32 = futures_sum(&pool).await;
        assert_eq!(sum, (0..20).sum::<u32>());
    }

    async fn futures_sum(pool: &Arc<ReadPool>) -> u32 {
        let mut handles = Vec::new();
        for i in 0..20u32 {
            let pool = pool.clone();
            handles.push(tokio::spawn(async move {
                pool.run(move || {
                    std::thread::sleep(Duration::from_millis(2));
                    i
                })
                .await
                .unwrap()
            }));
        }
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    }

    #[tokio::test]
    async fn no_more_than_the_bound_of_calls_run_at_once_and_players_are_bounded() {
        let pool = ReadPool::new(3, 3, 2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..30 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            handles.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(3));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap()
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 3);
        let a = pool.admit().expect("first player");
        let _b = pool.admit().expect("second player");
        assert!(pool.admit().is_none(), "a third player past max_players");
        drop(a);
        assert!(pool.admit().is_some(), "a place freed by a player leaving");
    }
}
