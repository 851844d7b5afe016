//! FLV error type.

use crate::amf0::Amf0Error;

/// Errors from FLV parsing and writing. Offsets are byte positions in the FLV stream.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlvError {
    #[error("not an FLV stream: signature bytes {found:02x?}")]
    BadSignature { found: [u8; 3] },
    #[error("FLV header data offset {offset} is outside 9..={max}")]
    BadDataOffset { offset: u32, max: u32 },
    #[error("truncated FLV {what}: {needed} bytes needed, {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("invalid FLV tag type byte 0x{byte:02x} at offset {offset}")]
    BadTagType { byte: u8, offset: u64 },
    #[error("filtered (encrypted) FLV tag at offset {offset} is not supported")]
    Filtered { offset: u64 },
    #[error("FLV tag at offset {offset} has stream id {stream_id}, expected 0")]
    BadStreamId { stream_id: u32, offset: u64 },
    #[error("FLV tag at offset {offset} has {size} data bytes, over the limit of {limit}")]
    TagTooLarge { size: u32, limit: u32, offset: u64 },
    #[error("FLV tag data of {len} bytes does not fit the 24-bit size field")]
    DataTooLong { len: usize },
    #[error("FLV script data: {0}")]
    Amf0(#[from] Amf0Error),
    #[error("FLV script data does not start with a string name")]
    ScriptNameMissing,
}
