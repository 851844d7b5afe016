//! The stream hub: streams by name, one publisher each, any number of subscribers.
//!
//! A publisher's packets are fanned out in the publisher's own task: each packet is encoded once
//! per format in use (the raw format costs nothing) and the shared bytes are pushed onto every
//! subscriber's [`Outq`]; no lock is held across a socket write and nothing waits on a viewer. A
//! subscriber over its queue bound is disconnected or skipped ahead to the next keyframe, as it
//! asked. The hub keeps what a late joiner needs (metadata, sequence headers, the last group of
//! pictures) and keeps timestamps continuous across publishers.

mod sinks;
mod stream;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, RwLock},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use fstream_abi::{
    Event, MediaPacket, PublishOptions, PublishOutcome, SinkFactoryBox, SubscribeOptions,
    SubscriptionControl, SubscriptionStatus,
};
use tokio::sync::mpsc::UnboundedSender;

pub use sinks::SinkThreads;
pub use stream::Stream;

use crate::{config::HubConfig, frontends::Frontend, outq::Outq};

/// The channel that carries events to a connection's session. Events are boxed so a channel's
/// preallocated block stays small: every connection has one, and events are rare.
#[derive(Clone)]
pub struct EventTx(UnboundedSender<Box<Event>>);

impl EventTx {
    pub fn new(tx: UnboundedSender<Box<Event>>) -> Self {
        Self(tx)
    }

    /// Sends an event; a connection that is gone drops it.
    pub fn send(&self, event: Event) {
        let _ = self.0.send(Box::new(event));
    }
}

/// How the hub reaches a connection.
#[derive(Clone)]
pub struct Peer {
    pub conn_id: u64,
    pub out: Arc<Outq>,
    pub events: EventTx,
    /// The frontend whose encoders this connection's subscriptions use.
    pub frontend: Arc<Frontend>,
}

pub struct Hub {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    pub cfg: HubConfig,
    /// The sink plugins of the current configuration (replaced on reload; running sinks go on).
    sinks: RwLock<Arc<Vec<(String, SinkFactoryBox)>>>,
    pub(crate) sink_threads: SinkThreads,
}

impl Hub {
    pub fn new(cfg: HubConfig, sinks: Vec<(String, SinkFactoryBox)>) -> Arc<Self> {
        Arc::new(Self {
            streams: Mutex::new(HashMap::new()),
            cfg,
            sinks: RwLock::new(Arc::new(sinks)),
            sink_threads: SinkThreads::default(),
        })
    }

    pub(crate) fn sinks(&self) -> Arc<Vec<(String, SinkFactoryBox)>> {
        self.sinks.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Installs a new configuration's sinks, for publications that start from now on.
    pub fn set_sinks(&self, sinks: Vec<(String, SinkFactoryBox)>) {
        *self.sinks.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(sinks);
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Stream>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get_or_create(self: &Arc<Self>, name: &str) -> Arc<Stream> {
        self.map()
            .entry(name.to_string())
            .or_insert_with(|| Stream::new(name))
            .clone()
    }

    /// Forgets a stream that has neither publisher nor subscribers.
    fn remove_if_idle(&self, stream: &Arc<Stream>) {
        let mut map = self.map();
        if stream.is_idle() {
            if let Some(s) = map.get(stream.name()) {
                if Arc::ptr_eq(s, stream) {
                    map.remove(stream.name());
                }
            }
        }
    }

    pub fn stream_count(&self) -> usize {
        self.map().len()
    }

    /// Streams of `app` (a user) that have a publisher now.
    pub fn publishing_count(&self, app: &str) -> usize {
        let streams: Vec<Arc<Stream>> = self
            .map()
            .iter()
            .filter(|(name, _)| name.split('/').next() == Some(app))
            .map(|(_, s)| s.clone())
            .collect();
        streams.iter().filter(|s| s.has_publisher()).count()
    }

    /// Claims `name` for a publisher.
    pub fn publish(
        self: &Arc<Self>,
        peer: &Peer,
        publication: u32,
        name: &str,
        protocol: &str,
        options: PublishOptions,
    ) -> (PublishOutcome, Option<Arc<Stream>>) {
        let stream = self.get_or_create(name);
        let outcome = stream.start_publication(self, peer, publication, protocol, options);
        if outcome == PublishOutcome::Started {
            (outcome, Some(stream))
        } else {
            self.remove_if_idle(&stream);
            (outcome, None)
        }
    }

    pub fn packet(
        self: &Arc<Self>,
        stream: &Arc<Stream>,
        conn_id: u64,
        publication: u32,
        pkt: MediaPacket,
    ) {
        stream.packet(self, conn_id, publication, pkt);
    }

    pub fn unpublish(self: &Arc<Self>, stream: &Arc<Stream>, conn_id: u64, publication: u32) {
        if let Some((grace, generation)) = stream.end_publication(conn_id, publication) {
            let hub = self.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                stream.grace_expired(generation);
                hub.remove_if_idle(&stream);
            });
        }
        self.remove_if_idle(stream);
    }

    /// Adds a subscriber; it waits for a publisher up to `options.wait_ms`.
    pub fn subscribe(
        self: &Arc<Self>,
        peer: &Peer,
        subscription: u32,
        name: &str,
        options: SubscribeOptions,
    ) -> Option<Arc<Stream>> {
        let stream = self.get_or_create(name);
        let wait = options.wait_ms;
        match stream.add_subscriber(self, peer, subscription, options) {
            Ok(waiting) => {
                if waiting && wait != u32::MAX {
                    let hub = self.clone();
                    let s = stream.clone();
                    let conn = peer.conn_id;
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                        s.wait_expired(conn, subscription);
                        hub.remove_if_idle(&s);
                    });
                }
                Some(stream)
            }
            Err(status) => {
                peer.events.send(Event::Subscription {
                    subscription,
                    status,
                });
                self.remove_if_idle(&stream);
                None
            }
        }
    }

    pub fn unsubscribe(&self, stream: &Arc<Stream>, conn_id: u64, subscription: u32) {
        stream.remove_subscriber(conn_id, subscription);
        self.remove_if_idle(stream);
    }

    pub fn control(
        &self,
        stream: &Arc<Stream>,
        conn_id: u64,
        subscription: u32,
        c: SubscriptionControl,
    ) {
        stream.control(conn_id, subscription, c);
    }

    /// Ends every publication's sinks and waits (up to `grace`) for them to finish their files.
    pub fn shutdown(&self, grace: Duration) {
        let streams: Vec<_> = self.map().values().cloned().collect();
        for s in streams {
            s.finish_sinks();
        }
        self.sink_threads.join_until(Instant::now() + grace);
    }
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn status(peer_events: &EventTx, subscription: u32, status: SubscriptionStatus) {
    peer_events.send(Event::Subscription {
        subscription,
        status,
    });
}
