//! App handlers: the policy of an RTMP application (like rtmplite's `App` class).

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RString, RVec},
    StableAbi,
};

use super::{Extensions, NetAddr, PluginError};

/// Who makes a call: the connection's host-wide id (as in [`super::ConnInfo::id`]) and peer.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub connection: u64,
    /// `IP:PORT`.
    pub peer: RString,
    pub peer_addr: NetAddr,
}

/// A client's `connect`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ConnectCall {
    pub app: RString,
    pub tc_url: RString,
    /// The connect command object and any extra arguments, as JSON (an array: the command
    /// object first).
    pub args_json: RString,
    pub caller: Caller,
    pub ext: Extensions,
}

/// A client's `publish`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PublishCall {
    pub app: RString,
    /// The stream name without its query string.
    pub stream: RString,
    /// `live`, `record` or `append`.
    pub kind: RString,
    /// The query string after `?`, undecoded (`user_password=x&token=y`).
    pub query: RString,
    pub caller: Caller,
    pub ext: Extensions,
}

/// A client's `play`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PlayCall {
    pub app: RString,
    pub stream: RString,
    pub query: RString,
    pub caller: Caller,
    pub ext: Extensions,
}

/// The end of a connection, for handlers that keep per-client state: one whose connect the
/// handler accepted, or one that leaves while its connect still awaits the handler's answer
/// (a deferred decision; the RTMP frontend since v2.1).
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct CloseCall {
    pub app: RString,
    pub caller: Caller,
    pub ext: Extensions,
}

/// What the host asks an app handler. A later v2.x adds calls as new variants; the SDK answers
/// calls a handler's build does not know with [`AppDecision::accept`].
#[repr(u8)]
#[derive(StableAbi, Debug, Clone)]
#[sabi(kind(WithNonExhaustive(size = [usize; 48], traits(Debug, Clone))))]
#[non_exhaustive]
pub enum AppCall {
    Connect(ConnectCall),
    Publish(PublishCall),
    Play(PlayCall),
    Close(CloseCall),
}

impl AppCall {
    pub fn app(&self) -> &str {
        match self {
            AppCall::Connect(c) => &c.app,
            AppCall::Publish(c) => &c.app,
            AppCall::Play(c) => &c.app,
            AppCall::Close(c) => &c.app,
        }
    }
    pub fn caller(&self) -> &Caller {
        match self {
            AppCall::Connect(c) => &c.caller,
            AppCall::Publish(c) => &c.caller,
            AppCall::Play(c) => &c.caller,
            AppCall::Close(c) => &c.caller,
        }
    }
    pub fn ext(&self) -> &Extensions {
        match self {
            AppCall::Connect(c) => &c.ext,
            AppCall::Publish(c) => &c.ext,
            AppCall::Play(c) => &c.ext,
            AppCall::Close(c) => &c.ext,
        }
    }
    pub fn ext_mut(&mut self) -> &mut Extensions {
        match self {
            AppCall::Connect(c) => &mut c.ext,
            AppCall::Publish(c) => &mut c.ext,
            AppCall::Play(c) => &mut c.ext,
            AppCall::Close(c) => &mut c.ext,
        }
    }
    /// The ticket a deferred answer to this call is given with (since v2.1; a host gives one
    /// to every connect, publish and play).
    pub fn ticket(&self) -> Option<u64> {
        super::ticket(self.ext())
    }
}

/// A handler's answer. The host never gets one it does not know (a handler newer than its host
/// is not loaded); a session that gets one it does not know treats it as a rejection.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum AppVerdict {
    Accept,
    /// The client gets the matching `_error`/`onStatus` with this description.
    Reject(RString),
    /// Use another stream name (`APP/NAME`, or `NAME` in the same app) instead.
    Redirect(RString),
    /// Since v2.1: the handler answers later, with [`super::HostApi::decide`] and the call's
    /// [`AppCall::ticket`] (as rtmplite's `onConnect` returning `None`, then `accept()`). The
    /// client waits, its further commands held, until the decision or the host's
    /// `app_defer_timeout_ms`, which rejects it. Only for connect, publish and play; the host
    /// resolves it, so a session never sees it.
    Defer,
}

/// A command the server sends to the client (like rtmplite's `client.call(...)`): in an
/// [`AppDecision`], after the answer; or at any time with [`super::HostApi::call_client`].
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct ClientCommand {
    pub name: RString,
    /// The arguments as a JSON array; the frontend encodes them in its protocol (AMF).
    pub args_json: RString,
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct AppDecision {
    pub verdict: AppVerdict_NE,
    /// Sent to the client after the answer to its command.
    pub commands: RVec<ClientCommand>,
    pub ext: Extensions,
}

impl AppDecision {
    pub fn new(verdict: AppVerdict) -> Self {
        Self {
            verdict: AppVerdict_NE::new(verdict),
            commands: RVec::new(),
            ext: RVec::new(),
        }
    }
    pub fn accept() -> Self {
        Self::new(AppVerdict::Accept)
    }
    pub fn reject(reason: impl Into<String>) -> Self {
        Self::new(AppVerdict::Reject(RString::from(reason.into())))
    }
    pub fn redirect(stream: impl Into<String>) -> Self {
        Self::new(AppVerdict::Redirect(RString::from(stream.into())))
    }
    /// "I will answer later" (since v2.1): see [`AppVerdict::Defer`].
    pub fn defer() -> Self {
        Self::new(AppVerdict::Defer)
    }
    pub fn with_command(mut self, command: ClientCommand) -> Self {
        self.commands.push(command);
        self
    }
    /// The verdict, or `None` for one this build does not know.
    pub fn verdict(&self) -> Option<&AppVerdict> {
        self.verdict.as_enum().ok()
    }
}

/// A client's own command on its connection (an RTMP `NetConnection.call("myRpc", ...)`), one
/// the protocol does not define. Since v2.1.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct CommandCall {
    /// The app the connection connected to.
    pub app: RString,
    /// The command's name (`myRpc`).
    pub name: RString,
    /// The command's arguments after the command object, as a JSON array.
    pub args_json: RString,
    pub caller: Caller,
    pub ext: Extensions,
}

/// An app handler's answer to a [`CommandCall`]. Since v2.1.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum CommandReply {
    /// The handler has no such command: the client gets the protocol's "method not found"
    /// (RTMP: `_error` with `NetConnection.Call.Failed`). What handlers built before v2.1 say.
    NotHandled,
    /// The command's value, as JSON; the client gets it as the call's result (RTMP `_result`).
    Result(RString),
    /// The command failed; the client gets this JSON value as the error (RTMP `_error`).
    Error(RString),
}

/// The app handler kind. Called on host-managed blocking threads; it may block and may call
/// [`super::HostApi::authenticate`].
#[sabi_trait]
pub trait AppHandler: Send + Sync {
    /// The app names this handler serves; `*` serves any app no other handler names.
    fn apps(&self) -> RVec<RString>;
    #[sabi(last_prefix_field)]
    fn call(&self, call: &AppCall_NE) -> RResult<AppDecision, PluginError>;
    /// A client's own command (since v2.1). The default, which is also what the host gets
    /// from a handler built before v2.1, is [`CommandReply::NotHandled`].
    fn command(&self, _call: &CommandCall) -> RResult<CommandReply_NE, PluginError> {
        RResult::ROk(CommandReply_NE::new(CommandReply::NotHandled))
    }
}

pub type AppHandlerBox = AppHandler_TO<'static, RBox<()>>;
