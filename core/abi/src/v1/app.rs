//! App handlers: the policy of an RTMP application (like rtmplite's `App` class).

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RString, RVec},
    StableAbi,
};

use super::PluginError;

/// A client's `connect`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ConnectCall {
    pub app: RString,
    pub tc_url: RString,
    /// The connect command object and any extra arguments, as JSON (an array: the command
    /// object first).
    pub args_json: RString,
    pub peer: RString,
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
    pub peer: RString,
}

/// A client's `play`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PlayCall {
    pub app: RString,
    pub stream: RString,
    pub query: RString,
    pub peer: RString,
}

/// The end of a connection, for handlers that keep per-client state.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct CloseCall {
    pub app: RString,
    pub peer: RString,
}

#[repr(u8)]
#[derive(StableAbi, Debug, Clone)]
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
}

#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum AppVerdict {
    Accept,
    /// The client gets the matching `_error`/`onStatus` with this description.
    Reject(RString),
    /// Use another stream name (`APP/NAME`, or `NAME` in the same app) instead.
    Redirect(RString),
}

/// A command the server sends to the client (like rtmplite's `client.call(...)`).
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
    pub verdict: AppVerdict,
    /// Sent to the client after the answer to its command.
    pub commands: RVec<ClientCommand>,
}

impl AppDecision {
    pub fn accept() -> Self {
        Self {
            verdict: AppVerdict::Accept,
            commands: RVec::new(),
        }
    }
    pub fn reject(reason: impl Into<String>) -> Self {
        Self {
            verdict: AppVerdict::Reject(RString::from(reason.into())),
            commands: RVec::new(),
        }
    }
    pub fn redirect(stream: impl Into<String>) -> Self {
        Self {
            verdict: AppVerdict::Redirect(RString::from(stream.into())),
            commands: RVec::new(),
        }
    }
}

/// The app handler kind. Called on host-managed blocking threads; it may block and may call
/// [`super::HostApi::authenticate`].
#[sabi_trait]
pub trait AppHandler: Send + Sync {
    /// The app names this handler serves; `*` serves any app no other handler names.
    fn apps(&self) -> RVec<RString>;
    #[sabi(last_prefix_field)]
    fn call(&self, call: &AppCall) -> RResult<AppDecision, PluginError>;
}

pub type AppHandlerBox = AppHandler_TO<'static, RBox<()>>;
