//! The client against our own server session in memory (bytes both ways, virtual time, a
//! small stand-in for the host and its hub), and against a scripted server for what
//! `RtmpSession` never does.

use std::sync::Arc;

use fstream_abi::{
    flags, payload_from_vec, sdk::Encode, sdk::SessionLogic, Action, AppCall, AppDecision,
    ConnInfo, Event, MediaKind, MediaPacket, NetAddr, Outbox, PublishOutcome, PublishOutcome_NE,
    SubscriptionStatus, SubscriptionStatus_NE,
};
use fstream_media::{
    amf0::{self, Amf0Value},
    flv::write_tag,
    rtmp::{
        chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits},
        handshake::ServerHandshake,
        message::{Command, CommandEncoding, PeerBandwidthLimit, Status},
    },
};
use rand::{rngs::StdRng, SeedableRng};

use super::*;
use rtmp::{encoder::RtmpEncoder, session::RtmpSession, settings::Settings};

fn target(stream: &str) -> Target {
    Target::new("fier", "rtmp://127.0.0.1/fier", stream)
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

/// How the stand-in host answers.
#[derive(Clone)]
struct HostRules {
    connect: AppDecision,
    publish: AppDecision,
    play: AppDecision,
    /// The hub's answer to a play's probe.
    probe: SubscriptionStatus,
}

impl Default for HostRules {
    fn default() -> Self {
        HostRules {
            connect: AppDecision::accept(),
            publish: AppDecision::accept(),
            play: AppDecision::accept(),
            probe: SubscriptionStatus::Waiting,
        }
    }
}

/// A client and a server session joined in memory, with the host's side played by the test.
struct Pair {
    client: RtmpClient,
    server: RtmpSession,
    rules: HostRules,
    now: u64,
    events: Vec<ClientEvent>,
    /// What the server session gave the hub.
    packets: Vec<MediaPacket>,
    published: Vec<String>,
    unpublished: usize,
    /// The real subscription of a player and its encoder.
    subscription: Option<(u32, RtmpEncoder)>,
    server_closed: bool,
    /// Everything the client wrote, to check it decodes.
    client_bytes: Vec<u8>,
}

impl Pair {
    fn new(role: Role, stream: &str, rules: HostRules) -> Pair {
        Self::with_config(role, stream, rules, ClientConfig::default())
    }

    fn with_config(role: Role, stream: &str, rules: HostRules, config: ClientConfig) -> Pair {
        let conn = ConnInfo {
            id: 1,
            peer: "127.0.0.1:5000".into(),
            local: "127.0.0.1:1935".into(),
            peer_addr: NetAddr::parse_or_unspecified("127.0.0.1:5000"),
            local_addr: NetAddr::parse_or_unspecified("127.0.0.1:1935"),
            ext: Default::default(),
        };
        let now = 1000;
        let mut server = RtmpSession::new(Arc::new(Settings::default()), &conn);
        let mut out = Outbox::new();
        server.start(now, &mut out).unwrap();
        let client = match role {
            Role::Publish => RtmpClient::publish(target(stream), config, now, &mut rng()),
            Role::Play => RtmpClient::play(target(stream), config, now, &mut rng()),
        };
        let mut p = Pair {
            client,
            server,
            rules,
            now,
            events: Vec::new(),
            packets: Vec::new(),
            published: Vec::new(),
            unpublished: 0,
            subscription: None,
            server_closed: false,
            client_bytes: Vec::new(),
        };
        p.host(out);
        p.pump();
        p
    }

    /// Carries the server's actions out as the host would; bytes go to the client.
    fn host(&mut self, mut out: Outbox) {
        let mut events = Vec::new();
        for a in out.take_known() {
            match a {
                Action::Write(p) => {
                    self.client.bytes(p.as_slice(), self.now);
                }
                Action::Close(_) => self.server_closed = true,
                Action::CallApp { request, call } => {
                    let decision = match call.as_enum() {
                        Ok(AppCall::Connect(_)) => self.rules.connect.clone(),
                        Ok(AppCall::Publish(_)) => self.rules.publish.clone(),
                        Ok(AppCall::Play(_)) => self.rules.play.clone(),
                        _ => AppDecision::accept(),
                    };
                    events.push(Event::AppResult { request, decision });
                }
                Action::Publish {
                    publication,
                    stream,
                    ..
                } => {
                    self.published.push(stream.to_string());
                    events.push(Event::PublishResult {
                        publication,
                        outcome: PublishOutcome_NE::new(PublishOutcome::Started),
                    });
                }
                Action::Packet { packet, .. } => self.packets.push(packet),
                Action::Unpublish { .. } => self.unpublished += 1,
                Action::Subscribe {
                    subscription,
                    options,
                    ..
                } => {
                    if options.format.as_str() == rtmp::encoder::PROBE_FORMAT {
                        let status = SubscriptionStatus_NE::new(self.rules.probe.clone());
                        events.push(Event::Subscription {
                            subscription,
                            status,
                        });
                    } else {
                        let enc = RtmpEncoder::new(options.format.as_str()).unwrap();
                        self.subscription = Some((subscription, enc));
                    }
                }
                _ => {}
            }
        }
        for ev in events {
            let mut out = Outbox::new();
            self.server.event(ev, self.now, &mut out).unwrap();
            self.host(out);
        }
    }

    /// Moves bytes both ways until neither side has anything more to say.
    fn pump(&mut self) {
        loop {
            let bytes = self.client.take_output();
            while let Some(e) = self.client.poll_event() {
                self.events.push(e);
            }
            if bytes.is_empty() {
                return;
            }
            self.client_bytes.extend_from_slice(&bytes);
            if self.server_closed {
                continue;
            }
            let mut out = Outbox::new();
            self.server.bytes(&bytes, self.now, &mut out).unwrap();
            self.host(out);
        }
    }

    /// The hub delivers a packet to the player's subscription.
    fn deliver(&mut self, packet: &MediaPacket) {
        let (_, enc) = self.subscription.as_mut().expect("a subscription");
        if let Some(p) = enc.encode(packet).unwrap() {
            self.client.bytes(p.as_slice(), self.now);
        }
        self.pump();
    }

    fn tick(&mut self, at: u64) {
        self.now = at;
        self.client.tick(at);
        let mut out = Outbox::new();
        self.server.timer(at, &mut out).unwrap();
        self.host(out);
        self.pump();
    }

    fn failure(&self) -> Option<&ClientError> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Failed(err) => Some(err),
            _ => None,
        })
    }

    fn media(&self) -> Vec<FlvTag> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Media(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    /// The client's bytes after C0 C1 C2, decoded; every chunk must parse.
    fn client_commands(&self) -> Vec<Command> {
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        dec.push(&self.client_bytes[1 + 2 * 1536..]);
        let mut cmds = Vec::new();
        while let Some(m) = dec.next_message().unwrap() {
            if let Ok(ControlMessage::SetChunkSize(n)) =
                ControlMessage::parse(m.type_id, &m.payload)
            {
                dec.set_chunk_size(n).unwrap();
            }
            if m.type_id == msg_type::COMMAND_AMF0 {
                cmds.push(Command::parse(m.type_id, &m.payload, &AmfLimits::default()).unwrap());
            }
        }
        assert_eq!(dec.buffered(), 0, "the client's bytes end on a message");
        cmds
    }
}

fn names(cmds: &[Command]) -> Vec<&str> {
    cmds.iter().map(|c| c.name.as_str()).collect()
}

fn metadata_body() -> Vec<u8> {
    let mut p = Vec::new();
    amf0::encode_all(
        &[
            Amf0Value::from("onMetaData"),
            Amf0Value::ecma_array([("width", Amf0Value::Number(320.0))]),
        ],
        &mut p,
    )
    .unwrap();
    p
}

/// Metadata, an AVC sequence header, a keyframe of 10000 bytes (three chunks), an inter frame,
/// an AAC sequence header and frame.
fn a_stream() -> Vec<(TagType, u32, Vec<u8>)> {
    let mut key = vec![0x17, 1, 0, 0, 0];
    key.extend((0..10_000).map(|i| i as u8));
    vec![
        (TagType::Script, 0, metadata_body()),
        (TagType::Video, 0, vec![0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]),
        (TagType::Audio, 0, vec![0xAF, 0, 0x12, 0x10]),
        (TagType::Video, 0, key),
        (TagType::Audio, 23, vec![0xAF, 1, 9, 9]),
        (TagType::Video, 40, vec![0x27, 1, 0, 0, 0, 5]),
    ]
}

#[test]
fn publishes_to_our_server_and_unpublishes() {
    let mut p = Pair::new(Role::Publish, "cam?user_password=123", HostRules::default());
    assert_eq!(p.events, [ClientEvent::Connected, ClientEvent::Publishing]);
    assert_eq!(p.published, ["fier/cam"]);
    assert_eq!(p.client.phase(), Phase::Publishing);
    assert_eq!(p.client.stream_id(), Some(1));

    for (kind, ts, body) in a_stream() {
        p.client.send_media(kind, ts, Bytes::from(body)).unwrap();
    }
    p.pump();
    let got: Vec<_> = p
        .packets
        .iter()
        .map(|k| (k.kind, k.timestamp, k.payload.as_slice().to_vec()))
        .collect();
    let want: Vec<_> = a_stream()
        .into_iter()
        .map(|(kind, ts, body)| {
            let kind = match kind {
                TagType::Audio => MediaKind::Audio,
                TagType::Video => MediaKind::Video,
                TagType::Script => MediaKind::Script,
            };
            (kind, ts, body)
        })
        .collect();
    assert_eq!(
        got, want,
        "the server gets every tag as sent, metadata unwrapped"
    );
    assert!(p.packets[3].flags & flags::KEYFRAME != 0);

    p.client.unpublish();
    p.pump();
    assert_eq!(
        p.unpublished, 1,
        "the server saw an unpublish, not a timeout"
    );
    assert_eq!(
        p.events.last(),
        Some(&ClientEvent::Ended(EndReason::Unpublished))
    );
    assert!(p.client.is_done());
    assert_eq!(p.client.next_timeout(), None);
    let cmds = p.client_commands();
    assert_eq!(
        names(&cmds),
        [
            "connect",
            "releaseStream",
            "FCPublish",
            "createStream",
            "publish",
            "FCUnpublish",
            "deleteStream"
        ]
    );
    assert_eq!(
        cmds[0].command_object.get_str("tcUrl"),
        Some("rtmp://127.0.0.1/fier")
    );
    assert_eq!(cmds[4].args[0].as_str(), Some("cam?user_password=123"));
    assert_eq!(
        p.client
            .send_media(TagType::Audio, 50, Bytes::from_static(&[0xAF, 1])),
        Err(SendError::NotPublishing)
    );
}

#[test]
fn media_waits_for_publish_start() {
    let mut p = Pair::new(Role::Publish, "cam", HostRules::default());
    let mut c = RtmpClient::publish(target("cam"), ClientConfig::default(), 0, &mut rng());
    assert_eq!(
        c.send_media(TagType::Audio, 0, Bytes::from_static(&[0xAF, 1])),
        Err(SendError::NotPublishing)
    );
    assert_eq!(
        p.client.send_media(TagType::Video, 0, Bytes::new()),
        Err(SendError::BadPayload { len: 0 })
    );
}

#[test]
fn plays_from_our_server() {
    let mut p = Pair::new(Role::Play, "cam", HostRules::default());
    assert_eq!(p.events, [ClientEvent::Connected, ClientEvent::Playing]);
    assert!(p.subscription.is_some());
    for (kind, ts, body) in a_stream() {
        let (kind, fl) = match kind {
            TagType::Audio => (MediaKind::Audio, 0),
            TagType::Video => (
                MediaKind::Video,
                if body[0] >> 4 == 1 {
                    flags::KEYFRAME
                } else {
                    0
                },
            ),
            TagType::Script => (MediaKind::Script, 0),
        };
        let packet = MediaPacket::new(kind, fl, ts, payload_from_vec(body));
        p.deliver(&packet);
    }
    let got: Vec<_> = p
        .media()
        .into_iter()
        .map(|t| (t.tag_type, t.timestamp, t.data.to_vec()))
        .collect();
    assert_eq!(got, a_stream(), "every tag as the hub had it");

    // Ticks before the idle timeout do nothing; the host's pings are answered.
    p.tick(p.now + 5000);
    assert!(p.failure().is_none());
    p.client.stop();
    p.pump();
    assert_eq!(
        p.events.last(),
        Some(&ClientEvent::Ended(EndReason::Stopped))
    );
    let cmds = p.client_commands();
    assert_eq!(
        names(&cmds),
        ["connect", "createStream", "play", "deleteStream"]
    );
    assert_eq!(cmds[2].args[1].as_f64(), Some(-2.0));
}

#[test]
fn a_silent_played_stream_times_out() {
    let mut p = Pair::new(Role::Play, "cam", HostRules::default());
    assert_eq!(p.client.next_timeout(), Some(p.now + 10_000));
    p.client.tick(p.now + 9_999);
    assert!(!p.client.is_done());
    p.client.tick(p.now + 10_000);
    assert_eq!(
        p.client.poll_event(),
        Some(ClientEvent::Failed(ClientError::Timeout {
            phase: Phase::Playing,
            after_ms: 10_000
        }))
    );
}

#[test]
fn refusals_come_back_typed_with_the_servers_words() {
    let p = Pair::new(
        Role::Publish,
        "cam",
        HostRules {
            connect: AppDecision::reject("no such app"),
            ..HostRules::default()
        },
    );
    match p.failure() {
        Some(ClientError::ConnectRejected { code, description }) => {
            assert_eq!(code, "NetConnection.Connect.Rejected");
            assert!(description.contains("no such app"), "{description}");
        }
        other => panic!("{other:?} in {:?}", p.events),
    }
    assert!(p.failure().unwrap().is_refusal());

    let p = Pair::new(
        Role::Publish,
        "cam",
        HostRules {
            publish: AppDecision::reject("bad password"),
            ..HostRules::default()
        },
    );
    match p.failure() {
        Some(ClientError::PublishRejected { code, .. }) => {
            assert_eq!(code, "NetStream.Publish.BadName")
        }
        other => panic!("{other:?} in {:?}", p.events),
    }

    let p = Pair::new(
        Role::Play,
        "nosuch",
        HostRules {
            probe: SubscriptionStatus::NotFound,
            ..HostRules::default()
        },
    );
    match p.failure() {
        Some(ClientError::StreamNotFound { description }) => {
            assert!(description.contains("nosuch"), "{description}")
        }
        other => panic!("{other:?} in {:?}", p.events),
    }
    assert!(!p.events.contains(&ClientEvent::Playing));
}

#[test]
fn the_end_of_a_live_stream_reaches_the_player() {
    let mut p = Pair::new(Role::Play, "cam", HostRules::default());
    let (sub, _) = p.subscription.as_ref().map(|(s, _)| (*s, ())).unwrap();
    for status in [
        SubscriptionStatus::PublisherStarted { media: true },
        SubscriptionStatus::PublisherLeft,
    ] {
        let mut out = Outbox::new();
        let ev = Event::Subscription {
            subscription: sub,
            status: SubscriptionStatus_NE::new(status),
        };
        p.server.event(ev, p.now, &mut out).unwrap();
        p.host(out);
        p.pump();
    }
    assert!(
        p.events.contains(&ClientEvent::Unpublished),
        "{:?}",
        p.events
    );
    assert!(p.failure().is_none());
}

// ---------------------------------------------------------------------------------------------
// A scripted server: the test writes every byte.

/// A server the test scripts: the handshake done by `ServerHandshake`, then messages.
struct Scripted {
    client: RtmpClient,
    enc: ChunkEncoder,
    dec: ChunkDecoder,
    now: u64,
}

impl Scripted {
    fn new(role: Role, config: ClientConfig) -> Scripted {
        let now = 0;
        let mut client = match role {
            Role::Publish => RtmpClient::publish(target("cam"), config, now, &mut rng()),
            Role::Play => RtmpClient::play(target("cam"), config, now, &mut rng()),
        };
        let mut hs = ServerHandshake::new(0, &mut rng());
        let mut s0s1s2 = Vec::new();
        hs.feed(&client.take_output(), &mut s0s1s2).unwrap();
        client.bytes(&s0s1s2, now);
        let mut s = Scripted {
            client,
            enc: ChunkEncoder::default(),
            dec: ChunkDecoder::new(ChunkLimits::default()),
            now,
        };
        let c2_and_more = s.client.take_output();
        s.dec.push(&c2_and_more[1536..]);
        s
    }

    /// What the client sent since the last call, decoded.
    fn sent(&mut self) -> Vec<RtmpMessage> {
        self.dec.push(&self.client.take_output());
        let mut v = Vec::new();
        while let Some(m) = self.dec.next_message().unwrap() {
            if let Ok(ControlMessage::SetChunkSize(n)) =
                ControlMessage::parse(m.type_id, &m.payload)
            {
                self.dec.set_chunk_size(n).unwrap();
            }
            v.push(m);
        }
        v
    }

    fn send(&mut self, m: &RtmpMessage) {
        let b = self.enc.encode_message(m.csid, m).unwrap();
        self.client.bytes(&b, self.now);
    }

    fn command(&mut self, msid: u32, cmd: Command) {
        let m = cmd.to_message(CommandEncoding::Amf0, 3, msid).unwrap();
        self.send(&m);
    }

    fn events(&mut self) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    fn accept_connect(&mut self) {
        let info = Status::status("NetConnection.Connect.Success", "ok").to_amf0();
        self.command(0, Command::result(1.0, Amf0Value::Null, vec![info]));
    }

    /// createStream's transaction (the last command sent) answered with stream 1.
    fn answer_create_stream(&mut self, txn: f64) {
        self.command(
            0,
            Command::result(txn, Amf0Value::Null, vec![Amf0Value::Number(1.0)]),
        );
    }

    fn status(&mut self, code: &str, level: &str) {
        let st = Status::with_level(level, code, "said the server");
        self.command(1, Command::on_status(&st));
    }

    fn commands(msgs: &[RtmpMessage]) -> Vec<Command> {
        msgs.iter()
            .filter(|m| m.type_id == msg_type::COMMAND_AMF0)
            .map(|m| Command::parse(m.type_id, &m.payload, &AmfLimits::default()).unwrap())
            .collect()
    }

    fn controls(msgs: &[RtmpMessage]) -> Vec<ControlMessage> {
        msgs.iter()
            .filter(|m| m.type_id <= 6)
            .map(|m| ControlMessage::parse(m.type_id, &m.payload).unwrap())
            .collect()
    }

    /// Connected and playing on stream 1.
    fn playing(config: ClientConfig) -> Scripted {
        let mut s = Scripted::new(Role::Play, config);
        s.sent();
        s.accept_connect();
        let txn = Scripted::commands(&s.sent())[0].transaction_id;
        s.answer_create_stream(txn);
        s.sent();
        s.status("NetStream.Play.Start", "status");
        assert_eq!(s.events(), [ClientEvent::Connected, ClientEvent::Playing]);
        s
    }
}

#[test]
fn the_first_messages_are_chunk_size_then_connect() {
    let mut s = Scripted::new(Role::Play, ClientConfig::default());
    let msgs = s.sent();
    assert_eq!(
        Scripted::controls(&msgs),
        [ControlMessage::SetChunkSize(4096)]
    );
    let cmds = Scripted::commands(&msgs);
    assert_eq!(names(&cmds), ["connect"]);
    assert_eq!(cmds[0].command_object.get_str("app"), Some("fier"));
    assert_eq!(cmds[0].command_object.get_f64("videoCodecs"), Some(252.0));
    assert_eq!(s.client.chunk_size(), 4096);
}

#[test]
fn each_phase_has_its_deadline() {
    // No server at all: the handshake.
    let mut c = RtmpClient::play(target("cam"), ClientConfig::default(), 500, &mut rng());
    assert_eq!(c.next_timeout(), Some(10_500));
    c.tick(10_499);
    assert!(!c.is_done());
    c.tick(10_500);
    assert_eq!(
        c.poll_event(),
        Some(ClientEvent::Failed(ClientError::Timeout {
            phase: Phase::Handshake,
            after_ms: 10_000
        }))
    );
    assert_eq!(c.poll_event(), None, "one terminal event");
    c.tick(99_999);
    c.bytes(&[3], 99_999);
    assert_eq!(c.poll_event(), None, "nothing after the end");

    // A server that never answers connect, createStream, publish.
    for stop_after in [Phase::Connect, Phase::CreateStream, Phase::Publish] {
        let mut s = Scripted::new(Role::Publish, ClientConfig::default());
        s.sent();
        if stop_after != Phase::Connect {
            s.accept_connect();
            let cmds = Scripted::commands(&s.sent());
            if stop_after == Phase::Publish {
                let txn = cmds.last().unwrap().transaction_id;
                s.answer_create_stream(txn);
            }
        }
        assert_eq!(s.client.phase(), stop_after);
        s.now = 20_000;
        s.client.tick(s.now);
        assert_eq!(
            s.events().last(),
            Some(&ClientEvent::Failed(ClientError::Timeout {
                phase: stop_after,
                after_ms: 10_000
            }))
        );
    }
}

#[test]
fn pings_acknowledgements_and_peer_bandwidth() {
    let mut s = Scripted::playing(ClientConfig::default());
    s.send(&ControlMessage::UserControl(UserControlEvent::PingRequest(77)).to_message());
    s.send(
        &ControlMessage::SetPeerBandwidth {
            window: 2_500_000,
            limit: PeerBandwidthLimit::Dynamic,
        }
        .to_message(),
    );
    s.send(
        &ControlMessage::SetPeerBandwidth {
            window: 2_500_000,
            limit: PeerBandwidthLimit::Hard,
        }
        .to_message(),
    );
    s.send(&ControlMessage::WindowAckSize(10_000).to_message());
    let ctl = Scripted::controls(&s.sent());
    assert_eq!(
        ctl,
        [
            ControlMessage::UserControl(UserControlEvent::PingResponse(77)),
            ControlMessage::WindowAckSize(2_500_000),
        ],
        "one window announcement per change"
    );
    // 10 000 bytes of video: one acknowledgement, counting the handshake.
    let video = RtmpMessage::new(6, 0, 9, 1, vec![0x17; 10_000]);
    s.send(&video);
    let ctl = Scripted::controls(&s.sent());
    match ctl.as_slice() {
        [ControlMessage::Acknowledgement(seq)] => assert!(*seq > 13_073, "{seq}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.events().len(), 1, "the frame");
}

#[test]
fn aggregates_and_data_messages_become_tags() {
    let mut s = Scripted::playing(ClientConfig::default());
    let mut agg = Vec::new();
    write_tag(&mut agg, TagType::Video, 5000, &[0x17, 1, 0, 0, 0]).unwrap();
    write_tag(&mut agg, TagType::Audio, 5023, &[0xAF, 1]).unwrap();
    s.send(&RtmpMessage::new(6, 100, msg_type::AGGREGATE, 1, agg));
    // Data: |RtmpSampleAccess is not media; @setDataFrame is removed; AMF3 data loses its
    // format byte.
    let mut sample = Vec::new();
    amf0::encode_all(
        &[
            Amf0Value::from("|RtmpSampleAccess"),
            true.into(),
            true.into(),
        ],
        &mut sample,
    )
    .unwrap();
    s.send(&RtmpMessage::new(5, 0, msg_type::DATA_AMF0, 1, sample));
    let mut set = amf0_string("@setDataFrame");
    set.extend(metadata_body());
    s.send(&RtmpMessage::new(5, 0, msg_type::DATA_AMF0, 1, set));
    let mut amf3 = vec![0];
    amf3.extend(metadata_body());
    s.send(&RtmpMessage::new(5, 0, msg_type::DATA_AMF3, 1, amf3));
    // Media of another stream is not ours.
    s.send(&RtmpMessage::new(6, 0, 9, 2, vec![0x17, 1]));
    let tags: Vec<_> = s
        .events()
        .into_iter()
        .map(|e| match e {
            ClientEvent::Media(t) => (t.tag_type, t.timestamp, t.data.to_vec()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        tags,
        [
            (TagType::Video, 100, vec![0x17, 1, 0, 0, 0]),
            (TagType::Audio, 123, vec![0xAF, 1]),
            (TagType::Script, 0, metadata_body()),
            (TagType::Script, 0, metadata_body()),
        ]
    );
    s.status("NetStream.Play.UnpublishNotify", "status");
    s.status("NetStream.Play.PublishNotify", "status");
    s.status("NetStream.Play.Stop", "status");
    assert_eq!(
        s.events(),
        [
            ClientEvent::Unpublished,
            ClientEvent::Republished,
            ClientEvent::Ended(EndReason::PlayStopped {
                code: "NetStream.Play.Stop".into()
            })
        ]
    );
}

#[test]
fn bounds_hold() {
    // The output queue: media is refused past max_output_bytes; the session goes on.
    let config = ClientConfig {
        max_output_bytes: 20_000,
        ..ClientConfig::default()
    };
    let mut s = Scripted::new(Role::Publish, config);
    s.sent();
    s.accept_connect();
    let txn = Scripted::commands(&s.sent()).last().unwrap().transaction_id;
    s.answer_create_stream(txn);
    s.sent();
    s.status("NetStream.Publish.Start", "status");
    assert_eq!(
        s.events(),
        [ClientEvent::Connected, ClientEvent::Publishing]
    );
    let frame = Bytes::from(vec![0x27; 8000]);
    s.client
        .send_media(TagType::Video, 0, frame.clone())
        .unwrap();
    s.client
        .send_media(TagType::Video, 40, frame.clone())
        .unwrap();
    match s.client.send_media(TagType::Video, 80, frame.clone()) {
        Err(SendError::OutputFull {
            pending,
            limit: 20_000,
        }) => {
            assert_eq!(pending, s.client.pending_output())
        }
        other => panic!("{other:?}"),
    }
    s.client.advance_output(10_000);
    s.client.send_media(TagType::Video, 80, frame).unwrap();
    assert!(!s.client.is_done());

    // Pings while nobody takes the output: past twice the bound, the session fails.
    for i in 0..3000 {
        s.send(&ControlMessage::UserControl(UserControlEvent::PingRequest(i)).to_message());
        if s.client.is_done() {
            break;
        }
    }
    assert!(matches!(
        s.events().last(),
        Some(ClientEvent::Failed(ClientError::OutputOverflow {
            limit: 40_000,
            ..
        }))
    ));

    // Messages over the size limit.
    let config = ClientConfig {
        chunk_limits: ChunkLimits {
            max_message_size: 1000,
            ..ClientConfig::default().chunk_limits
        },
        ..ClientConfig::default()
    };
    let mut s = Scripted::playing(config);
    s.send(&RtmpMessage::new(6, 0, 9, 1, vec![0x17; 1001]));
    assert!(matches!(
        s.events().last(),
        Some(ClientEvent::Failed(ClientError::Chunk(_)))
    ));

    // No room for a single transaction.
    let mut s = Scripted::new(
        Role::Play,
        ClientConfig {
            max_transactions: 0,
            ..ClientConfig::default()
        },
    );
    assert_eq!(
        s.events(),
        [ClientEvent::Failed(ClientError::TooManyTransactions {
            limit: 0
        })]
    );
}

#[test]
fn the_server_closing_or_breaking_the_protocol_fails_the_session() {
    let mut s = Scripted::playing(ClientConfig::default());
    s.client.closed(s.now);
    assert_eq!(
        s.events(),
        [ClientEvent::Failed(ClientError::Closed {
            phase: Phase::Playing
        })]
    );

    let mut c = RtmpClient::publish(target("cam"), ClientConfig::default(), 0, &mut rng());
    c.bytes(&[6; 10], 0);
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Failed(ClientError::Handshake(_)))
    ));

    // createStream answered without a number.
    let mut s = Scripted::new(Role::Play, ClientConfig::default());
    s.sent();
    s.accept_connect();
    let txn = Scripted::commands(&s.sent())[0].transaction_id;
    s.command(
        0,
        Command::result(txn, Amf0Value::Null, vec![Amf0Value::from("x")]),
    );
    assert_eq!(
        s.events().last(),
        Some(&ClientEvent::Failed(ClientError::Unexpected(
            "createStream result without a stream id"
        )))
    );
}

#[test]
fn urls_split_into_address_and_target() {
    let (addr, t) = Target::parse_url("rtmp://example.org/live/cam?key=1").unwrap();
    assert_eq!(addr, "example.org:1935");
    assert_eq!(
        t,
        Target::new("live", "rtmp://example.org/live", "cam?key=1")
    );
    let (addr, t) = Target::parse_url("rtmps://[::1]:1936/a/b/c").unwrap();
    assert_eq!(addr, "[::1]:1936");
    assert_eq!(t.stream, "b/c");
    assert_eq!(
        Target::parse_url("rtmps://[::1]/a/b").unwrap().0,
        "[::1]:443"
    );
    for bad in [
        "http://h/a/b",
        "rtmp://h/a",
        "rtmp:///a/b",
        "rtmp://h//b",
        "rtmp://h/a/?q",
    ] {
        assert!(Target::parse_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn timestamps_past_24_bits_go_out_and_come_back() {
    // Publishing: the extended timestamp field.
    let mut s = Scripted::new(Role::Publish, ClientConfig::default());
    s.sent();
    s.accept_connect();
    let txn = Scripted::commands(&s.sent()).last().unwrap().transaction_id;
    s.answer_create_stream(txn);
    s.sent();
    s.status("NetStream.Publish.Start", "status");
    s.events();
    let late = 0x0100_0000 + 40;
    let frame = Bytes::from(vec![0x27; 9000]);
    s.client
        .send_media(TagType::Video, late, frame.clone())
        .unwrap();
    let msgs = s.sent();
    assert_eq!(msgs.len(), 1);
    assert_eq!((msgs[0].timestamp, &msgs[0].payload), (late, &frame));

    // Playing: the server's extended timestamps.
    let mut s = Scripted::playing(ClientConfig::default());
    s.send(&RtmpMessage::new(6, 0xFFFF_FF00, 9, 1, vec![0x17; 5000]));
    match s.events().as_slice() {
        [ClientEvent::Media(t)] => assert_eq!((t.timestamp, t.data.len()), (0xFFFF_FF00, 5000)),
        other => panic!("{other:?}"),
    }
}
