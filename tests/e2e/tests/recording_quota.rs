//! The disk quota of the recordings directory (issue 14): `max_total_bytes` with
//! `on_full = "refuse"` or `"delete_oldest"` in mods/flv-recorder.toml.
//!
//! Real ffmpeg publishers over RTMP (recorded by the operator's pattern `fier/*`), a real
//! ffmpeg viewer of every publication (the live stream never notices the quota), recordings
//! checked with ffprobe. Each test is one host's history: a first recording without a quota
//! measures how big a recording of this stream is, a reload (SIGHUP) sets the quota from it,
//! then publications fill it.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Stdio,
    thread,
    time::{Duration, Instant, SystemTime},
};

use fstream_e2e::{ffmpeg_publish, ffmpeg_video_frames, video_frames_in, wait_success, Host, Root};

const WAIT: Duration = Duration::from_secs(30);

fn root(tag: &str) -> Root {
    fstream_e2e::require(&["ffmpeg", "ffprobe"]);
    let r = Root::new(
        tag,
        &[
            "auth-ini",
            "rtmp",
            "rtmp-app",
            "http",
            "control-api",
            "flv-recorder",
        ],
    );
    r.user("fier", "123");
    r.write("mods/rtmp.toml", "grace_ms = 200\n");
    r.write("mods/flv-recorder.toml", "record = [\"fier/*\"]\n");
    r
}

/// ffmpeg publishes `fier/NAME` for `secs` s while another ffmpeg watches it live for 2 s;
/// both must succeed whatever the recorder does.
fn round(host: &Host, name: &str, secs: u32) {
    let rtmp = host.addr("rtmp");
    let started = host
        .log()
        .matches(&format!("publishing stream=fier/{name}"))
        .count();
    let mut publisher = ffmpeg_publish(
        &format!("rtmp://{rtmp}/fier/{name}?user_password=123"),
        secs,
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("ffmpeg");
    host.expect_log_count(&format!("publishing stream=fier/{name}"), started + 1, WAIT);
    let (frames, err) = ffmpeg_video_frames(&format!("rtmp://{rtmp}/fier/{name}"), &[], 2.0);
    assert!(
        frames >= 40,
        "the live viewer of {name} got {frames}: {err}"
    );
    assert!(
        wait_success(&mut publisher, WAIT),
        "the publisher of {name} failed"
    );
    eprintln!("{name}: published {secs} s, the live viewer decoded {frames} frames");
}

/// The recordings of `fier/NAME`.
fn files_of(root: &Root, name: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.path().join("recordings/fier"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&format!("{name}-")) && n.ends_with(".flv"))
    });
    v.sort();
    v
}

fn only_file(root: &Root, name: &str) -> PathBuf {
    let files = files_of(root, name);
    assert_eq!(files.len(), 1, "recordings of {name}: {files:?}");
    files[0].clone()
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// `counters.recordings_done` of the control API: the RecordDone notices the host got.
fn recordings_done(api: SocketAddr) -> u64 {
    let mut s = TcpStream::connect(api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /api/v1/server HTTP/1.0\r\nHost: t\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let at = text
        .find("\"recordings_done\":")
        .unwrap_or_else(|| panic!("no recordings_done in {text}"));
    text[at + 18..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn wait_recordings_done(api: SocketAddr, n: u64) {
    let deadline = Instant::now() + WAIT;
    while recordings_done(api) < n {
        assert!(Instant::now() < deadline, "recordings_done stays below {n}");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(recordings_done(api), n);
}

fn reload(host: &Host, root: &Root, recorder_toml: &str) {
    let before = host.log().matches("configuration reloaded").count();
    root.write("mods/flv-recorder.toml", recorder_toml);
    host.signal(libc::SIGHUP);
    host.expect_log_count("configuration reloaded", before + 1, WAIT);
}

/// A first recording; the quota is set to 1.5 of it. The second recording reaches the quota
/// and is finished there, decodable; the third is refused; the operator deletes the first and
/// the third publisher, back for a short while, is recorded whole. The first file stays byte for byte until it is
/// deleted; every finished file is a RecordDone notice.
#[test]
fn refuse_stops_and_refuses_recordings_and_leaves_the_live_stream_alone() {
    let root = root("quota-refuse");
    let host = Host::start(&root, &["rtmp", "http", "api"], &[]);
    let api = host.addr("api");

    round(&host, "r1", 4);
    host.expect_log_count("recording finished", 1, WAIT);
    let first = only_file(&root, "r1");
    let first_bytes = std::fs::read(&first).unwrap();
    let s1 = first_bytes.len() as u64;
    assert_eq!(video_frames_in(&first), 100);
    wait_recordings_done(api, 1);

    let quota = s1 * 3 / 2;
    reload(
        &host,
        &root,
        &format!("record = [\"fier/*\"]\nmax_total_bytes = {quota}\non_full = \"refuse\"\n"),
    );

    // Admitted (s1 < quota), finished at the quota.
    round(&host, "r2", 4);
    host.expect_log_count("recording finished", 2, WAIT);
    host.expect_log_count(
        "recordings quota reached; finishing the recording here",
        1,
        WAIT,
    );
    let second = only_file(&root, "r2");
    let frames = video_frames_in(&second);
    eprintln!(
        "quota {quota}: first {s1} bytes, second stopped at {} bytes, {frames} frames",
        size(&second)
    );
    assert!((20..90).contains(&frames), "the second has {frames} frames");
    let total = s1 + size(&second);
    assert!(
        total >= quota && total < quota + 64 * 1024,
        "stopped within a tag of the quota: {total} vs {quota}"
    );
    wait_recordings_done(api, 2);

    // Refused at its start.
    round(&host, "r3", 3);
    host.expect_log_count("recording refused: recordings quota", 1, WAIT);
    assert!(files_of(&root, "r3").is_empty());
    assert_eq!(
        std::fs::read(&first).unwrap(),
        first_bytes,
        "the first file is intact"
    );
    assert_eq!(
        video_frames_in(&second),
        frames,
        "the second file is intact"
    );
    assert_eq!(host.log().matches("recording finished").count(), 2);

    // Room made by hand: the refused publisher comes back, and is recorded.
    std::fs::remove_file(&first).unwrap();
    round(&host, "r3", 2);
    host.expect_log_count("recording finished", 3, WAIT);
    assert_eq!(video_frames_in(&only_file(&root, "r3")), 50);
    assert_eq!(
        video_frames_in(&second),
        frames,
        "the second file is intact"
    );
    wait_recordings_done(api, 3);
    assert_eq!(
        host.log()
            .matches("recording refused: recordings quota")
            .count(),
        1
    );
}

/// Writes `bytes` bytes at `path`, last modified a day ago.
fn old_file(path: &Path, bytes: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, vec![7u8; bytes]).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(86_400))
        .unwrap();
}

/// A first recording; the quota is set to 2.5 of it. Each later recording that reaches it
/// deletes the oldest finished recording and goes on: in the end the two newest are there,
/// whole and decodable. Files that are not the recorder's (older than all of them) stay, and
/// so does a file outside the directory that a link inside, named like a recording, points to.
#[test]
fn delete_oldest_makes_room_and_keeps_the_newest_and_what_is_not_ours() {
    let root = root("quota-oldest");
    let rec = root.path().join("recordings/fier");
    let host = Host::start(&root, &["rtmp", "http", "api"], &[]);

    round(&host, "r1", 4);
    host.expect_log_count("recording finished", 1, WAIT);
    let s1 = size(&only_file(&root, "r1"));

    // Decoys: an operator's note, an appended recording, and a link to a file outside.
    let notes = rec.join("notes.txt");
    old_file(&notes, 1000);
    let appended = rec.join("keep.flv");
    old_file(&appended, 1000);
    let outside = root.path().join("elsewhere/r0-20200101T000000Z.flv");
    old_file(&outside, 100_000);
    let link = rec.join("r0-20200101T000000Z.flv");
    std::os::unix::fs::symlink(&outside, &link).unwrap();

    let quota = s1 * 5 / 2;
    reload(
        &host,
        &root,
        &format!("record = [\"fier/*\"]\nmax_total_bytes = {quota}\non_full = \"delete_oldest\"\n"),
    );
    round(&host, "r2", 4);
    host.expect_log_count("recording finished", 2, WAIT);
    assert_eq!(
        files_of(&root, "r1").len(),
        1,
        "under the quota: nothing deleted"
    );

    // Each of these reaches the quota half way and deletes the oldest.
    for (n, name, gone) in [(3, "r3", "r1"), (4, "r4", "r2")] {
        round(&host, name, 4);
        host.expect_log_count("recording finished", n, WAIT);
        host.expect_log_count(
            "recordings quota: deleted the oldest recording",
            n - 2,
            WAIT,
        );
        assert!(files_of(&root, gone).is_empty(), "{gone} should be gone");
        let last = only_file(&root, name);
        assert_eq!(video_frames_in(&last), 100, "{name} is whole");
    }
    let r3 = only_file(&root, "r3");
    assert_eq!(video_frames_in(&r3), 100, "r3 outlived r4's recording");
    let total = size(&r3) + size(&only_file(&root, "r4")) + 2000;
    eprintln!("quota {quota} (recording {s1} bytes): {total} bytes in the end");
    assert!(total < quota);
    for kept in [&notes, &appended, &link] {
        assert!(
            std::fs::symlink_metadata(kept).is_ok(),
            "{} was deleted",
            kept.display()
        );
    }
    assert_eq!(size(&outside), 100_000, "the file outside is untouched");
    assert_eq!(
        host.log()
            .matches("recordings quota: deleted the oldest recording")
            .count(),
        2
    );
    assert!(!host.log().contains("recording refused"));
}
