//! core/media: AMF3 decode / encode fixed point, the AMF0 avmplus switch, type-17 commands.
//! The body is `fuzz_harness::media::amf3` (tests/fuzz-harness), which `cargo test` also runs on
//! fuzz/seeds/amf3 and fuzz/regressions/amf3.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::media::amf3(data));
