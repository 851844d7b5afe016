//! core/media: AMF0 decode / encode fixed point, commands, data messages, onMetaData.
//! The body is `fuzz_harness::media::amf0` (tests/fuzz-harness), which `cargo test` also runs on
//! fuzz/seeds/amf0 and fuzz/regressions/amf0.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::media::amf0(data));
