//! The live connections, as plugins reach them outside the calls they are answering:
//! [`HostApi::call_client`](fstream_abi::HostApi::call_client) sends a client a command at any
//! time, and [`HostApi::decide`](fstream_abi::HostApi::decide) gives the answer to an app call
//! the handler deferred.
//!
//! A deferred call lives here from the moment the host hands it to the handler (the handler may
//! decide from another thread before its `call` has even returned) until one of: the handler's
//! own verdict, a `decide`, the deferral timeout, or the end of the connection. Whichever comes
//! first takes the entry; the others find nothing and do nothing, so a client gets exactly one
//! answer.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard,
    },
    time::Duration,
};

use fstream_abi::{AppDecision, ClientCommand, Event};

use crate::hub::EventTx;

/// A connection's way in.
struct Client {
    events: EventTx,
    /// Its frontend was built with v2.1 or later, so its sessions read
    /// [`Event::ClientCommand`].
    takes_commands: bool,
}

/// An app call whose answer is awaited.
struct Pending {
    connection: u64,
    request: u64,
    events: EventTx,
}

#[derive(Default)]
pub struct Clients {
    clients: Mutex<HashMap<u64, Client>>,
    pending: Mutex<HashMap<u64, Pending>>,
    next_ticket: AtomicU64,
}

/// What the registry's locks guard is only ever replaced whole, so a panic elsewhere cannot
/// leave it half-changed: a poisoned lock is used as it is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Clients {
    pub fn register(&self, connection: u64, events: EventTx, takes_commands: bool) {
        lock(&self.clients).insert(
            connection,
            Client {
                events,
                takes_commands,
            },
        );
    }

    /// The connection ended: no more commands for it, and its deferred calls are dropped (a
    /// later `decide` returns false).
    pub fn forget(&self, connection: u64) {
        lock(&self.clients).remove(&connection);
        lock(&self.pending).retain(|_, p| p.connection != connection);
    }

    /// Queues a command for the client's session; see `HostApi::call_client`.
    pub fn call(&self, connection: u64, command: ClientCommand) -> bool {
        let clients = lock(&self.clients);
        match clients.get(&connection) {
            Some(c) if c.takes_commands => c.events.send(Event::ClientCommand { command }),
            _ => false,
        }
    }

    /// Opens the entry of an app call about to be handed to its handler; the ticket goes in the
    /// call.
    pub fn open(&self, connection: u64, request: u64, events: EventTx) -> u64 {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.pending).insert(
            ticket,
            Pending {
                connection,
                request,
                events,
            },
        );
        ticket
    }

    /// Answers the call, if nothing answered it yet. `Defer` is not an answer.
    pub fn decide(&self, ticket: u64, decision: AppDecision) -> bool {
        if matches!(decision.verdict(), Some(fstream_abi::AppVerdict::Defer)) {
            return false;
        }
        let Some(p) = lock(&self.pending).remove(&ticket) else {
            return false;
        };
        p.events.send(Event::AppResult {
            request: p.request,
            decision,
        })
    }

    /// Takes the entry without answering (the caller answers), if it is still there.
    pub fn take(&self, ticket: u64) -> bool {
        lock(&self.pending).remove(&ticket).is_some()
    }

    /// The handler deferred: unless it is answered within `timeout`, reject it.
    pub fn expire_after(self: &std::sync::Arc<Self>, ticket: u64, timeout: Duration) {
        let clients = self.clone();
        let reject = move || {
            if clients.decide(
                ticket,
                AppDecision::reject("The app handler did not decide in time"),
            ) {
                tracing::warn!(
                    ticket,
                    timeout_ms = timeout.as_millis() as u64,
                    "a deferred app call was not decided in time; rejected"
                );
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(timeout).await;
                    reject();
                });
            }
            // Not on the runtime (tests): a thread of its own.
            Err(_) => {
                std::thread::spawn(move || {
                    std::thread::sleep(timeout);
                    reject();
                });
            }
        }
    }

    /// Whether the call with this ticket still awaits its answer.
    pub fn is_pending(&self, ticket: u64) -> bool {
        lock(&self.pending).contains_key(&ticket)
    }

    /// How many calls await a deferred answer (for tests and stats).
    pub fn pending(&self) -> usize {
        lock(&self.pending).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::unbounded_channel;

    fn decision(events: &mut tokio::sync::mpsc::UnboundedReceiver<Box<Event>>) -> Option<String> {
        match *events.try_recv().ok()? {
            Event::AppResult { decision, .. } => Some(format!("{:?}", decision.verdict()?)),
            other => Some(format!("{other:?}")),
        }
    }

    #[test]
    fn a_deferred_call_gets_exactly_one_answer_whoever_answers_first() {
        let clients = Clients::default();
        let (tx, mut rx) = unbounded_channel();
        let events = EventTx::new(tx);
        clients.register(7, events.clone(), true);

        // decide, then the handler's own verdict and the timeout find nothing.
        let t = clients.open(7, 1, events.clone());
        assert!(
            !clients.decide(t, AppDecision::defer()),
            "Defer is not an answer"
        );
        assert!(clients.decide(t, AppDecision::accept()));
        assert!(!clients.take(t));
        assert!(!clients.decide(t, AppDecision::reject("late")));
        assert_eq!(decision(&mut rx).as_deref(), Some("Accept"));
        assert_eq!(decision(&mut rx), None);

        // The connection leaves: its pending calls go, others stay.
        let a = clients.open(7, 2, events.clone());
        let b = clients.open(8, 3, events.clone());
        assert_ne!(a, b);
        clients.forget(7);
        assert!(!clients.decide(a, AppDecision::accept()));
        assert_eq!(clients.pending(), 1);
        assert!(clients.take(b));
        assert!(!clients.call(7, command()), "gone");
    }

    fn command() -> ClientCommand {
        ClientCommand {
            name: "hello".into(),
            args_json: "[]".into(),
        }
    }

    #[test]
    fn commands_go_only_to_live_connections_whose_frontend_reads_them() {
        let clients = Clients::default();
        let (tx, mut rx) = unbounded_channel();
        clients.register(1, EventTx::new(tx.clone()), true);
        clients.register(2, EventTx::new(tx), false);
        assert!(clients.call(1, command()));
        assert!(matches!(
            rx.try_recv().map(|e| *e),
            Ok(Event::ClientCommand { .. })
        ));
        assert!(!clients.call(2, command()), "a v2.0 frontend");
        assert!(!clients.call(3, command()), "no such connection");
        drop(rx);
        assert!(!clients.call(1, command()), "its session is gone");
    }

    #[test]
    fn an_undecided_call_is_rejected_after_the_timeout() {
        let clients = std::sync::Arc::new(Clients::default());
        let (tx, mut rx) = unbounded_channel();
        let t = clients.open(1, 9, EventTx::new(tx));
        clients.expire_after(t, Duration::from_millis(20));
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while clients.pending() > 0 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let text = decision(&mut rx).expect("an answer");
        assert!(text.contains("did not decide in time"), "{text}");
        assert!(!clients.decide(t, AppDecision::accept()));
    }
}
