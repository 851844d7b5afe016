//! The `fstream` format: what a watcher receives.
//!
//! Raw packets are the broadcast's bytes and pass through unchanged (the shared payload, no
//! copy). Media packets (an RTMP publish, or an FLV broadcast) become an FLV byte stream: the
//! file header as the preamble, then one tag per packet.

use fstream_abi::{payload_from_vec, sdk::Encode, MediaKind, MediaPacket, Payload, PluginError};
use fstream_media::flv::{live_tag, FlvHeader, TagType};

/// The format name watch sessions subscribe with.
pub const FORMAT: &str = "fstream";

#[derive(Debug, Default)]
pub struct FstreamEncoder;

impl Encode for FstreamEncoder {
    fn preamble(&mut self, media: bool) -> Result<Option<Payload>, PluginError> {
        if !media {
            return Ok(None);
        }
        let header = FlvHeader::new(true, true).encode_with_first_tag_size();
        Ok(Some(payload_from_vec(header.to_vec())))
    }

    fn encode(&mut self, packet: &MediaPacket) -> Result<Option<Payload>, PluginError> {
        let tag_type = match packet.kind {
            MediaKind::Raw => return Ok(Some(packet.payload.clone())),
            MediaKind::Audio => TagType::Audio,
            MediaKind::Video => TagType::Video,
            MediaKind::Script => TagType::Script,
        };
        // Script data at timestamp 0 (see `live_tag`).
        let tag = live_tag(tag_type, packet.timestamp, &packet.payload)
            .map_err(|e| PluginError::new(format!("cannot write an FLV tag: {e}")))?;
        Ok(Some(payload_from_vec(tag)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstream_abi::{flags, payload_from};
    use fstream_media::flv::FlvDemuxer;

    #[test]
    fn raw_passes_through_without_a_copy() {
        let mut e = FstreamEncoder;
        assert!(e.preamble(false).unwrap().is_none());
        let p = MediaPacket::raw(payload_from(b"\x47abc"));
        let got = e.encode(&p).unwrap().unwrap();
        assert!(std::ptr::eq(&*got, &*p.payload));
    }

    #[test]
    fn media_becomes_an_flv_stream() {
        let mut e = FstreamEncoder;
        let mut bytes = e.preamble(true).unwrap().unwrap().to_vec();
        assert_eq!(&bytes[..], b"FLV\x01\x05\0\0\0\x09\0\0\0\0");
        let packets = [
            MediaPacket::new(
                MediaKind::Video,
                flags::SEQUENCE_HEADER,
                0,
                payload_from(&[0x17, 0, 0, 0, 0, 1]),
            ),
            MediaPacket::new(
                MediaKind::Video,
                flags::KEYFRAME,
                0x0123_4567,
                payload_from(&[0x17, 1, 0, 0, 0, 5]),
            ),
            MediaPacket::new(MediaKind::Audio, 0, 7, payload_from(&[0xAF, 1, 2])),
            // Mid-stream metadata (a new publisher's) is written at timestamp 0.
            MediaPacket::new(
                MediaKind::Script,
                flags::METADATA,
                9000,
                payload_from(b"\x02"),
            ),
        ];
        for p in &packets {
            bytes.extend_from_slice(&e.encode(p).unwrap().unwrap());
        }
        let mut d = FlvDemuxer::new(1 << 20);
        d.push(&bytes);
        for p in &packets {
            let t = d.next_tag().unwrap().unwrap().tag;
            assert_eq!(t.tag_type as u8, p.kind as u8);
            let ts = if p.kind == MediaKind::Script {
                0
            } else {
                p.timestamp
            };
            assert_eq!(t.timestamp, ts);
            assert_eq!(&t.data[..], &p.payload[..]);
        }
        assert!(d.next_tag().unwrap().is_none());
        assert_eq!(d.buffered(), 0);
        // The last PreviousTagSize: header and one data byte.
        assert_eq!(&bytes[bytes.len() - 4..], &12u32.to_be_bytes());
    }
}
