//! The host's side of [`fstream_abi::HostApi`]: the log bridge, blocking authentication, and
//! reaching clients (commands at any time, deferred app decisions).

use std::{sync::Arc, time::Duration};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RStr, RString, RVec},
};
use fstream_abi::{
    AppDecision, AuthOutcome_NE, AuthRequest, ClientCommand, HostApi, HostApiBox, HostApi_TO,
    InterfaceVersion, LogLevel, LogRecord, INTERFACE,
};
use tracing_log::AsTrace;

use crate::{auth::AuthChain, clients::Clients};

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
}

impl HostServices {
    pub fn new(token_ttl: Duration) -> Self {
        Self {
            auth: Arc::new(AuthChain::new(Vec::new(), token_ttl)),
            clients: Arc::new(Clients::default()),
            http_prefixes: Default::default(),
        }
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
        AuthOutcome_NE::new(self.auth.check(request))
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
}
