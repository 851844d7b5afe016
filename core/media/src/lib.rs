//! `fstream-media`: pure, sans-IO codecs for the media side of fstream-host.
//!
//! Nothing in this crate performs I/O, spawns threads or reads a clock: callers feed bytes in,
//! take bytes or typed values out, and pass time and randomness in explicitly. That keeps the
//! codecs usable from the RTMP frontend, the fstream plugin, the FLV recorder and VOD plugins,
//! and directly from fuzz targets.
//!
//! Every decoder works on untrusted input: malformed data yields a typed error, never a panic,
//! and every length or count is bounded by a limit the caller supplies.
//!
//! Modules:
//! - [`amf0`], [`amf3`]: Action Message Format value models, decoders and encoders.
//! - [`flv`]: FLV file/tag headers, an incremental demuxer, a muxer, tag classification,
//!   `onMetaData` helpers and a keyframe index scanner.
//! - [`rtmp`]: handshake state machines, chunk stream decoder/encoder and typed messages.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod amf0;
pub mod amf3;
pub mod flv;
pub mod fmp4;
mod limits;
mod reader;
pub mod rtmp;
pub mod ts;

#[cfg(test)]
mod fuzz_smoke;

pub use limits::AmfLimits;
