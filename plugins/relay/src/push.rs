//! One destination of one live stream: a sans-IO state machine that the host drives over a
//! socket it owns, as quinn-proto's `Connection` is driven by its endpoint.
//!
//! ```text
//!            stream_started                connected + NetStream.Publish.Start
//!   Idle ────────────────────▶ Connecting ───────────────────────────────────▶ Publishing
//!    ▲                          ▲      │ failure / closed / refusal                │
//!    │ stream_ended (any state) │      ▼                                           │
//!    │                          └── Backoff(until) ◀──────────────────────────────┘
//! ```
//!
//! Inputs: the stream's life ([`Push::stream_started`], [`Push::media`],
//! [`Push::stream_ended`]), the socket's ([`Push::connected`], [`Push::bytes_in`],
//! [`Push::written`], [`Push::closed`]) and time ([`Push::tick`] at [`Push::next_timeout`]).
//! Outputs: [`Action`]s for the host to carry out in order ([`Push::poll_action`]), events
//! worth a log line ([`Push::poll_event`]; they show the destination redacted), and
//! [`Push::stats`].
//!
//! Each socket has its own [`ConnId`]: input about a connection the push already gave up on
//! is ignored, so the host never has to tell an old socket's EOF from the new one's. At most
//! one connection is in use at a time.
//!
//! What the push guarantees:
//! - It never holds the stream back: `media` returns at once. Bytes handed to the host and not
//!   yet reported [`Push::written`], with the client's own queue, stay within `queue_bytes`
//!   for media; past it frames are dropped (counted) up to the next keyframe, and only
//!   essentials (sequence headers, metadata, protocol commands) may go beyond, by their size.
//! - Each connection starts with the stream's metadata and sequence headers, then waits for a
//!   keyframe (audio-only streams: the next audio frame), so the far side can decode at once.
//! - The stream's end reaches the destination as an unpublish (FCUnpublish, deleteStream) and
//!   then a flushing close, not as a timeout.
//! - Reconnects wait `retry_ms`, doubling per failure up to `max_retry_ms`; a refusal (bad
//!   name, rejected connect) waits `max_retry_ms` at once: asking again soon gets the same no.

use std::collections::VecDeque;

use bytes::Bytes;
use fstream_media::flv::TagType;
use fstream_rtmp_client::{ClientConfig, ClientError, ClientEvent, RtmpClient, SendError};
use rand::{rngs::StdRng, SeedableRng};

use crate::settings::{Destination, Settings};

/// A connection publishing this long counts as a success: the next failure starts the
/// backoff again from `retry_ms`. (Resetting at `NetStream.Publish.Start` would let a
/// destination that accepts and drops at once be hammered every `retry_ms`.)
pub const STABLE_MS: u64 = 10_000;

/// How long the connection and each RTMP phase may take before the attempt fails.
pub const PHASE_TIMEOUT_MS: u64 = 10_000;

/// The bounds and timings of one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    pub retry_ms: u64,
    pub max_retry_ms: u64,
    /// Bytes of media that may wait (handed to the host and not written, or in the client).
    pub queue_bytes: usize,
    /// A connection whose socket takes nothing of what waits for this long is given up (a
    /// destination that stopped reading, a path that went black).
    pub stall_ms: u64,
    /// The RTMP client session's own settings; its `max_output_bytes` is set to
    /// `queue_bytes` by [`Push::new`].
    pub client: ClientConfig,
}

impl PushConfig {
    pub fn from_settings(s: &Settings) -> PushConfig {
        PushConfig {
            retry_ms: s.retry_ms,
            max_retry_ms: s.max_retry_ms.max(s.retry_ms),
            queue_bytes: s.queue_bytes,
            stall_ms: s.stall_ms,
            client: ClientConfig {
                phase_timeout_ms: PHASE_TIMEOUT_MS,
                ..ClientConfig::default()
            },
        }
    }
}

/// Which of its sockets an input or an action is about.
pub type ConnId = u64;

/// What the host is asked to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to `addr` (`HOST:PORT`), wrapped in TLS when `tls`, with
    /// `server_name` (the host part) for SNI and the certificate check. Report
    /// [`Push::connected`] or [`Push::closed`].
    Connect {
        conn: ConnId,
        addr: String,
        tls: bool,
        server_name: String,
    },
    /// Write these bytes after those of earlier writes; report [`Push::written`] as the
    /// socket takes them.
    Write { conn: ConnId, bytes: Vec<u8> },
    /// Close the socket. With `flush`, after writing what was handed over (the unpublish at
    /// the stream's end); without, at once (a failed or abandoned connection).
    Close { conn: ConnId, flush: bool },
}

/// Where a push is, for stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// The stream is not live.
    Idle,
    /// Opening the socket, or the RTMP handshake, connect, createStream, publish.
    Connecting,
    Publishing,
    /// Waiting to reconnect.
    Backoff,
}

impl PushState {
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::Idle => "idle",
            PushState::Connecting => "connecting",
            PushState::Publishing => "publishing",
            PushState::Backoff => "backoff",
        }
    }
}

/// Counters of one push, over its whole life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushStats {
    /// Bytes handed to the host to write.
    pub bytes_out: u64,
    /// Of those, reported written.
    pub bytes_written: u64,
    /// Connections opened.
    pub connects: u64,
    /// Connections opened after a failure while the stream stayed live.
    pub reconnects: u64,
    /// Attempts and connections that failed.
    pub failures: u64,
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames not sent while publishing: the destination was too slow, or the connection
    /// waited for a keyframe.
    pub dropped_frames: u64,
}

/// Why a connection ended before the stream did.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The socket closed (or could not be opened) before it was connected.
    #[error("could not connect")]
    ConnectFailed,
    /// The RTMP session failed: refused, broke the protocol, timed out, or the socket closed.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The socket took none of the `queued` bytes waiting for `after_ms`.
    #[error("the destination took nothing of {queued} bytes for {after_ms} ms")]
    Stalled { queued: usize, after_ms: u64 },
    /// What must go out (headers, protocol replies) would pass the bound of what may wait.
    #[error("{queued} bytes waiting; the limit is {limit}")]
    Overflow { queued: usize, limit: usize },
}

impl PushError {
    pub fn is_refusal(&self) -> bool {
        matches!(self, PushError::Client(e) if e.is_refusal())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            PushError::ConnectFailed => "connect_failed",
            PushError::Client(e) => e.kind(),
            PushError::Stalled { .. } => "stalled",
            PushError::Overflow { .. } => "overflow",
        }
    }
}

/// Something worth a log line. `Display` gives it with the destination redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct PushEvent {
    /// The destination, redacted.
    pub dest: String,
    pub kind: PushEventKind,
}

#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PushEventKind {
    Connecting {
        conn: ConnId,
        attempt: u32,
    },
    Publishing {
        conn: ConnId,
    },
    /// The connection failed; the next attempt is in `retry_in_ms`. `error` carries the
    /// server's words as they came; `reason` is its text with the destination's secrets
    /// hidden (a server may quote the stream name it refused, key and all): log that.
    Failed {
        error: PushError,
        reason: String,
        retry_in_ms: u64,
    },
    /// The destination fell behind: frames are dropped up to the next keyframe.
    Dropping {
        queued: usize,
    },
    /// Sending again from a keyframe after `dropped` frames.
    Resumed {
        dropped: u64,
    },
    /// The stream ended: the unpublish went out (when publishing) and the socket is closed.
    Ended,
}

impl std::fmt::Display for PushEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.dest;
        match &self.kind {
            PushEventKind::Connecting { attempt, .. } => {
                write!(f, "push to {d}: connecting (attempt {attempt})")
            }
            PushEventKind::Publishing { .. } => write!(f, "push to {d}: publishing"),
            PushEventKind::Failed {
                error,
                reason,
                retry_in_ms,
            } => write!(
                f,
                "push to {d}: {reason} ({}); retrying in {retry_in_ms} ms",
                error.kind()
            ),
            PushEventKind::Dropping { queued } => write!(
                f,
                "push to {d}: {queued} bytes waiting; dropping frames up to the next keyframe"
            ),
            PushEventKind::Resumed { dropped } => {
                write!(
                    f,
                    "push to {d}: resumed at a keyframe after {dropped} dropped frames"
                )
            }
            PushEventKind::Ended => write!(f, "push to {d}: the stream ended; unpublished"),
        }
    }
}

/// One unit of the pushed stream, as FLV tags carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub kind: TagType,
    /// Milliseconds on the stream's timeline.
    pub timestamp: u32,
    /// The FLV tag body (for script tags: `onMetaData` and its array).
    pub data: Bytes,
    /// A point where a decoder can start (a video keyframe).
    pub keyframe: bool,
    /// A decoder configuration (AVC/HEVC/AV1 sequence header, AAC AudioSpecificConfig) or
    /// metadata: kept and sent again at every connection.
    pub header: bool,
}

impl Tag {
    /// A tag that is neither a keyframe nor a header, except `onMetaData`, which is a header.
    pub fn new(kind: TagType, timestamp: u32, data: impl Into<Bytes>) -> Tag {
        let data = data.into();
        Tag {
            header: kind == TagType::Script && is_metadata(&data),
            kind,
            timestamp,
            data,
            keyframe: false,
        }
    }

    pub fn keyframe(mut self) -> Tag {
        self.keyframe = true;
        self
    }

    pub fn header(mut self) -> Tag {
        self.header = true;
        self
    }
}

/// Whether a script tag's body is `onMetaData` (possibly behind `@setDataFrame`), the one
/// script tag kept for later connections; others (`onCuePoint`, ...) are passed on as they come.
fn is_metadata(body: &[u8]) -> bool {
    fn amf0_string(s: &str) -> Vec<u8> {
        let mut v = vec![2, 0, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }
    let set = amf0_string("@setDataFrame");
    let body = body.strip_prefix(set.as_slice()).unwrap_or(body);
    body.starts_with(&amf0_string("onMetaData"))
}

/// The stream's current metadata and sequence headers: one of each kind, the latest.
#[derive(Debug, Default, Clone)]
struct Headers {
    metadata: Option<Tag>,
    video: Option<Tag>,
    audio: Option<Tag>,
}

impl Headers {
    fn set(&mut self, tag: Tag) {
        let slot = match tag.kind {
            TagType::Script => &mut self.metadata,
            TagType::Video => &mut self.video,
            TagType::Audio => &mut self.audio,
        };
        *slot = Some(tag);
    }

    fn iter(&self) -> impl Iterator<Item = &Tag> {
        [&self.metadata, &self.video, &self.audio]
            .into_iter()
            .flatten()
    }

    /// What they take on the wire, about.
    fn bytes(&self) -> usize {
        self.iter().map(|t| encoded_len(t.data.len(), 128)).sum()
    }
}

/// An upper bound of a message's chunked size (as the client counts it: a full header, then
/// a basic header and an extended timestamp per further chunk, and `@setDataFrame`).
fn encoded_len(len: usize, chunk_size: usize) -> usize {
    len + 32 + len.div_ceil(chunk_size.max(1)) * 7
}

#[derive(Debug)]
enum State {
    Idle,
    /// A connection in progress: `up` once the socket is connected.
    Connecting {
        conn: ConnId,
        client: Box<RtmpClient>,
        up: bool,
    },
    Publishing {
        conn: ConnId,
        client: Box<RtmpClient>,
        since: u64,
    },
    Backoff {
        until: u64,
    },
}

/// One destination's push. See the module documentation.
#[derive(Debug)]
pub struct Push {
    dest: Destination,
    config: PushConfig,
    state: State,
    live: bool,
    headers: Headers,
    /// Whether this publication has video (then only a video keyframe starts a connection).
    has_video: bool,
    /// Frames are skipped until the next keyframe.
    wait_key: bool,
    /// The headers must go out again before the next keyframe (one did not fit).
    headers_pending: bool,
    /// Frames dropped since the last keyframe sent.
    dropping: u64,
    /// Those drops began because the destination fell behind (a `Dropping` event went out),
    /// not because a new connection waits for its first keyframe.
    slow: bool,
    /// The latest timestamp of the stream: resent headers carry it, so the far side's
    /// timeline never goes back.
    last_ts: u32,
    /// Failures since the last stable connection.
    failures: u32,
    /// Attempts in this live period.
    attempts: u32,
    /// Bytes handed out in `Write`s of the current connection and not reported written.
    in_flight: usize,
    /// The connection closing after the stream's end: its writes still count as written.
    flushing: Option<ConnId>,
    /// The latest time any input brought.
    now_ms: u64,
    /// Since when the socket has taken nothing of what waits (while anything waits).
    stalled_since: u64,
    next_conn: ConnId,
    rng: StdRng,
    actions: VecDeque<Action>,
    events: VecDeque<PushEvent>,
    stats: PushStats,
}

impl Push {
    /// A push to `dest`, idle until the stream starts. `seed` feeds the handshake's random
    /// bytes (the host's RNG draws it; tests fix it).
    pub fn new(dest: Destination, mut config: PushConfig, seed: u64) -> Push {
        config.client.max_output_bytes = config.queue_bytes;
        config.max_retry_ms = config.max_retry_ms.max(config.retry_ms);
        Push {
            dest,
            config,
            state: State::Idle,
            live: false,
            headers: Headers::default(),
            has_video: false,
            wait_key: true,
            headers_pending: false,
            dropping: 0,
            slow: false,
            last_ts: 0,
            failures: 0,
            attempts: 0,
            in_flight: 0,
            flushing: None,
            now_ms: 0,
            stalled_since: 0,
            next_conn: 1,
            rng: StdRng::seed_from_u64(seed),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            stats: PushStats::default(),
        }
    }

    pub fn destination(&self) -> &Destination {
        &self.dest
    }

    pub fn config(&self) -> &PushConfig {
        &self.config
    }

    pub fn state(&self) -> PushState {
        match self.state {
            State::Idle => PushState::Idle,
            State::Connecting { .. } => PushState::Connecting,
            State::Publishing { .. } => PushState::Publishing,
            State::Backoff { .. } => PushState::Backoff,
        }
    }

    pub fn stats(&self) -> &PushStats {
        &self.stats
    }

    /// Bytes handed to the host for the current connection and not yet reported written.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// What may be queued for the host beyond `queue_bytes`: the headers and room for the
    /// protocol's own messages.
    pub fn essentials_bound(&self) -> usize {
        self.headers.bytes() + 8 * 1024
    }

    /// The most bytes ever waiting for the host on a connection: past it the connection fails.
    pub fn hard_limit(&self) -> usize {
        self.config.queue_bytes + self.essentials_bound()
    }

    /// The next action for the host. Drain after every call.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Whether actions wait to be polled.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// The next event worth logging. Drain after every call.
    pub fn poll_event(&mut self) -> Option<PushEvent> {
        self.events.pop_front()
    }

    /// When [`Push::tick`] has something to do.
    pub fn next_timeout(&self) -> Option<u64> {
        let client = match &self.state {
            State::Idle => return None,
            State::Backoff { until } => return Some(*until),
            State::Connecting { client, .. } | State::Publishing { client, .. } => {
                client.next_timeout()
            }
        };
        let stall =
            (self.in_flight > 0).then(|| self.stalled_since.saturating_add(self.config.stall_ms));
        match (client, stall) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time as the inputs bring it, never going back.
    fn clock(&mut self, now_ms: u64) -> u64 {
        self.now_ms = self.now_ms.max(now_ms);
        self.now_ms
    }

    // ------------------------------------------------------------------------------------
    // The stream

    /// The stream went live, with these metadata and sequence headers (possibly none yet:
    /// header tags may also come through [`Push::media`]). A second call while live is a new
    /// publisher of the same stream: its headers replace the old and, while publishing, go
    /// out at once, then the next keyframe.
    pub fn stream_started(&mut self, headers: impl IntoIterator<Item = Tag>, now_ms: u64) {
        let now_ms = self.clock(now_ms);
        self.headers = Headers::default();
        self.has_video = false;
        for h in headers {
            self.last_ts = h.timestamp;
            if h.kind == TagType::Video {
                self.has_video = true;
            }
            self.headers.set(h);
        }
        let was_live = std::mem::replace(&mut self.live, true);
        match self.state {
            State::Idle => {
                self.failures = 0;
                self.attempts = 0;
                self.connect(now_ms);
            }
            State::Publishing { .. } if was_live => {
                self.wait_key = true;
                self.send_headers();
                self.flush();
            }
            _ => {}
        }
    }

    /// A tag of the live stream. Never blocks: it is sent, or dropped and counted.
    pub fn media(&mut self, tag: Tag, now_ms: u64) {
        self.clock(now_ms);
        if !self.live {
            return;
        }
        self.last_ts = tag.timestamp;
        if tag.kind == TagType::Video {
            self.has_video = true;
        }
        if tag.header {
            self.headers.set(tag.clone());
            if matches!(self.state, State::Publishing { .. }) {
                // Essential: sent whatever is queued (its size is bounded by the header's).
                if !self.send(&tag) {
                    self.headers_pending = true;
                }
                self.flush();
            }
            return;
        }
        let State::Publishing { client, .. } = &self.state else {
            return;
        };
        let queued = self.in_flight + client.pending_output();
        let room = encoded_len(tag.data.len(), client.chunk_size() as usize);
        if self.wait_key {
            let starts = if self.has_video {
                tag.kind == TagType::Video && tag.keyframe
            } else {
                tag.kind == TagType::Audio || tag.keyframe
            };
            if !starts {
                self.drop_frame();
                return;
            }
        }
        if queued + room > self.config.queue_bytes {
            if !self.wait_key {
                self.slow = true;
                self.events.push_back(PushEvent {
                    dest: self.dest.to_string(),
                    kind: PushEventKind::Dropping { queued },
                });
            }
            self.wait_key = true;
            self.drop_frame();
            return;
        }
        if self.wait_key && self.headers_pending {
            self.headers_pending = false;
            self.send_headers();
        }
        if self.send(&tag) {
            if self.wait_key && self.slow {
                self.events.push_back(PushEvent {
                    dest: self.dest.to_string(),
                    kind: PushEventKind::Resumed {
                        dropped: self.dropping,
                    },
                });
            }
            self.wait_key = false;
            self.dropping = 0;
            self.slow = false;
            self.stats.frames_sent += 1;
        } else {
            self.wait_key = true;
            self.drop_frame();
        }
        self.flush();
    }

    /// The stream ended: unpublish and close (flushing), or stop trying.
    pub fn stream_ended(&mut self, now_ms: u64) {
        self.clock(now_ms);
        if !std::mem::replace(&mut self.live, false) {
            return;
        }
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle | State::Backoff { .. } => {}
            State::Connecting {
                conn, up: false, ..
            } => self.actions.push_back(Action::Close { conn, flush: false }),
            State::Connecting {
                conn, mut client, ..
            }
            | State::Publishing {
                conn, mut client, ..
            } => {
                client.unpublish();
                while client.poll_event().is_some() {}
                // A few hundred bytes: past the limit or not, they go.
                self.write_unchecked(conn, client.take_output());
                self.actions.push_back(Action::Close { conn, flush: true });
                self.flushing = Some(conn);
                self.events.push_back(PushEvent {
                    dest: self.dest.to_string(),
                    kind: PushEventKind::Ended,
                });
            }
        }
        self.in_flight = 0;
        self.headers = Headers::default();
        self.headers_pending = false;
        self.wait_key = true;
        self.dropping = 0;
    }

    // ------------------------------------------------------------------------------------
    // The socket

    /// The socket of `conn` is connected: the handshake goes out.
    pub fn connected(&mut self, conn: ConnId, now_ms: u64) {
        self.clock(now_ms);
        if let State::Connecting { conn: c, up, .. } = &mut self.state {
            if *c == conn && !*up {
                *up = true;
                self.flush();
            }
        }
    }

    /// Bytes the server sent on `conn`.
    pub fn bytes_in(&mut self, conn: ConnId, data: &[u8], now_ms: u64) {
        let now_ms = self.clock(now_ms);
        if let Some(client) = self.client_of(conn, true) {
            client.bytes(data, now_ms);
            self.after_client(now_ms);
        }
    }

    /// The host wrote `n` more bytes of `conn`'s writes to the socket.
    pub fn written(&mut self, conn: ConnId, n: usize, now_ms: u64) {
        let now_ms = self.clock(now_ms);
        if self.current_conn() == Some(conn) {
            let n = n.min(self.in_flight);
            self.in_flight -= n;
            self.stats.bytes_written += n as u64;
            if n > 0 {
                self.stalled_since = now_ms;
            }
        } else if self.flushing == Some(conn) {
            self.stats.bytes_written += n as u64;
        }
    }

    /// The socket of `conn` closed, failed, or could not be opened.
    pub fn closed(&mut self, conn: ConnId, now_ms: u64) {
        let now_ms = self.clock(now_ms);
        if self.current_conn() != Some(conn) {
            return;
        }
        if let State::Connecting { up: false, .. } = self.state {
            return self.fail(PushError::ConnectFailed, false, now_ms);
        }
        if let Some(client) = self.client_of(conn, true) {
            client.closed(now_ms);
        }
        self.after_client_closed(now_ms);
    }

    /// Time passed: reconnects after a backoff, fails an attempt past its deadline.
    pub fn tick(&mut self, now_ms: u64) {
        let now_ms = self.clock(now_ms);
        let stalled =
            self.in_flight > 0 && now_ms >= self.stalled_since.saturating_add(self.config.stall_ms);
        if stalled && self.current_conn().is_some() {
            let error = PushError::Stalled {
                queued: self.in_flight,
                after_ms: now_ms - self.stalled_since,
            };
            return self.fail(error, true, now_ms);
        }
        match &mut self.state {
            State::Idle => {}
            State::Backoff { until } => {
                if now_ms >= *until && self.live {
                    self.connect(now_ms);
                }
            }
            State::Connecting { client, .. } | State::Publishing { client, .. } => {
                client.tick(now_ms);
                self.after_client(now_ms);
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Inside

    fn current_conn(&self) -> Option<ConnId> {
        match self.state {
            State::Connecting { conn, .. } | State::Publishing { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// The client of `conn`, if that is the current connection (and, with `up`, connected).
    fn client_of(&mut self, conn: ConnId, up_only: bool) -> Option<&mut RtmpClient> {
        match &mut self.state {
            State::Connecting {
                conn: c,
                client,
                up,
            } if *c == conn && (*up || !up_only) => Some(client),
            State::Publishing {
                conn: c, client, ..
            } if *c == conn => Some(client),
            _ => None,
        }
    }

    fn connect(&mut self, now_ms: u64) {
        let conn = self.next_conn;
        self.next_conn += 1;
        let client = RtmpClient::publish(
            self.dest.target.clone(),
            self.config.client.clone(),
            now_ms,
            &mut self.rng,
        );
        self.attempts = self.attempts.saturating_add(1);
        self.stats.connects += 1;
        if self.attempts > 1 {
            self.stats.reconnects += 1;
        }
        self.in_flight = 0;
        self.flushing = None;
        self.wait_key = true;
        self.dropping = 0;
        self.slow = false;
        self.state = State::Connecting {
            conn,
            client: Box::new(client),
            up: false,
        };
        self.actions.push_back(Action::Connect {
            conn,
            addr: self.dest.addr.clone(),
            tls: self.dest.tls,
            server_name: self.dest.server_name().to_string(),
        });
        self.events.push_back(PushEvent {
            dest: self.dest.to_string(),
            kind: PushEventKind::Connecting {
                conn,
                attempt: self.attempts,
            },
        });
    }

    /// After the client took input or time: its events, then its output.
    fn after_client(&mut self, now_ms: u64) {
        loop {
            let ev = match &mut self.state {
                State::Connecting { client, .. } | State::Publishing { client, .. } => {
                    client.poll_event()
                }
                _ => None,
            };
            let Some(ev) = ev else { break };
            match ev {
                ClientEvent::Publishing => {
                    if let State::Connecting { conn, client, .. } =
                        std::mem::replace(&mut self.state, State::Idle)
                    {
                        self.state = State::Publishing {
                            conn,
                            client,
                            since: now_ms,
                        };
                        self.events.push_back(PushEvent {
                            dest: self.dest.to_string(),
                            kind: PushEventKind::Publishing { conn },
                        });
                        self.wait_key = true;
                        self.headers_pending = false;
                        self.send_headers();
                    }
                }
                ClientEvent::Failed(e) => return self.fail(e.into(), true, now_ms),
                // Connected is a step on the way; Ended follows our own unpublish.
                _ => {}
            }
        }
        self.flush();
    }

    /// After the host reported the socket closed: the client's failure, without a Close.
    fn after_client_closed(&mut self, now_ms: u64) {
        let mut err = None;
        if let State::Connecting { client, .. } | State::Publishing { client, .. } = &mut self.state
        {
            while let Some(ev) = client.poll_event() {
                if let ClientEvent::Failed(e) = ev {
                    err = Some(e);
                }
            }
        }
        let err = err.map_or(PushError::ConnectFailed, PushError::Client);
        self.fail(err, false, now_ms);
    }

    /// The connection is lost: close it (unless the host saw it close) and back off.
    fn fail(&mut self, error: PushError, close: bool, now_ms: u64) {
        let old = std::mem::replace(&mut self.state, State::Idle);
        let (conn, stable) = match old {
            State::Connecting { conn, .. } => (Some(conn), false),
            State::Publishing { conn, since, .. } => {
                (Some(conn), now_ms.saturating_sub(since) >= STABLE_MS)
            }
            other => {
                self.state = other;
                return;
            }
        };
        if let (Some(conn), true) = (conn, close) {
            self.actions.push_back(Action::Close { conn, flush: false });
        }
        self.in_flight = 0;
        self.stats.failures += 1;
        if stable {
            self.failures = 0;
        }
        let delay = if error.is_refusal() {
            self.failures = self.failures.saturating_add(1);
            self.config.max_retry_ms
        } else {
            let d = backoff(
                self.config.retry_ms,
                self.config.max_retry_ms,
                self.failures,
            );
            self.failures = self.failures.saturating_add(1);
            d
        };
        self.events.push_back(PushEvent {
            dest: self.dest.to_string(),
            kind: PushEventKind::Failed {
                reason: self.dest.scrub(&error.to_string()),
                error,
                retry_in_ms: delay,
            },
        });
        self.state = if self.live {
            State::Backoff {
                until: now_ms.saturating_add(delay),
            }
        } else {
            State::Idle
        };
    }

    /// Sends the headers, essential; one that does not go makes them pending.
    fn send_headers(&mut self) {
        let ts = self.last_ts;
        let State::Publishing { client, .. } = &mut self.state else {
            return;
        };
        for h in self.headers.iter() {
            if client.send_media(h.kind, ts, h.data.clone()).is_err() {
                self.headers_pending = true;
            }
        }
    }

    /// Queues one tag; false if the client refused it.
    fn send(&mut self, tag: &Tag) -> bool {
        let State::Publishing { client, .. } = &mut self.state else {
            return false;
        };
        match client.send_media(tag.kind, tag.timestamp, tag.data.clone()) {
            Ok(()) => true,
            Err(SendError::OutputFull { .. } | SendError::NotPublishing) => false,
            // Empty or oversized: it could never go; not a reason to wait for a keyframe.
            Err(_) => {
                self.stats.dropped_frames += 1;
                !tag.header
            }
        }
    }

    fn drop_frame(&mut self) {
        self.dropping += 1;
        self.stats.dropped_frames += 1;
    }

    /// Hands the client's output to the host, once the socket is up.
    fn flush(&mut self) {
        let (conn, out) = match &mut self.state {
            State::Connecting {
                conn,
                client,
                up: true,
            }
            | State::Publishing { conn, client, .. } => (*conn, client.take_output()),
            _ => return,
        };
        self.write(conn, out);
    }

    /// Hands bytes of the current connection to the host, unless that would pass the hard
    /// limit: then the connection fails (the destination stopped reading long ago).
    fn write(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let queued = self.in_flight + bytes.len();
        let limit = self.hard_limit();
        if queued > limit {
            let now_ms = self.now_ms;
            return self.fail(PushError::Overflow { queued, limit }, true, now_ms);
        }
        self.write_unchecked(conn, bytes);
    }

    fn write_unchecked(&mut self, conn: ConnId, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        if self.in_flight == 0 {
            self.stalled_since = self.now_ms;
        }
        self.in_flight += bytes.len();
        self.stats.bytes_out += bytes.len() as u64;
        self.actions.push_back(Action::Write { conn, bytes });
    }
}

/// The delay before attempt `failures + 1`: `retry_ms · 2^failures`, at most `max_ms`.
pub fn backoff(retry_ms: u64, max_ms: u64, failures: u32) -> u64 {
    let factor = 1u64.checked_shl(failures.min(32)).unwrap_or(u64::MAX);
    retry_ms
        .saturating_mul(factor)
        .clamp(retry_ms, max_ms.max(retry_ms))
}
