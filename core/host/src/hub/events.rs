//! The channel that carries events to a connection's session, bounded in count.
//!
//! Events are boxed so a channel's preallocated block stays small: every connection has one,
//! and events are rare. They are also few by nature (answers to the session's own requests,
//! status changes of its streams), but plugins may add to them at will
//! (`HostApi::call_client`): so a connection's queue holds at most `limit` events. Past it the
//! event is refused (the sender hears false) and the queue is marked overflowed; the
//! connection closes when it reads the mark, since its session has missed an event.

use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

use fstream_abi::Event;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

struct Bound {
    queued: AtomicUsize,
    limit: usize,
    overflowed: AtomicBool,
}

#[derive(Clone)]
pub struct EventTx {
    tx: UnboundedSender<Box<Event>>,
    bound: Option<Arc<Bound>>,
}

/// The receiving end of [`bounded_events`].
pub struct EventRx {
    rx: UnboundedReceiver<Box<Event>>,
    bound: Arc<Bound>,
}

/// A connection's event channel holding at most `limit` events.
pub fn bounded_events(limit: usize) -> (EventTx, EventRx) {
    let (tx, rx) = unbounded_channel();
    let bound = Arc::new(Bound {
        queued: AtomicUsize::new(0),
        limit: limit.max(1),
        overflowed: AtomicBool::new(false),
    });
    (
        EventTx {
            tx,
            bound: Some(bound.clone()),
        },
        EventRx { rx, bound },
    )
}

impl EventTx {
    /// An unbounded sender on a channel the caller drains itself (tests and benchmarks).
    pub fn new(tx: UnboundedSender<Box<Event>>) -> Self {
        Self { tx, bound: None }
    }

    /// Sends an event; false when the connection is gone or its queue is full.
    pub fn send(&self, event: Event) -> bool {
        if let Some(b) = &self.bound {
            if b.queued.fetch_add(1, Ordering::AcqRel) >= b.limit {
                b.queued.fetch_sub(1, Ordering::AcqRel);
                b.overflowed.store(true, Ordering::Release);
                return false;
            }
        }
        if self.tx.send(Box::new(event)).is_ok() {
            return true;
        }
        if let Some(b) = &self.bound {
            b.queued.fetch_sub(1, Ordering::AcqRel);
        }
        false
    }
}

impl EventRx {
    pub async fn recv(&mut self) -> Option<Box<Event>> {
        let e = self.rx.recv().await;
        if e.is_some() {
            self.bound.queued.fetch_sub(1, Ordering::AcqRel);
        }
        e
    }

    /// An event was refused for lack of room: the session has missed one.
    pub fn overflowed(&self) -> bool {
        self.bound.overflowed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_and_marks_then_frees_room_as_it_is_read() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (tx, mut rx) = bounded_events(3);
        for _ in 0..3 {
            assert!(tx.send(Event::Shutdown));
        }
        assert!(!rx.overflowed());
        assert!(!tx.clone().send(Event::Shutdown), "a fourth");
        assert!(rx.overflowed());
        rt.block_on(async {
            assert!(rx.recv().await.is_some());
        });
        assert!(tx.send(Event::Shutdown), "room again after a read");
        let mut n = 0;
        rt.block_on(async {
            while n < 3 {
                rx.recv().await.unwrap();
                n += 1;
            }
        });
        drop(rx);
        assert!(!tx.send(Event::Shutdown), "the connection is gone");
    }
}
