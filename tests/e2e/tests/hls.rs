//! HLS with real clients: ffprobe and ffmpeg read the playlist of an ffmpeg-published RTMP
//! stream and decode its segments; our checker reads every playlist it fetches against RFC 8216's
//! rules (tags, target duration, media sequence continuity, EXT-X-MAP) and every segment as
//! MPEG-TS or as fMP4 fragments; a publisher's restart continues the media sequence with a
//! discontinuity. fMP4: H.264 where the settings ask for it, HEVC and AV1 published over Enhanced
//! RTMP by a recent ffmpeg, each decoded by Debian's ffmpeg, segment by segment with its init.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use fstream_e2e::{background, ffmpeg_publish, Host, Root};

const WAIT: Duration = Duration::from_secs(30);

fn root(tag: &str) -> Root {
    fstream_e2e::require(&["ffmpeg", "ffprobe"]);
    let r = Root::new(tag, &["auth-ini", "rtmp", "rtmp-app", "http"]);
    r.user("fier", "123");
    r.write("mods/rtmp.toml", "grace_ms = 300\n");
    r.write("mods/http.toml", "hls_segment_ms = 1000\nhls_window = 5\n");
    r
}

/// GET `path`: (status code, headers, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let code = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map(|v| v.trim().parse().unwrap())
        .expect("a length");
    assert_eq!(all.len() - end, len, "body length");
    (code, head, all[end..].to_vec())
}

#[derive(Debug, Clone)]
struct Playlist {
    target: u32,
    /// Low-Latency HLS: the part target, the parts (duration, uri, segment number), the hint.
    part_target: Option<f64>,
    parts: Vec<(f64, String, u64)>,
    preload_hint: Option<String>,
    can_block: bool,
    sequence: u64,
    discontinuity_sequence: u64,
    /// (duration s, discontinuity before it, uri)
    segments: Vec<(f64, bool, String)>,
    /// EXT-X-MAP: (index of the first segment or part it applies to, uri).
    maps: Vec<(usize, String)>,
}

/// Parses a media playlist, checking RFC 8216's rules for the tags used.
fn parse_playlist(text: &str) -> Playlist {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#EXTM3U"), "EXTM3U first: {text}");
    let (mut target, mut sequence, mut dseq) = (None, None, 0);
    let mut segments = Vec::new();
    let (mut dur, mut disc) = (None, false);
    let (mut part_target, mut parts, mut hint, mut can_block) = (None, Vec::new(), None, false);
    let mut hold_back: Option<f64> = None;
    let (mut maps, mut version) = (Vec::new(), 1);
    let uri_of = |l: &str| -> String {
        l.split("URI=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a URI")
            .to_string()
    };
    for l in lines {
        if let Some(v) = l.strip_prefix("#EXT-X-PART-INF:PART-TARGET=") {
            part_target = Some(v.parse::<f64>().unwrap());
            continue;
        }
        if let Some(v) = l.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            can_block = v.contains("CAN-BLOCK-RELOAD=YES");
            let hold: f64 = v
                .split("PART-HOLD-BACK=")
                .nth(1)
                .and_then(|h| h.split(',').next())
                .expect("PART-HOLD-BACK")
                .parse()
                .unwrap();
            hold_back = Some(hold);
            continue;
        }
        if let Some(v) = l.strip_prefix("#EXT-X-PART:") {
            let d: f64 = v
                .strip_prefix("DURATION=")
                .and_then(|r| r.split(',').next())
                .expect("DURATION first")
                .parse()
                .unwrap();
            parts.push((d, uri_of(l), sequence.unwrap_or(0) + segments.len() as u64));
            continue;
        }
        if l.starts_with("#EXT-X-MAP:") {
            // RFC 8216 7: EXT-X-MAP in a playlist that is not I-frames only needs version 6.
            assert!(version >= 6, "EXT-X-MAP in a version {version} playlist");
            assert!(
                !l.contains("BYTERANGE"),
                "an init segment is a resource of its own"
            );
            maps.push((segments.len(), uri_of(l)));
            continue;
        }
        if l.starts_with("#EXT-X-PRELOAD-HINT:") {
            assert!(l.contains("TYPE=PART"), "{l}");
            hint = Some(uri_of(l));
            continue;
        }
        if let Some(v) = l.strip_prefix("#EXT-X-TARGETDURATION:") {
            assert!(
                target.is_none() && segments.is_empty(),
                "TARGETDURATION once, first"
            );
            target = Some(v.parse::<u32>().unwrap());
        } else if let Some(v) = l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            assert!(segments.is_empty(), "MEDIA-SEQUENCE before segments");
            sequence = Some(v.parse::<u64>().unwrap());
        } else if let Some(v) = l.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
            dseq = v.parse().unwrap();
        } else if l == "#EXT-X-DISCONTINUITY" {
            disc = true;
        } else if let Some(v) = l.strip_prefix("#EXTINF:") {
            dur = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
        } else if let Some(v) = l.strip_prefix("#EXT-X-VERSION:") {
            version = v.parse().unwrap();
        } else if !l.starts_with('#') && !l.is_empty() {
            let d = dur.take().expect("EXTINF before each URI");
            segments.push((d, std::mem::take(&mut disc), l.to_string()));
        } else {
            panic!("unexpected line {l:?}");
        }
    }
    let target = target.expect("TARGETDURATION");
    for (d, _, uri) in &segments {
        // RFC 8216 4.3.3.1: each EXTINF rounded to the nearest integer is at most the target.
        assert!(
            d.round() as u32 <= target,
            "{uri}: {d} s over a target of {target}"
        );
        assert!(*d > 0.0);
    }
    if let Some(pt) = part_target {
        for (d, uri, _) in &parts {
            assert!(
                *d <= pt + 1e-9,
                "{uri}: a part of {d} s over PART-TARGET {pt}"
            );
        }
        // A complete segment listed with its parts is exactly their sum.
        for (i, (d, _, uri)) in segments.iter().enumerate() {
            let seq = sequence.unwrap_or(0) + i as u64;
            let of: Vec<f64> = parts.iter().filter(|p| p.2 == seq).map(|p| p.0).collect();
            if !of.is_empty() {
                let sum: f64 = of.iter().sum();
                assert!(
                    (sum - d).abs() < 0.002,
                    "{uri}: parts add up to {sum}, EXTINF {d}"
                );
            }
        }
        assert!(can_block, "LL-HLS without CAN-BLOCK-RELOAD");
    }
    if let (Some(hold), Some(pt)) = (hold_back, part_target) {
        assert!(
            hold >= 3.0 * pt - 1e-9,
            "PART-HOLD-BACK {hold} under three part targets"
        );
    }
    if let Some((first, _)) = maps.first() {
        // fMP4: every segment and part comes after the init segment it needs.
        assert_eq!(*first, 0, "EXT-X-MAP after the first segment: {text}");
        assert!(
            text.find("#EXT-X-MAP").unwrap() < text.find("#EXT-X-PART:").unwrap_or(usize::MAX),
            "a part before the first EXT-X-MAP"
        );
    }
    Playlist {
        maps,
        target,
        part_target,
        parts,
        preload_hint: hint,
        can_block,
        sequence: sequence.unwrap_or(0),
        discontinuity_sequence: dseq,
        segments,
    }
}

/// A segment is MPEG-TS that starts with the PAT, then the PMT.
fn check_segment(data: &[u8]) {
    assert!(
        !data.is_empty() && data.len().is_multiple_of(188),
        "{} bytes",
        data.len()
    );
    assert!(data.chunks(188).all(|p| p[0] == 0x47), "sync bytes");
    let pid = |p: &[u8]| (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
    assert_eq!(pid(&data[..188]), 0, "PAT first");
    assert_eq!(pid(&data[188..376]), 0x1000, "PMT second");
}

/// Fetches the playlist until it has `n` segments.
fn playlist_with(addr: SocketAddr, path: &str, n: usize) -> Playlist {
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, head, body) = get(addr, path);
        if code == 200 {
            assert!(head.contains("Content-Type: application/vnd.apple.mpegurl"));
            assert!(head.contains("Cache-Control: max-age=1"));
            let p = parse_playlist(std::str::from_utf8(&body).unwrap());
            if p.segments.len() >= n {
                return p;
            }
        } else {
            assert_eq!(code, 404);
        }
        assert!(Instant::now() < deadline, "no playlist of {n} segments");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ffmpeg_reads_the_hls_of_a_live_stream_and_a_restart_continues_the_sequence() {
    let r = root("hls");
    let host = Host::start(&r, &["rtmp", "http"], &[]);
    let (rtmp, http) = (host.addr("rtmp"), host.addr("http"));
    let path = "/fier/cam/index.m3u8";
    assert_eq!(get(http, path).0, 404, "a playlist before any stream");

    let publish = |secs| {
        background(
            ffmpeg_publish(&format!("rtmp://{rtmp}/fier/cam?user_password=123"), secs),
            Duration::from_secs(60),
        )
    };
    let first = publish(8);
    let p = playlist_with(http, path, 3);
    assert!(p.target <= 2, "target {}", p.target);
    for (_, _, uri) in &p.segments {
        let (code, head, data) = get(http, &format!("/fier/cam/{uri}"));
        assert_eq!(code, 200, "{uri}");
        assert!(head.contains("Content-Type: video/mp2t"));
        assert!(head.contains("immutable"));
        check_segment(&data);
    }

    // ffprobe: H.264 and AAC; ffmpeg: decodes frames across segments.
    let url = format!("http://{http}{path}");
    let codecs = fstream_e2e::ffprobe_codecs(&url);
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{codecs}"
    );
    let (frames, err) = fstream_e2e::ffmpeg_video_frames(&url, &["-live_start_index", "0"], 2.5);
    assert!(
        frames >= 50,
        "ffmpeg decoded {frames} frames of 2.5 s at 25 fps: {err}"
    );
    assert!(
        !err.contains("non-existing PPS") && !err.contains("decode_slice"),
        "{err}"
    );

    // The window rolls: the media sequence grows and what left is gone (404).
    let before = playlist_with(http, path, 1);
    first.join().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let after = parse_playlist(std::str::from_utf8(&get(http, path).2).unwrap());
    assert!(after.sequence >= before.sequence);
    assert!(
        after.segments.len() <= 5,
        "the window holds {}",
        after.segments.len()
    );
    let last_seq = after.sequence + after.segments.len() as u64;

    // The publisher returns: the sequence continues, with a discontinuity.
    let second = publish(5);
    let deadline = Instant::now() + WAIT;
    let p = loop {
        let p = parse_playlist(std::str::from_utf8(&get(http, path).2).unwrap());
        if p.sequence + p.segments.len() as u64 >= last_seq + 2 {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "no new segments after the restart"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let restart = p
        .segments
        .iter()
        .position(|s| s.1)
        .map(|i| i as u64 + p.sequence)
        .or((p.discontinuity_sequence > 0).then_some(0))
        .expect("a discontinuity after the restart");
    assert!(
        restart == 0 || restart == last_seq,
        "the restart's segment is {restart}, not {last_seq}"
    );
    for (_, _, uri) in &p.segments {
        let (code, _, data) = get(http, &format!("/fier/cam/{uri}"));
        assert_eq!(code, 200);
        check_segment(&data);
    }
    assert_eq!(
        get(http, "/fier/cam/1-99999.ts").0,
        404,
        "a segment never made"
    );
    second.join().unwrap();
}

/// `(segment, part)` of a part's name `EPOCH-SEQ.pN.ts`.
fn part_of(uri: &str) -> (u64, usize) {
    let rest = uri.strip_suffix(".ts").unwrap().split_once('-').unwrap().1;
    let (seq, part) = rest.split_once(".p").unwrap();
    (seq.parse().unwrap(), part.parse().unwrap())
}

#[test]
fn low_latency_hls_lists_parts_holds_blocking_reloads_and_serves_the_hinted_part() {
    let r = root("ll-hls");
    let host = Host::start(&r, &["rtmp", "http"], &[]);
    let (rtmp, http) = (host.addr("rtmp"), host.addr("http"));
    let path = "/fier/cam/index.m3u8";
    let publisher = background(
        ffmpeg_publish(&format!("rtmp://{rtmp}/fier/cam?user_password=123"), 10),
        Duration::from_secs(60),
    );
    let p = playlist_with(http, path, 2);
    assert_eq!(
        p.part_target,
        Some(0.3),
        "PART-TARGET: 200 ms parts + 100 ms"
    );
    assert!(p.can_block);
    assert!(p.parts.len() >= 3, "parts listed: {:?}", p.parts);
    for (_, uri, _) in &p.parts {
        let (code, head, data) = get(http, &format!("/fier/cam/{uri}"));
        assert_eq!(code, 200, "{uri}");
        assert!(head.contains("immutable"));
        // Each part is whole MPEG-TS by itself.
        check_segment(&data);
    }
    let hint = p.preload_hint.clone().expect("a preload hint");
    let (seq, part) = part_of(&hint);

    // A blocking reload for the hinted part: answered once the part is cut, and lists it.
    let (code, _, body) = get(http, &format!("{path}?_HLS_msn={seq}&_HLS_part={part}"));
    assert_eq!(code, 200);
    let after = parse_playlist(std::str::from_utf8(&body).unwrap());
    assert!(
        after.parts.iter().any(|(_, u, _)| *u == hint)
            || after.sequence + after.segments.len() as u64 > seq,
        "the blocking reload for {hint} came back without it: {after:?}"
    );
    // The part the new hint names is held, then served.
    let next = after.preload_hint.expect("a new hint");
    assert_ne!(next, hint);
    let (code, _, data) = get(http, &format!("/fier/cam/{next}"));
    assert_eq!(code, 200, "the hinted part {next}");
    check_segment(&data);
    // Far ahead: refused.
    let (code, _, _) = get(http, &format!("{path}?_HLS_msn={}", seq + 50));
    assert_eq!(code, 400);
    publisher.join().unwrap();
}

/// A reload in the middle (SIGHUP with a changed http.toml): the new plugin instance serves
/// the segments the running publication keeps cutting, and the media sequence goes on.
#[test]
fn a_reload_keeps_the_hls_of_a_running_publication() {
    let r = root("hls-reload");
    let host = Host::start(&r, &["rtmp", "http"], &[]);
    let (rtmp, http) = (host.addr("rtmp"), host.addr("http"));
    let path = "/fier/cam/index.m3u8";
    let publisher = background(
        ffmpeg_publish(&format!("rtmp://{rtmp}/fier/cam?user_password=123"), 10),
        Duration::from_secs(60),
    );
    let before = playlist_with(http, path, 2);
    let last_before = before.sequence + before.segments.len() as u64;
    r.write(
        "mods/http.toml",
        "hls_segment_ms = 1000\nhls_window = 5\ncors_origin = \"https://example.org\"\n",
    );
    host.signal(libc::SIGHUP);
    assert!(
        host.wait_log("configuration reloaded", WAIT),
        "{}",
        host.log()
    );
    // New connections get the new settings (the CORS origin) and the same, growing playlist.
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, head, body) = get(http, path);
        assert_eq!(code, 200, "after the reload");
        let p = parse_playlist(std::str::from_utf8(&body).unwrap());
        if head.contains("Access-Control-Allow-Origin: https://example.org")
            && p.sequence + p.segments.len() as u64 >= last_before + 2
        {
            for (_, _, uri) in &p.segments {
                let (code, _, data) = get(http, &format!("/fier/cam/{uri}"));
                assert_eq!(code, 200, "{uri} after the reload");
                check_segment(&data);
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the playlist stopped growing after the reload"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    publisher.join().unwrap();
}

/// The top-level box types of an MP4 byte string, checking that the boxes fill it exactly.
fn boxes(data: &[u8]) -> Vec<String> {
    let mut v = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && at + size <= data.len(),
            "a box of {size} bytes at {at}"
        );
        v.push(String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned());
        at += size;
    }
    v
}

/// A segment or part in fMP4: fragments (`moof` then `mdat`), nothing else.
fn check_fragments(data: &[u8]) -> usize {
    let b = boxes(data);
    assert!(!b.is_empty() && b.len().is_multiple_of(2), "{b:?}");
    assert!(
        b.chunks(2).all(|c| c[0] == "moof" && c[1] == "mdat"),
        "{b:?}"
    );
    b.len() / 2
}

/// Frames ffprobe decodes in an init segment followed by `media`.
fn frames_with_init(tag: &str, init: &[u8], media: &[u8]) -> usize {
    let dir = fstream_e2e::TempDir::new(tag);
    let path = dir.0.join("joined.mp4");
    std::fs::write(&path, [init, media].concat()).unwrap();
    fstream_e2e::video_frames_in(&path)
}

/// Reads a stream's fMP4 HLS the way a player does and checks every byte of it: the playlist's
/// EXT-X-MAP, the init segment (`ftyp`, `moov` with `codec_box` in it), each segment and part
/// as fragments, and each segment joined to its init decodes to as many frames as its EXTINF
/// says at 25 fps; then ffprobe names `codec` and ffmpeg decodes the playlist.
fn read_fmp4_hls(tag: &str, http: SocketAddr, codec: &str, codec_box: &[u8; 4]) {
    let path = "/fier/cam/index.m3u8";
    let p = playlist_with(http, path, 3);
    assert!(!p.maps.is_empty(), "no EXT-X-MAP: {p:?}");
    let (code, head, init) = get(http, &format!("/fier/cam/{}", p.maps[0].1));
    assert_eq!(code, 200);
    assert!(head.contains("Content-Type: video/mp4"), "{head}");
    assert!(head.contains("immutable"));
    assert_eq!(boxes(&init), ["ftyp", "moov"]);
    assert!(
        init.windows(4).any(|w| w == codec_box),
        "no {:?} in the init segment",
        String::from_utf8_lossy(codec_box)
    );
    for (d, _, uri) in &p.segments {
        assert!(uri.ends_with(".m4s"), "{uri}");
        let (code, head, data) = get(http, &format!("/fier/cam/{uri}"));
        assert_eq!(code, 200, "{uri}");
        assert!(head.contains("Content-Type: video/mp4"));
        check_fragments(&data);
        let frames = frames_with_init(tag, &init, &data);
        let expect = (d * 25.0).round() as usize;
        assert!(
            frames.abs_diff(expect) <= 1,
            "{uri}: {frames} frames decoded, {d} s at 25 fps listed"
        );
    }
    for (_, uri, _) in &p.parts {
        let (code, _, data) = get(http, &format!("/fier/cam/{uri}"));
        assert_eq!(code, 200, "{uri}");
        assert_eq!(check_fragments(&data), 1, "{uri}: one fragment a part");
    }
    let url = format!("http://{http}{path}");
    let codecs = fstream_e2e::ffprobe_codecs(&url);
    assert!(codecs.contains(codec) && codecs.contains("aac"), "{codecs}");
    let (frames, err) = fstream_e2e::ffmpeg_video_frames(&url, &["-live_start_index", "0"], 2.5);
    assert!(
        frames >= 50,
        "ffmpeg decoded {frames} frames of 2.5 s at 25 fps: {err}"
    );
}

#[test]
fn fmp4_hls_of_h264_where_the_settings_ask_for_it() {
    let r = root("hls-fmp4");
    r.write(
        "mods/http.toml",
        "hls_segment_ms = 1000\nhls_window = 5\nhls_format = \"fmp4\"\n",
    );
    let host = Host::start(&r, &["rtmp", "http"], &[]);
    let (rtmp, http) = (host.addr("rtmp"), host.addr("http"));
    let publisher = background(
        ffmpeg_publish(&format!("rtmp://{rtmp}/fier/cam?user_password=123"), 8),
        Duration::from_secs(60),
    );
    read_fmp4_hls("hls-fmp4", http, "h264", b"avcC");
    publisher.join().unwrap();
}

/// HEVC and AV1 arrive as Enhanced RTMP, which MPEG-TS segments do not carry here: they get
/// fMP4 although the settings say MPEG-TS.
fn enhanced_rtmp_becomes_fmp4(tag: &str, video: &[&str], codec: &str, codec_box: &[u8; 4]) {
    let r = root(tag);
    let host = Host::start(&r, &["rtmp", "http"], &[]);
    let (rtmp, http) = (host.addr("rtmp"), host.addr("http"));
    let publisher = background(
        fstream_e2e::modern_ffmpeg_publish(
            &format!("rtmp://{rtmp}/fier/cam?user_password=123"),
            8,
            video,
        ),
        Duration::from_secs(60),
    );
    read_fmp4_hls(tag, http, codec, codec_box);
    let (st, _, err) = publisher.join().unwrap();
    assert!(st.is_some_and(|s| s.success()), "the publisher: {err}");
}

#[test]
fn hevc_over_enhanced_rtmp_is_served_as_fmp4_hls() {
    // x265's ultrafast preset keeps B-frames: composition offsets matter.
    enhanced_rtmp_becomes_fmp4(
        "hls-hevc",
        &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-x265-params",
            "log-level=error",
        ],
        "hevc",
        b"hvcC",
    );
}

#[test]
fn av1_over_enhanced_rtmp_is_served_as_fmp4_hls() {
    enhanced_rtmp_becomes_fmp4(
        "hls-av1",
        &[
            "-c:v",
            "libsvtav1",
            "-preset",
            "12",
            "-g",
            "25",
            "-svtav1-params",
            "lp=1",
        ],
        "av1",
        b"av1C",
    );
}
