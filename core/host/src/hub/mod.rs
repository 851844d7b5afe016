//! The stream hub: streams by name, one publisher each, any number of subscribers.
//!
//! A publisher's packets are fanned out in the publisher's own task: each packet is encoded once
//! per format in use (the raw format costs nothing) and the shared bytes are pushed onto every
//! subscriber's [`Outq`]; no lock is held across a socket write and nothing waits on a viewer. A
//! subscriber over its queue bound is disconnected or skipped ahead to the next keyframe, as it
//! asked. The hub keeps what a late joiner needs (metadata, sequence headers, the last group of
//! pictures) and keeps timestamps continuous across publishers.

mod events;
mod formats;
mod join_cache;
mod sinks;
mod stream;
mod subscriber;
mod subscribers;
pub mod timers;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, RwLock},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

pub use events::{bounded_events, EventRx, EventTx};
use fstream_abi::{
    Event, MediaPacket, PublishOptions, PublishOutcome, SinkFactoryBox, SubscribeOptions,
    SubscriptionControl, SubscriptionStatus, SubscriptionStatus_NE,
};
pub use sinks::SinkThreads;
pub use stream::{PublisherSnapshot, Stream, StreamSnapshot, StreamStats};
pub use timers::{ManualTimers, RuntimeTimers, Timers};

use crate::{config::HubConfig, frontends::Frontend, outq::Outq};

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
    /// The plugins that are also protocol frontends: their sinks (HLS) serve viewers, the
    /// others' are recordings (for the counters and the stats API).
    frontend_plugins: RwLock<Arc<Vec<String>>>,
    /// Grace and wait timers.
    timers: Arc<dyn Timers>,
}

impl Hub {
    /// A hub whose timers run on the tokio runtime it is called from.
    pub fn new(cfg: HubConfig, sinks: Vec<(String, SinkFactoryBox)>) -> Arc<Self> {
        Self::with_timers(cfg, sinks, Arc::new(RuntimeTimers))
    }

    /// A hub with timers of its own (a virtual clock, in tests).
    pub fn with_timers(
        cfg: HubConfig,
        sinks: Vec<(String, SinkFactoryBox)>,
        timers: Arc<dyn Timers>,
    ) -> Arc<Self> {
        Arc::new(Self {
            streams: Mutex::new(HashMap::new()),
            cfg,
            sinks: RwLock::new(Arc::new(sinks)),
            sink_threads: SinkThreads::default(),
            frontend_plugins: RwLock::default(),
            timers,
        })
    }

    /// A stream the hub holds now.
    pub fn stream(&self, name: &str) -> Option<Arc<Stream>> {
        self.map().get(name).cloned()
    }

    pub(crate) fn sinks(&self) -> Arc<Vec<(String, SinkFactoryBox)>> {
        self.sinks.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Installs a new configuration's sinks, for publications that start from now on.
    pub fn set_sinks(&self, sinks: Vec<(String, SinkFactoryBox)>) {
        *self.sinks.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(sinks);
    }

    /// Which plugins are protocol frontends (replaced at each reload).
    pub fn set_frontend_plugins(&self, plugins: Vec<String>) {
        *self
            .frontend_plugins
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(plugins);
    }

    pub fn frontend_plugins(&self) -> Arc<Vec<String>> {
        self.frontend_plugins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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

    /// Every stream the hub holds, for the stats API, by name.
    pub fn snapshot(&self) -> Vec<StreamSnapshot> {
        let streams: Vec<Arc<Stream>> = self.map().values().cloned().collect();
        let mut v: Vec<StreamSnapshot> = streams.iter().map(|s| s.snapshot()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
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
        let outcome = stream.start_publication(peer, publication, protocol, options);
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
        stream.end_publication(self, conn_id, publication);
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
        match stream.add_subscriber(self, peer, subscription, options) {
            Ok(_waiting) => Some(stream),
            Err(status) => {
                status_to(&peer.events, subscription, status);
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

/// Tells a subscriber's session that its subscription changed.
pub(crate) fn status(peer_events: &EventTx, subscription: u32, status: SubscriptionStatus) {
    status_to(peer_events, subscription, status)
}

fn status_to(peer_events: &EventTx, subscription: u32, status: SubscriptionStatus) {
    peer_events.send(Event::Subscription {
        subscription,
        status: SubscriptionStatus_NE::new(status),
    });
}
