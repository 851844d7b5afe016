//! The session targets link two plugin crates (rtmp and fstream) that each export abi_stable's
//! `#[no_mangle]` root-module symbol; rustc keeps every exported symbol of a dependency, so the
//! fuzz binaries would not link. No plugin is ever loaded through that symbol here, so the
//! linker may keep the first definition (see tests/fuzz-harness/build.rs for the tests).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,--allow-multiple-definition");
    }
}
