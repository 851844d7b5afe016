//! `fstream_session`: plugins/fstream's `FstreamSession` driven by a script (see [`super`]).
//!
//! The first byte of the input selects the settings ([`settings`]); the rest is the script.
//! [`op::CLIENT`](super::op::CLIENT) builds client bytes: `[kind]` then
//! - 0 a preamble `[prelude][action][user][channel][keys][bufsize]`, each an index into the
//!   lists below (keys: bit 0 `user_password`, bit 1 `token`, bit 2 `channel_password`, bit 3
//!   spell them with `-`);
//! - 1 a preamble with any action text `[prelude][len][text...]`;
//! - 2 an FLV file header `[flags]`;
//! - 3 an FLV tag `[type][ts: u32][len][data...]`, the type from [`TAG_TYPES`].
//!
//! The harness parses the preamble and the broadcast itself (fstream-wire, fstream-media) to
//! know what the session must do. Checked after every call, each from the session's code and
//! documentation:
//! - no panic, every call returns `Ok`; after a `Close`, only further `Close`s;
//! - the only bytes ever written are the token and a line feed, once, right after the host
//!   issued it and followed by a close (a refusal closes without a byte; watchers get their
//!   bytes from the hub);
//! - timers between 1 ms and `preamble_timeout_ms`; a timer at or after the deadline with the
//!   preamble incomplete closes; a malformed preamble or an invalid request closes in the call
//!   that completes it, a valid one starts its role (one `Authenticate`, `Subscribe` or
//!   `IssueToken`, for the user, channel and credentials of the request) in that call;
//! - no app handler calls, no controls;
//! - a broadcast publishes only after its authentication was allowed, the authenticated stream,
//!   with the channel password, conflict policy and grace of the request and settings; a denial,
//!   a busy or refused publish, a takeover, a shutdown, a refused token, a final subscription
//!   status close; so does an EOF once nothing is pending;
//! - while the broadcast waits for its answers, no more than `max_pending_bytes` are taken
//!   before it closes;
//! - packets only for the started publication: a raw broadcast's packets are keyframes whose
//!   bytes are the broadcast's bytes after the preamble, in order, in whole `bufsize` chunks; an
//!   FLV broadcast's packets are its tags, in order; never both; and once live, everything
//!   complete has been forwarded (a broken FLV stream closes);
//! - `Unpublish` and `Unsubscribe` once, for what the session holds.

use std::sync::Arc;

use fstream::encoder::FORMAT;
use fstream::session::FstreamSession;
use fstream::settings::{SecondBroadcaster, Settings};
use fstream::FstreamFrontend;
use fstream_abi::abi_stable::std_types::RResult;
use fstream_abi::names::validate_part;
use fstream_abi::sdk::{Frontend, SessionLogic};
use fstream_abi::{
    flags, outcome_allows, Action, AuthAction, CloseMode, Credential, Event, MediaKind,
    MediaPacket, Outbox, OverflowPolicy, PluginError, PublishOutcome, RecordMode,
};
use fstream_media::flv::{FlvDemuxer, FlvTag, TagType, MAX_TAG_DATA_SIZE};
use fstream_wire::{encode_preamble, PreambleParser, Prelude, Request};

use super::{
    actions, advance, check_flags, describe, is_final, note, publish_outcome, valid_stream, Op,
    Reader, Script, Used,
};

const FLV_MAGIC: &[u8] = b"FLV\x01";

pub const ACTIONS: &[&str] = &["broadcast", "watch", "token", "relay"];
pub const USERS: &[&str] = &["fier", "a", "x.y-z_1", "..", "bad name", "", "a/b"];
/// `None`: no `channel` key.
pub const CHANNELS: &[Option<&str>] = &[None, Some("cam"), Some("default"), Some(""), Some(".h")];
/// `None`: no `bufsize` key.
pub const BUFSIZES: &[Option<&str>] = &[
    None,
    Some("0"),
    Some("1"),
    Some("188"),
    Some("4096"),
    Some("16777216"),
    Some("16777217"),
    Some("x"),
];
/// FLV tag types of kind 3 (8, 9, 18 and two invalid ones).
pub const TAG_TYPES: &[u8] = &[8, 9, 18, 0, 0xC8];

/// The settings selected by the input's first byte (all valid by `Settings::parse`'s rules).
pub fn settings(c: u8) -> Settings {
    let mut s = Settings::default();
    if c & 0x01 != 0 {
        s.max_prelude_bytes = 64;
        s.max_action_bytes = 64;
        s.max_pending_bytes = 1024;
        s.max_bufsize = 4096;
    }
    if c & 0x02 != 0 {
        s.second_broadcaster = SecondBroadcaster::Reject;
    }
    if c & 0x04 != 0 {
        s.preamble_timeout_ms = 100;
    }
    if c & 0x08 != 0 {
        s.watch_wait_ms = 0;
        s.watcher_queue_bytes = 65536;
        s.grace_ms = 0;
    }
    s
}

/// The fuzz target's body.
pub fn fstream_session(data: &[u8]) {
    run(data, false);
}

/// Runs a script and returns what the session did, one line per action (for tests of seeds).
pub fn fstream_session_trace(data: &[u8]) -> Vec<String> {
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
                let b = client_bytes(&mut r);
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
    h.eof();
    h.trace.unwrap_or_default()
}

fn prelude(p: u8) -> Prelude {
    match p % 3 {
        0 => Prelude::Blank,
        1 => Prelude::None,
        _ => Prelude::Http {
            host: "example".into(),
        },
    }
}

/// The action text of kind 0.
fn action_text(action: u8, user: u8, channel: u8, keys: u8, bufsize: u8) -> String {
    let pick = |list: &[&'static str], i: u8| list[usize::from(i) % list.len()];
    let mut a = pick(ACTIONS, action).to_string();
    let sep = if keys & 8 != 0 { '-' } else { '_' };
    a += &format!(",user={}", pick(USERS, user));
    if keys & 1 != 0 {
        a += &format!(",user{sep}password=123");
    }
    if keys & 2 != 0 {
        a += ",token=tok";
    }
    if let Some(c) = CHANNELS[usize::from(channel) % CHANNELS.len()] {
        a += &format!(",channel={c}");
    }
    if keys & 4 != 0 {
        a += &format!(",channel{sep}password=pw");
    }
    if let Some(b) = BUFSIZES[usize::from(bufsize) % BUFSIZES.len()] {
        a += &format!(",bufsize={b}");
    }
    a
}

fn client_bytes(r: &mut Reader) -> Vec<u8> {
    match r.u8() % 4 {
        0 => {
            let p = prelude(r.u8());
            let (action, user, channel, keys, bufsize) = (r.u8(), r.u8(), r.u8(), r.u8(), r.u8());
            encode_preamble(&action_text(action, user, channel, keys, bufsize), p)
        }
        1 => {
            let p = prelude(r.u8());
            encode_preamble(&r.text(), p)
        }
        2 => {
            let f = r.u8();
            let mut v = FLV_MAGIC.to_vec();
            v.extend_from_slice(&[f & 0x05, 0, 0, 0, 9, 0, 0, 0, 0]);
            v
        }
        _ => {
            let t = TAG_TYPES[usize::from(r.u8()) % TAG_TYPES.len()];
            let ts = r.u32();
            let data = r.blob();
            let len = data.len() as u32;
            let mut v = vec![t];
            v.extend_from_slice(&len.to_be_bytes()[1..]);
            v.extend_from_slice(&ts.to_be_bytes()[1..]);
            v.push((ts >> 24) as u8);
            v.extend_from_slice(&[0, 0, 0]);
            v.extend_from_slice(data);
            v.extend_from_slice(&(len + 11).to_be_bytes());
            v
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// Arguments of [`op::CLIENT`](super::op::CLIENT) for a preamble of kind 0; `user`, `channel`
/// and `bufsize` are looked up in [`USERS`], [`CHANNELS`] and [`BUFSIZES`].
pub fn preamble(
    prelude: u8,
    action: &str,
    user: &str,
    channel: Option<&str>,
    keys: u8,
    bufsize: Option<&str>,
) -> Vec<u8> {
    let at = |i: Option<usize>| i.expect("a listed value") as u8;
    vec![
        0,
        prelude,
        at(ACTIONS.iter().position(|a| *a == action)),
        at(USERS.iter().position(|u| *u == user)),
        at(CHANNELS.iter().position(|c| *c == channel)),
        keys,
        at(BUFSIZES.iter().position(|b| *b == bufsize)),
    ]
}

/// Arguments of [`op::CLIENT`](super::op::CLIENT) for an FLV tag (`kind` into [`TAG_TYPES`]).
pub fn flv_tag(kind: u8, ts: u32, data: &[u8]) -> Vec<u8> {
    let mut v = vec![3, kind];
    v.extend_from_slice(&ts.to_be_bytes());
    v.push(data.len() as u8);
    v.extend_from_slice(data);
    v
}

/// Broadcasts (raw and FLV), a watcher, a token, refusals, a takeover and a slow preamble.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let ts_packets: Vec<u8> = (0..3u8)
        .flat_map(|i| {
            let mut p = vec![0x47, 0x40, i, 0x10];
            p.resize(188, 0xFF);
            p
        })
        .collect();
    let raw = Script::new(0)
        .client(&preamble(
            0,
            "broadcast",
            "fier",
            Some("cam"),
            1,
            Some("188"),
        ))
        .send(&ts_packets[..100])
        .auth(0, true)
        .publish(0, 0)
        .send(&ts_packets[100..])
        .eof();
    let mut meta = vec![2, 0, 10];
    meta.extend_from_slice(b"onMetaData");
    meta.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 9]);
    let flv = Script::new(0x02)
        .client(&preamble(1, "broadcast", "fier", None, 2, None))
        .auth(0, true)
        .publish(0, 0)
        .client(&[2, 5])
        .client(&flv_tag(2, 0, &meta))
        .client(&flv_tag(1, 0, &[0x17, 0, 0, 0, 0, 1, 0x64]))
        .client(&flv_tag(0, 0, &[0xAF, 0, 0x12, 0x10]))
        .client(&flv_tag(1, 40, &[0x17, 1, 0, 0, 0, 9]))
        .client(&flv_tag(1, 80, &[0x27, 1, 0, 0, 0, 8]))
        .client(&flv_tag(0, 0x0100_0005, &[0xAF, 1, 0x21]))
        .shutdown();
    let watch = Script::new(0x08)
        .client(&preamble(0, "watch", "x.y-z_1", Some("default"), 4, None))
        .subscription(0, 0, 0)
        .subscription(0, 1, 1)
        .subscription(0, 2, 0)
        .time(6)
        .subscription(0, 3, 0);
    let token = Script::new(0)
        .client(&preamble(2, "token", "fier", None, 9, None))
        .eof()
        .token(0, Some("3f2a9c"));
    let denied = Script::new(0x01)
        .client(&preamble(2, "broadcast", "a", None, 9, Some("4096")))
        .send(b"early bytes")
        .auth(0, false);
    let takeover = Script::new(0)
        .client(&preamble(0, "broadcast", "fier", Some("cam"), 1, None))
        .auth(0, true)
        .publish(0, 0)
        .send(b"\x47abc")
        .replaced(0)
        .shutdown();
    let slow = Script::new(0x04)
        .send(b"\n")
        .time(2)
        .send(b"\n\0\0")
        .time(11)
        .time(11);
    vec![
        ("broadcast-raw", raw.bytes),
        ("broadcast-flv", flv.bytes),
        ("watch", watch.bytes),
        ("token", token.bytes),
        ("denied", denied.bytes),
        ("takeover", takeover.bytes),
        ("slow-preamble", slow.bytes),
    ]
}

// ---------------------------------------------------------------------------------------------
// The host and its model of the session

/// The harness's own reading of the preamble.
enum Mirror {
    Pending(PreambleParser),
    Failed,
    /// `start`: where the bytes after the preamble begin in `fed`; the request, if it parsed.
    Done {
        start: usize,
        request: Option<Request>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoleKind {
    Broadcast,
    Watch,
    Token,
}

struct Broadcast {
    request: u64,
    stream: String,
    /// The first answer to the authentication.
    allowed: Option<bool>,
    publication: Option<u32>,
    /// The hub's first answer.
    result: Option<PublishOutcome>,
    unpublished: bool,
    replaced: bool,
    /// The client's EOF came before the publication started.
    eof: bool,
    fed_while_pending: u64,
    /// The raw packets' bytes, and how many FLV packets there were.
    raw: Vec<u8>,
    media_packets: usize,
}

impl Broadcast {
    fn live(&self) -> bool {
        self.result == Some(PublishOutcome::Started) && !self.unpublished && !self.replaced
    }
    fn pending(&self) -> bool {
        self.allowed != Some(false) && self.result.is_none()
    }
}

enum Role {
    None,
    Broadcast(Box<Broadcast>),
    Watch {
        subscription: u32,
        unsubscribed: bool,
        ended: bool,
    },
    Token {
        request: u64,
        answered: bool,
    },
}

/// What one call may or must do, decided by what it delivers.
#[derive(Default)]
struct Allowed {
    /// The role a preamble completed in this call must start.
    role: Option<RoleKind>,
    /// The publish an allowed authentication must make.
    publish: bool,
    /// The line an issued token must write.
    token_line: Option<Vec<u8>>,
    must_close: Option<&'static str>,
}

struct Host {
    /// What the session did, when tracing.
    trace: Option<Vec<String>>,
    s: FstreamSession,
    settings: Arc<Settings>,
    now: u64,
    started_at: u64,
    timer_due: Option<u64>,
    used: Used,
    closed: bool,
    eof: bool,
    fed: Vec<u8>,
    mirror: Mirror,
    role: Role,
    /// The broadcast's FLV tags as the harness reads them, and how much it read.
    flv: FlvDemuxer,
    flv_read: usize,
    flv_tags: Vec<FlvTag>,
    flv_failed: bool,
}

impl Host {
    fn new(settings: Settings) -> Self {
        let settings = Arc::new(settings);
        Self {
            trace: None,
            s: FstreamSession::new(settings.clone()),
            mirror: Mirror::Pending(PreambleParser::new(settings.limits())),
            settings,
            now: 1000,
            started_at: 1000,
            timer_due: None,
            used: Used::default(),
            closed: false,
            eof: false,
            fed: Vec::new(),
            role: Role::None,
            flv: FlvDemuxer::new(MAX_TAG_DATA_SIZE),
            flv_read: 0,
            flv_tags: Vec::new(),
            flv_failed: false,
        }
    }

    fn start(&mut self) {
        let now = self.now;
        self.call(Allowed::default(), |s, out| s.start(now, out));
    }

    fn bytes(&mut self, data: &[u8]) {
        if self.closed || self.eof || data.is_empty() {
            return;
        }
        let mut allowed = Allowed::default();
        let before = self.fed.len();
        self.fed.extend_from_slice(data);
        if let Mirror::Pending(parser) = &mut self.mirror {
            match parser.push(data) {
                Ok(None) => {}
                Ok(Some(p)) => {
                    let start = before + data.len() - p.leftover.len();
                    let request = Request::parse(&p.action).ok().map(|p| p.request);
                    allowed.role = request.as_ref().and_then(|r| self.role_of(r));
                    if allowed.role.is_none() {
                        allowed.must_close = Some("an invalid request");
                    }
                    self.mirror = Mirror::Done { start, request };
                }
                Err(_) => {
                    self.mirror = Mirror::Failed;
                    allowed.must_close = Some("a malformed preamble");
                }
            }
        }
        let waiting = match &mut self.role {
            Role::Broadcast(b) if b.pending() => {
                b.fed_while_pending += data.len() as u64;
                Some(b.fed_while_pending)
            }
            _ => None,
        };
        let now = self.now;
        self.call(allowed, |s, out| s.bytes(data, now, out));
        if let Some(n) = waiting {
            assert!(
                self.closed || n <= self.settings.max_pending_bytes as u64,
                "{n} bytes taken before the broadcast started; max_pending_bytes is {}",
                self.settings.max_pending_bytes
            );
        }
    }

    /// The role a valid request starts; `None` for one the session must refuse.
    fn role_of(&self, r: &Request) -> Option<RoleKind> {
        let ok = |n: &str| validate_part(n).is_ok();
        match r {
            Request::Broadcast {
                user,
                channel,
                bufsize,
                ..
            } => (ok(user) && ok(channel) && *bufsize <= self.settings.max_bufsize)
                .then_some(RoleKind::Broadcast),
            Request::Watch { user, channel, .. } => {
                (ok(user) && ok(channel)).then_some(RoleKind::Watch)
            }
            Request::Token { user, .. } => ok(user).then_some(RoleKind::Token),
        }
    }

    fn request(&self) -> &Request {
        match &self.mirror {
            Mirror::Done {
                request: Some(r), ..
            } => r,
            _ => panic!("the session started a role without a valid request"),
        }
    }

    fn timer(&mut self) {
        self.timer_due = None;
        let now = self.now;
        self.call(Allowed::default(), |s, out| s.timer(now, out));
        if matches!(self.mirror, Mirror::Pending(_)) {
            assert!(
                self.closed || now < self.started_at + self.settings.preamble_timeout_ms,
                "the preamble deadline passed at {now} and the session is open"
            );
        }
    }

    fn eof(&mut self) {
        if self.eof {
            return;
        }
        self.eof = true;
        let mut allowed = Allowed::default();
        match &mut self.role {
            Role::None => allowed.must_close = Some("an EOF without a request"),
            Role::Watch { .. } => allowed.must_close = Some("a watcher's EOF"),
            Role::Broadcast(b) if b.live() => allowed.must_close = Some("the broadcaster's EOF"),
            Role::Broadcast(b) => b.eof = true,
            Role::Token { .. } => {}
        }
        let now = self.now;
        self.call(allowed, |s, out| s.closed(now, out));
    }

    fn event(&mut self, e: Event) {
        let mut allowed = Allowed::default();
        if !self.closed {
            match (&e, &mut self.role) {
                (Event::Shutdown, _) => allowed.must_close = Some("the host's shutdown"),
                (Event::AuthResult { request, outcome }, Role::Broadcast(b))
                    if *request == b.request && b.allowed.is_none() =>
                {
                    b.allowed = Some(outcome_allows(outcome));
                    if outcome_allows(outcome) {
                        allowed.publish = true;
                    } else {
                        allowed.must_close = Some("a denied broadcast");
                    }
                }
                (
                    Event::PublishResult {
                        publication,
                        outcome,
                    },
                    Role::Broadcast(b),
                ) if b.publication == Some(*publication) && b.result.is_none() => {
                    let outcome = publish_outcome(outcome);
                    let started = outcome == PublishOutcome::Started;
                    b.result = Some(outcome);
                    if !started {
                        allowed.must_close = Some("a refused publish");
                    } else if b.eof {
                        allowed.must_close = Some("a broadcast whose client already left");
                    }
                }
                (Event::PublicationReplaced { publication }, Role::Broadcast(b))
                    if b.publication == Some(*publication) && b.live() =>
                {
                    b.replaced = true;
                    allowed.must_close = Some("a takeover");
                }
                (Event::TokenResult { request: r, token }, Role::Token { request, answered })
                    if *r == *request && !*answered =>
                {
                    *answered = true;
                    match token {
                        RResult::ROk(t) => {
                            let mut line = t.as_bytes().to_vec();
                            line.push(b'\n');
                            allowed.token_line = Some(line);
                            allowed.must_close = Some("a token sent");
                        }
                        RResult::RErr(_) => allowed.must_close = Some("a refused token"),
                    }
                }
                (
                    Event::Subscription {
                        subscription: id,
                        status,
                    },
                    Role::Watch {
                        subscription,
                        ended,
                        unsubscribed: false,
                    },
                ) if *id == *subscription && !*ended && is_final(status) => {
                    *ended = true;
                    allowed.must_close = Some("the end of a watched stream");
                }
                _ => {}
            }
        }
        let now = self.now;
        self.call(allowed, |s, out| s.event(e, now, out));
    }

    fn call(
        &mut self,
        mut allowed: Allowed,
        f: impl FnOnce(&mut FstreamSession, &mut Outbox) -> Result<(), PluginError>,
    ) {
        let mut out = Outbox::new();
        let r = f(&mut self.s, &mut out);
        assert!(r.is_ok(), "the session failed: {r:?}");
        let mut wrote = false;
        for a in actions(out) {
            assert!(
                !self.closed || matches!(a, Action::Close(_)),
                "{a:?} after the session closed"
            );
            if let Action::Close(mode) = &a {
                assert!(
                    !wrote || *mode == CloseMode::AfterFlush,
                    "the token line is dropped by Close(Now)"
                );
            }
            wrote |= matches!(a, Action::Write(_));
            self.action(a, &mut allowed);
        }
        if let Some(why) = allowed.must_close {
            assert!(self.closed, "the session is still open after {why}");
        }
        assert!(
            self.closed || allowed.role.is_none(),
            "a complete request ({:?}) and no role started",
            allowed.role
        );
        assert!(
            self.closed || !allowed.publish,
            "an allowed broadcast did not publish"
        );
        self.check_forwarded();
    }

    fn action(&mut self, a: Action, allowed: &mut Allowed) {
        note(&mut self.trace, || describe(&a));
        match a {
            Action::Write(p) => {
                let line = allowed
                    .token_line
                    .take()
                    .unwrap_or_else(|| panic!("the session wrote {} bytes", p.len()));
                assert_eq!(&p[..], &line[..], "the token line");
            }
            Action::Close(_) => self.closed = true,
            Action::SetTimer(ms) => {
                let max = self.settings.preamble_timeout_ms;
                assert!((1..=max).contains(&ms), "SetTimer({ms}), max {max}");
                self.timer_due = Some(self.now + ms);
            }
            Action::Authenticate { request, auth } => {
                self.starts(allowed, RoleKind::Broadcast);
                let Request::Broadcast {
                    user,
                    user_password,
                    token,
                    channel,
                    ..
                } = self.request().clone()
                else {
                    unreachable!()
                };
                let stream = format!("{user}/{channel}");
                let credential = match (user_password, token) {
                    (Some(p), _) => Credential::Password(p.into()),
                    (None, Some(t)) => Credential::Token(t.into()),
                    (None, None) => Credential::None,
                };
                assert_eq!(auth.action(), Some(AuthAction::Publish));
                assert_eq!(auth.user.as_str(), user.as_str());
                assert_eq!(auth.stream.as_str(), stream);
                assert_eq!(auth.credential(), Some(&credential));
                assert!(valid_stream(&stream));
                assert!(!self.used.auth.contains(&request), "auth id reused");
                self.used.auth.push(request);
                self.role = Role::Broadcast(Box::new(Broadcast {
                    request,
                    stream,
                    allowed: None,
                    publication: None,
                    result: None,
                    unpublished: false,
                    replaced: false,
                    eof: false,
                    fed_while_pending: 0,
                    raw: Vec::new(),
                    media_packets: 0,
                }));
            }
            Action::IssueToken { request, auth } => {
                self.starts(allowed, RoleKind::Token);
                let Request::Token {
                    user,
                    user_password,
                } = self.request().clone()
                else {
                    unreachable!()
                };
                assert_eq!(auth.action(), Some(AuthAction::Token));
                assert_eq!(auth.user.as_str(), user.as_str());
                assert_eq!(
                    auth.credential(),
                    Some(&Credential::Password(user_password.into()))
                );
                self.used.token.push(request);
                self.role = Role::Token {
                    request,
                    answered: false,
                };
            }
            Action::Subscribe {
                subscription,
                stream,
                options,
            } => {
                self.starts(allowed, RoleKind::Watch);
                let Request::Watch {
                    user,
                    channel,
                    channel_password,
                } = self.request().clone()
                else {
                    unreachable!()
                };
                assert_eq!(stream.as_str(), format!("{user}/{channel}"));
                assert_eq!(
                    options
                        .channel_password
                        .as_ref()
                        .map(|p| p.as_str())
                        .into_option(),
                    channel_password.as_deref()
                );
                assert_eq!(options.format.as_str(), FORMAT);
                let frontend = FstreamFrontend::new((*self.settings).clone());
                assert!(frontend.encoder(&options.format).is_ok());
                assert_eq!(options.overflow, OverflowPolicy::Disconnect);
                assert_eq!(options.wait_ms, self.settings.watch_wait_ms);
                assert_eq!(options.max_queue_bytes, self.settings.watcher_queue_bytes);
                self.used.subscriptions.push(u64::from(subscription));
                self.role = Role::Watch {
                    subscription,
                    unsubscribed: false,
                    ended: false,
                };
            }
            Action::Publish {
                publication,
                stream,
                options,
            } => {
                assert!(allowed.publish, "Publish without an allowed authentication");
                allowed.publish = false;
                let channel_password = match self.request() {
                    Request::Broadcast {
                        channel_password, ..
                    } => channel_password.clone(),
                    _ => unreachable!(),
                };
                let Role::Broadcast(b) = &mut self.role else {
                    panic!("Publish without a broadcast");
                };
                assert!(b.publication.is_none(), "a second Publish");
                assert_eq!(stream.as_str(), b.stream, "the stream authenticated");
                assert_eq!(
                    options
                        .channel_password
                        .as_ref()
                        .map(|p| p.as_str())
                        .into_option(),
                    channel_password.as_deref()
                );
                assert_eq!(
                    options.conflict,
                    self.settings.second_broadcaster.conflict()
                );
                assert_eq!(options.grace_ms, self.settings.grace_ms);
                assert_eq!(options.record, RecordMode::Live);
                b.publication = Some(publication);
                self.used.publications.push(u64::from(publication));
            }
            Action::Packet {
                publication,
                packet,
            } => self.packet(publication, &packet),
            Action::Unpublish { publication } => {
                let Role::Broadcast(b) = &mut self.role else {
                    panic!("Unpublish without a broadcast");
                };
                assert_eq!(b.publication, Some(publication));
                assert!(
                    b.result == Some(PublishOutcome::Started),
                    "Unpublish of a publication that never started"
                );
                assert!(!b.unpublished, "unpublished twice");
                b.unpublished = true;
            }
            Action::Unsubscribe { subscription: id } => {
                let Role::Watch {
                    subscription,
                    unsubscribed,
                    ..
                } = &mut self.role
                else {
                    panic!("Unsubscribe without a watch");
                };
                assert_eq!(id, *subscription);
                assert!(!*unsubscribed, "unsubscribed twice");
                *unsubscribed = true;
            }
            Action::CallApp { .. } | Action::Control { .. } => {
                panic!("the fstream session has no app handler and no controls: {a:?}")
            }
            other => panic!("an action the harness does not model: {other:?}"),
        }
    }

    /// A role starts: the one the request completed in this call asks for, and only one.
    fn starts(&self, allowed: &mut Allowed, kind: RoleKind) {
        assert!(
            matches!(self.role, Role::None),
            "a second role ({kind:?}) for one connection"
        );
        assert_eq!(allowed.role.take(), Some(kind), "the role of the request");
    }

    /// Reads the broadcast's FLV tags so far, when it is FLV.
    fn read_flv(&mut self) {
        let (start, len) = match &self.mirror {
            Mirror::Done { start, .. } => (*start, self.fed.len()),
            _ => return,
        };
        let b = self.fed.get(start..len).unwrap_or_default();
        if !b.starts_with(FLV_MAGIC) || self.flv_failed {
            return;
        }
        self.flv.push(&b[self.flv_read..]);
        self.flv_read = b.len();
        loop {
            match self.flv.next_tag() {
                Ok(Some(t)) => self.flv_tags.push(t.tag),
                Ok(None) => break,
                Err(_) => {
                    self.flv_failed = true;
                    break;
                }
            }
        }
    }

    fn packet(&mut self, publication: u32, p: &MediaPacket) {
        self.read_flv();
        let bufsize = match self.request() {
            Request::Broadcast { bufsize, .. } => *bufsize as usize,
            _ => 0,
        };
        let bytes = after_preamble(&self.mirror, &self.fed);
        let flv = bytes.starts_with(FLV_MAGIC);
        let Role::Broadcast(b) = &mut self.role else {
            panic!("a packet without a broadcast");
        };
        assert_eq!(b.publication, Some(publication), "the packet's publication");
        assert!(b.live(), "a packet for a publication not live");
        check_flags(p);
        if p.kind == MediaKind::Raw {
            assert!(!flv, "a raw packet in an FLV broadcast");
            assert!(
                p.flags & flags::KEYFRAME != 0,
                "raw packets are where a watcher may start"
            );
            let first = b.raw.is_empty();
            b.raw.extend_from_slice(&p.payload);
            assert!(
                bytes.starts_with(&b.raw),
                "raw packets are not the broadcast's bytes in order"
            );
            let len = p.payload.len();
            if bufsize > 0 && len / bufsize * bufsize != len {
                // Only a stream too short to tell FLV from raw goes out at its end as it is.
                assert!(
                    first && p.payload.len() < FLV_MAGIC.len(),
                    "a raw packet of {} bytes with bufsize {bufsize}",
                    p.payload.len()
                );
            }
        } else {
            assert!(flv, "a media packet in a raw broadcast");
            let i = b.media_packets;
            b.media_packets += 1;
            let tag = self
                .flv_tags
                .get(i)
                .unwrap_or_else(|| panic!("media packet {i}, and only {} tags", i));
            let kind = match tag.tag_type {
                TagType::Audio => MediaKind::Audio,
                TagType::Video => MediaKind::Video,
                TagType::Script => MediaKind::Script,
            };
            assert_eq!(p.kind, kind, "packet {i}'s kind");
            assert_eq!(p.timestamp, tag.timestamp, "packet {i}'s timestamp");
            assert_eq!(&p.payload[..], &tag.data[..], "packet {i}'s payload");
        }
    }

    /// A live broadcast has forwarded everything complete.
    fn check_forwarded(&mut self) {
        if self.closed {
            return;
        }
        self.read_flv();
        let bufsize = match &self.mirror {
            Mirror::Done {
                request: Some(Request::Broadcast { bufsize, .. }),
                ..
            } => *bufsize as usize,
            _ => 0,
        };
        let bytes = after_preamble(&self.mirror, &self.fed);
        let undecided = bytes.len() < FLV_MAGIC.len() && FLV_MAGIC.starts_with(bytes);
        let Role::Broadcast(b) = &self.role else {
            return;
        };
        if !b.live() || undecided {
            return;
        }
        if bytes.starts_with(FLV_MAGIC) {
            assert!(!self.flv_failed, "a broken FLV broadcast stays open");
            assert_eq!(
                b.media_packets,
                self.flv_tags.len(),
                "tags received and not forwarded"
            );
        } else {
            let whole = match bufsize {
                0 => bytes.len(),
                n => bytes.len() - bytes.len() % n,
            };
            assert_eq!(b.raw.len(), whole, "raw bytes received and not forwarded");
        }
    }
}

/// The bytes of the broadcast: everything the client sent after its preamble.
fn after_preamble<'a>(mirror: &Mirror, fed: &'a [u8]) -> &'a [u8] {
    match mirror {
        Mirror::Done { start, .. } => fed.get(*start..).unwrap_or_default(),
        _ => &[],
    }
}
