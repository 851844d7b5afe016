//! plugins/fstream: `FstreamSession` as a state machine (client bytes, host events, timers, EOF
//! in any order), checked against a model of its contract with the host.
//! The body is `fuzz_harness::session::fstream::fstream_session` (tests/fuzz-harness), which
//! `cargo test` also runs on fuzz/seeds/fstream_session and fuzz/regressions/fstream_session.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::session::fstream::fstream_session(data));
