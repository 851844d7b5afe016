//! core/fstream-wire: PreambleParser fed at once and in pieces, Action / Request parsing.
//! The body is `fuzz_harness::wire::fstream_preamble` (tests/fuzz-harness), which `cargo test` also runs on
//! fuzz/seeds/fstream_preamble and fuzz/regressions/fstream_preamble.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::wire::fstream_preamble(data));
