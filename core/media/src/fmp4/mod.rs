//! Fragmented MP4 (ISO/IEC 14496-12 movie fragments, as CMAF and HLS carry them): an init
//! segment with the tracks' decoder configurations, then fragments of samples. For the HLS
//! segments of codecs MPEG-TS does not carry here (HEVC and AV1 from Enhanced RTMP), and for
//! H.264 where an operator chooses it. Pure: bytes in, bytes out.
//!
//! - [`boxes`]: writing (and, for checks, reading) boxes.
//! - [`init`]: `ftyp` and `moov`: tracks and sample entries (`avc1`, `hvc1`, `av01`, `mp4a`).
//! - [`fragment`]: `moof` and `mdat`.
//! - [`dims`]: picture sizes from parameter sets and sequence headers; AV1's OBUs.
//! - [`muxer`]: FLV tag data to samples and fragments.

mod bits;
pub mod boxes;
pub mod dims;
pub mod fragment;
pub mod init;
pub mod muxer;

pub use muxer::{Fmp4Muxer, Fmp4Unit};
