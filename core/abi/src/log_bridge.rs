//! Forwards a plugin's `tracing` events to the host.
//!
//! Each `cdylib` has its own copy of tracing's globals, so without this bridge a plugin's events
//! would go nowhere. [`install`] sets, inside the plugin, a global subscriber that turns each
//! event into a [`LogRecord`] and hands it to [`HostApi::log`]; the host re-emits it under the
//! plugin's target, so `RUST_LOG=auth_ini=debug` works as for host code.
//! Limits: fields are flattened into the message text and plugin-side spans are not kept (a
//! plugin's events still appear inside the host span that called the plugin).

use std::fmt::Write as _;

use abi_stable::std_types::RStr;
use tracing_core::{
    field::{Field, Visit},
    span, Event, Interest, Level, LevelFilter, Metadata, Subscriber,
};

use crate::v2::{HostApiBox, LogLevel, LogRecord};

/// Installs the bridge as the plugin's global subscriber. Later calls do nothing (a plugin is
/// initialised once, but a test may build several instances).
pub fn install(host: HostApiBox) {
    let max = host.max_level();
    let sub = Bridge { host, max };
    let _ = tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(sub));
}

pub fn level_of(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

struct Bridge {
    host: HostApiBox,
    max: LogLevel,
}

impl Subscriber for Bridge {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The host's filter decides per event, so it may change at run time.
        Interest::sometimes()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match self.max {
            LogLevel::Off => LevelFilter::OFF,
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        })
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        let level = level_of(meta.level());
        level <= self.max && self.host.enabled(level, RStr::from_str(meta.target()))
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut text = MessageText::default();
        event.record(&mut text);
        let record = LogRecord {
            level: level_of(meta.level()),
            target: RStr::from_str(meta.target()),
            message: RStr::from_str(&text.0),
            file: RStr::from_str(meta.file().unwrap_or("")),
            line: meta.line().unwrap_or(0),
        };
        self.host.log(&record);
    }
}

/// The message first, then `key=value` for each other field.
#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.prepend(value);
        } else {
            let _ = write!(self.0, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.prepend(&format!("{value:?}"));
        } else {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }
}

impl MessageText {
    fn prepend(&mut self, message: &str) {
        self.0.insert_str(0, message);
    }
}
