use std::sync::atomic::{AtomicUsize, Ordering};

use fstream_abi::{flags, payload_from};
use fstream_media::{
    amf0::Amf0Value,
    flv::{write_file_header, DemuxedTag, FlvDemuxer, ON_METADATA, SET_DATA_FRAME},
};

use super::*;

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "flv-recorder-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn no_limits() -> Limits {
    Limits {
        max_file_bytes: 0,
        max_duration_ms: 0,
        sync_interval: Some(Duration::from_millis(1)),
    }
}

fn amf_string(s: &str) -> Vec<u8> {
    let mut v = vec![2u8];
    v.extend_from_slice(&(s.len() as u16).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

/// `@setDataFrame` + `onMetaData` as an RTMP publisher sends it.
fn publisher_metadata(ts: u32) -> MediaPacket {
    let mut body = amf_string(SET_DATA_FRAME);
    body.extend_from_slice(
        &build_on_metadata(&[
            ("duration".into(), Amf0Value::Number(0.0)),
            ("width".into(), Amf0Value::Number(320.0)),
            ("height".into(), Amf0Value::Number(240.0)),
            ("videocodecid".into(), Amf0Value::Number(7.0)),
            ("audiocodecid".into(), Amf0Value::Number(10.0)),
            ("encoder".into(), Amf0Value::from("test")),
        ])
        .unwrap(),
    );
    MediaPacket::new(MediaKind::Script, flags::METADATA, ts, payload_from(&body))
}

fn vsh(ts: u32) -> MediaPacket {
    MediaPacket::new(
        MediaKind::Video,
        flags::SEQUENCE_HEADER | flags::KEYFRAME,
        ts,
        payload_from(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]),
    )
}

fn ash(ts: u32) -> MediaPacket {
    MediaPacket::new(
        MediaKind::Audio,
        flags::SEQUENCE_HEADER,
        ts,
        payload_from(&[0xAF, 0, 0x12, 0x10]),
    )
}

fn video(ts: u32, key: bool) -> MediaPacket {
    let (b0, f) = if key {
        (0x17, flags::KEYFRAME)
    } else {
        (0x27, 0)
    };
    let mut data = vec![b0, 1, 0, 0, 0];
    data.extend_from_slice(&ts.to_be_bytes());
    data.resize(200, 0xAB);
    MediaPacket::new(MediaKind::Video, f, ts, payload_from(&data))
}

fn audio(ts: u32) -> MediaPacket {
    let mut data = vec![0xAF, 1];
    data.extend_from_slice(&ts.to_be_bytes());
    data.resize(50, 0xCD);
    MediaPacket::new(MediaKind::Audio, 0, ts, payload_from(&data))
}

/// Headers, then `ms` of 25 fps video (keyframe every `gop` frames) and audio every 23 ms,
/// starting at `start` on the stream's timeline.
fn stream_packets(start: u32, ms: u32, gop: u32) -> Vec<MediaPacket> {
    let mut v = vec![publisher_metadata(start), vsh(start), ash(start)];
    let mut t_a = start;
    for i in 0..ms / 40 {
        let t_v = start + i * 40;
        while t_a <= t_v {
            v.push(audio(t_a));
            t_a += 23;
        }
        v.push(video(t_v, i % gop == 0));
    }
    v
}

fn read_tags(path: &Path) -> (Vec<u8>, Vec<DemuxedTag>) {
    let bytes = std::fs::read(path).unwrap();
    let mut d = FlvDemuxer::new(1 << 24);
    d.push(&bytes);
    let mut tags = Vec::new();
    while let Some(t) = d.next_tag().unwrap() {
        tags.push(t);
    }
    (bytes, tags)
}

fn metadata_of(tag: &DemuxedTag) -> Vec<(String, Amf0Value)> {
    assert_eq!(tag.tag.tag_type, TagType::Script);
    parse_on_metadata(&tag.tag.data, &AmfLimits::default())
        .unwrap()
        .expect("onMetaData")
}

fn number(props: &[(String, Amf0Value)], key: &str) -> f64 {
    props
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_f64())
        .unwrap_or_else(|| panic!("no number {key}"))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn feed(r: &mut Recorder, packets: &[MediaPacket]) {
    for p in packets {
        r.packet(p).unwrap();
    }
}

// 2023-11-14T22:13:20Z
const T0: u64 = 1_700_000_000_000;

#[test]
fn records_a_playable_file() {
    let tmp = Tmp::new("basic");
    let dir = tmp.0.join("fier");
    let mut r = Recorder::new(
        dir.clone(),
        "cam",
        "fier/cam",
        Mode::NewFiles,
        T0,
        no_limits(),
    );
    // The stream's timeline continues from an earlier publisher: starts at 5000.
    let packets = stream_packets(5000, 3000, 25);
    feed(&mut r, &packets);
    r.finish().unwrap();

    let files = files_in(&dir);
    assert_eq!(files, vec![dir.join("cam-20231114T221320Z.flv")]);
    let (bytes, tags) = read_tags(&files[0]);
    assert_eq!(&bytes[..13], b"FLV\x01\x05\0\0\0\x09\0\0\0\0");
    // Metadata first: the publisher's, without @setDataFrame, with patched fields.
    assert_eq!(tags[0].offset, 13);
    assert!(tags[0].tag.data.starts_with(&amf_string(ON_METADATA)));
    let meta = metadata_of(&tags[0]);
    assert_eq!(number(&meta, "width"), 320.0);
    assert_eq!(number(&meta, "filesize"), bytes.len() as f64);
    let last_ts = tags.iter().map(|t| t.tag.timestamp).max().unwrap();
    assert_eq!(number(&meta, "duration"), f64::from(last_ts) / 1000.0);
    assert!((2.9..=3.0).contains(&number(&meta, "duration")));
    // Sequence headers next, at 0, then the first keyframe at 0.
    assert_eq!(tags[1].tag.tag_type, TagType::Video);
    assert_eq!(tags[1].tag.data[1], 0);
    assert_eq!(tags[2].tag.tag_type, TagType::Audio);
    assert_eq!(tags[2].tag.data[1], 0);
    assert!(tags[1..3].iter().all(|t| t.tag.timestamp == 0));
    // Every frame is there, rebased by the first media timestamp.
    let frames: Vec<_> = packets.iter().skip(3).collect();
    assert_eq!(tags.len() - 3, frames.len());
    for (t, p) in tags[3..].iter().zip(frames) {
        assert_eq!(t.tag.timestamp, p.timestamp - 5000);
        assert_eq!(&t.tag.data[..], &p.payload[..]);
    }
}

#[test]
fn no_metadata_gets_a_minimal_one_and_video_waits_for_a_keyframe() {
    let tmp = Tmp::new("nometa");
    let mut r = Recorder::new(tmp.0.clone(), "s", "a/s", Mode::NewFiles, 0, no_limits());
    feed(
        &mut r,
        &[
            vsh(100),
            ash(100),
            video(100, false),
            video(140, false),
            video(180, true),
            audio(185),
            video(220, false),
        ],
    );
    r.finish().unwrap();
    let files = files_in(&tmp.0);
    assert_eq!(files, vec![tmp.0.join("s-19700101T000000Z.flv")]);
    let (bytes, tags) = read_tags(&files[0]);
    let meta = metadata_of(&tags[0]);
    assert_eq!(number(&meta, "videocodecid"), 7.0);
    assert_eq!(number(&meta, "audiocodecid"), 10.0);
    assert_eq!(number(&meta, "filesize"), bytes.len() as f64);
    assert_eq!(number(&meta, "duration"), 0.04);
    let ts: Vec<_> = tags.iter().map(|t| t.tag.timestamp).collect();
    assert_eq!(ts, vec![0, 0, 0, 0, 5, 40]);
}

#[test]
fn a_killed_recording_is_readable_up_to_its_last_tag() {
    let tmp = Tmp::new("kill");
    let mut r = Recorder::new(tmp.0.clone(), "s", "a/s", Mode::NewFiles, 0, no_limits());
    let packets = stream_packets(0, 1000, 25);
    feed(&mut r, &packets);
    // No finish(): as after SIGKILL. Every tag is already in the file.
    let path = r.current_file().unwrap().to_path_buf();
    let (_, tags) = read_tags(&path);
    assert_eq!(tags.len(), packets.len());
    assert_eq!(number(&metadata_of(&tags[0]), "duration"), 0.0);
    drop(r);
}

#[test]
fn rotates_at_keyframes_by_duration_and_by_size() {
    let tmp = Tmp::new("rot");
    let limits = Limits {
        max_duration_ms: 1000,
        ..no_limits()
    };
    let mut r = Recorder::new(tmp.0.clone(), "s", "a/s", Mode::NewFiles, T0, limits);
    // Keyframes every 0.6 s for 3 s: files start at 0, 1.2, 2.4 s.
    feed(&mut r, &stream_packets(7, 3000, 15));
    r.finish().unwrap();
    let files = files_in(&tmp.0);
    assert_eq!(
        files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        vec![
            "s-20231114T221320Z.flv",
            "s-20231114T221321Z.flv",
            "s-20231114T221322Z.flv"
        ]
    );
    assert_eq!(r.finished_files(), &files[..]);
    let mut frames = 0;
    for f in &files {
        let (bytes, tags) = read_tags(f);
        let meta = metadata_of(&tags[0]);
        assert_eq!(number(&meta, "filesize"), bytes.len() as f64);
        let last = tags.iter().map(|t| t.tag.timestamp).max().unwrap();
        assert_eq!(number(&meta, "duration"), f64::from(last) / 1000.0);
        assert!(last < 1300, "{last}");
        // Headers again, then a keyframe at 0.
        assert_eq!(tags[1].tag.data[..2], [0x17, 0]);
        assert_eq!(tags[2].tag.data[..2], [0xAF, 0]);
        let first_video = tags[3..]
            .iter()
            .find(|t| t.tag.tag_type == TagType::Video)
            .unwrap();
        assert_eq!(first_video.tag.data[0], 0x17);
        assert_eq!(first_video.tag.timestamp, 0);
        frames += tags.len() - 3;
    }
    assert_eq!(frames, stream_packets(7, 3000, 15).len() - 3);

    let tmp = Tmp::new("rotsize");
    let limits = Limits {
        max_file_bytes: 4_000,
        ..no_limits()
    };
    let mut r = Recorder::new(tmp.0.clone(), "s", "a/s", Mode::NewFiles, T0, limits);
    feed(&mut r, &stream_packets(0, 2000, 10));
    r.finish().unwrap();
    let files = files_in(&tmp.0);
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        // Over the limit by at most one GOP (0.4 s: 10 frames of ~215 bytes, 18 of audio).
        assert!(len < 4_000 + 10 * 230 + 18 * 70, "{len}");
    }
}

#[test]
fn audio_only_streams_rotate_on_any_frame() {
    let tmp = Tmp::new("audio");
    let limits = Limits {
        max_duration_ms: 500,
        ..no_limits()
    };
    let mut r = Recorder::new(tmp.0.clone(), "s", "a/s", Mode::NewFiles, T0, limits);
    let mut p = vec![ash(0)];
    p.extend((0..100).map(|i| audio(i * 23)));
    feed(&mut r, &p);
    r.finish().unwrap();
    let files = files_in(&tmp.0);
    // 2.3 s in files of just over 0.5 s; names differ by a suffix when in the same second.
    assert_eq!(files.len(), 5, "{files:?}");
    assert!(files
        .iter()
        .any(|f| f.to_string_lossy().ends_with("20Z-1.flv")));
    let (bytes, _) = read_tags(&files[0]);
    assert_eq!(bytes[4], 0x04, "audio-only header flags");
}

#[test]
fn appends_with_continuing_timestamps() {
    let tmp = Tmp::new("append");
    let path = tmp.0.join("s.flv");
    let mut r = Recorder::new(tmp.0.clone(), "s", "a/s", Mode::Append, T0, no_limits());
    feed(&mut r, &stream_packets(1000, 1000, 25));
    r.finish().unwrap();
    let (_, first) = read_tags(&path);
    let last1 = first.iter().map(|t| t.tag.timestamp).max().unwrap();
    assert_eq!(last1, 960);

    // A second publication, and a crash had left half a tag at the end.
    {
        use std::io::Write as _;
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9, 0, 1, 0, 0, 0]).unwrap();
    }
    let mut r = Recorder::new(tmp.0.clone(), "s", "a/s", Mode::Append, T0, no_limits());
    let second = stream_packets(50_000, 1000, 25);
    feed(&mut r, &second);
    r.finish().unwrap();
    assert_eq!(files_in(&tmp.0), vec![path.clone()]);
    let (bytes, tags) = read_tags(&path);
    // One file header, one metadata tag, updated for the whole file.
    assert_eq!(
        tags.iter()
            .filter(|t| t.tag.tag_type == TagType::Script)
            .count(),
        1
    );
    let meta = metadata_of(&tags[0]);
    assert_eq!(number(&meta, "filesize"), bytes.len() as f64);
    let last = tags.iter().map(|t| t.tag.timestamp).max().unwrap();
    assert_eq!(last, 960 + 20 + 960);
    assert_eq!(number(&meta, "duration"), f64::from(last) / 1000.0);
    // The appended part: sequence headers, then frames from 980 on.
    let appended = &tags[first.len()..];
    assert_eq!(appended.len(), second.len() - 1);
    assert_eq!(appended[0].tag.data[..2], [0x17, 0]);
    assert_eq!(appended[0].tag.timestamp, 980);
    for (t, p) in appended[2..].iter().zip(&second[3..]) {
        assert_eq!(t.tag.timestamp, p.timestamp - 50_000 + 980);
    }
    // Timestamps never go back.
    assert!(tags
        .windows(2)
        .all(|w| w[1].tag.timestamp + 23 >= w[0].tag.timestamp));
}

#[test]
fn append_to_a_file_of_someone_else() {
    let tmp = Tmp::new("appendx");
    // A file from another writer without patchable metadata: appended to, nothing patched.
    let mut bytes = Vec::new();
    write_file_header(&mut bytes, true, true);
    write_tag(&mut bytes, TagType::Video, 0, &[0x17, 1, 0, 0, 0]).unwrap();
    write_tag(&mut bytes, TagType::Video, 500, &[0x27, 1, 0, 0, 0]).unwrap();
    std::fs::write(tmp.0.join("s.flv"), &bytes).unwrap();
    let mut r = Recorder::new(tmp.0.clone(), "s", "a/s", Mode::Append, 0, no_limits());
    feed(&mut r, &[vsh(3), video(3, true), video(43, false)]);
    r.finish().unwrap();
    let (_, tags) = read_tags(&tmp.0.join("s.flv"));
    let ts: Vec<_> = tags.iter().map(|t| t.tag.timestamp).collect();
    assert_eq!(ts, vec![0, 500, 520, 520, 560]);

    // Not an FLV: refused, untouched.
    std::fs::write(tmp.0.join("t.flv"), b"hello, world").unwrap();
    let mut r = Recorder::new(tmp.0.clone(), "t", "a/t", Mode::Append, 0, no_limits());
    let e = r.packet(&video(0, true)).unwrap_err();
    assert!(
        e.message.contains("t.flv") && e.message.contains("not an FLV"),
        "{e}"
    );
    assert_eq!(std::fs::read(tmp.0.join("t.flv")).unwrap(), b"hello, world");
}

#[test]
fn write_errors_name_the_path_and_the_os_error() {
    let tmp = Tmp::new("err");
    // A directory path under a regular file fails even for root.
    std::fs::write(tmp.0.join("file"), b"x").unwrap();
    let dir = tmp.0.join("file").join("fier");
    let mut r = Recorder::new(dir.clone(), "s", "fier/s", Mode::NewFiles, 0, no_limits());
    r.packet(&vsh(0)).unwrap();
    let e = r.packet(&video(0, true)).unwrap_err();
    assert!(e.message.contains(&*dir.to_string_lossy()), "{e}");
    assert!(e.message.contains("Not a directory"), "{e}");
    // After a failure the sink ignores the rest and finishes quietly.
    r.packet(&video(40, false)).unwrap();
    r.finish().unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn disk_full_is_reported() {
    // /dev/full fails every write with ENOSPC.
    let Ok(file) = OpenOptions::new().write(true).open("/dev/full") else {
        return;
    };
    let mut out = Output {
        path: PathBuf::from("/dev/full"),
        file,
        len: 0,
        bytes: 0,
        base: 0,
        offset: 0,
        first_ts: 0,
        last_ts: 0,
        duration_at: None,
        filesize_at: None,
        wait_key: false,
        synced: Instant::now(),
        dirty: false,
        buf: Vec::new(),
        quota: None,
        over_quota: false,
        _open: None,
    };
    let e = out
        .write_tag(TagType::Audio, 0, &[0xAF, 1], &no_limits())
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("/dev/full") && m.contains("No space left"),
        "{m}"
    );
}

/// A host that keeps the notices it is sent.
#[derive(Clone, Default)]
struct NoticeHost(std::sync::Arc<std::sync::Mutex<Vec<Notice>>>);

impl fstream_abi::HostApi for NoticeHost {
    fn max_level(&self) -> fstream_abi::LogLevel {
        fstream_abi::LogLevel::Off
    }
    fn enabled(&self, _: fstream_abi::LogLevel, _: abi_stable::std_types::RStr<'_>) -> bool {
        false
    }
    fn log(&self, _: &fstream_abi::LogRecord<'_>) {}
    fn authenticate(&self, _: &fstream_abi::AuthRequest) -> fstream_abi::AuthOutcome_NE {
        fstream_abi::AuthOutcome_NE::new(fstream_abi::AuthOutcome::Denied("no".into()))
    }
    fn interface(&self) -> fstream_abi::InterfaceVersion {
        fstream_abi::INTERFACE
    }
    fn notify(&self, notice: &Notice) {
        self.0.lock().unwrap().push(notice.clone());
    }
}

fn notifier(root: &Path, host: &NoticeHost) -> Notifier {
    use abi_stable::{sabi_trait::TD_Opaque, std_types::RArc};
    Notifier {
        host: fstream_abi::HostApi_TO::from_ptr(RArc::new(host.clone()), TD_Opaque),
        root: root.to_path_buf(),
        protocol: "rtmp".into(),
        app: "fier".into(),
        name: "cam".into(),
        query: "room=1".into(),
    }
}

/// Each finished file (rotations included) is one RecordDone notice, with the path relative to
/// the root, the file's size and its duration.
#[test]
fn finished_files_are_reported() {
    let tmp = Tmp::new("notice");
    let dir = tmp.0.join("recordings/fier");
    let host = NoticeHost::default();
    let limits = Limits {
        max_duration_ms: 1000,
        ..no_limits()
    };
    let mut r = Recorder::new(dir.clone(), "cam", "fier/cam", Mode::NewFiles, T0, limits)
        .with_notifier(notifier(&tmp.0, &host));
    feed(&mut r, &stream_packets(0, 2500, 25));
    r.finish().unwrap();
    let files = files_in(&dir);
    // Keyframes each second: files of 0-2 s and 2-2.5 s.
    assert_eq!(files.len(), 2, "{files:?}");
    let notices = host.0.lock().unwrap().clone();
    assert_eq!(notices.len(), 2);
    for (n, f) in notices.iter().zip(&files) {
        assert_eq!(n.kind(), Some(NoticeKind::RecordDone));
        assert_eq!((n.app.as_str(), n.name.as_str()), ("fier", "cam"));
        assert_eq!((n.protocol.as_str(), n.query.as_str()), ("rtmp", "room=1"));
        assert_eq!(
            Path::new(n.path.as_str()),
            f.strip_prefix(&tmp.0).unwrap(),
            "relative to the root"
        );
        assert!(n.path.starts_with("recordings/fier/cam-"));
        assert_eq!(n.bytes, std::fs::metadata(f).unwrap().len());
        assert_eq!(n.caller.connection, 0);
    }
    assert!(
        (1900..=2000).contains(&notices[0].duration_ms),
        "{}",
        notices[0].duration_ms
    );
    assert!(
        (400..=500).contains(&notices[1].duration_ms),
        "{}",
        notices[1].duration_ms
    );
}

/// The quota stops a recording in a complete file (metadata patched, reported), refuses the
/// next publication's, and admits one again once room is made.
#[test]
fn the_quota_finishes_a_recording_and_refuses_the_next() {
    use crate::quota::{OnFull, Quota};
    let tmp = Tmp::new("quota");
    let root = tmp.0.join("recordings");
    let dir = root.join("fier");
    let host = NoticeHost::default();
    let quota = Arc::new(Quota::new(root.clone(), 20_000, OnFull::Refuse));
    let recorder = |t0| {
        Recorder::new(
            dir.clone(),
            "cam",
            "fier/cam",
            Mode::NewFiles,
            t0,
            no_limits(),
        )
        .with_quota(quota.clone())
        .with_notifier(notifier(&tmp.0, &host))
    };
    // About 250 + 50 * 43 bytes a second: over 20 kB within 10 s.
    let mut first = recorder(T0);
    feed(&mut first, &stream_packets(0, 10_000, 25));
    assert!(first.stopped_by_quota());
    assert!(first.current_file().is_none());
    first.finish().unwrap();
    let files = files_in(&dir);
    assert_eq!(files.len(), 1);
    let (bytes, tags) = read_tags(&files[0]);
    assert!(
        (20_000..21_000).contains(&bytes.len()),
        "stopped at the quota: {}",
        bytes.len()
    );
    assert_eq!(
        number(&metadata_of(&tags[0]), "filesize"),
        bytes.len() as f64
    );
    assert_eq!(
        host.0.lock().unwrap().len(),
        1,
        "the stopped file is reported"
    );

    // The next publication records nothing.
    let mut second = recorder(T0 + 60_000);
    feed(&mut second, &stream_packets(0, 2000, 25));
    second.finish().unwrap();
    assert!(second.stopped_by_quota());
    assert_eq!(files_in(&dir), files, "nothing new, the first intact");
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);
    assert_eq!(host.0.lock().unwrap().len(), 1);

    // Room made by hand: the next one records.
    std::fs::remove_file(&files[0]).unwrap();
    let mut third = recorder(T0 + 120_000);
    feed(&mut third, &stream_packets(0, 2000, 25));
    third.finish().unwrap();
    assert!(!third.stopped_by_quota());
    assert_eq!(files_in(&dir).len(), 1);
    assert_eq!(host.0.lock().unwrap().len(), 2);
}

/// With room for less than a file's head, no file is left behind.
#[test]
fn no_room_for_a_head_leaves_no_file() {
    use crate::quota::{OnFull, Quota};
    let tmp = Tmp::new("quota-head");
    let root = tmp.0.join("recordings");
    let dir = root.join("fier");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), vec![0u8; 19_990]).unwrap();
    let host = NoticeHost::default();
    let quota = Arc::new(Quota::new(root, 20_000, OnFull::DeleteOldest));
    let mut r = Recorder::new(
        dir.clone(),
        "cam",
        "fier/cam",
        Mode::NewFiles,
        T0,
        no_limits(),
    )
    .with_quota(quota)
    .with_notifier(notifier(&tmp.0, &host));
    feed(&mut r, &stream_packets(0, 1000, 25));
    r.finish().unwrap();
    assert!(r.stopped_by_quota());
    assert_eq!(files_in(&dir), [dir.join("notes.txt")]);
    assert!(host.0.lock().unwrap().is_empty(), "nothing to report");
}

/// An append publish whose file is a link to somewhere else does not write there: the
/// recording fails, the link's target is untouched.
#[test]
fn append_does_not_follow_a_link_in_the_files_place() {
    let tmp = Tmp::new("append-link");
    // Empty, so that a followed link would have it start as a new recording.
    let outside = tmp.0.join("outside.flv");
    std::fs::write(&outside, b"").unwrap();
    let dir = tmp.0.join("rec");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("s.flv")).unwrap();
    let mut r = Recorder::new(dir.clone(), "s", "a/s", Mode::Append, T0, no_limits());
    let failed = stream_packets(1000, 1000, 25)
        .iter()
        .any(|p| r.packet(p).is_err());
    assert!(failed, "the recording went on through the link");
    let _ = r.finish();
    assert_eq!(std::fs::read(&outside).unwrap(), b"");
}
