//! RTMP chunk stream layer: [`ChunkDecoder`] reassembles messages from chunks, [`ChunkEncoder`]
//! splits messages into chunks.
//!
//! Chunk header = basic header (fmt 2 bits + chunk stream id in 1-3 bytes) + message header
//! (fmt 0: 11 bytes, 1: 7, 2: 3, 3: none) + optional 4-byte extended timestamp.

mod decoder;
mod encoder;

pub use decoder::ChunkDecoder;
pub use encoder::{encode_message, ChunkEncoder};

pub use super::RtmpMessage;

/// Chunk size both sides start with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest useful chunk size: messages are at most 2^24 - 1 bytes, so larger chunk sizes
/// behave the same and are clamped to this.
pub const MAX_EFFECTIVE_CHUNK_SIZE: u32 = 0xFF_FFFF;
/// Smallest chunk stream id (0 and 1 are basic header escape values).
pub const MIN_CSID: u32 = 2;
/// Largest chunk stream id (3-byte basic header).
pub const MAX_CSID: u32 = 65599;
/// Chunk stream id for protocol control messages.
pub const CSID_PROTOCOL_CONTROL: u32 = 2;
/// Largest message the 24-bit length field can express.
pub const MAX_MESSAGE_LEN: u32 = 0xFF_FFFF;
/// A 24-bit timestamp field of this value means "see the extended timestamp".
pub(crate) const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;

/// Caller-given bounds for a [`ChunkDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest chunk size the peer may set (after clamping to [`MAX_EFFECTIVE_CHUNK_SIZE`]).
    pub max_chunk_size: u32,
    /// Largest message length accepted from a header.
    pub max_message_size: u32,
    /// Most distinct chunk stream ids tracked per connection.
    pub max_chunk_streams: usize,
    /// Most payload bytes held in partially received messages across all chunk streams.
    pub max_pending_bytes: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_chunk_size: MAX_EFFECTIVE_CHUNK_SIZE,
            max_message_size: 8 * 1024 * 1024,
            max_chunk_streams: 64,
            max_pending_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Chunk layer errors. Decoder errors are fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("invalid chunk size {0} (must be 1..=2147483647)")]
    InvalidChunkSize(u32),
    #[error("chunk size {size} exceeds the limit of {limit}")]
    ChunkSizeTooLarge { size: u32, limit: u32 },
    #[error("chunk stream {csid}: fmt {fmt} chunk without a previous full header")]
    MissingPreviousHeader { csid: u32, fmt: u8 },
    #[error("chunk stream {csid}: fmt {fmt} header in the middle of a message")]
    InterleavedHeader { csid: u32, fmt: u8 },
    #[error("chunk stream {csid}: message of {size} bytes exceeds the limit of {limit}")]
    MessageTooLarge { csid: u32, size: u32, limit: u32 },
    #[error("more than {limit} chunk streams in use")]
    TooManyChunkStreams { limit: usize },
    #[error("partially received messages exceed the limit of {limit} bytes")]
    PendingBytesExceeded { limit: usize },
    #[error("chunk stream id {0} is outside 2..=65599")]
    InvalidCsid(u32),
    #[error("message payload of {len} bytes does not fit the 24-bit length field")]
    PayloadTooLarge { len: usize },
}
