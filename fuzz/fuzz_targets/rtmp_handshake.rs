//! core/media: the RTMP server and client handshakes (simple and digest).
//! The body is `fuzz_harness::media::rtmp_handshake` (tests/fuzz-harness), which `cargo test` also runs on
//! fuzz/seeds/rtmp_handshake and fuzz/regressions/rtmp_handshake.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::media::rtmp_handshake(data));
