//! Protocol frontends: a sans-IO session per connection.
//!
//! The host accepts a connection on the frontend's listener, creates a [`Session`], and from then
//! on feeds it bytes, timer ticks and [`Event`]s. The session answers by pushing [`Action`]s into
//! an [`Outbox`]: write bytes, publish, subscribe, ask for authentication, close. It never touches a
//! socket, a clock or a thread.
//!
//! Media delivered to a subscriber does not go through its session: the hub encodes each packet
//! once per *format* with the frontend's [`Encoder`] and queues the shared bytes on every
//! subscriber's connection directly.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

use super::{
    AppCall_NE, AppDecision, AuthOutcome_NE, AuthRequest, ClientCommand, CloseMode, CommandCall,
    CommandReply_NE, Extensions, MediaPacket, NetAddr, OverflowPolicy, Payload, PluginError,
    PublishConflict, RecordMode,
};

/// The connection a session is for.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ConnInfo {
    /// A number unique among this host's connections, for logs.
    pub id: u64,
    /// The peer's `IP:PORT`.
    pub peer: RString,
    /// Our `IP:PORT`.
    pub local: RString,
    pub peer_addr: NetAddr,
    pub local_addr: NetAddr,
    pub ext: Extensions,
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PublishOptions {
    /// Players must present exactly this password.
    pub channel_password: ROption<RString>,
    pub conflict: PublishConflict,
    /// How long subscribers stay attached after this publisher leaves, waiting for a new one.
    pub grace_ms: u32,
    pub record: RecordMode,
    /// The query string the client gave (`a=b&c=d`), for sinks and logs.
    pub query: RString,
    pub ext: Extensions,
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct SubscribeOptions {
    /// The frontend's encoder format (see [`FrontendFactory::encoder`]). All subscribers of a
    /// stream with the same format share the encoded bytes.
    pub format: RString,
    /// Must equal the publisher's channel password, if it set one.
    pub channel_password: ROption<RString>,
    /// How long to wait for a publisher: 0 fails at once when there is none; `u32::MAX` waits
    /// forever.
    pub wait_ms: u32,
    pub overflow: OverflowPolicy,
    /// The bound of this subscriber's queue in bytes; 0 takes the host's setting.
    pub max_queue_bytes: u64,
    /// Start with metadata, sequence headers and the cached group of pictures.
    pub join_with_cache: bool,
    pub audio: bool,
    pub video: bool,
    /// Where to start in a recorded source (VOD), in milliseconds; ignored for live streams.
    pub start_ms: u64,
    pub ext: Extensions,
}

/// A change a subscriber asks for after subscribing.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 4], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum SubscriptionControl {
    Pause(bool),
    /// Seek a recorded source to the keyframe at or before this position (ms).
    Seek(u64),
    /// The player's buffer length (ms); a recorded source reads this far ahead.
    BufferLength(u32),
    ReceiveAudio(bool),
    ReceiveVideo(bool),
}

/// A session's request to the host. A later v2.x adds requests as new variants; a host always
/// knows every variant of the plugins it loads.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone)]
#[sabi(kind(WithNonExhaustive(size = [usize; 64], traits(Debug, Clone))))]
#[non_exhaustive]
pub enum Action {
    /// Queue bytes for the peer, in order with everything else queued on this connection.
    Write(Payload),
    Close(CloseMode),
    /// Call [`Session::timer`] after this many milliseconds (replaces an earlier request).
    SetTimer(u64),
    /// Ask the authenticators; the answer comes as [`Event::AuthResult`] with the same id.
    Authenticate {
        request: u64,
        auth: AuthRequest,
    },
    /// Check the password, then issue a token; answered by [`Event::TokenResult`].
    IssueToken {
        request: u64,
        auth: AuthRequest,
    },
    /// Ask the app handler; answered by [`Event::AppResult`].
    CallApp {
        request: u64,
        call: AppCall_NE,
    },
    /// Claim `stream` (`APP/NAME`) as its publisher; answered by [`Event::PublishResult`].
    Publish {
        publication: u32,
        stream: RString,
        options: PublishOptions,
    },
    /// A packet for a publication that started.
    Packet {
        publication: u32,
        packet: MediaPacket,
    },
    Unpublish {
        publication: u32,
    },
    /// Receive a stream; status changes come as [`Event::Subscription`].
    Subscribe {
        subscription: u32,
        stream: RString,
        options: SubscribeOptions,
    },
    Unsubscribe {
        subscription: u32,
    },
    Control {
        subscription: u32,
        control: SubscriptionControl_NE,
    },
    /// Since v2.1: pass a client's own command to the app handler of `call.app`; answered by
    /// [`Event::CommandResult`].
    CallCommand {
        request: u64,
        call: CommandCall,
    },
    /// Since v2.2: pass an HTTP request to the handler whose prefix its path is under;
    /// answered by [`Event::HttpResult`].
    CallHttp {
        request: u64,
        call: super::HttpCall,
    },
}

/// Where a session puts its actions. The host drains it after every call.
#[repr(C)]
#[derive(StableAbi, Debug, Default)]
pub struct Outbox {
    pub actions: RVec<Action_NE>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, action: Action) {
        self.actions.push(Action_NE::new(action));
    }
    pub fn write(&mut self, bytes: &[u8]) {
        self.push(Action::Write(super::payload_from(bytes)));
    }
    pub fn write_payload(&mut self, payload: Payload) {
        self.push(Action::Write(payload));
    }
    pub fn close(&mut self, mode: CloseMode) {
        self.push(Action::Close(mode));
    }
    pub fn control(&mut self, subscription: u32, control: SubscriptionControl) {
        self.push(Action::Control {
            subscription,
            control: SubscriptionControl_NE::new(control),
        });
    }
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
    pub fn len(&self) -> usize {
        self.actions.len()
    }
    /// The actions this build knows, in order (for tests and tools).
    pub fn known(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter_map(|a| a.as_enum().ok())
    }
    /// Takes the actions out, keeping the ones this build knows.
    pub fn take_known(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
            .into_iter()
            .filter_map(|a| a.into_enum().ok())
            .collect()
    }
}

/// Why a publication could not start or ended. An outcome a session's build does not know
/// means the publication did not start (see [`publish_started`]).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum PublishOutcome {
    Started,
    /// Another publisher holds the stream and the policy is [`PublishConflict::Reject`].
    Busy,
    /// Refused for another reason (bad name, the app serves recorded files, ...).
    Refused(RString),
}

/// A subscription's state changes. A status added after v2.0 is never final: the host always
/// follows it with one a v2.0 session knows when the subscription ends, so a session may skip
/// statuses it cannot read.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum SubscriptionStatus {
    /// No publisher yet; waiting up to `wait_ms`.
    Waiting,
    /// A publisher started (or took over); `media` is false for a raw byte stream.
    PublisherStarted { media: bool },
    /// The publisher left; the stream waits for the grace period.
    PublisherLeft,
    /// The stream is over (grace period passed, or a recorded source reached its end). Queued
    /// bytes are still delivered.
    Ended,
    /// Nothing to play: no publisher within `wait_ms`, or no such recorded file.
    NotFound,
    /// Wrong or missing channel password.
    Forbidden,
    /// Dropped by the hub: too slow for its queue under [`OverflowPolicy::Disconnect`].
    TooSlow,
    /// A recorded source is open: its duration in milliseconds (0 if unknown).
    SourceOpened { duration_ms: u64 },
    /// A seek in a recorded source landed at this position (ms).
    Seeked { position_ms: u64 },
}

/// Whether a publication started; an outcome this build does not know means it did not.
pub fn publish_started(outcome: &PublishOutcome_NE) -> bool {
    matches!(outcome.as_enum(), Ok(PublishOutcome::Started))
}

/// Something the host tells a session. A later v2.x adds events as new variants; the SDK skips
/// events a session's build does not know.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone)]
#[sabi(kind(WithNonExhaustive(size = [usize; 32], traits(Debug, Clone))))]
#[non_exhaustive]
pub enum Event {
    AuthResult {
        request: u64,
        outcome: AuthOutcome_NE,
    },
    /// The token, or why none was issued.
    TokenResult {
        request: u64,
        token: RResult<RString, RString>,
    },
    AppResult {
        request: u64,
        decision: AppDecision,
    },
    PublishResult {
        publication: u32,
        outcome: PublishOutcome_NE,
    },
    /// Another publisher took the stream over; this publication is over.
    PublicationReplaced {
        publication: u32,
    },
    Subscription {
        subscription: u32,
        status: SubscriptionStatus_NE,
    },
    /// The host is shutting down: finish what is in flight and close.
    Shutdown,
    /// Since v2.1: the app handler's answer to [`Action::CallCommand`].
    CommandResult {
        request: u64,
        reply: CommandReply_NE,
    },
    /// Since v2.1: send this command to the client now ([`super::HostApi::call_client`]).
    ClientCommand {
        command: ClientCommand,
    },
    /// Since v2.2: the answer to [`Action::CallHttp`]: the handler's, or the host's own when
    /// no handler serves the path (404), it failed (500), was busy (503) or too slow (504).
    HttpResult {
        request: u64,
        reply: super::HttpReply,
    },
}

/// One connection's protocol state machine. Methods added in v2.x go at the end with a default
/// body.
#[sabi_trait]
pub trait Session: Send {
    /// Called once, right after the connection is accepted.
    fn start(&mut self, now_ms: u64, out: &mut Outbox) -> RResult<(), PluginError>;
    /// Bytes from the peer.
    fn bytes(
        &mut self,
        data: RSlice<'_, u8>,
        now_ms: u64,
        out: &mut Outbox,
    ) -> RResult<(), PluginError>;
    fn event(&mut self, event: Event_NE, now_ms: u64, out: &mut Outbox)
        -> RResult<(), PluginError>;
    /// The timer asked for with [`Action::SetTimer`] fired.
    fn timer(&mut self, now_ms: u64, out: &mut Outbox) -> RResult<(), PluginError>;
    /// The peer closed its side (EOF) or the connection failed; the session ends after this.
    #[sabi(last_prefix_field)]
    fn closed(&mut self, now_ms: u64, out: &mut Outbox) -> RResult<(), PluginError>;
}

pub type SessionBox = Session_TO<'static, RBox<()>>;

/// Turns packets into the bytes a subscriber of one format receives. One encoder serves every
/// subscriber of a stream with that format, so its output must not depend on the subscriber.
#[sabi_trait]
pub trait Encoder: Send {
    /// Bytes a new subscriber receives before its first packet of this stream (e.g. an FLV
    /// file header); `media` is false for a raw byte stream.
    fn preamble(&mut self, media: bool) -> RResult<ROption<Payload>, PluginError>;
    /// The bytes for one packet, or none to skip it.
    #[sabi(last_prefix_field)]
    fn encode(&mut self, packet: &MediaPacket) -> RResult<ROption<Payload>, PluginError>;
}

pub type EncoderBox = Encoder_TO<'static, RBox<()>>;

/// The protocol frontend kind: makes sessions and encoders.
#[sabi_trait]
pub trait FrontendFactory: Send + Sync {
    /// The protocol's name, used by `--listen NAME=ADDR` and in logs (`fstream`, `rtmp`).
    fn protocol(&self) -> RString;
    /// Where to listen when the operator says nothing (e.g. `0.0.0.0:1935`).
    fn default_listen(&self) -> RString;
    fn new_session(&self, conn: &ConnInfo) -> RResult<SessionBox, PluginError>;
    /// An encoder for a format this frontend's sessions subscribe with. The format `raw` is
    /// handled by the host (payloads as they are) and never asked for.
    #[sabi(last_prefix_field)]
    fn encoder(&self, format: RStr<'_>) -> RResult<EncoderBox, PluginError>;
}

pub type FrontendFactoryBox = FrontendFactory_TO<'static, RBox<()>>;
