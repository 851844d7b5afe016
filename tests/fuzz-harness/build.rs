//! The session targets link two plugin crates, rtmp and fstream, and each exports the same
//! `#[no_mangle]` root-module symbol for the host's loader (abi_stable's
//! `_1as_0lib_1header_0root_bmodule_bloader`). rustc keeps every exported symbol of its
//! dependencies alive, so a binary with both fails to link. This harness never loads a plugin
//! through that symbol, so letting the linker keep the first definition is harmless.
//! The same flag is set for the fuzz binaries by fuzz/build.rs.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        for kind in ["tests", "examples"] {
            println!("cargo:rustc-link-arg-{kind}=-Wl,--allow-multiple-definition");
        }
    }
}
