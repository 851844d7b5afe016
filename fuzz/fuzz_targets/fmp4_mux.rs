//! core/media: the fMP4 muxer (and the parameter-set readers) fed publishers' video and audio tag data.
//! The body is `fuzz_harness::media::fmp4_mux` (tests/fuzz-harness), which `cargo test` also runs
//! on fuzz/seeds/fmp4_mux and fuzz/regressions/fmp4_mux.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::media::fmp4_mux(data));
