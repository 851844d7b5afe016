//! The sink that cuts a stream into segments: every publication's packets, muxed with
//! core/media's `TsMuxer` (MPEG-TS) or `Fmp4Muxer` (fMP4, for HEVC and AV1 or where the
//! settings ask for it), on the host's sink thread.

use std::sync::{Arc, Mutex};

use fstream_abi::{payload_from_vec, sdk::Consume, MediaKind, MediaPacket, PluginError};
use fstream_media::{
    fmp4::{Fmp4Muxer, Fmp4Unit},
    ts::{TsMuxer, TsUnit},
};

use super::store::{lock, Part, StreamSegments};

/// Configuration packets kept while waiting for the first frame (to learn which tracks exist).
const MAX_EARLY_PACKETS: usize = 16;

#[derive(Debug, Clone)]
pub struct Cutting {
    pub segment_ms: u32,
    /// Partial segments (Low-Latency HLS), 0: none.
    pub part_ms: u32,
    pub window: usize,
    pub max_segment_bytes: usize,
    /// fMP4 segments for every stream (else only for codecs MPEG-TS does not carry here).
    pub fmp4: bool,
}

/// What a frame fed to a muxer became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fed {
    Media,
    Nothing,
}

/// The muxer of one publication: MPEG-TS writes as frames come; fMP4 gathers them and writes
/// a fragment when a part or segment ends.
enum Muxer {
    Ts(TsMuxer),
    Mp4 {
        muxer: Fmp4Muxer,
        /// The configuration version whose init segment the store has.
        published: u32,
    },
}

impl Muxer {
    fn feed(&mut self, out: &mut Vec<u8>, p: &MediaPacket) -> Fed {
        let video = p.kind == MediaKind::Video;
        let media = match self {
            Muxer::Ts(m) => {
                let unit = if video {
                    m.video(out, &p.payload, p.timestamp)
                } else {
                    m.audio(out, &p.payload, p.timestamp)
                };
                matches!(unit, TsUnit::Video { .. } | TsUnit::Audio)
            }
            Muxer::Mp4 { muxer, .. } => {
                let unit = if video {
                    muxer.video(&p.payload, p.timestamp)
                } else {
                    muxer.audio(&p.payload, p.timestamp)
                };
                matches!(unit, Fmp4Unit::Video { .. } | Fmp4Unit::Audio)
            }
        };
        if media {
            Fed::Media
        } else {
            Fed::Nothing
        }
    }

    /// Begins a chunk (a part, or a segment without parts): TS repeats its tables.
    fn start_chunk(&mut self, out: &mut Vec<u8>) {
        if let Muxer::Ts(m) = self {
            m.tables(out);
        }
    }

    /// Ends a chunk at `end_ts`: fMP4 writes its fragment.
    fn end_chunk(&mut self, out: &mut Vec<u8>, end_ts: u32) {
        if let Muxer::Mp4 { muxer, .. } = self {
            muxer.fragment(out, end_ts);
        }
    }

    fn pending_bytes(&self) -> usize {
        match self {
            Muxer::Ts(_) => 0,
            Muxer::Mp4 { muxer, .. } => muxer.pending_bytes(),
        }
    }

    /// fMP4 whose configuration changed since its init segment was stored.
    fn needs_new_init(&self) -> bool {
        matches!(self, Muxer::Mp4 { muxer, published } if muxer.version() != *published)
    }
}

pub struct HlsSink {
    segments: Arc<Mutex<StreamSegments>>,
    cutting: Cutting,
    stream: String,
    muxer: Option<Muxer>,
    early: Vec<MediaPacket>,
    video: bool,
    audio: bool,
    current: Vec<u8>,
    /// Stream time the current segment started at; `None` until the first one starts.
    start: Option<u32>,
    last: u32,
    /// Frames are skipped until a keyframe opens the next segment (after an oversized one).
    waiting_for_key: bool,
    /// The open part: where it starts in `current`, its stream time, whether it starts with
    /// a keyframe, whether it holds a frame yet.
    part_offset: usize,
    part_start: u32,
    part_independent: bool,
    part_media: bool,
}

impl HlsSink {
    pub fn new(stream: String, segments: Arc<Mutex<StreamSegments>>, cutting: Cutting) -> Self {
        Self {
            segments,
            cutting,
            stream,
            muxer: None,
            early: Vec::new(),
            video: false,
            audio: false,
            current: Vec::new(),
            start: None,
            last: 0,
            waiting_for_key: false,
            part_offset: 0,
            part_start: 0,
            part_independent: false,
            part_media: false,
        }
    }

    /// Ends the open part at `end_ts` and, if it holds a frame and parts are cut, hands a copy
    /// to the store.
    fn close_part(&mut self, end_ts: u32) {
        if self.start.is_none() {
            return;
        }
        if let Some(m) = &mut self.muxer {
            m.end_chunk(&mut self.current, end_ts);
        }
        if self.cutting.part_ms == 0 || !self.part_media {
            return;
        }
        let Some(bytes) = self.current.get(self.part_offset..) else {
            return;
        };
        let part = Part {
            duration_ms: end_ts.wrapping_sub(self.part_start).min(600_000),
            independent: self.part_independent,
            data: payload_from_vec(bytes.to_vec()),
        };
        self.part_media = false;
        lock(&self.segments).push_part(part);
    }

    /// Starts a part at `ts` (whole by itself: TS with its tables, fMP4 one fragment).
    fn open_part(&mut self, ts: u32, independent: bool) {
        self.part_offset = self.current.len();
        if let Some(m) = &mut self.muxer {
            m.start_chunk(&mut self.current);
        }
        self.part_start = ts;
        self.part_independent = independent;
        self.part_media = false;
    }

    /// Ends the current segment at `end_ts` and hands it to the store.
    fn close_segment(&mut self, end_ts: u32) {
        // Its last part first (while the segment is still open).
        self.close_part(end_ts);
        let Some(start) = self.start.take() else {
            return;
        };
        if self.current.is_empty() {
            return;
        }
        let duration_ms = end_ts.wrapping_sub(start).min(600_000);
        let data = payload_from_vec(std::mem::take(&mut self.current));
        lock(&self.segments).push(duration_ms, data, self.cutting.window);
    }

    fn open_segment(&mut self, ts: u32) {
        // The init segment the new segment needs (fMP4), stored before any of its parts.
        match &mut self.muxer {
            Some(Muxer::Mp4 { muxer, published }) if muxer.version() != *published => {
                if let Some(init) = muxer.init_segment() {
                    *published = muxer.version();
                    lock(&self.segments).set_init(Some(payload_from_vec(init)));
                }
            }
            Some(Muxer::Ts(_)) => lock(&self.segments).set_init(None),
            _ => {}
        }
        self.open_part(ts, true);
        self.start = Some(ts);
        self.waiting_for_key = false;
    }

    fn frame(&mut self, p: &MediaPacket) {
        let ts = p.timestamp;
        let is_video = p.kind == MediaKind::Video;
        let keyframe = is_video && p.is_keyframe();
        // A segment starts at a keyframe (or, without video, at any audio frame).
        let may_cut = if self.video { keyframe } else { !is_video };
        if may_cut {
            let new_init = self.muxer.as_ref().is_some_and(Muxer::needs_new_init);
            let due = match self.start {
                None => true,
                Some(s) => {
                    ts.wrapping_sub(s) >= self.cutting.segment_ms
                        || self.waiting_for_key
                        || new_init
                }
            };
            if due {
                self.close_segment(ts);
                self.open_segment(ts);
            }
        }
        if self.start.is_none() || self.waiting_for_key {
            return;
        }
        let part_due = self.cutting.part_ms > 0
            && ts.wrapping_sub(self.part_start) >= self.cutting.part_ms
            && self.part_media;
        if part_due {
            self.close_part(ts);
            self.open_part(ts, keyframe || !self.video);
        }
        let Some(m) = &mut self.muxer else { return };
        if m.feed(&mut self.current, p) == Fed::Media {
            self.last = self.last.max(ts);
            self.part_media = true;
        }
        let bytes = self.current.len() + m.pending_bytes();
        if bytes > self.cutting.max_segment_bytes {
            tracing::warn!(stream = %self.stream, bytes,
                "an HLS segment outgrew hls_max_segment_bytes; cut it and wait for a keyframe");
            self.close_segment(ts);
            self.waiting_for_key = true;
            self.start = None;
        }
    }

    /// The muxer for the first frame `p`: the tracks are those configured so far (or this
    /// frame's kind); fMP4 when asked for or when the video needs it.
    fn make_muxer(&mut self, p: &MediaPacket) -> Muxer {
        let video = self.video || p.kind == MediaKind::Video;
        let audio = self.audio || p.kind == MediaKind::Audio;
        self.video = video;
        self.audio = audio;
        let fmp4 = self.cutting.fmp4
            || self
                .early
                .iter()
                .chain(std::iter::once(p))
                .any(|e| e.kind == MediaKind::Video && Fmp4Muxer::needs_fmp4(&e.payload));
        let mut m = if fmp4 {
            Muxer::Mp4 {
                muxer: Fmp4Muxer::new(video, audio),
                published: 0,
            }
        } else {
            Muxer::Ts(TsMuxer::new(video, audio))
        };
        let mut none = Vec::new();
        for e in std::mem::take(&mut self.early) {
            m.feed(&mut none, &e);
        }
        tracing::debug!(stream = %self.stream, video, audio, fmp4, "hls: segmenting");
        m
    }
}

impl Consume for HlsSink {
    fn packet(&mut self, p: &MediaPacket) -> Result<(), PluginError> {
        match p.kind {
            MediaKind::Video | MediaKind::Audio => {}
            _ => return Ok(()),
        }
        if p.is_sequence_header() {
            if p.kind == MediaKind::Video {
                self.video = true;
            } else {
                self.audio = true;
            }
            match &mut self.muxer {
                // A new configuration mid-stream (the muxer keeps the latest).
                Some(m) => {
                    m.feed(&mut Vec::new(), p);
                }
                None if self.early.len() < MAX_EARLY_PACKETS => self.early.push(p.clone()),
                None => {}
            }
            return Ok(());
        }
        if self.muxer.is_none() {
            let m = self.make_muxer(p);
            self.muxer = Some(m);
        }
        self.frame(p);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), PluginError> {
        // The last segment ends a frame after its last packet.
        let end = self.last.wrapping_add(40);
        self.close_segment(end);
        lock(&self.segments).live = false;
        tracing::debug!(stream = %self.stream, "hls: publication ended");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::store::Store;
    use fstream_abi::{flags, payload_from};

    fn sink(store: &Store, part_ms: u32) -> HlsSink {
        sink_as(store, part_ms, false)
    }

    fn sink_as(store: &Store, part_ms: u32, fmp4: bool) -> HlsSink {
        let segs = store.publish("a/b", 7, 4).unwrap();
        HlsSink::new(
            "a/b".into(),
            segs,
            Cutting {
                segment_ms: 1000,
                part_ms,
                window: 10,
                max_segment_bytes: 1 << 20,
                fmp4,
            },
        )
    }

    fn audio(ts: u32) -> MediaPacket {
        MediaPacket::new(
            MediaKind::Audio,
            0,
            ts,
            payload_from(&[0xAF, 1, 0x21, 0x10, 5, 6]),
        )
    }

    fn video(ts: u32, key: bool) -> MediaPacket {
        let (b0, f) = if key {
            (0x17, flags::KEYFRAME)
        } else {
            (0x27, 0)
        };
        MediaPacket::new(
            MediaKind::Video,
            f,
            ts,
            payload_from(&[b0, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 1]),
        )
    }

    fn config() -> [MediaPacket; 2] {
        [
            MediaPacket::new(
                MediaKind::Video,
                flags::SEQUENCE_HEADER,
                0,
                payload_from(&[
                    0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 2, 0x67, 1, 1, 0, 1, 0x68,
                ]),
            ),
            MediaPacket::new(
                MediaKind::Audio,
                flags::SEQUENCE_HEADER,
                0,
                payload_from(&[0xAF, 0, 0x12, 0x10]),
            ),
        ]
    }

    fn whole_ts(data: &[u8]) {
        assert!(!data.is_empty() && data.len().is_multiple_of(188));
        assert_eq!(data[1] & 0x1F, 0, "PAT first");
        assert_eq!(data[2], 0);
    }

    #[test]
    fn audio_only_is_cut_by_time_and_parts_tile_their_segment() {
        let store = Store::default();
        let mut s = sink(&store, 200);
        s.packet(&config()[1]).unwrap();
        for i in 0..230u32 {
            s.packet(&audio(i * 23)).unwrap();
        }
        s.finish().unwrap();
        let segs = store.get("a/b").unwrap();
        let g = lock(&segs);
        assert!(g.segments.len() >= 5, "{} segments", g.segments.len());
        for seg in g.segments.iter().take(g.segments.len() - 1) {
            assert!(
                (1000..1023 + 23).contains(&seg.duration_ms),
                "{}",
                seg.duration_ms
            );
            whole_ts(&seg.data);
        }
        let recent = g.segments.iter().rev().nth(1).unwrap();
        assert!(!recent.parts.is_empty());
        let total: u32 = recent.parts.iter().map(|p| p.duration_ms).sum();
        assert_eq!(total, recent.duration_ms, "parts tile their segment");
        for p in &recent.parts {
            whole_ts(&p.data);
            assert!(p.duration_ms <= 300, "a part of {} ms", p.duration_ms);
        }
        assert!(!g.live);
    }

    #[test]
    fn video_is_cut_only_at_keyframes_and_a_frame_before_the_first_keyframe_is_skipped() {
        let store = Store::default();
        let mut s = sink(&store, 0);
        for c in config() {
            s.packet(&c).unwrap();
        }
        s.packet(&video(0, false)).unwrap();
        // A keyframe every 1.6 s, 25 fps: segments are 1.6 s although the target is 1 s.
        for i in 1..=200u32 {
            s.packet(&video(i * 40, i % 40 == 0)).unwrap();
            s.packet(&audio(i * 40 + 5)).unwrap();
        }
        let segs = store.get("a/b").unwrap();
        let g = lock(&segs);
        assert_eq!(
            g.segments.len(),
            4,
            "{:?}",
            g.segments.iter().map(|s| s.duration_ms).collect::<Vec<_>>()
        );
        for seg in &g.segments {
            assert_eq!(seg.duration_ms, 1600);
            whole_ts(&seg.data);
            assert!(seg.parts.is_empty(), "parts were not asked for");
        }
        assert!(g.live);
    }

    fn fragments(data: &[u8]) -> Vec<[u8; 4]> {
        fstream_media::fmp4::boxes::read_boxes(data)
            .iter()
            .map(|b| b.kind)
            .collect()
    }

    #[test]
    fn fmp4_segments_are_fragments_after_an_init_segment_and_parts_tile_them() {
        let store = Store::default();
        let mut s = sink_as(&store, 200, true);
        for c in config() {
            s.packet(&c).unwrap();
        }
        for i in 0..=120u32 {
            s.packet(&video(i * 40, i % 25 == 0)).unwrap();
            s.packet(&audio(i * 40 + 5)).unwrap();
        }
        let segs = store.get("a/b").unwrap();
        let g = lock(&segs);
        assert_eq!(g.segments.len(), 4);
        let init = g.segments[0].init.expect("an init segment");
        assert!(g.segments.iter().all(|seg| seg.init == Some(init)));
        let (data, kind) = g.find(&g.init_name(init)).unwrap();
        assert_eq!(kind, super::super::store::MP4_TYPE);
        assert_eq!(fragments(&data), [*b"ftyp", *b"moov"]);
        for seg in &g.segments {
            assert_eq!(seg.duration_ms, 1000);
            let boxes = fragments(&seg.data);
            // One fragment a part (older segments no longer list theirs).
            assert_eq!(boxes.len(), 10, "{boxes:?}");
            assert!(boxes.chunks(2).all(|c| c == [*b"moof", *b"mdat"]));
        }
        let recent = g.segments.back().unwrap();
        assert!(recent.parts.len() >= 4);
        let joined: Vec<u8> = recent.parts.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(joined, recent.data.to_vec(), "parts tile their segment");
        let name = g.segment_name(recent.seq, true);
        assert!(name.ends_with(".m4s") && g.find(&name).is_some());
        assert!(g.find(&g.segment_name(recent.seq, false)).is_none());
        let text = super::super::playlist::media_playlist(&g, 300).unwrap();
        assert!(text.contains("#EXT-X-VERSION:7"), "{text}");
        assert_eq!(text.matches("#EXT-X-MAP:URI=").count(), 1, "{text}");
        let map = text.find("#EXT-X-MAP").unwrap();
        assert!(map < text.find("#EXTINF").unwrap());
    }

    #[test]
    fn enhanced_hevc_is_fmp4_whatever_the_setting_and_a_new_configuration_a_new_init() {
        let store = Store::default();
        let mut s = sink_as(&store, 0, false);
        let hvc_seq = |v: u8| {
            MediaPacket::new(
                MediaKind::Video,
                flags::SEQUENCE_HEADER,
                0,
                payload_from(&[0x90, b'h', b'v', b'c', b'1', 1, v]),
            )
        };
        let hvc = |ts: u32, key: bool| {
            MediaPacket::new(
                MediaKind::Video,
                if key { flags::KEYFRAME } else { 0 },
                ts,
                payload_from(&[
                    if key { 0x93 } else { 0xA3 },
                    b'h',
                    b'v',
                    b'c',
                    b'1',
                    0,
                    0,
                    0,
                    1,
                    0x26,
                ]),
            )
        };
        s.packet(&hvc_seq(1)).unwrap();
        for i in 0..80u32 {
            if i == 40 {
                s.packet(&hvc_seq(2)).unwrap();
            }
            // Keyframes every 0.4 s: segments of 1.2 s, and one cut early at the new config.
            s.packet(&hvc(i * 40, i % 10 == 0)).unwrap();
        }
        let segs = store.get("a/b").unwrap();
        let g = lock(&segs);
        let inits: Vec<_> = g.segments.iter().map(|seg| seg.init.unwrap()).collect();
        assert_eq!(inits.len(), 3, "{inits:?}");
        assert_eq!(inits[0], inits[1]);
        assert_ne!(
            inits[1], inits[2],
            "the new configuration starts a new init"
        );
        let durations: Vec<_> = g.segments.iter().map(|seg| seg.duration_ms).collect();
        assert_eq!(
            durations,
            [1200, 400, 1200],
            "cut early for the new configuration"
        );
        assert_eq!(g.inits.len(), 2);
        let text = super::super::playlist::media_playlist(&g, 0).unwrap();
        assert_eq!(text.matches("#EXT-X-MAP:URI=").count(), 2, "{text}");
    }
}
