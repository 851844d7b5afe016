//! The `rtmp/CHUNK_SIZE/MSID` format: media packets as chunked RTMP messages, encoded once per
//! packet and shared by every player with the same chunk size and message stream id.
//!
//! Each packet becomes one complete message: a type 0 chunk header (absolute timestamp, length,
//! type, message stream id) and type 3 headers for the rest, so a message never depends on what
//! a particular player received before it (players join at different points, and a player too
//! slow for its queue skips ahead). Audio, video and script data travel on their own chunk
//! streams. The connection's chunk size must already be `CHUNK_SIZE` (the session sends Set
//! Chunk Size when the connect is accepted).

use bytes::Bytes;
use fstream_abi::{payload_from_vec, sdk::Encode, MediaKind, MediaPacket, Payload, PluginError};
use fstream_media::rtmp::{
    chunk::{ChunkEncoder, RtmpMessage},
    message::msg_type,
};

use crate::chunkio::{CSID_AUDIO, CSID_DATA, CSID_VIDEO};

const PREFIX: &str = "rtmp/";

/// The format of a play's first subscription, which only asks the hub how the stream stands
/// (waiting, live, recorded, missing, raw) before the player is told anything: its encoder turns
/// every packet into nothing, so no byte reaches the player ahead of `NetStream.Play.Start`.
pub const PROBE_FORMAT: &str = "rtmp-probe";

/// The encoder of [`PROBE_FORMAT`]: no bytes, ever.
#[derive(Debug, Default)]
pub struct ProbeEncoder;

impl Encode for ProbeEncoder {
    fn encode(&mut self, _packet: &MediaPacket) -> Result<Option<Payload>, PluginError> {
        Ok(None)
    }
}

/// The format name for a chunk size and message stream id.
pub fn format_name(chunk_size: u32, msid: u32) -> String {
    format!("{PREFIX}{chunk_size}/{msid}")
}

/// Parses a format name made by [`format_name`].
pub fn parse_format(format: &str) -> Option<(u32, u32)> {
    let (chunk, msid) = format.strip_prefix(PREFIX)?.split_once('/')?;
    let chunk: u32 = chunk.parse().ok()?;
    let msid: u32 = msid.parse().ok()?;
    (chunk > 0 && msid > 0).then_some((chunk, msid))
}

#[derive(Debug)]
pub struct RtmpEncoder {
    chunks: ChunkEncoder,
    msid: u32,
}

impl RtmpEncoder {
    pub fn new(format: &str) -> Result<Self, PluginError> {
        let bad = || PluginError::new(format!("the rtmp frontend has no format {format:?}"));
        let (chunk, msid) = parse_format(format).ok_or_else(bad)?;
        let chunks = ChunkEncoder::new(chunk).map_err(|_| bad())?;
        Ok(Self { chunks, msid })
    }
}

/// Lets a shared payload back a `Bytes` without copying it.
struct Shared(Payload);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Encode for RtmpEncoder {
    fn encode(&mut self, packet: &MediaPacket) -> Result<Option<Payload>, PluginError> {
        let (type_id, csid) = match packet.kind {
            // A raw byte stream has no RTMP form; the player was told StreamNotFound.
            MediaKind::Raw => return Ok(None),
            MediaKind::Audio => (msg_type::AUDIO, CSID_AUDIO),
            MediaKind::Video => (msg_type::VIDEO, CSID_VIDEO),
            MediaKind::Script => (msg_type::DATA_AMF0, CSID_DATA),
        };
        let len = packet.len();
        let msg = RtmpMessage::new(
            csid,
            packet.timestamp,
            type_id,
            self.msid,
            Bytes::from_owner(Shared(packet.payload.clone())),
        );
        let chunk = self.chunks.chunk_size() as usize;
        let mut out = Vec::with_capacity(len + 16 + len / chunk * 5);
        self.chunks
            .encode_message_into(&mut out, csid, &msg)
            .map_err(|e| {
                PluginError::new(format!("cannot chunk a {:?} packet: {e}", packet.kind))
            })?;
        Ok(Some(payload_from_vec(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstream_abi::{flags, payload_from};
    use fstream_media::rtmp::chunk::{ChunkDecoder, ChunkLimits};

    #[test]
    fn format_names_round_trip() {
        assert_eq!(format_name(4096, 1), "rtmp/4096/1");
        assert_eq!(parse_format("rtmp/4096/1"), Some((4096, 1)));
        for bad in [
            "rtmp/0/1",
            "rtmp/4096/0",
            "rtmp/4096",
            "flv",
            "rtmp/a/1",
            "rtmp/1/2/3",
        ] {
            assert_eq!(parse_format(bad), None, "{bad}");
            assert!(RtmpEncoder::new(bad).is_err());
        }
    }

    #[test]
    fn each_packet_is_one_self_contained_message() {
        let mut e = RtmpEncoder::new("rtmp/128/3").unwrap();
        let packets = [
            MediaPacket::new(
                MediaKind::Script,
                flags::METADATA,
                0,
                payload_from(b"\x02\x00\x0aonMetaData"),
            ),
            MediaPacket::new(
                MediaKind::Video,
                flags::KEYFRAME,
                40,
                payload_from(&[0x17; 300]),
            ),
            MediaPacket::new(
                MediaKind::Audio,
                0,
                0x0100_0000,
                payload_from(&[0xAF, 1, 2]),
            ),
        ];
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        d.set_chunk_size(128).unwrap();
        for p in &packets {
            let bytes = e.encode(p).unwrap().unwrap();
            // Type 0 header on the first chunk.
            assert_eq!(bytes[0] >> 6, 0);
            d.push(&bytes);
            let m = d.next_message().unwrap().unwrap();
            assert_eq!(m.type_id, p.kind as u8);
            assert_eq!(m.timestamp, p.timestamp);
            assert_eq!(m.stream_id, 3);
            assert_eq!(&m.payload[..], &p.payload[..]);
            assert_eq!(d.next_message().unwrap(), None);
        }
        let video = e.encode(&packets[1]).unwrap().unwrap();
        assert_eq!(
            video.len(),
            12 + 300 + 2,
            "two type 3 headers after the first chunk"
        );
        assert_eq!(video[0] & 0x3F, CSID_VIDEO as u8);
        assert!(e
            .encode(&MediaPacket::raw(payload_from(b"x")))
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_probe_format_makes_no_bytes() {
        assert_eq!(parse_format(PROBE_FORMAT), None);
        let mut e = ProbeEncoder;
        assert!(e.preamble(true).unwrap().is_none());
        for kind in [
            MediaKind::Script,
            MediaKind::Video,
            MediaKind::Audio,
            MediaKind::Raw,
        ] {
            let p = MediaPacket::new(kind, flags::KEYFRAME, 0, payload_from(&[0x17; 64]));
            assert!(e.encode(&p).unwrap().is_none(), "{kind:?}");
        }
    }
}
