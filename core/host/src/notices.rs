//! Notices for observer plugins (since v2.3): publications, viewers and recordings, each sent
//! to every observer on a thread of that observer's own, through a bounded queue.
//!
//! Sending never blocks the caller (a connection's task, a sink's thread): a notice that finds
//! an observer's queue full is dropped for that observer, counted and logged. A reload swaps
//! the observers; the old ones' threads finish what is queued and end.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{sync_channel, SyncSender, TrySendError},
        Arc, RwLock,
    },
    thread,
};

use fstream_abi::{Notice, ObserverBox};

/// Notices waiting for one observer, at most.
pub const QUEUE: usize = 1024;

struct Worker {
    plugin: String,
    tx: SyncSender<Arc<Notice>>,
}

#[derive(Default)]
pub struct Notices {
    workers: RwLock<Arc<Vec<Worker>>>,
    /// Notices an observer never got because its queue was full.
    pub dropped: AtomicU64,
    /// Notices handed to observers.
    pub sent: AtomicU64,
}

impl Notices {
    /// Installs a configuration's observers (at start-up and on reload).
    pub fn replace(&self, observers: Vec<(String, ObserverBox)>) {
        let mut workers = Vec::new();
        for (plugin, observer) in observers {
            let (tx, rx) = sync_channel::<Arc<Notice>>(QUEUE);
            let name = plugin.clone();
            let spawned = thread::Builder::new()
                .name(format!("observer-{plugin}"))
                .spawn(move || {
                    let span = tracing::info_span!("observer", plugin = %name);
                    let _e = span.enter();
                    for notice in rx {
                        if let Err(e) = observer.notice(&notice).into_result() {
                            tracing::warn!(panicked = e.panicked, error = %e.message,
                                kind = ?notice.kind(), "observer failed on a notice");
                            if e.panicked {
                                crate::stats::COUNTERS.plugin_panic();
                            }
                        }
                    }
                });
            match spawned {
                Ok(_) => workers.push(Worker { plugin, tx }),
                Err(e) => {
                    tracing::error!(plugin = %plugin, error = %e, "cannot start an observer thread")
                }
            }
        }
        *self.workers.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(workers);
    }

    /// Whether any observer is loaded (callers skip building notices otherwise).
    pub fn any(&self) -> bool {
        !self
            .workers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Sends `notice` to every observer, never waiting.
    pub fn send(&self, mut notice: Notice) {
        let workers = self
            .workers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if workers.is_empty() {
            return;
        }
        if notice.unix_ms == 0 {
            notice.unix_ms = crate::hub::unix_ms();
        }
        let notice = Arc::new(notice);
        for w in workers.iter() {
            match w.tx.try_send(notice.clone()) {
                Ok(()) => {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(_)) => {
                    let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    // One line per hundred drops, not per drop.
                    if n % 100 == 1 {
                        tracing::warn!(plugin = %w.plugin, dropped = n, queue = QUEUE,
                            "an observer is behind; notices dropped");
                    }
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }
}
