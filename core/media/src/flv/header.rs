//! FLV file header, tag header and the owned tag type.

use bytes::Bytes;

use super::FlvError;
use crate::reader::{put_u24_be, Reader};

/// Size of the FLV file header (signature, version, flags, data offset).
pub const FLV_HEADER_LEN: usize = 9;
/// Size of each PreviousTagSize field.
pub const PREVIOUS_TAG_SIZE_LEN: usize = 4;
/// Size of an FLV tag header.
pub const TAG_HEADER_LEN: usize = 11;
/// Largest tag data size the 24-bit field can express.
pub const MAX_TAG_DATA_SIZE: u32 = 0xFF_FFFF;

const FLAG_AUDIO: u8 = 0x04;
const FLAG_VIDEO: u8 = 0x01;

/// The 9-byte FLV file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvHeader {
    pub version: u8,
    pub has_audio: bool,
    pub has_video: bool,
    /// Offset of the first PreviousTagSize field; 9 unless the header is extended.
    pub data_offset: u32,
}

impl FlvHeader {
    /// A version 1 header with the usual 9-byte size.
    pub fn new(has_audio: bool, has_video: bool) -> Self {
        FlvHeader {
            version: 1,
            has_audio,
            has_video,
            data_offset: FLV_HEADER_LEN as u32,
        }
    }

    pub fn encode(&self) -> [u8; FLV_HEADER_LEN] {
        let mut flags = 0;
        if self.has_audio {
            flags |= FLAG_AUDIO;
        }
        if self.has_video {
            flags |= FLAG_VIDEO;
        }
        let o = self.data_offset.to_be_bytes();
        [
            b'F',
            b'L',
            b'V',
            self.version,
            flags,
            o[0],
            o[1],
            o[2],
            o[3],
        ]
    }

    /// The header followed by PreviousTagSize0 (= 0): the 13 bytes every FLV file starts with.
    pub fn encode_with_first_tag_size(&self) -> [u8; FLV_HEADER_LEN + PREVIOUS_TAG_SIZE_LEN] {
        let mut out = [0u8; FLV_HEADER_LEN + PREVIOUS_TAG_SIZE_LEN];
        out[..FLV_HEADER_LEN].copy_from_slice(&self.encode());
        out
    }

    /// Parses the first 9 bytes. `max_data_offset` bounds how many extra header bytes a stream
    /// may ask a reader to skip.
    pub fn decode(bytes: &[u8], max_data_offset: u32) -> Result<Self, FlvError> {
        let mut r = Reader::new(bytes);
        let sig: [u8; 3] = r.array().map_err(|_| truncated(bytes.len()))?;
        if &sig != b"FLV" {
            return Err(FlvError::BadSignature { found: sig });
        }
        let version = r.u8().map_err(|_| truncated(bytes.len()))?;
        let flags = r.u8().map_err(|_| truncated(bytes.len()))?;
        let data_offset = r.u32_be().map_err(|_| truncated(bytes.len()))?;
        let max = max_data_offset.max(FLV_HEADER_LEN as u32);
        if !(FLV_HEADER_LEN as u32..=max).contains(&data_offset) {
            return Err(FlvError::BadDataOffset {
                offset: data_offset,
                max,
            });
        }
        Ok(FlvHeader {
            version,
            has_audio: flags & FLAG_AUDIO != 0,
            has_video: flags & FLAG_VIDEO != 0,
            data_offset,
        })
    }
}

fn truncated(available: usize) -> FlvError {
    FlvError::Truncated {
        what: "file header",
        needed: FLV_HEADER_LEN,
        available,
    }
}

/// The three FLV tag types; the values equal the RTMP message type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TagType {
    Audio = 8,
    Video = 9,
    Script = 18,
}

impl TagType {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            8 => Some(TagType::Audio),
            9 => Some(TagType::Video),
            18 => Some(TagType::Script),
            _ => None,
        }
    }

    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// The 11-byte header in front of each tag's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagHeader {
    pub tag_type: TagType,
    /// Data bytes following the header (24 bits on the wire).
    pub data_size: u32,
    /// Milliseconds, 32 bits: 24 low bits plus an extension byte on the wire.
    pub timestamp: u32,
    /// Always 0 in valid files.
    pub stream_id: u32,
}

impl TagHeader {
    pub fn encode(&self) -> Result<[u8; TAG_HEADER_LEN], FlvError> {
        if self.data_size > MAX_TAG_DATA_SIZE || self.stream_id > 0xFF_FFFF {
            return Err(FlvError::DataTooLong {
                len: self.data_size as usize,
            });
        }
        let mut out = Vec::with_capacity(TAG_HEADER_LEN);
        out.push(self.tag_type.as_u8());
        put_u24_be(&mut out, self.data_size);
        put_u24_be(&mut out, self.timestamp);
        out.push((self.timestamp >> 24) as u8);
        put_u24_be(&mut out, self.stream_id);
        let mut a = [0u8; TAG_HEADER_LEN];
        a.copy_from_slice(&out);
        Ok(a)
    }

    /// Parses a tag header; `offset` (its position in the stream) only labels errors.
    ///
    /// Rejects reserved bits, the filter (encryption) bit, unknown types and a non-zero stream id:
    /// in a byte stream these almost always mean we lost sync or are reading garbage.
    pub fn decode(bytes: &[u8], offset: u64) -> Result<Self, FlvError> {
        let mut r = Reader::new(bytes);
        let trunc = |_| FlvError::Truncated {
            what: "tag header",
            needed: TAG_HEADER_LEN,
            available: bytes.len(),
        };
        let byte = r.u8().map_err(trunc)?;
        let data_size = r.u24_be().map_err(trunc)?;
        let low = r.u24_be().map_err(trunc)?;
        let ext = r.u8().map_err(trunc)?;
        let stream_id = r.u24_be().map_err(trunc)?;
        if byte & 0x20 != 0 && byte & 0xC0 == 0 {
            return Err(FlvError::Filtered { offset });
        }
        let tag_type = TagType::from_u8(byte).ok_or(FlvError::BadTagType { byte, offset })?;
        if stream_id != 0 {
            return Err(FlvError::BadStreamId { stream_id, offset });
        }
        Ok(TagHeader {
            tag_type,
            data_size,
            timestamp: (u32::from(ext) << 24) | low,
            stream_id,
        })
    }
}

/// One complete FLV tag. `data` is shared (`Bytes`) so a tag can be fanned out without copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    pub tag_type: TagType,
    pub timestamp: u32,
    pub data: Bytes,
}

impl FlvTag {
    pub fn new(tag_type: TagType, timestamp: u32, data: impl Into<Bytes>) -> Self {
        FlvTag {
            tag_type,
            timestamp,
            data: data.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_header_round_trip() {
        let h = FlvHeader::new(true, true);
        let b = h.encode();
        assert_eq!(b, [b'F', b'L', b'V', 1, 0x05, 0, 0, 0, 9]);
        assert_eq!(FlvHeader::decode(&b, 9), Ok(h));
        let v_only = FlvHeader::new(false, true);
        assert_eq!(FlvHeader::decode(&v_only.encode(), 9), Ok(v_only));
        assert_eq!(&h.encode_with_first_tag_size()[9..], &[0, 0, 0, 0]);
    }

    #[test]
    fn file_header_errors() {
        assert!(matches!(
            FlvHeader::decode(b"FL", 9),
            Err(FlvError::Truncated { .. })
        ));
        assert_eq!(
            FlvHeader::decode(b"GIF89a...", 9),
            Err(FlvError::BadSignature { found: *b"GIF" })
        );
        assert!(matches!(
            FlvHeader::decode(&[b'F', b'L', b'V', 1, 5, 0, 0, 0, 5], 9),
            Err(FlvError::BadDataOffset { offset: 5, .. })
        ));
        assert!(matches!(
            FlvHeader::decode(&[b'F', b'L', b'V', 1, 5, 0xFF, 0, 0, 0], 1024),
            Err(FlvError::BadDataOffset { .. })
        ));
        assert!(FlvHeader::decode(&[b'F', b'L', b'V', 1, 5, 0, 0, 0, 20], 1024).is_ok());
    }

    #[test]
    fn tag_header_round_trip_with_extended_timestamp() {
        let h = TagHeader {
            tag_type: TagType::Video,
            data_size: 0x01_0203,
            timestamp: 0x1234_5678,
            stream_id: 0,
        };
        let b = h.encode().unwrap();
        assert_eq!(b, [9, 0x01, 0x02, 0x03, 0x34, 0x56, 0x78, 0x12, 0, 0, 0]);
        assert_eq!(TagHeader::decode(&b, 0), Ok(h));
    }

    #[test]
    fn tag_header_errors() {
        let good = [8u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        assert!(TagHeader::decode(&good, 0).is_ok());
        assert!(matches!(
            TagHeader::decode(&good[..10], 0),
            Err(FlvError::Truncated { .. })
        ));
        let mut b = good;
        b[0] = 0x07;
        assert_eq!(
            TagHeader::decode(&b, 42),
            Err(FlvError::BadTagType {
                byte: 7,
                offset: 42
            })
        );
        b[0] = 0x28;
        assert_eq!(
            TagHeader::decode(&b, 0),
            Err(FlvError::Filtered { offset: 0 })
        );
        b = good;
        b[10] = 1;
        assert!(matches!(
            TagHeader::decode(&b, 0),
            Err(FlvError::BadStreamId { stream_id: 1, .. })
        ));
        let big = TagHeader {
            tag_type: TagType::Audio,
            data_size: MAX_TAG_DATA_SIZE + 1,
            timestamp: 0,
            stream_id: 0,
        };
        assert!(big.encode().is_err());
    }
}
