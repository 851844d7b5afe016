//! FLV tag data (AVC and legacy-id HEVC, Enhanced RTMP HEVC, AV1 and AVC; AAC audio) to
//! fragmented MP4: samples are gathered as they come and written out as one fragment whenever
//! the caller cuts (a segment or a partial segment).

use super::{
    dims,
    fragment::{write_fragment, Run, Sample, SAMPLE_DEPENDENT, SAMPLE_SYNC},
    init::{
        init_segment, AudioTrack, VideoConfig, VideoTrack, AUDIO_TRACK_ID, VIDEO_TIMESCALE,
        VIDEO_TRACK_ID,
    },
};
use crate::flv::{
    classify_audio, classify_video, codec_id, AudioCodec, VideoCodec, FOURCC_AV1, FOURCC_HEVC,
    SOUND_FORMAT_AAC,
};
use crate::ts::aac::AacConfig;

/// Samples in an AAC frame.
const AAC_FRAME: u64 = 1024;
/// A video sample's duration when nothing else tells (one frame at 30 fps).
const DEFAULT_VIDEO_TICKS: u32 = 3000;
const FOURCC_AVC: [u8; 4] = *b"avc1";

/// What a tag became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmp4Unit {
    Video {
        keyframe: bool,
    },
    Audio,
    /// A decoder configuration (the init segment changes if it differs from the last).
    Config,
    /// Nothing this muxer carries (another codec, a frame before its configuration, damage).
    Skipped,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    dts: u64,
    offset: i32,
    size: u32,
    sync: bool,
}

#[derive(Debug, Clone, Default)]
struct Queue {
    samples: Vec<Pending>,
    data: Vec<u8>,
}

/// One stream's muxer.
#[derive(Debug, Clone)]
pub struct Fmp4Muxer {
    want_video: bool,
    want_audio: bool,
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
    /// Grows whenever a decoder configuration changes.
    version: u32,
    vq: Queue,
    aq: Queue,
    /// Where the next audio sample would start if none is missing (keeps AAC's frames
    /// back to back although FLV times are whole milliseconds).
    audio_next: Option<u64>,
    sequence: u32,
}

/// The decoder configuration and coded data a video tag holds.
enum VideoTag<'a> {
    Config(VideoConfig),
    Frame {
        data: &'a [u8],
        cts_ms: i32,
        av1: bool,
    },
}

fn si24(b: &[u8]) -> Option<i32> {
    let (c0, c1, c2) = (*b.first()?, *b.get(1)?, *b.get(2)?);
    Some((i32::from_be_bytes([0, c0, c1, c2]) << 8) >> 8)
}

fn parse_video(data: &[u8]) -> Option<VideoTag<'_>> {
    let info = classify_video(data)?;
    let b0 = *data.first()?;
    match (info.codec, info.enhanced) {
        (VideoCodec::Legacy(id @ (codec_id::AVC | codec_id::HEVC_LEGACY)), false) => {
            match data.get(1)? {
                0 => {
                    let rec = data.get(5..)?.to_vec();
                    Some(VideoTag::Config(if id == codec_id::AVC {
                        VideoConfig::Avc(rec)
                    } else {
                        VideoConfig::Hevc(rec)
                    }))
                }
                1 => Some(VideoTag::Frame {
                    data: data.get(5..)?,
                    cts_ms: si24(data.get(2..5)?)?,
                    av1: false,
                }),
                _ => None,
            }
        }
        (VideoCodec::FourCc(cc), true) => {
            let known = [FOURCC_AVC, FOURCC_HEVC, FOURCC_AV1];
            if !known.contains(&cc) {
                return None;
            }
            match b0 & 0x0F {
                0 => {
                    let rec = data.get(5..)?.to_vec();
                    Some(VideoTag::Config(match cc {
                        FOURCC_AVC => VideoConfig::Avc(rec),
                        FOURCC_HEVC => VideoConfig::Hevc(rec),
                        _ => VideoConfig::Av1(rec),
                    }))
                }
                // CodedFrames: AVC and HEVC carry a composition time; AV1 does not.
                1 if cc != FOURCC_AV1 => Some(VideoTag::Frame {
                    data: data.get(8..)?,
                    cts_ms: si24(data.get(5..8)?)?,
                    av1: false,
                }),
                1 | 3 => Some(VideoTag::Frame {
                    data: data.get(5..)?,
                    cts_ms: 0,
                    av1: cc == FOURCC_AV1,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

fn dimensions(config: &VideoConfig) -> (u32, u32) {
    let found = match config {
        VideoConfig::Avc(rec) => crate::ts::h264::AvcConfig::parse(rec)
            .and_then(|c| c.sps.first().and_then(|s| dims::h264_sps(s))),
        VideoConfig::Hevc(rec) => dims::hevc_record_sps(rec),
        VideoConfig::Av1(rec) => dims::av1_record(rec),
    };
    found.unwrap_or((0, 0))
}

impl Fmp4Muxer {
    /// A muxer for a program with video, audio, or both.
    pub fn new(video: bool, audio: bool) -> Self {
        Self {
            want_video: video,
            want_audio: audio,
            video: None,
            audio: None,
            version: 0,
            vq: Queue::default(),
            aq: Queue::default(),
            audio_next: None,
            sequence: 0,
        }
    }

    /// Whether a tag's data holds video this muxer carries and MPEG-TS does not (HEVC, AV1,
    /// Enhanced RTMP's AVC): such a stream needs fMP4 segments.
    pub fn needs_fmp4(video_tag: &[u8]) -> bool {
        match parse_video(video_tag) {
            Some(VideoTag::Config(VideoConfig::Avc(_))) => {
                classify_video(video_tag).is_some_and(|i| i.enhanced)
            }
            Some(VideoTag::Config(_)) => true,
            _ => false,
        }
    }

    /// An FLV video tag's data at `ts_ms` (its decode time).
    pub fn video(&mut self, data: &[u8], ts_ms: u32) -> Fmp4Unit {
        if !self.want_video {
            return Fmp4Unit::Skipped;
        }
        let Some(tag) = parse_video(data) else {
            return Fmp4Unit::Skipped;
        };
        match tag {
            VideoTag::Config(config) => {
                if self.video.as_ref().is_none_or(|v| v.config != config) {
                    let (width, height) = dimensions(&config);
                    self.video = Some(VideoTrack {
                        config,
                        width,
                        height,
                    });
                    self.version += 1;
                }
                Fmp4Unit::Config
            }
            VideoTag::Frame {
                data: frame,
                cts_ms,
                av1,
            } => {
                if self.video.is_none() || frame.is_empty() {
                    return Fmp4Unit::Skipped;
                }
                let keyframe = classify_video(data).is_some_and(|i| i.is_keyframe());
                let start = self.vq.data.len();
                if av1 {
                    // Temporal delimiters are left out of samples (ISO BMFF binding of AV1).
                    for (kind, whole, _) in dims::obus(frame) {
                        if kind != dims::OBU_TEMPORAL_DELIMITER {
                            self.vq.data.extend_from_slice(whole);
                        }
                    }
                } else {
                    self.vq.data.extend_from_slice(frame);
                }
                let size = self.vq.data.len() - start;
                if size == 0 {
                    return Fmp4Unit::Skipped;
                }
                self.vq.samples.push(Pending {
                    dts: u64::from(ts_ms) * u64::from(VIDEO_TIMESCALE / 1000),
                    offset: cts_ms.saturating_mul((VIDEO_TIMESCALE / 1000) as i32),
                    size: size as u32,
                    sync: keyframe,
                });
                Fmp4Unit::Video { keyframe }
            }
        }
    }

    /// An FLV audio tag's data at `ts_ms`.
    pub fn audio(&mut self, data: &[u8], ts_ms: u32) -> Fmp4Unit {
        if !self.want_audio {
            return Fmp4Unit::Skipped;
        }
        let Some(info) = classify_audio(data) else {
            return Fmp4Unit::Skipped;
        };
        if info.codec != AudioCodec::Legacy(SOUND_FORMAT_AAC) {
            return Fmp4Unit::Skipped;
        }
        match data.get(1) {
            Some(0) => {
                let Some(asc) = data.get(2..) else {
                    return Fmp4Unit::Skipped;
                };
                let Some(parsed) = AacConfig::parse(asc) else {
                    return Fmp4Unit::Skipped;
                };
                let track = AudioTrack {
                    asc: asc.to_vec(),
                    sample_rate: parsed.sample_rate(),
                    channels: u16::from(parsed.channels.max(1)),
                };
                if self.audio.as_ref() != Some(&track) {
                    self.audio = Some(track);
                    self.audio_next = None;
                    self.version += 1;
                }
                Fmp4Unit::Config
            }
            Some(1) => {
                let (Some(track), Some(frame)) = (&self.audio, data.get(2..)) else {
                    return Fmp4Unit::Skipped;
                };
                if frame.is_empty() {
                    return Fmp4Unit::Skipped;
                }
                let rate = u64::from(track.sample_rate);
                let at = u64::from(ts_ms) * rate / 1000;
                // Within half a frame of where the last one ended: right after it.
                let dts = match self.audio_next {
                    Some(next) if at.abs_diff(next) <= AAC_FRAME / 2 => next,
                    _ => at,
                };
                self.audio_next = Some(dts + AAC_FRAME);
                self.aq.samples.push(Pending {
                    dts,
                    offset: 0,
                    size: frame.len() as u32,
                    sync: true,
                });
                self.aq.data.extend_from_slice(frame);
                Fmp4Unit::Audio
            }
            _ => Fmp4Unit::Skipped,
        }
    }

    /// Grows whenever a decoder configuration changes: segments after a change need the new
    /// init segment.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The init segment of the tracks configured so far; `None` before any is.
    pub fn init_segment(&self) -> Option<Vec<u8>> {
        let video = self.video.as_ref().filter(|_| self.want_video);
        let audio = self.audio.as_ref().filter(|_| self.want_audio);
        (video.is_some() || audio.is_some()).then(|| init_segment(video, audio))
    }

    /// The picture size the video configuration gives ((0, 0) if unknown).
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        self.video.as_ref().map(|v| (v.width, v.height))
    }

    /// Bytes of samples waiting for the next fragment.
    pub fn pending_bytes(&self) -> usize {
        self.vq.data.len() + self.aq.data.len()
    }

    pub fn has_pending(&self) -> bool {
        !self.vq.samples.is_empty() || !self.aq.samples.is_empty()
    }

    /// Writes the samples gathered so far as one fragment ending at `end_ms` (the time the
    /// next fragment starts) and forgets them. Nothing is written when there are none.
    pub fn fragment(&mut self, out: &mut Vec<u8>, end_ms: u32) {
        if !self.has_pending() {
            return;
        }
        let video_end = u64::from(end_ms) * u64::from(VIDEO_TIMESCALE / 1000);
        let v = samples(
            &self.vq.samples,
            Some(video_end),
            u64::from(DEFAULT_VIDEO_TICKS),
        );
        let a = samples(&self.aq.samples, None, AAC_FRAME);
        let decode_time = |q: &Queue| q.samples.first().map_or(0, |s| s.dts);
        self.sequence = self.sequence.wrapping_add(1);
        write_fragment(
            out,
            self.sequence,
            &[
                Run {
                    track_id: VIDEO_TRACK_ID,
                    decode_time: decode_time(&self.vq),
                    samples: &v,
                    data: &self.vq.data,
                },
                Run {
                    track_id: AUDIO_TRACK_ID,
                    decode_time: decode_time(&self.aq),
                    samples: &a,
                    data: &self.aq.data,
                },
            ],
        );
        self.vq = Queue::default();
        self.aq = Queue::default();
    }
}

/// Each sample lasts until the next starts; the last until `end` (when given and later),
/// else as long as the one before it, else `fallback`.
fn samples(pending: &[Pending], end: Option<u64>, fallback: u64) -> Vec<Sample> {
    let mut out = Vec::with_capacity(pending.len());
    let mut last_duration = fallback;
    for (i, p) in pending.iter().enumerate() {
        let next = match pending.get(i + 1) {
            Some(n) => Some(n.dts),
            None => end.filter(|&e| e > p.dts),
        };
        let duration = match next {
            Some(n) => n.saturating_sub(p.dts),
            None => last_duration,
        };
        last_duration = if duration > 0 {
            duration
        } else {
            last_duration
        };
        out.push(Sample {
            duration: u32::try_from(duration).unwrap_or(u32::MAX),
            size: p.size,
            flags: if p.sync {
                SAMPLE_SYNC
            } else {
                SAMPLE_DEPENDENT
            },
            composition_offset: p.offset,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmp4::boxes::{find_box, read_boxes};

    const AVC_CONFIG: [u8; 19] = [
        0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 2, 0x67, 1, 1, 0, 1, 0x68,
    ];

    fn trun_samples(frag: &[u8], track: u32) -> Option<(u64, Vec<[u32; 4]>)> {
        let moof = find_box(frag, b"moof")?;
        read_boxes(moof)
            .into_iter()
            .filter(|b| &b.kind == b"traf")
            .find_map(|traf| {
                let tfhd = find_box(traf.body, b"tfhd")?;
                (u32::from_be_bytes(tfhd[4..8].try_into().ok()?) == track).then_some(())?;
                let tfdt = find_box(traf.body, b"tfdt")?;
                let t = u64::from_be_bytes(tfdt[4..12].try_into().ok()?);
                let trun = find_box(traf.body, b"trun")?;
                let n = u32::from_be_bytes(trun[4..8].try_into().ok()?) as usize;
                let v = (0..n)
                    .map(|i| {
                        let at = 12 + i * 16;
                        let f = |k: usize| {
                            u32::from_be_bytes(trun[at + k * 4..at + k * 4 + 4].try_into().unwrap())
                        };
                        [f(0), f(1), f(2), f(3)]
                    })
                    .collect();
                Some((t, v))
            })
    }

    #[test]
    fn avc_frames_keep_their_nal_units_and_times() {
        let mut m = Fmp4Muxer::new(true, true);
        assert_eq!(m.video(&AVC_CONFIG, 0), Fmp4Unit::Config);
        assert_eq!(m.audio(&[0xAF, 0, 0x12, 0x10], 0), Fmp4Unit::Config);
        assert_eq!(m.version(), 2);
        // The same configuration again changes nothing.
        m.video(&AVC_CONFIG, 0);
        assert_eq!(m.version(), 2);
        let key = [0x17, 1, 0, 0, 40, 0, 0, 0, 2, 0x65, 1];
        let inter = [0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 1];
        assert_eq!(m.video(&key, 1000), Fmp4Unit::Video { keyframe: true });
        assert_eq!(m.video(&inter, 1040), Fmp4Unit::Video { keyframe: false });
        for i in 0..3 {
            assert_eq!(m.audio(&[0xAF, 1, 9, 9], 1000 + i * 23), Fmp4Unit::Audio);
        }
        let mut out = Vec::new();
        m.fragment(&mut out, 1100);
        let (t, v) = trun_samples(&out, VIDEO_TRACK_ID).unwrap();
        assert_eq!(t, 90_000);
        assert_eq!(v[0], [3600, 6, SAMPLE_SYNC, 40 * 90]);
        assert_eq!(v[1], [5400, 6, SAMPLE_DEPENDENT, 0]);
        let (t, a) = trun_samples(&out, AUDIO_TRACK_ID).unwrap();
        assert_eq!(t, 44_100);
        assert!(a.iter().all(|s| s[0] == 1024 && s[1] == 2), "{a:?}");
        let mdat = find_box(&out, b"mdat").unwrap();
        assert_eq!(&mdat[..6], &[0, 0, 0, 2, 0x65, 1]);
        assert!(!m.has_pending());
        // The next fragment continues the audio exactly where the last frame ended.
        m.audio(&[0xAF, 1, 9, 9], 1069);
        out.clear();
        m.fragment(&mut out, 1200);
        assert_eq!(
            trun_samples(&out, AUDIO_TRACK_ID).unwrap().0,
            44_100 + 3 * 1024
        );
        assert!(trun_samples(&out, VIDEO_TRACK_ID).is_none());
        let init = m.init_segment().unwrap();
        assert!(find_box(&init, b"moov").is_some());
        assert_eq!(
            m.dimensions(),
            Some((0, 0)),
            "this made-up SPS gives no size"
        );
    }

    #[test]
    fn enhanced_hevc_and_av1_tags() {
        let mut m = Fmp4Muxer::new(true, false);
        let seq = [0x90, b'h', b'v', b'c', b'1', 1, 2, 3];
        assert!(Fmp4Muxer::needs_fmp4(&seq));
        assert!(!Fmp4Muxer::needs_fmp4(&AVC_CONFIG));
        assert_eq!(m.video(&seq, 0), Fmp4Unit::Config);
        // CodedFrames: a composition time, then NAL units.
        let coded = [0x91, b'h', b'v', b'c', b'1', 0, 0, 80, 0, 0, 0, 1, 0x26];
        assert_eq!(m.video(&coded, 0), Fmp4Unit::Video { keyframe: true });
        // CodedFramesX: none.
        let x = [0xA3, b'h', b'v', b'c', b'1', 0, 0, 0, 1, 0x02];
        assert_eq!(m.video(&x, 40), Fmp4Unit::Video { keyframe: false });
        assert_eq!(m.audio(&[0xAF, 0, 0x12, 0x10], 0), Fmp4Unit::Skipped);
        let mut out = Vec::new();
        m.fragment(&mut out, 80);
        let (_, v) = trun_samples(&out, VIDEO_TRACK_ID).unwrap();
        assert_eq!(v[0][3], 80 * 90);
        assert_eq!(v[1][3], 0);
        assert_eq!(v[1][0], 3600);

        let mut m = Fmp4Muxer::new(true, false);
        let av1c = [0x90, b'a', b'v', b'0', b'1', 0x81, 0, 0x0C, 0];
        m.video(&av1c, 0);
        // A temporal delimiter, then a frame OBU of one byte.
        let frame = [0x91, b'a', b'v', b'0', b'1', 0x12, 0x00, 0x32, 0x01, 0xAB];
        assert_eq!(m.video(&frame, 0), Fmp4Unit::Video { keyframe: true });
        out.clear();
        m.fragment(&mut out, 40);
        assert_eq!(find_box(&out, b"mdat").unwrap(), &[0x32, 0x01, 0xAB]);
        // Unknown codecs and damage are skipped.
        assert_eq!(
            m.video(&[0x91, b'v', b'p', b'0', b'9', 1], 0),
            Fmp4Unit::Skipped
        );
        assert_eq!(m.video(&[0x17, 1, 0], 0), Fmp4Unit::Skipped);
    }
}
