//! plugins/http: the HTTP session driven by a script of bytes, statuses, timers and EOF.
//! The body is `fuzz_harness::http::http_session` (tests/fuzz-harness), which `cargo test` also
//! runs on fuzz/seeds/http_session and fuzz/regressions/http_session.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::http::http_session(data));
