//! Recording (`flv-recorder`) and playing files (`vod`) end to end (issue 5): the real host with
//! `auth-ini`, `fstream`, `rtmp`, `rtmp-app`, `flv-recorder` and `vod`, published to with ffmpeg
//! over RTMP and through the `fstream` client, played with ffmpeg, rtmpdump and `fstream watch`,
//! checked with ffprobe.
//!
//! Build first (`cargo build --workspace`). Tests that need ffmpeg/ffprobe/rtmpdump or the RTMP
//! plugin say "skipped" and pass when those are missing. Fixtures are generated with ffmpeg's lavfi
//! sources (320x240, a few seconds).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use fstream_e2e::{bin, have, run_with_timeout, target_dir, wait_success, Host, Root, TempDir};

const WAIT: Duration = Duration::from_secs(20);
const FPS: u32 = 25;

// ---------------------------------------------------------------------------------------------
// Helpers

fn tools() -> bool {
    fstream_e2e::require(&["ffmpeg", "ffprobe", "rtmpdump"]);
    true
}

fn rtmp_built() -> bool {
    let ok =
        target_dir().join("librtmp.so").exists() && target_dir().join("librtmp_app.so").exists();
    assert!(
        ok,
        "the rtmp and rtmp-app plugins are not built: cargo build --workspace"
    );
    ok
}

/// A root with every plugin of this issue and user `fier` (password 123).
fn root(tag: &str, recorder_toml: &str, with_rtmp: bool) -> Root {
    let mut plugins = vec!["auth-ini", "fstream"];
    if with_rtmp {
        plugins.extend(["rtmp", "rtmp-app"]);
    }
    plugins.extend(["flv-recorder", "vod"]);
    let root = Root::new(tag, &plugins);
    root.user("fier", "123");
    root.write("mods/flv-recorder.toml", recorder_toml);
    root.write("mods/fstream.toml", "grace_ms = 200\n");
    std::fs::create_dir_all(root.path().join("media")).unwrap();
    root
}

fn start(root: &Root, with_rtmp: bool) -> Host {
    let listen: &[&str] = if with_rtmp {
        &["fstream", "rtmp"]
    } else {
        &["fstream"]
    };
    Host::start(root, listen, &[])
}

fn rtmp_url(addr: SocketAddr, path: &str) -> String {
    format!("rtmp://{addr}/{path}")
}

/// ffmpeg arguments of a lavfi test source: `secs` of 25 fps video (a keyframe every second)
/// and 44.1 kHz audio, H.264/AAC, as FLV.
fn source_args(secs: u32) -> Vec<String> {
    [
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        &secs.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "25",
        "-c:a",
        "aac",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Publishes `secs` in real time (`-re`) to an RTMP URL; returns the running ffmpeg.
fn publish_rtmp(url: &str, secs: u32) -> Child {
    let mut args = vec!["-re".to_string()];
    args.extend(source_args(secs));
    args.extend(["-f".into(), "flv".into(), url.into()]);
    Command::new("ffmpeg")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg")
}

/// `ffmpeg -re ... -f flv - | fstream ADDR broadcast,...`; returns (ffmpeg, fstream).
fn publish_fstream(addr: SocketAddr, action: &str, secs: u32) -> (Child, Child) {
    let mut args = vec!["-re".to_string()];
    args.extend(source_args(secs));
    args.extend(["-f".into(), "flv".into(), "-".into()]);
    let mut ff = Command::new("ffmpeg")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg");
    let pipe = ff.stdout.take().expect("ffmpeg stdout");
    let client = Command::new(bin("fstream"))
        .arg(addr.to_string())
        .arg(action)
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fstream");
    (ff, client)
}

/// Generates a fixture file of `secs` seconds.
fn make_fixture(path: &Path, secs: u32, keyframe_index: bool) {
    let mut args = source_args(secs);
    if keyframe_index {
        args.extend(["-flvflags".into(), "add_keyframe_index".into()]);
    }
    args.extend(["-f".into(), "flv".into(), "-y".into()]);
    let (status, _, err) = run_with_timeout(
        Command::new("ffmpeg").args(&args).arg(path),
        Duration::from_secs(60),
    );
    assert!(status.is_some_and(|s| s.success()), "fixture failed: {err}");
}

fn ffprobe_duration(path: &Path) -> Option<f64> {
    let (_, out, _) = run_with_timeout(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
            ])
            .arg(path),
        WAIT,
    );
    String::from_utf8_lossy(&out).trim().parse().ok()
}

fn ffprobe_codecs(path: &Path) -> Vec<String> {
    let (_, out, _) = run_with_timeout(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name",
                "-of",
                "csv=p=0",
            ])
            .arg(path),
        WAIT,
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

/// Decoded frames as ffmpeg counts them: (video, audio, errors on stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decoded {
    video: usize,
    audio: usize,
    errors: String,
}

/// Decodes everything from `input` (extra ffmpeg input options first) with `-f framecrc`.
fn decode(input_opts: &[&str], input: &str, timeout: Duration) -> (Decoded, Duration) {
    let t = Instant::now();
    let (status, out, err) = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "error"])
            .args(input_opts)
            .args(["-i", input, "-f", "framecrc", "-"]),
        timeout,
    );
    let took = t.elapsed();
    assert!(status.is_some(), "ffmpeg timed out decoding {input}");
    let text = String::from_utf8_lossy(&out);
    let mut kinds = std::collections::HashMap::new();
    let (mut video, mut audio) = (0, 0);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#media_type ") {
            if let Some((idx, kind)) = rest.split_once(':') {
                kinds.insert(idx.trim().to_string(), kind.trim().to_string());
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let idx = line.split(',').next().unwrap_or("").trim();
        match kinds.get(idx).map(String::as_str) {
            Some("video") => video += 1,
            Some("audio") => audio += 1,
            _ => {}
        }
    }
    (
        Decoded {
            video,
            audio,
            errors: err,
        },
        took,
    )
}

fn decode_file(path: &Path) -> Decoded {
    decode(&[], &path.to_string_lossy(), Duration::from_secs(60)).0
}

/// FLV tags of a file: (type, timestamp, data).
fn flv_tags(bytes: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    if bytes.len() < 13 || &bytes[..3] != b"FLV" {
        return out;
    }
    let mut pos = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) as usize + 4;
    while pos + 11 <= bytes.len() {
        let t = bytes[pos];
        let size = u32::from_be_bytes([0, bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([
            bytes[pos + 7],
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
        ]);
        if pos + 11 + size > bytes.len() {
            break;
        }
        out.push((t, ts, bytes[pos + 11..pos + 11 + size].to_vec()));
        pos += 11 + size + 4;
    }
    out
}

fn is_video_keyframe(t: &(u8, u32, Vec<u8>)) -> bool {
    t.0 == 9 && t.2.len() > 1 && t.2[0] >> 4 == 1 && t.2[1] == 1
}

fn recordings(root: &Root, app: &str, prefix: &str) -> Vec<PathBuf> {
    let dir = root.path().join("recordings").join(app);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".flv"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn wait_log_count(host: &Host, needle: &str, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while host.log().matches(needle).count() < n {
        assert!(
            Instant::now() < deadline,
            "waited for {n}x {needle:?}; log:\n{}",
            host.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Checks a finished 8 s recording: duration within 5 %, every frame decodes.
fn check_recording(path: &Path, secs: u32) {
    let d = ffprobe_duration(path).expect("ffprobe duration");
    let want = f64::from(secs);
    assert!(
        (d - want).abs() <= want * 0.05,
        "{}: duration {d} s, want {want} s ± 5 %",
        path.display()
    );
    let dec = decode_file(path);
    assert!(
        dec.errors.trim().is_empty(),
        "decode errors: {}",
        dec.errors
    );
    assert_eq!(
        dec.video as u32,
        secs * FPS,
        "video frames of {}",
        path.display()
    );
    // 44100 Hz in frames of 1024 samples.
    let audio = f64::from(secs) * 44100.0 / 1024.0;
    assert!(
        (dec.audio as f64 - audio).abs() <= 3.0,
        "audio frames {} vs {audio}",
        dec.audio
    );
    eprintln!(
        "{}: {d:.3} s, {} video + {} audio frames decoded",
        path.display(),
        dec.video,
        dec.audio
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Recordings of an RTMP publish and of an fstream FLV broadcast

#[test]
fn records_rtmp_and_fstream_publications() {
    if !tools() {
        return;
    }
    let rtmp = rtmp_built();
    let root = root("rec", "record = [\"fier/*\"]\n", rtmp);
    let host = start(&root, rtmp);
    let mut finished = 0;
    if rtmp {
        let mut ff = publish_rtmp(
            &rtmp_url(host.addr("rtmp"), "fier/cam?user_password=123"),
            8,
        );
        assert!(
            wait_success(&mut ff, Duration::from_secs(40)),
            "ffmpeg publish failed"
        );
        finished += 1;
        wait_log_count(&host, "recording finished", finished, WAIT);
        let files = recordings(&root, "fier", "cam-");
        assert_eq!(files.len(), 1, "{files:?}");
        check_recording(&files[0], 8);
    }
    let (mut ff, mut client) = publish_fstream(
        host.addr("fstream"),
        "broadcast,user=fier,user_password=123,channel=cam2",
        8,
    );
    assert!(
        wait_success(&mut ff, Duration::from_secs(40)),
        "ffmpeg failed"
    );
    assert!(wait_success(&mut client, WAIT), "fstream broadcast failed");
    finished += 1;
    wait_log_count(&host, "recording finished", finished, WAIT);
    let files = recordings(&root, "fier", "cam2-");
    assert_eq!(files.len(), 1, "{files:?}");
    check_recording(&files[0], 8);
}

// ---------------------------------------------------------------------------------------------
// 2. SIGKILL during a recording leaves a playable file

#[test]
fn recording_survives_sigkill_of_the_host() {
    if !tools() {
        return;
    }
    let rtmp = rtmp_built();
    let root = root("kill", "record = [\"fier/*\"]\n", rtmp);
    let host = start(&root, rtmp);
    let mut publisher: Vec<Child> = if rtmp {
        vec![publish_rtmp(
            &rtmp_url(host.addr("rtmp"), "fier/cam?user_password=123"),
            30,
        )]
    } else {
        let (a, b) = publish_fstream(
            host.addr("fstream"),
            "broadcast,user=fier,user_password=123,channel=cam",
            30,
        );
        vec![a, b]
    };
    // Wait for about 3 s of recording.
    let deadline = Instant::now() + WAIT;
    let file = loop {
        let files = recordings(&root, "fier", "cam-");
        if let Some(f) = files.first() {
            if std::fs::metadata(f).map(|m| m.len()).unwrap_or(0) > 120_000 {
                break f.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no recording; log:\n{}",
            host.log()
        );
        thread::sleep(Duration::from_millis(50));
    };
    host.signal(libc::SIGKILL);
    thread::sleep(Duration::from_millis(300));
    for p in publisher.iter_mut() {
        let _ = p.kill();
        let _ = p.wait();
    }
    let codecs = ffprobe_codecs(&file);
    assert_eq!(codecs, vec!["aac", "h264"], "streams of {}", file.display());
    let d = ffprobe_duration(&file).expect("a duration");
    assert!(d > 1.0, "duration {d}");
    let dec = decode_file(&file);
    assert!(dec.video > 25, "{dec:?}");
    eprintln!(
        "after SIGKILL: {} bytes, ffprobe {d:.2} s, {} video frames decode",
        std::fs::metadata(&file).unwrap().len(),
        dec.video
    );
}

/// The value of a Number property `key` of the metadata at the head of an FLV file.
fn metadata_number(bytes: &[u8], key: &str) -> Option<f64> {
    let mut needle = (key.len() as u16).to_be_bytes().to_vec();
    needle.extend_from_slice(key.as_bytes());
    needle.push(0); // Number marker
    let head = &bytes[..bytes.len().min(4096)];
    let at = head.windows(needle.len()).position(|w| w == needle)? + needle.len();
    Some(f64::from_be_bytes(head.get(at..at + 8)?.try_into().ok()?))
}

#[test]
fn sigterm_finishes_the_recording() {
    if !tools() {
        return;
    }
    let rtmp = rtmp_built();
    let root = root("term", "record = [\"fier/*\"]\n", rtmp);
    let mut host = start(&root, rtmp);
    let mut publisher: Vec<Child> = if rtmp {
        vec![publish_rtmp(
            &rtmp_url(host.addr("rtmp"), "fier/cam?user_password=123"),
            30,
        )]
    } else {
        let (a, b) = publish_fstream(
            host.addr("fstream"),
            "broadcast,user=fier,user_password=123,channel=cam",
            30,
        );
        vec![a, b]
    };
    assert!(host.wait_log("recording to a file", WAIT), "{}", host.log());
    thread::sleep(Duration::from_secs(3));
    host.signal(libc::SIGTERM);
    assert!(host.wait_exit(WAIT).is_some(), "the host did not exit");
    for p in publisher.iter_mut() {
        let _ = p.kill();
        let _ = p.wait();
    }
    let files = recordings(&root, "fier", "cam-");
    assert_eq!(files.len(), 1);
    let bytes = std::fs::read(&files[0]).unwrap();
    // Finished on shutdown: duration and size patched in.
    assert_eq!(
        metadata_number(&bytes, "filesize"),
        Some(bytes.len() as f64)
    );
    let duration = metadata_number(&bytes, "duration").unwrap();
    assert!(duration > 2.0, "{duration}");
    let probed = ffprobe_duration(&files[0]).unwrap();
    assert!((probed - duration).abs() < 0.1, "{probed} vs {duration}");
    assert!(host.log().contains("recording finished"));
}

// ---------------------------------------------------------------------------------------------
// 3. A recording that cannot be written does not disturb live watchers

#[test]
fn unwritable_recording_dir_keeps_watchers_going() {
    if !tools() {
        return;
    }
    let rtmp = rtmp_built();
    // `dir` under a regular file fails even for root (ENOTDIR).
    let root = root(
        "nowrite",
        "dir = \"blocker/recordings\"\nrecord = [\"*/*\"]\n",
        rtmp,
    );
    root.write("blocker", "a regular file\n");
    let host = start(&root, rtmp);
    let out = TempDir::new("nowrite-out");
    let watched = out.path().join("watched.flv");
    let watch = Command::new(bin("fstream"))
        .arg(host.addr("fstream").to_string())
        .arg("watch,user=fier,channel=cam")
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&watched).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fstream watch");
    let mut watch = watch;
    let mut publisher: Vec<Child> = if rtmp {
        vec![publish_rtmp(
            &rtmp_url(host.addr("rtmp"), "fier/cam?user_password=123"),
            6,
        )]
    } else {
        let (a, b) = publish_fstream(
            host.addr("fstream"),
            "broadcast,user=fier,user_password=123,channel=cam",
            6,
        );
        vec![a, b]
    };
    for p in publisher.iter_mut() {
        assert!(wait_success(p, Duration::from_secs(40)), "publisher failed");
    }
    assert!(
        wait_success(&mut watch, WAIT),
        "watcher did not end cleanly"
    );
    let log = host.log();
    assert!(
        log.contains("sink failed") && log.contains("blocker") && log.contains("Not a directory"),
        "no clear sink error in the log:\n{log}"
    );
    let dec = decode_file(&watched);
    assert_eq!(
        dec.video as u32,
        6 * FPS,
        "the watcher got every frame: {dec:?}"
    );
    eprintln!(
        "watcher decoded {} video frames while the recorder failed",
        dec.video
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Playing files: RTMP (ffmpeg, rtmpdump with a seek) and fstream watch

#[test]
fn plays_files_over_rtmp_and_fstream() {
    if !tools() {
        return;
    }
    let rtmp = rtmp_built();
    let root = root("vod", "", rtmp);
    let secs = 8;
    let clip = root.path().join("media/clip.flv");
    let indexed = root.path().join("media/indexed.flv");
    make_fixture(&clip, secs, false);
    make_fixture(&indexed, secs, true);
    let reference = decode_file(&clip);
    assert_eq!(reference.video as u32, secs * FPS);
    let duration = ffprobe_duration(&clip).unwrap();
    let host = start(&root, rtmp);

    // fstream: byte stream of FLV that ffprobe decodes, every frame.
    let out = TempDir::new("vod-out");
    let watched = out.path().join("watched.flv");
    let t = Instant::now();
    let (status, bytes, err) = run_with_timeout(
        Command::new(bin("fstream"))
            .arg(host.addr("fstream").to_string())
            .arg("watch,user=vod,channel=clip"),
        Duration::from_secs(40),
    );
    let took = t.elapsed();
    assert!(status.is_some_and(|s| s.success()), "fstream watch: {err}");
    std::fs::write(&watched, &bytes).unwrap();
    assert_eq!(decode_file(&watched), reference);
    assert_eq!(ffprobe_codecs(&watched), vec!["aac", "h264"]);
    eprintln!(
        "fstream watch of a {duration:.2} s file took {:.2} s",
        took.as_secs_f64()
    );
    assert!(took.as_secs_f64() >= duration - 5.5, "not paced: {took:?}");

    if !rtmp {
        return;
    }
    let rtmp_addr = host.addr("rtmp");
    // ffmpeg over RTMP (`-rtmp_live recorded` asks for the file): every frame, paced.
    for name in ["clip", "indexed"] {
        let (dec, took) = decode(
            &["-rtmp_live", "recorded"],
            &rtmp_url(rtmp_addr, &format!("vod/{name}")),
            Duration::from_secs(40),
        );
        assert!(dec.errors.trim().is_empty(), "{name}: {}", dec.errors);
        assert_eq!(dec.video, reference.video, "{name}");
        assert!(
            (dec.audio as i64 - reference.audio as i64).abs() <= 1,
            "{name}: {dec:?}"
        );
        let s = took.as_secs_f64();
        eprintln!("ffmpeg played {name} ({duration:.2} s) in {s:.2} s");
        // The host reads at most 5 s ahead of real time (ffmpeg asks for 3 s).
        assert!(s >= duration - 5.5 && s <= duration + 4.0, "{name}: {s} s");
    }

    // rtmpdump with a start offset (-A is in seconds): data from the keyframe at or before 4 s.
    if have("rtmpdump") {
        for name in ["clip", "indexed"] {
            let file = std::fs::read(root.path().join(format!("media/{name}.flv"))).unwrap();
            let tags = flv_tags(&file);
            let key = tags
                .iter()
                .rev()
                .find(|t| is_video_keyframe(t) && t.1 <= 4300)
                .cloned()
                .unwrap();
            let frames_after = tags
                .iter()
                .filter(|t| t.0 == 9 && t.1 >= key.1 && t.2.get(1) == Some(&1))
                .count();
            let dumped = out.path().join(format!("{name}-seek.flv"));
            let (status, _, err) = run_with_timeout(
                Command::new("rtmpdump")
                    .args([
                        "-q",
                        "-r",
                        &rtmp_url(rtmp_addr, &format!("vod/{name}")),
                        "-A",
                        "4.3",
                        "-o",
                    ])
                    .arg(&dumped),
                Duration::from_secs(40),
            );
            assert!(status.is_some(), "rtmpdump hung");
            let got = flv_tags(&std::fs::read(&dumped).unwrap_or_default());
            let first_key = got
                .iter()
                .find(|t| t.0 == 9 && t.2.get(1) == Some(&1))
                .unwrap_or_else(|| panic!("{name}: no video from rtmpdump: {err}"));
            assert!(is_video_keyframe(first_key), "{name}: starts on a keyframe");
            assert_eq!(first_key.2, key.2, "{name}: the keyframe at {} ms", key.1);
            // rtmpdump adds its start offset to the timestamps it writes.
            assert_eq!(first_key.1.saturating_sub(4300), key.1, "{name}");
            let frames = got
                .iter()
                .filter(|t| t.0 == 9 && t.2.get(1) == Some(&1))
                .count();
            assert_eq!(frames, frames_after, "{name}: frames from the keyframe on");
            eprintln!(
                "rtmpdump -A 4.3 on {name}: keyframe at {} ms, {frames} frames",
                key.1
            );
        }
        // The file with its own keyframe index was not scanned; the other one once.
        let scans = |f: &str| {
            host.log()
                .lines()
                .filter(|l| l.contains("scanned a file") && l.contains(f))
                .count()
        };
        assert_eq!(scans("indexed.flv"), 0);
        assert_eq!(scans("clip.flv"), 1);
    } else {
        eprintln!("rtmpdump not installed: seek over RTMP not checked");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Names that try to leave the media directory

#[test]
fn traversal_names_are_refused_and_the_host_keeps_serving() {
    if !tools() {
        return;
    }
    let rtmp = rtmp_built();
    let root = root("trav", "", rtmp);
    make_fixture(&root.path().join("media/clip.flv"), 2, false);
    // A valid FLV outside the media directory, and a symlink to it from inside.
    std::fs::copy(
        root.path().join("media/clip.flv"),
        root.path().join("secret.flv"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        root.path().join("secret.flv"),
        root.path().join("media/evil.flv"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../secret.flv", root.path().join("media/evil2.flv")).unwrap();
    let host = start(&root, rtmp);
    let bad = [
        "../secret",
        "..%2fsecret",
        "%2e%2e",
        "%2e%2e%2fsecret",
        "evil",
        "evil2.flv",
        "../media/clip",
        "..",
        ".flv",
    ];
    for name in bad {
        let (status, out, err) = run_with_timeout(
            Command::new(bin("fstream"))
                .arg(host.addr("fstream").to_string())
                .arg(format!("watch,user=vod,channel={name}")),
            WAIT,
        );
        assert!(out.is_empty(), "fstream {name}: got {} bytes", out.len());
        assert!(
            status.is_some_and(|s| !s.success()),
            "fstream {name}: {status:?} {err}"
        );
    }
    if rtmp && have("rtmpdump") {
        let addr = host.addr("rtmp");
        for name in bad {
            let (status, out, err) = run_with_timeout(
                Command::new("rtmpdump").args([
                    "-r",
                    &format!("rtmp://{addr}/vod"),
                    "-a",
                    "vod",
                    "-y",
                    name,
                    "-o",
                    "-",
                ]),
                WAIT,
            );
            assert!(status.is_some(), "rtmpdump {name} hung");
            assert!(
                flv_tags(&out).is_empty(),
                "rtmpdump {name}: got {} bytes",
                out.len()
            );
            assert!(err.contains("StreamNotFound"), "rtmpdump {name}: {err}");
        }
    } else if rtmp {
        eprintln!("rtmpdump not installed: RTMP names not checked");
    }
    // The outside file was never opened; the host still serves a good name.
    assert!(!host
        .log()
        .lines()
        .any(|l| l.contains("playing a file") && l.contains("secret")));
    let (status, out, _) = run_with_timeout(
        Command::new(bin("fstream"))
            .arg(host.addr("fstream").to_string())
            .arg("watch,user=vod,channel=clip"),
        WAIT,
    );
    assert!(status.is_some_and(|s| s.success()));
    assert!(flv_tags(&out).iter().filter(|t| t.0 == 9).count() >= 2 * FPS as usize);
}

// ---------------------------------------------------------------------------------------------
// 6. A missing file is "not found", never an empty download (issue 10)

/// The onStatus codes librtmp saw, from `rtmpdump -z` (debug) output.
fn rtmpdump_statuses(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split_once("HandleInvoke, onStatus: "))
        .map(|(_, code)| code.trim().to_string())
        .collect()
}

#[test]
fn a_missing_file_is_not_found_for_rtmpdump_and_ffmpeg_and_a_real_one_then_plays() {
    if !tools() || !rtmp_built() {
        return;
    }
    let root = root("vod-missing", "", true);
    make_fixture(&root.path().join("media/clip.flv"), 3, false);
    let host = start(&root, true);
    let addr = host.addr("rtmp");
    let out = TempDir::new("vod-missing-out");

    // Several times: the answer must not depend on timing.
    for i in 0..3 {
        let dumped = out.path().join(format!("nosuch-{i}.flv"));
        let (status, _, err) = run_with_timeout(
            Command::new("rtmpdump")
                .args(["-z", "-r", &rtmp_url(addr, "vod/nosuch"), "-o"])
                .arg(&dumped),
            WAIT,
        );
        let status = status.expect("rtmpdump hung");
        let statuses = rtmpdump_statuses(&err);
        assert!(!status.success(), "rtmpdump exited 0: {statuses:?}");
        assert!(
            !err.contains("Download complete"),
            "rtmpdump reported a complete download: {statuses:?}"
        );
        assert!(
            statuses
                .iter()
                .any(|c| c == "NetStream.Play.StreamNotFound"),
            "{statuses:?}"
        );
        assert!(
            !statuses
                .iter()
                .any(|c| c == "NetStream.Play.Start" || c == "NetStream.Play.Reset"),
            "Reset/Start before StreamNotFound: {statuses:?}"
        );
        assert!(
            flv_tags(&std::fs::read(&dumped).unwrap_or_default()).is_empty(),
            "rtmpdump wrote media"
        );
    }

    // ffmpeg reading the missing file fails too.
    let (status, _, err) = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "error", "-rtmp_live", "recorded", "-i"])
            .arg(rtmp_url(addr, "vod/nosuch"))
            .args(["-f", "null", "-"]),
        WAIT,
    );
    let status = status.expect("ffmpeg hung");
    assert!(!status.success(), "ffmpeg read a missing file: {err}");

    // A file that exists then plays in full, with Play.Start, on the same server.
    let dumped = out.path().join("clip.flv");
    let (status, _, err) = run_with_timeout(
        Command::new("rtmpdump")
            .args(["-z", "-r", &rtmp_url(addr, "vod/clip"), "-o"])
            .arg(&dumped),
        Duration::from_secs(40),
    );
    assert!(status.is_some(), "rtmpdump hung on a real file");
    let statuses = rtmpdump_statuses(&err);
    assert!(
        statuses.iter().any(|c| c == "NetStream.Play.Start"),
        "{statuses:?}"
    );
    assert!(
        !statuses
            .iter()
            .any(|c| c == "NetStream.Play.StreamNotFound"),
        "{statuses:?}"
    );
    let decoded = decode_file(&dumped);
    assert!(
        decoded.video >= 3 * FPS as usize * 9 / 10,
        "rtmpdump of a real file: {decoded:?}"
    );
    let (decoded, _) = decode(
        &["-rtmp_live", "recorded"],
        &rtmp_url(addr, "vod/clip"),
        Duration::from_secs(40),
    );
    assert!(
        decoded.video >= 3 * FPS as usize * 9 / 10,
        "ffmpeg of a real file: {decoded:?}"
    );
}

#[test]
fn vod_players_are_bounded_and_a_freed_place_plays_again() {
    if !tools() || !rtmp_built() {
        return;
    }
    let root = root("vod-bound", "", true);
    make_fixture(&root.path().join("media/clip.flv"), 4, false);
    root.write(
        "mods/host.toml",
        "[limits]\nmax_source_players = 3\nsource_read_threads = 1\nsource_read_queue = 2\n",
    );
    let host = start(&root, true);
    let addr = host.addr("rtmp");
    let url = rtmp_url(addr, "vod/clip");

    // Three players fill the bound; with one read thread and a queue of two they still each
    // get every frame, paced.
    let players: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                decode(&["-rtmp_live", "recorded"], &url, Duration::from_secs(40))
            })
        })
        .collect();
    // Each RTMP play opens the file twice: the session's probe, then the real subscription.
    wait_log_count(&host, "recorded stream playing", 6, WAIT);

    // A fourth, while they play, is refused as not found, and told so at once.
    let (status, _, err) = run_with_timeout(
        Command::new("rtmpdump").args(["-z", "-r", &url, "-o", "/dev/null"]),
        WAIT,
    );
    assert!(status.is_some(), "rtmpdump hung");
    let statuses = rtmpdump_statuses(&err);
    assert!(
        statuses
            .iter()
            .any(|c| c == "NetStream.Play.StreamNotFound"),
        "a player past max_source_players: {statuses:?}"
    );
    host.wait_log("too many recorded-stream players", WAIT);

    for p in players {
        let (decoded, took) = p.join().unwrap();
        assert!(
            decoded.video >= 4 * FPS as usize * 9 / 10,
            "a player within the bound: {decoded:?}; log:\n{}",
            host.log()
        );
        // Paced: a 4 s file with at most 5 s sent ahead cannot be over before the read-ahead
        // the player asked for (ffmpeg asks for 3 s).
        assert!(took >= Duration::from_millis(700), "not paced: {took:?}");
    }

    // Their places are free again: the next player gets the whole file.
    let (decoded, _) = decode(&["-rtmp_live", "recorded"], &url, Duration::from_secs(40));
    assert!(
        decoded.video >= 4 * FPS as usize * 9 / 10,
        "a player after the others left: {decoded:?}"
    );
}
