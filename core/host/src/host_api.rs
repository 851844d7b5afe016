//! The host's side of [`fstream_abi::HostApi`]: the log bridge, blocking authentication, and
//! reaching clients (commands at any time, deferred app decisions).

use std::{
    sync::{atomic::Ordering, Arc, OnceLock},
    time::{Duration, Instant},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RStr, RString, RVec},
};
use fstream_abi::{
    AppDecision, AuthAnswer, AuthOutcome_NE, AuthRequest, ClientCommand, HostApi, HostApiBox,
    HostApi_TO, InterfaceVersion, LogLevel, LogRecord, Notice, NoticeKind, INTERFACE,
};
use tracing_log::AsTrace;

use crate::{
    auth::AuthChain,
    clients::Clients,
    hub::Hub,
    notices::Notices,
    stats::{Extra, Sessions},
};

/// Shared by every plugin. The auth chain starts empty and gets its authenticators once all
/// plugins are loaded (plugins get the host API before the authenticators exist), and new ones
/// at each reload.
#[derive(Clone)]
pub struct HostServices {
    pub auth: Arc<AuthChain>,
    /// The live connections, for `call_client` and deferred app decisions.
    pub clients: Arc<Clients>,
    /// The path prefixes of the HTTP handlers (replaced at each reload).
    http_prefixes: Arc<std::sync::RwLock<Vec<String>>>,
    /// The live connections as the stats API shows them, and their kick.
    pub sessions: Arc<Sessions>,
    /// The observers and their queues.
    pub notices: Arc<Notices>,
    /// The hub, once the server has one (plugins are loaded before it exists).
    hub: Arc<OnceLock<Arc<Hub>>>,
    started: Instant,
}

impl HostServices {
    pub fn new(token_ttl: Duration) -> Self {
        Self {
            auth: Arc::new(AuthChain::new(Vec::new(), token_ttl)),
            clients: Arc::new(Clients::default()),
            http_prefixes: Default::default(),
            sessions: Default::default(),
            notices: Default::default(),
            hub: Default::default(),
            started: Instant::now(),
        }
    }

    /// An app handler authenticated a user for a connection it named (`conn_id`): the stats
    /// API shows that user on the connection.
    fn note_user(&self, request: &AuthRequest, allowed: bool) {
        let conn = fstream_abi::var(&request.ext, "conn_id").and_then(|c| c.parse::<u64>().ok());
        if let (true, Some(id)) = (allowed && !request.user.is_empty(), conn) {
            if let Some(e) = self.sessions.get(id) {
                e.detail().user = request.user.to_string();
            }
        }
    }

    /// Gives the stats API the hub's streams.
    pub fn set_hub(&self, hub: Arc<Hub>) {
        let _ = self.hub.set(hub);
    }

    /// The stats document (see [`crate::stats::render`]).
    pub fn stats_json(&self, parts: crate::stats::Parts) -> String {
        let streams = match parts.streams {
            true => self.hub.get().map(|h| h.snapshot()).unwrap_or_default(),
            false => Vec::new(),
        };
        let a = &self.auth.counters;
        let extra = Extra {
            uptime_ms: self.started.elapsed().as_millis() as u64,
            auth: [
                a.allowed.load(Ordering::Relaxed),
                a.denied.load(Ordering::Relaxed),
                a.errors.load(Ordering::Relaxed),
            ],
            notices_sent: self.notices.sent.load(Ordering::Relaxed),
            notices_dropped: self.notices.dropped.load(Ordering::Relaxed),
            frontend_plugins: self
                .hub
                .get()
                .map(|h| h.frontend_plugins())
                .unwrap_or_default(),
        };
        crate::stats::render(&streams, &self.sessions, &extra, parts)
    }

    pub fn set_http_prefixes(&self, prefixes: Vec<String>) {
        *self
            .http_prefixes
            .write()
            .unwrap_or_else(|p| p.into_inner()) = prefixes;
    }

    pub fn boxed(&self) -> HostApiBox {
        HostApi_TO::from_ptr(RArc::new(self.clone()), TD_Opaque)
    }
}

fn log_level(level: LogLevel) -> Option<log::Level> {
    Some(match level {
        LogLevel::Off => return None,
        LogLevel::Error => log::Level::Error,
        LogLevel::Warn => log::Level::Warn,
        LogLevel::Info => log::Level::Info,
        LogLevel::Debug => log::Level::Debug,
        LogLevel::Trace => log::Level::Trace,
    })
}

impl HostServices {
    /// The most verbose level any target is enabled at.
    pub fn max_level_now(&self) -> LogLevel {
        match tracing::level_filters::LevelFilter::current().into_level() {
            None => LogLevel::Off,
            Some(tracing::Level::ERROR) => LogLevel::Error,
            Some(tracing::Level::WARN) => LogLevel::Warn,
            Some(tracing::Level::INFO) => LogLevel::Info,
            Some(tracing::Level::DEBUG) => LogLevel::Debug,
            Some(_) => LogLevel::Trace,
        }
    }

    /// Whether an event of this level and target would be recorded.
    pub fn log_enabled(&self, level: LogLevel, target: RStr<'_>) -> bool {
        let Some(level) = log_level(level) else {
            return false;
        };
        let meta = log::Metadata::builder()
            .level(level)
            .target(target.as_str())
            .build();
        let trace_meta = meta.as_trace();
        tracing::dispatcher::get_default(|d| d.enabled(&trace_meta))
    }

    /// Re-emits a plugin's event under its own target.
    pub fn log_record(&self, r: &LogRecord<'_>) {
        let Some(level) = log_level(r.level) else {
            return;
        };
        let file = (!r.file.is_empty()).then_some(r.file.as_str());
        let _ = tracing_log::format_trace(
            &log::Record::builder()
                .level(level)
                .target(r.target.as_str())
                .args(format_args!("{}", r.message))
                .file(file)
                .line(Some(r.line))
                .module_path(Some(r.target.as_str()))
                .build(),
        );
    }
}

impl HostApi for HostServices {
    fn max_level(&self) -> LogLevel {
        self.max_level_now()
    }
    fn enabled(&self, level: LogLevel, target: RStr<'_>) -> bool {
        self.log_enabled(level, target)
    }
    fn log(&self, record: &LogRecord<'_>) {
        self.log_record(record)
    }
    fn authenticate(&self, request: &AuthRequest) -> AuthOutcome_NE {
        let outcome = self.auth.check(request);
        self.note_user(request, outcome.is_allowed());
        AuthOutcome_NE::new(outcome)
    }
    fn interface(&self) -> InterfaceVersion {
        INTERFACE
    }
    fn decide(&self, ticket: u64, decision: AppDecision) -> bool {
        self.clients.decide(ticket, decision)
    }
    fn call_client(&self, connection: u64, command: ClientCommand) -> bool {
        self.clients.call(connection, command)
    }
    fn http_prefixes(&self) -> RVec<RString> {
        self.http_prefixes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|p| RString::from(p.as_str()))
            .collect()
    }
    fn authorize(&self, request: &AuthRequest) -> AuthAnswer {
        let (outcome, grants) = self.auth.check_granted(request);
        self.note_user(request, outcome.is_allowed());
        AuthAnswer {
            outcome: AuthOutcome_NE::new(outcome),
            grants,
        }
    }
    fn notify(&self, notice: &Notice) {
        if notice.kind() == Some(NoticeKind::RecordDone) {
            crate::stats::Counters::add(&crate::stats::COUNTERS.recordings_done);
        }
        self.notices.send(notice.clone());
    }
    fn stats(&self) -> RString {
        self.stats_json(crate::stats::Parts::ALL).into()
    }
    fn stats_of(&self, parts: RStr<'_>) -> RString {
        self.stats_json(crate::stats::Parts::parse(parts.as_str()))
            .into()
    }
    fn kick(&self, connection: u64, reason: RStr<'_>) -> bool {
        self.sessions.kick(connection, reason.as_str())
    }
}
