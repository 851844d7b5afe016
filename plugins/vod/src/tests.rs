use std::sync::atomic::{AtomicUsize, Ordering};

use abi_stable::std_types::RVec;
use fstream_abi::{flags, sdk::Produce, MediaKind, MediaPacket, NetAddr};
use fstream_media::{
    amf0::Amf0Value,
    flv::{build_on_metadata, write_file_header, write_tag, TagType},
};

use super::*;

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "vod-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("media")).unwrap();
        Tmp(p)
    }
    fn media(&self) -> PathBuf {
        self.0.join("media")
    }
    fn vod(&self) -> Vod {
        Vod::new(&self.0, &Settings::default())
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a generated file holds.
#[derive(Clone, Copy)]
struct Spec {
    seconds: u32,
    /// Video keyframe every this many frames (25 fps).
    gop: u32,
    duration: bool,
    index: Index,
}

#[derive(Clone, Copy, PartialEq)]
enum Index {
    None,
    Good,
    /// Positions that point at the wrong tags.
    Wrong,
}

/// An FLV file: metadata, AVC and AAC sequence headers, 25 fps video, audio every 23 ms.
/// Returns the bytes and the (timestamp, offset) of each video keyframe.
fn make_flv(spec: Spec) -> (Vec<u8>, Vec<(u32, u64)>) {
    let frames = spec.seconds * 25;
    let mut body_tags: Vec<(TagType, u32, Vec<u8>)> = vec![
        (TagType::Video, 0, vec![0x17, 0, 0, 0, 0, 1, 0x64]),
        (TagType::Audio, 0, vec![0xAF, 0, 0x12, 0x10]),
    ];
    let mut t_a = 0;
    for i in 0..frames {
        let t_v = i * 40;
        while t_a <= t_v {
            let mut d = vec![0xAF, 1];
            d.extend_from_slice(&t_a.to_be_bytes());
            body_tags.push((TagType::Audio, t_a, d));
            t_a += 23;
        }
        let key = i % spec.gop == 0;
        let mut d = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        d.extend_from_slice(&t_v.to_be_bytes());
        d.resize(300, 0x55);
        body_tags.push((TagType::Video, t_v, d));
    }
    let n_keys = frames.div_ceil(spec.gop) as usize;
    let meta = |times: &[f64], positions: &[f64]| {
        let mut p = vec![("width".to_string(), Amf0Value::Number(320.0))];
        if spec.duration {
            p.push((
                "duration".into(),
                Amf0Value::Number(f64::from((frames - 1) * 40) / 1000.0),
            ));
        }
        if spec.index != Index::None {
            p.push((
                "keyframes".into(),
                Amf0Value::object([
                    (
                        "times",
                        Amf0Value::StrictArray(
                            times.iter().map(|t| Amf0Value::Number(*t)).collect(),
                        ),
                    ),
                    (
                        "filepositions",
                        Amf0Value::StrictArray(
                            positions.iter().map(|t| Amf0Value::Number(*t)).collect(),
                        ),
                    ),
                ]),
            ));
        }
        build_on_metadata(&p).unwrap()
    };
    // Two passes: the metadata's size does not depend on the numbers in it.
    let placeholder = meta(&vec![0.0; n_keys], &vec![0.0; n_keys]);
    let mut out = Vec::new();
    write_file_header(&mut out, true, true);
    write_tag(&mut out, TagType::Script, 0, &placeholder).unwrap();
    let mut keys = Vec::new();
    for (t, ts, d) in &body_tags {
        if *t == TagType::Video && d[0] == 0x17 && d[1] == 1 {
            keys.push((*ts, out.len() as u64));
        }
        write_tag(&mut out, *t, *ts, d).unwrap();
    }
    if spec.index != Index::None {
        let times: Vec<f64> = keys.iter().map(|k| f64::from(k.0) / 1000.0).collect();
        let mut positions: Vec<f64> = keys.iter().map(|k| k.1 as f64).collect();
        if spec.index == Index::Wrong {
            positions.iter_mut().for_each(|p| *p += 11.0);
        }
        let real = meta(&times, &positions);
        assert_eq!(real.len(), placeholder.len());
        out[13 + 11..13 + 11 + real.len()].copy_from_slice(&real);
    }
    (out, keys)
}

const PLAIN: Spec = Spec {
    seconds: 5,
    gop: 25,
    duration: true,
    index: Index::None,
};

fn drain(s: &mut FlvSource) -> Vec<MediaPacket> {
    let mut v = Vec::new();
    while let Some(p) = s.next_packet().unwrap() {
        v.push(p);
    }
    v
}

fn summary(p: &MediaPacket) -> (MediaKind, u8, u32) {
    (p.kind, p.flags, p.timestamp)
}

#[test]
fn plays_every_tag_with_headers_first() {
    let tmp = Tmp::new("play");
    let (bytes, _) = make_flv(PLAIN);
    std::fs::write(tmp.media().join("clip.flv"), &bytes).unwrap();
    let vod = tmp.vod();
    let mut s = vod.open_source("clip", "test").unwrap();
    assert_eq!(s.duration_ms(), 4960);
    let packets = drain(&mut s);
    assert_eq!(
        summary(&packets[0]),
        (MediaKind::Script, flags::METADATA, 0)
    );
    assert_eq!(
        summary(&packets[1]),
        (MediaKind::Video, flags::SEQUENCE_HEADER, 0)
    );
    assert_eq!(
        summary(&packets[2]),
        (MediaKind::Audio, flags::SEQUENCE_HEADER, 0)
    );
    assert_eq!(summary(&packets[3]), (MediaKind::Audio, 0, 0));
    assert_eq!(summary(&packets[4]), (MediaKind::Video, flags::KEYFRAME, 0));
    // Every tag of the file, in order, payloads intact.
    let mut d = fstream_media::flv::FlvDemuxer::new(1 << 20);
    d.push(&bytes);
    let mut n = 0;
    while let Some(t) = d.next_tag().unwrap() {
        let p = &packets[n];
        assert_eq!(p.kind as u8, t.tag.tag_type as u8);
        assert_eq!(p.timestamp, t.tag.timestamp);
        assert_eq!(&p.payload[..], &t.tag.data[..]);
        n += 1;
    }
    assert_eq!(n, packets.len());
    let keys = packets.iter().filter(|p| p.is_keyframe()).count();
    assert_eq!(keys, 5);
    // The `.flv` suffix is optional.
    assert!(vod.open_source("clip.flv", "test").is_ok());
}

#[test]
fn seeks_to_the_keyframe_before_and_resends_headers() {
    let tmp = Tmp::new("seek");
    let (bytes, _) = make_flv(PLAIN);
    std::fs::write(tmp.media().join("clip.flv"), &bytes).unwrap();
    let vod = tmp.vod();
    let mut s = vod.open_source("clip", "test").unwrap();
    // Seek before anything was read (rtmpdump -A): metadata first, then headers, at 2000.
    assert_eq!(s.seek(2500).unwrap(), 2000);
    let p: Vec<_> = (0..4).map(|_| s.next_packet().unwrap().unwrap()).collect();
    assert_eq!(summary(&p[0]), (MediaKind::Script, flags::METADATA, 2000));
    assert_eq!(
        summary(&p[1]),
        (MediaKind::Video, flags::SEQUENCE_HEADER, 2000)
    );
    assert_eq!(
        summary(&p[2]),
        (MediaKind::Audio, flags::SEQUENCE_HEADER, 2000)
    );
    assert_eq!(summary(&p[3]), (MediaKind::Video, flags::KEYFRAME, 2000));
    let rest = drain(&mut s);
    assert!(rest.iter().all(|p| p.timestamp >= 2000));
    assert_eq!(rest.last().unwrap().timestamp, 4960);

    // Seeks while playing: no metadata again.
    for (ask, land) in [(0, 0), (999, 0), (1000, 1000), (4999, 4000), (60_000, 4000)] {
        assert_eq!(s.seek(ask).unwrap(), land, "seek {ask}");
        let p: Vec<_> = (0..3).map(|_| s.next_packet().unwrap().unwrap()).collect();
        assert!(p[0].is_sequence_header() && p[1].is_sequence_header());
        assert_eq!(p[0].timestamp, land as u32);
        if land == 0 {
            // The start of the file: the first frame (audio at 0) follows.
            assert_eq!(summary(&p[2]), (MediaKind::Audio, 0, 0));
        } else {
            assert_eq!(
                summary(&p[2]),
                (MediaKind::Video, flags::KEYFRAME, land as u32)
            );
        }
    }
    assert_eq!(vod.cache.scans(), 1, "one scan for all seeks");
}

#[test]
fn uses_the_files_keyframe_index_and_checks_it() {
    let tmp = Tmp::new("index");
    let (good, keys) = make_flv(Spec {
        index: Index::Good,
        ..PLAIN
    });
    let (wrong, _) = make_flv(Spec {
        index: Index::Wrong,
        ..PLAIN
    });
    std::fs::write(tmp.media().join("good.flv"), &good).unwrap();
    std::fs::write(tmp.media().join("wrong.flv"), &wrong).unwrap();
    let vod = tmp.vod();
    let mut s = vod.open_source("good", "test").unwrap();
    assert_eq!(s.seek(3100).unwrap(), 3000);
    let p = drain(&mut s);
    assert_eq!(summary(&p[3]), (MediaKind::Video, flags::KEYFRAME, 3000));
    assert_eq!(vod.cache.scans(), 0, "the file's own index was used");
    assert_eq!(keys.len(), 5);

    let mut s = vod.open_source("wrong", "test").unwrap();
    assert_eq!(s.seek(3100).unwrap(), 3000);
    let p = drain(&mut s);
    assert_eq!(summary(&p[3]), (MediaKind::Video, flags::KEYFRAME, 3000));
    assert_eq!(vod.cache.scans(), 1, "a wrong index falls back to a scan");
}

#[test]
fn scans_are_shared_and_keyed_by_file_version() {
    let tmp = Tmp::new("cache");
    let (bytes, _) = make_flv(PLAIN);
    let path = tmp.media().join("clip.flv");
    std::fs::write(&path, &bytes).unwrap();
    let vod = tmp.vod();
    let mut players: Vec<_> = (0..8)
        .map(|_| vod.open_source("clip", "t").unwrap())
        .collect();
    std::thread::scope(|sc| {
        for s in players.iter_mut() {
            sc.spawn(move || assert_eq!(s.seek(1500).unwrap(), 1000));
        }
    });
    assert_eq!(vod.cache.scans(), 1);
    // A new version of the file (another size) is scanned again.
    let (longer, _) = make_flv(Spec {
        seconds: 7,
        ..PLAIN
    });
    std::fs::write(&path, &longer).unwrap();
    let mut s = vod.open_source("clip", "t").unwrap();
    assert_eq!(s.seek(6500).unwrap(), 6000);
    assert_eq!(vod.cache.scans(), 2);

    // The cache is bounded.
    let small = Vod::new(
        &tmp.0,
        &Settings {
            index_cache_entries: 1,
            ..Settings::default()
        },
    );
    std::fs::write(tmp.media().join("other.flv"), &bytes).unwrap();
    for name in ["clip", "other", "clip"] {
        small.open_source(name, "t").unwrap().seek(10).unwrap();
    }
    assert_eq!(small.cache.scans(), 3);
}

#[test]
fn duration_without_metadata_and_a_truncated_file() {
    let tmp = Tmp::new("dur");
    let (bytes, _) = make_flv(Spec {
        duration: false,
        ..PLAIN
    });
    std::fs::write(tmp.media().join("a.flv"), &bytes).unwrap();
    // Cut in the middle of a tag, as a crash leaves a recording.
    std::fs::write(tmp.media().join("b.flv"), &bytes[..bytes.len() - 100]).unwrap();
    let vod = tmp.vod();
    let a = vod.open_source("a", "t").unwrap();
    assert_eq!(a.duration_ms(), 4960);
    assert_eq!(vod.cache.scans(), 0, "found from the last tag");
    let mut b = vod.open_source("b", "t").unwrap();
    let d = b.duration_ms();
    assert!((4900..4960).contains(&d), "{d}");
    assert_eq!(vod.cache.scans(), 1);
    let p = drain(&mut b);
    assert!(p.last().unwrap().timestamp >= 4900);
    assert_eq!(b.seek(4500).unwrap(), 4000);
}

#[test]
fn audio_only_files_seek_by_audio_frames() {
    let tmp = Tmp::new("audio");
    let mut bytes = Vec::new();
    write_file_header(&mut bytes, true, false);
    write_tag(&mut bytes, TagType::Audio, 0, &[0xAF, 0, 0x12, 0x10]).unwrap();
    for i in 0..200u32 {
        write_tag(&mut bytes, TagType::Audio, i * 23, &[0xAF, 1, 0, 0]).unwrap();
    }
    std::fs::write(tmp.media().join("a.flv"), &bytes).unwrap();
    let vod = tmp.vod();
    let mut s = vod.open_source("a", "t").unwrap();
    assert_eq!(s.duration_ms(), 199 * 23);
    let landed = s.seek(2500).unwrap();
    assert!((1500..=2500).contains(&landed), "{landed}");
    let p = drain(&mut s);
    assert_eq!(
        summary(&p[0]),
        (MediaKind::Audio, flags::SEQUENCE_HEADER, landed as u32)
    );
    assert_eq!(p[1].timestamp, landed as u32);
}

#[test]
fn traversal_and_bad_names_are_refused() {
    let tmp = Tmp::new("names");
    let (bytes, _) = make_flv(PLAIN);
    std::fs::write(tmp.media().join("ok.flv"), &bytes).unwrap();
    // A file outside the media directory and links to it and inside.
    std::fs::write(tmp.0.join("secret.flv"), &bytes).unwrap();
    std::os::unix::fs::symlink(tmp.0.join("secret.flv"), tmp.media().join("out.flv")).unwrap();
    std::os::unix::fs::symlink("../secret.flv", tmp.media().join("rel.flv")).unwrap();
    std::os::unix::fs::symlink(tmp.media().join("ok.flv"), tmp.media().join("alias.flv")).unwrap();
    std::os::unix::fs::symlink(&tmp.0, tmp.media().join("up")).unwrap();
    std::fs::create_dir(tmp.media().join("dir.flv")).unwrap();
    let vod = tmp.vod();
    for bad in [
        "../secret",
        "..",
        ".",
        "",
        ".flv",
        "..flv",
        "a/b",
        "up/secret",
        "/etc/passwd",
        "%2e%2e",
        "%2e%2e%2fsecret",
        "a\0b",
        "a\\b",
        ".hidden",
    ] {
        assert!(
            matches!(vod.resolve(bad), Err(Refusal::BadName(..))),
            "{bad:?}: {:?}",
            vod.resolve(bad)
        );
    }
    assert!(matches!(vod.resolve("out"), Err(Refusal::Outside(_))));
    assert!(matches!(vod.resolve("rel"), Err(Refusal::Outside(_))));
    assert!(matches!(vod.resolve("nope"), Err(Refusal::Missing(_))));
    assert!(matches!(
        vod.open_source("dir", "t"),
        Err(Refusal::NotAFile(_))
    ));
    assert!(vod.open_source("alias", "t").is_ok());
    assert!(vod.open_source("ok", "t").is_ok());

    // Through the plugin interface: NotFound.
    for name in ["../secret", "out", "nope"] {
        let r = MakeSource::open(
            &vod,
            &SourceOpen {
                app: "vod".into(),
                name: name.into(),
                peer: "t".into(),
                peer_addr: NetAddr::UNSPECIFIED,
                ext: RVec::new(),
            },
        );
        assert!(matches!(r, Err(SourceError::NotFound(_))), "{name}");
    }

    // No media directory at all.
    let none = Vod::new(
        &tmp.0,
        &Settings {
            dir: "missing".into(),
            ..Settings::default()
        },
    );
    assert!(matches!(none.resolve("ok"), Err(Refusal::NoMediaDir(..))));
}

#[test]
fn not_flv_and_garbage() {
    let tmp = Tmp::new("garbage");
    std::fs::write(tmp.media().join("text.flv"), b"hello there, not a video").unwrap();
    let (mut bytes, keys) = make_flv(PLAIN);
    // A damaged tag header in the middle.
    let mid = keys[2].1 as usize;
    bytes[mid..mid + 20].fill(0xEE);
    std::fs::write(tmp.media().join("bad.flv"), &bytes).unwrap();
    let vod = tmp.vod();
    assert!(matches!(
        vod.open_source("text", "t"),
        Err(Refusal::Io(_, m)) if m.contains("not an FLV")
    ));
    let mut s = vod.open_source("bad", "t").unwrap();
    let mut n = 0;
    let err = loop {
        match s.next_packet() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("garbage not noticed"),
            Err(e) => break e,
        }
    };
    assert!(n > 10);
    assert!(err.message.contains("bad.flv"), "{err}");
}

#[test]
fn settings() {
    assert_eq!(Settings::parse("").unwrap(), Settings::default());
    let e = Settings::parse("appp = \"x\"").unwrap_err();
    assert!(e.contains("appp"), "{e}");
    assert!(Settings::parse("app = \"../x\"").is_err());
    assert!(Settings::parse("dir = \"\"").is_err());
    let s =
        Settings::parse("dir = \"/srv/media\"\napp = \"films\"\nindex_cache_entries = 3").unwrap();
    assert_eq!(s.app, "films");
    let vod = Vod::new(Path::new("/root"), &s);
    assert_eq!(MakeSource::app(&vod), "films");
    assert_eq!(vod.dir, PathBuf::from("/srv/media"));
}

#[test]
fn shipped_settings_file_is_the_defaults() {
    let text = include_str!("../../../mods/vod.toml");
    assert_eq!(Settings::parse(text).unwrap(), Settings::default());
}
