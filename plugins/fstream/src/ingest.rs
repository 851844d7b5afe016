//! Turns a broadcaster's bytes into packets for the hub.
//!
//! The first bytes decide the mode: an FLV header (`FLV`, version 1) makes the broadcast a media
//! stream, parsed tag by tag; anything else stays raw, forwarded in whole `bufsize` chunks (or
//! read by read when `bufsize` is 0).

use fstream_abi::{flags, payload_from, payload_from_vec, MediaKind, MediaPacket};
use fstream_media::flv::{
    classify_audio, classify_video, strip_set_data_frame, FlvDemuxer, FlvError, FlvTag, TagType,
    MAX_TAG_DATA_SIZE, ON_METADATA,
};

/// The start of an FLV stream that selects the FLV mode: the signature and version 1.
const FLV_MAGIC: &[u8; 4] = b"FLV\x01";

pub enum Ingest {
    /// Fewer bytes than needed to tell FLV from raw; they are kept.
    Detect {
        seen: Vec<u8>,
        bufsize: usize,
    },
    Raw(RawChunker),
    Flv(FlvIngest),
}

impl Ingest {
    pub fn new(bufsize: usize) -> Self {
        Ingest::Detect {
            seen: Vec::new(),
            bufsize,
        }
    }

    /// Feeds bytes; complete packets go to `emit` in order.
    pub fn push(
        &mut self,
        data: &[u8],
        emit: &mut impl FnMut(MediaPacket),
    ) -> Result<(), FlvError> {
        if let Ingest::Detect { seen, bufsize } = self {
            let bufsize = *bufsize;
            let have = seen.len() + data.len();
            if have < FLV_MAGIC.len() {
                // Still possibly FLV: wait for more unless it already cannot be.
                let prefix_ok = seen.iter().chain(data).zip(FLV_MAGIC).all(|(a, b)| a == b);
                if prefix_ok {
                    seen.extend_from_slice(data);
                    return Ok(());
                }
            }
            let seen = std::mem::take(seen);
            let is_flv = seen
                .iter()
                .chain(data)
                .take(FLV_MAGIC.len())
                .eq(FLV_MAGIC.iter());
            *self = if is_flv {
                if bufsize > 0 {
                    tracing::debug!(bufsize, "FLV broadcast: bufsize is ignored");
                }
                tracing::debug!("the broadcast is FLV: publishing media packets");
                Ingest::Flv(FlvIngest::new())
            } else {
                tracing::debug!(bufsize, "the broadcast is raw bytes");
                Ingest::Raw(RawChunker::new(bufsize))
            };
            if !seen.is_empty() {
                self.push(&seen, emit)?;
            }
        }
        match self {
            Ingest::Detect { .. } => Ok(()),
            Ingest::Raw(r) => {
                if let Some(p) = r.push(data) {
                    emit(p);
                }
                Ok(())
            }
            Ingest::Flv(f) => f.push(data, emit),
        }
    }

    /// The broadcast ended: bytes still held that form a packet of their own go out (a raw
    /// stream too short to tell its kind). An incomplete chunk or FLV tag is dropped.
    pub fn finish(&mut self, emit: &mut impl FnMut(MediaPacket)) {
        match self {
            Ingest::Detect { seen, .. } => {
                if !seen.is_empty() {
                    emit(MediaPacket::raw(payload_from(seen)));
                    seen.clear();
                }
            }
            Ingest::Raw(r) => {
                if !r.rest.is_empty() {
                    tracing::debug!(
                        bytes = r.rest.len(),
                        bufsize = r.size,
                        "dropped the last incomplete chunk"
                    );
                }
            }
            Ingest::Flv(f) => {
                if f.demux.buffered() > 0 {
                    tracing::debug!(
                        bytes = f.demux.buffered(),
                        "dropped an incomplete FLV tag at the end"
                    );
                }
            }
        }
    }
}

/// Raw bytes to packets: with `size` N > 0 only whole multiples of N go out, the remainder waits
/// for the next read; with N = 0 every read is a packet.
pub struct RawChunker {
    size: usize,
    rest: Vec<u8>,
}

impl RawChunker {
    pub fn new(size: usize) -> Self {
        Self {
            size,
            rest: Vec::new(),
        }
    }

    pub fn push(&mut self, data: &[u8]) -> Option<MediaPacket> {
        if data.is_empty() {
            return None;
        }
        if self.size == 0 {
            return Some(MediaPacket::raw(payload_from(data)));
        }
        let total = self.rest.len() + data.len();
        let whole = total - total % self.size;
        if whole == 0 {
            self.rest.extend_from_slice(data);
            return None;
        }
        // `rest` is shorter than one chunk, so it all goes into this packet.
        let take = whole - self.rest.len();
        let mut chunk = Vec::with_capacity(whole);
        chunk.extend_from_slice(&self.rest);
        chunk.extend_from_slice(&data[..take]);
        self.rest.clear();
        self.rest.extend_from_slice(&data[take..]);
        Some(MediaPacket::raw(payload_from_vec(chunk)))
    }
}

/// An FLV byte stream to media packets (one per tag; the tag body is the payload).
pub struct FlvIngest {
    demux: FlvDemuxer,
}

impl FlvIngest {
    fn new() -> Self {
        Self {
            demux: FlvDemuxer::new(MAX_TAG_DATA_SIZE),
        }
    }

    fn push(&mut self, data: &[u8], emit: &mut impl FnMut(MediaPacket)) -> Result<(), FlvError> {
        self.demux.push(data);
        while let Some(t) = self.demux.next_tag()? {
            emit(tag_packet(&t.tag));
        }
        Ok(())
    }
}

/// The packet for one FLV tag, with the flags the hub's join cache relies on.
pub fn tag_packet(tag: &FlvTag) -> MediaPacket {
    let data: &[u8] = &tag.data;
    let (kind, flags) = match tag.tag_type {
        TagType::Video => {
            let mut f = 0;
            if let Some(info) = classify_video(data) {
                if info.is_keyframe() {
                    f |= flags::KEYFRAME;
                }
                if info.is_sequence_header() {
                    f |= flags::SEQUENCE_HEADER;
                }
                if info.frame_type == 3 {
                    f |= flags::DISPOSABLE;
                }
            }
            (MediaKind::Video, f)
        }
        TagType::Audio => {
            let header = classify_audio(data).is_some_and(|i| i.is_sequence_header());
            let f = if header { flags::SEQUENCE_HEADER } else { 0 };
            (MediaKind::Audio, f)
        }
        TagType::Script => {
            let f = if is_on_metadata(data) {
                flags::METADATA
            } else {
                0
            };
            (MediaKind::Script, f)
        }
    };
    MediaPacket::new(kind, flags, tag.timestamp, payload_from(data))
}

/// Script data whose name is `onMetaData` (an RTMP-style `@setDataFrame` wrapper is allowed).
fn is_on_metadata(data: &[u8]) -> bool {
    let body = strip_set_data_frame(data);
    // AMF0 string marker, u16 length, the name.
    let mut name = vec![2u8];
    name.extend_from_slice(&(ON_METADATA.len() as u16).to_be_bytes());
    name.extend_from_slice(ON_METADATA.as_bytes());
    body.starts_with(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstream_media::flv::{build_on_metadata, write_file_header, write_tag};

    fn collect(ingest: &mut Ingest, reads: &[&[u8]]) -> Vec<MediaPacket> {
        let mut out = Vec::new();
        for r in reads {
            ingest.push(r, &mut |p| out.push(p)).unwrap();
        }
        out
    }

    #[test]
    fn raw_bufsize_zero_forwards_every_read() {
        let mut i = Ingest::new(0);
        let p = collect(&mut i, &[b"hello", b"", b"world!"]);
        assert_eq!(p.len(), 2);
        assert_eq!(&p[0].payload[..], b"hello");
        assert_eq!(&p[1].payload[..], b"world!");
        assert!(p
            .iter()
            .all(|p| p.kind == MediaKind::Raw && p.is_keyframe()));
    }

    #[test]
    fn raw_chunks_are_whole_multiples() {
        let mut c = RawChunker::new(4);
        assert!(c.push(b"ab").is_none());
        let p = c.push(b"cdefghij").unwrap();
        assert_eq!(&p.payload[..], b"abcdefgh");
        assert!(c.push(b"k").is_none());
        let p = c.push(b"lm").unwrap();
        assert_eq!(&p.payload[..], b"ijkl");
        assert_eq!(c.rest, b"m");
    }

    #[test]
    fn short_flv_like_start_waits_then_decides() {
        let mut i = Ingest::new(0);
        assert!(collect(&mut i, &[b"F", b"L"]).is_empty());
        // Not FLV after all: the held bytes come first, in order.
        let p = collect(&mut i, &[b"X!"]);
        let all: Vec<u8> = p.iter().flat_map(|p| p.payload.to_vec()).collect();
        assert_eq!(all, b"FLX!");
        // Too short to tell at the end: still forwarded.
        let mut i = Ingest::new(0);
        assert!(collect(&mut i, &[b"FL"]).is_empty());
        let mut out = Vec::new();
        i.finish(&mut |p| out.push(p));
        assert_eq!(&out[0].payload[..], b"FL");
        // Version 2 is not FLV for us.
        let mut i = Ingest::new(0);
        assert_eq!(collect(&mut i, &[b"FLV\x02rest"]).len(), 1);
        assert!(matches!(i, Ingest::Raw(_)));
    }

    #[test]
    fn flv_tags_become_flagged_packets() {
        let meta = build_on_metadata(&[]).unwrap();
        let mut file = Vec::new();
        write_file_header(&mut file, true, true);
        write_tag(&mut file, TagType::Script, 0, &meta).unwrap();
        write_tag(&mut file, TagType::Video, 0, &[0x17, 0, 0, 0, 0, 1, 2]).unwrap();
        write_tag(&mut file, TagType::Audio, 0, &[0xAF, 0, 0x12, 0x10]).unwrap();
        write_tag(&mut file, TagType::Video, 40, &[0x17, 1, 0, 0, 0, 9]).unwrap();
        write_tag(&mut file, TagType::Video, 80, &[0x27, 1, 0, 0, 0, 8]).unwrap();
        write_tag(&mut file, TagType::Audio, 23, &[0xAF, 1, 7]).unwrap();
        let mut i = Ingest::new(0);
        let reads: Vec<&[u8]> = file.chunks(3).collect();
        let p = collect(&mut i, &reads);
        let got: Vec<(MediaKind, u8, u32)> =
            p.iter().map(|p| (p.kind, p.flags, p.timestamp)).collect();
        assert_eq!(
            got,
            vec![
                (MediaKind::Script, flags::METADATA, 0),
                (MediaKind::Video, flags::SEQUENCE_HEADER, 0),
                (MediaKind::Audio, flags::SEQUENCE_HEADER, 0),
                (MediaKind::Video, flags::KEYFRAME, 40),
                (MediaKind::Video, 0, 80),
                (MediaKind::Audio, 0, 23),
            ]
        );
        assert_eq!(&p[0].payload[..], &meta[..]);
        assert_eq!(&p[3].payload[..], &[0x17, 1, 0, 0, 0, 9]);
    }

    #[test]
    fn broken_flv_is_an_error() {
        let mut file = Vec::new();
        write_file_header(&mut file, true, true);
        file.extend_from_slice(&[0x55; 20]);
        let mut i = Ingest::new(0);
        assert!(i.push(&file, &mut |_| {}).is_err());
    }
}
