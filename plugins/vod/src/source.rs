//! One player's reader of an FLV file.
//!
//! The file is read incrementally straight into an [`FlvDemuxer`] (16 KiB at a time), one tag at
//! a time, and the room a large tag needed is given back after it, so memory stays at about one
//! read and one tag per player whatever the file's size. At open the
//! leading tags (up to the first coded frame) are read so the player gets the metadata and the
//! sequence headers first, in that order. After a seek the sequence headers are sent again,
//! stamped with the keyframe's time, right before the keyframe.

use std::{
    cell::OnceCell,
    collections::VecDeque,
    fs::File,
    io::{Seek, SeekFrom},
    path::{Path, PathBuf},
    sync::Arc,
};

use fstream_abi::{
    flags, payload_from, sdk::Produce, MediaKind, MediaPacket, Payload, PluginError,
};
use fstream_media::{
    amf0::AmfLimits,
    flv::{
        classify_audio, classify_video, find_keyframe, parse_on_metadata, strip_set_data_frame,
        DemuxedTag, FlvDemuxer, FlvHeader, FlvTag, KeyframeEntry, TagHeader, TagType,
        FLV_HEADER_LEN, MAX_TAG_DATA_SIZE, PREVIOUS_TAG_SIZE_LEN, TAG_HEADER_LEN,
    },
};

use crate::{
    index::{metadata_index, read_full_at, FileKey, IndexCache, ScanInfo},
    Refusal,
};

/// Bytes read from the file at a time, at most.
const READ_CHUNK: usize = 64 * 1024;
/// Demuxer room a player keeps between tags (a tag's room above it is given back).
const DEMUX_KEEP: usize = 256;
/// How far into a file the leading metadata and sequence headers are looked for.
const MAX_PRELUDE_TAGS: usize = 64;
const MAX_PRELUDE_BYTES: u64 = 8 << 20;

/// Errors while playing; messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum VodError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: damaged FLV data: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        source: fstream_media::flv::FlvError,
    },
    #[error("{}: cannot index keyframes: {reason}", path.display())]
    Index { path: PathBuf, reason: String },
}

impl From<VodError> for PluginError {
    fn from(e: VodError) -> Self {
        PluginError::new(e.to_string())
    }
}

/// The file's keyframe index from its metadata, and whether it was found to be wrong.
enum MetaIndex {
    None,
    Unchecked(Vec<KeyframeEntry>),
    Bad,
}

pub struct FlvSource {
    path: PathBuf,
    key: FileKey,
    cache: Arc<IndexCache>,
    reader: File,
    demux: FlvDemuxer,
    eof: bool,
    /// Packets to hand out before reading on.
    pending: VecDeque<MediaPacket>,
    metadata: Option<MediaPacket>,
    metadata_sent: bool,
    video_header: Option<Payload>,
    audio_header: Option<Payload>,
    /// Offset of the tag header of the first coded frame, and its timestamp: the start.
    body_offset: u64,
    body_ts: u32,
    first_tag: u64,
    meta_duration_ms: Option<u64>,
    meta_index: MetaIndex,
    scanned: OnceCell<Result<Arc<ScanInfo>, String>>,
}

impl FlvSource {
    /// Opens `path` (already resolved and checked) and reads its leading tags.
    pub fn open(path: &Path, cache: Arc<IndexCache>) -> Result<Self, Refusal> {
        let shown = || path.display().to_string();
        let file = File::open(path).map_err(|e| Refusal::Io(shown(), e.to_string()))?;
        let meta = file
            .metadata()
            .map_err(|e| Refusal::Io(shown(), e.to_string()))?;
        if !meta.is_file() {
            return Err(Refusal::NotAFile(shown()));
        }
        let key = FileKey::of(path, &file).map_err(|e| Refusal::Io(shown(), e.to_string()))?;
        let mut head = [0u8; FLV_HEADER_LEN];
        let n =
            read_full_at(&file, &mut head, 0).map_err(|e| Refusal::Io(shown(), e.to_string()))?;
        let header = FlvHeader::decode(head.get(..n).unwrap_or_default(), 1 << 16)
            .map_err(|e| Refusal::Io(shown(), format!("not an FLV file: {e}")))?;
        let first_tag = u64::from(header.data_offset) + PREVIOUS_TAG_SIZE_LEN as u64;
        let mut s = Self {
            path: path.to_path_buf(),
            key,
            cache,
            reader: file,
            demux: FlvDemuxer::new(MAX_TAG_DATA_SIZE),
            eof: false,
            pending: VecDeque::new(),
            metadata: None,
            metadata_sent: false,
            video_header: None,
            audio_header: None,
            body_offset: first_tag,
            body_ts: 0,
            first_tag,
            meta_duration_ms: None,
            meta_index: MetaIndex::None,
            scanned: OnceCell::new(),
        };
        s.read_prelude()
            .map_err(|e| Refusal::Io(shown(), e.to_string()))?;
        Ok(s)
    }

    /// Reads tags up to the first coded frame: metadata and sequence headers are kept, and
    /// queued in the order players need them, followed by whatever else was read.
    fn read_prelude(&mut self) -> Result<(), VodError> {
        let mut others = Vec::new();
        let mut first_frame = None;
        for _ in 0..MAX_PRELUDE_TAGS {
            let Some(t) = self.read_tag()? else {
                break;
            };
            if t.offset > MAX_PRELUDE_BYTES {
                first_frame = Some(t);
                break;
            }
            let pkt = tag_packet(&t.tag);
            match t.tag.tag_type {
                TagType::Script if pkt.is_metadata() && self.metadata.is_none() => {
                    self.take_metadata(&t.tag);
                    self.metadata = Some(pkt);
                }
                TagType::Video if pkt.is_sequence_header() && self.video_header.is_none() => {
                    self.video_header = Some(pkt.payload)
                }
                TagType::Audio if pkt.is_sequence_header() && self.audio_header.is_none() => {
                    self.audio_header = Some(pkt.payload)
                }
                TagType::Video | TagType::Audio if !pkt.is_sequence_header() => {
                    first_frame = Some(t);
                    break;
                }
                _ => others.push(pkt),
            }
        }
        let (offset, ts) = match &first_frame {
            Some(t) => (t.offset, t.tag.timestamp),
            None => (self.demux.offset(), 0),
        };
        self.body_offset = offset;
        self.body_ts = ts;
        self.queue_start(ts, true);
        self.pending.extend(others.into_iter().map(|mut p| {
            p.timestamp = p.timestamp.max(ts);
            p
        }));
        if let Some(t) = first_frame {
            self.pending.push_back(tag_packet(&t.tag));
        }
        Ok(())
    }

    fn take_metadata(&mut self, tag: &FlvTag) {
        let Ok(Some(props)) =
            parse_on_metadata(strip_set_data_frame(&tag.data), &AmfLimits::default())
        else {
            return;
        };
        self.meta_duration_ms = props
            .iter()
            .find(|(k, _)| k == "duration")
            .and_then(|(_, v)| v.as_f64())
            .filter(|d| d.is_finite() && *d > 0.0 && *d < 1e9)
            .map(|d| (d * 1000.0).round() as u64);
        if let Some(ix) = metadata_index(&props, self.key.size) {
            self.meta_index = MetaIndex::Unchecked(ix);
        }
    }

    /// Queues what a player needs before a keyframe at `ts`: the metadata if it was not sent
    /// yet, and the sequence headers, all stamped `ts` (the host paces by timestamps).
    fn queue_start(&mut self, ts: u32, headers: bool) {
        if !self.metadata_sent {
            if let Some(m) = &self.metadata {
                let mut m = m.clone();
                m.timestamp = ts;
                self.pending.push_back(m);
            }
        }
        if headers {
            for (kind, h) in [
                (MediaKind::Video, &self.video_header),
                (MediaKind::Audio, &self.audio_header),
            ] {
                if let Some(h) = h {
                    self.pending.push_back(MediaPacket::new(
                        kind,
                        flags::SEQUENCE_HEADER,
                        ts,
                        h.clone(),
                    ));
                }
            }
        }
    }

    fn io(&self, source: std::io::Error) -> VodError {
        VodError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The next complete tag, `None` at the end of the file (a partial tag there is ignored:
    /// a recording cut short by a crash ends that way).
    fn read_tag(&mut self) -> Result<Option<DemuxedTag>, VodError> {
        loop {
            match self.demux.next_tag() {
                Ok(Some(t)) => {
                    self.demux.release_spare(DEMUX_KEEP);
                    return Ok(Some(t));
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(VodError::Corrupt {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
            if self.eof {
                if self.demux.buffered() > 0 {
                    tracing::debug!(path = %self.path.display(), bytes = self.demux.buffered(),
                        "file ends in a partial tag");
                }
                return Ok(None);
            }
            // Exactly what finishes the tag and the next tag's header (at most a chunk at a
            // time): between tags the demuxer holds a header, not the next tag's bytes.
            let want = self.demux.needed().clamp(1, READ_CHUNK);
            let n = match self.demux.read_from(&mut self.reader, want) {
                Ok(n) => n,
                Err(source) => {
                    return Err(VodError::Io {
                        path: self.path.clone(),
                        source,
                    })
                }
            };
            if n == 0 {
                self.eof = true;
            }
        }
    }

    /// Moves reading to the tag at `offset`.
    fn reposition(&mut self, offset: u64) -> Result<(), VodError> {
        self.reader
            .seek(SeekFrom::Start(offset))
            .map_err(|e| self.io(e))?;
        self.demux = FlvDemuxer::at_tag(MAX_TAG_DATA_SIZE, offset);
        self.eof = false;
        Ok(())
    }

    fn scan_info(&self) -> Result<Arc<ScanInfo>, VodError> {
        self.scanned
            .get_or_init(|| self.cache.get(&self.key, &self.reader, self.first_tag))
            .clone()
            .map_err(|reason| VodError::Index {
                path: self.path.clone(),
                reason,
            })
    }

    /// The video keyframe tag header at `offset`, if there is one.
    fn keyframe_at(&self, offset: u64) -> Option<TagHeader> {
        let mut b = [0u8; TAG_HEADER_LEN + 5];
        let n = read_full_at(&self.reader, &mut b, offset).ok()?;
        let h = TagHeader::decode(b.get(..n)?, offset).ok()?;
        let data = b
            .get(TAG_HEADER_LEN..n)?
            .get(..(h.data_size as usize).min(5))?;
        (h.tag_type == TagType::Video && classify_video(data).is_some_and(|i| i.is_keyframe()))
            .then_some(h)
    }

    /// Where a seek to `ms` lands: from the file's own index when its entry checks out, else
    /// from the scanned one.
    fn seek_target(&mut self, ms: u32) -> Result<Option<KeyframeEntry>, VodError> {
        if let MetaIndex::Unchecked(ix) = &self.meta_index {
            if let Some(e) = find_keyframe(ix, ms).copied() {
                if let Some(h) = self.keyframe_at(e.offset) {
                    return Ok(Some(KeyframeEntry {
                        timestamp: h.timestamp,
                        offset: e.offset,
                    }));
                }
                tracing::warn!(path = %self.path.display(), offset = e.offset,
                    "the file's keyframe index is wrong; scanning the file instead");
                self.meta_index = MetaIndex::Bad;
            }
        }
        let info = self.scan_info()?;
        Ok(find_keyframe(&info.entries, ms).copied())
    }

    /// The duration from the last tag, found through the last PreviousTagSize.
    fn tail_duration(&self) -> Option<u64> {
        let file = &self.reader;
        let len = self.key.size;
        let mut p = [0u8; PREVIOUS_TAG_SIZE_LEN];
        let at = len.checked_sub(PREVIOUS_TAG_SIZE_LEN as u64)?;
        if read_full_at(file, &mut p, at).ok()? != p.len() {
            return None;
        }
        let prev = u64::from(u32::from_be_bytes(p));
        let tag_at = at.checked_sub(prev)?;
        if prev < TAG_HEADER_LEN as u64 || tag_at < self.body_offset {
            return None;
        }
        let mut h = [0u8; TAG_HEADER_LEN];
        if read_full_at(file, &mut h, tag_at).ok()? != h.len() {
            return None;
        }
        let h = TagHeader::decode(&h, tag_at).ok()?;
        (u64::from(h.data_size) + TAG_HEADER_LEN as u64 == prev)
            .then(|| u64::from(h.timestamp.saturating_sub(self.body_ts)))
    }
}

/// The packet for a tag, with the flags the host relies on (as an FLV ingest sets them).
pub fn tag_packet(tag: &FlvTag) -> MediaPacket {
    let data: &[u8] = &tag.data;
    let (kind, f) = match tag.tag_type {
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
            (
                MediaKind::Audio,
                if header { flags::SEQUENCE_HEADER } else { 0 },
            )
        }
        TagType::Script => {
            // Files should not carry RTMP's `@setDataFrame` wrapper; drop it if one does.
            let body = strip_set_data_frame(data);
            let meta = body.starts_with(b"\x02\x00\x0aonMetaData");
            return MediaPacket::new(
                MediaKind::Script,
                if meta { flags::METADATA } else { 0 },
                tag.timestamp,
                payload_from(body),
            );
        }
    };
    MediaPacket::new(kind, f, tag.timestamp, payload_from(data))
}

impl Produce for FlvSource {
    fn duration_ms(&self) -> u64 {
        if let Some(d) = self.meta_duration_ms {
            return d;
        }
        if let Some(d) = self.tail_duration() {
            return d;
        }
        match self.scan_info() {
            Ok(i) => i.duration_ms(),
            Err(e) => {
                tracing::warn!(error = %e, "duration unknown");
                0
            }
        }
    }

    fn next_packet(&mut self) -> Result<Option<MediaPacket>, PluginError> {
        if let Some(p) = self.pending.pop_front() {
            if p.is_metadata() {
                self.metadata_sent = true;
            }
            return Ok(Some(p));
        }
        Ok(self.read_tag()?.map(|t| tag_packet(&t.tag)))
    }

    fn seek(&mut self, position_ms: u64) -> Result<u64, PluginError> {
        let ms = u32::try_from(position_ms).unwrap_or(u32::MAX);
        let (offset, ts) = match self.seek_target(ms)? {
            Some(e) => (e.offset, e.timestamp),
            // Nothing to seek by (no frames): back to the start.
            None => (self.body_offset, self.body_ts),
        };
        // Before the first frame (a seek to 0): the start, as at open.
        let (offset, ts) = if ts <= self.body_ts {
            (self.body_offset, self.body_ts)
        } else {
            (offset, ts)
        };
        self.reposition(offset)?;
        self.pending.clear();
        self.queue_start(ts, true);
        tracing::debug!(path = %self.path.display(), asked_ms = position_ms, landed_ms = ts,
            offset, "seek");
        Ok(u64::from(ts))
    }
}
