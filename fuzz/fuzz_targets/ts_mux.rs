//! core/media: the MPEG-TS muxer fed publishers' video and audio tag data.
//! The body is `fuzz_harness::media::ts_mux` (tests/fuzz-harness), which `cargo test` also runs
//! on fuzz/seeds/ts_mux and fuzz/regressions/ts_mux.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::media::ts_mux(data));
