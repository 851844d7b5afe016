//! core/media: ChunkDecoder (pieces vs whole, re-chunking) and the messages it yields.
//! The body is `fuzz_harness::media::rtmp_chunk` (tests/fuzz-harness), which `cargo test` also runs on
//! fuzz/seeds/rtmp_chunk and fuzz/regressions/rtmp_chunk.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::media::rtmp_chunk(data));
