//! Chunk stream encoder.
//!
//! Every message starts with a fmt 0 chunk and continues with fmt 3 chunks, so the encoded bytes
//! depend only on the message, the chunk stream id and the chunk size: a media message can be
//! encoded once and the same buffer written to every player (no per-player header state).

use super::{
    ChunkError, RtmpMessage, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP, MAX_CSID,
    MAX_EFFECTIVE_CHUNK_SIZE, MAX_MESSAGE_LEN, MIN_CSID,
};
use crate::reader::put_u24_be;

/// Splits messages into chunks of a fixed outgoing chunk size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEncoder {
    chunk_size: u32,
}

impl Default for ChunkEncoder {
    /// The protocol's initial chunk size, 128.
    fn default() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

fn valid_chunk_size(size: u32) -> Result<u32, ChunkError> {
    if size == 0 || size > 0x7FFF_FFFF {
        return Err(ChunkError::InvalidChunkSize(size));
    }
    Ok(size.min(MAX_EFFECTIVE_CHUNK_SIZE))
}

fn put_basic_header(out: &mut Vec<u8>, fmt: u8, csid: u32) {
    let f = fmt << 6;
    match csid {
        0..=63 => out.push(f | csid as u8),
        64..=319 => out.extend_from_slice(&[f, (csid - 64) as u8]),
        _ => {
            let v = csid - 64;
            out.extend_from_slice(&[f | 1, (v & 0xFF) as u8, (v >> 8) as u8]);
        }
    }
}

impl ChunkEncoder {
    /// An encoder with `chunk_size` (the value we announced to the peer with Set Chunk Size).
    pub fn new(chunk_size: u32) -> Result<Self, ChunkError> {
        Ok(ChunkEncoder {
            chunk_size: valid_chunk_size(chunk_size)?,
        })
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the chunk size; send the Set Chunk Size message (encoded with the old size) first.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        self.chunk_size = valid_chunk_size(size)?;
        Ok(())
    }

    /// Appends `msg` as chunks on chunk stream `csid` (which overrides `msg.csid`, so one message
    /// can be sent on whatever chunk stream each connection uses).
    pub fn encode_message_into(
        &self,
        out: &mut Vec<u8>,
        csid: u32,
        msg: &RtmpMessage,
    ) -> Result<(), ChunkError> {
        if !(MIN_CSID..=MAX_CSID).contains(&csid) {
            return Err(ChunkError::InvalidCsid(csid));
        }
        let len = msg.payload.len();
        if len > MAX_MESSAGE_LEN as usize {
            return Err(ChunkError::PayloadTooLarge { len });
        }
        let extended = msg.timestamp >= EXTENDED_TIMESTAMP;
        let chunk = self.chunk_size as usize;
        let chunks = len.div_ceil(chunk).max(1);
        let ext_len = if extended { 4 } else { 0 };
        out.reserve(len + 11 + chunks * (3 + ext_len));

        put_basic_header(out, 0, csid);
        put_u24_be(
            out,
            if extended {
                EXTENDED_TIMESTAMP
            } else {
                msg.timestamp
            },
        );
        put_u24_be(out, len as u32);
        out.push(msg.type_id);
        out.extend_from_slice(&msg.stream_id.to_le_bytes());
        if extended {
            out.extend_from_slice(&msg.timestamp.to_be_bytes());
        }
        for (i, piece) in msg.payload.chunks(chunk).enumerate() {
            if i > 0 {
                put_basic_header(out, 3, csid);
                if extended {
                    out.extend_from_slice(&msg.timestamp.to_be_bytes());
                }
            }
            out.extend_from_slice(piece);
        }
        Ok(())
    }

    /// Encodes one message into a new buffer (encode once, share among all players).
    pub fn encode_message(&self, csid: u32, msg: &RtmpMessage) -> Result<Vec<u8>, ChunkError> {
        let mut out = Vec::new();
        self.encode_message_into(&mut out, csid, msg)?;
        Ok(out)
    }
}

/// Encodes one message with `chunk_size` on `csid` into a new buffer.
pub fn encode_message(
    chunk_size: u32,
    csid: u32,
    msg: &RtmpMessage,
) -> Result<Vec<u8>, ChunkError> {
    ChunkEncoder::new(chunk_size)?.encode_message(csid, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_bytes_two_chunks() {
        let m = RtmpMessage::new(3, 0x10203, 20, 1, vec![7u8; 130]);
        let b = encode_message(128, 3, &m).unwrap();
        let mut expect = vec![0x03, 0x01, 0x02, 0x03, 0x00, 0x00, 130, 20, 1, 0, 0, 0];
        expect.extend_from_slice(&[7u8; 128]);
        expect.push(0xC3);
        expect.extend_from_slice(&[7u8; 2]);
        assert_eq!(b, expect);
    }

    #[test]
    fn empty_payload_and_errors() {
        let m = RtmpMessage::new(3, 0, 20, 0, vec![]);
        assert_eq!(encode_message(128, 3, &m).unwrap().len(), 12);
        assert_eq!(encode_message(128, 1, &m), Err(ChunkError::InvalidCsid(1)));
        assert_eq!(
            encode_message(128, 65600, &m),
            Err(ChunkError::InvalidCsid(65600))
        );
        assert_eq!(
            encode_message(0, 3, &m),
            Err(ChunkError::InvalidChunkSize(0))
        );
        let big = RtmpMessage::new(3, 0, 9, 0, vec![0u8; MAX_MESSAGE_LEN as usize + 1]);
        assert!(matches!(
            encode_message(MAX_EFFECTIVE_CHUNK_SIZE, 3, &big),
            Err(ChunkError::PayloadTooLarge { .. })
        ));
        let mut e = ChunkEncoder::default();
        assert_eq!(e.chunk_size(), 128);
        e.set_chunk_size(4096).unwrap();
        assert_eq!(e.chunk_size(), 4096);
        assert!(e.set_chunk_size(0).is_err());
    }

    #[test]
    fn exact_multiple_of_chunk_size_has_no_empty_tail() {
        let m = RtmpMessage::new(4, 0, 8, 1, vec![1u8; 256]);
        let b = encode_message(128, 4, &m).unwrap();
        assert_eq!(b.len(), 12 + 128 + 1 + 128);
    }
}
