//! plugins/control-api: one request (method, path, query, headers, peer, token) against a
//! stats document with fuzzed names. The body is `fuzz_harness::control::control_api`
//! (tests/fuzz-harness), which `cargo test` also runs on fuzz/seeds/control_api and
//! fuzz/regressions/control_api.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::control::control_api(data));
