//! `rtmp_session`, `fstream_session`: the protocol frontends' sessions as state machines;
//! `rtmp_client_session`: the RTMP client session (relays), the server's side played instead.
//!
//! A session is sans-IO: the host calls `start`, then `bytes`, `event`, `timer` and `closed` in
//! whatever order the network, the hub, the authenticators and the clock dictate, and carries
//! out the actions the session returns. These targets play the host. The fuzzer's bytes are
//! decoded into a script of operations ([`Op`]): feed client bytes (raw, or a message the
//! harness builds so that deep states are reachable), advance the clock and fire the timer,
//! deliver any event (auth and token answers, app handler verdicts, publish outcomes,
//! subscription statuses, a takeover, shutdown) with an id the session asked for or one it
//! never used, or end the client's side. After every call the actions are checked against a
//! model of what the session may do at that point (see each target's module for its list).
//!
//! What the host guarantees is kept: no bytes after the client's EOF or after the session
//! asked to close (the host stops reading), `closed` at most once, and time never goes back.
//! Everything else, including answers nobody asked for, stale ids and events after a close, is
//! fair game: the session must stay quiet or act sensibly on it.

pub mod fstream;
pub mod rtmp;
pub mod rtmp_client;

use fstream_abi::abi_stable::std_types::{RResult, RString};
use fstream_abi::{
    flags, Action, AppCall, AppDecision, AppVerdict, AuthOutcome, AuthOutcome_NE, ClientCommand,
    CommandReply, CommandReply_NE, Event, MediaKind, MediaPacket, Outbox, PublishOutcome,
    PublishOutcome_NE, SubscriptionStatus, SubscriptionStatus_NE,
};

/// Operation codes of a script: the first byte of each operation, modulo their number.
pub mod op {
    /// `[len]` (`0xFF`: a big-endian u16 follows) then that many bytes for `Session::bytes`.
    pub const BYTES: u8 = 0;
    /// A client message built by the harness; the arguments are the target's own.
    pub const CLIENT: u8 = 1;
    /// `[step]`: advance the clock (see [`super::STEPS`]); the timer fires unless bit 7 is set.
    pub const TIME: u8 = 2;
    /// `[id][allow]`: `Event::AuthResult`.
    pub const AUTH: u8 = 3;
    /// `[id][ok][len][token...]`: `Event::TokenResult`.
    pub const TOKEN: u8 = 4;
    /// `[id][verdict][len][target...][n]` then n × `[len][name...][len][json args...]`:
    /// `Event::AppResult`.
    pub const APP: u8 = 5;
    /// `[id][outcome]`: `Event::PublishResult`.
    pub const PUBLISH: u8 = 6;
    /// `[id]`: `Event::PublicationReplaced`.
    pub const REPLACED: u8 = 7;
    /// `[id][status][arg]`: `Event::Subscription`.
    pub const SUBSCRIPTION: u8 = 8;
    /// `Event::Shutdown`.
    pub const SHUTDOWN: u8 = 9;
    /// The client's EOF: `Session::closed`.
    pub const EOF: u8 = 10;
    /// `[len][name...][len][json args...]`: `Event::ClientCommand` (an app handler's
    /// `call_client`).
    pub const CALL: u8 = 11;
    pub const COUNT: u8 = 12;
}

/// Clock steps of [`op::TIME`]; `u64::MAX` means "to when the session's timer is due".
pub const STEPS: [u64; 12] = [
    0,
    1,
    10,
    100,
    1_000,
    4_999,
    5_000,
    10_000,
    30_000,
    60_000,
    3_600_000,
    u64::MAX,
];

/// Reads a script. Past the end every read gives zeros (or nothing), so any input is a script.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// `[len]` then the bytes; a length of `0xFF` is followed by a u16 length.
    pub fn blob(&mut self) -> &'a [u8] {
        let n = match self.u8() {
            0xFF => usize::from(self.u16()),
            n => usize::from(n),
        };
        self.take(n)
    }

    /// `[len]` then the bytes, as text (invalid UTF-8 replaced).
    pub fn text(&mut self) -> String {
        let n = usize::from(self.u8());
        String::from_utf8_lossy(self.take(n)).into_owned()
    }

    /// An id for an event: one the session used (`sel < 0xC0` and there are some; 0 is the
    /// newest), or any small number.
    pub fn id(&mut self, used: &[u64]) -> u64 {
        let sel = self.u8();
        if sel < 0xC0 && !used.is_empty() {
            let back = usize::from(sel) % used.len();
            used[used.len() - 1 - back]
        } else {
            u64::from(sel & 0x3F)
        }
    }
}

/// The builder of scripts, for seeds and tests: the inverse of [`Reader`] and [`Op::read`].
#[derive(Default, Clone)]
pub struct Script {
    pub bytes: Vec<u8>,
}

impl Script {
    /// A script for the settings selected by `settings` (the first byte of every input).
    pub fn new(settings: u8) -> Self {
        Self {
            bytes: vec![settings],
        }
    }

    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    fn blob(mut self, b: &[u8]) -> Self {
        match u8::try_from(b.len()) {
            Ok(n) if n < 0xFF => self.bytes.push(n),
            _ => {
                let n = u16::try_from(b.len()).expect("a blob of at most 65535 bytes");
                self.bytes.push(0xFF);
                self.bytes.extend_from_slice(&n.to_be_bytes());
            }
        }
        self.bytes.extend_from_slice(b);
        self
    }

    fn text(mut self, s: &str) -> Self {
        let n = u8::try_from(s.len()).expect("a text of at most 255 bytes");
        self.bytes.push(n);
        self.bytes.extend_from_slice(s.as_bytes());
        self
    }

    /// Client bytes, in pieces of at most 65535 bytes.
    pub fn send(mut self, data: &[u8]) -> Self {
        for piece in data.chunks(0xFFFF) {
            self.bytes.push(op::BYTES);
            self = self.blob(piece);
        }
        self
    }

    /// A client message built by the harness (the arguments are the target's).
    pub fn client(self, args: &[u8]) -> Self {
        self.raw(&[op::CLIENT]).raw(args)
    }

    /// Advances the clock by `STEPS[step]` and fires the timer.
    pub fn time(self, step: u8) -> Self {
        self.raw(&[op::TIME, step])
    }

    /// The newest id (0) or an older one the session used.
    pub fn auth(self, back: u8, allow: bool) -> Self {
        self.raw(&[op::AUTH, back, u8::from(allow)])
    }

    pub fn token(self, back: u8, token: Option<&str>) -> Self {
        self.raw(&[op::TOKEN, back, u8::from(token.is_some())])
            .text(token.unwrap_or(""))
    }

    /// `verdict`: 0 accept, 1 reject, 2 redirect to `target`; `commands`: (name, JSON args).
    pub fn app(self, back: u8, verdict: u8, target: &str, commands: &[(&str, &str)]) -> Self {
        let n = u8::try_from(commands.len()).expect("few commands");
        let mut s = self.raw(&[op::APP, back, verdict]).text(target).raw(&[n]);
        for (name, args) in commands {
            s = s.text(name).text(args);
        }
        s
    }

    /// `outcome`: 0 started, 1 busy, 2 refused.
    pub fn publish(self, back: u8, outcome: u8) -> Self {
        self.raw(&[op::PUBLISH, back, outcome])
    }

    pub fn replaced(self, back: u8) -> Self {
        self.raw(&[op::REPLACED, back])
    }

    /// `status`: see [`status`].
    pub fn subscription(self, back: u8, status: u8, arg: u8) -> Self {
        self.raw(&[op::SUBSCRIPTION, back, status, arg])
    }

    pub fn shutdown(self) -> Self {
        self.raw(&[op::SHUTDOWN])
    }

    pub fn eof(self) -> Self {
        self.raw(&[op::EOF])
    }

    /// A command an app handler sends the client at any time.
    pub fn call(self, name: &str, args_json: &str) -> Self {
        self.raw(&[op::CALL]).text(name).text(args_json)
    }
}

/// What the ids of an event refer to.
#[derive(Default)]
pub struct Used {
    pub auth: Vec<u64>,
    pub token: Vec<u64>,
    pub app: Vec<u64>,
    /// The app requests that were a client's own command (`Action::CallCommand`).
    pub commands: Vec<u64>,
    pub publications: Vec<u64>,
    pub subscriptions: Vec<u64>,
}

/// One decoded operation.
pub enum Op<'a> {
    Bytes(&'a [u8]),
    /// The arguments are read by the target.
    Client,
    Time {
        step: u64,
        fire: bool,
    },
    Event(Event),
    Eof,
}

impl<'a> Op<'a> {
    /// The next operation; ids are picked among `used`.
    pub fn read(r: &mut Reader<'a>, used: &Used) -> Op<'a> {
        match r.u8() % op::COUNT {
            op::BYTES => Op::Bytes(r.blob()),
            op::CLIENT => Op::Client,
            op::TIME => {
                let s = r.u8();
                Op::Time {
                    step: STEPS[usize::from(s & 0x7F) % STEPS.len()],
                    fire: s & 0x80 == 0,
                }
            }
            op::AUTH => {
                let request = r.id(&used.auth);
                let outcome = AuthOutcome_NE::new(if r.u8() & 1 == 1 {
                    AuthOutcome::Allowed
                } else {
                    AuthOutcome::Denied("denied by the fuzzer".into())
                });
                Op::Event(Event::AuthResult { request, outcome })
            }
            op::TOKEN => {
                let request = r.id(&used.token);
                let ok = r.u8() & 1 == 1;
                let text = RString::from(r.text());
                let token = if ok {
                    RResult::ROk(text)
                } else {
                    RResult::RErr(text)
                };
                Op::Event(Event::TokenResult { request, token })
            }
            op::APP => {
                let request = r.id(&used.app);
                let v = r.u8();
                let target = r.text();
                if used.commands.contains(&request) {
                    // The answer to a client's own command.
                    let reply = match v % 3 {
                        0 => CommandReply::NotHandled,
                        1 => CommandReply::Result(target.into()),
                        _ => CommandReply::Error(target.into()),
                    };
                    return Op::Event(Event::CommandResult {
                        request,
                        reply: CommandReply_NE::new(reply),
                    });
                }
                let verdict = match v % 3 {
                    0 => AppVerdict::Accept,
                    1 => AppVerdict::Reject(target.into()),
                    _ => AppVerdict::Redirect(target.into()),
                };
                let mut decision = AppDecision::new(verdict);
                for _ in 0..r.u8() % 4 {
                    let name = r.text();
                    let args_json = r.text();
                    decision = decision.with_command(ClientCommand {
                        name: name.into(),
                        args_json: args_json.into(),
                    });
                }
                Op::Event(Event::AppResult { request, decision })
            }
            op::PUBLISH => {
                let publication = r.id(&used.publications) as u32;
                let outcome = PublishOutcome_NE::new(match r.u8() % 3 {
                    0 => PublishOutcome::Started,
                    1 => PublishOutcome::Busy,
                    _ => PublishOutcome::Refused("refused by the fuzzer".into()),
                });
                Op::Event(Event::PublishResult {
                    publication,
                    outcome,
                })
            }
            op::REPLACED => Op::Event(Event::PublicationReplaced {
                publication: r.id(&used.publications) as u32,
            }),
            op::SUBSCRIPTION => {
                let subscription = r.id(&used.subscriptions) as u32;
                let s = r.u8();
                let arg = r.u8();
                Op::Event(Event::Subscription {
                    subscription,
                    status: SubscriptionStatus_NE::new(status(s, arg)),
                })
            }
            op::SHUTDOWN => Op::Event(Event::Shutdown),
            op::CALL => {
                let name = r.text();
                let args_json = r.text();
                Op::Event(Event::ClientCommand {
                    command: ClientCommand {
                        name: name.into(),
                        args_json: args_json.into(),
                    },
                })
            }
            _ => Op::Eof,
        }
    }
}

/// A subscription status from `[status][arg]`: 0 Waiting, 1 PublisherStarted (media when arg is
/// odd), 2 PublisherLeft, 3 Ended, 4 NotFound, 5 Forbidden, 6 TooSlow, 7 SourceOpened, 8 Seeked.
pub fn status(s: u8, arg: u8) -> SubscriptionStatus {
    match s % 9 {
        0 => SubscriptionStatus::Waiting,
        1 => SubscriptionStatus::PublisherStarted {
            media: arg & 1 == 1,
        },
        2 => SubscriptionStatus::PublisherLeft,
        3 => SubscriptionStatus::Ended,
        4 => SubscriptionStatus::NotFound,
        5 => SubscriptionStatus::Forbidden,
        6 => SubscriptionStatus::TooSlow,
        7 => SubscriptionStatus::SourceOpened {
            duration_ms: u64::from(arg) * 1000,
        },
        _ => SubscriptionStatus::Seeked {
            position_ms: u64::from(arg) * 100,
        },
    }
}

/// Whether a status ends a subscription for good (the hub will send nothing more on it).
pub fn is_final(status: &SubscriptionStatus_NE) -> bool {
    matches!(
        status.as_enum(),
        Ok(SubscriptionStatus::Ended
            | SubscriptionStatus::NotFound
            | SubscriptionStatus::Forbidden
            | SubscriptionStatus::TooSlow)
    )
}

/// A publish outcome as the sessions read it: one this build does not know is a refusal.
pub fn publish_outcome(outcome: &PublishOutcome_NE) -> PublishOutcome {
    match outcome.as_enum() {
        Ok(o) => o.clone(),
        Err(_) => PublishOutcome::Refused("an unknown outcome".into()),
    }
}

/// The actions of one session call. The sessions are built against this harness's interface,
/// so an action of a variant it does not know is a finding.
pub fn actions(mut out: Outbox) -> Vec<Action> {
    let n = out.len();
    let known = out.take_known();
    assert_eq!(known.len(), n, "an action of an unknown variant");
    known
}

/// The clock the host would show the session: starts at 1000 ms and never goes back.
pub fn advance(now: u64, step: u64, timer_due: Option<u64>) -> u64 {
    if step == u64::MAX {
        timer_due.map_or(now, |due| due.max(now))
    } else {
        now.saturating_add(step)
    }
}

/// A stream name as the hub takes it: `APP/NAME`, both valid name parts.
pub fn valid_stream(stream: &str) -> bool {
    fstream_abi::names::split_stream(stream).is_ok()
}

/// A packet's flags are known ones that fit its kind (`fstream_abi::flags`): keyframes and
/// disposable frames are video, sequence headers audio or video, metadata script data.
pub fn check_flags(p: &MediaPacket) {
    let known = flags::KEYFRAME | flags::SEQUENCE_HEADER | flags::METADATA | flags::DISPOSABLE;
    assert_eq!(p.flags & !known, 0, "unknown flags {:#x}", p.flags);
    if p.kind == MediaKind::Raw {
        return;
    }
    if p.flags & (flags::KEYFRAME | flags::DISPOSABLE) != 0 {
        assert_eq!(p.kind, MediaKind::Video, "flags {:#x}", p.flags);
    }
    if p.flags & flags::SEQUENCE_HEADER != 0 {
        assert!(
            matches!(p.kind, MediaKind::Video | MediaKind::Audio),
            "a sequence header of {:?}",
            p.kind
        );
    }
    if p.flags & flags::METADATA != 0 {
        assert_eq!(p.kind, MediaKind::Script, "metadata in {:?}", p.kind);
    }
}

/// A one-line account of an action, for traces.
pub fn describe(a: &Action) -> String {
    match a {
        Action::Write(p) => format!("write {}", p.len()),
        Action::Close(m) => format!("close {m:?}"),
        Action::SetTimer(ms) => format!("timer {ms}"),
        Action::Authenticate { auth, .. } => format!("authenticate {}", auth.stream),
        Action::IssueToken { auth, .. } => format!("token {}", auth.user),
        Action::CallApp { call, .. } => match call.as_enum() {
            Ok(AppCall::Connect(c)) => format!("app connect {}", c.app),
            Ok(AppCall::Publish(c)) => format!("app publish {}", c.stream),
            Ok(AppCall::Play(c)) => format!("app play {}", c.stream),
            Ok(AppCall::Close(c)) => format!("app close {}", c.app),
            _ => format!("app {call:?}"),
        },
        Action::CallCommand { call, .. } => format!("command {}", call.name),
        Action::Publish { stream, .. } => format!("publish {stream}"),
        Action::Packet { packet, .. } => format!(
            "packet {:?} {:#x} {} {}",
            packet.kind,
            packet.flags,
            packet.timestamp,
            packet.len()
        ),
        Action::Unpublish { .. } => "unpublish".into(),
        Action::Subscribe {
            stream, options, ..
        } => format!("subscribe {stream} {}", options.format),
        Action::Unsubscribe { .. } => "unsubscribe".into(),
        Action::Control { control, .. } => format!("control {control:?}"),
        other => format!("{other:?}"),
    }
}

/// Adds a line to a trace (and prints it at once, so a trace that ends in a panic is seen).
pub fn note(trace: &mut Option<Vec<String>>, line: impl FnOnce() -> String) {
    if let Some(t) = trace {
        let l = line();
        eprintln!("  {l}");
        t.push(l);
    }
}
