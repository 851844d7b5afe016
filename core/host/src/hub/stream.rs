//! One stream: its publication (publisher, timeline, join cache, sinks) and its subscribers.
//!
//! Everything here happens under the stream's one lock, and nothing under it blocks: bytes are
//! queued (never written), statuses are sent on unbounded channels, timers are scheduled.
//! State that belongs to a subscriber or a publication goes with it: a format's encoder and
//! encoded cache with its last subscriber, a wait timer with its subscriber, the grace timer
//! with the next publication, the join cache and sinks with the publication.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use abi_stable::std_types::{ROption, RString};
use fstream_abi::{
    Event, MediaKind, MediaPacket, PublishConflict, PublishOptions, PublishOutcome, StreamStart,
    SubscribeOptions, SubscriptionControl, SubscriptionStatus,
};
use subtle::ConstantTimeEq;

use super::{
    formats::Formats,
    join_cache::{GopPolicy, JoinCache},
    sinks::SinkHandle,
    status,
    subscriber::{SubKey, Subscriber},
    subscribers::Subscribers,
    timers::Timer,
    unix_ms, EventTx, Hub, Peer,
};
use crate::outq::Outq;

pub struct Stream {
    name: String,
    state: Mutex<State>,
}

struct Publisher {
    conn_id: u64,
    publication: u32,
    events: EventTx,
    options: PublishOptions,
    protocol: String,
    /// Its first packet arrived (so the stream's kind is known).
    started: bool,
    /// Added to its timestamps so the stream's timeline continues from the previous publisher.
    offset: Option<u32>,
}

#[derive(Default)]
struct State {
    publisher: Option<Publisher>,
    /// Whether the current (or last) publication carries media rather than raw bytes.
    media: Option<bool>,
    subscribers: Subscribers,
    formats: Formats,
    cache: JoinCache<MediaPacket>,
    /// The last timestamp sent out, for continuity across publishers.
    last_ts: Option<u32>,
    sinks: Vec<SinkHandle>,
    /// Bumped at every publication start and end, so a grace timer that fired just as a
    /// publisher returned does nothing.
    generation: u64,
    /// Running after a publisher left while subscribers stay; dropped (cancelled) when a
    /// publisher returns.
    grace_timer: Option<Timer>,
    /// The current publication's counters, for the stats API.
    meter: Meter,
}

/// A publication's bytes and rates (kbit/s over the last full second).
#[derive(Default)]
struct Meter {
    since_unix_ms: u64,
    started: Option<std::time::Instant>,
    bytes_in: u64,
    bytes_out: u64,
    window_start: Option<std::time::Instant>,
    window_in: u64,
    window_out: u64,
    kbps_in: u64,
    kbps_out: u64,
}

impl Meter {
    fn start() -> Self {
        let now = std::time::Instant::now();
        Self {
            since_unix_ms: unix_ms(),
            started: Some(now),
            window_start: Some(now),
            ..Self::default()
        }
    }

    fn count(&mut self, bytes_in: usize, bytes_out: u64) {
        self.bytes_in += bytes_in as u64;
        self.bytes_out += bytes_out;
        self.window_in += bytes_in as u64;
        self.window_out += bytes_out;
        let now = std::time::Instant::now();
        let start = *self.window_start.get_or_insert(now);
        let ms = now.duration_since(start).as_millis() as u64;
        if ms >= 1000 {
            self.kbps_in = self.window_in * 8 / ms;
            self.kbps_out = self.window_out * 8 / ms;
            self.window_in = 0;
            self.window_out = 0;
            self.window_start = Some(now);
        }
    }

    /// Rates go stale when packets stop: a window older than two seconds counts as idle.
    fn rates(&self) -> (u64, u64) {
        match self.window_start {
            Some(w) if w.elapsed().as_millis() < 2000 => (self.kbps_in, self.kbps_out),
            _ => (0, 0),
        }
    }
}

/// The publisher of a stream, as the stats API shows it.
#[derive(Debug, Clone)]
pub struct PublisherSnapshot {
    pub conn_id: u64,
    pub protocol: String,
}

/// A stream as the stats API shows it.
#[derive(Debug, Clone)]
pub struct StreamSnapshot {
    pub name: String,
    pub publisher: Option<PublisherSnapshot>,
    pub uptime_ms: u64,
    pub since_unix_ms: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub kbps_in: u64,
    pub kbps_out: u64,
    /// Each subscriber's protocol.
    pub viewers: Vec<String>,
    /// The sink plugins consuming the publication (recorders, HLS).
    pub sinks: Vec<String>,
    pub video_header: Option<Vec<u8>>,
    pub audio_header: Option<Vec<u8>>,
}

/// What the hub can tell about a stream (for tests and, later, the stats API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    pub publishing: bool,
    pub subscribers: usize,
    pub formats: usize,
    pub grace_timer: bool,
    pub wait_timers: usize,
    pub gop_cached: usize,
}

impl State {
    fn remove_subscriber(&mut self, key: SubKey) -> Option<Subscriber> {
        let sub = self.subscribers.remove(key)?;
        self.formats.release(sub.format);
        if self.subscribers.is_empty() {
            // Nobody is left to end the stream for.
            self.grace_timer = None;
        }
        Some(sub)
    }

    fn remove_all(&mut self, keys: Vec<SubKey>) {
        for k in keys {
            self.remove_subscriber(k);
        }
    }

    fn gop_policy(hub: &Hub) -> GopPolicy {
        GopPolicy {
            enabled: hub.cfg.gop_cache,
            max_bytes: hub.cfg.gop_cache_bytes as usize,
        }
    }

    /// Forgets the publication's join cache (in every format too).
    fn clear_cache(&mut self) {
        self.cache = JoinCache::default();
        self.formats.clear_caches();
    }
}

impl Stream {
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_string(),
            state: Mutex::new(State::default()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn has_publisher(&self) -> bool {
        self.lock().publisher.is_some()
    }

    pub fn is_idle(&self) -> bool {
        let st = self.lock();
        st.publisher.is_none() && st.subscribers.is_empty()
    }

    /// What the stats API shows of this stream.
    pub fn snapshot(&self) -> StreamSnapshot {
        let st = self.lock();
        let (kbps_in, kbps_out) = st.meter.rates();
        let live = st.publisher.is_some();
        StreamSnapshot {
            name: self.name.clone(),
            publisher: st.publisher.as_ref().map(|p| PublisherSnapshot {
                conn_id: p.conn_id,
                protocol: p.protocol.clone(),
            }),
            uptime_ms: if live {
                st.meter
                    .started
                    .map_or(0, |s| s.elapsed().as_millis() as u64)
            } else {
                0
            },
            since_unix_ms: st.meter.since_unix_ms,
            bytes_in: st.meter.bytes_in,
            bytes_out: st.meter.bytes_out,
            kbps_in,
            kbps_out,
            viewers: st.subscribers.iter().map(|s| s.protocol.clone()).collect(),
            sinks: st.sinks.iter().map(|s| s.plugin().to_string()).collect(),
            video_header: st.cache.video_header.as_ref().map(|p| p.payload.to_vec()),
            audio_header: st.cache.audio_header.as_ref().map(|p| p.payload.to_vec()),
        }
    }

    pub fn stats(&self) -> StreamStats {
        let st = self.lock();
        StreamStats {
            publishing: st.publisher.is_some(),
            subscribers: st.subscribers.len(),
            formats: st.formats.in_use(),
            grace_timer: st.grace_timer.is_some(),
            wait_timers: st
                .subscribers
                .iter()
                .filter(|s| s.wait_timer.is_some())
                .count(),
            gop_cached: st.cache.gop.len(),
        }
    }

    pub(super) fn start_publication(
        &self,
        peer: &Peer,
        publication: u32,
        protocol: &str,
        options: PublishOptions,
    ) -> PublishOutcome {
        let mut st = self.lock();
        if let Some(old) = &st.publisher {
            if options.conflict == PublishConflict::Reject {
                return PublishOutcome::Busy;
            }
            tracing::info!(stream = %self.name, old_conn = old.conn_id, new_conn = peer.conn_id,
                "a new publisher replaces the current one");
            old.events.send(Event::PublicationReplaced {
                publication: old.publication,
            });
            finish_sinks(&mut st);
        }
        st.generation += 1;
        st.grace_timer = None;
        st.clear_cache();
        st.meter = Meter::start();
        st.publisher = Some(Publisher {
            conn_id: peer.conn_id,
            publication,
            events: peer.events.clone(),
            options,
            protocol: protocol.to_string(),
            started: false,
            offset: None,
        });
        for sub in st.subscribers.iter_mut() {
            sub.joined = false;
        }
        tracing::info!(stream = %self.name, conn = peer.conn_id, "publishing");
        PublishOutcome::Started
    }

    /// Ends a publication. While subscribers stay, the stream waits for the publisher's grace
    /// period before it ends for them.
    pub(super) fn end_publication(
        self: &Arc<Self>,
        hub: &Arc<Hub>,
        conn_id: u64,
        publication: u32,
    ) {
        let mut st = self.lock();
        let Some(p) = st.publisher.as_ref() else {
            return;
        };
        if p.conn_id != conn_id || p.publication != publication {
            return;
        }
        let grace = Duration::from_millis(p.options.grace_ms as u64);
        st.publisher = None;
        st.generation += 1;
        finish_sinks(&mut st);
        st.clear_cache();
        for sub in st.subscribers.iter() {
            status(
                &sub.events,
                sub.subscription,
                SubscriptionStatus::PublisherLeft,
            );
        }
        tracing::info!(stream = %self.name, conn = conn_id, "publisher left");
        if st.subscribers.is_empty() {
            return;
        }
        let generation = st.generation;
        let (hub2, stream) = (hub.clone(), self.clone());
        st.grace_timer = Some(hub.timers.start(
            grace,
            Box::new(move || {
                stream.grace_expired(generation);
                hub2.remove_if_idle(&stream);
            }),
        ));
    }

    /// The grace period after a publisher left is over: unless a publisher came back since,
    /// end the stream for its subscribers (they still get what is queued).
    fn grace_expired(&self, generation: u64) {
        let mut st = self.lock();
        if st.publisher.is_some() || st.generation != generation {
            return;
        }
        st.grace_timer = None;
        for sub in st.subscribers.take_all() {
            status(&sub.events, sub.subscription, SubscriptionStatus::Ended);
            st.formats.release(sub.format);
        }
    }

    fn wait_expired(&self, key: SubKey) {
        let mut st = self.lock();
        match st.subscribers.get_mut(key) {
            Some(sub) if !sub.had_publisher => {}
            _ => return,
        }
        if let Some(sub) = st.remove_subscriber(key) {
            status(&sub.events, sub.subscription, SubscriptionStatus::NotFound);
        }
    }

    /// Adds a subscriber. `Ok(true)`: it waits for a publisher.
    pub(super) fn add_subscriber(
        self: &Arc<Self>,
        hub: &Arc<Hub>,
        peer: &Peer,
        subscription: u32,
        options: SubscribeOptions,
    ) -> Result<bool, SubscriptionStatus> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let live = st.publisher.as_ref().map(|p| p.started).unwrap_or(false);
        if let Some(p) = &st.publisher {
            if !password_ok(&p.options.channel_password, &options.channel_password) {
                return Err(SubscriptionStatus::Forbidden);
            }
        }
        if st.publisher.is_none() && options.wait_ms == 0 && st.subscribers.is_empty() {
            return Err(SubscriptionStatus::NotFound);
        }
        let format = match st
            .formats
            .acquire(&peer.frontend, &options.format, &st.cache)
        {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(stream = %self.name, format = %options.format, error = %e,
                    "no encoder for this subscriber");
                return Err(SubscriptionStatus::NotFound);
            }
        };
        let limit = if options.max_queue_bytes == 0 {
            hub.cfg.queue_bytes as usize
        } else {
            options.max_queue_bytes as usize
        };
        let waiting = st.publisher.is_none();
        let wait_ms = options.wait_ms;
        let mut sub = Subscriber {
            conn_id: peer.conn_id,
            subscription,
            out: peer.out.clone(),
            events: peer.events.clone(),
            format,
            protocol: peer.frontend.protocol.clone(),
            options,
            limit,
            preamble_sent: None,
            joined: false,
            wait_key: false,
            had_publisher: st.publisher.is_some(),
            paused: false,
            wait_timer: None,
        };
        if waiting {
            status(&sub.events, subscription, SubscriptionStatus::Waiting);
            if wait_ms != u32::MAX {
                let (hub2, stream, key) = (hub.clone(), self.clone(), sub.key());
                sub.wait_timer = Some(hub.timers.start(
                    Duration::from_millis(wait_ms as u64),
                    Box::new(move || {
                        stream.wait_expired(key);
                        hub2.remove_if_idle(&stream);
                    }),
                ));
            }
        }
        if live {
            let media = st.media.unwrap_or(false);
            status(
                &sub.events,
                subscription,
                SubscriptionStatus::PublisherStarted { media },
            );
            let joined = match st.formats.get_mut(format) {
                Some(f) => sub.join(f, &st.cache, media, hub.cfg.gop_cache).is_ok(),
                None => false,
            };
            if !joined {
                st.formats.release(format);
                return Err(SubscriptionStatus::TooSlow);
            }
        }
        let out = sub.out.clone();
        let joined = sub.joined;
        if let Some(old) = st.subscribers.insert(sub) {
            st.formats.release(old.format);
        }
        drop(guard);
        if joined {
            // The join burst goes out at once, not after a gathering window.
            out.flush(true);
        }
        Ok(waiting)
    }

    pub(super) fn remove_subscriber(&self, conn_id: u64, subscription: u32) {
        self.lock().remove_subscriber((conn_id, subscription));
    }

    pub(super) fn control(&self, conn_id: u64, subscription: u32, c: SubscriptionControl) {
        let mut st = self.lock();
        let Some(sub) = st.subscribers.get_mut((conn_id, subscription)) else {
            return;
        };
        match c {
            SubscriptionControl::ReceiveAudio(on) => sub.options.audio = on,
            SubscriptionControl::ReceiveVideo(on) => {
                if on && !sub.options.video {
                    sub.wait_key = true;
                }
                sub.options.video = on;
            }
            // A paused live viewer gets nothing; on resume it starts again at a keyframe.
            SubscriptionControl::Pause(p) => {
                if sub.paused && !p {
                    sub.wait_key = true;
                }
                sub.paused = p;
            }
            // Seek and buffer length matter for recorded sources, not live streams.
            SubscriptionControl::Seek(_) | SubscriptionControl::BufferLength(_) => {}
            _ => {}
        }
    }

    pub(super) fn finish_sinks(&self) {
        finish_sinks(&mut self.lock());
    }

    /// Fans one packet out to every subscriber.
    pub(super) fn packet(&self, hub: &Hub, conn_id: u64, publication: u32, mut pkt: MediaPacket) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(p) = st.publisher.as_mut() else {
            return;
        };
        if p.conn_id != conn_id || p.publication != publication {
            return;
        }
        let media = pkt.kind != MediaKind::Raw;
        if media {
            let last = st.last_ts;
            let offset = *p.offset.get_or_insert_with(|| match last {
                Some(l) => l.wrapping_add(1).wrapping_sub(pkt.timestamp),
                None => 0,
            });
            pkt.timestamp = pkt.timestamp.wrapping_add(offset);
            st.last_ts = Some(pkt.timestamp);
        }
        if !p.started {
            p.started = true;
            st.media = Some(media);
            let start = StreamStart {
                stream: self.name.clone().into(),
                app: self.name.split('/').next().unwrap_or("").into(),
                name: self.name.split('/').nth(1).unwrap_or("").into(),
                record: p.options.record,
                // Sinks get the client's arguments, never its credentials.
                query: fstream_abi::query::redacted(&p.options.query).into(),
                protocol: p.protocol.clone().into(),
                unix_ms: unix_ms(),
                ext: Default::default(),
            };
            let password = p.options.channel_password.clone();
            if media {
                open_sinks(hub, &self.name, &start, &mut st.sinks);
                let frontends = hub.frontend_plugins();
                let recordings = st
                    .sinks
                    .iter()
                    .filter(|s| !frontends.iter().any(|f| f == s.plugin()))
                    .count();
                crate::stats::COUNTERS
                    .recordings
                    .fetch_add(recordings as u64, std::sync::atomic::Ordering::Relaxed);
            }
            // Subscribers that were waiting (or attached to the previous publisher) join now.
            let mut refused = Vec::new();
            for sub in st.subscribers.iter_mut() {
                if !password_ok(&password, &sub.options.channel_password) {
                    status(&sub.events, sub.subscription, SubscriptionStatus::Forbidden);
                    refused.push(sub.key());
                    continue;
                }
                sub.had_publisher = true;
                sub.wait_timer = None;
                status(
                    &sub.events,
                    sub.subscription,
                    SubscriptionStatus::PublisherStarted { media },
                );
            }
            st.remove_all(refused);
        }
        // Join subscribers that have not joined this publication yet (before this packet).
        // Queues to write once the stream's lock is released (no write under a lock).
        let mut flush: Vec<Arc<Outq>> = Vec::new();
        let mut dropped = Vec::new();
        for sub in st.subscribers.iter_mut() {
            if sub.joined {
                continue;
            }
            let ok = match st.formats.get_mut(sub.format) {
                Some(f) => sub.join(f, &st.cache, media, hub.cfg.gop_cache).is_ok(),
                None => false,
            };
            if ok {
                flush.push(sub.out.clone());
            } else {
                dropped.push(sub.key());
            }
        }
        st.remove_all(dropped);

        let policy = State::gop_policy(hub);
        let encoded = st.formats.encode(&pkt, media.then_some(policy));
        if media {
            st.cache.update(&pkt, policy, || pkt.clone());
        }
        let mut dropped = Vec::new();
        let mut out_bytes = 0u64;
        for sub in st.subscribers.iter_mut() {
            if !sub.wants(&pkt) {
                continue;
            }
            let Some(Some(bytes)) = encoded.get(sub.format) else {
                continue;
            };
            out_bytes += bytes.len() as u64;
            match sub.deliver(&pkt, bytes, &self.name) {
                Ok(true) => flush.push(sub.out.clone()),
                Ok(false) => {}
                Err(_) => dropped.push(sub.key()),
            }
        }
        st.remove_all(dropped);
        st.meter.count(pkt.payload.len(), out_bytes);
        if media {
            for s in st.sinks.iter_mut() {
                s.packet(&pkt);
            }
        }
        drop(guard);
        for q in flush {
            q.flush(true);
        }
    }
}

fn password_ok(expected: &ROption<RString>, given: &ROption<RString>) -> bool {
    match (expected, given) {
        (ROption::RNone, _) => true,
        (ROption::RSome(e), ROption::RSome(g)) => bool::from(e.as_bytes().ct_eq(g.as_bytes())),
        (ROption::RSome(_), ROption::RNone) => false,
    }
}

fn open_sinks(hub: &Hub, stream: &str, start: &StreamStart, out: &mut Vec<SinkHandle>) {
    for (name, factory) in hub.sinks().iter() {
        match factory.open(start).into_result() {
            Ok(ROption::RSome(sink)) => {
                match SinkHandle::spawn(
                    name,
                    stream,
                    sink,
                    hub.cfg.sink_queue_packets,
                    &hub.sink_threads,
                ) {
                    Ok(h) => out.push(h),
                    Err(e) => {
                        tracing::error!(plugin = %name, stream, error = %e, "cannot start a sink thread")
                    }
                }
            }
            Ok(ROption::RNone) => {}
            Err(e) => tracing::error!(plugin = %name, stream, error = %e, "sink refused to open"),
        }
    }
}

fn finish_sinks(st: &mut State) {
    for s in st.sinks.drain(..) {
        s.finish();
    }
}
