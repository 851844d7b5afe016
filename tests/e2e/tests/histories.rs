//! Histories with real players: viewers that play, leave and play again; players that take
//! turns; players that join while a publisher is replaced or after it returns. A viewer's bytes
//! depend on what happened to the stream before it joined, so each test drives a history and
//! every player decodes frames (counted from the decoder's output, not assumed).
//!
//! Players we did not write: ffmpeg, rtmpdump (librtmp), GStreamer's `rtmp2src` and `rtmpsrc`
//! (librtmp again, as many players use it), and the `fstream` client's FLV read by ffprobe.
//! The stock plugins (auth-ini, fstream, rtmp, rtmp-app), 127.0.0.1 and ephemeral ports.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::Duration,
};

use fstream_e2e::{background, bin, ffmpeg_publish, run_with_timeout, video_frames_in, Host, Root};

const WAIT: Duration = Duration::from_secs(20);
/// The generated stream: 25 frames per second, a keyframe every second.
const FPS: usize = 25;

fn root(tag: &str) -> Root {
    let root = Root::new(tag, &["auth-ini", "fstream", "rtmp", "rtmp-app"]);
    root.user("fier", "123");
    root
}

fn start(tag: &str) -> (Root, Host) {
    fstream_e2e::require(&["ffmpeg", "ffprobe", "rtmpdump", "gst-launch-1.0"]);
    let root = root(tag);
    let host = Host::start(&root, &["rtmp", "fstream"], &[]);
    (root, host)
}

fn publish(host: &Host, secs: u32) -> thread::JoinHandle<fstream_e2e::Outcome> {
    let url = format!("rtmp://{}/fier/cam?user_password=123", host.addr("rtmp"));
    background(
        ffmpeg_publish(&url, secs),
        Duration::from_secs(secs as u64 + 30),
    )
}

/// One player, run for about `secs` seconds: how many video frames it decoded.
#[derive(Debug, Clone, Copy)]
enum Player {
    Ffmpeg,
    Rtmpdump,
    Rtmp2src,
    Rtmpsrc,
    FstreamWatch,
}

fn play(host: &Host, dir: &Path, player: Player, secs: u32, tag: &str) -> usize {
    let url = format!("rtmp://{}/fier/cam", host.addr("rtmp"));
    match player {
        Player::Ffmpeg => {
            let mut c = Command::new("ffmpeg");
            c.args(["-hide_banner", "-loglevel", "error", "-i", &url])
                .args(["-t", &secs.to_string()])
                .args(["-map", "0:v:0", "-f", "framemd5", "-"]);
            let (status, out, err) =
                run_with_timeout(&mut c, WAIT + Duration::from_secs(secs as u64));
            assert!(
                status.map(|s| s.success()).unwrap_or(false),
                "ffmpeg {tag}: {err}"
            );
            fstream_e2e::decoded_frames(&out)
        }
        Player::Rtmpdump => {
            let file = dir.join(format!("{tag}.flv"));
            let mut c = Command::new("rtmpdump");
            c.args(["-r", &url, "--live", "-q", "-o"]).arg(&file);
            run_for(c, secs);
            video_frames_in(&file)
        }
        Player::Rtmp2src | Player::Rtmpsrc => {
            let src = match player {
                Player::Rtmp2src => format!("rtmp2src location={url}"),
                _ => format!("rtmpsrc location=\"{url} live=1\""),
            };
            gst_frames(&src, secs, tag)
        }
        Player::FstreamWatch => {
            let file = dir.join(format!("{tag}.flv"));
            let out = std::fs::File::create(&file).expect("create");
            let mut w = Command::new(bin("fstream"));
            w.arg(host.addr("fstream").to_string())
                .arg("watch,user=fier,channel=cam")
                .stdout(out);
            run_for(w, secs);
            video_frames_in(&file)
        }
    }
}

/// Runs a player that writes a file for `secs`, then stops it (as a viewer closing its window).
/// SIGINT first, which rtmpdump answers by flushing and closing its file (a SIGKILL could
/// leave what it buffered unwritten); SIGKILL if it is still there 3 s later.
fn run_for(mut cmd: Command, secs: u32) {
    let mut child: Child = cmd.stderr(Stdio::null()).spawn().expect("spawn player");
    thread::sleep(Duration::from_secs(secs as u64));
    // SAFETY: signalling our own child, by the pid we were given.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    for _ in 0..30 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Decoded video frames of a GStreamer pipeline from `src`, stopped after `secs`.
fn gst_frames(src: &str, secs: u32, tag: &str) -> usize {
    let pipeline = format!(
        "{src} ! flvdemux name=d d.video ! queue ! h264parse ! avdec_h264 ! fakesink name=v \
         silent=false d.audio ! queue ! fakesink"
    );
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "exec timeout -s INT {secs} gst-launch-1.0 -v {pipeline}"
    ));
    let (_, out, err) = run_with_timeout(&mut c, WAIT + Duration::from_secs(secs as u64));
    let text = String::from_utf8_lossy(&out);
    let frames = text
        .lines()
        .filter(|l| l.contains("GstFakeSink:v: last-message = chain"))
        .count();
    if frames == 0 {
        eprintln!(
            "gstreamer {tag}: {err}\n{}",
            text.lines().take(20).collect::<Vec<_>>().join("\n")
        );
    }
    frames
}

fn files(root: &Root) -> PathBuf {
    let d = root.path().join("out");
    std::fs::create_dir_all(&d).expect("out dir");
    d
}

/// Every kind of player plays for two seconds, leaves, and plays again, in turn: each one
/// joins after others of its format left (the history that used to get garbage).
#[test]
fn every_player_plays_leaves_and_plays_again() {
    let (root, host) = start("hist-replay");
    let dir = files(&root);
    let players = [
        Player::Ffmpeg,
        Player::Rtmpdump,
        Player::Rtmp2src,
        Player::Rtmpsrc,
        Player::FstreamWatch,
    ];
    let secs_each = 3;
    // Longer than the test; stopped at its end.
    let mut publisher = ffmpeg_publish(
        &format!("rtmp://{}/fier/cam?user_password=123", host.addr("rtmp")),
        300,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("ffmpeg publisher");
    assert!(host.wait_log("publishing stream=fier/cam", WAIT));
    thread::sleep(Duration::from_millis(1200));
    let mut report = Vec::new();
    for round in 0..2 {
        for p in players {
            let tag = format!("{p:?}-{round}");
            let frames = play(&host, &dir, p, secs_each, &tag);
            report.push(format!("{tag}: {frames}"));
            eprintln!("{tag}: {frames} frames decoded");
            assert!(
                frames >= FPS,
                "{tag} decoded {frames} frames in {secs_each} s; so far {report:?}; host log:\n{}",
                host.log()
            );
        }
    }
    let _ = publisher.kill();
    let _ = publisher.wait();
}

/// Two ffmpeg players take turns: A plays, B joins, A leaves, A plays again while B plays,
/// B leaves and plays again. Each decodes frames every time.
#[test]
fn two_players_leave_and_rejoin_in_turn() {
    let (root, host) = start("hist-turns");
    let dir = files(&root);
    let publisher = publish(&host, 16);
    assert!(host.wait_log("publishing stream=fier/cam", WAIT));
    thread::sleep(Duration::from_millis(1000));
    let h = std::sync::Arc::new(host);
    let spawn = |delay_ms: u64, secs: u32, tag: &'static str| {
        let h = h.clone();
        let dir = dir.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(delay_ms));
            (tag, play(&h, &dir, Player::Ffmpeg, secs, tag))
        })
    };
    let turns = vec![
        spawn(0, 3, "A1"),
        spawn(1500, 4, "B1"),
        spawn(4000, 3, "A2"),
        spawn(6500, 3, "B2"),
        spawn(8000, 3, "A3"),
    ];
    for t in turns {
        let (tag, frames) = t.join().expect("player thread");
        eprintln!("{tag}: {frames} frames");
        assert!(frames >= 2 * FPS, "{tag}: {frames} frames");
    }
    drop(publisher);
}

/// A publisher is replaced by another (ffmpeg again) while players watch; a player joins
/// while the stream has no publisher (within the grace period) and one after the second
/// publisher started; a player that stays through the switch keeps decoding.
#[test]
fn players_join_during_a_publisher_switch_and_after_it_returns() {
    let (root, host) = start("hist-switch");
    let dir = files(&root);
    let h = std::sync::Arc::new(host);
    let first = publish(&h, 5);
    assert!(h.wait_log("publishing stream=fier/cam", WAIT));
    thread::sleep(Duration::from_millis(1000));
    let through = {
        let (h, dir) = (h.clone(), dir.clone());
        thread::spawn(move || play(&h, &dir, Player::Ffmpeg, 9, "through"))
    };
    let through_flv = {
        let (h, dir) = (h.clone(), dir.clone());
        thread::spawn(move || play(&h, &dir, Player::FstreamWatch, 9, "through-fstream"))
    };
    let (status, _, err) = first.join().expect("first publisher");
    assert!(status.map(|s| s.success()).unwrap_or(false), "{err}");
    h.expect_log_count("publisher left", 1, WAIT);
    // No publisher now: these players wait (grace period) and get the next one.
    let during: Vec<_> = [Player::Ffmpeg, Player::Rtmp2src, Player::FstreamWatch]
        .into_iter()
        .map(|p| {
            let (h, dir) = (h.clone(), dir.clone());
            thread::spawn(move || (p, play(&h, &dir, p, 5, &format!("during-{p:?}"))))
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    let second = publish(&h, 7);
    h.expect_log_count("publishing stream=fier/cam", 2, WAIT);
    thread::sleep(Duration::from_millis(1500));
    let after: Vec<_> = [Player::Ffmpeg, Player::Rtmpdump, Player::Rtmpsrc]
        .into_iter()
        .map(|p| {
            let (h, dir) = (h.clone(), dir.clone());
            thread::spawn(move || (p, play(&h, &dir, p, 3, &format!("after-{p:?}"))))
        })
        .collect();
    for t in during.into_iter().chain(after) {
        let (p, frames) = t.join().expect("player");
        eprintln!("{p:?}: {frames} frames");
        assert!(frames >= FPS, "{p:?}: {frames} frames");
    }
    let frames = through.join().expect("through");
    // ffmpeg (like librtmp and rtmp2src) ends its play at NetStream.Play.UnpublishNotify, as
    // with nginx-rtmp: it decoded the first publisher's part, about 4 s.
    eprintln!("ffmpeg through the switch: {frames} frames");
    assert!(frames >= 3 * FPS, "through the switch: {frames} frames");
    let frames = through_flv.join().expect("through fstream");
    eprintln!("fstream watcher through the switch: {frames} frames");
    assert!(
        frames >= 5 * FPS,
        "fstream through the switch: {frames} frames"
    );
    let _ = second.join();
}

/// A second publisher takes over a live stream (second_publisher = "replace", the default):
/// players watching go on decoding across the replacement (timestamps continue), and players
/// joining after it start on the new publisher's headers and a keyframe.
#[test]
fn players_continue_across_a_replaced_publisher() {
    let (root, host) = start("hist-replace");
    let dir = files(&root);
    let h = std::sync::Arc::new(host);
    let first = publish(&h, 12);
    assert!(h.wait_log("publishing stream=fier/cam", WAIT));
    thread::sleep(Duration::from_millis(1000));
    let watching: Vec<_> = [Player::Ffmpeg, Player::Rtmp2src, Player::FstreamWatch]
        .into_iter()
        .map(|p| {
            let (h, dir) = (h.clone(), dir.clone());
            thread::spawn(move || (p, play(&h, &dir, p, 7, &format!("watching-{p:?}"))))
        })
        .collect();
    thread::sleep(Duration::from_millis(2500));
    let second = publish(&h, 8);
    h.expect_log_count("a new publisher replaces the current one", 1, WAIT);
    thread::sleep(Duration::from_millis(1000));
    let after: Vec<_> = [Player::Ffmpeg, Player::Rtmpsrc, Player::FstreamWatch]
        .into_iter()
        .map(|p| {
            let (h, dir) = (h.clone(), dir.clone());
            thread::spawn(move || (p, play(&h, &dir, p, 3, &format!("joined-{p:?}"))))
        })
        .collect();
    for t in watching {
        let (p, frames) = t.join().expect("player");
        eprintln!("{p:?} across the replacement: {frames} frames");
        // 7 s of play: 2.5 s of the first publisher, the rest of the second.
        assert!(
            frames >= 5 * FPS,
            "{p:?} across the replacement: {frames} frames"
        );
    }
    for t in after {
        let (p, frames) = t.join().expect("player");
        eprintln!("{p:?} joined after the replacement: {frames} frames");
        assert!(frames >= 2 * FPS, "{p:?}: {frames} frames");
    }
    let _ = (first.join(), second.join());
}
