//! Plays a source (e.g. an FLV file from the VOD plugin) to one subscriber.
//!
//! Each player is a task on the runtime. It paces packets by their timestamps in real time
//! (sending up to the player's buffer length ahead, capped) with the runtime's timers, encodes
//! them with the subscriber's format and queues them on the subscriber's connection. Every call
//! into the source plugin (open, read, seek) may block on a disk, so it runs on the host's
//! [`ReadPool`]; a player reads a small batch of packets at a time and holds no more. Pause,
//! seek and buffer-length changes are coalesced into one pending set (the last of each kind
//! wins), so a client sending controls in a loop cannot grow anything. Dropping the handle
//! stops the task. Players of the same file share nothing but the file.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use abi_stable::std_types::ROption;
use fstream_abi::{
    EncoderBox, MediaKind, MediaPacket, SourceBox, SourceError, SourceError_NE, SourceFactoryBox,
    SourceOpen, SubscribeOptions, SubscriptionControl, SubscriptionStatus, RAW_FORMAT,
};
use tokio::{sync::Notify, time::Instant};

use crate::{
    hub::{EventTx, Peer},
    outq::Outq,
    read_pool::{PlayerSlot, ReadPool},
};

/// How far ahead of real time a player is fed at most, whatever buffer length it asks for
/// (rtmpdump asks for ten hours).
pub const MAX_AHEAD_MS: u64 = 5_000;
/// Packets due this close to now are sent with the current batch.
const BATCH_SLACK: Duration = Duration::from_millis(40);
/// The buffer length assumed until the player says one.
const DEFAULT_BUFFER_MS: u64 = 1_000;
/// A read from the source stops after this many bytes, packets, or this span of stream time
/// (whichever comes first): what a player holds besides its connection's queue.
const READ_BATCH_BYTES: usize = 8 * 1024;
const READ_BATCH_PACKETS: usize = 64;
const READ_BATCH_SPAN_MS: u32 = 250;
/// A player queues at most this much on its connection before it waits for the socket: the
/// read-ahead a player asks for (seconds of media at its start) goes out at the socket's pace
/// instead of sitting in the server's memory.
const QUEUE_HIGH: usize = 16 * 1024;
/// While the viewer's queue is over that, the player looks again this often.
const BACKLOG_RECHECK: Duration = Duration::from_millis(20);

/// Controls not yet applied: the last of each kind.
#[derive(Default)]
struct Pending {
    pause: Option<bool>,
    seek: Option<u64>,
    buffer_ms: Option<u64>,
    audio: Option<bool>,
    video: Option<bool>,
    stop: bool,
}

#[derive(Default)]
struct Controls {
    pending: Mutex<Pending>,
    changed: Notify,
}

impl Controls {
    fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn stopped(&self) -> bool {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).stop
    }

    /// Resolves once the handle is dropped.
    async fn stop(&self) {
        while !self.stopped() {
            self.changed.notified().await;
        }
        // Whoever waits next (the playing loop) looks at the controls again.
        self.changed.notify_one();
    }

    /// Runs `f` on the pool unless the player stops first: a stopped player leaves at once,
    /// and a call already running finishes on its thread, where its result is dropped.
    async fn call<T: Send + 'static>(
        &self,
        pool: &ReadPool,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        tokio::select! {
            r = pool.run(f) => r.ok(),
            _ = self.stop() => None,
        }
    }
}

/// The connection's end of a playing source. It holds the player's place in the bound of
/// players: a session that stops one play and starts another (RTMP's probe, then the real
/// subscription) finds the place free at once, and the stopped task leaves at its next step.
pub struct SourcePlayer {
    controls: Arc<Controls>,
    _slot: Option<PlayerSlot>,
}

impl SourcePlayer {
    pub fn control(&self, c: SubscriptionControl) {
        {
            let mut p = self
                .controls
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match c {
                SubscriptionControl::Pause(on) => p.pause = Some(on),
                SubscriptionControl::Seek(ms) => p.seek = Some(ms),
                SubscriptionControl::BufferLength(ms) => p.buffer_ms = Some(ms as u64),
                SubscriptionControl::ReceiveAudio(on) => p.audio = Some(on),
                SubscriptionControl::ReceiveVideo(on) => p.video = Some(on),
                _ => return,
            }
        }
        self.controls.changed.notify_one();
    }
}

impl Drop for SourcePlayer {
    fn drop(&mut self) {
        self.controls
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stop = true;
        self.controls.changed.notify_one();
    }
}

/// A source plugin and the app it serves.
pub struct SourceEntry {
    pub plugin: String,
    pub app: String,
    pub factory: SourceFactoryBox,
}

/// Starts a task that opens `open.name` from `source` (on `pool`) and plays it to `peer` as
/// `subscription`. Past the pool's bound of players the subscription is told NotFound.
pub fn start(
    source: Arc<SourceEntry>,
    open: SourceOpen,
    peer: &Peer,
    subscription: u32,
    options: SubscribeOptions,
    queue_limit: usize,
    pool: &Arc<ReadPool>,
) -> SourcePlayer {
    let controls = Arc::new(Controls::default());
    let slot = pool.admit();
    let admitted = slot.is_some();
    let player = SourcePlayer {
        controls: controls.clone(),
        _slot: slot,
    };
    if !admitted {
        tracing::warn!(
            players = pool.players(),
            name = %open.name,
            "too many recorded-stream players (max_source_players); play refused"
        );
        send(&peer.events, subscription, SubscriptionStatus::NotFound);
        return player;
    }
    let peer = peer.clone();
    let pool = pool.clone();
    let span = tracing::Span::current();
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let start_ms = options.start_ms;
            if let Some(player) = open_player(
                source,
                open,
                &peer,
                subscription,
                &options,
                queue_limit,
                pool,
                controls,
            )
            .await
            {
                player.run(start_ms).await;
            }
        },
        span,
    ));
    player
}

#[allow(clippy::too_many_arguments)]
async fn open_player(
    entry: Arc<SourceEntry>,
    open: SourceOpen,
    peer: &Peer,
    subscription: u32,
    options: &SubscribeOptions,
    queue_limit: usize,
    pool: Arc<ReadPool>,
    controls: Arc<Controls>,
) -> Option<Player> {
    let events = peer.events.clone();
    let name = format!("{}/{}", open.app, open.name);
    let opened = {
        let entry = entry.clone();
        controls
            .call(&pool, move || {
                let opened = entry.factory.open(&open).into_result();
                opened
                    .map(|s| {
                        let duration = s.duration_ms();
                        (s, duration)
                    })
                    .map_err(|e| (e, open.name.to_string()))
            })
            .await
    };
    let plugin = entry.plugin.as_str();
    let (source, duration_ms) = match opened {
        Some(Ok(s)) => s,
        Some(Err((e, file))) => return open_failed(&events, subscription, plugin, &file, e),
        None if controls.stopped() => return None,
        None => {
            tracing::error!(plugin, stream = %name, "source failed to open");
            send(&events, subscription, SubscriptionStatus::NotFound);
            return None;
        }
    };
    let encoder = if options.format.as_str() == RAW_FORMAT {
        None
    } else {
        match peer
            .frontend
            .factory
            .encoder(options.format.as_str().into())
            .into_result()
        {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::error!(format = %options.format, error = %e, "no encoder for this format");
                send(&events, subscription, SubscriptionStatus::NotFound);
                pool.run(move || drop(source)).await.ok();
                return None;
            }
        }
    };
    tracing::info!(stream = %name, players = pool.players(), "recorded stream playing");
    Some(Player {
        source: Some(source),
        duration_ms,
        encoder,
        out: peer.out.clone(),
        events,
        subscription,
        audio: options.audio,
        video: options.video,
        buffer_ms: DEFAULT_BUFFER_MS,
        queue_limit,
        name,
        pool,
        controls,
        read: VecDeque::new(),
        eof: false,
    })
}

fn send(events: &EventTx, subscription: u32, status: SubscriptionStatus) {
    crate::hub::status(events, subscription, status)
}

/// A source that could not open: the player is told there is nothing to play.
fn open_failed(
    events: &EventTx,
    subscription: u32,
    plugin: &str,
    name: &str,
    e: SourceError_NE,
) -> Option<Player> {
    match e.as_enum() {
        Ok(SourceError::NotFound(why)) => {
            tracing::warn!(plugin, name, reason = %why, "recorded stream not found")
        }
        Ok(SourceError::Failed(e)) => {
            tracing::error!(plugin, name, error = %e, "source failed to open")
        }
        _ => tracing::error!(plugin, name, "source failed to open"),
    }
    send(events, subscription, SubscriptionStatus::NotFound);
    None
}

struct Player {
    /// `None` only while a call on the pool holds it.
    source: Option<SourceBox>,
    duration_ms: u64,
    encoder: Option<EncoderBox>,
    out: Arc<Outq>,
    events: EventTx,
    subscription: u32,
    audio: bool,
    video: bool,
    buffer_ms: u64,
    queue_limit: usize,
    name: String,
    pool: Arc<ReadPool>,
    controls: Arc<Controls>,
    /// Packets read and not yet sent (one batch at most).
    read: VecDeque<MediaPacket>,
    /// The source said it has no more.
    eof: bool,
}

/// Where real time and stream time line up.
struct Clock {
    wall: Instant,
    ts: u64,
}

/// What the source gave for one batch.
struct Batch {
    packets: Vec<MediaPacket>,
    end: Option<Result<(), String>>,
}

impl Player {
    async fn run(mut self, start_ms: u64) {
        send(
            &self.events,
            self.subscription,
            SubscriptionStatus::SourceOpened {
                duration_ms: self.duration_ms,
            },
        );
        if start_ms > 0 {
            match self.seek(start_ms).await {
                Some(pos) => send(
                    &self.events,
                    self.subscription,
                    SubscriptionStatus::Seeked { position_ms: pos },
                ),
                None => return self.close().await,
            }
        }
        send(
            &self.events,
            self.subscription,
            SubscriptionStatus::PublisherStarted { media: true },
        );
        if let Some(enc) = &mut self.encoder {
            if let Ok(ROption::RSome(p)) = enc.preamble(true).into_result() {
                let _ = self.out.push_essential(p, usize::MAX, true);
                self.out.flush(true);
            }
        }
        let mut ended = self.out.ended();
        let mut clock: Option<Clock> = None;
        let mut paused = false;
        loop {
            let c = self.controls.take();
            if c.stop {
                break;
            }
            if let Some(ms) = c.seek {
                self.out.drop_media();
                self.read.clear();
                self.eof = false;
                match self.seek(ms).await {
                    Some(pos) => send(
                        &self.events,
                        self.subscription,
                        SubscriptionStatus::Seeked { position_ms: pos },
                    ),
                    None => break,
                }
                clock = None;
            }
            if let Some(p) = c.pause {
                // A resume re-bases the clock.
                if paused && !p {
                    clock = None;
                }
                paused = p;
            }
            if let Some(ms) = c.buffer_ms {
                self.buffer_ms = ms;
            }
            if let Some(on) = c.audio {
                self.audio = on;
            }
            if let Some(on) = c.video {
                self.video = on;
            }
            if self.out.is_ended() {
                break;
            }
            if paused {
                tokio::select! {
                    _ = self.controls.changed.notified() => {}
                    _ = ended.changed() => {}
                }
                continue;
            }
            let Some(pkt) = self.read.front() else {
                if self.eof {
                    tracing::debug!(stream = %self.name, "source ended");
                    send(&self.events, self.subscription, SubscriptionStatus::Ended);
                    break;
                }
                if !self.read_batch().await {
                    break;
                }
                continue;
            };
            let ts = pkt.timestamp as u64;
            let c = clock.get_or_insert(Clock {
                wall: Instant::now(),
                ts,
            });
            // Due when its timestamp, less the read-ahead, is reached on the wall clock; held
            // back too while the viewer's queue is over QUEUE_HIGH (or half its bound) after
            // writing what the socket takes now.
            let ahead = self.buffer_ms.min(MAX_AHEAD_MS);
            let due = c.wall + Duration::from_millis(ts.saturating_sub(c.ts).saturating_sub(ahead));
            // Packets due within the batching slack go out together, and the player sleeps
            // until the next one is due (not due less the slack): one wake-up and one write per
            // slack instead of one per tag.
            let now = Instant::now();
            let wait = due.saturating_duration_since(now + BATCH_SLACK);
            let high = QUEUE_HIGH.min(self.queue_limit / 2);
            let mut backlog = self.out.queued_bytes() > high;
            if backlog && wait.is_zero() {
                self.out.flush(true);
                backlog = self.out.queued_bytes() > high;
            }
            if wait.is_zero() && !backlog {
                if let Some(pkt) = self.read.pop_front() {
                    self.deliver(&pkt);
                }
                continue;
            }
            let step = if backlog {
                BACKLOG_RECHECK
            } else {
                due.saturating_duration_since(now)
            };
            // What this wake-up queued goes out now rather than after the gathering window:
            // the player already sends in batches (BATCH_SLACK), so this is about as many
            // writes, and nothing waits in memory for the flusher.
            if !backlog && self.out.queued_bytes() > 0 {
                self.out.flush(true);
            }
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = self.controls.changed.notified() => {}
                _ = ended.changed() => {}
            }
        }
        self.close().await;
    }

    /// The source is closed on the pool: dropping it may touch the disk too.
    async fn close(&mut self) {
        if let Some(source) = self.source.take() {
            let _ = self.pool.run(move || drop(source)).await;
        }
    }

    /// Runs `f` with the source on the pool and puts the source back. `None`: the player
    /// stops (its handle was dropped, or the call panicked: then it is told the stream ended).
    async fn with_source<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut SourceBox) -> T + Send + 'static,
    ) -> Option<T> {
        let mut source = self.source.take()?;
        let called = self
            .controls
            .call(&self.pool, move || {
                let r = f(&mut source);
                (source, r)
            })
            .await;
        match called {
            Some((source, r)) => {
                self.source = Some(source);
                Some(r)
            }
            None => {
                if !self.controls.stopped() {
                    send(&self.events, self.subscription, SubscriptionStatus::Ended);
                }
                None
            }
        }
    }

    /// Reads the next batch into `read`. False: the player must stop (the source is gone).
    async fn read_batch(&mut self) -> bool {
        let Some(batch) = self.with_source(read_batch).await else {
            return false;
        };
        self.read.extend(batch.packets);
        match batch.end {
            None => {}
            Some(Ok(())) => self.eof = true,
            Some(Err(e)) => {
                tracing::error!(stream = %self.name, error = %e, "source failed");
                // What was read plays out; then the player is told the stream ended.
                self.eof = true;
            }
        }
        true
    }

    async fn seek(&mut self, ms: u64) -> Option<u64> {
        let r = self
            .with_source(move |s| s.seek(ms).into_result().map_err(|e| e.to_string()))
            .await?;
        match r {
            Ok(pos) => Some(pos),
            Err(e) => {
                tracing::error!(stream = %self.name, error = %e, "seek failed");
                send(&self.events, self.subscription, SubscriptionStatus::Ended);
                None
            }
        }
    }

    fn deliver(&mut self, pkt: &MediaPacket) {
        let wanted = match pkt.kind {
            MediaKind::Audio => self.audio || pkt.is_sequence_header(),
            MediaKind::Video => self.video || pkt.is_sequence_header(),
            _ => true,
        };
        if !wanted {
            return;
        }
        let bytes = match &mut self.encoder {
            None => Some(pkt.payload.clone()),
            Some(enc) => match enc.encode(pkt).into_result() {
                Ok(p) => p.into_option(),
                Err(e) => {
                    tracing::error!(stream = %self.name, error = %e, "encoder failed; packet skipped");
                    None
                }
            },
        };
        if let Some(b) = bytes {
            // The pacing above keeps the queue short; a full queue here means a stalled viewer.
            if let Ok(true) = self.out.push_media(b, usize::MAX, false) {
                self.out.flush(true);
            }
        }
    }
}

/// Reads packets from `source` until a batch is full (bytes, packets or span of stream time)
/// or the source ends; runs on the read pool.
fn read_batch(source: &mut SourceBox) -> Batch {
    let mut batch = Batch {
        packets: Vec::new(),
        end: None,
    };
    let mut bytes = 0;
    let mut first_ts = None;
    while bytes < READ_BATCH_BYTES && batch.packets.len() < READ_BATCH_PACKETS {
        match source.next_packet().into_result() {
            Ok(ROption::RSome(p)) => {
                bytes += p.payload.len();
                let first = *first_ts.get_or_insert(p.timestamp);
                let span = p.timestamp.wrapping_sub(first);
                batch.packets.push(p);
                if span >= READ_BATCH_SPAN_MS {
                    break;
                }
            }
            Ok(ROption::RNone) => {
                batch.end = Some(Ok(()));
                break;
            }
            Err(e) => {
                batch.end = Some(Err(e.to_string()));
                break;
            }
        }
    }
    batch
}
