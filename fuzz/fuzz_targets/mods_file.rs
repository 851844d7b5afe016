//! core/host: fstream_host::mods::parse (mods/main.mods).
//! The body is `fuzz_harness::host::mods_file` (tests/fuzz-harness), which `cargo test` also runs on
//! fuzz/seeds/mods_file and fuzz/regressions/mods_file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::host::mods_file(data));
