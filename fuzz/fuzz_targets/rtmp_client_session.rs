//! plugins/rtmp: `RtmpClient`, the sans-IO client session of relays, fed arbitrary server bytes,
//! server messages, ticks, media to send and the host's partial writes; its output must always
//! decode as chunks and stay within its bounds.
//! The body is `fuzz_harness::session::rtmp_client::rtmp_client_session` (tests/fuzz-harness),
//! which `cargo test` also runs on fuzz/seeds/rtmp_client_session and
//! fuzz/regressions/rtmp_client_session.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_harness::session::rtmp_client::rtmp_client_session(data)
});
