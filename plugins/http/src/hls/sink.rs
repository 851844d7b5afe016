//! The sink that cuts a stream into segments: every publication's packets, muxed to MPEG-TS
//! with core/media's `TsMuxer`, on the host's sink thread.

use std::sync::{Arc, Mutex};

use fstream_abi::{payload_from_vec, sdk::Consume, MediaKind, MediaPacket, PluginError};
use fstream_media::ts::{TsMuxer, TsUnit};

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
}

pub struct HlsSink {
    segments: Arc<Mutex<StreamSegments>>,
    cutting: Cutting,
    stream: String,
    muxer: Option<TsMuxer>,
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
    /// a keyframe.
    part_offset: usize,
    part_start: u32,
    part_independent: bool,
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
        }
    }

    /// Ends the open part at `end_ts` (if it holds a frame) and hands a copy to the store.
    fn close_part(&mut self, end_ts: u32) {
        if self.cutting.part_ms == 0 || self.start.is_none() {
            return;
        }
        let Some(bytes) = self.current.get(self.part_offset..) else {
            return;
        };
        // Only the tables: nothing to play yet.
        if bytes.len() <= 2 * fstream_media::ts::TS_PACKET_LEN {
            return;
        }
        let part = Part {
            duration_ms: end_ts.wrapping_sub(self.part_start).min(600_000),
            independent: self.part_independent,
            data: payload_from_vec(bytes.to_vec()),
        };
        lock(&self.segments).push_part(part);
    }

    /// Starts a part at `ts`: with the tables, so that it is whole TS by itself.
    fn open_part(&mut self, ts: u32, independent: bool) {
        self.part_offset = self.current.len();
        if let Some(m) = &mut self.muxer {
            m.tables(&mut self.current);
        }
        self.part_start = ts;
        self.part_independent = independent;
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
            let due = match self.start {
                None => true,
                Some(s) => ts.wrapping_sub(s) >= self.cutting.segment_ms || self.waiting_for_key,
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
            && self.current.len() > self.part_offset + 2 * fstream_media::ts::TS_PACKET_LEN;
        if part_due {
            self.close_part(ts);
            self.open_part(ts, keyframe || !self.video);
        }
        let Some(m) = &mut self.muxer else { return };
        let unit = if is_video {
            m.video(&mut self.current, &p.payload, ts)
        } else {
            m.audio(&mut self.current, &p.payload, ts)
        };
        if unit != TsUnit::Skipped {
            self.last = self.last.max(ts);
        }
        if self.current.len() > self.cutting.max_segment_bytes {
            tracing::warn!(stream = %self.stream, bytes = self.current.len(),
                "an HLS segment outgrew hls_max_segment_bytes; cut it and wait for a keyframe");
            self.close_segment(ts);
            self.waiting_for_key = true;
            self.start = None;
        }
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
                    let mut none = Vec::new();
                    if p.kind == MediaKind::Video {
                        m.video(&mut none, &p.payload, p.timestamp);
                    } else {
                        m.audio(&mut none, &p.payload, p.timestamp);
                    }
                }
                None if self.early.len() < MAX_EARLY_PACKETS => self.early.push(p.clone()),
                None => {}
            }
            return Ok(());
        }
        if self.muxer.is_none() {
            // The first frame: the tracks are those configured so far (or this frame's kind).
            let video = self.video || p.kind == MediaKind::Video;
            let audio = self.audio || p.kind == MediaKind::Audio;
            self.video = video;
            self.audio = audio;
            let mut m = TsMuxer::new(video, audio);
            let mut none = Vec::new();
            for e in std::mem::take(&mut self.early) {
                if e.kind == MediaKind::Video {
                    m.video(&mut none, &e.payload, e.timestamp);
                } else {
                    m.audio(&mut none, &e.payload, e.timestamp);
                }
            }
            tracing::debug!(stream = %self.stream, video, audio, "hls: segmenting");
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
        let segs = store.publish("a/b", 7, 4).unwrap();
        HlsSink::new(
            "a/b".into(),
            segs,
            Cutting {
                segment_ms: 1000,
                part_ms,
                window: 10,
                max_segment_bytes: 1 << 20,
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
}
