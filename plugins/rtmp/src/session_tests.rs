//! Byte-level tests of a session: a scripted client's bytes in, the session's writes and host
//! actions out.

use std::sync::Arc;

use abi_stable::std_types::{ROption, RVec};
use fstream_abi::{
    flags, sdk::SessionLogic, Action, AppCall, AppDecision, ClientCommand, CloseMode, CommandReply,
    CommandReply_NE, ConnInfo, Event, MediaKind, NetAddr, Outbox, OverflowPolicy, PublishConflict,
    PublishOutcome, PublishOutcome_NE, RecordMode, SubscriptionControl, SubscriptionStatus,
    SubscriptionStatus_NE,
};
use fstream_media::{
    amf0::{self, Amf0Value},
    flv::write_tag,
    rtmp::{
        chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, RtmpMessage},
        handshake::{ClientHandshake, HandshakeStatus},
        message::{msg_type, Command, CommandEncoding, ControlMessage, UserControlEvent},
    },
    AmfLimits,
};

use crate::{session::RtmpSession, settings::Settings};

/// A scripted client in front of one session, in virtual time.
struct Client {
    session: RtmpSession,
    now: u64,
    enc: ChunkEncoder,
    dec: ChunkDecoder,
    encoding: CommandEncoding,
}

/// What one session call produced: the messages it wrote (decoded) and its other actions.
#[derive(Default)]
struct Output {
    messages: Vec<RtmpMessage>,
    actions: Vec<Action>,
    /// The position of each write among the actions (index into `actions` at the time).
    raw: Vec<u8>,
}

impl Output {
    fn commands(&self) -> Vec<Command> {
        self.messages
            .iter()
            .filter(|m| matches!(m.type_id, msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3))
            .map(|m| Command::parse(m.type_id, &m.payload, &AmfLimits::default()).unwrap())
            .collect()
    }

    /// `(name, code)` of each command; code is the info object's `code`, if any.
    fn codes(&self) -> Vec<(String, String)> {
        self.commands()
            .into_iter()
            .map(|c| {
                let code = c
                    .args
                    .iter()
                    .find_map(|a| a.get_str("code"))
                    .unwrap_or("")
                    .to_string();
                (c.name, code)
            })
            .collect()
    }

    fn controls(&self) -> Vec<ControlMessage> {
        self.messages
            .iter()
            .filter(|m| m.type_id <= 6)
            .map(|m| ControlMessage::parse(m.type_id, &m.payload).unwrap())
            .collect()
    }

    fn closed(&self) -> Option<CloseMode> {
        self.actions.iter().find_map(|a| match a {
            Action::Close(m) => Some(*m),
            _ => None,
        })
    }

    fn app_call(&self) -> (u64, AppCall) {
        self.actions
            .iter()
            .find_map(|a| match a {
                Action::CallApp { request, call } => {
                    Some((*request, call.as_enum().expect("a known call").clone()))
                }
                _ => None,
            })
            .expect("an app call")
    }

    fn command_call(&self) -> (u64, fstream_abi::CommandCall) {
        self.actions
            .iter()
            .find_map(|a| match a {
                Action::CallCommand { request, call } => Some((*request, call.clone())),
                _ => None,
            })
            .expect("a command for the app handler")
    }

    fn packets(&self) -> Vec<fstream_abi::MediaPacket> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Packet { packet, .. } => Some(packet.clone()),
                _ => None,
            })
            .collect()
    }

    /// The first subscription asked for: (id, stream, options).
    fn subscribed(&self) -> Option<(u32, String, fstream_abi::SubscribeOptions)> {
        self.actions.iter().find_map(|a| match a {
            Action::Subscribe {
                subscription,
                stream,
                options,
            } => Some((*subscription, stream.to_string(), options.clone())),
            _ => None,
        })
    }

    /// The id of a play's probe: the only action after the app's decision, a subscription of the
    /// byte-less format, with nothing written to the player yet.
    fn probe(&self) -> u32 {
        assert_eq!(
            self.kinds(),
            ["subscribe"],
            "a play starts with its probe alone"
        );
        assert!(
            self.raw.is_empty(),
            "nothing is written before the probe answers"
        );
        let (id, _, options) = self.subscribed().expect("a probe");
        assert_eq!(options.format.as_str(), crate::encoder::PROBE_FORMAT);
        assert!(!options.join_with_cache && !options.audio && !options.video);
        id
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.actions
            .iter()
            .map(|a| match a {
                Action::Write(_) => "write",
                Action::Close(_) => "close",
                Action::SetTimer(_) => "timer",
                Action::Authenticate { .. } => "auth",
                Action::IssueToken { .. } => "token",
                Action::CallApp { .. } => "app",
                Action::Publish { .. } => "publish",
                Action::Packet { .. } => "packet",
                Action::Unpublish { .. } => "unpublish",
                Action::Subscribe { .. } => "subscribe",
                Action::Unsubscribe { .. } => "unsubscribe",
                Action::Control { .. } => "control",
                _ => "unknown",
            })
            .collect()
    }
}

fn settings(edit: impl FnOnce(&mut Settings)) -> Arc<Settings> {
    let mut s = Settings::default();
    edit(&mut s);
    Arc::new(s)
}

fn conn_info(id: u64, peer: &str, local: &str) -> ConnInfo {
    ConnInfo {
        id,
        peer: peer.into(),
        local: local.into(),
        peer_addr: NetAddr::parse_or_unspecified(peer),
        local_addr: NetAddr::parse_or_unspecified(local),
        ext: RVec::new(),
    }
}

fn conn() -> ConnInfo {
    conn_info(7, "127.0.0.1:5000", "127.0.0.1:1935")
}

/// A subscription's status change, from the host.
fn status_event(subscription: u32, status: SubscriptionStatus) -> Event {
    Event::Subscription {
        subscription,
        status: SubscriptionStatus_NE::new(status),
    }
}

/// The hub's answer to a publish.
fn publish_result(publication: u32, outcome: PublishOutcome) -> Event {
    Event::PublishResult {
        publication,
        outcome: PublishOutcome_NE::new(outcome),
    }
}

/// The subscription and the change of a `Control` action.
fn control_of(a: &Action) -> Option<(u32, &SubscriptionControl)> {
    match a {
        Action::Control {
            subscription,
            control,
        } => Some((*subscription, control.as_enum().ok()?)),
        _ => None,
    }
}

impl Client {
    /// A started session, before the handshake.
    fn new(settings: Arc<Settings>) -> (Self, Output) {
        let mut c = Client {
            session: RtmpSession::new(settings, &conn()),
            now: 1000,
            enc: ChunkEncoder::default(),
            dec: ChunkDecoder::new(ChunkLimits::default()),
            encoding: CommandEncoding::Amf0,
        };
        let mut out = Outbox::new();
        c.session.start(c.now, &mut out).unwrap();
        let o = c.collect(out, false);
        (c, o)
    }

    /// A session after the handshake (simple or digest).
    fn handshaken(settings: Arc<Settings>, digest: bool) -> Self {
        let (mut c, _) = Client::new(settings);
        let mut rng = rand::thread_rng();
        let mut hs = if digest {
            ClientHandshake::new_digest(0, &mut rng)
        } else {
            ClientHandshake::new(0, &mut rng)
        };
        let o = c.send_raw(&hs.c0c1(), false);
        assert_eq!(o.raw.len(), 1 + 2 * 1536, "S0 S1 S2");
        let mut c2 = Vec::new();
        assert_eq!(hs.feed(&o.raw, &mut c2), Ok(HandshakeStatus::Complete));
        let o = c.send_raw(&c2, true);
        assert!(o.messages.is_empty());
        assert_eq!(
            o.kinds(),
            ["timer"],
            "the idle timer replaces the handshake's"
        );
        c
    }

    /// A connected session (app `fier`, accepted).
    fn connected(settings: Arc<Settings>) -> Self {
        let mut c = Client::handshaken(settings, false);
        let o = c.command(0, "connect", 1.0, connect_object("fier", 0.0), vec![]);
        let (request, _) = o.app_call();
        let o = c.event(Event::AppResult {
            request,
            decision: AppDecision::accept(),
        });
        assert_eq!(
            o.codes(),
            [("_result".into(), "NetConnection.Connect.Success".into())]
        );
        c
    }

    /// A connected session with stream 1 created.
    fn with_stream(settings: Arc<Settings>) -> Self {
        let mut c = Client::connected(settings);
        let o = c.command(0, "createStream", 2.0, Amf0Value::Null, vec![]);
        assert_eq!(o.commands()[0].args, [Amf0Value::Number(1.0)]);
        c
    }

    fn collect(&mut self, mut out: Outbox, decode: bool) -> Output {
        let mut o = Output::default();
        for a in out.take_known() {
            if let Action::Write(p) = &a {
                o.raw.extend_from_slice(p);
                if decode {
                    self.dec.push(p);
                    while let Some(m) = self.dec.next_message().unwrap() {
                        if let Ok(ControlMessage::SetChunkSize(n)) =
                            ControlMessage::parse(m.type_id, &m.payload)
                        {
                            self.dec.set_chunk_size(n).unwrap();
                        }
                        o.messages.push(m);
                    }
                }
            }
            o.actions.push(a);
        }
        o
    }

    fn send_raw(&mut self, bytes: &[u8], decode: bool) -> Output {
        let mut out = Outbox::new();
        self.session.bytes(bytes, self.now, &mut out).unwrap();
        self.collect(out, decode)
    }

    fn send(&mut self, bytes: &[u8]) -> Output {
        self.send_raw(bytes, true)
    }

    fn bytes_of(&self, m: &RtmpMessage) -> Vec<u8> {
        self.enc.encode_message(m.csid, m).unwrap()
    }

    fn command_bytes(
        &self,
        msid: u32,
        name: &str,
        txn: f64,
        obj: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Vec<u8> {
        let m = Command::new(name, txn, obj, args)
            .to_message(self.encoding, if msid == 0 { 3 } else { 8 }, msid)
            .unwrap();
        self.bytes_of(&m)
    }

    fn command(
        &mut self,
        msid: u32,
        name: &str,
        txn: f64,
        obj: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Output {
        let b = self.command_bytes(msid, name, txn, obj, args);
        self.send(&b)
    }

    fn event(&mut self, ev: Event) -> Output {
        let mut out = Outbox::new();
        self.session.event(ev, self.now, &mut out).unwrap();
        self.collect(out, true)
    }

    /// Answers the probe of a play (from the output of the app's decision) with `status`.
    fn answer_probe(&mut self, decided: &Output, status: SubscriptionStatus) -> Output {
        let subscription = decided.probe();
        self.event(status_event(subscription, status))
    }

    /// Answers the probe with `Waiting` and returns the real subscription's id.
    fn play_through_probe(&mut self, decided: &Output) -> u32 {
        let o = self.answer_probe(decided, SubscriptionStatus::Waiting);
        assert!(
            o.codes()
                .contains(&("onStatus".into(), "NetStream.Play.Start".into())),
            "{:?}",
            o.codes()
        );
        o.subscribed().expect("the real subscription").0
    }

    fn timer(&mut self, at: u64) -> Output {
        self.now = at;
        let mut out = Outbox::new();
        self.session.timer(self.now, &mut out).unwrap();
        self.collect(out, true)
    }

    fn close(&mut self) -> Output {
        let mut out = Outbox::new();
        self.session.closed(self.now, &mut out).unwrap();
        self.collect(out, true)
    }
}

fn connect_object(app: &str, object_encoding: f64) -> Amf0Value {
    Amf0Value::object([
        ("app", Amf0Value::from(app)),
        ("type", Amf0Value::from("nonprivate")),
        (
            "flashVer",
            Amf0Value::from("FMLE/3.0 (compatible; FMSc/1.0)"),
        ),
        (
            "swfUrl",
            Amf0Value::from(format!("rtmp://127.0.0.1/{app}").as_str()),
        ),
        (
            "tcUrl",
            Amf0Value::from(format!("rtmp://127.0.0.1/{app}").as_str()),
        ),
        ("objectEncoding", Amf0Value::Number(object_encoding)),
    ])
}

fn s(v: &str) -> Amf0Value {
    Amf0Value::from(v)
}

fn media(type_id: u8, ts: u32, payload: Vec<u8>) -> RtmpMessage {
    RtmpMessage::new(if type_id == 8 { 4 } else { 6 }, ts, type_id, 1, payload)
}

fn metadata_message() -> RtmpMessage {
    let mut p = Vec::new();
    amf0::encode_all(
        &[
            s("@setDataFrame"),
            s("onMetaData"),
            Amf0Value::ecma_array([("width", Amf0Value::Number(320.0))]),
        ],
        &mut p,
    )
    .unwrap();
    RtmpMessage::new(4, 0, msg_type::DATA_AMF0, 1, p)
}

#[test]
fn obs_publish_sequence() {
    let mut c = Client::handshaken(settings(|_| {}), false);

    // connect goes to the app handler; nothing is answered before it decides.
    let o = c.command(0, "connect", 1.0, connect_object("fier", 0.0), vec![]);
    assert!(o.messages.is_empty());
    let (request, call) = o.app_call();
    let AppCall::Connect(cc) = call else {
        panic!("{call:?}")
    };
    assert_eq!(cc.app.as_str(), "fier");
    assert_eq!(cc.tc_url.as_str(), "rtmp://127.0.0.1/fier");
    assert_eq!(cc.caller.connection, 7);
    assert_eq!(cc.caller.peer.as_str(), "127.0.0.1:5000");
    assert_eq!(
        cc.caller.peer_addr,
        NetAddr::parse_or_unspecified("127.0.0.1:5000")
    );
    assert!(
        cc.args_json.starts_with(r#"[{"app":"fier""#),
        "{}",
        cc.args_json
    );

    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    assert_eq!(
        o.controls(),
        [
            ControlMessage::WindowAckSize(5_000_000),
            ControlMessage::SetPeerBandwidth {
                window: 5_000_000,
                limit: fstream_media::rtmp::message::PeerBandwidthLimit::Dynamic
            },
            ControlMessage::SetChunkSize(4096),
        ]
    );
    let result = &o.commands()[0];
    assert_eq!(
        (result.name.as_str(), result.transaction_id),
        ("_result", 1.0)
    );
    assert_eq!(
        result.command_object.get_str("fmsVer"),
        Some("FMS/3,5,7,7009")
    );
    assert_eq!(
        result.args[0].get_str("code"),
        Some("NetConnection.Connect.Success")
    );
    assert_eq!(result.args[0].get_f64("objectEncoding"), Some(0.0));
    assert!(o
        .messages
        .iter()
        .all(|m| m.type_id != msg_type::COMMAND_AMF3));

    // OBS sends its chunk size, then releaseStream, FCPublish and createStream in one go.
    let key = "cam?user_password=123";
    c.enc.set_chunk_size(4096).unwrap();
    let mut b = c.bytes_of(&ControlMessage::SetChunkSize(4096).to_message());
    b.extend(c.command_bytes(0, "releaseStream", 2.0, Amf0Value::Null, vec![s(key)]));
    b.extend(c.command_bytes(0, "FCPublish", 3.0, Amf0Value::Null, vec![s(key)]));
    b.extend(c.command_bytes(0, "createStream", 4.0, Amf0Value::Null, vec![]));
    let o = c.send(&b);
    let cmds = o.commands();
    let names: Vec<_> = cmds
        .iter()
        .map(|c| (c.name.as_str(), c.transaction_id))
        .collect();
    assert_eq!(
        names,
        [
            ("_result", 2.0),
            ("onFCPublish", 0.0),
            ("_result", 3.0),
            ("_result", 4.0)
        ]
    );
    assert_eq!(
        cmds[1].args[0].get_str("code"),
        Some("NetStream.Publish.Start")
    );
    assert_eq!(
        cmds[3].args,
        [Amf0Value::Number(1.0)],
        "stream ids start at 1"
    );

    // publish, with media right behind it (before the answer): the media waits.
    let mut b = c.command_bytes(1, "publish", 5.0, Amf0Value::Null, vec![s(key), s("live")]);
    b.extend(c.bytes_of(&metadata_message()));
    b.extend(c.bytes_of(&media(9, 0, vec![0x17, 0, 0, 0, 0, 1, 0x64])));
    let o = c.send(&b);
    assert_eq!(o.kinds(), ["app"]);
    let (request, call) = o.app_call();
    let AppCall::Publish(pc) = call else {
        panic!("{call:?}")
    };
    assert_eq!(
        (
            pc.app.as_str(),
            pc.stream.as_str(),
            pc.kind.as_str(),
            pc.query.as_str()
        ),
        ("fier", "cam", "live", "user_password=123")
    );
    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    let Some(Action::Publish {
        publication,
        stream,
        options,
    }) = o.actions.first().cloned()
    else {
        panic!("{:?}", o.kinds())
    };
    assert_eq!(stream.as_str(), "fier/cam");
    assert_eq!(options.conflict, PublishConflict::Replace);
    assert_eq!(options.record, RecordMode::Live);
    assert_eq!(options.grace_ms, 5000);
    assert_eq!(options.query.as_str(), "user_password=123");
    assert!(options.channel_password.is_none());
    assert!(o.packets().is_empty(), "media waits for the hub's answer");

    let o = c.event(publish_result(publication, PublishOutcome::Started));
    assert_eq!(
        o.controls(),
        [ControlMessage::UserControl(UserControlEvent::StreamBegin(
            1
        ))]
    );
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Publish.Start".into())]
    );
    let status_msg = o.messages.iter().find(|m| m.type_id == 20).unwrap();
    assert_eq!(status_msg.stream_id, 1);
    // Then the buffered metadata and the sequence header, as packets.
    let packets = o.packets();
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[0].kind, MediaKind::Script);
    assert_eq!(packets[0].flags, flags::METADATA);
    assert!(packets[0]
        .payload
        .starts_with(b"\x02\x00\x0aonMetaData\x08"));
    assert_eq!(packets[1].kind, MediaKind::Video);
    assert_eq!(packets[1].flags, flags::SEQUENCE_HEADER);

    // Media: AAC config, a keyframe, an inter frame, an aggregate of two.
    let mut agg = Vec::new();
    write_tag(
        &mut agg,
        fstream_media::flv::TagType::Audio,
        500,
        &[0xAF, 1, 9],
    )
    .unwrap();
    write_tag(
        &mut agg,
        fstream_media::flv::TagType::Video,
        520,
        &[0x27, 1, 0, 0, 0, 7],
    )
    .unwrap();
    let mut b = c.bytes_of(&media(8, 0, vec![0xAF, 0, 0x12, 0x10]));
    b.extend(c.bytes_of(&media(9, 40, vec![0x17, 1, 0, 0, 0, 5])));
    b.extend(c.bytes_of(&media(9, 80, vec![0x27, 1, 0, 0, 0, 6])));
    b.extend(c.bytes_of(&RtmpMessage::new(4, 100, msg_type::AGGREGATE, 1, agg)));
    let o = c.send(&b);
    let got: Vec<_> = o
        .packets()
        .iter()
        .map(|p| (p.kind, p.flags, p.timestamp))
        .collect();
    assert_eq!(
        got,
        [
            (MediaKind::Audio, flags::SEQUENCE_HEADER, 0),
            (MediaKind::Video, flags::KEYFRAME, 40),
            (MediaKind::Video, 0, 80),
            (MediaKind::Audio, 0, 100),
            (MediaKind::Video, 0, 120),
        ]
    );
    assert!(o.packets().iter().all(|_| true));
    assert!(o.actions.iter().all(|a| match a {
        Action::Packet { publication: p, .. } => *p == publication,
        _ => true,
    }));

    // FCUnpublish and deleteStream end it; the app handler hears of the end.
    let mut b = c.command_bytes(0, "FCUnpublish", 6.0, Amf0Value::Null, vec![s(key)]);
    b.extend(c.command_bytes(
        0,
        "deleteStream",
        7.0,
        Amf0Value::Null,
        vec![Amf0Value::Number(1.0)],
    ));
    let o = c.send(&b);
    assert!(o.kinds().contains(&"unpublish"));
    let codes = o.codes();
    assert!(codes.contains(&("onStatus".into(), "NetStream.Unpublish.Success".into())));
    assert!(codes.contains(&("onFCUnpublish".into(), "NetStream.Unpublish.Success".into())));
    let o = c.close();
    assert_eq!(o.kinds(), ["app", "close"]);
    assert!(matches!(o.app_call().1, AppCall::Close(ref cc) if cc.app.as_str() == "fier"));
    assert_eq!(o.closed(), Some(CloseMode::Now));
}

#[test]
fn play_sequence_with_amf3_connect() {
    let mut c = Client::handshaken(settings(|_| {}), true);
    c.encoding = CommandEncoding::Amf3;
    let o = c.command(0, "connect", 1.0, connect_object("fier", 3.0), vec![]);
    let (request, _) = o.app_call();
    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    let reply = o.messages.iter().find(|m| m.type_id >= 17).unwrap();
    assert_eq!(
        reply.type_id,
        msg_type::COMMAND_AMF3,
        "AMF3 clients get type 17"
    );
    assert_eq!(o.commands()[0].args[0].get_f64("objectEncoding"), Some(3.0));
    c.enc.set_chunk_size(4096).unwrap();
    let mut b = c.bytes_of(&ControlMessage::SetChunkSize(4096).to_message());
    b.extend(c.command_bytes(0, "createStream", 2.0, Amf0Value::Null, vec![]));
    let buffer = ControlMessage::UserControl(UserControlEvent::SetBufferLength {
        stream_id: 1,
        buffer_ms: 3000,
    });
    b.extend(c.bytes_of(&buffer.to_message()));
    b.extend(c.command_bytes(0, "getStreamLength", 3.0, Amf0Value::Null, vec![s("cam")]));
    b.extend(c.command_bytes(
        1,
        "play",
        4.0,
        Amf0Value::Null,
        vec![s("cam?channel_password=x%20y"), Amf0Value::Number(-2000.0)],
    ));
    let o = c.send(&b);
    let (request, call) = o.app_call();
    let AppCall::Play(pc) = call else {
        panic!("{call:?}")
    };
    assert_eq!((pc.app.as_str(), pc.stream.as_str()), ("fier", "cam"));

    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    // The probe first; the player hears nothing until it says how the stream stands.
    let probe = o.probe();
    let o = c.answer_probe(&o, SubscriptionStatus::Waiting);
    // The statuses go out before the real subscription, so they precede the hub's media.
    assert_eq!(o.kinds(), ["unsubscribe", "write", "subscribe", "control"]);
    assert!(matches!(o.actions[0], Action::Unsubscribe { subscription } if subscription == probe));
    assert_eq!(
        o.controls(),
        [ControlMessage::UserControl(UserControlEvent::StreamBegin(
            1
        ))]
    );
    assert_eq!(
        o.codes(),
        [
            ("onStatus".into(), "NetStream.Play.Reset".into()),
            ("onStatus".into(), "NetStream.Play.Start".into()),
        ]
    );
    let data = o
        .messages
        .iter()
        .find(|m| m.type_id == msg_type::DATA_AMF0)
        .unwrap();
    assert_eq!(data.stream_id, 1);
    assert!(data.payload.starts_with(b"\x02\x00\x11|RtmpSampleAccess"));
    let Some(Action::Subscribe {
        subscription,
        stream,
        options,
    }) = o.actions.get(2).cloned()
    else {
        unreachable!()
    };
    assert_ne!(subscription, probe);
    assert_eq!(stream.as_str(), "fier/cam");
    assert_eq!(options.format.as_str(), "rtmp/4096/1");
    assert_eq!(options.wait_ms, u32::MAX);
    assert_eq!(options.overflow, OverflowPolicy::SkipToKeyframe);
    assert!(options.join_with_cache && options.audio && options.video);
    assert_eq!(options.start_ms, 0);
    assert_eq!(options.channel_password, ROption::RSome("x y".into()));
    assert!(matches!(
        control_of(&o.actions[3]),
        Some((_, SubscriptionControl::BufferLength(3000)))
    ));

    // No publisher yet: the player waits, and hears when one starts, leaves and returns.
    let ev = |status| status_event(subscription, status);
    assert!(c.event(ev(SubscriptionStatus::Waiting)).messages.is_empty());
    let o = c.event(ev(SubscriptionStatus::PublisherStarted { media: true }));
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Play.PublishNotify".into())]
    );
    // Another publisher takes over (replace policy): the player hears of it too.
    let o = c.event(ev(SubscriptionStatus::PublisherStarted { media: true }));
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Play.PublishNotify".into())]
    );
    let o = c.event(ev(SubscriptionStatus::PublisherLeft));
    assert_eq!(
        o.controls(),
        [ControlMessage::UserControl(UserControlEvent::StreamEof(1))]
    );
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Play.UnpublishNotify".into())]
    );
    // The stream ended (grace period over): the player subscribes again and keeps waiting.
    let o = c.event(ev(SubscriptionStatus::Ended));
    let Some(Action::Subscribe {
        subscription: again,
        stream,
        ..
    }) = o.actions.first().cloned()
    else {
        panic!("{:?}", o.kinds())
    };
    assert_ne!(again, subscription);
    assert_eq!(stream.as_str(), "fier/cam");
    // A stale status of the old subscription is ignored.
    assert!(c
        .event(ev(SubscriptionStatus::PublisherLeft))
        .actions
        .is_empty());

    // receiveVideo(false) and pause go to the hub.
    let o = c.command(
        1,
        "receiveVideo",
        0.0,
        Amf0Value::Null,
        vec![Amf0Value::Boolean(false)],
    );
    assert!(matches!(
        control_of(&o.actions[0]),
        Some((s, SubscriptionControl::ReceiveVideo(false))) if s == again
    ));
    let o = c.command(
        1,
        "pause",
        0.0,
        Amf0Value::Null,
        vec![Amf0Value::Boolean(true), Amf0Value::Number(0.0)],
    );
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Pause.Notify".into())]
    );

    // A raw fstream broadcast has no RTMP form.
    let o = c.event(status_event(
        again,
        SubscriptionStatus::PublisherStarted { media: false },
    ));
    assert!(o.kinds().contains(&"unsubscribe"));
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Play.StreamNotFound".into())]
    );
    // Commands to the client are AMF3 too.
    assert!(o
        .messages
        .iter()
        .any(|m| m.type_id == msg_type::COMMAND_AMF3));
}

#[test]
fn unknown_commands_get_an_error_and_the_connection_stays() {
    let mut c = Client::connected(settings(|_| {}));
    let o = c.command(0, "_checkbw", 2.0, Amf0Value::Null, vec![]);
    // The app handler is asked first; nothing goes to the client until it answers.
    assert!(o.messages.is_empty());
    let (request, call) = o.command_call();
    assert_eq!(
        (call.app.as_str(), call.name.as_str()),
        ("fier", "_checkbw")
    );
    let o = c.event(Event::CommandResult {
        request,
        reply: CommandReply_NE::new(CommandReply::NotHandled),
    });
    let cmds = o.commands();
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        (cmds[0].name.as_str(), cmds[0].transaction_id),
        ("_error", 2.0)
    );
    assert_eq!(
        cmds[0].args[0].get_str("code"),
        Some("NetConnection.Call.Failed")
    );
    assert_eq!(
        cmds[0].args[0].get_str("description"),
        Some("Method not found (_checkbw).")
    );
    assert_eq!(o.closed(), None);
    // Still usable.
    let o = c.command(0, "createStream", 3.0, Amf0Value::Null, vec![]);
    assert_eq!(o.commands()[0].name, "_result");
    // rtmpdump --live subscribes first.
    let o = c.command(0, "FCSubscribe", 4.0, Amf0Value::Null, vec![s("cam")]);
    assert_eq!(
        o.codes(),
        [
            ("onFCSubscribe".into(), "NetStream.Play.Start".into()),
            ("_result".into(), "".into())
        ]
    );
    // Notifications (transaction 0) get no answer.
    let o = c.command(0, "onBWCheck", 0.0, Amf0Value::Null, vec![]);
    let (request, _) = o.command_call();
    let o = c.event(Event::CommandResult {
        request,
        reply: CommandReply_NE::new(CommandReply::NotHandled),
    });
    assert!(o.messages.is_empty());
}

#[test]
fn a_clients_own_command_gets_the_handlers_value_or_error_in_order() {
    let mut c = Client::connected(settings(|_| {}));
    let o = c.command(
        0,
        "myRpc",
        5.0,
        Amf0Value::Null,
        vec![s("hello"), Amf0Value::Number(42.0)],
    );
    let (request, call) = o.command_call();
    assert_eq!(call.name.as_str(), "myRpc");
    assert_eq!(call.args_json.as_str(), r#"["hello",42]"#);
    // While the handler thinks, a following command waits its turn.
    let o = c.command(0, "createStream", 6.0, Amf0Value::Null, vec![]);
    assert!(o.messages.is_empty(), "answers keep the order of the calls");
    let o = c.event(Event::CommandResult {
        request,
        reply: CommandReply_NE::new(CommandReply::Result(r#"{"echo":"hello","n":42}"#.into())),
    });
    let cmds = o.commands();
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    assert_eq!(
        (cmds[0].name.as_str(), cmds[0].transaction_id),
        ("_result", 5.0)
    );
    assert_eq!(cmds[0].args[0].get_str("echo"), Some("hello"));
    assert_eq!(cmds[0].args[0].get_f64("n"), Some(42.0));
    assert_eq!(
        (cmds[1].name.as_str(), cmds[1].transaction_id),
        ("_result", 6.0)
    );
    // An error value goes back as `_error`; a stale answer is ignored.
    let o = c.command(0, "myRpc", 7.0, Amf0Value::Null, vec![]);
    let (request, _) = o.command_call();
    assert!(c
        .event(Event::CommandResult {
            request: request + 100,
            reply: CommandReply_NE::new(CommandReply::Result("1".into())),
        })
        .messages
        .is_empty());
    let o = c.event(Event::CommandResult {
        request,
        reply: CommandReply_NE::new(CommandReply::Error(r#""no such thing""#.into())),
    });
    let cmds = o.commands();
    assert_eq!(
        (cmds[0].name.as_str(), cmds[0].transaction_id),
        ("_error", 7.0)
    );
    assert_eq!(cmds[0].args[0].as_str(), Some("no such thing"));
    assert_eq!(o.closed(), None);
}

#[test]
fn the_app_handler_calls_the_client_whenever_it_likes_once_connected() {
    let command = |name: &str, args: &str| Event::ClientCommand {
        command: ClientCommand {
            name: name.into(),
            args_json: args.into(),
        },
    };
    // Before its connect is accepted, a client cannot take a command: dropped, no close.
    let mut c = Client::handshaken(settings(|_| {}), false);
    let o = c.event(command("early", "[1]"));
    assert!(o.messages.is_empty(), "{:?}", o.commands());
    assert_eq!(o.closed(), None);

    let mut c = Client::connected(settings(|_| {}));
    let o = c.event(command("onNews", r#"["flash", {"n": 3}]"#));
    let cmds = o.commands();
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert_eq!(
        (cmds[0].name.as_str(), cmds[0].transaction_id),
        ("onNews", 0.0)
    );
    assert_eq!(cmds[0].args[0].as_str(), Some("flash"));
    assert_eq!(cmds[0].args[1].get_f64("n"), Some(3.0));
    // Arguments that are not JSON are not sent, and the connection goes on.
    let o = c.event(command("bad", "[not json"));
    assert!(o.messages.is_empty());
    let o = c.command(0, "createStream", 2.0, Amf0Value::Null, vec![]);
    assert_eq!(o.commands()[0].name.as_str(), "_result");
}

#[test]
fn commands_before_connect_are_refused_without_closing() {
    let mut c = Client::handshaken(settings(|_| {}), false);
    let o = c.command(0, "createStream", 2.0, Amf0Value::Null, vec![]);
    assert_eq!(
        o.codes(),
        [("_error".into(), "NetConnection.Call.Failed".into())]
    );
    assert_eq!(o.closed(), None);
}

#[test]
fn no_acknowledgement_after_a_connect_refused_in_the_same_read() {
    // The window arrives with a connect that is refused at once (a bad app name): the
    // acknowledgement the window asks for must not follow the close (found by the rtmp_session
    // fuzz target, fuzz/regressions/rtmp_session/ack-after-refused-connect).
    let mut c = Client::handshaken(settings(|_| {}), false);
    let mut b = c.bytes_of(&ControlMessage::WindowAckSize(100).to_message());
    b.extend(c.command_bytes(0, "connect", 1.0, connect_object("a/b", 0.0), vec![]));
    let o = c.send(&b);
    assert_eq!(o.closed(), Some(CloseMode::AfterFlush));
    assert_eq!(o.kinds().last(), Some(&"close"), "nothing after the close");
    assert!(o.controls().is_empty(), "{:?}", o.controls());
}

#[test]
fn a_rejected_connect_gets_connect_rejected_then_closes() {
    let mut c = Client::handshaken(settings(|_| {}), false);
    let o = c.command(0, "connect", 1.0, connect_object("nope", 0.0), vec![]);
    let (request, _) = o.app_call();
    let mut decision = AppDecision::reject("Application not found: nope");
    decision.commands.push(ClientCommand {
        name: "close".into(),
        args_json: "[]".into(),
    });
    let o = c.event(Event::AppResult { request, decision });
    let cmds = o.commands();
    assert_eq!(cmds[0].name, "_error");
    assert_eq!(
        cmds[0].args[0].get_str("code"),
        Some("NetConnection.Connect.Rejected")
    );
    assert_eq!(
        cmds[0].args[0].get_str("description"),
        Some("Application not found: nope")
    );
    assert_eq!(
        cmds[1].name, "close",
        "the app handler's commands follow the answer"
    );
    assert_eq!(o.closed(), Some(CloseMode::AfterFlush));
    assert_eq!(o.kinds().last(), Some(&"close"), "nothing after the close");
    // Not connected, so the app handler is not told of the end.
    assert!(!c.close().kinds().contains(&"app"));

    // Bad app names never reach the app handler.
    let mut c = Client::handshaken(settings(|_| {}), false);
    let o = c.command(0, "connect", 1.0, connect_object("a/b", 0.0), vec![]);
    assert!(!o.kinds().contains(&"app"));
    assert_eq!(
        o.codes(),
        [("_error".into(), "NetConnection.Connect.Rejected".into())]
    );
    assert_eq!(o.closed(), Some(CloseMode::AfterFlush));
}

#[test]
fn accepted_connect_sends_the_app_handlers_commands_after_the_result() {
    let mut c = Client::handshaken(settings(|_| {}), false);
    let o = c.command(0, "connect", 1.0, connect_object("fier", 0.0), vec![]);
    let (request, _) = o.app_call();
    let mut decision = AppDecision::accept();
    decision.commands = RVec::from(vec![
        ClientCommand {
            name: "onBWDone".into(),
            args_json: r#"[null, 8192]"#.into(),
        },
        ClientCommand {
            name: "broken".into(),
            args_json: "[".into(),
        },
    ]);
    let o = c.event(Event::AppResult { request, decision });
    let cmds = o.commands();
    assert_eq!(cmds.len(), 2, "bad JSON is not sent");
    assert_eq!(cmds[1].name, "onBWDone");
    assert_eq!(cmds[1].args, [Amf0Value::Null, Amf0Value::Number(8192.0)]);
}

#[test]
fn refused_publishes_get_bad_name() {
    let mut c = Client::with_stream(settings(|s| {
        s.second_publisher = crate::settings::SecondPublisher::Reject
    }));
    // The app handler refuses (wrong password).
    let o = c.command(
        1,
        "publish",
        3.0,
        Amf0Value::Null,
        vec![s("cam?user_password=bad")],
    );
    let (request, _) = o.app_call();
    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::reject("Publishing refused: wrong password"),
    });
    let cmds = o.commands();
    assert_eq!(
        cmds[0].args[0].get_str("code"),
        Some("NetStream.Publish.BadName")
    );
    assert_eq!(cmds[0].args[0].get_str("level"), Some("error"));
    assert_eq!(
        cmds[0].args[0].get_str("description"),
        Some("Publishing refused: wrong password")
    );
    assert_eq!(o.closed(), None);

    // Accepted, but another publisher holds the stream (reject policy).
    let o = c.command(
        1,
        "publish",
        4.0,
        Amf0Value::Null,
        vec![s("cam?user_password=123")],
    );
    let (request, _) = o.app_call();
    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    let Some(Action::Publish {
        publication,
        options,
        ..
    }) = o.actions.first().cloned()
    else {
        panic!()
    };
    assert_eq!(options.conflict, PublishConflict::Reject);
    let o = c.event(publish_result(publication, PublishOutcome::Busy));
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Publish.BadName".into())]
    );
    // Media on a stream that does not publish is ignored.
    let b = c.bytes_of(&media(9, 0, vec![0x17, 1, 0, 0, 0]));
    assert!(c.send(&b).packets().is_empty());

    // Bad names never reach the app handler.
    for bad in ["../x", "a/b", "", "x y"] {
        let o = c.command(1, "publish", 5.0, Amf0Value::Null, vec![s(bad)]);
        assert!(!o.kinds().contains(&"app"), "{bad}");
        assert_eq!(
            o.codes(),
            [("onStatus".into(), "NetStream.Publish.BadName".into())]
        );
    }
}

/// A publish of type `record` / `append` keeps its record mode unless the app handler's
/// decision says `MayRecord(false)`: then it is published live, and once started the client
/// hears `NetStream.Record.NoAccess` (level status) after `Publish.Start`.
#[test]
fn a_recording_the_handler_does_not_allow_is_published_live() {
    use fstream_abi::{Extension, Extension_NE};
    let no_record = || {
        let mut d = AppDecision::accept();
        d.ext.push(Extension_NE::new(Extension::MayRecord(false)));
        d
    };
    let may_record = || {
        let mut d = AppDecision::accept();
        d.ext.push(Extension_NE::new(Extension::MayRecord(true)));
        d
    };
    for (kind, decision, want, refused) in [
        ("record", AppDecision::accept(), RecordMode::Record, false),
        ("record", may_record(), RecordMode::Record, false),
        ("record", no_record(), RecordMode::Live, true),
        ("append", no_record(), RecordMode::Live, true),
        ("appendWithGap", no_record(), RecordMode::Live, true),
        ("append", may_record(), RecordMode::Append, false),
        // Nothing to refuse on a live publish.
        ("live", no_record(), RecordMode::Live, false),
    ] {
        let mut c = Client::with_stream(settings(|_| {}));
        let o = c.command(
            1,
            "publish",
            3.0,
            Amf0Value::Null,
            vec![s("cam?user_password=123"), s(kind)],
        );
        let (request, call) = o.app_call();
        let AppCall::Publish(pc) = call else {
            panic!("{call:?}")
        };
        assert_eq!(pc.kind.as_str(), kind);
        let o = c.event(Event::AppResult { request, decision });
        let Some(Action::Publish {
            publication,
            options,
            ..
        }) = o.actions.first().cloned()
        else {
            panic!("{:?}", o.kinds())
        };
        assert_eq!(options.record, want, "{kind}");
        let o = c.event(publish_result(publication, PublishOutcome::Started));
        let mut codes = vec![(
            "onStatus".to_string(),
            "NetStream.Publish.Start".to_string(),
        )];
        if refused {
            codes.push(("onStatus".into(), "NetStream.Record.NoAccess".into()));
            let cmds = o.commands();
            assert_eq!(cmds[1].args[0].get_str("level"), Some("status"));
        }
        assert_eq!(o.codes(), codes, "{kind}");
        // Media flows either way.
        let b = c.bytes_of(&media(9, 0, vec![0x17, 1, 0, 0, 0, 1]));
        assert_eq!(c.send(&b).packets().len(), 1, "{kind}");
    }
}

#[test]
fn a_replaced_publisher_is_told_and_disconnected() {
    let mut c = Client::with_stream(settings(|_| {}));
    let o = c.command(1, "publish", 3.0, Amf0Value::Null, vec![s("cam")]);
    let (request, _) = o.app_call();
    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::redirect("cam2"),
    });
    let Some(Action::Publish {
        publication,
        stream,
        ..
    }) = o.actions.first().cloned()
    else {
        panic!()
    };
    assert_eq!(stream.as_str(), "fier/cam2", "a redirect names the stream");
    c.event(publish_result(publication, PublishOutcome::Started));
    let o = c.event(Event::PublicationReplaced { publication });
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Unpublish.Success".into())]
    );
    assert_eq!(o.closed(), Some(CloseMode::AfterFlush));
}

#[test]
fn bad_input_closes_the_connection() {
    // A bad version byte (RTMPE, or not RTMP at all).
    for c0 in [6u8, b'<', b'G'] {
        let (mut c, _) = Client::new(settings(|_| {}));
        let o = c.send_raw(&[c0; 1537], false);
        assert_eq!(o.closed(), Some(CloseMode::Now), "{c0}");
        assert!(o.raw.is_empty());
        // Nothing more happens after a close.
        assert!(c.send_raw(&[3; 10], false).actions.is_empty());
    }

    // A message over max_message_size (the header is enough).
    let mut c = Client::connected(settings(|s| s.max_message_size = 1000));
    let o = c.send(&[0x04, 0, 0, 0, 0x00, 0x03, 0xE9, 9, 1, 0, 0, 0]);
    assert_eq!(o.closed(), Some(CloseMode::Now));
    assert_eq!(
        o.kinds(),
        ["app", "close"],
        "the app handler hears of the end"
    );

    // A chunk size over max_chunk_size.
    let mut c = Client::connected(settings(|s| s.max_chunk_size = 65536));
    let b = c.bytes_of(&ControlMessage::SetChunkSize(65537).to_message());
    assert_eq!(c.send(&b).closed(), Some(CloseMode::Now));

    // Too many chunk streams.
    let mut c = Client::connected(settings(|s| s.max_chunk_streams = 3));
    let mut b = Vec::new();
    for csid in [4, 5, 6] {
        b.extend(c.bytes_of(&RtmpMessage::new(csid, 0, 9, 1, vec![0x17, 1])));
    }
    assert_eq!(c.send(&b).closed(), Some(CloseMode::Now));

    // A command that is not AMF.
    let mut c = Client::connected(settings(|_| {}));
    let b = c.bytes_of(&RtmpMessage::new(3, 0, 20, 0, vec![0x02, 0, 9, b'x']));
    assert_eq!(c.send(&b).closed(), Some(CloseMode::Now));

    // A truncated protocol control message.
    let mut c = Client::connected(settings(|_| {}));
    let b = c.bytes_of(&RtmpMessage::new(2, 0, 1, 0, vec![0, 0]));
    assert_eq!(c.send(&b).closed(), Some(CloseMode::Now));

    // Too much sent while the app handler decides.
    let mut c = Client::handshaken(settings(|s| s.max_pending_bytes = 10_000), false);
    let o = c.command(0, "connect", 1.0, connect_object("fier", 0.0), vec![]);
    assert!(o.kinds().contains(&"app"));
    let b = c.bytes_of(&media(9, 0, vec![0x27; 4000]));
    assert_eq!(c.send(&b).closed(), None);
    let mut b2 = b.clone();
    b2.extend(&b);
    assert_eq!(c.send(&b2).closed(), Some(CloseMode::Now));
}

#[test]
fn handshake_and_idle_timeouts_close() {
    let (mut c, o) = Client::new(settings(|s| s.handshake_timeout_ms = 5000));
    assert!(matches!(o.actions[..], [Action::SetTimer(5000)]));
    // Half a handshake, then the timer: not yet.
    c.send_raw(&[3; 100], false);
    let o = c.timer(3000);
    assert!(matches!(o.actions[..], [Action::SetTimer(3000)]));
    let o = c.timer(6000);
    assert_eq!(o.closed(), Some(CloseMode::Now));

    // After the handshake: a ping at half the idle timeout, closed at the full one.
    let mut c = Client::handshaken(settings(|s| s.idle_timeout_ms = 10_000), false);
    let start = c.now;
    let o = c.timer(start + 5000);
    assert_eq!(
        o.controls(),
        [ControlMessage::UserControl(UserControlEvent::PingRequest(
            (start + 5000) as u32
        ))]
    );
    assert!(matches!(o.actions.last(), Some(Action::SetTimer(5000))));
    // An answer keeps it alive.
    c.now = start + 6000;
    let b =
        c.bytes_of(&ControlMessage::UserControl(UserControlEvent::PingResponse(1)).to_message());
    c.send(&b);
    let o = c.timer(start + 10_000);
    assert_eq!(o.closed(), None);
    assert!(matches!(o.actions.last(), Some(Action::SetTimer(1000))));
    let o = c.timer(start + 11_000);
    assert!(o.controls().iter().any(|m| matches!(
        m,
        ControlMessage::UserControl(UserControlEvent::PingRequest(_))
    )));
    let o = c.timer(start + 16_000);
    assert_eq!(o.closed(), Some(CloseMode::Now));
}

#[test]
fn pings_are_answered_and_acknowledgements_follow_the_window() {
    let mut c = Client::connected(settings(|_| {}));
    let b =
        c.bytes_of(&ControlMessage::UserControl(UserControlEvent::PingRequest(42)).to_message());
    let o = c.send(&b);
    assert_eq!(
        o.controls(),
        [ControlMessage::UserControl(UserControlEvent::PingResponse(
            42
        ))]
    );
    let b = c.bytes_of(&ControlMessage::WindowAckSize(3000).to_message());
    assert!(
        c.send(&b)
            .controls()
            .iter()
            .any(|m| matches!(m, ControlMessage::Acknowledgement(_))),
        "the handshake alone is more than the window"
    );
    let b = c.bytes_of(&media(9, 0, vec![0x27; 2000]));
    assert!(c.send(&b).controls().is_empty());
    let o = c.send(&b);
    let acks: Vec<_> = o.controls();
    assert_eq!(acks.len(), 1);
    let ControlMessage::Acknowledgement(seq) = acks[0] else {
        panic!()
    };
    assert!(seq > 3073 + 4000, "{seq}");
}

#[test]
fn play_refusals_and_missing_streams() {
    let mut c = Client::with_stream(settings(|_| {}));
    // Play on a stream id that was never created.
    let o = c.command(5, "play", 0.0, Amf0Value::Null, vec![s("cam")]);
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Play.Failed".into())]
    );
    // The app handler refuses.
    let o = c.command(1, "play", 0.0, Amf0Value::Null, vec![s("cam")]);
    let (request, _) = o.app_call();
    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::reject("No playing here"),
    });
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Play.Failed".into())]
    );
    // The hub finds nothing (a finite wait ran out) or the channel password is wrong.
    for (status, code) in [
        (
            SubscriptionStatus::NotFound,
            "NetStream.Play.StreamNotFound",
        ),
        (SubscriptionStatus::Forbidden, "NetStream.Play.Failed"),
    ] {
        let o = c.command(
            1,
            "play",
            0.0,
            Amf0Value::Null,
            vec![s("cam"), Amf0Value::Number(-1000.0)],
        );
        let (request, _) = o.app_call();
        let o = c.event(Event::AppResult {
            request,
            decision: AppDecision::accept(),
        });
        let Some(Action::Subscribe { subscription, .. }) = o
            .actions
            .iter()
            .find(|a| matches!(a, Action::Subscribe { .. }))
            .cloned()
        else {
            panic!()
        };
        let o = c.event(status_event(subscription, status));
        assert_eq!(o.codes(), [("onStatus".into(), code.into())]);
    }
    // Stream ids: deleteStream frees one, createStream counts on.
    let o = c.command(
        0,
        "deleteStream",
        0.0,
        Amf0Value::Null,
        vec![Amf0Value::Number(1.0)],
    );
    assert!(o.messages.is_empty());
    let o = c.command(0, "createStream", 9.0, Amf0Value::Null, vec![]);
    assert_eq!(o.commands()[0].args, [Amf0Value::Number(2.0)]);
}

#[test]
fn on_stream_end_stop_ends_play() {
    let mut c = Client::with_stream(settings(|s| {
        s.on_stream_end = crate::settings::StreamEnd::Stop
    }));
    let o = c.command(1, "play", 0.0, Amf0Value::Null, vec![s("cam")]);
    let (request, _) = o.app_call();
    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    let subscription = c.play_through_probe(&o);
    let o = c.event(status_event(subscription, SubscriptionStatus::Ended));
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Play.Stop".into())]
    );
    assert!(!o.kinds().contains(&"subscribe"));
}

#[test]
fn shutdown_unpublishes_and_closes_after_flush() {
    let mut c = Client::with_stream(settings(|_| {}));
    let o = c.command(1, "publish", 3.0, Amf0Value::Null, vec![s("cam")]);
    let (request, _) = o.app_call();
    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    let Some(Action::Publish { publication, .. }) = o.actions.first().cloned() else {
        panic!()
    };
    c.event(publish_result(publication, PublishOutcome::Started));
    let o = c.event(Event::Shutdown);
    assert_eq!(o.kinds(), ["unpublish", "app", "close"]);
    assert_eq!(o.closed(), Some(CloseMode::AfterFlush));
}

#[test]
fn seeks_go_to_recorded_sources_and_fail_on_live_streams() {
    let mut c = Client::with_stream(settings(|_| {}));
    let o = c.command(
        1,
        "play",
        0.0,
        Amf0Value::Null,
        vec![s("film"), Amf0Value::Number(0.0)],
    );
    let (request, _) = o.app_call();
    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    let o = c.answer_probe(&o, SubscriptionStatus::SourceOpened { duration_ms: 8000 });
    let (subscription, _, options) = o.subscribed().unwrap();
    assert_eq!(options.start_ms, 0);
    let ev = |status| status_event(subscription, status);
    c.event(ev(SubscriptionStatus::SourceOpened { duration_ms: 8000 }));
    c.event(ev(SubscriptionStatus::PublisherStarted { media: true }));
    // A recorded source reports a publisher too; seeking is still allowed.
    let o = c.command(
        1,
        "seek",
        0.0,
        Amf0Value::Null,
        vec![Amf0Value::Number(3000.0)],
    );
    assert!(
        matches!(
            o.actions.as_slice(),
            [a] if matches!(control_of(a), Some((_, SubscriptionControl::Seek(3000))))
        ),
        "{:?}",
        o.kinds()
    );
    let o = c.event(ev(SubscriptionStatus::Seeked { position_ms: 2960 }));
    assert_eq!(
        o.codes(),
        [
            ("onStatus".into(), "NetStream.Seek.Notify".into()),
            ("onStatus".into(), "NetStream.Play.Start".into()),
        ]
    );
    // The end of a recording stops the player, whatever on_stream_end says.
    let o = c.event(ev(SubscriptionStatus::Ended));
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Play.Stop".into())]
    );
    assert!(!o.kinds().contains(&"subscribe"));

    // A live stream cannot seek.
    let o = c.command(1, "play", 0.0, Amf0Value::Null, vec![s("cam")]);
    let (request, _) = o.app_call();
    let o = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    let o = c.answer_probe(&o, SubscriptionStatus::PublisherStarted { media: true });
    let (subscription, _, _) = o.subscribed().unwrap();
    c.event(status_event(
        subscription,
        SubscriptionStatus::PublisherStarted { media: true },
    ));
    let o = c.command(
        1,
        "seek",
        0.0,
        Amf0Value::Null,
        vec![Amf0Value::Number(3000.0)],
    );
    assert_eq!(
        o.codes(),
        [("onStatus".into(), "NetStream.Seek.Failed".into())]
    );
    assert!(!o.kinds().contains(&"control"));
}

#[test]
fn garbage_after_the_handshake_never_panics() {
    use rand::{Rng, RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(1935);
    for round in 0..300 {
        let mut c = Client::connected(settings(|s| s.max_message_size = 1 << 16));
        // Sometimes a valid prefix (a stream and a publish), then noise.
        if round % 2 == 0 {
            c.command(0, "createStream", 2.0, Amf0Value::Null, vec![]);
        }
        let mut noise = vec![0u8; rng.gen_range(1..4000)];
        rng.fill_bytes(&mut noise);
        // Keep basic headers plausible half the time so parsing goes deeper.
        if round % 2 == 1 {
            noise[0] = 0x03;
        }
        let mut out = Outbox::new();
        let _ = c.session.bytes(&noise, c.now, &mut out);
        let mut out = Outbox::new();
        c.session.timer(c.now + 1_000_000, &mut out).unwrap();
        c.session.closed(c.now, &mut out).unwrap();
    }
}

/// The play's answer (statuses, StreamBegin, `|RtmpSampleAccess`) in the order written.
fn play_answer(o: &Output) -> Vec<String> {
    o.messages
        .iter()
        .map(|m| match m.type_id {
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                let c = Command::parse(m.type_id, &m.payload, &AmfLimits::default()).unwrap();
                c.args
                    .iter()
                    .find_map(|a| a.get_str("code"))
                    .unwrap_or(&c.name)
                    .to_string()
            }
            msg_type::DATA_AMF0 => "data".into(),
            t if t <= 6 => format!("{:?}", ControlMessage::parse(t, &m.payload).unwrap()),
            t => format!("type {t}"),
        })
        .collect()
}

#[test]
fn a_play_that_finds_nothing_gets_its_refusal_without_play_start() {
    let mut c = Client::with_stream(settings(|_| {}));
    let cases = [
        // No such recorded file (rtmpdump -r rtmp://host/vod/nosuch sends start 0).
        (
            0.0,
            SubscriptionStatus::NotFound,
            "NetStream.Play.StreamNotFound",
        ),
        // A raw fstream broadcast: nothing RTMP can carry.
        (
            -2000.0,
            SubscriptionStatus::PublisherStarted { media: false },
            "NetStream.Play.StreamNotFound",
        ),
        (
            -1000.0,
            SubscriptionStatus::Forbidden,
            "NetStream.Play.Failed",
        ),
    ];
    for (start, status, code) in cases {
        let o = c.command(
            1,
            "play",
            0.0,
            Amf0Value::Null,
            vec![s("nosuch"), Amf0Value::Number(start)],
        );
        let (request, _) = o.app_call();
        let decided = c.event(Event::AppResult {
            request,
            decision: AppDecision::accept(),
        });
        let probe = decided.probe();
        let o = c.answer_probe(&decided, status.clone());
        assert_eq!(o.kinds(), ["unsubscribe", "write"], "{status:?}");
        assert!(
            matches!(o.actions[0], Action::Unsubscribe { subscription } if subscription == probe)
        );
        // The refusal alone: no StreamBegin, Reset, Start or |RtmpSampleAccess before it.
        assert_eq!(play_answer(&o), [code], "{status:?}");
        let info = &o.commands()[0].args[0];
        assert_eq!(info.get_str("level"), Some("error"));
        // Later statuses of the probe (a source player's, say) are stale.
        let o = c.event(status_event(
            probe,
            SubscriptionStatus::PublisherStarted { media: true },
        ));
        assert!(o.actions.is_empty(), "{:?}", o.kinds());
    }

    // The same stream id then plays a stream that is live: Start, then the real subscription.
    let o = c.command(1, "play", 0.0, Amf0Value::Null, vec![s("cam")]);
    let (request, _) = o.app_call();
    let decided = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    let o = c.answer_probe(
        &decided,
        SubscriptionStatus::PublisherStarted { media: true },
    );
    assert_eq!(o.kinds(), ["unsubscribe", "write", "subscribe"]);
    assert_eq!(
        play_answer(&o),
        [
            "UserControl(StreamBegin(1))",
            "NetStream.Play.Reset",
            "NetStream.Play.Start",
            "data"
        ]
    );
    let (subscription, stream, options) = o.subscribed().unwrap();
    assert_eq!(stream, "fier/cam");
    assert_eq!(options.format.as_str(), "rtmp/4096/1");
    assert!(options.join_with_cache && options.audio && options.video);
    // The live stream's own status adds nothing: the player was told already.
    let o = c.event(status_event(
        subscription,
        SubscriptionStatus::PublisherStarted { media: true },
    ));
    assert!(o.messages.is_empty());
}

#[test]
fn commands_wait_for_the_probe_and_a_close_drops_it() {
    let mut c = Client::with_stream(settings(|_| {}));
    let o = c.command(
        1,
        "play",
        0.0,
        Amf0Value::Null,
        vec![s("film"), Amf0Value::Number(0.0)],
    );
    let (request, _) = o.app_call();
    let decided = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    let probe = decided.probe();
    // What the client sends meanwhile waits for the probe's answer.
    let o = c.command(
        1,
        "receiveAudio",
        0.0,
        Amf0Value::Null,
        vec![Amf0Value::Boolean(false)],
    );
    assert!(o.actions.is_empty(), "{:?}", o.kinds());
    // A recorded source opened: Start, the real subscription, then the held command.
    let o = c.event(status_event(
        probe,
        SubscriptionStatus::SourceOpened { duration_ms: 5000 },
    ));
    assert_eq!(o.kinds(), ["unsubscribe", "write", "subscribe", "control"]);
    let (subscription, _, _) = o.subscribed().unwrap();
    assert!(matches!(
        control_of(&o.actions[3]),
        Some((s, SubscriptionControl::ReceiveAudio(false))) if s == subscription
    ));
    assert!(play_answer(&o).contains(&"NetStream.Play.Start".to_string()));

    // A connection that closes while a probe is out unsubscribes it.
    let o = c.command(1, "play", 0.0, Amf0Value::Null, vec![s("other")]);
    let (request, _) = o.app_call();
    let decided = c.event(Event::AppResult {
        request,
        decision: AppDecision::accept(),
    });
    let probe = decided.probe();
    let o = c.close();
    let gone: Vec<u32> = o
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Unsubscribe { subscription } => Some(*subscription),
            _ => None,
        })
        .collect();
    assert_eq!(gone, [probe], "{:?}", o.kinds());
}

#[test]
fn a_flash_policy_request_gets_the_policy_for_our_port_then_a_close() {
    use crate::handshake::{policy_file, POLICY_REQUEST};
    // In one piece, or split anywhere.
    for split in [POLICY_REQUEST.len(), 1, 10] {
        let (mut c, _) = Client::new(settings(|_| {}));
        let (a, b) = POLICY_REQUEST.split_at(split);
        let o = c.send_raw(a, false);
        if !b.is_empty() {
            assert!(o.actions.is_empty(), "{:?}", o.kinds());
            let o = c.send_raw(b, false);
            assert_eq!(o.raw, policy_file(1935));
            assert_eq!(o.closed(), Some(CloseMode::AfterFlush));
            continue;
        }
        assert_eq!(o.kinds(), ["write", "close"]);
        assert_eq!(o.raw, policy_file(1935));
        let text = String::from_utf8_lossy(&o.raw);
        assert!(text.contains(r#"to-ports="1935""#), "{text}");
        assert_eq!(o.closed(), Some(CloseMode::AfterFlush));
        // Nothing more after the answer.
        assert!(c.send_raw(b"more", false).actions.is_empty());
    }

    // The port is the one the client connected to.
    let mut session =
        RtmpSession::new(settings(|_| {}), &conn_info(1, "[::1]:5000", "[::1]:19350"));
    let mut out = Outbox::new();
    session.start(0, &mut out).unwrap();
    let mut out = Outbox::new();
    session.bytes(POLICY_REQUEST, 0, &mut out).unwrap();
    let written: Vec<u8> = out
        .known()
        .filter_map(|a| match a {
            Action::Write(p) => Some(p.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(written, policy_file(19350));

    // Turned off: closed at once, without a byte.
    let (mut c, _) = Client::new(settings(|s| s.policy_file = false));
    let o = c.send_raw(POLICY_REQUEST, false);
    assert!(o.raw.is_empty());
    assert_eq!(o.closed(), Some(CloseMode::Now));

    // Anything else that starts with '<' is no handshake either.
    let (mut c, _) = Client::new(settings(|_| {}));
    let o = c.send_raw(b"<html><body>", false);
    assert!(o.raw.is_empty());
    assert_eq!(o.closed(), Some(CloseMode::Now));
}
