//! plugins/rtmp: `RtmpSession` as a state machine (client bytes, host events, timers, EOF in any
//! order), checked against a model of its contract with the host.
//! The body is `fuzz_harness::session::rtmp::rtmp_session` (tests/fuzz-harness), which `cargo test`
//! also runs on fuzz/seeds/rtmp_session and fuzz/regressions/rtmp_session.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::session::rtmp::rtmp_session(data));
