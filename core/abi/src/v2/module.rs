//! The root module every v2 plugin exports.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString, RVec},
    StableAbi,
};

use super::{
    kinds, AppHandlerBox, AuthenticatorBox, Extensions, FrontendFactoryBox, HostApiBox,
    PluginError, SinkFactoryBox, SourceFactoryBox,
};

/// An interface version: `major` changes never (v3 would be a new root module); `minor`
/// counts the additions since `major.0`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceVersion {
    pub major: u16,
    pub minor: u16,
}

impl std::fmt::Display for InterfaceVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

/// What a plugin says about itself before it is initialised.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct PluginDescriptor {
    /// The name operators write in `main.mods` (`auth-ini`).
    pub name: RStr<'static>,
    /// The plugin's own version.
    pub version: RStr<'static>,
    /// The interface version it was built against.
    pub interface: InterfaceVersion,
    /// The kinds it provides, as [`kinds`] bits.
    pub kinds: u32,
}

/// What the host passes to a plugin's `init`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct InitContext {
    /// The name the plugin was loaded under.
    pub name: RString,
    /// The text of `mods/<name>.toml`, empty when there is none.
    pub settings: RString,
    /// The path of that file, for messages.
    pub settings_path: RString,
    /// The server root (holds `mods/`, `users/`); relative paths in settings are relative to it.
    pub root: RString,
    /// The host's interface version (also [`super::HostApi::interface`]).
    pub host_interface: InterfaceVersion,
    pub ext: Extensions,
}

/// One object a plugin provides. A later v2.x adds kinds as new variants.
#[repr(u8)]
#[derive(StableAbi)]
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Send, Sync))))]
#[non_exhaustive]
pub enum PluginObject {
    Authenticator(AuthenticatorBox),
    Frontend(FrontendFactoryBox),
    AppHandler(AppHandlerBox),
    Sink(SinkFactoryBox),
    Source(SourceFactoryBox),
    /// Since v2.2.
    HttpHandler(super::HttpHandlerBox),
    /// Since v2.3.
    Observer(super::ObserverBox),
}

impl PluginObject {
    /// The object's [`kinds`] bit.
    pub fn kind(&self) -> u32 {
        match self {
            PluginObject::Authenticator(_) => kinds::AUTHENTICATOR,
            PluginObject::Frontend(_) => kinds::FRONTEND,
            PluginObject::AppHandler(_) => kinds::APP_HANDLER,
            PluginObject::Sink(_) => kinds::SINK,
            PluginObject::Source(_) => kinds::SOURCE,
            PluginObject::HttpHandler(_) => kinds::HTTP_HANDLER,
            PluginObject::Observer(_) => kinds::OBSERVER,
        }
    }
}

/// The objects a plugin provides; their kinds must match its descriptor's.
#[repr(C)]
#[derive(StableAbi, Default)]
pub struct PluginInstance {
    pub objects: RVec<PluginObject_NE>,
}

impl PluginInstance {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn with(mut self, object: PluginObject) -> Self {
        self.objects.push(PluginObject_NE::new(object));
        self
    }

    /// The kinds provided, as [`kinds`] bits; objects of kinds this build does not know count
    /// as none.
    pub fn kinds(&self) -> u32 {
        self.objects
            .iter()
            .filter_map(|o| o.as_enum().ok())
            .fold(0, |k, o| k | o.kind())
    }
}

/// The root module of interface version 2. Functions added in v2.x go after `init`.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModV2_Ref)))]
#[sabi(missing_field(option))]
pub struct PluginModV2 {
    pub describe: extern "C" fn() -> PluginDescriptor,
    /// Parses settings and builds the plugin's objects. Never panics across the boundary (the
    /// [`crate::export_plugin!`] macro catches it).
    #[sabi(last_prefix_field)]
    pub init:
        extern "C" fn(host: HostApiBox, ctx: InitContext) -> RResult<PluginInstance, PluginError>,
}

/// The version strings of a v2 root module: `2.MINOR.0`, so the loader can tell the interface
/// version from the library header before it checks any layout.
const fn version_strings() -> VersionStrings {
    // Kept in step with `INTERFACE_MINOR` by `tests/interface_version.rs`.
    VersionStrings::new("2.3.0")
}

impl RootModule for PluginModV2_Ref {
    declare_root_module_statics! {PluginModV2_Ref}
    const BASE_NAME: &'static str = "fstream_plugin";
    const NAME: &'static str = "fstream_plugin";
    const VERSION_STRINGS: VersionStrings = version_strings();
}
