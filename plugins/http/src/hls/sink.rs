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
