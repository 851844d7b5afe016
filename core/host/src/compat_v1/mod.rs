//! Plugins built against interface v1, adapted to v2 inside the host.
//!
//! v1 is frozen (`core/abi/src/v1`). A v1 plugin gets a v1 host API and is initialised with v1
//! values; each object it provides is wrapped in a v2 object ([`objects`]) that converts what
//! crosses ([`convert`]). Everything past the loader sees v2 only. What v1 cannot express is
//! left out: an event or status added in v2 is not delivered, a call added in v2 is answered as
//! if the plugin were not there.

mod convert;
mod objects;

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RStr},
};
use fstream_abi::{v1, v2, LogLevel, LogRecord};

use crate::host_api::HostServices;

/// The host API a v1 plugin is initialised with.
pub fn host_api(services: &HostServices) -> v1::HostApiBox {
    v1::HostApi_TO::from_ptr(RArc::new(V1Host(services.clone())), TD_Opaque)
}

#[derive(Clone)]
struct V1Host(HostServices);

impl v1::HostApi for V1Host {
    fn max_level(&self) -> LogLevel {
        self.0.max_level_now()
    }
    fn enabled(&self, level: LogLevel, target: RStr<'_>) -> bool {
        self.0.log_enabled(level, target)
    }
    fn log(&self, record: &LogRecord<'_>) {
        self.0.log_record(record)
    }
    fn authenticate(&self, request: &v1::AuthRequest) -> v1::AuthOutcome {
        let outcome = self.0.auth.check(&convert::auth_request_from_v1(request));
        convert::auth_outcome_to_v1(&v2::AuthOutcome_NE::new(outcome))
    }
}

/// The v1 init context for a v2 one.
pub fn init_context(ctx: &v2::InitContext) -> v1::InitContext {
    v1::InitContext {
        name: ctx.name.clone(),
        settings: ctx.settings.clone(),
        settings_path: ctx.settings_path.clone(),
        root: ctx.root.clone(),
    }
}

/// A v1 plugin's objects as v2 objects.
pub fn instance(inst: v1::PluginInstance) -> v2::PluginInstance {
    let mut out = v2::PluginInstance::empty();
    if let Some(a) = inst.authenticator.into_option() {
        out = out.with(v2::PluginObject::Authenticator(
            v2::Authenticator_TO::from_value(objects::Authenticator(a), TD_Opaque),
        ));
    }
    if let Some(f) = inst.frontend.into_option() {
        out = out.with(v2::PluginObject::Frontend(
            v2::FrontendFactory_TO::from_value(objects::Frontend(f), TD_Opaque),
        ));
    }
    if let Some(h) = inst.app_handler.into_option() {
        out = out.with(v2::PluginObject::AppHandler(v2::AppHandler_TO::from_value(
            objects::AppHandler(h),
            TD_Opaque,
        )));
    }
    if let Some(s) = inst.sink.into_option() {
        out = out.with(v2::PluginObject::Sink(v2::SinkFactory_TO::from_value(
            objects::SinkFactory(s),
            TD_Opaque,
        )));
    }
    if let Some(s) = inst.source.into_option() {
        out = out.with(v2::PluginObject::Source(v2::SourceFactory_TO::from_value(
            objects::SourceFactory(s),
            TD_Opaque,
        )));
    }
    out
}

/// The v1 descriptor as a v2 one.
pub fn descriptor(d: v1::PluginDescriptor) -> v2::PluginDescriptor {
    v2::PluginDescriptor {
        name: d.name,
        version: d.version,
        interface: v2::InterfaceVersion { major: 1, minor: 0 },
        kinds: d.kinds,
    }
}
