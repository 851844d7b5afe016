//! A sans-IO RTMP client session: publish a stream to another RTMP server, or play one from it
//! (the building block of relays: push to a destination, pull from an origin).
//!
//! The caller owns the socket and the clock. It creates a session with [`RtmpClient::publish`]
//! or [`RtmpClient::play`] (which queue C0 C1 at once), then loops:
//!
//! - write [`RtmpClient::output`] to the socket and call [`RtmpClient::advance_output`] with
//!   what was written (or [`RtmpClient::take_output`] for all of it);
//! - feed what the socket read to [`RtmpClient::bytes`], its EOF to [`RtmpClient::closed`];
//! - call [`RtmpClient::tick`] at [`RtmpClient::next_timeout`] (or whenever it likes: ticks are
//!   idempotent);
//! - drain [`RtmpClient::poll_event`] after every call: [`ClientEvent::Connected`], then
//!   [`ClientEvent::Publishing`] or [`ClientEvent::Playing`], media while playing, and exactly
//!   one terminal event ([`ClientEvent::Ended`] or [`ClientEvent::Failed`]), after which the
//!   session ignores input and the caller flushes the output and closes the socket.
//!
//! A publisher sends with [`RtmpClient::send_media`] once it saw `Publishing`, and ends with
//! [`RtmpClient::unpublish`] (FCUnpublish + deleteStream, so the far end sees an unpublish and
//! not a timeout). [`RtmpClient::pending_output`] says how much is queued; past
//! `max_output_bytes` `send_media` refuses, and the caller skips to the next keyframe.
//!
//! What the session does by itself: the client side of the handshake (simple, as OBS and
//! ffmpeg send it), Set Chunk Size 4096 before anything else, `connect` / `createStream` /
//! `publish` or `play` + Set Buffer Length, Acknowledgements at the server's window, a Window
//! Acknowledgement Size answering the server's Set Peer Bandwidth, PingResponse to PingRequest,
//! aggregate messages split into their tags, and a deadline per phase.
//!
//! Nothing here reads a clock or draws randomness of its own: time comes in as `now_ms`, and
//! the handshake's random bytes from the caller's RNG.

mod error;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use bytes::Bytes;
use fstream_media::{
    amf0::{self, Amf0Value},
    flv::{FlvTag, TagType},
    rtmp::{
        chunk::{
            ChunkEncoder, ChunkLimits, RtmpMessage, MAX_EFFECTIVE_CHUNK_SIZE, MAX_MESSAGE_LEN,
        },
        chunk_in::ChunkIn,
        handshake::{ClientHandshake, HandshakeStatus, HANDSHAKE_SIZE},
        message::{
            msg_type, split_aggregate, Command, CommandEncoding, ControlMessage, UserControlEvent,
        },
    },
    AmfLimits,
};
use rand::RngCore;

pub use error::{ClientError, SendError};

/// Chunk streams we send on (those ffmpeg uses, so servers tuned to it see the familiar
/// layout): connection commands, audio, data, video, stream commands.
const CSID_COMMAND: u32 = 3;
const CSID_AUDIO: u32 = 4;
const CSID_DATA: u32 = 5;
const CSID_VIDEO: u32 = 6;
const CSID_STREAM: u32 = 8;

/// S0 S1 S2: what the server sends before its first chunk (counted in Acknowledgements).
const SERVER_HANDSHAKE_LEN: usize = 1 + 2 * HANDSHAKE_SIZE;

/// Bounds for decoding the server's commands and data: far above any real server's replies,
/// small next to a message.
const AMF_LIMITS: AmfLimits = AmfLimits {
    max_depth: 16,
    max_nodes: 4096,
    max_bytes: 1 << 20,
    max_refs: 1024,
};

/// Where to connect and what to publish or play: `rtmp://HOST[:PORT]/APP/STREAM?QUERY` is app
/// `APP`, tcUrl `rtmp://HOST[:PORT]/APP` and stream `STREAM?QUERY` (the query goes with the
/// stream name, where servers look for credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub app: String,
    pub tc_url: String,
    /// The stream name as `publish` / `play` sends it, query included.
    pub stream: String,
}

/// A URL that [`Target::parse_url`] cannot take apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an rtmp://HOST/APP/STREAM URL: {0}")]
pub struct BadUrl(pub &'static str);

impl Target {
    pub fn new(
        app: impl Into<String>,
        tc_url: impl Into<String>,
        stream: impl Into<String>,
    ) -> Self {
        Target {
            app: app.into(),
            tc_url: tc_url.into(),
            stream: stream.into(),
        }
    }

    /// Splits `rtmp://HOST[:PORT]/APP/STREAM[?QUERY]` (or `rtmps://`) into the address to
    /// connect to (`HOST:PORT`, 1935 or 443 by default) and the target. The app is the first
    /// path segment, the stream everything after it.
    pub fn parse_url(url: &str) -> Result<(String, Target), BadUrl> {
        let (scheme, rest) = url.split_once("://").ok_or(BadUrl("no scheme"))?;
        let default_port = match scheme {
            "rtmp" => 1935,
            "rtmps" => 443,
            _ => return Err(BadUrl("the scheme is not rtmp or rtmps")),
        };
        let (authority, path) = rest.split_once('/').ok_or(BadUrl("no app"))?;
        if authority.is_empty() {
            return Err(BadUrl("no host"));
        }
        let (app, stream) = path.split_once('/').ok_or(BadUrl("no stream name"))?;
        if app.is_empty() || stream.is_empty() || stream.starts_with('?') {
            return Err(BadUrl("empty app or stream name"));
        }
        let has_port = match authority.rsplit_once(':') {
            // An IPv6 literal without a port is [..]; with one, [..]:PORT.
            Some((host, port)) => {
                !port.contains(']') && (!host.starts_with('[') || host.ends_with(']'))
            }
            None => false,
        };
        let addr = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        let tc_url = format!("{scheme}://{authority}/{app}");
        Ok((addr, Target::new(app, tc_url, stream)))
    }
}

/// A client session's bounds and timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Our outgoing chunk size, announced right after the handshake. 4096 (nginx-rtmp's and
    /// ours): a 2 Mbit/s stream in few chunks, and any server accepts it.
    pub chunk_size: u32,
    /// What the server may send: chunk size, message size, chunk streams, partial messages.
    pub chunk_limits: ChunkLimits,
    /// Each phase (handshake, connect, createStream, publish / play) must be answered within
    /// this time.
    pub phase_timeout_ms: u64,
    /// While playing, a server that sends nothing for this long fails the session (a live
    /// stream sends something every few tens of ms; a relay then reconnects). 0: never.
    pub idle_timeout_ms: u64,
    /// The buffer length a player announces (Set Buffer Length).
    pub buffer_ms: u32,
    /// The most output bytes queued before [`RtmpClient::send_media`] refuses. Protocol
    /// replies may go past it by up to as much again; beyond that the session fails.
    pub max_output_bytes: usize,
    /// The most commands awaiting an answer at once.
    pub max_transactions: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            chunk_size: 4096,
            chunk_limits: ChunkLimits {
                max_chunk_size: MAX_EFFECTIVE_CHUNK_SIZE,
                max_message_size: 8 * 1024 * 1024,
                max_chunk_streams: 64,
                max_pending_bytes: 16 * 1024 * 1024,
            },
            phase_timeout_ms: 10_000,
            idle_timeout_ms: 10_000,
            buffer_ms: 1000,
            max_output_bytes: 4 * 1024 * 1024,
            max_transactions: 8,
        }
    }
}

/// Publishing or playing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publish,
    Play,
}

/// Where a session is, as errors and logs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Handshake,
    Connect,
    CreateStream,
    /// `publish` sent, waiting for `NetStream.Publish.Start`.
    Publish,
    /// `play` sent, waiting for `NetStream.Play.Start`.
    Play,
    Publishing,
    Playing,
    Done,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Handshake => "the handshake",
            Phase::Connect => "connect",
            Phase::CreateStream => "createStream",
            Phase::Publish => "publish",
            Phase::Play => "play",
            Phase::Publishing => "publishing",
            Phase::Playing => "playing",
            Phase::Done => "the end",
        })
    }
}

/// How a session ended as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// [`RtmpClient::unpublish`] (FCUnpublish and deleteStream are queued).
    Unpublished,
    /// [`RtmpClient::stop`] of a player (deleteStream is queued).
    Stopped,
    /// The server ended the play (`NetStream.Play.Stop`, `NetStream.Play.Complete`).
    PlayStopped { code: String },
}

/// What a session tells its caller.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// `connect` succeeded.
    Connected,
    /// `NetStream.Publish.Start`: [`RtmpClient::send_media`] may send.
    Publishing,
    /// `NetStream.Play.Start`: media follows.
    Playing,
    /// A tag of the played stream: audio, video, or data (`onMetaData`, with `@setDataFrame`
    /// removed). Timestamps are the server's, in ms.
    Media(FlvTag),
    /// While playing: the origin's publisher left (`NetStream.Play.UnpublishNotify`); the
    /// server keeps us attached for the next one.
    Unpublished,
    /// While playing: a publisher (re)started the stream (`NetStream.Play.PublishNotify`).
    Republished,
    /// The session ended as asked, or the server ended the play. Terminal.
    Ended(EndReason),
    /// The session failed. Terminal.
    Failed(ClientError),
}

/// What an answer we wait for belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Connect,
    CreateStream,
}

#[derive(Debug)]
enum State {
    Handshake(Box<ClientHandshake>),
    /// `connect` sent.
    Connecting,
    /// `createStream` sent.
    CreatingStream,
    /// `publish` or `play` sent on stream `msid`.
    Starting {
        msid: u32,
    },
    /// Publishing or playing on `msid`.
    Streaming {
        msid: u32,
    },
    Done,
}

/// The output queue: bytes the caller has not written yet.
#[derive(Debug, Default)]
struct OutBuf {
    buf: Vec<u8>,
    /// Bytes at the front already written.
    head: usize,
}

impl OutBuf {
    fn pending(&self) -> usize {
        self.buf.len() - self.head
    }

    fn peek(&self) -> &[u8] {
        self.buf.get(self.head..).unwrap_or_default()
    }

    fn advance(&mut self, n: usize) {
        self.head = (self.head + n).min(self.buf.len());
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        } else if self.head >= 64 * 1024 && self.head * 2 >= self.buf.len() {
            // Move the rest to the front once the written part is the larger one: each byte
            // moves at most once per halving.
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }

    fn take(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.head);
        self.buf.clear();
        self.head = 0;
        rest
    }
}

/// One RTMP client connection, sans-IO. See the module documentation for the driving loop.
#[derive(Debug)]
pub struct RtmpClient {
    role: Role,
    target: Target,
    config: ClientConfig,
    state: State,
    input: ChunkIn,
    encoder: ChunkEncoder,
    out: OutBuf,
    events: VecDeque<ClientEvent>,
    /// When the current phase must be answered by.
    deadline: Option<u64>,
    /// When the server last sent anything.
    last_input_ms: u64,
    next_txn: u32,
    /// Commands awaiting `_result` / `_error`, by transaction id.
    transactions: Vec<(u32, Purpose)>,
    /// The last Window Acknowledgement Size we sent.
    our_window: Option<u32>,
    /// Bytes we queued, and the server's last Acknowledgement of them.
    sent: u64,
    peer_acked: u32,
}

impl RtmpClient {
    /// A session that publishes `target.stream`. C0 C1 are queued at once.
    pub fn publish<R: RngCore + ?Sized>(
        target: Target,
        config: ClientConfig,
        now_ms: u64,
        rng: &mut R,
    ) -> Self {
        Self::new(Role::Publish, target, config, now_ms, rng)
    }

    /// A session that plays `target.stream`. C0 C1 are queued at once.
    pub fn play<R: RngCore + ?Sized>(
        target: Target,
        config: ClientConfig,
        now_ms: u64,
        rng: &mut R,
    ) -> Self {
        Self::new(Role::Play, target, config, now_ms, rng)
    }

    fn new<R: RngCore + ?Sized>(
        role: Role,
        target: Target,
        config: ClientConfig,
        now_ms: u64,
        rng: &mut R,
    ) -> Self {
        // The handshake's time field is ours to choose; the low 32 bits of the clock, as
        // epoch-relative clients do.
        let hs = ClientHandshake::new(now_ms as u32, rng);
        let mut client = RtmpClient {
            role,
            input: ChunkIn::new(config.chunk_limits),
            target,
            state: State::Handshake(Box::new(hs)),
            encoder: ChunkEncoder::default(),
            out: OutBuf::default(),
            events: VecDeque::new(),
            deadline: Some(now_ms.saturating_add(config.phase_timeout_ms)),
            last_input_ms: now_ms,
            next_txn: 1,
            transactions: Vec::new(),
            our_window: None,
            sent: 0,
            peer_acked: 0,
            config,
        };
        if let State::Handshake(hs) = &client.state {
            let c0c1 = hs.c0c1();
            client.raw(&c0c1);
        }
        client
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn phase(&self) -> Phase {
        match (&self.state, self.role) {
            (State::Handshake(_), _) => Phase::Handshake,
            (State::Connecting, _) => Phase::Connect,
            (State::CreatingStream, _) => Phase::CreateStream,
            (State::Starting { .. }, Role::Publish) => Phase::Publish,
            (State::Starting { .. }, Role::Play) => Phase::Play,
            (State::Streaming { .. }, Role::Publish) => Phase::Publishing,
            (State::Streaming { .. }, Role::Play) => Phase::Playing,
            (State::Done, _) => Phase::Done,
        }
    }

    /// Whether a terminal event was queued: nothing more happens but flushing the output.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The message stream the server gave us, once `createStream` was answered.
    pub fn stream_id(&self) -> Option<u32> {
        match self.state {
            State::Starting { msid } | State::Streaming { msid } => Some(msid),
            _ => None,
        }
    }

    /// The chunk size our output uses (for a caller checking what it writes).
    pub fn chunk_size(&self) -> u32 {
        self.encoder.chunk_size()
    }

    // ------------------------------------------------------------------------------------
    // Output

    /// Bytes queued for the socket, oldest first.
    pub fn output(&self) -> &[u8] {
        self.out.peek()
    }

    /// `n` bytes of [`RtmpClient::output`] were written.
    pub fn advance_output(&mut self, n: usize) {
        self.out.advance(n);
    }

    /// All queued output, taken (the caller now owns writing it).
    pub fn take_output(&mut self) -> Vec<u8> {
        self.out.take()
    }

    /// Bytes queued and not yet taken: a publisher's caller compares it with its own bound to
    /// skip media up to the next keyframe before `send_media` refuses.
    pub fn pending_output(&self) -> usize {
        self.out.pending()
    }

    /// Bytes we sent that the server has not acknowledged yet (by its Acknowledgements, which
    /// it sends at the window we announced in reply to its Set Peer Bandwidth); 0 if the
    /// server never acknowledges.
    pub fn unacknowledged(&self) -> u64 {
        if self.peer_acked == 0 {
            return 0;
        }
        // The sequence number is 32 bits and wraps; compare within the last 4 GiB.
        let sent32 = self.sent as u32;
        u64::from(sent32.wrapping_sub(self.peer_acked))
    }

    /// The next event, if any. Drain after every call.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`RtmpClient::tick`] has something to check next.
    pub fn next_timeout(&self) -> Option<u64> {
        if self.is_done() {
            return None;
        }
        let idle = match self.state {
            State::Streaming { .. }
                if self.role == Role::Play && self.config.idle_timeout_ms > 0 =>
            {
                Some(
                    self.last_input_ms
                        .saturating_add(self.config.idle_timeout_ms),
                )
            }
            _ => None,
        };
        match (self.deadline, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ------------------------------------------------------------------------------------
    // Input

    /// Bytes the server sent.
    pub fn bytes(&mut self, data: &[u8], now_ms: u64) {
        if self.is_done() || data.is_empty() {
            return;
        }
        self.last_input_ms = now_ms;
        if let State::Handshake(hs) = &mut self.state {
            let mut c2 = Vec::new();
            match hs.feed(data, &mut c2) {
                Err(e) => return self.fail(e.into()),
                Ok(HandshakeStatus::NeedMore) => return,
                Ok(HandshakeStatus::Complete) => {
                    let leftover = hs.take_leftover();
                    self.input.count_handshake(SERVER_HANDSHAKE_LEN);
                    self.raw(&c2);
                    self.start_connect(now_ms);
                    self.input.push(&leftover);
                }
            }
        } else {
            self.input.push(data);
        }
        self.drain_input(now_ms);
    }

    /// The server closed the connection (EOF or reset).
    pub fn closed(&mut self, _now_ms: u64) {
        if !self.is_done() {
            let phase = self.phase();
            self.fail(ClientError::Closed { phase });
        }
    }

    /// Time passed: fails a phase past its deadline, a silent played stream.
    pub fn tick(&mut self, now_ms: u64) {
        if self.is_done() {
            return;
        }
        if self.deadline.is_some_and(|d| now_ms >= d) {
            let phase = self.phase();
            let after_ms = self.config.phase_timeout_ms;
            return self.fail(ClientError::Timeout { phase, after_ms });
        }
        if let State::Streaming { .. } = self.state {
            let idle = self.config.idle_timeout_ms;
            if self.role == Role::Play
                && idle > 0
                && now_ms.saturating_sub(self.last_input_ms) >= idle
            {
                self.fail(ClientError::Timeout {
                    phase: Phase::Playing,
                    after_ms: idle,
                });
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Commands from the caller

    /// Queues one tag of the published stream: audio, video, or data (an FLV script tag's
    /// body such as `onMetaData` + its array, sent as `@setDataFrame`). Timestamps in ms.
    pub fn send_media(
        &mut self,
        kind: TagType,
        timestamp: u32,
        payload: Bytes,
    ) -> Result<(), SendError> {
        let State::Streaming { msid } = self.state else {
            return Err(SendError::NotPublishing);
        };
        if self.role != Role::Publish {
            return Err(SendError::NotPublishing);
        }
        let (csid, payload) = match kind {
            TagType::Audio => (CSID_AUDIO, payload),
            TagType::Video => (CSID_VIDEO, payload),
            TagType::Script => (CSID_DATA, with_set_data_frame(payload)),
        };
        let len = payload.len();
        if len == 0 || len > MAX_MESSAGE_LEN as usize {
            return Err(SendError::BadPayload { len });
        }
        // At most this many bytes go out: a full header, then a basic header and an extended
        // timestamp per further chunk.
        let chunks = len.div_ceil(self.encoder.chunk_size() as usize);
        let encoded = len + 16 + chunks * 7;
        let pending = self.out.pending();
        let limit = self.config.max_output_bytes;
        if pending + encoded > limit {
            return Err(SendError::OutputFull { pending, limit });
        }
        let msg = RtmpMessage::new(csid, timestamp, kind.as_u8(), msid, payload);
        self.message(&msg);
        Ok(())
    }

    /// Ends publishing: FCUnpublish and deleteStream are queued, then
    /// [`EndReason::Unpublished`]. Flush the output before closing the socket.
    pub fn unpublish(&mut self) {
        if self.is_done() {
            return;
        }
        // FCPublish went out with createStream: take it back, and the stream if we have one.
        let announced = matches!(
            self.state,
            State::CreatingStream | State::Starting { .. } | State::Streaming { .. }
        );
        if self.role == Role::Publish && announced {
            let name = Amf0Value::from(self.target.stream.as_str());
            self.command(CSID_COMMAND, 0, "FCUnpublish", vec![name], None);
        }
        if let Some(msid) = self.stream_id() {
            self.delete_stream(msid);
        }
        self.finish(EndReason::Unpublished);
    }

    /// Ends playing: deleteStream is queued, then [`EndReason::Stopped`].
    pub fn stop(&mut self) {
        if self.is_done() {
            return;
        }
        if let Some(msid) = self.stream_id() {
            self.delete_stream(msid);
        }
        self.finish(EndReason::Stopped);
    }

    // ------------------------------------------------------------------------------------
    // Inside

    fn finish(&mut self, reason: EndReason) {
        self.state = State::Done;
        self.deadline = None;
        self.events.push_back(ClientEvent::Ended(reason));
    }

    fn fail(&mut self, err: ClientError) {
        if self.is_done() {
            return;
        }
        tracing::debug!(kind = err.kind(), cause = %err, "rtmp client failed");
        self.state = State::Done;
        self.deadline = None;
        self.events.push_back(ClientEvent::Failed(err));
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.out.buf.extend_from_slice(bytes);
        self.sent += bytes.len() as u64;
    }

    /// Queues one of our messages. Past twice `max_output_bytes` the session fails: the
    /// caller stopped taking output while the server keeps making us answer.
    fn message(&mut self, msg: &RtmpMessage) {
        let before = self.out.buf.len();
        if let Err(e) = self
            .encoder
            .encode_message_into(&mut self.out.buf, msg.csid, msg)
        {
            return self.fail(ClientError::Encode(e.to_string()));
        }
        self.sent += (self.out.buf.len() - before) as u64;
        let limit = self.config.max_output_bytes.saturating_mul(2);
        let pending = self.out.pending();
        if pending > limit {
            self.fail(ClientError::OutputOverflow { pending, limit });
        }
    }

    fn control(&mut self, c: ControlMessage) {
        self.message(&c.to_message());
    }

    /// Sends a command; with `purpose`, registers its transaction for the answer.
    fn command(
        &mut self,
        csid: u32,
        msid: u32,
        name: &str,
        args: Vec<Amf0Value>,
        purpose: Option<Purpose>,
    ) {
        self.command_with(csid, msid, name, Amf0Value::Null, args, purpose);
    }

    fn command_with(
        &mut self,
        csid: u32,
        msid: u32,
        name: &str,
        object: Amf0Value,
        args: Vec<Amf0Value>,
        purpose: Option<Purpose>,
    ) {
        let txn = self.next_txn;
        self.next_txn = self.next_txn.wrapping_add(1).max(1);
        if let Some(p) = purpose {
            if self.transactions.len() >= self.config.max_transactions {
                let limit = self.config.max_transactions;
                return self.fail(ClientError::TooManyTransactions { limit });
            }
            self.transactions.push((txn, p));
        }
        let cmd = Command::new(name, f64::from(txn), object, args);
        match cmd.to_message(CommandEncoding::Amf0, csid, msid) {
            Ok(m) => self.message(&m),
            Err(e) => self.fail(ClientError::Encode(e.to_string())),
        }
    }

    fn delete_stream(&mut self, msid: u32) {
        let id = Amf0Value::Number(f64::from(msid));
        self.command(CSID_COMMAND, 0, "deleteStream", vec![id], None);
    }

    fn arm(&mut self, now_ms: u64) {
        self.deadline = Some(now_ms.saturating_add(self.config.phase_timeout_ms));
    }

    /// After the handshake: our chunk size, then `connect`.
    fn start_connect(&mut self, now_ms: u64) {
        let size = self.config.chunk_size.clamp(1, MAX_EFFECTIVE_CHUNK_SIZE);
        self.control(ControlMessage::SetChunkSize(size));
        if let Err(e) = self.encoder.set_chunk_size(size) {
            return self.fail(ClientError::Encode(e.to_string()));
        }
        let t = &self.target;
        let mut object = vec![
            ("app", Amf0Value::from(t.app.as_str())),
            ("type", Amf0Value::from("nonprivate")),
        ];
        match self.role {
            // What encoders (FMLE, OBS, ffmpeg) send.
            Role::Publish => {
                object.push(("flashVer", "FMLE/3.0 (compatible; fstream-host)".into()));
                object.push(("tcUrl", t.tc_url.as_str().into()));
            }
            // What players (ffmpeg, librtmp) send: servers read the codecs fields.
            Role::Play => {
                object.push(("flashVer", "LNX 9,0,124,2".into()));
                object.push(("tcUrl", t.tc_url.as_str().into()));
                object.push(("fpad", false.into()));
                object.push(("capabilities", 15.0.into()));
                object.push(("audioCodecs", 4071.0.into()));
                object.push(("videoCodecs", 252.0.into()));
                object.push(("videoFunction", 1.0.into()));
            }
        }
        let object = Amf0Value::object(object);
        self.command_with(
            CSID_COMMAND,
            0,
            "connect",
            object,
            vec![],
            Some(Purpose::Connect),
        );
        self.state = State::Connecting;
        self.arm(now_ms);
    }

    fn drain_input(&mut self, now_ms: u64) {
        while !self.is_done() {
            match self.input.next_message() {
                Err(e) => return self.fail(e.into()),
                Ok(None) => break,
                Ok(Some(m)) => self.on_message(m, now_ms),
            }
            if let Some(seq) = self.input.ack_due() {
                self.control(ControlMessage::Acknowledgement(seq));
            }
        }
    }

    fn on_message(&mut self, m: RtmpMessage, now_ms: u64) {
        match m.type_id {
            msg_type::SET_CHUNK_SIZE..=msg_type::SET_PEER_BANDWIDTH => {
                match ControlMessage::parse(m.type_id, &m.payload) {
                    Ok(c) => self.on_control(c),
                    Err(e) => self.fail(e.into()),
                }
            }
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                match Command::parse(m.type_id, &m.payload, &AMF_LIMITS) {
                    Ok(c) => self.on_command(c, m.stream_id, now_ms),
                    Err(e) => self.fail(e.into()),
                }
            }
            msg_type::AUDIO | msg_type::VIDEO | msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => {
                self.on_media(m)
            }
            msg_type::AGGREGATE => {
                if !self.playing_on(m.stream_id) {
                    return;
                }
                match split_aggregate(&m) {
                    Ok(parts) => {
                        for part in parts {
                            if part.type_id != msg_type::AGGREGATE {
                                self.on_media(part);
                            }
                        }
                    }
                    Err(e) => self.fail(e.into()),
                }
            }
            // Shared objects and anything unknown: not ours to act on.
            _ => {}
        }
    }

    fn on_control(&mut self, c: ControlMessage) {
        match c {
            ControlMessage::SetChunkSize(n) => {
                if let Err(e) = self.input.set_chunk_size(n) {
                    self.fail(e.into());
                }
            }
            ControlMessage::Abort(csid) => self.input.abort(csid),
            ControlMessage::Acknowledgement(seq) => self.peer_acked = seq,
            ControlMessage::WindowAckSize(w) => self.input.set_window(w),
            // The server wants our acknowledgements at `window`: announce it (once per
            // change, as the specification asks of the receiver of Set Peer Bandwidth).
            ControlMessage::SetPeerBandwidth { window, .. } => {
                if window > 0 && self.our_window != Some(window) {
                    self.our_window = Some(window);
                    self.control(ControlMessage::WindowAckSize(window));
                }
            }
            ControlMessage::UserControl(UserControlEvent::PingRequest(t)) => {
                self.control(ControlMessage::UserControl(UserControlEvent::PingResponse(
                    t,
                )));
            }
            // StreamBegin / StreamEOF / StreamDry frame what the statuses say.
            ControlMessage::UserControl(_) => {}
        }
    }

    fn on_command(&mut self, cmd: Command, msid: u32, now_ms: u64) {
        match cmd.name.as_str() {
            "_result" | "_error" => {
                // Transaction ids are ours: small positive integers.
                let txn = cmd.transaction_id;
                let Some(at) = self
                    .transactions
                    .iter()
                    .position(|(t, _)| f64::from(*t) == txn)
                else {
                    return;
                };
                let (_, purpose) = self.transactions.remove(at);
                let ok = cmd.name == "_result";
                match purpose {
                    Purpose::Connect => self.on_connect_answer(ok, &cmd, now_ms),
                    Purpose::CreateStream => self.on_create_stream_answer(ok, &cmd, now_ms),
                }
            }
            "onStatus" => {
                let info = info_of(&cmd);
                self.on_status(msid, info);
            }
            // onBWDone, onFCPublish, |RtmpSampleAccess, close, ...: nothing to do.
            _ => {}
        }
    }

    fn on_connect_answer(&mut self, ok: bool, cmd: &Command, now_ms: u64) {
        if !matches!(self.state, State::Connecting) {
            return;
        }
        let (_, code, description) = info_of(cmd);
        if !ok {
            return self.fail(ClientError::ConnectRejected { code, description });
        }
        self.events.push_back(ClientEvent::Connected);
        if self.role == Role::Publish {
            // Encoders announce the stream first; servers that keep a publish lock per name
            // (FMS, Wowza) expect it, the others ignore it.
            let name = Amf0Value::from(self.target.stream.as_str());
            self.command(CSID_COMMAND, 0, "releaseStream", vec![name.clone()], None);
            self.command(CSID_COMMAND, 0, "FCPublish", vec![name], None);
        }
        self.command(
            CSID_COMMAND,
            0,
            "createStream",
            vec![],
            Some(Purpose::CreateStream),
        );
        if !self.is_done() {
            self.state = State::CreatingStream;
            self.arm(now_ms);
        }
    }

    fn on_create_stream_answer(&mut self, ok: bool, cmd: &Command, now_ms: u64) {
        if !matches!(self.state, State::CreatingStream) {
            return;
        }
        if !ok {
            let (_, code, description) = info_of(cmd);
            return self.fail(ClientError::CommandFailed {
                command: "createStream",
                code,
                description,
            });
        }
        let id = cmd.args.iter().find_map(Amf0Value::as_f64);
        let msid = match id {
            Some(v) if v.fract() == 0.0 && v >= 1.0 && v <= f64::from(u32::MAX) => v as u32,
            _ => {
                return self.fail(ClientError::Unexpected(
                    "createStream result without a stream id",
                ))
            }
        };
        let name = Amf0Value::from(self.target.stream.as_str());
        match self.role {
            Role::Publish => {
                let args = vec![name, Amf0Value::from("live")];
                self.command(CSID_STREAM, msid, "publish", args, None);
            }
            Role::Play => {
                // Start -2: live if there is such a live stream, else recorded (the default
                // of the specification; a relay may pull either).
                let args = vec![name, Amf0Value::Number(-2.0)];
                self.command(CSID_STREAM, msid, "play", args, None);
                self.control(ControlMessage::UserControl(
                    UserControlEvent::SetBufferLength {
                        stream_id: msid,
                        buffer_ms: self.config.buffer_ms,
                    },
                ));
            }
        }
        if !self.is_done() {
            self.state = State::Starting { msid };
            self.arm(now_ms);
        }
    }

    fn on_status(&mut self, msid: u32, (level, code, description): (String, String, String)) {
        let ours = match self.state {
            State::Starting { msid: m } | State::Streaming { msid: m } => m == msid,
            _ => false,
        };
        if !ours {
            return;
        }
        let starting = matches!(self.state, State::Starting { .. });
        match (self.role, code.as_str()) {
            (Role::Publish, "NetStream.Publish.Start") if starting => {
                self.state = State::Streaming { msid };
                self.deadline = None;
                self.events.push_back(ClientEvent::Publishing);
            }
            (Role::Publish, _) if level == "error" => {
                if starting {
                    self.fail(ClientError::PublishRejected { code, description });
                } else {
                    self.fail(ClientError::StreamError { code, description });
                }
            }
            (Role::Play, "NetStream.Play.Start") if starting => {
                self.state = State::Streaming { msid };
                self.deadline = None;
                self.events.push_back(ClientEvent::Playing);
            }
            (Role::Play, "NetStream.Play.StreamNotFound") => {
                self.fail(ClientError::StreamNotFound { description });
            }
            (Role::Play, "NetStream.Play.Stop" | "NetStream.Play.Complete") if !starting => {
                self.finish(EndReason::PlayStopped { code });
            }
            (Role::Play, "NetStream.Play.UnpublishNotify") if !starting => {
                self.events.push_back(ClientEvent::Unpublished);
            }
            (Role::Play, "NetStream.Play.PublishNotify") if !starting => {
                self.events.push_back(ClientEvent::Republished);
            }
            (Role::Play, _) if level == "error" => {
                if starting {
                    self.fail(ClientError::PlayRejected { code, description });
                } else {
                    self.fail(ClientError::StreamError { code, description });
                }
            }
            // Play.Reset, Publish.Idle, Unpublish.Success, warnings: informational.
            _ => {}
        }
    }

    fn playing_on(&self, msid: u32) -> bool {
        self.role == Role::Play && matches!(self.state, State::Streaming { msid: m } if m == msid)
    }

    fn on_media(&mut self, m: RtmpMessage) {
        if !self.playing_on(m.stream_id) || m.payload.is_empty() {
            return;
        }
        let tag = match m.type_id {
            msg_type::AUDIO => FlvTag::new(TagType::Audio, m.timestamp, m.payload),
            msg_type::VIDEO => FlvTag::new(TagType::Video, m.timestamp, m.payload),
            msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => {
                let Some(data) = script_body(m.type_id, &m.payload) else {
                    return;
                };
                FlvTag::new(TagType::Script, m.timestamp, data)
            }
            _ => return,
        };
        self.events.push_back(ClientEvent::Media(tag));
    }
}

/// `(level, code, description)` of an `onStatus` / `_result` / `_error` info object (the first
/// object argument).
fn info_of(cmd: &Command) -> (String, String, String) {
    let info = cmd
        .args
        .iter()
        .find(|a| a.properties().is_some())
        .unwrap_or(&Amf0Value::Null);
    let field = |k| info.get_str(k).unwrap_or_default().to_string();
    (field("level"), field("code"), field("description"))
}

/// A data message's body as an FLV script tag carries it: `@setDataFrame` and the AMF3 format
/// byte removed, the rest as sent. `None` for what a player keeps to itself
/// (`|RtmpSampleAccess`, `onPlayStatus`) and for empty bodies.
fn script_body(type_id: u8, payload: &Bytes) -> Option<Bytes> {
    let mut body = payload.clone();
    if type_id == msg_type::DATA_AMF3 && body.first() == Some(&0) {
        body = body.slice(1..);
    }
    let set = amf0_string("@setDataFrame");
    if body.starts_with(&set) {
        body = body.slice(set.len()..);
    }
    if ["|RtmpSampleAccess", "onPlayStatus"]
        .iter()
        .any(|name| body.starts_with(&amf0_string(name)))
    {
        return None;
    }
    (!body.is_empty()).then_some(body)
}

/// The AMF0 encoding of a short string: marker, 16-bit length, bytes.
fn amf0_string(s: &str) -> Vec<u8> {
    let mut v = vec![amf0::marker::STRING];
    v.extend_from_slice(&(s.len() as u16).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

/// A script tag's body (`onMetaData`, array) as a publisher sends it: behind `@setDataFrame`,
/// unless it already is.
fn with_set_data_frame(payload: Bytes) -> Bytes {
    let mut prefix = amf0_string("@setDataFrame");
    if payload.starts_with(&prefix) {
        return payload;
    }
    prefix.extend_from_slice(&payload);
    Bytes::from(prefix)
}
