//! Exports a root module that claims interface v2.0 but has another layout (as a plugin built
//! against a changed, unreleased v2 would), so the loader must refuse it naming the difference.
#![allow(non_local_definitions, non_camel_case_types)]

use abi_stable::{
    declare_root_module_statics, export_root_module, library::RootModule,
    prefix_type::PrefixTypeTrait, sabi_types::VersionStrings, StableAbi,
};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = OtherMod_Ref)))]
#[sabi(missing_field(panic))]
pub struct OtherMod {
    #[sabi(last_prefix_field)]
    pub describe: extern "C" fn() -> u32,
}

impl RootModule for OtherMod_Ref {
    declare_root_module_statics! {OtherMod_Ref}
    const BASE_NAME: &'static str = "fstream_plugin";
    const NAME: &'static str = "fstream_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("2.0.0");
}

extern "C" fn describe() -> u32 {
    1
}

#[export_root_module]
pub fn root() -> OtherMod_Ref {
    OtherMod { describe }.leak_into_prefix()
}
