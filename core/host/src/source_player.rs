//! Plays a source (e.g. an FLV file from the VOD plugin) to one subscriber.
//!
//! Each player gets a thread of its own (sources read files, which blocks). The thread reads
//! packets from the source, paces them by their timestamps in real time (sending up to the
//! player's buffer length ahead, capped), encodes them with the subscriber's format and queues
//! them on the subscriber's connection. Pause, seek and buffer-length changes arrive through a
//! channel; dropping the handle stops the thread. Players of the same file share nothing but the
//! file.

use std::{
    sync::{
        mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError},
        Arc,
    },
    time::{Duration, Instant},
};

use abi_stable::std_types::ROption;
use fstream_abi::{
    EncoderBox, MediaKind, MediaPacket, SourceBox, SourceError, SourceError_NE, SourceFactoryBox,
    SourceOpen, SubscribeOptions, SubscriptionControl, SubscriptionStatus, RAW_FORMAT,
};

use crate::{
    hub::{EventTx, Peer},
    outq::Outq,
};

/// How far ahead of real time a player is fed at most, whatever buffer length it asks for
/// (rtmpdump asks for ten hours).
pub const MAX_AHEAD_MS: u64 = 5_000;
/// Packets due this close to now are sent with the current batch.
const BATCH_SLACK: Duration = Duration::from_millis(40);
/// The buffer length assumed until the player says one.
const DEFAULT_BUFFER_MS: u64 = 1_000;

/// The connection's end of a playing source.
pub struct SourcePlayer {
    control: Sender<SubscriptionControl>,
}

impl SourcePlayer {
    pub fn control(&self, c: SubscriptionControl) {
        let _ = self.control.send(c);
    }
}

/// A source plugin and the app it serves.
pub struct SourceEntry {
    pub plugin: String,
    pub app: String,
    pub factory: SourceFactoryBox,
}

/// Starts a thread that opens `open.name` from `source` and plays it to `peer` as
/// `subscription`.
pub fn start(
    source: Arc<SourceEntry>,
    open: SourceOpen,
    peer: &Peer,
    subscription: u32,
    options: SubscribeOptions,
    queue_limit: usize,
) -> SourcePlayer {
    let (tx, rx) = channel();
    let peer = peer.clone();
    let span = tracing::Span::current();
    let spawned = std::thread::Builder::new()
        .name("source-player".into())
        .spawn(move || {
            let _enter = span.enter();
            if let Some(mut player) =
                open_player(&source, &open, &peer, subscription, &options, queue_limit)
            {
                player.run(rx, options.start_ms);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start a source player thread");
    }
    SourcePlayer { control: tx }
}

fn open_player(
    entry: &SourceEntry,
    open: &SourceOpen,
    peer: &Peer,
    subscription: u32,
    options: &SubscribeOptions,
    queue_limit: usize,
) -> Option<Player> {
    let events = peer.events.clone();
    let plugin = entry.plugin.as_str();
    let source = match entry.factory.open(open).into_result() {
        Ok(s) => s,
        Err(e) => return open_failed(&events, subscription, plugin, &open.name, e),
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
                return None;
            }
        }
    };
    Some(Player {
        source,
        encoder,
        out: peer.out.clone(),
        events,
        subscription,
        audio: options.audio,
        video: options.video,
        buffer_ms: DEFAULT_BUFFER_MS,
        queue_limit,
        name: format!("{}/{}", open.app, open.name),
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
    source: SourceBox,
    encoder: Option<EncoderBox>,
    out: Arc<Outq>,
    events: EventTx,
    subscription: u32,
    audio: bool,
    video: bool,
    buffer_ms: u64,
    queue_limit: usize,
    name: String,
}

/// Where real time and stream time line up.
struct Clock {
    wall: Instant,
    ts: u64,
}

/// What a control asks of the playing loop.
enum Flow {
    Continue,
    Stop,
    /// The source moved (seek): forget the clock and any packet read before.
    Reset,
}

impl Player {
    fn run(&mut self, rx: Receiver<SubscriptionControl>, start_ms: u64) {
        let duration = self.source.duration_ms();
        send(
            &self.events,
            self.subscription,
            SubscriptionStatus::SourceOpened {
                duration_ms: duration,
            },
        );
        if start_ms > 0 {
            if let Some(pos) = self.seek(start_ms) {
                send(
                    &self.events,
                    self.subscription,
                    SubscriptionStatus::Seeked { position_ms: pos },
                );
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
        let mut clock: Option<Clock> = None;
        let mut paused = false;
        let mut pending: Option<MediaPacket> = None;
        loop {
            // Controls first; while paused, wait for them. A resume re-bases the clock.
            loop {
                let c = if paused {
                    match rx.recv() {
                        Ok(c) => c,
                        Err(_) => return,
                    }
                } else {
                    match rx.try_recv() {
                        Ok(c) => c,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return,
                    }
                };
                let was_paused = paused;
                match self.control(c, &mut paused) {
                    Flow::Stop => return,
                    Flow::Reset => {
                        clock = None;
                        pending = None;
                    }
                    Flow::Continue => {}
                }
                if was_paused && !paused {
                    clock = None;
                }
            }
            if self.out.is_ended() {
                return;
            }
            let pkt = match pending.take() {
                Some(p) => p,
                None => match self.source.next_packet().into_result() {
                    Ok(ROption::RSome(p)) => p,
                    Ok(ROption::RNone) => {
                        tracing::debug!(stream = %self.name, "source ended");
                        send(&self.events, self.subscription, SubscriptionStatus::Ended);
                        return;
                    }
                    Err(e) => {
                        tracing::error!(stream = %self.name, error = %e, "source failed");
                        send(&self.events, self.subscription, SubscriptionStatus::Ended);
                        return;
                    }
                },
            };
            let ts = pkt.timestamp as u64;
            let c = clock.get_or_insert(Clock {
                wall: Instant::now(),
                ts,
            });
            // Due when its timestamp, less the read-ahead, is reached on the wall clock; held
            // back too while the viewer's queue is over half its bound.
            let ahead = self.buffer_ms.min(MAX_AHEAD_MS);
            let due = c.wall + Duration::from_millis(ts.saturating_sub(c.ts).saturating_sub(ahead));
            // Packets due within the batching slack go out together: one wake-up per slack
            // instead of one per tag.
            let wait = due.saturating_duration_since(Instant::now() + BATCH_SLACK);
            let backlog = self.out.queued_bytes() > self.queue_limit / 2;
            if wait.is_zero() && !backlog {
                self.deliver(&pkt);
                continue;
            }
            pending = Some(pkt);
            let step = if backlog {
                Duration::from_millis(20)
            } else {
                wait
            };
            match rx.recv_timeout(step) {
                Ok(ctl) => {
                    let was_paused = paused;
                    match self.control(ctl, &mut paused) {
                        Flow::Stop => return,
                        Flow::Reset => {
                            clock = None;
                            pending = None;
                        }
                        Flow::Continue => {}
                    }
                    if was_paused && !paused {
                        clock = None;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn control(&mut self, c: SubscriptionControl, paused: &mut bool) -> Flow {
        match c {
            SubscriptionControl::Pause(p) => {
                *paused = p;
                Flow::Continue
            }
            SubscriptionControl::Seek(ms) => {
                self.out.drop_media();
                match self.seek(ms) {
                    Some(pos) => {
                        send(
                            &self.events,
                            self.subscription,
                            SubscriptionStatus::Seeked { position_ms: pos },
                        );
                        Flow::Reset
                    }
                    None => Flow::Stop,
                }
            }
            SubscriptionControl::BufferLength(ms) => {
                self.buffer_ms = ms as u64;
                Flow::Continue
            }
            SubscriptionControl::ReceiveAudio(on) => {
                self.audio = on;
                Flow::Continue
            }
            SubscriptionControl::ReceiveVideo(on) => {
                self.video = on;
                Flow::Continue
            }
            _ => Flow::Continue,
        }
    }

    fn seek(&mut self, ms: u64) -> Option<u64> {
        match self.source.seek(ms).into_result() {
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
