//! MPEG-TS (ISO/IEC 13818-1) for HLS: the FLV world's H.264 and AAC, muxed into 188-byte
//! transport packets. Pure: bytes in, bytes out.
//!
//! - [`packets`]: PAT, PMT and PES packetization, continuity counters, PCR, stuffing, CRC-32.
//! - [`h264`]: an AVC decoder configuration record and length-prefixed NAL units to Annex B.
//! - [`aac`]: an AudioSpecificConfig and raw AAC frames to ADTS.
//! - [`muxer`]: FLV audio and video tag data to TS, with the codec state that needs.

pub mod aac;
pub mod h264;
pub mod muxer;
pub mod packets;

pub use muxer::{TsMuxer, TsUnit};
pub use packets::TS_PACKET_LEN;
