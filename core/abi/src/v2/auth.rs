//! Authenticators: "is this user allowed to do this?"

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RString},
    StableAbi,
};

use super::{Extensions, NetAddr, PluginError};

/// What the user wants to do.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 2], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
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
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
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
    pub action: AuthAction_NE,
    pub credential: Credential_NE,
    /// `APP/STREAM`, or empty when not about a stream.
    pub stream: RString,
    /// The peer's `IP:PORT`, as text.
    pub peer: RString,
    /// The same address as a value.
    pub peer_addr: NetAddr,
    /// The protocol frontend that asks (`fstream`, `rtmp`, ...).
    pub protocol: RString,
    pub ext: Extensions,
}

impl AuthRequest {
    /// The action, if this build knows it.
    pub fn action(&self) -> Option<AuthAction> {
        self.action.as_enum().ok().copied()
    }
    /// The credential, or `None` for one this build does not know.
    pub fn credential(&self) -> Option<&Credential> {
        self.credential.as_enum().ok()
    }
}

/// One authenticator's answer. The host asks them in `main.mods` order; the first `Allow` or
/// `Deny` wins, and when all abstain the request is denied.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum AuthVerdict {
    Allow,
    Deny(RString),
    /// "I don't know this user": ask the next authenticator.
    Abstain,
    /// Since v2.3: allow, with grants ([`super::Extension::Rename`],
    /// [`super::Extension::MayRecord`]). Callers of [`super::HostApi::authenticate`] and
    /// sessions see a plain `Allowed`; [`super::HostApi::authorize`] gives the grants.
    AllowWith(Extensions),
}

/// The host's final answer to a session or app handler.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
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

/// Reading an outcome that may come from a newer host: anything but `Allowed` is a denial.
pub fn outcome_allows(outcome: &AuthOutcome_NE) -> bool {
    outcome_result(outcome).is_ok()
}

/// The same, with the denial's reason (`"refused"` for an outcome this build does not know).
pub fn outcome_result(outcome: &AuthOutcome_NE) -> Result<(), &str> {
    match outcome.as_enum() {
        Ok(AuthOutcome::Allowed) => Ok(()),
        Ok(AuthOutcome::Denied(why)) => Err(why.as_str()),
        _ => Err("refused"),
    }
}

/// Since v2.3: the host's final answer with what the allowing authenticator granted (empty for
/// a plain `Allow`, a token, or a denial).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct AuthAnswer {
    pub outcome: AuthOutcome_NE,
    pub grants: Extensions,
}

impl AuthAnswer {
    pub fn is_allowed(&self) -> bool {
        outcome_allows(&self.outcome)
    }
}

/// The authenticator kind. Called on host-managed blocking threads, never on I/O threads, so
/// an implementation may block (a database, an HTTP service); the host applies a timeout.
#[sabi_trait]
pub trait Authenticator: Send + Sync {
    #[sabi(last_prefix_field)]
    fn authenticate(&self, request: &AuthRequest) -> RResult<AuthVerdict_NE, PluginError>;
}

pub type AuthenticatorBox = Authenticator_TO<'static, RBox<()>>;
