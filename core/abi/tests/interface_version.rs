//! abi_stable stamps this crate's version on every type of the interface and refuses a plugin
//! whose copy has another 0.y (or a lower 0.y.z) than the host's. Plugins built against v1 have
//! 0.1.0, so the crate keeps 0.1.0 for good; the product's version is free to move. The proof
//! with real old builds is tests/e2e/tests/compat.rs.

#[test]
fn the_interface_crate_keeps_the_version_v1_plugins_were_built_with() {
    assert_eq!(
        env!("CARGO_PKG_VERSION"),
        "0.1.0",
        "fstream-abi's version must stay 0.1.0: any other makes abi_stable refuse every plugin \
         built against v1 (see core/abi/CHANGELOG.md)"
    );
}

#[test]
fn the_v2_root_module_says_its_minor_version_in_its_header() {
    use fstream_abi::abi_stable::library::RootModule;
    let v = <fstream_abi::PluginModV2_Ref as RootModule>::VERSION_STRINGS;
    assert_eq!(
        v.to_string(),
        format!("2.{}.0", fstream_abi::INTERFACE_MINOR),
        "PluginModV2's VERSION_STRINGS must be \"2.<INTERFACE_MINOR>.0\": the loader reads the \
         plugin's interface version from it before it checks any layout"
    );
}
