//! The bodies of the fuzz targets in `fuzz/fuzz_targets/`, one public function per target.
//!
//! Each function takes the fuzzer's bytes and panics only when a decoder panics or breaks a
//! property that must hold for every input:
//!
//! - feeding a stream in pieces gives the same result as feeding it at once (all our decoders
//!   are incremental, and the network splits reads anywhere);
//! - what was decoded re-encodes, and the encoding decodes to the same thing;
//! - offsets and lengths a decoder reports point inside its input;
//! - a protocol session (`session`) keeps its contract with the host whatever bytes and events
//!   arrive, in whatever order.
//!
//! The fuzz crate (`fuzz/`, its own workspace, run with `fuzz/run.sh`) calls these functions;
//! `tests/replay.rs` runs the same functions over `fuzz/seeds/TARGET/*` and every crash input
//! kept in `fuzz/regressions/TARGET/*`, so CI replays them with a plain `cargo test`.

pub mod control;
pub mod flv;
#[cfg(feature = "host")]
pub mod host;
pub mod http;
pub mod media;
pub mod session;
pub mod wire;

/// A target's body: the fuzzer's bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// Every target, by the name of its fuzz binary and regression directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("fstream_preamble", wire::fstream_preamble),
    ("rtmp_handshake", media::rtmp_handshake),
    ("rtmp_chunk", media::rtmp_chunk),
    ("amf0", media::amf0),
    ("amf3", media::amf3),
    ("flv_tag", flv::flv_tag),
    ("rtmp_session", session::rtmp::rtmp_session),
    (
        "rtmp_client_session",
        session::rtmp_client::rtmp_client_session,
    ),
    ("fstream_session", session::fstream::fstream_session),
    ("http_session", http::http_session),
    ("control_api", control::control_api),
    ("ts_mux", media::ts_mux),
    ("fmp4_mux", media::fmp4_mux),
    #[cfg(feature = "host")]
    ("mods_file", host::mods_file),
    #[cfg(feature = "host")]
    ("host_toml", host::host_toml),
];

/// Splits off a leading control byte the targets use to vary piece sizes and limits.
pub(crate) fn control(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&c, rest)) => (c, rest),
        None => (0, data),
    }
}
