//! core/host: toml::from_str::<fstream_host::config::HostConfig> (mods/host.toml).
//! The body is `fuzz_harness::host::host_toml` (tests/fuzz-harness), which `cargo test` also runs on
//! fuzz/seeds/host_toml and fuzz/regressions/host_toml.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::host::host_toml(data));
