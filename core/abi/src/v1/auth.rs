//! Authenticators: "is this user allowed to do this?"

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RString},
    StableAbi,
};

use super::PluginError;

/// What the user wants to do.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthAction {
    /// Publish (fstream `broadcast`, RTMP `publish`).
    Publish,
    /// Play a stream (only asked by app handlers with their own policy).
    Play,
    /// Ask for a token (fstream `token`).
    Token,
    /// An RTMP `connect` (only asked by app handlers with their own policy).
    Connect,
}

/// The proof the user gave.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    None,
    Password(RString),
    /// A token issued by the host. The host checks tokens itself; authenticators are only asked
    /// about passwords.
    Token(RString),
}

/// A question for the authenticators.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The user name as received from the network. The host has validated it as a name part
    /// (`[A-Za-z0-9_.-]{1,128}`, not starting with `.`) before any plugin sees it.
    pub user: RString,
    pub action: AuthAction,
    pub credential: Credential,
    /// `APP/STREAM`, or empty when not about a stream.
    pub stream: RString,
    /// The peer's `IP:PORT`.
    pub peer: RString,
    /// The protocol frontend that asks (`fstream`, `rtmp`, ...).
    pub protocol: RString,
}

/// One authenticator's answer. The host asks them in `main.mods` order; the first `Allow` or
/// `Deny` wins, and when all abstain the request is denied.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum AuthVerdict {
    Allow,
    Deny(RString),
    /// "I don't know this user": ask the next authenticator.
    Abstain,
}

/// The host's final answer to a session or app handler.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Allowed,
    /// The reason is for the log; the protocol decides what the client learns of it.
    Denied(RString),
}

impl AuthOutcome {
    pub fn is_allowed(&self) -> bool {
        matches!(self, AuthOutcome::Allowed)
    }
}

/// The authenticator kind. Called on host-managed blocking threads, never on I/O threads, so
/// an implementation may block (a database, an HTTP service); the host applies a timeout.
#[sabi_trait]
pub trait Authenticator: Send + Sync {
    #[sabi(last_prefix_field)]
    fn authenticate(&self, request: &AuthRequest) -> RResult<AuthVerdict, PluginError>;
}

pub type AuthenticatorBox = Authenticator_TO<'static, RBox<()>>;
