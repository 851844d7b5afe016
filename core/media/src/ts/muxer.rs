//! FLV tag data (legacy AVC video, AAC audio) to MPEG-TS, one PES per tag.

use super::{
    aac::{adts, AacConfig},
    h264::{to_annex_b, AvcConfig},
    packets::{
        packetize, pat, pes, pmt, Counters, StartFlags, PID_AUDIO, PID_VIDEO, STREAM_ID_AUDIO,
        STREAM_ID_VIDEO,
    },
};
use crate::flv::{
    classify_audio, classify_video, codec_id, AudioCodec, VideoCodec, SOUND_FORMAT_AAC,
};

/// What a tag became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsUnit {
    /// A video access unit; a segment may start at a keyframe.
    Video {
        keyframe: bool,
    },
    Audio,
    /// A decoder configuration, kept for the frames after it (no bytes).
    Config,
    /// Nothing this muxer carries (another codec, a frame before its configuration, damage).
    Skipped,
}

/// One stream's muxer: continuity counters and codec configurations.
#[derive(Debug, Clone)]
pub struct TsMuxer {
    counters: Counters,
    avc: Option<AvcConfig>,
    aac: Option<AacConfig>,
    video: bool,
    audio: bool,
}

impl TsMuxer {
    /// A muxer for a program with video, audio, or both.
    pub fn new(video: bool, audio: bool) -> Self {
        Self {
            counters: Counters::default(),
            avc: None,
            aac: None,
            video,
            audio,
        }
    }

    /// The PAT and PMT, which start every segment.
    pub fn tables(&mut self, out: &mut Vec<u8>) {
        pat(out, &mut self.counters);
        pmt(out, &mut self.counters, self.video, self.audio);
    }

    /// An FLV video tag's data at `ts_ms` (its decode time).
    pub fn video(&mut self, out: &mut Vec<u8>, data: &[u8], ts_ms: u32) -> TsUnit {
        let Some(info) = classify_video(data) else {
            return TsUnit::Skipped;
        };
        if info.codec != VideoCodec::Legacy(codec_id::AVC) || info.enhanced {
            return TsUnit::Skipped;
        }
        match data.get(1) {
            Some(0) => {
                self.avc = data.get(5..).and_then(AvcConfig::parse);
                return TsUnit::Config;
            }
            Some(1) => {}
            _ => return TsUnit::Skipped,
        }
        let (Some(config), Some(&[c0, c1, c2]), Some(nalus)) =
            (&self.avc, data.get(2..5), data.get(5..))
        else {
            return TsUnit::Skipped;
        };
        // Composition time offset: signed 24 bits.
        let cts = (i32::from_be_bytes([0, c0, c1, c2]) << 8) >> 8;
        let keyframe = info.is_keyframe();
        let Some(au) = to_annex_b(config, nalus, keyframe) else {
            return TsUnit::Skipped;
        };
        let dts = u64::from(ts_ms) * 90;
        let pts = (i64::from(ts_ms) + i64::from(cts.max(0))) as u64 * 90;
        let pes = pes(STREAM_ID_VIDEO, pts, dts, &au);
        let start = StartFlags {
            random_access: keyframe,
            pcr: Some(dts),
        };
        packetize(out, &mut self.counters, PID_VIDEO, &pes, start);
        TsUnit::Video { keyframe }
    }

    /// An FLV audio tag's data at `ts_ms`.
    pub fn audio(&mut self, out: &mut Vec<u8>, data: &[u8], ts_ms: u32) -> TsUnit {
        let Some(info) = classify_audio(data) else {
            return TsUnit::Skipped;
        };
        if info.codec != AudioCodec::Legacy(SOUND_FORMAT_AAC) {
            return TsUnit::Skipped;
        }
        match data.get(1) {
            Some(0) => {
                self.aac = data.get(2..).and_then(AacConfig::parse);
                return TsUnit::Config;
            }
            Some(1) => {}
            _ => return TsUnit::Skipped,
        }
        let (Some(config), Some(frame)) = (&self.aac, data.get(2..)) else {
            return TsUnit::Skipped;
        };
        let t = u64::from(ts_ms) * 90;
        let pes = pes(STREAM_ID_AUDIO, t, t, &adts(config, frame));
        let start = StartFlags {
            random_access: true,
            // Without video the clock rides on audio.
            pcr: (!self.video).then_some(t),
        };
        packetize(out, &mut self.counters, PID_AUDIO, &pes, start);
        TsUnit::Audio
    }

    /// Whether frames of each kind can be muxed (their configuration has arrived).
    pub fn configured(&self) -> (bool, bool) {
        (self.avc.is_some(), self.aac.is_some())
    }
}
