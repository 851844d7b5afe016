//! One stream: its publisher, subscribers, encoders, join cache and sinks.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use abi_stable::std_types::ROption;
use fstream_abi::{
    EncoderBox, Event, MediaKind, MediaPacket, OverflowPolicy, Payload, PublishConflict,
    PublishOptions, PublishOutcome, StreamStart, SubscribeOptions, SubscriptionControl,
    SubscriptionStatus, RAW_FORMAT,
};
use subtle::ConstantTimeEq;

use super::{sinks::SinkHandle, status, unix_ms, EventTx, Hub, Peer};
use crate::{frontends::Frontend, outq::Outq};

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

struct Subscriber {
    conn_id: u64,
    subscription: u32,
    out: Arc<Outq>,
    events: EventTx,
    format: usize,
    options: SubscribeOptions,
    limit: usize,
    /// The format's preamble was sent, for a stream of this kind (media or raw).
    preamble_sent: Option<bool>,
    /// Joined the current publication (got its start, cache and live packets).
    joined: bool,
    /// Skipping video until the next keyframe.
    wait_key: bool,
    /// Has seen a publisher since it subscribed (else it is waiting for one).
    had_publisher: bool,
    /// Paused by its player: nothing is delivered until it resumes (at a keyframe).
    paused: bool,
}

struct Format {
    frontend: Arc<Frontend>,
    name: String,
    /// `None` for the raw format: payloads pass unchanged.
    encoder: Option<EncoderBox>,
    users: usize,
}

#[derive(Default)]
struct JoinCache {
    metadata: Option<MediaPacket>,
    video_header: Option<MediaPacket>,
    audio_header: Option<MediaPacket>,
    /// Packets since the last video keyframe (the keyframe first).
    gop: Vec<MediaPacket>,
    gop_bytes: usize,
}

#[derive(Default)]
struct State {
    publisher: Option<Publisher>,
    /// Whether the current (or last) publication carries media rather than raw bytes.
    media: Option<bool>,
    subscribers: Vec<Subscriber>,
    formats: Vec<Format>,
    cache: JoinCache,
    /// The last timestamp sent out, for continuity across publishers.
    last_ts: Option<u32>,
    sinks: Vec<SinkHandle>,
    /// Bumped at every publication start and end, so a stale grace timer does nothing.
    generation: u64,
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

    pub(super) fn start_publication(
        &self,
        _hub: &Hub,
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
        st.cache = JoinCache::default();
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

    /// Ends a publication; returns the grace period to wait before ending the stream, with the
    /// generation the timer must find unchanged.
    pub(super) fn end_publication(
        &self,
        conn_id: u64,
        publication: u32,
    ) -> Option<(Duration, u64)> {
        let mut st = self.lock();
        let p = st.publisher.as_ref()?;
        if p.conn_id != conn_id || p.publication != publication {
            return None;
        }
        let grace = Duration::from_millis(p.options.grace_ms as u64);
        st.publisher = None;
        st.generation += 1;
        finish_sinks(&mut st);
        for sub in &st.subscribers {
            status(
                &sub.events,
                sub.subscription,
                SubscriptionStatus::PublisherLeft,
            );
        }
        tracing::info!(stream = %self.name, conn = conn_id, "publisher left");
        if st.subscribers.is_empty() {
            return None;
        }
        Some((grace, st.generation))
    }

    /// The grace period after a publisher left is over: unless a publisher came back since,
    /// end the stream for its subscribers (they still get what is queued).
    pub(super) fn grace_expired(&self, generation: u64) {
        let mut st = self.lock();
        if st.publisher.is_some() || st.generation != generation {
            return;
        }
        for sub in std::mem::take(&mut st.subscribers) {
            status(&sub.events, sub.subscription, SubscriptionStatus::Ended);
            release_format(&mut st.formats, sub.format);
        }
    }

    pub(super) fn wait_expired(&self, conn_id: u64, subscription: u32) {
        let mut st = self.lock();
        let Some(i) = st
            .subscribers
            .iter()
            .position(|s| s.conn_id == conn_id && s.subscription == subscription)
        else {
            return;
        };
        if st.subscribers[i].had_publisher {
            return;
        }
        let sub = st.subscribers.remove(i);
        release_format(&mut st.formats, sub.format);
        status(&sub.events, sub.subscription, SubscriptionStatus::NotFound);
    }

    /// Adds a subscriber. `Ok(true)`: it waits for a publisher.
    pub(super) fn add_subscriber(
        &self,
        hub: &Hub,
        peer: &Peer,
        subscription: u32,
        options: SubscribeOptions,
    ) -> Result<bool, SubscriptionStatus> {
        let mut st = self.lock();
        let live = st.publisher.as_ref().map(|p| p.started).unwrap_or(false);
        if let Some(p) = &st.publisher {
            if !password_ok(&p.options.channel_password, &options.channel_password) {
                return Err(SubscriptionStatus::Forbidden);
            }
        }
        if st.publisher.is_none() && options.wait_ms == 0 && st.subscribers.is_empty() {
            return Err(SubscriptionStatus::NotFound);
        }
        let format = match format_slot(&mut st.formats, &peer.frontend, &options.format) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(stream = %self.name, format = %options.format, error = %e,
                    "the frontend has no encoder for this format");
                return Err(SubscriptionStatus::NotFound);
            }
        };
        let limit = if options.max_queue_bytes == 0 {
            hub.cfg.queue_bytes as usize
        } else {
            options.max_queue_bytes as usize
        };
        let waiting = st.publisher.is_none();
        let mut sub = Subscriber {
            conn_id: peer.conn_id,
            subscription,
            out: peer.out.clone(),
            events: peer.events.clone(),
            format,
            options,
            limit,
            preamble_sent: None,
            joined: false,
            wait_key: false,
            had_publisher: st.publisher.is_some(),
            paused: false,
        };
        if waiting {
            status(&sub.events, subscription, SubscriptionStatus::Waiting);
        }
        if live {
            let media = st.media.unwrap_or(false);
            status(
                &sub.events,
                subscription,
                SubscriptionStatus::PublisherStarted { media },
            );
            let gop = hub.cfg.gop_cache;
            let st = &mut *st;
            if join(&mut sub, &mut st.formats, &st.cache, media, gop).is_err() {
                return Err(SubscriptionStatus::TooSlow);
            }
        }
        let out = sub.out.clone();
        let joined = sub.joined;
        st.subscribers.push(sub);
        drop(st);
        if joined {
            // The join burst goes out at once, not after a gathering window.
            out.flush(true);
        }
        Ok(waiting)
    }

    pub(super) fn remove_subscriber(&self, conn_id: u64, subscription: u32) {
        let mut st = self.lock();
        if let Some(i) = st
            .subscribers
            .iter()
            .position(|s| s.conn_id == conn_id && s.subscription == subscription)
        {
            let sub = st.subscribers.remove(i);
            release_format(&mut st.formats, sub.format);
        }
    }

    pub(super) fn control(&self, conn_id: u64, subscription: u32, c: SubscriptionControl) {
        let mut st = self.lock();
        let Some(sub) = st
            .subscribers
            .iter_mut()
            .find(|s| s.conn_id == conn_id && s.subscription == subscription)
        else {
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
                query: p.options.query.clone(),
                protocol: p.protocol.clone().into(),
                unix_ms: unix_ms(),
            };
            let password = p.options.channel_password.clone();
            if media {
                open_sinks(hub, &self.name, &start, &mut st.sinks);
            }
            // Subscribers that were waiting (or attached to the previous publisher) join now.
            let mut refused = Vec::new();
            for (i, sub) in st.subscribers.iter_mut().enumerate() {
                if !password_ok(&password, &sub.options.channel_password) {
                    status(&sub.events, sub.subscription, SubscriptionStatus::Forbidden);
                    refused.push(i);
                    continue;
                }
                sub.had_publisher = true;
                status(
                    &sub.events,
                    sub.subscription,
                    SubscriptionStatus::PublisherStarted { media },
                );
            }
            for i in refused.into_iter().rev() {
                let sub = st.subscribers.remove(i);
                release_format(&mut st.formats, sub.format);
            }
        }
        // Join subscribers that have not joined this publication yet (before this packet).
        // Queues to write once the stream's lock is released (no write under a lock).
        let mut flush: Vec<Arc<Outq>> = Vec::new();
        let gop = hub.cfg.gop_cache;
        let mut dropped = Vec::new();
        for (i, sub) in st.subscribers.iter_mut().enumerate() {
            if !sub.joined {
                if join(sub, &mut st.formats, &st.cache, media, gop).is_err() {
                    dropped.push(i);
                } else {
                    flush.push(sub.out.clone());
                }
            }
        }
        remove_dropped(st, dropped);

        if media {
            update_cache(
                &mut st.cache,
                &pkt,
                hub.cfg.gop_cache,
                hub.cfg.gop_cache_bytes as usize,
            );
        }
        let encoded: Vec<Option<Payload>> = st
            .formats
            .iter_mut()
            .map(|f| if f.users > 0 { encode(f, &pkt) } else { None })
            .collect();
        let mut dropped = Vec::new();
        for (i, sub) in st.subscribers.iter_mut().enumerate() {
            if !wants(sub, &pkt) {
                continue;
            }
            let Some(bytes) = &encoded[sub.format] else {
                continue;
            };
            if deliver(sub, bytes.clone(), &self.name, &mut flush).is_err() {
                dropped.push(i);
            }
        }
        remove_dropped(st, dropped);
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

fn remove_dropped(st: &mut State, dropped: Vec<usize>) {
    for i in dropped.into_iter().rev() {
        let sub = st.subscribers.remove(i);
        release_format(&mut st.formats, sub.format);
    }
}

fn password_ok(
    expected: &ROption<abi_stable::std_types::RString>,
    given: &ROption<abi_stable::std_types::RString>,
) -> bool {
    match (expected, given) {
        (ROption::RNone, _) => true,
        (ROption::RSome(e), ROption::RSome(g)) => bool::from(e.as_bytes().ct_eq(g.as_bytes())),
        (ROption::RSome(_), ROption::RNone) => false,
    }
}

fn format_slot(
    formats: &mut Vec<Format>,
    frontend: &Arc<Frontend>,
    name: &str,
) -> Result<usize, String> {
    if let Some(i) = formats
        .iter()
        .position(|f| Arc::ptr_eq(&f.frontend, frontend) && f.name == name)
    {
        formats[i].users += 1;
        return Ok(i);
    }
    let encoder = if name == RAW_FORMAT {
        None
    } else {
        Some(
            frontend
                .factory
                .encoder(name.into())
                .into_result()
                .map_err(|e| e.to_string())?,
        )
    };
    // Reuse a slot nobody uses any more, so indexes stay small and stable.
    let slot = Format {
        frontend: frontend.clone(),
        name: name.to_string(),
        encoder,
        users: 1,
    };
    if let Some(i) = formats.iter().position(|f| f.users == 0) {
        formats[i] = slot;
        Ok(i)
    } else {
        formats.push(slot);
        Ok(formats.len() - 1)
    }
}

fn release_format(formats: &mut [Format], i: usize) {
    if let Some(f) = formats.get_mut(i) {
        f.users = f.users.saturating_sub(1);
        if f.users == 0 {
            f.encoder = None;
        }
    }
}

fn encode(f: &mut Format, pkt: &MediaPacket) -> Option<Payload> {
    match &mut f.encoder {
        None => Some(pkt.payload.clone()),
        Some(enc) => match enc.encode(pkt).into_result() {
            Ok(p) => p.into_option(),
            Err(e) => {
                tracing::error!(format = %f.name, error = %e, "encoder failed; packet skipped");
                None
            }
        },
    }
}

fn wants(sub: &mut Subscriber, pkt: &MediaPacket) -> bool {
    if !sub.joined || sub.paused {
        return false;
    }
    match pkt.kind {
        MediaKind::Audio if !sub.options.audio && !pkt.is_sequence_header() => false,
        MediaKind::Video => {
            if pkt.is_sequence_header() {
                return true;
            }
            if !sub.options.video {
                return false;
            }
            if sub.wait_key {
                if !pkt.is_keyframe() {
                    return false;
                }
                sub.wait_key = false;
            }
            true
        }
        _ => true,
    }
}

/// Queues bytes for a subscriber, applying its overflow policy. `Err`: remove it.
fn deliver(
    sub: &mut Subscriber,
    bytes: Payload,
    stream: &str,
    flush: &mut Vec<Arc<Outq>>,
) -> Result<(), ()> {
    if sub.out.is_ended() {
        return Err(());
    }
    match sub.out.push_media(bytes, sub.limit, false) {
        Ok(false) => Ok(()),
        Ok(true) => {
            flush.push(sub.out.clone());
            Ok(())
        }
        Err(_) => match sub.options.overflow {
            OverflowPolicy::Disconnect => {
                tracing::warn!(
                    stream,
                    conn = sub.conn_id,
                    "viewer too slow for its queue; disconnecting it"
                );
                status(&sub.events, sub.subscription, SubscriptionStatus::TooSlow);
                sub.out.abort();
                Err(())
            }
            OverflowPolicy::SkipToKeyframe => {
                let n = sub.out.drop_media();
                tracing::debug!(
                    stream,
                    conn = sub.conn_id,
                    dropped_bytes = n,
                    "viewer too slow; skipping to the next keyframe"
                );
                sub.wait_key = true;
                Ok(())
            }
        },
    }
}

/// Sends a subscriber what it needs to start: the format's preamble, then for media the
/// metadata, sequence headers and (if wanted) the cached group of pictures.
fn join(
    sub: &mut Subscriber,
    formats: &mut [Format],
    cache: &JoinCache,
    media: bool,
    gop: bool,
) -> Result<(), ()> {
    sub.joined = true;
    let f = &mut formats[sub.format];
    // Once per subscriber, and again if a new publisher changes the stream's kind (a raw
    // broadcast replaced by an FLV one).
    if sub.preamble_sent != Some(media) {
        sub.preamble_sent = Some(media);
        if let Some(enc) = &mut f.encoder {
            match enc.preamble(media).into_result() {
                Ok(ROption::RSome(p)) => {
                    if sub.out.push_media(p, usize::MAX, true).is_err() {
                        return Err(());
                    }
                }
                Ok(ROption::RNone) => {}
                Err(e) => tracing::error!(format = %f.name, error = %e, "encoder preamble failed"),
            }
        }
    }
    if !media {
        return Ok(());
    }
    let headers = [&cache.metadata, &cache.video_header, &cache.audio_header];
    let use_gop = gop && sub.options.join_with_cache && !cache.gop.is_empty();
    sub.wait_key = !use_gop;
    let gop_iter = cache.gop.iter().filter(|_| use_gop);
    for pkt in headers.into_iter().flatten().chain(gop_iter) {
        if !(pkt.kind == MediaKind::Audio && !sub.options.audio
            || pkt.kind == MediaKind::Video && !sub.options.video && !pkt.is_sequence_header())
        {
            if let Some(bytes) = encode(f, pkt) {
                if sub.out.push_media(bytes, usize::MAX, true).is_err() {
                    return Err(());
                }
            }
        }
    }
    Ok(())
}

fn update_cache(cache: &mut JoinCache, pkt: &MediaPacket, gop: bool, max_bytes: usize) {
    if pkt.is_metadata() {
        cache.metadata = Some(pkt.clone());
        return;
    }
    if pkt.is_sequence_header() {
        match pkt.kind {
            MediaKind::Video => cache.video_header = Some(pkt.clone()),
            MediaKind::Audio => cache.audio_header = Some(pkt.clone()),
            _ => {}
        }
        return;
    }
    if !gop {
        return;
    }
    if pkt.kind == MediaKind::Video && pkt.is_keyframe() {
        cache.gop.clear();
        cache.gop_bytes = 0;
    }
    if cache.gop.is_empty() && !(pkt.kind == MediaKind::Video && pkt.is_keyframe()) {
        // A GOP starts on a keyframe.
        return;
    }
    if cache.gop_bytes + pkt.len() > max_bytes {
        // Too long a GOP to cache whole: late joiners wait for the next keyframe instead.
        cache.gop.clear();
        cache.gop_bytes = 0;
        return;
    }
    cache.gop_bytes += pkt.len();
    cache.gop.push(pkt.clone());
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
