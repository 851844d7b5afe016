//! What the host offers to v2 plugins.

use abi_stable::{
    sabi_trait,
    std_types::{RArc, RStr, RString, RVec},
};

use super::{
    AppDecision, AuthAnswer, AuthOutcome_NE, AuthRequest, ClientCommand, InterfaceVersion,
    LogLevel, LogRecord, Notice,
};

/// Services of the host, handed to a plugin at init. Thread-safe. Methods added in v2.x go at
/// the end with a default body, which is what a plugin gets from a host older than the method
/// (it cannot happen today: such a plugin is refused, see the CHANGELOG).
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
    fn authenticate(&self, request: &AuthRequest) -> AuthOutcome_NE;
    /// The host's interface version: which additions after v2.0 it has.
    #[sabi(last_prefix_field)]
    fn interface(&self) -> InterfaceVersion;
    /// Since v2.1: the answer to a call an app handler deferred ([`super::AppVerdict::Defer`]),
    /// by the call's [`super::AppCall::ticket`]. False when there is nothing to answer any more:
    /// the client left, the host's deferral timeout rejected it, or it was answered already.
    /// `Defer` again is refused (false). Does not block.
    fn decide(&self, _ticket: u64, _decision: AppDecision) -> bool {
        false
    }
    /// Since v2.1: sends a command to a client at any time (rtmplite's `client.call`), by its
    /// connection id ([`super::Caller::connection`]). True when it was handed to the client's
    /// session; false when the connection is gone or its frontend cannot send commands (one
    /// built before v2.1, or a protocol without them). A session that has not finished its
    /// handshake with the client (RTMP: before `connect` is answered) drops it. Does not block.
    fn call_client(&self, _connection: u64, _command: ClientCommand) -> bool {
        false
    }
    /// Since v2.2: the path prefixes the loaded HTTP handlers serve ([`super::HttpHandler`]),
    /// for an HTTP frontend to pass those requests on with [`super::Action::CallHttp`].
    fn http_prefixes(&self) -> RVec<RString> {
        RVec::new()
    }
    /// Since v2.3: [`Self::authenticate`] with the grants of the authenticator that allowed
    /// (a rename, the right to record). Blocks like `authenticate`.
    fn authorize(&self, request: &AuthRequest) -> AuthAnswer {
        AuthAnswer {
            outcome: self.authenticate(request),
            grants: RVec::new(),
        }
    }
    /// Since v2.3: reports something only a plugin sees (a recorder's finished file) to the
    /// observers. The host fills in `unix_ms` when it is zero. Does not block.
    fn notify(&self, _notice: &Notice) {}
    /// Since v2.3: what is on the server now, as a JSON document (`streams`, `sessions`,
    /// `counters`; the README's control API section describes every field; fields are only
    /// ever added). Does not block on media.
    fn stats(&self) -> RString {
        RString::from("{}")
    }
    /// Since v2.3: ends a connection (a publisher's stream stops, a viewer leaves), by its
    /// connection id. False when there is no such connection. Does not block.
    fn kick(&self, _connection: u64, _reason: RStr<'_>) -> bool {
        false
    }
    /// Since v2.3: [`Self::stats`] with only the parts named in `parts`, a comma-separated
    /// list of `server`, `streams`, `sessions`, `counters` (unknown names are ignored). The
    /// sessions are the large part (one entry per connection): a caller that does not show
    /// them spares the host rendering them.
    fn stats_of(&self, _parts: RStr<'_>) -> RString {
        self.stats()
    }
}

pub type HostApiBox = HostApi_TO<'static, RArc<()>>;
