//! The sink that cuts a stream into segments: every publication's packets, muxed to MPEG-TS
//! with core/media's `TsMuxer`, on the host's sink thread.

use std::sync::{Arc, Mutex};

use fstream_abi::{payload_from_vec, sdk::Consume, MediaKind, MediaPacket, PluginError};
use fstream_media::ts::{TsMuxer, TsUnit};

use super::store::{lock, StreamSegments};

/// Configuration packets kept while waiting for the first frame (to learn which tracks exist).
const MAX_EARLY_PACKETS: usize = 16;

#[derive(Debug, Clone)]
pub struct Cutting {
    pub segment_ms: u32,
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
        }
    }

    /// Ends the current segment at `end_ts` and hands it to the store.
    fn close_segment(&mut self, end_ts: u32) {
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
        if let Some(m) = &mut self.muxer {
            m.tables(&mut self.current);
        }
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
