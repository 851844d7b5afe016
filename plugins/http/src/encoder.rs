//! The `http-flv` format: an FLV byte stream in HTTP/1.1 chunks, one chunk per tag, encoded
//! once per packet and shared by every viewer of a stream (the chunk framing depends only on
//! the tag). The `http-probe` format makes no bytes: a session subscribes with it to learn
//! whether a stream exists before it answers 200 or 404.

use fstream_abi::{payload_from_vec, sdk::Encode, MediaKind, MediaPacket, Payload, PluginError};
use fstream_media::flv::{live_tag, FlvHeader, TagType};

pub const FLV_FORMAT: &str = "http-flv";
pub const PROBE_FORMAT: &str = "http-probe";

/// `data` as one chunk of a chunked body.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.reserve(data.len() + 2);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

#[derive(Debug, Default)]
pub struct ChunkedFlv;

impl Encode for ChunkedFlv {
    fn preamble(&mut self, media: bool) -> Result<Option<Payload>, PluginError> {
        if !media {
            return Ok(None);
        }
        let header = FlvHeader::new(true, true).encode_with_first_tag_size();
        Ok(Some(payload_from_vec(chunk(&header))))
    }

    fn encode(&mut self, packet: &MediaPacket) -> Result<Option<Payload>, PluginError> {
        let tag_type = match packet.kind {
            // A raw byte stream is refused before a viewer subscribes (it is not FLV).
            MediaKind::Raw => return Ok(None),
            MediaKind::Audio => TagType::Audio,
            MediaKind::Video => TagType::Video,
            MediaKind::Script => TagType::Script,
        };
        // Script data at timestamp 0 (see `live_tag`).
        let tag = live_tag(tag_type, packet.timestamp, &packet.payload)
            .map_err(|e| PluginError::new(format!("cannot write an FLV tag: {e}")))?;
        Ok(Some(payload_from_vec(chunk(&tag))))
    }
}

#[derive(Debug, Default)]
pub struct Probe;

impl Encode for Probe {
    fn encode(&mut self, _packet: &MediaPacket) -> Result<Option<Payload>, PluginError> {
        Ok(None)
    }
}

/// Undoes the chunking (for tests): the body's bytes, and whether the last chunk came.
pub fn dechunk(mut b: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return Some((out, false));
        };
        let len = usize::from_str_radix(std::str::from_utf8(&b[..eol]).ok()?, 16).ok()?;
        if len == 0 {
            return Some((out, b.get(eol..eol + 4) == Some(b"\r\n\r\n")));
        }
        let data = b.get(eol + 2..eol + 2 + len)?;
        out.extend_from_slice(data);
        if b.get(eol + 2 + len..eol + 4 + len)? != b"\r\n" {
            return None;
        }
        b = &b[eol + 4 + len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstream_abi::{flags, payload_from};
    use fstream_media::flv::FlvDemuxer;

    #[test]
    fn packets_become_chunks_of_an_flv_stream() {
        let mut e = ChunkedFlv;
        assert!(e.preamble(false).unwrap().is_none());
        let mut body = e.preamble(true).unwrap().unwrap().to_vec();
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
                40,
                payload_from(&[0x17, 1, 0, 0, 0, 5]),
            ),
            MediaPacket::new(MediaKind::Audio, 0, 41, payload_from(&[0xAF, 1, 2])),
            MediaPacket::new(
                MediaKind::Script,
                flags::METADATA,
                9000,
                payload_from(b"\x02"),
            ),
        ];
        for p in &packets {
            body.extend_from_slice(&e.encode(p).unwrap().unwrap());
        }
        assert!(e
            .encode(&MediaPacket::raw(payload_from(b"x")))
            .unwrap()
            .is_none());
        body.extend_from_slice(crate::response::LAST_CHUNK);
        let (flv, ended) = dechunk(&body).unwrap();
        assert!(ended);
        let mut d = FlvDemuxer::new(1 << 20);
        d.push(&flv);
        for p in &packets {
            let t = d.next_tag().unwrap().unwrap().tag;
            assert_eq!(t.tag_type as u8, p.kind as u8);
            assert_eq!(&t.data[..], &p.payload[..]);
        }
        assert!(d.next_tag().unwrap().is_none());
        assert_eq!(d.buffered(), 0);
        assert!(Probe.encode(&packets[1]).unwrap().is_none());
    }
}
