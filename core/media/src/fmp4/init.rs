//! The init segment (`ftyp` and `moov`): what a player needs before any fragment: the tracks,
//! their time scales and their decoder configurations, with no samples (ISO/IEC 14496-12 with
//! movie fragments, as CMAF and HLS use it).

use super::boxes::{u16be, u32be, unity_matrix, write_box, write_full_box};

/// Track ids: video is 1 and audio 2 whichever is present.
pub const VIDEO_TRACK_ID: u32 = 1;
pub const AUDIO_TRACK_ID: u32 = 2;
/// Video time is counted in 90 kHz ticks (what MPEG-TS uses, so both formats agree).
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// A video decoder configuration record, as the codec's sample entry carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoConfig {
    /// An AVCDecoderConfigurationRecord (`avc1` / `avcC`).
    Avc(Vec<u8>),
    /// An HEVCDecoderConfigurationRecord (`hvc1` / `hvcC`).
    Hevc(Vec<u8>),
    /// An AV1CodecConfigurationRecord (`av01` / `av1C`).
    Av1(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    pub config: VideoConfig,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    /// The AAC AudioSpecificConfig.
    pub asc: Vec<u8>,
    pub sample_rate: u32,
    pub channels: u16,
}

/// `ftyp` and `moov` for the tracks given.
pub fn init_segment(video: Option<&VideoTrack>, audio: Option<&AudioTrack>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_box(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"iso5");
        u32be(o, 512);
        for brand in [b"iso5", b"iso6", b"mp41"] {
            o.extend_from_slice(brand);
        }
    });
    write_box(&mut out, b"moov", |o| {
        write_full_box(o, b"mvhd", 0, 0, |o| {
            u32be(o, 0); // creation time
            u32be(o, 0); // modification time
            u32be(o, 1000);
            u32be(o, 0); // duration: unknown (fragments follow)
            u32be(o, 0x0001_0000); // rate 1.0
            u16be(o, 0x0100); // volume 1.0
            o.extend_from_slice(&[0; 10]);
            unity_matrix(o);
            o.extend_from_slice(&[0; 24]);
            u32be(o, AUDIO_TRACK_ID + 1); // next track id
        });
        if let Some(v) = video {
            video_trak(o, v);
        }
        if let Some(a) = audio {
            audio_trak(o, a);
        }
        write_box(o, b"mvex", |o| {
            let ids = video
                .map(|_| VIDEO_TRACK_ID)
                .into_iter()
                .chain(audio.map(|_| AUDIO_TRACK_ID));
            for id in ids {
                write_full_box(o, b"trex", 0, 0, |o| {
                    u32be(o, id);
                    u32be(o, 1); // sample description index
                    u32be(o, 0); // default duration, size, flags: every trun says its own
                    u32be(o, 0);
                    u32be(o, 0);
                });
            }
        });
    });
    out
}

fn tkhd(o: &mut Vec<u8>, id: u32, volume: u16, width: u32, height: u32) {
    // Flags: enabled, in movie.
    write_full_box(o, b"tkhd", 0, 3, |o| {
        u32be(o, 0);
        u32be(o, 0);
        u32be(o, id);
        u32be(o, 0);
        u32be(o, 0); // duration
        o.extend_from_slice(&[0; 8]);
        u16be(o, 0); // layer
        u16be(o, 0); // alternate group
        u16be(o, volume);
        u16be(o, 0);
        unity_matrix(o);
        u32be(o, width.min(0xFFFF) << 16);
        u32be(o, height.min(0xFFFF) << 16);
    });
}

fn mdhd_hdlr(o: &mut Vec<u8>, timescale: u32, handler: &[u8; 4], name: &str) {
    write_full_box(o, b"mdhd", 0, 0, |o| {
        u32be(o, 0);
        u32be(o, 0);
        u32be(o, timescale);
        u32be(o, 0);
        u16be(o, 0x55C4); // "und"
        u16be(o, 0);
    });
    write_full_box(o, b"hdlr", 0, 0, |o| {
        u32be(o, 0);
        o.extend_from_slice(handler);
        o.extend_from_slice(&[0; 12]);
        o.extend_from_slice(name.as_bytes());
        o.push(0);
    });
}

/// `dinf` (the media is in this file) and the empty sample tables of a fragmented track.
fn dinf_stbl(o: &mut Vec<u8>, entry: impl FnOnce(&mut Vec<u8>)) {
    write_box(o, b"dinf", |o| {
        write_full_box(o, b"dref", 0, 0, |o| {
            u32be(o, 1);
            write_full_box(o, b"url ", 0, 1, |_| {});
        });
    });
    write_box(o, b"stbl", |o| {
        write_full_box(o, b"stsd", 0, 0, |o| {
            u32be(o, 1);
            entry(o);
        });
        for kind in [b"stts", b"stsc", b"stco"] {
            write_full_box(o, kind, 0, 0, |o| u32be(o, 0));
        }
        write_full_box(o, b"stsz", 0, 0, |o| {
            u32be(o, 0);
            u32be(o, 0);
        });
    });
}

fn video_trak(o: &mut Vec<u8>, v: &VideoTrack) {
    let (w, h) = (v.width.min(0xFFFF), v.height.min(0xFFFF));
    write_box(o, b"trak", |o| {
        tkhd(o, VIDEO_TRACK_ID, 0, w, h);
        write_box(o, b"mdia", |o| {
            mdhd_hdlr(o, VIDEO_TIMESCALE, b"vide", "VideoHandler");
            write_box(o, b"minf", |o| {
                write_full_box(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8]));
                let (entry, config_box, record) = match &v.config {
                    VideoConfig::Avc(r) => (b"avc1", b"avcC", r),
                    VideoConfig::Hevc(r) => (b"hvc1", b"hvcC", r),
                    VideoConfig::Av1(r) => (b"av01", b"av1C", r),
                };
                dinf_stbl(o, |o| {
                    write_box(o, entry, |o| {
                        o.extend_from_slice(&[0; 6]);
                        u16be(o, 1); // data reference index
                        o.extend_from_slice(&[0; 16]);
                        u16be(o, w as u16);
                        u16be(o, h as u16);
                        u32be(o, 0x0048_0000); // 72 dpi
                        u32be(o, 0x0048_0000);
                        u32be(o, 0);
                        u16be(o, 1); // frame count
                        o.extend_from_slice(&[0; 32]); // compressor name
                        u16be(o, 0x0018); // depth
                        u16be(o, 0xFFFF);
                        write_box(o, config_box, |o| o.extend_from_slice(record));
                    });
                });
            });
        });
    });
}

/// An MPEG-4 descriptor: tag, length (7 bits a byte, high bit: more), body.
fn descriptor(o: &mut Vec<u8>, tag: u8, body: &[u8]) {
    o.push(tag);
    let len = body.len().min(0x0FFF_FFFF);
    for shift in [21, 14, 7] {
        if len >> shift != 0 {
            o.push(0x80 | ((len >> shift) & 0x7F) as u8);
        }
    }
    o.push((len & 0x7F) as u8);
    o.extend_from_slice(body);
}

fn esds(o: &mut Vec<u8>, asc: &[u8]) {
    write_full_box(o, b"esds", 0, 0, |o| {
        let mut dec = vec![0x40, 0x15, 0, 0, 0]; // AAC, audio stream, buffer size 0
        dec.extend_from_slice(&[0; 8]); // max and average bitrate: unknown
        descriptor(&mut dec, 0x05, asc);
        let mut es = vec![0, 0, 0]; // ES id, flags
        descriptor(&mut es, 0x04, &dec);
        descriptor(&mut es, 0x06, &[0x02]);
        descriptor(o, 0x03, &es);
    });
}

fn audio_trak(o: &mut Vec<u8>, a: &AudioTrack) {
    write_box(o, b"trak", |o| {
        tkhd(o, AUDIO_TRACK_ID, 0x0100, 0, 0);
        write_box(o, b"mdia", |o| {
            mdhd_hdlr(o, a.sample_rate.max(1), b"soun", "SoundHandler");
            write_box(o, b"minf", |o| {
                write_full_box(o, b"smhd", 0, 0, |o| u32be(o, 0));
                dinf_stbl(o, |o| {
                    write_box(o, b"mp4a", |o| {
                        o.extend_from_slice(&[0; 6]);
                        u16be(o, 1);
                        o.extend_from_slice(&[0; 8]);
                        u16be(o, a.channels);
                        u16be(o, 16); // sample size
                        u32be(o, 0);
                        u32be(o, a.sample_rate.min(0xFFFF) << 16);
                        esds(o, &a.asc);
                    });
                });
            });
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmp4::boxes::{find_box, read_boxes};

    #[test]
    fn an_init_segment_nests_what_a_player_looks_for() {
        let v = VideoTrack {
            config: VideoConfig::Avc(vec![
                1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 2, 0x67, 1, 1, 0, 1, 0x68,
            ]),
            width: 320,
            height: 180,
        };
        let a = AudioTrack {
            asc: vec![0x12, 0x10],
            sample_rate: 44100,
            channels: 2,
        };
        let init = init_segment(Some(&v), Some(&a));
        let top: Vec<_> = read_boxes(&init).iter().map(|b| b.kind).collect();
        assert_eq!(top, [*b"ftyp", *b"moov"]);
        let moov = find_box(&init, b"moov").unwrap();
        let kinds: Vec<_> = read_boxes(moov).iter().map(|b| b.kind).collect();
        assert_eq!(kinds, [*b"mvhd", *b"trak", *b"trak", *b"mvex"]);
        let trak = read_boxes(moov)[1].body;
        let stsd = ["mdia", "minf", "stbl", "stsd"]
            .iter()
            .try_fold(trak, |b, k| find_box(b, k.as_bytes().try_into().unwrap()))
            .unwrap();
        let avc1 = find_box(&stsd[8..], b"avc1").unwrap();
        assert_eq!(&avc1[24..28], &[1, 64, 0, 180], "width and height");
        assert_eq!(find_box(&avc1[78..], b"avcC").unwrap()[0], 1);
        let mut d = Vec::new();
        descriptor(&mut d, 5, &[0; 200]);
        assert_eq!(&d[..3], &[5, 0x81, 0x48]);
    }
}
