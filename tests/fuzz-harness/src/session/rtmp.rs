//! `rtmp_session`: plugins/rtmp's `RtmpSession` driven by a script (see [`super`]).
//!
//! The first byte of the input selects the settings ([`settings`]); the rest is the script.
//! [`op::CLIENT`](super::op::CLIENT) builds a client message: `[kind]` then
//! - 0 handshake `[flags]`: C0+C1+C2 (bit 0: digest C1; bit 1: C0+C1 only; bit 2: C2 only);
//! - 1 command `[name][flags][msid][txn][n][len][text...]`, the name from [`COMMANDS`];
//! - 2 media `[type][msid][ts: u16][len][payload...]`, the type from [`MEDIA_TYPES`];
//! - 3 control `[which][value: u32]`;
//! - 4 aggregate `[msid][count]` then count × `[type][ts: u16][len][payload...]`;
//!
//! chunked at the chunk size the harness's client last announced.
//!
//! Checked after every call, each from the session's code and documentation:
//! - no panic, every call returns `Ok` (violations close the connection instead);
//! - after a `Close`, only further `Close`s; nothing before `start`;
//! - the written bytes are S0 (version 3), S1, S2, then a chunk stream a client decodes at the
//!   chunk size the session announced, interleaved with what the hub sends each open
//!   subscription (the session's own `rtmp/CHUNK/MSID` encoder, between calls): only control,
//!   command and data messages, each parsing; the announced chunk size is `chunk_size`; an
//!   Acknowledgement never counts more bytes than were received;
//! - timers are between 1 ms and the longer of the handshake and idle timeouts; a timer at or
//!   after the handshake deadline with the handshake incomplete closes, as does one after
//!   `idle_timeout_ms` without input;
//! - authenticators are never asked directly (the app handler decides over RTMP);
//! - one `connect` app call at most; `publish`/`play` app calls only after the app handler
//!   accepted the connect, for the connected app and a valid name; a `close` app call at most
//!   once, after an accepted connect, followed by a `Close`;
//! - at most one answer outstanding (an app call or a publish result), and while one is, no more
//!   than `max_pending_bytes` are taken from the client before it closes;
//! - a `Publish` only right after the app handler accepted (or redirected) that publish, for the
//!   stream it decided, with the settings' grace and conflict policy; and it always follows such
//!   an answer; a refused connect, a takeover of a publication, a shutdown and the client's EOF
//!   close the session;
//! - packets only for a started publication, not unpublished nor taken over; never raw, never
//!   empty, at most `max_message_size` bytes, flags that fit the kind;
//! - a `Subscribe` only right after the app handler accepted (or redirected) a play, or when a
//!   live stream ended under `on_stream_end = "wait"`, with the same stream and format; its
//!   format is one the frontend encodes and uses the announced chunk size; options from the
//!   settings;
//! - ids of requests, publications and subscriptions are never reused; `Unpublish`,
//!   `Unsubscribe` and `Control` name ids the session holds (`Control` not after the hub ended
//!   the subscription);
//! - no more publications and subscriptions at once than `max_streams`.

use std::collections::BTreeMap;
use std::sync::Arc;

use fstream_abi::abi_stable::std_types::RVec;
use fstream_abi::names::validate_part;
use fstream_abi::sdk::{Encode, SessionLogic};
use fstream_abi::{
    flags, payload_from, Action, AppCall, AppVerdict, ConnInfo, Event, MediaKind, MediaPacket,
    NetAddr, Outbox, OverflowPolicy, PluginError, PublishOutcome, SubscriptionStatus,
};
use fstream_media::amf0::Amf0Value;
use fstream_media::rtmp::chunk::{
    ChunkDecoder, ChunkEncoder, ChunkLimits, MAX_EFFECTIVE_CHUNK_SIZE, MAX_MESSAGE_LEN,
};
use fstream_media::rtmp::handshake::{ClientHandshake, HANDSHAKE_SIZE};
use fstream_media::rtmp::message::{
    msg_type, parse_data, Command, CommandEncoding, ControlMessage, PeerBandwidthLimit,
    UserControlEvent,
};
use fstream_media::rtmp::RtmpMessage;
use fstream_media::AmfLimits;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rtmp::encoder::{parse_format, RtmpEncoder, PROBE_FORMAT};
use rtmp::session::RtmpSession;
use rtmp::settings::{SecondPublisher, Settings, StreamEnd};

use super::{
    actions, advance, check_flags, describe, is_final, note, publish_outcome, valid_stream, Op,
    Reader, Script, Used,
};

/// S0 + S1 + S2.
const SERVER_HANDSHAKE_LEN: usize = 1 + 2 * HANDSHAKE_SIZE;

/// Commands the harness's client can send ([`op::CLIENT`](super::op::CLIENT) kind 1).
pub const COMMANDS: &[&str] = &[
    "connect",
    "createStream",
    "publish",
    "play",
    "deleteStream",
    "closeStream",
    "pause",
    "seek",
    "receiveAudio",
    "receiveVideo",
    "releaseStream",
    "FCPublish",
    "FCUnpublish",
    "FCSubscribe",
    "FCUnsubscribe",
    "getStreamLength",
    "_result",
    "onStatus",
    "noSuchCommand",
];

/// Message types of kind 2, with their chunk stream ids.
pub const MEDIA_TYPES: &[(u8, u32)] = &[
    (msg_type::AUDIO, 4),
    (msg_type::VIDEO, 6),
    (msg_type::DATA_AMF0, 5),
    (msg_type::DATA_AMF3, 5),
    (msg_type::SHARED_OBJECT_AMF0, 5),
    (msg_type::AGGREGATE, 4),
    (7, 4),
];

/// Generous limits for what the session sends: deep enough for any app handler's arguments.
const PEER_AMF_LIMITS: AmfLimits = AmfLimits {
    max_depth: 1024,
    max_nodes: 1 << 20,
    max_bytes: 1 << 26,
    max_refs: 1 << 16,
};

/// The settings selected by the input's first byte (all valid by `Settings::parse`'s rules).
pub fn settings(c: u8) -> Settings {
    let mut s = Settings::default();
    if c & 0x01 != 0 {
        s.max_chunk_size = 4096;
        s.max_message_size = 4096;
        s.max_chunk_streams = 4;
        s.max_partial_bytes = 8192;
        s.max_pending_bytes = 2048;
    }
    if c & 0x02 != 0 {
        s.on_stream_end = StreamEnd::Stop;
    }
    if c & 0x04 != 0 {
        s.second_publisher = SecondPublisher::Reject;
    }
    s.max_streams = [8, 1, 2, 3][usize::from((c >> 3) & 3)];
    if c & 0x20 != 0 {
        s.chunk_size = 128;
    }
    if c & 0x40 != 0 {
        s.handshake_timeout_ms = 100;
        s.idle_timeout_ms = 1000;
        s.policy_file = false;
    }
    if c & 0x80 != 0 {
        s.play_wait_ms = 0;
        s.player_queue_bytes = 65536;
        s.grace_ms = 0;
    }
    s
}

/// The fuzz target's body.
pub fn rtmp_session(data: &[u8]) {
    run(data, false);
}

/// Runs a script and returns what the session did, one line per action (for tests of seeds).
pub fn rtmp_session_trace(data: &[u8]) -> Vec<String> {
    run(data, true)
}

fn run(data: &[u8], trace: bool) -> Vec<String> {
    let mut r = Reader::new(data);
    let mut h = Host::new(settings(r.u8()));
    h.trace = trace.then(Vec::new);
    h.start();
    while !r.is_empty() {
        match Op::read(&mut r, &h.used) {
            Op::Bytes(b) => h.bytes(b),
            Op::Client => {
                let b = h.client.message(&mut r);
                h.bytes(&b);
            }
            Op::Time { step, fire } => {
                h.now = advance(h.now, step, h.timer_due);
                if fire {
                    h.timer();
                }
            }
            Op::Event(e) => h.event(e),
            Op::Eof => h.eof(),
        }
    }
    // The connection ends: the host tells a session that has not closed.
    h.eof();
    h.trace.unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The harness's client

struct Client {
    enc: ChunkEncoder,
    rng: StdRng,
}

impl Client {
    fn new() -> Self {
        Self {
            enc: ChunkEncoder::default(),
            rng: StdRng::seed_from_u64(7),
        }
    }

    fn chunk(&self, msg: &RtmpMessage) -> Vec<u8> {
        self.enc.encode_message(msg.csid, msg).unwrap_or_default()
    }

    fn message(&mut self, r: &mut Reader) -> Vec<u8> {
        match r.u8() % 5 {
            0 => self.handshake(r.u8()),
            1 => self.command(r),
            2 => {
                let (type_id, csid) = MEDIA_TYPES[usize::from(r.u8()) % MEDIA_TYPES.len()];
                let msid = u32::from(r.u8());
                let ts = u32::from(r.u16());
                let payload = r.blob().to_vec();
                self.chunk(&RtmpMessage::new(csid, ts, type_id, msid, payload))
            }
            3 => {
                let which = r.u8();
                let v = r.u32();
                let c = match which % 9 {
                    0 => ControlMessage::SetChunkSize(v),
                    1 => ControlMessage::Abort(v),
                    2 => ControlMessage::Acknowledgement(v),
                    3 => ControlMessage::WindowAckSize(v),
                    4 => ControlMessage::SetPeerBandwidth {
                        window: v,
                        limit: PeerBandwidthLimit::Dynamic,
                    },
                    5 => ControlMessage::UserControl(UserControlEvent::PingRequest(v)),
                    6 => ControlMessage::UserControl(UserControlEvent::SetBufferLength {
                        stream_id: v >> 16,
                        buffer_ms: v & 0xFFFF,
                    }),
                    7 => ControlMessage::UserControl(UserControlEvent::PingResponse(v)),
                    _ => ControlMessage::UserControl(UserControlEvent::StreamBegin(v)),
                };
                let bytes = self.chunk(&c.to_message());
                if let ControlMessage::SetChunkSize(n) = c {
                    // What the client uses from now on, as far as the encoder allows it.
                    let _ = self.enc.set_chunk_size(n.min(MAX_EFFECTIVE_CHUNK_SIZE));
                }
                bytes
            }
            _ => {
                let msid = u32::from(r.u8());
                let mut body = Vec::new();
                for _ in 0..r.u8() % 4 {
                    let (type_id, _) = MEDIA_TYPES[usize::from(r.u8()) % MEDIA_TYPES.len()];
                    let ts = u32::from(r.u16());
                    let data = r.blob();
                    let len = data.len() as u32;
                    body.push(type_id);
                    body.extend_from_slice(&len.to_be_bytes()[1..]);
                    body.extend_from_slice(&ts.to_be_bytes()[1..]);
                    body.push((ts >> 24) as u8);
                    body.extend_from_slice(&[0, 0, 0]);
                    body.extend_from_slice(data);
                    body.extend_from_slice(&(len + 11).to_be_bytes());
                }
                self.chunk(&RtmpMessage::new(4, 0, msg_type::AGGREGATE, msid, body))
            }
        }
    }

    fn handshake(&mut self, flags: u8) -> Vec<u8> {
        let hs = if flags & 1 != 0 {
            ClientHandshake::new_digest(0, &mut self.rng)
        } else {
            ClientHandshake::new(0, &mut self.rng)
        };
        let mut v = Vec::new();
        if flags & 4 == 0 {
            v.extend_from_slice(&hs.c0c1());
        }
        if flags & 2 == 0 {
            // C2 should echo S1; servers do not check it, and neither does this one.
            v.extend((0..HANDSHAKE_SIZE).map(|i| i as u8));
        }
        v
    }

    fn command(&mut self, r: &mut Reader) -> Vec<u8> {
        let name = COMMANDS[usize::from(r.u8()) % COMMANDS.len()];
        let flags = r.u8();
        let msid = u32::from(r.u8());
        let txn = f64::from(r.u8());
        let n = f64::from(r.u8());
        let text = r.text();
        let s = |t: &str| Amf0Value::from(t);
        let mut obj = Amf0Value::Null;
        let args = match name {
            "connect" => {
                obj = Amf0Value::object([
                    ("app", s(&text)),
                    ("tcUrl", s(&format!("rtmp://localhost/{text}"))),
                    (
                        "objectEncoding",
                        Amf0Value::Number([0.0, 3.0, 0.0, 5.0][usize::from(flags & 3)]),
                    ),
                ]);
                if flags & 4 != 0 {
                    vec![Amf0Value::object([("n", Amf0Value::Number(n))])]
                } else {
                    vec![]
                }
            }
            "publish" => vec![
                s(&text),
                s(["live", "record", "append", "appendWithGap"][usize::from(flags & 3)]),
            ],
            "play" => vec![
                s(&text),
                Amf0Value::Number([-2.0, -1.0, 0.0, n * 1000.0][usize::from(flags & 3)]),
                Amf0Value::Number(-1.0),
                Amf0Value::Boolean(flags & 4 == 0),
            ],
            "deleteStream" => vec![Amf0Value::Number(n)],
            "pause" => vec![
                Amf0Value::Boolean(flags & 1 == 1),
                Amf0Value::Number(n * 100.0),
            ],
            "seek" => vec![Amf0Value::Number(n * 100.0)],
            "receiveAudio" | "receiveVideo" => vec![Amf0Value::Boolean(flags & 1 == 1)],
            "releaseStream" | "FCPublish" | "FCUnpublish" | "FCSubscribe" | "FCUnsubscribe"
            | "getStreamLength" => vec![s(&text)],
            _ => vec![],
        };
        let encoding = if flags & 0x80 != 0 {
            CommandEncoding::Amf3
        } else {
            CommandEncoding::Amf0
        };
        let csid = if msid == 0 { 3 } else { 8 };
        match Command::new(name, txn, obj, args).to_message(encoding, csid, msid) {
            Ok(m) => self.chunk(&m),
            Err(_) => Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// Arguments of [`op::CLIENT`](super::op::CLIENT) for a command.
pub fn command(name: &str, flags: u8, msid: u8, txn: u8, n: u8, text: &str) -> Vec<u8> {
    let i = COMMANDS
        .iter()
        .position(|c| *c == name)
        .expect("a known command");
    let mut v = vec![1, i as u8, flags, msid, txn, n, text.len() as u8];
    v.extend_from_slice(text.as_bytes());
    v
}

/// Arguments of [`op::CLIENT`](super::op::CLIENT) for a media message (`kind` into
/// [`MEDIA_TYPES`]).
pub fn media(kind: u8, msid: u8, ts: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![2, kind, msid];
    v.extend_from_slice(&ts.to_be_bytes());
    v.push(payload.len() as u8);
    v.extend_from_slice(payload);
    v
}

/// Arguments of [`op::CLIENT`](super::op::CLIENT) for a control message.
pub fn control(which: u8, value: u32) -> Vec<u8> {
    let mut v = vec![3, which];
    v.extend_from_slice(&value.to_be_bytes());
    v
}

/// A publisher's and a player's real byte streams and conversations with the host, as scripts.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let hs = |s: Script| s.client(&[0, 0]);
    let connected = |settings: u8| {
        hs(Script::new(settings))
            .call("early", "[1]")
            .client(&command("connect", 0, 0, 1, 0, "fier"))
            .app(0, 0, "", &[])
            .call("serverNotice", "[1, \"news\", {\"a\": null}]")
            .client(&command("createStream", 0, 0, 2, 0, ""))
    };
    let avc_header = [0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F];
    let aac_header = [0xAF, 0, 0x12, 0x10];
    let publisher = connected(0)
        .client(&control(0, 4096))
        .client(&command("releaseStream", 0, 0, 3, 0, "cam"))
        .client(&command("FCPublish", 0, 0, 4, 0, "cam"))
        .client(&command("publish", 0, 1, 5, 0, "cam?user_password=123"))
        .app(0, 0, "", &[("onBWDone", "[null, 8192]")])
        .publish(0, 0)
        .client(&media(2, 1, 0, &metadata()))
        .client(&media(1, 1, 0, &avc_header))
        .client(&media(0, 1, 0, &aac_header))
        .client(&media(1, 1, 40, &[0x17, 1, 0, 0, 0, 0x65, 1, 2, 3]))
        .client(&media(0, 1, 23, &[0xAF, 1, 0x21, 0x10]))
        .client(&media(1, 1, 80, &[0x27, 1, 0, 0, 0, 0x41, 9]))
        .time(4)
        .client(&command("FCUnpublish", 0, 0, 6, 0, "cam"))
        .client(&command("deleteStream", 0, 0, 7, 1, ""))
        .eof();
    let player = connected(0x80)
        .client(&control(6, 1 << 16 | 3000))
        .client(&command("play", 0, 1, 3, 0, "cam"))
        .app(0, 0, "", &[])
        .subscription(0, 0, 0)
        .subscription(0, 1, 1)
        .client(&command("pause", 1, 1, 0, 0, ""))
        .client(&command("pause", 0, 1, 0, 0, ""))
        .subscription(0, 2, 0)
        .subscription(0, 3, 0)
        .subscription(0, 1, 1)
        .client(&command("receiveVideo", 0, 1, 0, 0, ""))
        .time(9)
        .time(11)
        .shutdown();
    let vod = connected(0x02)
        .client(&command("play", 1, 1, 3, 0, "film"))
        .app(0, 2, "vod/film", &[])
        .subscription(0, 7, 60)
        .client(&command("seek", 0, 1, 0, 100, ""))
        .subscription(0, 8, 100)
        .subscription(0, 3, 0)
        .client(&command("closeStream", 0, 1, 0, 0, ""));
    let takeover = connected(0x04)
        .client(&command("publish", 1, 1, 5, 0, "cam"))
        .app(0, 0, "", &[])
        .publish(0, 0)
        .client(&media(1, 1, 0, &avc_header))
        .replaced(0);
    let refused = hs(Script::new(0x41))
        .client(&control(3, 2500))
        .client(&command("connect", 1, 0, 1, 0, "nosuchapp"))
        .app(0, 1, "Application not found", &[("close", "[]")])
        .time(11);
    // The same publisher's first messages as raw bytes, as a client sends them.
    let mut raw = Vec::new();
    let mut c = Client::new();
    raw.extend(c.handshake(0));
    for args in [
        command("connect", 0, 0, 1, 0, "fier"),
        command("createStream", 0, 0, 2, 0, ""),
        command("publish", 0, 1, 3, 0, "cam"),
    ] {
        raw.extend(c.message(&mut Reader::new(&args)));
    }
    let raw = Script::new(0)
        .send(&raw)
        .app(0, 0, "", &[])
        .app(0, 0, "", &[])
        .publish(0, 1);
    vec![
        ("publish", publisher.bytes),
        ("play", player.bytes),
        ("vod", vod.bytes),
        ("takeover", takeover.bytes),
        ("refused", refused.bytes),
        ("raw-handshake", raw.bytes),
    ]
}

/// `@setDataFrame onMetaData {width: 640}`, as a publisher sends it.
fn metadata() -> Vec<u8> {
    let mut v = Vec::new();
    fstream_media::amf0::encode_all(
        &[
            Amf0Value::from("@setDataFrame"),
            Amf0Value::from("onMetaData"),
            Amf0Value::ecma_array([("width", Amf0Value::Number(640.0))]),
        ],
        &mut v,
    )
    .expect("encodable");
    v
}

// ---------------------------------------------------------------------------------------------
// The host and its model of the session

#[derive(Debug)]
enum Connect {
    New,
    Asked,
    Accepted(String),
    Over,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Connect,
    Publish,
    Play,
}

struct AppAsk {
    kind: CallKind,
    app: String,
    /// The stream name of a publish or play.
    name: String,
}

struct Publication {
    /// The hub's first answer.
    result: Option<PublishOutcome>,
    unpublished: bool,
    replaced: bool,
}

impl Publication {
    fn active(&self) -> bool {
        !self.unpublished
            && !self.replaced
            && matches!(self.result, None | Some(PublishOutcome::Started))
    }
    fn started(&self) -> bool {
        self.result == Some(PublishOutcome::Started) && !self.unpublished && !self.replaced
    }
}

struct Subscription {
    stream: String,
    format: String,
    /// A play's probe (no bytes; its first status decides the play).
    probe: bool,
    unsubscribed: bool,
    /// The hub ended it (a final status while the session held it).
    ended: bool,
    /// A recorded source opened on it (so it ends for good).
    recorded: bool,
}

impl Subscription {
    fn open(&self) -> bool {
        !self.unsubscribed && !self.ended
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    App(u64),
    /// A client's own command, with the app handler.
    Command(u64),
    Publish(u32),
    /// The first status of a play's probe subscription.
    Probe(u32),
}

/// What one call may do, decided by what it delivers.
#[derive(Default)]
struct Allowed {
    /// The stream of a `Publish` the call must make (an accepted publish).
    publish: Option<String>,
    /// A `Subscribe` the call may make.
    subscribe: Option<Expected>,
    /// The probe the call must unsubscribe.
    unsubscribe: Option<u32>,
    /// No `NetStream.Play.Start` may be written in this call (a play refused by its probe).
    no_play_start: bool,
    /// Why this call must leave the session closed.
    must_close: Option<&'static str>,
}

/// A subscription a call may (or must) make.
struct Expected {
    stream: String,
    kind: Expect,
    /// Not making it is a finding.
    owed: bool,
}

enum Expect {
    /// The probe of an accepted play.
    Probe,
    /// The player's subscription after its probe.
    Play,
    /// A new subscription of a player whose live stream ended, in the same format.
    Again { format: String, recorded: bool },
}

/// The client's view of what the session writes.
struct Peer {
    handshake_left: usize,
    dec: ChunkDecoder,
    /// The code of the last `onStatus` on each message stream.
    last_status: BTreeMap<u32, String>,
    /// `Play.Start` was written in the current call.
    play_start: bool,
    /// The session answered a Flash policy request.
    policy: bool,
}

struct Host {
    /// What the session did, when tracing.
    trace: Option<Vec<String>>,
    s: RtmpSession,
    settings: Arc<Settings>,
    client: Client,
    peer: Peer,
    now: u64,
    started_at: u64,
    timer_due: Option<u64>,
    used: Used,
    /// Bytes handed to the session.
    fed: u64,
    first_byte: Option<u8>,
    last_bytes_at: u64,
    closed: bool,
    eof: bool,
    connect: Connect,
    asks: BTreeMap<u64, AppAsk>,
    close_called: bool,
    publications: BTreeMap<u32, Publication>,
    subscriptions: BTreeMap<u32, Subscription>,
    wait: Option<Wait>,
    /// Bytes handed over in calls after the outstanding answer was asked for.
    fed_while_waiting: u64,
}

impl Host {
    fn new(settings: Settings) -> Self {
        let settings = Arc::new(settings);
        let (peer, local) = ("192.0.2.1:50000", "192.0.2.2:1935");
        let conn = ConnInfo {
            id: 1,
            peer: peer.into(),
            local: local.into(),
            peer_addr: NetAddr::parse_or_unspecified(peer),
            local_addr: NetAddr::parse_or_unspecified(local),
            ext: RVec::new(),
        };
        Self {
            trace: None,
            s: RtmpSession::new(settings.clone(), &conn),
            settings,
            client: Client::new(),
            peer: Peer {
                handshake_left: SERVER_HANDSHAKE_LEN,
                dec: ChunkDecoder::new(ChunkLimits {
                    max_chunk_size: MAX_EFFECTIVE_CHUNK_SIZE,
                    max_message_size: MAX_MESSAGE_LEN,
                    max_chunk_streams: 1024,
                    max_pending_bytes: 1 << 28,
                }),
                last_status: BTreeMap::new(),
                play_start: false,
                policy: false,
            },
            now: 1000,
            started_at: 1000,
            timer_due: None,
            used: Used::default(),
            fed: 0,
            first_byte: None,
            last_bytes_at: 1000,
            closed: false,
            eof: false,
            connect: Connect::New,
            asks: BTreeMap::new(),
            close_called: false,
            publications: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            wait: None,
            fed_while_waiting: 0,
        }
    }

    fn start(&mut self) {
        let now = self.now;
        self.call(Allowed::default(), |s, out| s.start(now, out));
    }

    fn bytes(&mut self, data: &[u8]) {
        // The host stops reading once the session closes or the client's side ended, and
        // never hands over nothing.
        if self.closed || self.eof || data.is_empty() {
            return;
        }
        if self.wait.is_some() {
            self.fed_while_waiting += data.len() as u64;
        }
        self.first_byte = self.first_byte.or(data.first().copied());
        self.fed += data.len() as u64;
        self.last_bytes_at = self.now;
        let now = self.now;
        self.call(Allowed::default(), |s, out| s.bytes(data, now, out));
        if self.wait.is_some()
            && self.fed_while_waiting > self.settings.max_pending_bytes as u64
            && !self.closed
        {
            panic!(
                "{} bytes taken while waiting for an answer; max_pending_bytes is {}",
                self.fed_while_waiting, self.settings.max_pending_bytes
            );
        }
    }

    fn timer(&mut self) {
        self.timer_due = None;
        let now = self.now;
        self.call(Allowed::default(), |s, out| s.timer(now, out));
        if self.closed {
            return;
        }
        let handshake_done = self.fed >= SERVER_HANDSHAKE_LEN as u64;
        if !handshake_done {
            assert!(
                now < self.started_at + self.settings.handshake_timeout_ms,
                "the handshake deadline passed at {now} and the session is open"
            );
        } else {
            assert!(
                now - self.last_bytes_at < self.settings.idle_timeout_ms,
                "idle since {} at {now} and the session is open",
                self.last_bytes_at
            );
        }
    }

    fn eof(&mut self) {
        if self.eof {
            return;
        }
        self.eof = true;
        let now = self.now;
        let allowed = Allowed {
            must_close: Some("the client's EOF"),
            ..Allowed::default()
        };
        self.call(allowed, |s, out| s.closed(now, out));
    }

    fn event(&mut self, e: Event) {
        let mut allowed = Allowed::default();
        match &e {
            Event::CommandResult { request, .. } if self.wait == Some(Wait::Command(*request)) => {
                self.wait = None;
            }
            Event::AppResult { request, decision } if self.wait == Some(Wait::App(*request)) => {
                self.wait = None;
                let ask = &self.asks[request];
                // A verdict this build does not know is a rejection.
                let decided = match decision.verdict() {
                    Some(AppVerdict::Accept) => Some(format!("{}/{}", ask.app, ask.name)),
                    Some(AppVerdict::Redirect(to)) if to.contains('/') => Some(to.to_string()),
                    Some(AppVerdict::Redirect(to)) => Some(format!("{}/{to}", ask.app)),
                    _ => None,
                }
                .filter(|s| valid_stream(s));
                match ask.kind {
                    CallKind::Connect => {
                        if decision.verdict() == Some(&AppVerdict::Accept) {
                            self.connect = Connect::Accepted(ask.app.clone());
                        } else {
                            self.connect = Connect::Over;
                            allowed.must_close = Some("a refused connect");
                        }
                    }
                    CallKind::Publish => allowed.publish = decided,
                    CallKind::Play => {
                        allowed.subscribe = decided.map(|stream| Expected {
                            stream,
                            kind: Expect::Probe,
                            owed: true,
                        })
                    }
                }
            }
            Event::PublishResult {
                publication,
                outcome,
            } if self.wait == Some(Wait::Publish(*publication)) => {
                self.wait = None;
                if let Some(p) = self.publications.get_mut(publication) {
                    p.result = Some(publish_outcome(outcome));
                }
            }
            Event::PublicationReplaced { publication } => {
                if let Some(p) = self.publications.get_mut(publication) {
                    if p.active() {
                        p.replaced = true;
                        allowed.must_close = Some("another publisher took over");
                    }
                }
            }
            Event::Subscription {
                subscription,
                status,
            } if self.wait == Some(Wait::Probe(*subscription)) => {
                self.wait = None;
                allowed.unsubscribe = Some(*subscription);
                let stream = self.subscriptions[subscription].stream.clone();
                // Nothing to play: the refusal alone. Something to play or to wait for: the
                // player's subscription. Other first statuses are the session's call.
                let (may, owed) = match status.as_enum() {
                    Ok(
                        SubscriptionStatus::NotFound
                        | SubscriptionStatus::Forbidden
                        | SubscriptionStatus::PublisherStarted { media: false },
                    ) => (false, false),
                    Ok(
                        SubscriptionStatus::Waiting
                        | SubscriptionStatus::PublisherStarted { media: true }
                        | SubscriptionStatus::SourceOpened { .. },
                    ) => (true, true),
                    _ => (true, false),
                };
                allowed.no_play_start = !may;
                if may {
                    allowed.subscribe = Some(Expected {
                        stream,
                        kind: Expect::Play,
                        owed,
                    });
                }
            }
            Event::Subscription {
                subscription,
                status,
            } => {
                let stop = self.settings.on_stream_end == StreamEnd::Stop;
                if let Some(sub) = self.subscriptions.get_mut(subscription) {
                    if sub.open() && !sub.probe {
                        if let Ok(SubscriptionStatus::SourceOpened { .. }) = status.as_enum() {
                            sub.recorded = true;
                        }
                        if is_final(status) {
                            sub.ended = true;
                            let ended = status.as_enum() == Ok(&SubscriptionStatus::Ended);
                            if ended && !stop && !sub.recorded {
                                allowed.subscribe = Some(Expected {
                                    stream: sub.stream.clone(),
                                    kind: Expect::Again {
                                        format: sub.format.clone(),
                                        recorded: sub.recorded,
                                    },
                                    owed: true,
                                });
                            }
                        }
                    }
                }
            }
            Event::Shutdown => allowed.must_close = Some("the host's shutdown"),
            _ => {}
        }
        let now = self.now;
        self.call(allowed, |s, out| s.event(e, now, out));
    }

    /// Calls the session, then checks and carries out its actions.
    fn call(
        &mut self,
        mut allowed: Allowed,
        f: impl FnOnce(&mut RtmpSession, &mut Outbox) -> Result<(), PluginError>,
    ) {
        let mut out = Outbox::new();
        let r = f(&mut self.s, &mut out);
        assert!(r.is_ok(), "the session failed: {r:?}");
        let mut close_call_here = false;
        self.peer.play_start = false;
        let policy_before = self.peer.policy;
        for a in actions(out) {
            assert!(
                !self.closed || matches!(a, Action::Close(_)),
                "{a:?} after the session closed"
            );
            self.action(a, &mut allowed, &mut close_call_here);
        }
        if let Some(why) = allowed.must_close {
            assert!(self.closed, "the session is still open after {why}");
        }
        if !self.closed {
            assert!(
                allowed.publish.is_none(),
                "no Publish after the app handler accepted the publish"
            );
            assert!(
                !allowed.subscribe.as_ref().is_some_and(|e| e.owed),
                "no Subscribe after an accepted play, its probe, or the end of a live stream"
            );
            assert!(
                allowed.unsubscribe.is_none(),
                "the probe of a play was answered and stays subscribed"
            );
        }
        assert!(
            !(allowed.no_play_start && self.peer.play_start),
            "Play.Start for a play whose probe found nothing to play"
        );
        assert!(
            policy_before || !self.peer.policy || self.closed,
            "the session answered a policy request and stays open"
        );
        assert!(
            !close_call_here || self.closed,
            "the app handler was told of the close, and the session stays open"
        );
        let active = self.publications.values().filter(|p| p.active()).count()
            + self.subscriptions.values().filter(|s| s.open()).count();
        assert!(
            active <= self.settings.max_streams as usize,
            "{active} publications and subscriptions at once; max_streams is {}",
            self.settings.max_streams
        );
        self.hub_sends_media();
    }

    fn action(&mut self, a: Action, allowed: &mut Allowed, close_call_here: &mut bool) {
        note(&mut self.trace, || describe(&a));
        if let Action::Unsubscribe { subscription } = &a {
            if allowed.unsubscribe == Some(*subscription) {
                allowed.unsubscribe = None;
            }
        }
        match a {
            Action::Write(p) => self.peer_reads(&p),
            Action::Close(_) => {
                self.closed = true;
                self.wait = None;
            }
            Action::SetTimer(ms) => {
                let max = self
                    .settings
                    .handshake_timeout_ms
                    .max(self.settings.idle_timeout_ms);
                assert!((1..=max).contains(&ms), "SetTimer({ms}), max {max}");
                self.timer_due = Some(self.now + ms);
            }
            Action::Authenticate { .. } | Action::IssueToken { .. } => {
                panic!("the RTMP session asked the authenticators itself: {a:?}")
            }
            Action::CallApp { request, call } => {
                assert!(
                    !self.used.app.contains(&request),
                    "app request id {request} reused"
                );
                self.used.app.push(request);
                let call = call.as_enum().expect("an app call this build knows");
                let (kind, app, name) = match call {
                    AppCall::Connect(c) => {
                        assert!(
                            matches!(self.connect, Connect::New),
                            "a second connect call ({:?})",
                            self.connect
                        );
                        assert!(validate_part(&c.app).is_ok(), "connect app {:?}", c.app);
                        self.connect = Connect::Asked;
                        (CallKind::Connect, c.app.to_string(), String::new())
                    }
                    AppCall::Publish(c) => {
                        self.connected_app(&c.app);
                        assert!(validate_part(&c.stream).is_ok(), "publish {:?}", c.stream);
                        (CallKind::Publish, c.app.to_string(), c.stream.to_string())
                    }
                    AppCall::Play(c) => {
                        self.connected_app(&c.app);
                        assert!(validate_part(&c.stream).is_ok(), "play {:?}", c.stream);
                        (CallKind::Play, c.app.to_string(), c.stream.to_string())
                    }
                    AppCall::Close(c) => {
                        self.connected_app(&c.app);
                        assert!(!self.close_called, "a second close call");
                        self.close_called = true;
                        *close_call_here = true;
                        return;
                    }
                    other => panic!("an app call the harness does not model: {other:?}"),
                };
                self.ask(Wait::App(request));
                self.asks.insert(request, AppAsk { kind, app, name });
            }
            Action::CallCommand { request, call } => {
                assert!(
                    !self.used.app.contains(&request),
                    "app request id {request} reused"
                );
                self.connected_app(&call.app);
                self.used.app.push(request);
                self.used.commands.push(request);
                self.ask(Wait::Command(request));
            }
            Action::Publish {
                publication,
                stream,
                options,
            } => {
                let expected = allowed
                    .publish
                    .take()
                    .unwrap_or_else(|| panic!("Publish of {stream} nobody accepted"));
                assert_eq!(stream.as_str(), expected, "the stream published");
                assert_eq!(options.grace_ms, self.settings.grace_ms);
                assert_eq!(options.conflict, self.settings.second_publisher.conflict());
                let id = u64::from(publication);
                assert!(
                    !self.used.publications.contains(&id),
                    "publication id {id} reused"
                );
                self.used.publications.push(id);
                self.ask(Wait::Publish(publication));
                self.publications.insert(
                    publication,
                    Publication {
                        result: None,
                        unpublished: false,
                        replaced: false,
                    },
                );
            }
            Action::Packet {
                publication,
                packet,
            } => {
                let started = self
                    .publications
                    .get(&publication)
                    .is_some_and(Publication::started);
                assert!(started, "a packet for publication {publication}, not live");
                self.check_packet(&packet);
            }
            Action::Unpublish { publication } => {
                let p = self
                    .publications
                    .get_mut(&publication)
                    .unwrap_or_else(|| panic!("Unpublish of unknown publication {publication}"));
                assert!(
                    !p.unpublished,
                    "publication {publication} unpublished twice"
                );
                p.unpublished = true;
            }
            Action::Subscribe {
                subscription,
                stream,
                options,
            } => {
                let expected = allowed
                    .subscribe
                    .take()
                    .unwrap_or_else(|| panic!("Subscribe to {stream} nobody accepted"));
                assert_eq!(stream.as_str(), expected.stream, "the stream subscribed");
                let probe = matches!(expected.kind, Expect::Probe);
                let mut recorded = false;
                match expected.kind {
                    Expect::Probe => {
                        assert_eq!(options.format.as_str(), PROBE_FORMAT, "a probe's format");
                        assert!(
                            !options.audio && !options.video && !options.join_with_cache,
                            "a probe asks for no media"
                        );
                    }
                    Expect::Play => {
                        let (_, msid) = parse_format(&options.format)
                            .unwrap_or_else(|| panic!("format {:?}", options.format));
                        let last = self.peer.last_status.get(&msid).map(String::as_str);
                        assert_eq!(
                            last,
                            Some("NetStream.Play.Start"),
                            "the player's subscription before Play.Start on stream {msid}"
                        );
                    }
                    Expect::Again {
                        format,
                        recorded: r,
                    } => {
                        assert_eq!(options.format.as_str(), format, "a resubscription's format");
                        recorded = r;
                    }
                }
                if !probe {
                    let (chunk, msid) = parse_format(&options.format)
                        .unwrap_or_else(|| panic!("format {:?}", options.format));
                    assert_eq!(chunk, self.settings.chunk_size, "the format's chunk size");
                    assert!(msid > 0);
                    assert!(RtmpEncoder::new(&options.format).is_ok());
                }
                assert_eq!(options.overflow, OverflowPolicy::SkipToKeyframe);
                assert_eq!(options.wait_ms, self.settings.play_wait_ms);
                assert_eq!(options.max_queue_bytes, self.settings.player_queue_bytes);
                let id = u64::from(subscription);
                assert!(
                    !self.used.subscriptions.contains(&id),
                    "subscription id {id} reused"
                );
                self.used.subscriptions.push(id);
                if probe {
                    self.ask(Wait::Probe(subscription));
                }
                self.subscriptions.insert(
                    subscription,
                    Subscription {
                        stream: expected.stream,
                        format: options.format.to_string(),
                        probe,
                        unsubscribed: false,
                        ended: false,
                        recorded,
                    },
                );
            }
            Action::Unsubscribe { subscription } => {
                let s = self
                    .subscriptions
                    .get_mut(&subscription)
                    .unwrap_or_else(|| panic!("Unsubscribe of unknown {subscription}"));
                assert!(!s.unsubscribed, "{subscription} unsubscribed twice");
                s.unsubscribed = true;
            }
            Action::Control {
                subscription,
                control,
            } => {
                let open = self
                    .subscriptions
                    .get(&subscription)
                    .is_some_and(|s| s.open() && !s.probe);
                assert!(open, "{control:?} on subscription {subscription}, not open");
            }
            other => panic!("an action the harness does not model: {other:?}"),
        }
    }

    fn connected_app(&self, app: &str) {
        match &self.connect {
            Connect::Accepted(a) => assert_eq!(a, app, "an app call for another app"),
            other => panic!("an app call for {app} while the connect is {other:?}"),
        }
    }

    /// The session asks for an answer: none may be outstanding.
    fn ask(&mut self, w: Wait) {
        assert!(
            self.wait.is_none(),
            "{w:?} asked while {:?} is outstanding",
            self.wait
        );
        self.wait = Some(w);
        self.fed_while_waiting = 0;
    }

    fn check_packet(&self, p: &MediaPacket) {
        assert_ne!(p.kind, MediaKind::Raw, "RTMP has no raw packets");
        assert!(!p.payload.is_empty(), "an empty packet");
        assert!(
            p.payload.len() <= self.settings.max_message_size as usize,
            "a packet of {} bytes; max_message_size is {}",
            p.payload.len(),
            self.settings.max_message_size
        );
        check_flags(p);
    }

    /// The client decodes a write of the session.
    fn peer_reads(&mut self, mut bytes: &[u8]) {
        if self.first_byte == Some(b'<') {
            // A Flash socket policy request instead of C0: the policy, NUL-terminated, for our
            // port (1935 in `ConnInfo::local`), is all the session may write.
            assert!(
                self.settings.policy_file,
                "a policy file while policy_file is off"
            );
            assert!(!self.peer.policy, "a second policy file");
            let nul = bytes.iter().position(|&b| b == 0);
            assert_eq!(nul, Some(bytes.len() - 1), "one NUL, at the policy's end");
            let text = String::from_utf8_lossy(bytes);
            assert!(text.contains("to-ports=\"1935\""), "the policy: {text}");
            self.peer.policy = true;
            return;
        }
        if self.peer.handshake_left > 0 {
            if self.peer.handshake_left == SERVER_HANDSHAKE_LEN {
                assert_eq!(bytes.first(), Some(&3), "S0 is the version, 3");
            }
            let n = self.peer.handshake_left.min(bytes.len());
            self.peer.handshake_left -= n;
            bytes = &bytes[n..];
        }
        self.peer.dec.push(bytes);
        loop {
            match self.peer.dec.next_message() {
                Ok(Some(m)) => self.peer_message(&m),
                Ok(None) => break,
                Err(e) => panic!("the session wrote a broken chunk stream: {e}"),
            }
        }
    }

    fn peer_message(&mut self, m: &RtmpMessage) {
        let p = &m.payload[..];
        match m.type_id {
            1..=6 => match ControlMessage::parse(m.type_id, p) {
                Ok(ControlMessage::SetChunkSize(n)) => {
                    assert_eq!(n, self.settings.chunk_size, "the announced chunk size");
                    self.peer.dec.set_chunk_size(n).expect("a valid chunk size");
                }
                Ok(ControlMessage::Acknowledgement(seq)) => assert!(
                    u64::from(seq) <= self.fed,
                    "acknowledged {seq} bytes of {}",
                    self.fed
                ),
                Ok(_) => {}
                Err(e) => panic!("the session wrote a bad control message: {e}"),
            },
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                let cmd = Command::parse(m.type_id, p, &PEER_AMF_LIMITS)
                    .unwrap_or_else(|e| panic!("the session wrote a bad command: {e}"));
                if cmd.name == "onStatus" {
                    let code = cmd.args.iter().find_map(|a| a.get_str("code"));
                    let code = code.unwrap_or_default().to_string();
                    self.peer.play_start |= code == "NetStream.Play.Start";
                    note(&mut self.trace, || format!("status {code}"));
                    self.peer.last_status.insert(m.stream_id, code);
                }
            }
            msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => {
                if let Err(e) = parse_data(m.type_id, p, &PEER_AMF_LIMITS) {
                    panic!("the session wrote bad data: {e}");
                }
            }
            other => panic!("the session wrote a message of type {other}"),
        }
    }

    /// What the hub queues on this connection for each subscription between calls: a packet
    /// in the subscription's format, which the client must decode as that packet.
    fn hub_sends_media(&mut self) {
        if self.closed || self.peer.handshake_left > 0 {
            return;
        }
        let formats: Vec<String> = self
            .subscriptions
            .values()
            .filter(|s| s.open() && !s.probe)
            .map(|s| s.format.clone())
            .collect();
        for format in formats {
            let Ok(mut enc) = RtmpEncoder::new(&format) else {
                continue;
            };
            let body = [0x17, 1, 0, 0, 0, 0x65, 0x88];
            let packet = MediaPacket::new(
                MediaKind::Video,
                flags::KEYFRAME,
                self.now as u32,
                payload_from(&body),
            );
            let Ok(Some(bytes)) = enc.encode(&packet) else {
                panic!("the {format} encoder cannot encode a keyframe");
            };
            self.peer.dec.push(&bytes);
            match self.peer.dec.next_message() {
                Ok(Some(m)) => {
                    assert_eq!(m.type_id, msg_type::VIDEO, "the hub's packet");
                    assert_eq!(&m.payload[..], &body[..], "the hub's packet");
                }
                other => panic!("the hub's {format} packet does not decode: {other:?}"),
            }
        }
    }
}
