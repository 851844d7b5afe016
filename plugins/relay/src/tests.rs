//! The push against our own RTMP server session in memory: a small stand-in host owns the
//! "sockets" (one server session per connection), the clock and the hub's side of the server,
//! and records what each server received.

use std::{collections::BTreeSet, sync::Arc};

use fstream_abi::{
    flags, sdk::SessionLogic, Action as SAction, AppCall, AppDecision, ConnInfo, Event, MediaKind,
    MediaPacket, NetAddr, Outbox, PublishOutcome, PublishOutcome_NE,
};
use fstream_media::{
    amf0::{self, Amf0Value},
    flv::TagType,
    rtmp::{
        chunk::{ChunkDecoder, ChunkLimits},
        message::{msg_type, Command, ControlMessage},
    },
    AmfLimits,
};
use proptest::prelude::*;
use rtmp::session::RtmpSession;

use crate::{
    push::{backoff, Action, ConnId, Push, PushConfig, PushEvent, PushEventKind, PushState, Tag},
    relay::{Relay, MAX_PUSHES},
    settings::{Destination, Settings, SettingsError},
};

// ---------------------------------------------------------------------------------------------
// The stream

fn metadata() -> Tag {
    let mut p = Vec::new();
    amf0::encode_all(
        &[
            Amf0Value::from("onMetaData"),
            Amf0Value::ecma_array([("width", Amf0Value::Number(320.0))]),
        ],
        &mut p,
    )
    .unwrap();
    Tag::new(TagType::Script, 0, p)
}

fn avc_header() -> Tag {
    Tag::new(TagType::Video, 0, vec![0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]).header()
}

fn aac_header() -> Tag {
    Tag::new(TagType::Audio, 0, vec![0xAF, 0, 0x12, 0x10]).header()
}

fn headers() -> Vec<Tag> {
    vec![metadata(), avc_header(), aac_header()]
}

/// Video frame `idx` of GOP `gop` (idx 0 is the keyframe), `size` bytes; the ids are in the
/// payload so what a server got can be checked for holes.
fn video(gop: u32, idx: u32, ts: u32, size: usize) -> Tag {
    let key = idx == 0;
    let mut p = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    p.extend(gop.to_be_bytes());
    p.extend(idx.to_be_bytes());
    p.resize(size.max(p.len()), 0xEE);
    let t = Tag::new(TagType::Video, ts, p);
    if key {
        t.keyframe()
    } else {
        t
    }
}

fn audio(ts: u32) -> Tag {
    Tag::new(TagType::Audio, ts, vec![0xAF, 1, 9, 9])
}

fn ids(p: &MediaPacket) -> Option<(u32, u32)> {
    let b = p.payload.as_slice();
    if p.kind != MediaKind::Video || b.len() < 13 || b.get(1) != Some(&1) {
        return None;
    }
    let n = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
    Some((n(5), n(9)))
}

// ---------------------------------------------------------------------------------------------
// The stand-in host

/// One destination server (our RtmpSession), reached over one connection.
struct Server {
    conn: ConnId,
    session: RtmpSession,
    /// What it gave the hub.
    packets: Vec<MediaPacket>,
    published: Vec<String>,
    unpublished: usize,
    /// Every byte it was given.
    received: Vec<u8>,
    /// The connection is gone (either side closed it).
    gone: bool,
}

impl Server {
    /// The commands the push sent to this server (after the handshake).
    fn commands(&self) -> Vec<String> {
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        dec.push(self.received.get(1 + 2 * 1536..).unwrap_or_default());
        let mut names = Vec::new();
        while let Some(m) = dec.next_message().unwrap() {
            if let Ok(ControlMessage::SetChunkSize(n)) =
                ControlMessage::parse(m.type_id, &m.payload)
            {
                dec.set_chunk_size(n).unwrap();
            }
            if m.type_id == msg_type::COMMAND_AMF0 {
                let c = Command::parse(m.type_id, &m.payload, &AmfLimits::default()).unwrap();
                names.push(c.name);
            }
        }
        names
    }

    fn media(&self) -> Vec<&MediaPacket> {
        self.packets.iter().collect()
    }
}

/// Breaks of the push's promises, found while driving it.
#[derive(Debug, Default)]
struct Violations(Vec<String>);

struct Host {
    push: Push,
    now: u64,
    publish: AppDecision,
    connect: AppDecision,
    /// Whether TCP connections succeed.
    reachable: bool,
    /// The socket takes nothing (a slow destination).
    stalled: bool,
    servers: Vec<Server>,
    /// Bytes handed over for the current connection, not written (while stalled).
    unwritten: Vec<u8>,
    open: BTreeSet<ConnId>,
    events: Vec<PushEvent>,
    /// Set after the stream ended (and its own actions ran): nothing may follow.
    ended: bool,
    /// Every action carried out, in order.
    log: Vec<Action>,
    bad: Violations,
}

impl Host {
    fn new(settings: &Settings) -> Host {
        let dest = Destination::from_url("rtmp://127.0.0.1/fier/cam?user_password=123").unwrap();
        let push = Push::new(dest, PushConfig::from_settings(settings), 7);
        Host {
            push,
            now: 1000,
            publish: AppDecision::accept(),
            connect: AppDecision::accept(),
            reachable: true,
            stalled: false,
            servers: Vec::new(),
            unwritten: Vec::new(),
            open: BTreeSet::new(),
            events: Vec::new(),
            ended: false,
            log: Vec::new(),
            bad: Violations::default(),
        }
    }

    fn server_of(&mut self, conn: ConnId) -> Option<usize> {
        self.servers.iter().position(|s| s.conn == conn && !s.gone)
    }

    fn last(&self) -> &Server {
        self.servers.last().expect("a server")
    }

    /// Carries out the push's actions until it has nothing more to say.
    fn run(&mut self) {
        loop {
            while let Some(e) = self.push.poll_event() {
                if let PushEventKind::Failed { retry_in_ms, .. } = e.kind {
                    let c = self.push.config();
                    if !(c.retry_ms..=c.max_retry_ms).contains(&retry_in_ms) {
                        self.bad.0.push(format!("a backoff of {retry_in_ms} ms"));
                    }
                }
                self.events.push(e);
            }
            let Some(a) = self.push.poll_action() else {
                break;
            };
            if self.ended {
                self.bad.0.push(format!("{a:?} after the stream ended"));
            }
            self.log.push(match &a {
                // The bytes are not needed, only where they went.
                Action::Write { conn, .. } => Action::Write {
                    conn: *conn,
                    bytes: Vec::new(),
                },
                other => other.clone(),
            });
            match a {
                Action::Connect { conn, .. } => self.connect(conn),
                Action::Write { conn, bytes } => self.write(conn, bytes),
                Action::Close { conn, flush } => {
                    self.open.remove(&conn);
                    if flush && !self.stalled {
                        let rest = std::mem::take(&mut self.unwritten);
                        self.deliver(conn, rest);
                    }
                    self.unwritten.clear();
                    if let Some(i) = self.server_of(conn) {
                        let mut out = Outbox::new();
                        self.servers[i].session.closed(self.now, &mut out).unwrap();
                        self.servers[i].gone = true;
                        self.server_actions(i, out);
                    }
                }
            }
            let bound = self.push.hard_limit();
            if self.push.in_flight() > bound {
                let n = self.push.in_flight();
                self.bad
                    .0
                    .push(format!("{n} bytes in flight, bound {bound}"));
            }
        }
    }

    fn connect(&mut self, conn: ConnId) {
        if !self.open.is_empty() {
            self.bad
                .0
                .push(format!("connect {conn} while {:?} open", self.open));
        }
        self.open.insert(conn);
        self.unwritten.clear();
        if !self.reachable {
            self.open.remove(&conn);
            self.push.closed(conn, self.now);
            return;
        }
        let info = ConnInfo {
            id: conn,
            peer: "127.0.0.1:5000".into(),
            local: "127.0.0.1:1935".into(),
            peer_addr: NetAddr::parse_or_unspecified("127.0.0.1:5000"),
            local_addr: NetAddr::parse_or_unspecified("127.0.0.1:1935"),
            ext: Default::default(),
        };
        let settings = Arc::new(rtmp::settings::Settings::default());
        let mut session = RtmpSession::new(settings, &info);
        let mut out = Outbox::new();
        session.start(self.now, &mut out).unwrap();
        self.servers.push(Server {
            conn,
            session,
            packets: Vec::new(),
            published: Vec::new(),
            unpublished: 0,
            received: Vec::new(),
            gone: false,
        });
        let i = self.servers.len() - 1;
        self.server_actions(i, out);
        self.push.connected(conn, self.now);
    }

    fn write(&mut self, conn: ConnId, bytes: Vec<u8>) {
        if !self.open.contains(&conn) {
            self.bad.0.push(format!("a write to {conn}, not open"));
            return;
        }
        if self.stalled {
            self.unwritten.extend_from_slice(&bytes);
            return;
        }
        let n = bytes.len();
        self.deliver(conn, bytes);
        self.push.written(conn, n, self.now);
    }

    /// The socket takes everything waiting again.
    fn unstall(&mut self) {
        self.stalled = false;
        let conn = self.open.iter().next().copied();
        let rest = std::mem::take(&mut self.unwritten);
        if let Some(conn) = conn {
            let n = rest.len();
            self.deliver(conn, rest);
            self.push.written(conn, n, self.now);
        }
        self.run();
    }

    /// A stalled socket takes `n` bytes of what waits.
    fn drain(&mut self, n: usize) {
        let Some(conn) = self.open.iter().next().copied() else {
            return;
        };
        let n = n.min(self.unwritten.len());
        let part: Vec<u8> = self.unwritten.drain(..n).collect();
        self.deliver(conn, part);
        self.push.written(conn, n, self.now);
        self.run();
    }

    fn deliver(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let Some(i) = self.server_of(conn) else {
            return;
        };
        self.servers[i].received.extend_from_slice(&bytes);
        let mut out = Outbox::new();
        if self.servers[i]
            .session
            .bytes(&bytes, self.now, &mut out)
            .is_err()
        {
            self.servers[i].gone = true;
        }
        self.server_actions(i, out);
    }

    /// Carries out a server session's actions as the host would.
    fn server_actions(&mut self, i: usize, mut out: Outbox) {
        let conn = self.servers[i].conn;
        let mut events = Vec::new();
        for a in out.take_known() {
            match a {
                SAction::Write(p) if self.open.contains(&conn) => {
                    self.push.bytes_in(conn, p.as_slice(), self.now);
                }
                SAction::Close(_) => {
                    self.servers[i].gone = true;
                    if self.open.remove(&conn) {
                        self.push.closed(conn, self.now);
                    }
                }
                SAction::CallApp { request, call } => {
                    let decision = match call.as_enum() {
                        Ok(AppCall::Connect(_)) => self.connect.clone(),
                        Ok(AppCall::Publish(_)) => self.publish.clone(),
                        _ => AppDecision::accept(),
                    };
                    events.push(Event::AppResult { request, decision });
                }
                SAction::Publish {
                    publication,
                    stream,
                    ..
                } => {
                    self.servers[i].published.push(stream.to_string());
                    events.push(Event::PublishResult {
                        publication,
                        outcome: PublishOutcome_NE::new(PublishOutcome::Started),
                    });
                }
                SAction::Packet { packet, .. } => self.servers[i].packets.push(packet),
                SAction::Unpublish { .. } => self.servers[i].unpublished += 1,
                _ => {}
            }
        }
        for ev in events {
            let mut out = Outbox::new();
            if self.servers[i]
                .session
                .event(ev, self.now, &mut out)
                .is_ok()
            {
                self.server_actions(i, out);
            }
        }
    }

    // The test's verbs.

    fn start(&mut self) {
        self.ended = false;
        self.push.stream_started(headers(), self.now);
        self.run();
    }

    fn media(&mut self, tag: Tag) {
        self.push.media(tag, self.now);
        self.run();
    }

    fn end(&mut self) {
        self.push.stream_ended(self.now);
        self.run();
        self.ended = true;
    }

    fn tick(&mut self, at: u64) {
        self.now = at;
        self.push.tick(at);
        self.run();
        for i in 0..self.servers.len() {
            if !self.servers[i].gone {
                let mut out = Outbox::new();
                self.servers[i].session.timer(at, &mut out).unwrap();
                self.server_actions(i, out);
            }
        }
        self.run();
    }

    /// The destination drops the connection.
    fn drop_connection(&mut self) {
        let Some(conn) = self.open.iter().next().copied() else {
            return;
        };
        self.open.remove(&conn);
        self.unwritten.clear();
        if let Some(i) = self.server_of(conn) {
            let mut out = Outbox::new();
            self.servers[i].session.closed(self.now, &mut out).unwrap();
            self.servers[i].gone = true;
            self.server_actions(i, out);
        }
        self.push.closed(conn, self.now);
        self.run();
    }

    fn failures(&self) -> Vec<(&'static str, u64)> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                PushEventKind::Failed {
                    error, retry_in_ms, ..
                } => Some((error.kind(), *retry_in_ms)),
                _ => None,
            })
            .collect()
    }
}

/// What a server got, one packet: its kind, whether a header, the frame's (GOP, index).
type Got = (MediaKind, bool, Option<(u32, u32)>);

/// The kinds and ids of what a server got.
fn summary(s: &Server) -> Vec<Got> {
    s.media()
        .iter()
        .map(|p| {
            let header = p.flags & (flags::SEQUENCE_HEADER | flags::METADATA) != 0
                || p.kind == MediaKind::Script;
            (p.kind, header, ids(p))
        })
        .collect()
}

/// Every video frame a server got is a keyframe or follows its predecessor of the same GOP,
/// and the headers (metadata, AVC, AAC) came before any frame.
fn decodable(s: &Server) -> Result<(), String> {
    let got = summary(s);
    let first_frame = got.iter().position(|(_, h, _)| !h).unwrap_or(got.len());
    let heads: Vec<_> = got[..first_frame].iter().map(|(k, _, _)| *k).collect();
    let sva = [MediaKind::Script, MediaKind::Video, MediaKind::Audio];
    if first_frame > 0 && heads.get(..3) != Some(&sva[..]) {
        return Err(format!("headers {heads:?}"));
    }
    if first_frame == 0 && !got.is_empty() {
        return Err("media before the headers".into());
    }
    let mut prev: Option<(u32, u32)> = None;
    for (_, _, id) in got {
        let Some((gop, idx)) = id else { continue };
        if idx != 0 && prev != Some((gop, idx - 1)) {
            return Err(format!("frame {gop}.{idx} after {prev:?}"));
        }
        prev = Some((gop, idx));
    }
    Ok(())
}

fn settings() -> Settings {
    Settings::default()
}

// ---------------------------------------------------------------------------------------------
// Histories

#[test]
fn a_push_lives_and_ends_with_its_stream_and_survives_a_dropped_connection() {
    let mut h = Host::new(&settings());
    assert_eq!(h.push.state(), PushState::Idle);
    h.start();
    assert_eq!(h.push.state(), PushState::Publishing);
    assert_eq!(h.last().published, ["fier/cam"]);

    // GOP 0: key + 3 inter frames, audio between; the first keyframe spans chunks.
    h.media(video(0, 0, 0, 10_000));
    for i in 1..4 {
        h.media(audio(i * 20));
        h.media(video(0, i, i * 40, 500));
    }
    let s = h.last();
    decodable(s).unwrap();
    let kinds: Vec<_> = summary(s).into_iter().map(|(k, h, _)| (k, h)).collect();
    use MediaKind::{Audio as A, Script as S, Video as V};
    assert_eq!(
        kinds,
        [
            (S, true),
            (V, true),
            (A, true),
            (V, false),
            (A, false),
            (V, false),
            (A, false),
            (V, false),
            (A, false),
            (V, false)
        ]
    );
    assert!(s.packets[3].flags & flags::KEYFRAME != 0);

    // The destination goes away: a backoff of retry_ms, media meanwhile goes nowhere.
    h.drop_connection();
    assert_eq!(h.push.state(), PushState::Backoff);
    assert_eq!(h.failures(), [("closed", 1000)]);
    h.media(video(0, 4, 200, 500));
    h.tick(h.now + 999);
    assert_eq!(h.servers.len(), 1, "not before the backoff is over");
    h.tick(h.now + 1);
    assert_eq!(h.servers.len(), 2);
    assert_eq!(h.push.state(), PushState::Publishing);
    assert_eq!(h.push.stats().reconnects, 1);

    // Resumes at the next keyframe, after the headers again.
    h.media(video(0, 5, 240, 500));
    h.media(audio(250));
    h.media(video(1, 0, 280, 8_000));
    h.media(audio(290));
    h.media(video(1, 1, 320, 500));
    let s = h.last();
    decodable(s).unwrap();
    let got: Vec<_> = summary(s).into_iter().map(|(k, _, id)| (k, id)).collect();
    assert_eq!(
        got,
        [
            (S, None),
            (V, None),
            (A, None),
            (V, Some((1, 0))),
            (A, None),
            (V, Some((1, 1)))
        ]
    );
    assert_eq!(
        s.packets[0].timestamp, 200,
        "resent headers carry the stream's time, not 0"
    );
    assert_eq!(
        h.push.stats().dropped_frames,
        2,
        "the inter frame and the audio"
    );

    // The stream ends: the server sees an unpublish, then the close.
    h.end();
    assert_eq!(h.push.state(), PushState::Idle);
    let s = h.last();
    assert_eq!(s.unpublished, 1);
    assert!(s.gone);
    assert_eq!(
        s.commands(),
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
    assert!(h.events.iter().any(|e| e.kind == PushEventKind::Ended));
    assert!(h.bad.0.is_empty(), "{:?}", h.bad);
    assert_eq!(h.push.next_timeout(), None);
    let stats = h.push.stats();
    assert_eq!((stats.connects, stats.failures), (2, 1));
    assert_eq!(stats.bytes_out, stats.bytes_written);
}

#[test]
fn a_slow_destination_drops_up_to_the_next_keyframe_within_the_bound() {
    let s = Settings {
        queue_bytes: 64 * 1024,
        ..settings()
    };
    let mut h = Host::new(&s);
    h.start();
    h.media(video(0, 0, 0, 4_000));
    h.stalled = true;
    let bound = 64 * 1024 + h.push.essentials_bound();
    let mut ts = 0;
    for gop in 1..40 {
        for idx in 0..10 {
            ts += 40;
            h.media(video(gop, idx, ts, if idx == 0 { 12_000 } else { 3_000 }));
            h.media(audio(ts + 1));
            assert!(
                h.unwritten.len() <= bound,
                "{} > {bound}",
                h.unwritten.len()
            );
            assert_eq!(h.unwritten.len(), h.push.in_flight());
        }
    }
    let dropped = h.push.stats().dropped_frames;
    assert!(dropped > 500, "{dropped}");
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e.kind, PushEventKind::Dropping { .. })));
    assert_eq!(
        h.push.state(),
        PushState::Publishing,
        "a slow destination is kept"
    );

    // The socket drains; the next GOP goes out whole.
    h.unstall();
    h.media(video(40, 1, ts + 40, 3_000));
    h.media(video(41, 0, ts + 80, 12_000));
    h.media(video(41, 1, ts + 120, 3_000));
    decodable(h.last()).unwrap();
    let tail: Vec<_> = summary(h.last())
        .into_iter()
        .filter_map(|(_, _, id)| id)
        .rev()
        .take(2)
        .collect();
    assert_eq!(tail, [(41, 1), (41, 0)]);
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e.kind, PushEventKind::Resumed { dropped } if dropped > 0)));
    assert!(h.bad.0.is_empty(), "{:?}", h.bad);
}

#[test]
fn a_destination_that_stops_reading_is_given_up_and_reconnected() {
    let mut h = Host::new(&settings());
    h.start();
    h.media(video(0, 0, 0, 4_000));
    h.stalled = true;
    h.media(video(0, 1, 40, 4_000));
    let stuck_at = h.now;
    assert_eq!(h.push.next_timeout(), Some(stuck_at + 15_000));
    h.tick(stuck_at + 14_999);
    assert_eq!(h.push.state(), PushState::Publishing);
    h.tick(stuck_at + 15_000);
    assert_eq!(h.failures(), [("stalled", 1000)]);
    assert!(h.open.is_empty(), "closed at once");
    let line = h.events.last().unwrap().to_string();
    assert!(line.contains("took nothing"), "{line}");

    // Headers that keep coming (publisher after publisher) while nothing is read: past the
    // hard limit the connection fails rather than queue without end.
    let mut h = Host::new(&Settings {
        queue_bytes: 64 * 1024,
        ..settings()
    });
    h.start();
    h.stalled = true;
    let big = Tag::new(TagType::Script, 0, vec![2; 20_000]);
    for _ in 0..20 {
        h.push.stream_started([big.clone(), avc_header()], h.now);
        h.run();
        if h.push.state() != PushState::Publishing {
            break;
        }
    }
    assert_eq!(h.failures().first().map(|f| f.0), Some("overflow"));
    assert!(h.bad.0.is_empty(), "{:?}", h.bad);
}

#[test]
fn a_refusal_waits_the_longest_backoff() {
    let mut h = Host::new(&settings());
    h.publish = AppDecision::reject("bad password");
    h.start();
    assert_eq!(h.failures(), [("publish_rejected", 30_000)]);
    assert_eq!(h.push.state(), PushState::Backoff);
    assert_eq!(h.push.next_timeout(), Some(h.now + 30_000));
    h.tick(h.now + 29_999);
    assert_eq!(h.servers.len(), 1);
    h.publish = AppDecision::accept();
    h.tick(h.now + 1);
    assert_eq!(h.push.state(), PushState::Publishing);

    let mut h = Host::new(&settings());
    h.connect = AppDecision::reject("no such app");
    h.start();
    assert_eq!(h.failures(), [("connect_rejected", 30_000)]);
    // The event, as logged, names the destination without its password.
    let line = h.events.last().unwrap().to_string();
    assert!(
        line.contains("rtmp://127.0.0.1/fier/cam?user_password=***"),
        "{line}"
    );
    assert!(!line.contains("123"), "{line}");

    // A server quoting the refused name, key and all: the log line does not.
    assert_eq!(
        Destination::from_url("rtmps://[::1]/a/b").unwrap().addr,
        "[::1]:443"
    );
    let d = Destination::from_url("rtmps://[::1]:4443/live/cam?key=S3CRET").unwrap();
    assert_eq!(d.server_name(), "::1");
    assert_eq!(
        d.scrub("NetStream.Publish.BadName: cam?key=S3CRET is taken"),
        "NetStream.Publish.BadName: cam?*** is taken"
    );
    let s =
        Settings::parse("[[push]]\nstreams = [\"*/*\"]\nto = [\"rtmp://yt.example/live2/KEY-1\"]")
            .unwrap();
    let (d, _) = s.destinations("a/b").unwrap();
    assert_eq!(d[0].scrub("no stream KEY-1 here"), "no stream *** here");
    assert_eq!(d[0].server_name(), "yt.example");
}

#[test]
fn unreachable_destinations_back_off_exponentially_and_a_stable_connection_resets_it() {
    let mut h = Host::new(&settings());
    h.reachable = false;
    h.start();
    for _ in 0..8 {
        let at = h.push.next_timeout().unwrap();
        h.tick(at);
    }
    let delays: Vec<u64> = h.failures().iter().map(|f| f.1).collect();
    assert_eq!(
        delays,
        [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]
    );
    assert!(h.failures().iter().all(|f| f.0 == "connect_failed"));

    h.reachable = true;
    let at = h.push.next_timeout().unwrap();
    h.tick(at);
    assert_eq!(h.push.state(), PushState::Publishing);
    h.tick(h.now + 10_000);
    h.drop_connection();
    assert_eq!(
        h.failures().last().unwrap().1,
        1000,
        "stable for 10 s: from the start"
    );

    // Connections the push gave up on are not heard from any more.
    h.push.closed(1, h.now);
    h.push.bytes_in(2, &[1, 2, 3], h.now);
    h.run();
    assert_eq!(h.push.state(), PushState::Backoff);
    assert_eq!(backoff(1000, 30_000, 40), 30_000);
}

#[test]
fn the_end_during_a_backoff_or_a_connection_stops_everything() {
    let mut h = Host::new(&settings());
    h.reachable = false;
    h.start();
    h.end();
    assert_eq!(h.push.state(), PushState::Idle);
    assert_eq!(h.push.next_timeout(), None);
    h.tick(h.now + 100_000);
    assert!(h.bad.0.is_empty(), "{:?}", h.bad);

    // Ended while the socket was being opened: closed, no unpublish to send.
    let dest = Destination::from_url("rtmp://h/a/b").unwrap();
    let mut p = Push::new(dest, PushConfig::from_settings(&settings()), 1);
    p.stream_started(headers(), 0);
    assert!(matches!(
        p.poll_action(),
        Some(Action::Connect { conn: 1, .. })
    ));
    p.stream_ended(0);
    assert_eq!(
        p.poll_action(),
        Some(Action::Close {
            conn: 1,
            flush: false
        })
    );
    assert_eq!(p.poll_action(), None);
    // A timeout of the attempt itself.
    p.stream_started(headers(), 0);
    p.poll_action();
    p.connected(2, 0);
    assert!(matches!(
        p.poll_action(),
        Some(Action::Write { conn: 2, .. })
    ));
    p.tick(10_000);
    assert_eq!(
        p.poll_action(),
        Some(Action::Close {
            conn: 2,
            flush: false
        })
    );
    assert_eq!(p.state(), PushState::Backoff);
}

#[test]
fn a_new_publisher_while_live_sends_its_headers_and_waits_for_a_keyframe() {
    let mut h = Host::new(&settings());
    h.start();
    h.media(video(0, 0, 0, 1000));
    h.media(video(0, 1, 40, 100));
    h.push.stream_started(headers(), h.now);
    h.run();
    h.media(video(0, 2, 80, 100));
    h.media(video(1, 0, 120, 1000));
    let got = summary(h.last());
    assert_eq!(got.len(), 3 + 2 + 3 + 1);
    assert_eq!(got[5].0, MediaKind::Script);
    assert_eq!(got[8].2, Some((1, 0)));
}

#[test]
fn script_tags_other_than_metadata_pass_as_frames() {
    let mut cue = Vec::new();
    amf0::encode_all(
        &[Amf0Value::from("onCuePoint"), Amf0Value::Number(1.0)],
        &mut cue,
    )
    .unwrap();
    let cue = Tag::new(TagType::Script, 50, cue);
    assert!(!cue.header);
    assert!(metadata().header);
    let mut h = Host::new(&settings());
    h.start();
    h.media(video(0, 0, 0, 100));
    h.media(cue);
    h.drop_connection();
    h.tick(h.now + 1000);
    let kinds: Vec<_> = summary(h.last()).into_iter().map(|g| g.0).collect();
    assert_eq!(
        kinds,
        [MediaKind::Script, MediaKind::Video, MediaKind::Audio]
    );
    assert_eq!(
        h.servers[0].packets.len(),
        5,
        "headers, the keyframe, the cue point"
    );
}

#[test]
fn an_audio_only_stream_starts_at_once() {
    let mut h = Host::new(&settings());
    h.push.stream_started([metadata(), aac_header()], h.now);
    h.run();
    h.media(audio(0));
    h.media(audio(23));
    let got = summary(h.last());
    assert_eq!(got.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// Settings

#[test]
fn settings_parse_and_routes_resolve() {
    let s = Settings::parse(
        r#"
retry_ms = 500
max_retry_ms = 8000
queue_bytes = 1048576

[[push]]
streams = ["live/*", "fier/cam", "live/*"]
to = ["rtmp://a.example/app/{name}", "rtmps://b.example:4443/live/{app}-{name}?key=SECRET"]

[[push]]
streams = ["*/cam"]
to = ["rtmp://a.example/app/{name}", "rtmp://c.example/{stream}", "rtmp://yt.example/live2/abcd-KEY"]
"#,
    )
    .unwrap();
    assert_eq!(
        (s.retry_ms, s.max_retry_ms, s.queue_bytes),
        (500, 8000, 1 << 20)
    );
    assert_eq!(s.push[0].streams.len(), 2, "duplicates once");

    let (d, unusable) = s.destinations("fier/cam").unwrap();
    assert!(unusable.is_empty());
    let shown: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        shown,
        [
            "rtmp://a.example/app/cam",
            "rtmps://b.example:4443/live/fier-cam?key=***",
            "rtmp://c.example/fier/cam",
            "rtmp://yt.example/live2/***",
        ],
        "each once, redacted"
    );
    assert_eq!(d[1].addr, "b.example:4443");
    assert!(d[1].tls);
    assert_eq!(d[1].target.stream, "fier-cam?key=SECRET");
    assert_eq!(d[1].target.tc_url, "rtmps://b.example:4443/live");
    assert_eq!(d[2].target.app, "fier");
    assert_eq!(d[2].addr, "c.example:1935");
    assert!(!format!("{:?}", d[3]).contains("KEY"));

    assert_eq!(s.destinations("live/x").unwrap().0.len(), 2);
    assert!(s.destinations("other/x").unwrap().0.is_empty());
    assert!(s.destinations("bad name").is_err());
    assert!(s.destinations("a/../b").is_err());
    assert_eq!(Settings::parse("").unwrap(), Settings::default());
}

#[test]
fn bad_settings_name_their_key_and_hide_credentials() {
    let err = |text: &str| Settings::parse(text).unwrap_err().to_string();
    let e = err("retry_ms = 1000\nretry = 5");
    assert!(e.contains("retry") && e.contains("line 2"), "{e}");
    let e = err("[[push]]\nstreams = [\"a/b\"]\nto = [\"x\"]\nfoo = 1");
    assert!(e.contains("foo"), "{e}");
    let e = err("[[push]]\nto = [\"rtmp://h/a/b\"]");
    assert!(e.contains("streams"), "{e}");
    assert_eq!(
        Settings::parse("retry_ms = 5").unwrap_err(),
        SettingsError::Invalid {
            key: "retry_ms".into(),
            value: "5".into(),
            why: "must be from 100 to 60000".into()
        }
    );
    assert!(err("retry_ms = 5000\nmax_retry_ms = 1000").starts_with("max_retry_ms = 1000"));
    assert!(err("queue_bytes = 10").starts_with("queue_bytes"));

    let rule = |to: &str| format!("[[push]]\nstreams = [\"live/*\"]\nto = [\"{to}\"]");
    for (to, says) in [
        ("http://h/a/{name}?key=S3CRET", "http://"),
        ("srt://h/a/{name}?key=S3CRET", "srt://"),
        ("rtmp://h/{name}", "stream"),
        ("rtmp://h/a/{nmae}", "{nmae}"),
        ("rtmp://h/a/{name", "'{'"),
        ("rtmp://h/a/name}", "'}'"),
        ("rtmp://{app}.h/a/{name}", "placeholders"),
        ("rtmp://u:S3CRET@h/a/{name}", "credentials"),
        ("rtmp:///a/{name}", "host"),
        ("rtmp://h:19x5/a/{name}", "port"),
        ("rtmp://h:0/a/{name}", "port"),
    ] {
        let e = err(&rule(to));
        assert!(e.starts_with("push[0].to[0] = "), "{e}");
        assert!(e.contains(says), "{to}: {e}");
        assert!(!e.contains("S3CRET"), "{e}");
    }
    let e = err("[[push]]\nstreams = [\"live\"]\nto = [\"rtmp://h/a/b\"]");
    assert!(e.starts_with("push[0].streams[0] = \"live\""), "{e}");
    let e = err("[[push]]\nstreams = [\"live/*\", \"a/b c\"]\nto = [\"rtmp://h/a/b\"]");
    assert!(e.starts_with("push[0].streams[1]"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Random histories

#[derive(Debug, Clone)]
enum Op {
    Start,
    End,
    /// A video frame of the current GOP (`key`: a new GOP), `size` bytes, then audio.
    Frame {
        key: bool,
        size: usize,
    },
    Tick(u64),
    Drop,
    Stall(bool),
    /// A stalled socket takes this many bytes.
    Drain(usize),
    Reachable(bool),
    Refuse(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Start),
        1 => Just(Op::End),
        16 => (any::<bool>(), 13usize..40_000).prop_map(|(key, size)| Op::Frame { key, size }),
        4 => prop_oneof![0u64..2_000, 0u64..40_000].prop_map(Op::Tick),
        1 => Just(Op::Drop),
        2 => any::<bool>().prop_map(Op::Stall),
        2 => (1usize..50_000).prop_map(Op::Drain),
        1 => any::<bool>().prop_map(Op::Reachable),
        1 => any::<bool>().prop_map(Op::Refuse),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_the_promises(ops in prop::collection::vec(op(), 1..120)) {
        // Most histories are worth starting live.
        let ops = std::iter::once(Op::Start).chain(ops);
        let s = Settings { queue_bytes: 64 * 1024, retry_ms: 200, max_retry_ms: 5_000, ..settings() };
        let mut h = Host::new(&s);
        let (mut gop, mut idx) = (0u32, 0u32);
        let mut live = false;
        for op in ops {
            let was_publishing = h.push.state() == PushState::Publishing;
            match op {
                Op::Start => { h.start(); live = true; }
                Op::End => {
                    let servers = h.servers.len();
                    let stalled = h.stalled;
                    let from = h.log.len();
                    h.end();
                    // Only the unpublish's writes, then at most one close, last.
                    let after = &h.log[from..];
                    let closes = after.iter().filter(|a| matches!(a, Action::Close { .. })).count();
                    prop_assert!(closes <= 1, "{:?}", after);
                    let connects = after.iter().any(|a| matches!(a, Action::Connect { .. }));
                    prop_assert!(!connects, "{:?}", after);
                    if let Some(i) = after.iter().position(|a| matches!(a, Action::Close { .. })) {
                        prop_assert_eq!(i, after.len() - 1, "{:?}", after);
                    }
                    live = false;
                    prop_assert_eq!(h.push.state(), PushState::Idle);
                    prop_assert!(h.open.is_empty());
                    if was_publishing && !stalled {
                        let s = &h.servers[servers - 1];
                        prop_assert_eq!(s.unpublished, 1);
                        let c = s.commands();
                        prop_assert_eq!(&c[c.len() - 2..], ["FCUnpublish", "deleteStream"]);
                    }
                }
                Op::Frame { key, size } => {
                    if key { gop += 1; idx = 0; } else { idx += 1; }
                    let ts = h.now as u32;
                    h.media(video(gop, idx, ts, size));
                    h.media(audio(ts));
                }
                Op::Tick(dt) => { let at = h.now + dt; h.tick(at); }
                Op::Drop => h.drop_connection(),
                Op::Stall(true) => h.stalled = true,
                Op::Stall(false) => h.unstall(),
                Op::Drain(n) => h.drain(n),
                Op::Reachable(r) => h.reachable = r,
                Op::Refuse(r) => {
                    h.publish = if r { AppDecision::reject("no") } else { AppDecision::accept() };
                }
            }
            prop_assert!(h.bad.0.is_empty(), "{:?}", h.bad);
            prop_assert!(h.open.len() <= 1);
            if !h.open.is_empty() {
                prop_assert_eq!(h.unwritten.len(), h.push.in_flight());
            }
            if !live {
                prop_assert_eq!(h.push.next_timeout(), None);
            }
            if h.push.state() == PushState::Backoff {
                let until = h.push.next_timeout().unwrap();
                prop_assert!(until > h.now && until <= h.now + s.max_retry_ms);
            }
        }
        for s in &h.servers {
            prop_assert!(decodable(s).is_ok(), "{:?}", decodable(s));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The relay: many streams, many destinations

fn two_destinations() -> Settings {
    Settings::parse(
        r#"
[[push]]
streams = ["live/*"]
to = ["rtmp://a.example/app/{name}", "rtmp://b.example/live/{name}?key=K"]
"#,
    )
    .unwrap()
}

fn actions(r: &mut Relay) -> Vec<(u64, Action)> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

#[test]
fn the_relay_fans_a_stream_out_and_retires_its_pushes_with_it() {
    let mut r = Relay::new(two_destinations(), 3);
    let started = r.stream_started("other/cam", headers(), 0).unwrap();
    assert!(started.pushes.is_empty());
    assert!(r.stream_started("bad/na me", headers(), 0).is_err());

    let started = r.stream_started("live/cam", headers(), 0).unwrap();
    assert_eq!(started.pushes, [1, 2]);
    let got = actions(&mut r);
    let connects: Vec<_> = got
        .iter()
        .map(|(id, a)| match a {
            Action::Connect { addr, tls, .. } => (*id, addr.as_str(), *tls),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        connects,
        [(1, "a.example:1935", false), (2, "b.example:1935", false)]
    );
    // Push 1 connects (its C0 C1 go out); push 2 cannot.
    r.connected(1, 1, 0);
    r.closed(2, 1, 0);
    let got = actions(&mut r);
    assert!(
        matches!(got.as_slice(), [(1, Action::Write { conn: 1, bytes })] if bytes.len() == 1537)
    );
    let events: Vec<_> = std::iter::from_fn(|| r.poll_event()).collect();
    assert!(events
        .iter()
        .any(|(id, e)| *id == 2 && matches!(e.kind, PushEventKind::Failed { .. })));
    assert!(events.iter().all(|(_, e)| !e.to_string().contains("key=K")));
    let states: Vec<_> = r.pushes().map(|p| (p.id, p.stream, p.state)).collect();
    assert_eq!(
        states,
        [
            (1, "live/cam", PushState::Connecting),
            (2, "live/cam", PushState::Backoff)
        ]
    );
    assert_eq!(r.next_timeout(), Some(1000));
    r.tick(1000);
    assert!(matches!(
        actions(&mut r).as_slice(),
        [(2, Action::Connect { conn: 2, .. })]
    ));

    // A new publisher: the same pushes.
    assert_eq!(
        r.stream_started("live/cam", headers(), 1500)
            .unwrap()
            .pushes,
        [1, 2]
    );

    // The end: both close, then both are gone; input for them is dropped.
    r.stream_ended("live/cam", 2000);
    let got = actions(&mut r);
    assert!(
        got.contains(&(
            1,
            Action::Close {
                conn: 1,
                flush: true
            }
        )),
        "{got:?}"
    );
    assert!(
        got.contains(&(
            2,
            Action::Close {
                conn: 2,
                flush: false
            }
        )),
        "{got:?}"
    );
    assert!(r.is_empty());
    r.bytes_in(1, 1, &[0; 10], 2000);
    assert_eq!(r.poll_action(), None);
    assert_eq!(r.next_timeout(), None);
}

#[test]
fn the_relay_holds_at_most_max_pushes() {
    let to: Vec<String> = (0..64)
        .map(|i| format!("\"rtmp://h{i}/app/{{name}}\""))
        .collect();
    let s = Settings::parse(&format!(
        "[[push]]\nstreams = [\"*/*\"]\nto = [{}]",
        to.join(",")
    ))
    .unwrap();
    let mut r = Relay::new(s, 0);
    let mut skipped = 0;
    for i in 0..17 {
        skipped += r
            .stream_started(&format!("live/s{i}"), Vec::new(), 0)
            .unwrap()
            .skipped
            .len();
    }
    assert_eq!(r.len(), MAX_PUSHES);
    assert_eq!(skipped, 17 * 64 - MAX_PUSHES);
}

#[test]
fn the_example_settings_are_the_defaults_and_their_rule_works() {
    let text = include_str!("../relay.example.toml");
    assert_eq!(Settings::parse(text).unwrap(), Settings::default());
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.starts_with("[[push]]")
                    || rest.starts_with("streams =")
                    || rest.starts_with("to =") =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let s = Settings::parse(&uncommented).unwrap();
    let (d, _) = s.destinations("fier/cam").unwrap();
    let shown: Vec<String> = d.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "rtmp://backup.example/live/cam",
            "rtmps://b.example/live/fier-cam?key=***"
        ]
    );
}
