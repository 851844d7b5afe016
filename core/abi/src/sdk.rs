//! What plugin authors use.
//!
//! Implement the plain Rust traits below ([`Authenticate`], [`Frontend`], [`SessionLogic`], ...),
//! wrap each object with the matching `*_box` function, and export the plugin with
//! [`crate::export_plugin!`]. The wrappers catch panics on the plugin's side of the boundary and
//! turn them into [`PluginError`]s with `panicked: true`; a panic must never unwind into the host
//! (abi_stable would abort the whole process).

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RSlice, RStr, RString, RVec},
};

use crate::v2::*;

/// Runs `f`, turning a panic into an error.
pub fn guard<T>(f: impl FnOnce() -> Result<T, PluginError>) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.into(),
        Err(panic) => RResult::RErr(PluginError {
            panicked: true,
            message: RString::from(panic_message(&*panic)),
        }),
    }
}

/// Like [`guard`] for calls that cannot report an error: a panic gives `fallback`.
fn guard_or<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Called by [`crate::export_plugin!`]: installs the log bridge and runs the plugin's init.
pub fn run_init(
    host: HostApiBox,
    ctx: InitContext,
    init: fn(&HostApiBox, &InitContext) -> Result<PluginInstance, PluginError>,
) -> RResult<PluginInstance, PluginError> {
    crate::log_bridge::install(host.clone());
    guard(|| init(&host, &ctx))
}

/// The 1-based line of byte `offset` in `text`, to point at a settings error.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// A settings error for the operator: "line N: message" when the position is known. The host
/// adds the file's path in front.
pub fn settings_message(text: &str, offset: Option<usize>, message: &str) -> String {
    match offset {
        Some(o) => format!("line {}: {message}", line_of(text, o)),
        None => message.to_string(),
    }
}

/// A settings file a plugin cannot use. `Display` gives the operator's message; the host adds
/// the file's path in front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    /// TOML syntax, a wrong type or an unknown key (the message names it).
    Parse {
        line: Option<usize>,
        message: String,
    },
    /// A value of the right type that makes no sense.
    Invalid {
        key: &'static str,
        value: String,
        why: &'static str,
    },
}

impl SettingsError {
    /// A parse error at byte `offset` of `text`.
    pub fn parse(text: &str, offset: Option<usize>, message: impl Into<String>) -> Self {
        SettingsError::Parse {
            line: offset.map(|o| line_of(text, o)),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingsError::Parse {
                line: Some(l),
                message,
            } => write!(f, "line {l}: {message}"),
            SettingsError::Parse {
                line: None,
                message,
            } => f.write_str(message),
            SettingsError::Invalid { key, value, why } => write!(f, "{key} = {value}: {why}"),
        }
    }
}

impl std::error::Error for SettingsError {}

// ---------------------------------------------------------------------------------------------
// Authenticator

pub trait Authenticate: Send + Sync + 'static {
    fn authenticate(&self, request: &AuthRequest) -> Result<AuthVerdict, PluginError>;
}

/// Wraps an author's object so it can cross the boundary, catching its panics.
pub struct Guarded<T>(pub T);

impl<T: Authenticate> Authenticator for Guarded<T> {
    fn authenticate(&self, request: &AuthRequest) -> RResult<AuthVerdict_NE, PluginError> {
        guard(|| self.0.authenticate(request).map(AuthVerdict_NE::new))
    }
}

pub fn authenticator_box<T: Authenticate>(t: T) -> AuthenticatorBox {
    Authenticator_TO::from_value(Guarded(t), TD_Opaque)
}

// ---------------------------------------------------------------------------------------------
// Frontend, session, encoder

pub trait Frontend: Send + Sync + 'static {
    fn protocol(&self) -> String;
    fn default_listen(&self) -> String;
    fn new_session(&self, conn: &ConnInfo) -> Result<SessionBox, PluginError>;
    fn encoder(&self, format: &str) -> Result<EncoderBox, PluginError>;
}

impl<T: Frontend> FrontendFactory for Guarded<T> {
    fn protocol(&self) -> RString {
        guard_or(String::from("?"), || self.0.protocol()).into()
    }
    fn default_listen(&self) -> RString {
        guard_or(String::new(), || self.0.default_listen()).into()
    }
    fn new_session(&self, conn: &ConnInfo) -> RResult<SessionBox, PluginError> {
        guard(|| self.0.new_session(conn))
    }
    fn encoder(&self, format: RStr<'_>) -> RResult<EncoderBox, PluginError> {
        guard(|| self.0.encoder(format.as_str()))
    }
}

pub fn frontend_box<T: Frontend>(t: T) -> FrontendFactoryBox {
    FrontendFactory_TO::from_value(Guarded(t), TD_Opaque)
}

/// A connection's state machine, as an author writes it.
pub trait SessionLogic: Send + 'static {
    fn start(&mut self, _now_ms: u64, _out: &mut Outbox) -> Result<(), PluginError> {
        Ok(())
    }
    fn bytes(&mut self, data: &[u8], now_ms: u64, out: &mut Outbox) -> Result<(), PluginError>;
    fn event(&mut self, event: Event, now_ms: u64, out: &mut Outbox) -> Result<(), PluginError>;
    fn timer(&mut self, _now_ms: u64, _out: &mut Outbox) -> Result<(), PluginError> {
        Ok(())
    }
    fn closed(&mut self, _now_ms: u64, _out: &mut Outbox) -> Result<(), PluginError> {
        Ok(())
    }
}

impl<T: SessionLogic> Session for Guarded<T> {
    fn start(&mut self, now_ms: u64, out: &mut Outbox) -> RResult<(), PluginError> {
        guard(|| self.0.start(now_ms, out))
    }
    fn bytes(
        &mut self,
        data: RSlice<'_, u8>,
        now_ms: u64,
        out: &mut Outbox,
    ) -> RResult<(), PluginError> {
        guard(|| self.0.bytes(data.as_slice(), now_ms, out))
    }
    fn event(
        &mut self,
        event: Event_NE,
        now_ms: u64,
        out: &mut Outbox,
    ) -> RResult<(), PluginError> {
        // An event added after this plugin's build means nothing to it: skip it.
        match event.into_enum() {
            Ok(event) => guard(|| self.0.event(event, now_ms, out)),
            Err(_) => RResult::ROk(()),
        }
    }
    fn timer(&mut self, now_ms: u64, out: &mut Outbox) -> RResult<(), PluginError> {
        guard(|| self.0.timer(now_ms, out))
    }
    fn closed(&mut self, now_ms: u64, out: &mut Outbox) -> RResult<(), PluginError> {
        guard(|| self.0.closed(now_ms, out))
    }
}

pub fn session_box<T: SessionLogic>(t: T) -> SessionBox {
    Session_TO::from_value(Guarded(t), TD_Opaque)
}

pub trait Encode: Send + 'static {
    fn preamble(&mut self, _media: bool) -> Result<Option<Payload>, PluginError> {
        Ok(None)
    }
    fn encode(&mut self, packet: &MediaPacket) -> Result<Option<Payload>, PluginError>;
}

impl<T: Encode> Encoder for Guarded<T> {
    fn preamble(&mut self, media: bool) -> RResult<ROption<Payload>, PluginError> {
        guard(|| self.0.preamble(media).map(ROption::from))
    }
    fn encode(&mut self, packet: &MediaPacket) -> RResult<ROption<Payload>, PluginError> {
        guard(|| self.0.encode(packet).map(ROption::from))
    }
}

pub fn encoder_box<T: Encode>(t: T) -> EncoderBox {
    Encoder_TO::from_value(Guarded(t), TD_Opaque)
}

// ---------------------------------------------------------------------------------------------
// App handler

pub trait HandleApp: Send + Sync + 'static {
    fn apps(&self) -> Vec<String>;
    fn call(&self, call: &AppCall) -> Result<AppDecision, PluginError>;
    /// A client's own command (`NetConnection.call("myRpc", ...)`). Not handled by default:
    /// the client gets the protocol's "method not found".
    fn command(&self, _call: &CommandCall) -> Result<CommandReply, PluginError> {
        Ok(CommandReply::NotHandled)
    }
}

impl<T: HandleApp> AppHandler for Guarded<T> {
    fn apps(&self) -> RVec<RString> {
        guard_or(Vec::new(), || self.0.apps())
            .into_iter()
            .map(RString::from)
            .collect()
    }
    fn call(&self, call: &AppCall_NE) -> RResult<AppDecision, PluginError> {
        // A call added after this handler's build: let the host go on as if there were no
        // handler for it.
        match call.as_enum() {
            Ok(call) => guard(|| self.0.call(call)),
            Err(_) => RResult::ROk(AppDecision::accept()),
        }
    }
    fn command(&self, call: &CommandCall) -> RResult<CommandReply_NE, PluginError> {
        guard(|| self.0.command(call).map(CommandReply_NE::new))
    }
}

pub fn app_handler_box<T: HandleApp>(t: T) -> AppHandlerBox {
    AppHandler_TO::from_value(Guarded(t), TD_Opaque)
}

// ---------------------------------------------------------------------------------------------
// Sink

pub trait MakeSink: Send + Sync + 'static {
    fn open(&self, start: &StreamStart) -> Result<Option<SinkBox>, PluginError>;
}

impl<T: MakeSink> SinkFactory for Guarded<T> {
    fn open(&self, start: &StreamStart) -> RResult<ROption<SinkBox>, PluginError> {
        guard(|| self.0.open(start).map(ROption::from))
    }
}

pub fn sink_factory_box<T: MakeSink>(t: T) -> SinkFactoryBox {
    SinkFactory_TO::from_value(Guarded(t), TD_Opaque)
}

pub trait Consume: Send + 'static {
    fn packet(&mut self, packet: &MediaPacket) -> Result<(), PluginError>;
    fn finish(&mut self) -> Result<(), PluginError>;
}

impl<T: Consume> Sink for Guarded<T> {
    fn packet(&mut self, packet: &MediaPacket) -> RResult<(), PluginError> {
        guard(|| self.0.packet(packet))
    }
    fn finish(&mut self) -> RResult<(), PluginError> {
        guard(|| self.0.finish())
    }
}

pub fn sink_box<T: Consume>(t: T) -> SinkBox {
    Sink_TO::from_value(Guarded(t), TD_Opaque)
}

// ---------------------------------------------------------------------------------------------
// Source

pub trait MakeSource: Send + Sync + 'static {
    fn app(&self) -> String;
    fn open(&self, request: &SourceOpen) -> Result<SourceBox, SourceError>;
}

impl<T: MakeSource> SourceFactory for Guarded<T> {
    fn app(&self) -> RString {
        guard_or(String::new(), || self.0.app()).into()
    }
    fn open(&self, request: &SourceOpen) -> RResult<SourceBox, SourceError_NE> {
        match guard(|| Ok(self.0.open(request))) {
            RResult::ROk(Ok(source)) => RResult::ROk(source),
            RResult::ROk(Err(e)) => RResult::RErr(SourceError_NE::new(e)),
            RResult::RErr(e) => RResult::RErr(SourceError_NE::new(SourceError::Failed(e))),
        }
    }
}

pub fn source_factory_box<T: MakeSource>(t: T) -> SourceFactoryBox {
    SourceFactory_TO::from_value(Guarded(t), TD_Opaque)
}

pub trait Produce: Send + 'static {
    fn duration_ms(&self) -> u64;
    fn next_packet(&mut self) -> Result<Option<MediaPacket>, PluginError>;
    fn seek(&mut self, position_ms: u64) -> Result<u64, PluginError>;
}

impl<T: Produce> Source for Guarded<T> {
    fn duration_ms(&self) -> u64 {
        guard_or(0, || self.0.duration_ms())
    }
    fn next_packet(&mut self) -> RResult<ROption<MediaPacket>, PluginError> {
        guard(|| self.0.next_packet().map(ROption::from))
    }
    fn seek(&mut self, position_ms: u64) -> RResult<u64, PluginError> {
        guard(|| self.0.seek(position_ms))
    }
}

pub fn source_box<T: Produce>(t: T) -> SourceBox {
    Source_TO::from_value(Guarded(t), TD_Opaque)
}

// ---------------------------------------------------------------------------------------------
// HTTP handler (since v2.2)

/// An HTTP handler: answers requests under its path prefixes on the HTTP frontend's listener.
/// Runs on host-managed blocking threads.
pub trait HandleHttp: Send + Sync + 'static {
    fn prefixes(&self) -> Vec<String>;
    fn handle(&self, call: &HttpCall) -> Result<HttpReply, PluginError>;
}

impl<T: HandleHttp> HttpHandler for Guarded<T> {
    fn prefixes(&self) -> RVec<RString> {
        guard_or(Vec::new(), || self.0.prefixes())
            .into_iter()
            .map(RString::from)
            .collect()
    }
    fn handle(&self, call: &HttpCall) -> RResult<HttpReply, PluginError> {
        guard(|| self.0.handle(call))
    }
}

pub fn http_handler_box<T: HandleHttp>(t: T) -> HttpHandlerBox {
    HttpHandler_TO::from_value(Guarded(t), TD_Opaque)
}

// ---------------------------------------------------------------------------------------------
// Observer (since v2.3)

/// An observer: told of publications, viewers and recordings on a host thread of its own
/// (see [`crate::v2::notice`]). It may block.
pub trait Observe: Send + Sync + 'static {
    fn notice(&self, notice: &Notice) -> Result<(), PluginError>;
}

impl<T: Observe> Observer for Guarded<T> {
    fn notice(&self, notice: &Notice) -> RResult<(), PluginError> {
        guard(|| self.0.notice(notice))
    }
}

pub fn observer_box<T: Observe>(t: T) -> ObserverBox {
    Observer_TO::from_value(Guarded(t), TD_Opaque)
}

/// Exports a plugin's root module (interface v2, at this crate's minor version).
///
/// ```ignore
/// fstream_abi::export_plugin! {
///     name: "auth-toml",
///     kinds: fstream_abi::kinds::AUTHENTICATOR,
///     init: init,
/// }
/// fn init(host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> { ... }
/// ```
#[macro_export]
macro_rules! export_plugin {
    (name: $name:expr, kinds: $kinds:expr, init: $init:path $(,)?) => {
        #[$crate::abi_stable::export_root_module]
        pub fn fstream_plugin_root_module() -> $crate::v2::PluginModV2_Ref {
            use $crate::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::v2::PluginModV2 {
                describe: __fstream_plugin_describe,
                init: __fstream_plugin_init,
            }
            .leak_into_prefix()
        }

        extern "C" fn __fstream_plugin_describe() -> $crate::v2::PluginDescriptor {
            $crate::v2::PluginDescriptor {
                name: $crate::abi_stable::std_types::RStr::from_str($name),
                version: $crate::abi_stable::std_types::RStr::from_str(env!("CARGO_PKG_VERSION")),
                interface: $crate::v2::INTERFACE,
                kinds: $kinds,
            }
        }

        extern "C" fn __fstream_plugin_init(
            host: $crate::v2::HostApiBox,
            ctx: $crate::v2::InitContext,
        ) -> $crate::abi_stable::std_types::RResult<
            $crate::v2::PluginInstance,
            $crate::v2::PluginError,
        > {
            $crate::sdk::run_init(host, ctx, $init)
        }
    };
}
