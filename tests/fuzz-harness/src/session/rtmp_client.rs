//! `rtmp_client_session`: plugins/rtmp's `RtmpClient` (the sans-IO client of relays) driven
//! by a script playing the server and the host.
//!
//! The first byte selects the configuration ([`config`]): bit 0 plays instead of publishing,
//! bit 1 tight bounds, bits 2-3 our chunk size, bit 4 a single transaction, bit 5 no buffer
//! length. Then operations, each `[op]` modulo [`OPS`]:
//! - 0 `[len][bytes...]` (see [`Reader::blob`]): raw server bytes;
//! - 1 `[kind]` a server message the harness builds, chunked at the chunk size the harness's
//!   server last announced: 0 S0 S1 S2; 1 command `[name][txn][msid][arg kind][arg]` (the name
//!   from [`SERVER_COMMANDS`]; an info object's code from [`CODES`] by the low 4 bits of `arg`,
//!   its level by the high ones; `txn < 0x80` one of the client's own transaction ids, newest
//!   first); 2 control `[which][value: u32]`; 3 media `[type][msid][ts: u16][len][payload...]`;
//!   4 aggregate `[msid][count]` then count × `[type][ts: u16][len][payload...]`;
//! - 2 `[step]`: the clock advances ([`super::STEPS`]; the last step goes to the session's next
//!   timeout) and the session is ticked;
//! - 3 `[kind][ts: u16][len][payload...]`: `send_media`;
//! - 4 `unpublish` (publishing) or `stop` (playing);
//! - 5 the server's EOF (`closed`);
//! - 6 `[n: u16]`: the host writes `n` bytes of the output (0: all of it).
//!
//! Checked after every call:
//! - no panic;
//! - the output is C0 (version 3) and C1, then C2 only once S0 S1 S2 were in, then a chunk stream
//!   that decodes at the chunk sizes the client announces (Set Chunk Size first): control
//!   messages parse, commands parse (one `connect`, one `createStream`, one `publish` or
//!   `play` at most), media only from `send_media` calls that succeeded, an Acknowledgement
//!   never counts more bytes than the server sent; the output ends on a message boundary;
//! - the output queued never exceeds twice `max_output_bytes` plus one of our own messages;
//!   `send_media` refuses only as documented (not publishing, the bound, an empty payload);
//! - events: `Connected` before `Publishing` / `Playing`, each at most once and only for its
//!   role; media (never empty) and the notify events only while playing; exactly one terminal
//!   event at most, nothing after it, and `is_done` exactly once it came; `Ended(Unpublished)`
//!   / `Ended(Stopped)` only after the caller asked; no timeout pending once done.

use bytes::Bytes;
use fstream_media::amf0::Amf0Value;
use fstream_media::flv::{write_tag, TagType};
use fstream_media::rtmp::chunk::{
    ChunkDecoder, ChunkEncoder, ChunkLimits, MAX_EFFECTIVE_CHUNK_SIZE, MAX_MESSAGE_LEN,
};
use fstream_media::rtmp::handshake::HANDSHAKE_SIZE;
use fstream_media::rtmp::message::{
    msg_type, Command, CommandEncoding, ControlMessage, PeerBandwidthLimit, Status,
    UserControlEvent,
};
use fstream_media::rtmp::RtmpMessage;
use fstream_media::AmfLimits;
use fstream_rtmp_client::{
    ClientConfig, ClientEvent, EndReason, Phase, RtmpClient, SendError, Target,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{Reader, STEPS};

/// Operation codes (see the module documentation).
pub mod op {
    pub const BYTES: u8 = 0;
    pub const SERVER: u8 = 1;
    pub const TIME: u8 = 2;
    pub const SEND: u8 = 3;
    pub const FINISH: u8 = 4;
    pub const EOF: u8 = 5;
    pub const WRITE: u8 = 6;
}
/// How many operation codes there are.
pub const OPS: u8 = 7;

/// Commands the harness's server sends.
pub const SERVER_COMMANDS: &[&str] = &[
    "_result",
    "_error",
    "onStatus",
    "onBWDone",
    "close",
    "onFCPublish",
];

/// Status codes of the info objects the harness builds.
pub const CODES: &[&str] = &[
    "NetConnection.Connect.Success",
    "NetConnection.Connect.Rejected",
    "NetStream.Publish.Start",
    "NetStream.Publish.BadName",
    "NetStream.Play.Start",
    "NetStream.Play.Reset",
    "NetStream.Play.StreamNotFound",
    "NetStream.Play.Stop",
    "NetStream.Play.UnpublishNotify",
    "NetStream.Play.PublishNotify",
    "NetStream.Play.Failed",
    "NetStream.Unpublish.Success",
    "Something.Else",
];
const LEVELS: &[&str] = &["status", "error", "warning"];

/// Message types of server media (kind 3): audio, video, data AMF0/AMF3, shared object,
/// aggregate, and an unknown type.
const MEDIA_TYPES: &[u8] = &[8, 9, 18, 15, 19, 22, 7];

/// What the client sends before its chunks (C0 C1 C2), as long as S0 S1 S2.
const HANDSHAKE_LEN: usize = 1 + 2 * HANDSHAKE_SIZE;
/// The longest message the client itself makes (commands, control): far below this.
const OWN_MESSAGE_SLACK: usize = 8192;

/// The configuration for the settings byte.
pub fn config(c: u8) -> (bool, ClientConfig) {
    let play = c & 1 != 0;
    let mut cfg = ClientConfig::default();
    if c & 2 != 0 {
        cfg.max_output_bytes = 16 * 1024;
        cfg.chunk_limits = ChunkLimits {
            max_chunk_size: 8192,
            max_message_size: 4096,
            max_chunk_streams: 4,
            max_pending_bytes: 16 * 1024,
        };
        cfg.phase_timeout_ms = 1000;
        cfg.idle_timeout_ms = 500;
    }
    cfg.chunk_size = [4096, 128, 1, 65536][usize::from((c >> 2) & 3)];
    if c & 0x10 != 0 {
        cfg.max_transactions = 1;
    }
    if c & 0x20 != 0 {
        cfg.buffer_ms = 0;
    }
    (play, cfg)
}

/// The fuzz target.
pub fn rtmp_client_session(data: &[u8]) {
    drop(run(data));
}

/// Runs a script; returns the events in order (for seeds' tests and traces).
pub fn run(data: &[u8]) -> Vec<String> {
    let mut r = Reader::new(data);
    let (play, config) = config(r.u8());
    let target = Target::new("fier", "rtmp://127.0.0.1/fier", "cam?user_password=123");
    let mut rng = StdRng::seed_from_u64(1);
    let mut h = Harness {
        client: if play {
            RtmpClient::play(target, config.clone(), 0, &mut rng)
        } else {
            RtmpClient::publish(target, config.clone(), 0, &mut rng)
        },
        play,
        config,
        now: 0,
        server: ChunkEncoder::default(),
        fed: 0,
        left_handshake: false,
        out: OutCheck::new(),
        ev: EvCheck::default(),
        trace: Vec::new(),
    };
    h.check();
    while !r.is_empty() {
        match r.u8() % OPS {
            op::BYTES => {
                let b = r.blob().to_vec();
                h.feed(&b);
            }
            op::SERVER => {
                let b = h.server_message(&mut r);
                h.feed(&b);
            }
            op::TIME => {
                let step = STEPS[usize::from(r.u8()) % STEPS.len()];
                h.now = if step == u64::MAX {
                    h.client.next_timeout().unwrap_or(h.now).max(h.now)
                } else {
                    h.now.saturating_add(step)
                };
                h.client.tick(h.now);
            }
            op::SEND => {
                let kind =
                    [TagType::Audio, TagType::Video, TagType::Script][usize::from(r.u8()) % 3];
                let ts = u32::from(r.u16());
                let payload = Bytes::copy_from_slice(r.blob());
                h.send(kind, ts, payload);
            }
            op::FINISH => {
                h.ev.finish_asked = true;
                if h.play {
                    h.client.stop();
                } else {
                    h.client.unpublish();
                }
            }
            op::EOF => h.client.closed(h.now),
            _ => {
                let n = usize::from(r.u16());
                h.write(if n == 0 { usize::MAX } else { n });
            }
        }
        h.check();
    }
    h.write(usize::MAX);
    assert_eq!(
        h.out.dec.buffered(),
        0,
        "the output ends on a message boundary"
    );
    h.trace
}

struct Harness {
    client: RtmpClient,
    play: bool,
    config: ClientConfig,
    now: u64,
    /// The harness server's chunk encoder (its chunk size as announced).
    server: ChunkEncoder,
    /// Bytes given to the client.
    fed: u64,
    left_handshake: bool,
    out: OutCheck,
    ev: EvCheck,
    trace: Vec<String>,
}

impl Harness {
    fn feed(&mut self, b: &[u8]) {
        self.fed += b.len() as u64;
        self.client.bytes(b, self.now);
    }

    fn send(&mut self, kind: TagType, ts: u32, payload: Bytes) {
        let publishing = self.client.phase() == Phase::Publishing;
        let pending = self.client.pending_output();
        let len = payload.len();
        let result = self.client.send_media(kind, ts, payload);
        match &result {
            Ok(()) => {
                assert!(publishing, "media accepted in {:?}", self.client.phase());
                self.out.media_allowed += 1;
            }
            Err(SendError::NotPublishing) => assert!(!publishing),
            Err(SendError::OutputFull { pending: p, limit }) => {
                assert!(publishing);
                assert_eq!((*p, *limit), (pending, self.config.max_output_bytes));
                // What the message may take at most: a full header, then a basic header and an
                // extended timestamp per further chunk (the client's documented estimate).
                let chunk = self.client.chunk_size() as usize;
                let most = len + 16 + len.div_ceil(chunk) * 7;
                assert!(pending + most > *limit, "refused below the bound");
            }
            Err(SendError::BadPayload { len: l }) => {
                assert!(publishing);
                assert!(*l == 0 || *l > MAX_MESSAGE_LEN as usize, "payload of {l}");
            }
            Err(e) => panic!("unknown refusal {e}"),
        }
    }

    /// The host writes up to `n` bytes of the output.
    fn write(&mut self, n: usize) {
        let out = self.client.output();
        let n = n.min(out.len());
        let written = out[..n].to_vec();
        self.client.advance_output(n);
        self.out.push(&written, self.fed);
    }

    fn check(&mut self) {
        if self.client.phase() != Phase::Handshake {
            self.left_handshake = true;
        }
        while let Some(e) = self.client.poll_event() {
            self.trace.push(format!("{e:?}"));
            self.ev.event(&e, self.play);
        }
        assert_eq!(
            self.client.is_done(),
            self.ev.terminal,
            "is_done and the terminal event"
        );
        if self.client.is_done() {
            assert_eq!(self.client.next_timeout(), None);
        }
        let bound = 2 * self.config.max_output_bytes + OWN_MESSAGE_SLACK;
        assert!(
            self.client.pending_output() <= bound,
            "{} bytes queued; bound {bound}",
            self.client.pending_output()
        );
        let total = self.out.total + self.client.pending_output();
        if !self.left_handshake {
            assert!(total <= 1 + HANDSHAKE_SIZE, "only C0 C1 before S0 S1 S2");
        }
    }

    fn server_message(&mut self, r: &mut Reader) -> Vec<u8> {
        let msg = match r.u8() % 5 {
            0 => {
                let mut v = vec![3u8];
                v.extend(std::iter::repeat_n(0u8, 2 * HANDSHAKE_SIZE));
                return v;
            }
            1 => {
                let name = SERVER_COMMANDS[usize::from(r.u8()) % SERVER_COMMANDS.len()];
                let sel = r.u8();
                let txn = match self.out.txns.len() {
                    n if sel < 0x80 && n > 0 => self.out.txns[n - 1 - usize::from(sel) % n],
                    _ => f64::from(sel & 0x7F),
                };
                let msid = u32::from(r.u8() & 3);
                let kind = r.u8();
                let x = r.u8();
                let args = match kind % 4 {
                    0 => {
                        let code = CODES[usize::from(x & 0x0F) % CODES.len()];
                        let level = LEVELS[usize::from(x >> 4) % LEVELS.len()];
                        vec![Status::with_level(level, code, "fuzz").to_amf0()]
                    }
                    1 => vec![Amf0Value::Number(f64::from(x))],
                    2 => vec![Amf0Value::from("x")],
                    _ => vec![],
                };
                let cmd = Command::new(name, txn, Amf0Value::Null, args);
                match cmd.to_message(CommandEncoding::Amf0, 3, msid) {
                    Ok(m) => m,
                    Err(_) => return Vec::new(),
                }
            }
            2 => {
                let which = r.u8();
                let v = r.u32();
                let c = match which % 9 {
                    0 => ControlMessage::SetChunkSize(v),
                    1 => ControlMessage::Abort(v),
                    2 => ControlMessage::Acknowledgement(v),
                    3 => ControlMessage::WindowAckSize(v),
                    4 => ControlMessage::SetPeerBandwidth {
                        window: v,
                        limit: [
                            PeerBandwidthLimit::Hard,
                            PeerBandwidthLimit::Soft,
                            PeerBandwidthLimit::Dynamic,
                        ][(v % 3) as usize],
                    },
                    5 => ControlMessage::UserControl(UserControlEvent::PingRequest(v)),
                    6 => ControlMessage::UserControl(UserControlEvent::StreamBegin(v & 3)),
                    7 => ControlMessage::UserControl(UserControlEvent::StreamEof(v & 3)),
                    _ => ControlMessage::UserControl(UserControlEvent::SetBufferLength {
                        stream_id: v & 3,
                        buffer_ms: v,
                    }),
                };
                let bytes = self.chunk(&c.to_message());
                // Our server uses the size it announced from the next message on.
                if let ControlMessage::SetChunkSize(n) = c {
                    let _ = self
                        .server
                        .set_chunk_size(n.clamp(1, MAX_EFFECTIVE_CHUNK_SIZE));
                }
                return bytes;
            }
            3 => {
                let type_id = MEDIA_TYPES[usize::from(r.u8()) % MEDIA_TYPES.len()];
                let msid = u32::from(r.u8() & 3);
                let ts = u32::from(r.u16());
                RtmpMessage::new(6, ts, type_id, msid, r.blob().to_vec())
            }
            _ => {
                let msid = u32::from(r.u8() & 3);
                let count = r.u8() % 8;
                let mut p = Vec::new();
                for _ in 0..count {
                    let t =
                        [TagType::Audio, TagType::Video, TagType::Script][usize::from(r.u8()) % 3];
                    let ts = u32::from(r.u16());
                    let _ = write_tag(&mut p, t, ts, r.blob());
                }
                RtmpMessage::new(6, 0, msg_type::AGGREGATE, msid, p)
            }
        };
        self.chunk(&msg)
    }

    fn chunk(&self, m: &RtmpMessage) -> Vec<u8> {
        self.server.encode_message(m.csid, m).unwrap_or_default()
    }
}

/// Decodes and checks what the client wrote.
struct OutCheck {
    /// C0 C1 C2 as they came.
    handshake: Vec<u8>,
    dec: ChunkDecoder,
    total: usize,
    messages: usize,
    /// Transaction ids of the client's commands, oldest first.
    txns: Vec<f64>,
    connects: usize,
    create_streams: usize,
    starts: usize,
    /// Media messages `send_media` accepted, and how many came out.
    media_allowed: usize,
    media_seen: usize,
}

impl OutCheck {
    fn new() -> Self {
        OutCheck {
            handshake: Vec::new(),
            dec: ChunkDecoder::new(ChunkLimits {
                max_chunk_size: MAX_EFFECTIVE_CHUNK_SIZE,
                max_message_size: MAX_MESSAGE_LEN,
                max_chunk_streams: 64,
                max_pending_bytes: usize::MAX,
            }),
            total: 0,
            messages: 0,
            txns: Vec::new(),
            connects: 0,
            create_streams: 0,
            starts: 0,
            media_allowed: 0,
            media_seen: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8], fed: u64) {
        self.total += bytes.len();
        if self.handshake.len() < HANDSHAKE_LEN {
            let n = (HANDSHAKE_LEN - self.handshake.len()).min(bytes.len());
            self.handshake.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            assert_eq!(
                self.handshake.first().copied().unwrap_or(3),
                3,
                "C0 is version 3"
            );
        }
        self.dec.push(bytes);
        loop {
            let m = match self.dec.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => panic!("the client's chunks do not decode: {e}"),
            };
            self.message(&m, fed);
        }
    }

    fn message(&mut self, m: &RtmpMessage, fed: u64) {
        if self.messages == 0 {
            assert_eq!(
                m.type_id,
                msg_type::SET_CHUNK_SIZE,
                "Set Chunk Size comes first"
            );
        }
        self.messages += 1;
        match m.type_id {
            1..=6 => {
                let c = ControlMessage::parse(m.type_id, &m.payload)
                    .unwrap_or_else(|e| panic!("our control message: {e}"));
                match c {
                    ControlMessage::SetChunkSize(n) => self
                        .dec
                        .set_chunk_size(n)
                        .unwrap_or_else(|e| panic!("our chunk size {n}: {e}")),
                    ControlMessage::Acknowledgement(seq) => {
                        assert!(u64::from(seq) <= fed, "acknowledged {seq} of {fed} bytes")
                    }
                    _ => {}
                }
            }
            msg_type::COMMAND_AMF0 => {
                let limits = AmfLimits::default();
                let c = Command::parse(m.type_id, &m.payload, &limits)
                    .unwrap_or_else(|e| panic!("our command: {e}"));
                if c.transaction_id != 0.0 {
                    self.txns.push(c.transaction_id);
                }
                match c.name.as_str() {
                    "connect" => self.connects += 1,
                    "createStream" => self.create_streams += 1,
                    "publish" | "play" => self.starts += 1,
                    _ => {}
                }
                assert!(
                    self.connects <= 1 && self.create_streams <= 1 && self.starts <= 1,
                    "a command repeated: {}",
                    c.name
                );
            }
            msg_type::AUDIO | msg_type::VIDEO | msg_type::DATA_AMF0 => {
                self.media_seen += 1;
                assert!(self.media_seen <= self.media_allowed, "media nobody sent");
                assert!(!m.payload.is_empty());
            }
            other => panic!("the client sent a message of type {other}"),
        }
    }
}

/// The order of events.
#[derive(Default)]
struct EvCheck {
    connected: bool,
    started: bool,
    terminal: bool,
    finish_asked: bool,
}

impl EvCheck {
    fn event(&mut self, e: &ClientEvent, play: bool) {
        assert!(!self.terminal, "{e:?} after the terminal event");
        match e {
            ClientEvent::Connected => {
                assert!(!self.connected);
                self.connected = true;
            }
            ClientEvent::Publishing | ClientEvent::Playing => {
                assert!(self.connected && !self.started, "{e:?}");
                assert_eq!(play, matches!(e, ClientEvent::Playing));
                self.started = true;
            }
            ClientEvent::Media(t) => {
                assert!(play && self.started, "media while not playing");
                assert!(!t.data.is_empty(), "empty media");
            }
            ClientEvent::Unpublished | ClientEvent::Republished => assert!(play && self.started),
            ClientEvent::Ended(reason) => {
                self.terminal = true;
                match reason {
                    EndReason::Unpublished => assert!(!play && self.finish_asked),
                    EndReason::Stopped => assert!(play && self.finish_asked),
                    EndReason::PlayStopped { .. } => assert!(play && self.started),
                    other => panic!("unknown end {other:?}"),
                }
            }
            ClientEvent::Failed(_) => self.terminal = true,
            other => panic!("unknown event {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// Builds scripts for seeds.
#[derive(Clone)]
struct S(Vec<u8>);

impl S {
    fn new(c: u8) -> S {
        S(vec![c])
    }
    fn raw(mut self, b: &[u8]) -> S {
        self.0.extend_from_slice(b);
        self
    }
    fn blob(self, b: &[u8]) -> S {
        let n = u16::try_from(b.len()).expect("a short blob");
        if n < 0xFF {
            self.raw(&[n as u8]).raw(b)
        } else {
            self.raw(&[0xFF]).raw(&n.to_be_bytes()).raw(b)
        }
    }
    fn handshake(self) -> S {
        self.raw(&[op::SERVER, 0])
    }
    /// `name` answering the newest transaction (`sel` 0), with an argument.
    fn command(self, name: &str, sel: u8, msid: u8, arg_kind: u8, arg: u8) -> S {
        let i = SERVER_COMMANDS
            .iter()
            .position(|n| *n == name)
            .expect("a known command") as u8;
        self.raw(&[op::SERVER, 1, i, sel, msid, arg_kind, arg])
    }
    fn status(self, name: &str, msid: u8, code: &str, level: u8) -> S {
        let c = CODES.iter().position(|n| *n == code).expect("a known code") as u8;
        // An answer names the newest transaction; onStatus has transaction 0.
        let sel = if name == "onStatus" { 0x80 } else { 0 };
        self.command(name, sel, msid, 0, c | (level << 4))
    }
    fn control(self, which: u8, v: u32) -> S {
        self.raw(&[op::SERVER, 2, which]).raw(&v.to_be_bytes())
    }
    fn media(self, type_idx: u8, ts: u16, payload: &[u8]) -> S {
        self.raw(&[op::SERVER, 3, type_idx, 1])
            .raw(&ts.to_be_bytes())
            .blob(payload)
    }
    fn aggregate(self, tags: &[(u8, u16, &[u8])]) -> S {
        let mut s = self.raw(&[op::SERVER, 4, 1, tags.len() as u8]);
        for (t, ts, p) in tags {
            s = s.raw(&[*t]).raw(&ts.to_be_bytes()).blob(p);
        }
        s
    }
    fn send(self, kind: u8, ts: u16, payload: &[u8]) -> S {
        self.raw(&[op::SEND, kind])
            .raw(&ts.to_be_bytes())
            .blob(payload)
    }
    fn time(self, step: u8) -> S {
        self.raw(&[op::TIME, step])
    }
    fn write(self, n: u16) -> S {
        self.raw(&[op::WRITE]).raw(&n.to_be_bytes())
    }
    /// Handshake, connect accepted, createStream answered with stream 1.
    fn connected(c: u8) -> S {
        S::new(c)
            .handshake()
            .write(0)
            .status("_result", 0, "NetConnection.Connect.Success", 0)
            .write(0)
            .command("_result", 0, 0, 1, 1)
            .write(0)
    }
}

fn metadata() -> Vec<u8> {
    let mut p = Vec::new();
    let _ = fstream_media::amf0::encode_all(
        &[
            Amf0Value::from("onMetaData"),
            Amf0Value::ecma_array([("width", Amf0Value::Number(320.0))]),
        ],
        &mut p,
    );
    p
}

/// Named seed inputs: a publisher, a player, refusals, a timeout, a full output queue.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let avc = [0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F];
    let key = [0x17, 1, 0, 0, 0, 0x65, 1, 2, 3];
    let inter = [0x27, 1, 0, 0, 0, 0x41, 9];
    let publish = S::connected(0)
        .status("onStatus", 1, "NetStream.Publish.Start", 0)
        .control(4, 2_500_000)
        .control(3, 4096)
        .send(2, 0, &metadata())
        .send(1, 0, &avc)
        .send(0, 0, &[0xAF, 0, 0x12, 0x10])
        .send(1, 0, &key)
        .control(5, 1234)
        .send(1, 40, &inter)
        .write(100)
        .send(0, 23, &[0xAF, 1, 0x21])
        .raw(&[op::FINISH])
        .write(0);
    let play = S::connected(1)
        .status("onStatus", 1, "NetStream.Play.Reset", 0)
        .status("onStatus", 1, "NetStream.Play.Start", 0)
        .control(0, 4096)
        .control(3, 64)
        .media(2, 0, &metadata())
        .media(1, 0, &avc)
        .media(1, 0, &key)
        .aggregate(&[(1, 40, &inter), (0, 43, &[0xAF, 1, 7])])
        .time(4)
        .status("onStatus", 1, "NetStream.Play.UnpublishNotify", 0)
        .status("onStatus", 1, "NetStream.Play.PublishNotify", 0)
        .status("onStatus", 1, "NetStream.Play.Stop", 0)
        .write(0);
    let rejected =
        S::new(0)
            .handshake()
            .write(0)
            .status("_error", 0, "NetConnection.Connect.Rejected", 1);
    let not_found = S::connected(1).status("onStatus", 1, "NetStream.Play.StreamNotFound", 1);
    let bad_name = S::connected(0).status("onStatus", 1, "NetStream.Publish.BadName", 1);
    let timeout = S::new(2).handshake().time(11).time(11);
    let big = vec![0x27; 6000];
    let full = S::connected(2)
        .status("onStatus", 1, "NetStream.Publish.Start", 0)
        .send(1, 0, &big)
        .send(1, 40, &big)
        .send(1, 80, &big)
        .write(4000)
        .send(1, 120, &big)
        .raw(&[op::EOF]);
    let stop = S::connected(0x11)
        .status("onStatus", 1, "NetStream.Play.Start", 0)
        .raw(&[op::FINISH]);
    vec![
        ("publish", publish.0),
        ("play", play.0),
        ("connect-rejected", rejected.0),
        ("stream-not-found", not_found.0),
        ("bad-name", bad_name.0),
        ("timeout", timeout.0),
        ("output-full", full.0),
        ("play-stop", stop.0),
    ]
}
