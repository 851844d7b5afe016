//! core/media: FlvDemuxer (pieces vs whole, re-muxing) and the tag helpers.
//! The body is `fuzz_harness::flv::flv_tag` (tests/fuzz-harness), which `cargo test` also runs on
//! fuzz/seeds/flv_tag and fuzz/regressions/flv_tag.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::flv::flv_tag(data));
