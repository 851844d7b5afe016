//! The root module every plugin exports.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_types::VersionStrings,
    std_types::{ROption, RResult, RStr, RString},
    StableAbi,
};

use super::{
    AppHandlerBox, AuthenticatorBox, FrontendFactoryBox, HostApiBox, PluginError, SinkFactoryBox,
    SourceFactoryBox,
};

/// Bits of [`PluginDescriptor::kinds`].
pub mod kinds {
    pub const AUTHENTICATOR: u32 = 1;
    pub const FRONTEND: u32 = 2;
    pub const APP_HANDLER: u32 = 4;
    pub const SINK: u32 = 8;
    pub const SOURCE: u32 = 16;

    /// Human names of the kinds in `mask`, for messages and `--check`.
    pub fn names(mask: u32) -> Vec<&'static str> {
        let all = [
            (AUTHENTICATOR, "authenticator"),
            (FRONTEND, "frontend"),
            (APP_HANDLER, "app-handler"),
            (SINK, "sink"),
            (SOURCE, "source"),
        ];
        all.iter()
            .filter(|(bit, _)| mask & bit != 0)
            .map(|(_, n)| *n)
            .collect()
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
    /// The kinds it provides, see [`kinds`].
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
}

/// The objects a plugin provides; each field matches a bit of its descriptor's kinds.
#[repr(C)]
#[derive(StableAbi)]
pub struct PluginInstance {
    pub authenticator: ROption<AuthenticatorBox>,
    pub frontend: ROption<FrontendFactoryBox>,
    pub app_handler: ROption<AppHandlerBox>,
    pub sink: ROption<SinkFactoryBox>,
    pub source: ROption<SourceFactoryBox>,
}

impl PluginInstance {
    pub fn empty() -> Self {
        Self {
            authenticator: ROption::RNone,
            frontend: ROption::RNone,
            app_handler: ROption::RNone,
            sink: ROption::RNone,
            source: ROption::RNone,
        }
    }

    /// The kinds actually provided, as [`kinds`] bits.
    pub fn kinds(&self) -> u32 {
        let mut k = 0;
        if self.authenticator.is_some() {
            k |= kinds::AUTHENTICATOR;
        }
        if self.frontend.is_some() {
            k |= kinds::FRONTEND;
        }
        if self.app_handler.is_some() {
            k |= kinds::APP_HANDLER;
        }
        if self.sink.is_some() {
            k |= kinds::SINK;
        }
        if self.source.is_some() {
            k |= kinds::SOURCE;
        }
        k
    }
}

/// The root module of interface version 1.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModV1_Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginModV1 {
    pub describe: extern "C" fn() -> PluginDescriptor,
    /// Parses settings and builds the plugin's objects. Never panics across the boundary (the
    /// [`crate::export_plugin!`] macro catches it).
    #[sabi(last_prefix_field)]
    pub init:
        extern "C" fn(host: HostApiBox, ctx: InitContext) -> RResult<PluginInstance, PluginError>,
}

impl RootModule for PluginModV1_Ref {
    declare_root_module_statics! {PluginModV1_Ref}
    const BASE_NAME: &'static str = "fstream_plugin";
    const NAME: &'static str = "fstream_plugin";
    /// Fixed per interface version, independent of this crate's version: the layout check is
    /// what guards compatibility, and a `v2` root module will carry "2.0.0".
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}
