//! What the host offers to plugins.

use abi_stable::{
    sabi_trait,
    std_types::{RArc, RStr},
    StableAbi,
};

use super::{AuthOutcome, AuthRequest};

/// Log levels. A smaller number is more severe, so an event is enabled when
/// `level <= max_level`.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// One log event from a plugin, re-emitted by the host under the plugin's target.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct LogRecord<'a> {
    pub level: LogLevel,
    /// The module path of the event in the plugin (e.g. `auth_ini::users`).
    pub target: RStr<'a>,
    /// The message with the event's fields appended as `key=value`.
    pub message: RStr<'a>,
    pub file: RStr<'a>,
    pub line: u32,
}

/// Services of the host, handed to a plugin at init. Thread-safe.
#[sabi_trait]
pub trait HostApi: Send + Sync + Clone {
    /// The most verbose level any target is enabled at (a cheap first filter).
    fn max_level(&self) -> LogLevel;
    /// Whether an event of this level and target would be recorded.
    fn enabled(&self, level: LogLevel, target: RStr<'_>) -> bool;
    fn log(&self, record: &LogRecord<'_>);
    /// Runs the authenticators (and the host's token store) and waits for the answer.
    /// It blocks, so call it only where blocking is allowed: in an app handler, an authenticator,
    /// a sink or a source, which the host runs on blocking threads.
    #[sabi(last_prefix_field)]
    fn authenticate(&self, request: &AuthRequest) -> AuthOutcome;
}

pub type HostApiBox = HostApi_TO<'static, RArc<()>>;
