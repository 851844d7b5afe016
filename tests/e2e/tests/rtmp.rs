//! The RTMP frontend end to end: the real host with `auth-ini`, `rtmp` and the `test-app` app
//! handler, real clients (ffmpeg, ffprobe, rtmpdump, the `fstream` client) and the harness's
//! byte-level RTMP client (`fstream_e2e::rtmp_client`).
//!
//! Build first (`cargo build --workspace`). Every test uses 127.0.0.1 and ephemeral ports, stops
//! by itself, and skips (with a message) when a tool it needs is not installed.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::Command,
    thread::{self},
    time::{Duration, Instant},
};

use fstream_e2e::{
    background, bin, decoded_frames, ffmpeg_play, ffmpeg_publish,
    rtmp_client::{info_of, send_flv_tags, RtmpClient},
    run_with_timeout, Host, Root,
};
use fstream_media::{
    amf0::Amf0Value,
    rtmp::message::{msg_type, Command as RtmpCommand, CommandEncoding, ControlMessage},
    AmfLimits,
};

const WAIT: Duration = Duration::from_secs(20);
/// The generated test stream: 25 frames per second, a keyframe every second.
const FPS: usize = 25;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A root with users `fier` (123) and `ann` (456), `auth-ini`, `rtmp` and `test-app`.
fn root(tag: &str, with_fstream: bool) -> Root {
    let plugins: &[&str] = if with_fstream {
        &["auth-ini", "fstream", "rtmp", "test-app"]
    } else {
        &["auth-ini", "rtmp", "test-app"]
    };
    let root = Root::new(tag, plugins);
    root.user("fier", "123");
    root.user("ann", "456");
    root
}

fn tools(names: &[&str]) -> bool {
    fstream_e2e::require(names);
    true
}

/// Video frames ffprobe decodes in a file; a file it cannot read fails the test.
fn ffprobe_frames(path: &Path) -> usize {
    let n = fstream_e2e::video_frames_in(path);
    assert!(n > 0, "ffprobe decoded nothing in {}", path.display());
    n
}

/// The flags of the first video packet in a file (`K_` for a keyframe).
fn ffprobe_first_video_flags(path: &Path) -> String {
    let mut c = Command::new("ffprobe");
    c.args(["-v", "error", "-select_streams", "v:0", "-show_packets"])
        .args(["-show_entries", "packet=flags", "-of", "csv=p=0"])
        .arg(path);
    let (_, out, _) = run_with_timeout(&mut c, WAIT);
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn log_count(host: &Host, needle: &str) -> usize {
    host.log().matches(needle).count()
}

fn wait_log_count(host: &Host, needle: &str, n: usize) {
    let deadline = Instant::now() + WAIT;
    while log_count(host, needle) < n {
        assert!(
            Instant::now() < deadline,
            "waited for {n}x {needle:?}; log:\n{}",
            host.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// 1. ffmpeg publishes; two players at once and a late joiner

#[test]
fn ffmpeg_publish_plays_to_two_players_and_a_late_joiner_starts_on_a_keyframe() {
    if !tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let root = root("rtmp-ffmpeg", false);
    let host = Host::start(&root, &["rtmp"], &[]);
    let addr = host.addr("rtmp");
    let url = format!("rtmp://{addr}/fier/cam");

    // Two players wait for the publisher.
    let players: Vec<_> = (0..2)
        .map(|_| background(ffmpeg_play(&url), Duration::from_secs(40)))
        .collect();
    wait_log_count(&host, "playing stream=fier/cam", 2);

    let secs = 6;
    let publisher = background(
        ffmpeg_publish(&format!("{url}?user_password=123"), secs),
        Duration::from_secs(40),
    );
    host.wait_log("publishing stream=fier/cam", WAIT);
    thread::sleep(Duration::from_millis(2500));
    let late_file = root.path().join("late.flv");
    let mut late = Command::new("ffmpeg");
    late.args(["-hide_banner", "-loglevel", "error", "-i", &url])
        .args(["-c", "copy", "-f", "flv"])
        .arg(&late_file);
    let late = background(late, Duration::from_secs(40));

    let (status, _, err) = publisher.join().unwrap();
    assert!(
        status.map(|s| s.success()).unwrap_or(false),
        "publisher: {err}"
    );
    let expected = secs as usize * FPS;
    for (i, p) in players.into_iter().enumerate() {
        let (status, out, err) = p.join().unwrap();
        let frames = decoded_frames(&out);
        eprintln!("player {i}: {frames} of {expected} frames decoded");
        assert!(status.is_some(), "player {i} did not stop: {err}");
        assert!(
            frames * 10 >= expected * 9,
            "player {i}: {frames} frames; {err}"
        );
    }
    let (status, _, err) = late.join().unwrap();
    assert!(status.is_some(), "late player did not stop: {err}");
    let late_frames = ffprobe_frames(&late_file);
    let flags = ffprobe_first_video_flags(&late_file);
    eprintln!("late player: {late_frames} frames, first video packet flags {flags:?}");
    assert!(
        late_frames >= 2 * FPS,
        "late player: {late_frames} frames; {err}"
    );
    assert!(
        late_frames < expected,
        "the late player did not get everything"
    );
    assert!(
        flags.starts_with('K'),
        "first video packet of the late joiner: {flags:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. rtmpdump plays a live stream

#[test]
fn rtmpdump_plays_a_live_stream() {
    if !tools(&["ffmpeg", "ffprobe", "rtmpdump"]) {
        return;
    }
    let root = root("rtmp-rtmpdump", false);
    let host = Host::start(&root, &["rtmp"], &[]);
    let url = format!("rtmp://{}/fier/cam", host.addr("rtmp"));
    let publisher = background(
        ffmpeg_publish(&format!("{url}?user_password=123"), 5),
        Duration::from_secs(40),
    );
    assert!(host.wait_log("publishing stream=fier/cam", WAIT));
    thread::sleep(Duration::from_millis(500));
    let out = root.path().join("dump.flv");
    let mut c = Command::new("rtmpdump");
    c.args(["-r", &url, "--live", "-q", "-o"]).arg(&out);
    let (status, _, err) = run_with_timeout(&mut c, Duration::from_secs(30));
    let _ = publisher.join();
    assert!(status.is_some(), "rtmpdump did not stop: {err}");
    assert!(!err.contains("server sent error"), "{err}");
    let frames = ffprobe_frames(&out);
    eprintln!("rtmpdump: {frames} video frames in its file");
    assert!(frames >= 3 * FPS, "{frames} frames; rtmpdump: {err}");
    assert!(ffprobe_first_video_flags(&out).starts_with('K'));
}

// ---------------------------------------------------------------------------------------------
// 3. An OBS-style publisher written byte by byte

#[test]
fn obs_style_byte_level_publish_is_played_by_ffmpeg() {
    if !tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let root = root("rtmp-obs", false);
    root.write("mods/test-app.toml", "greet = true\n");
    let host = Host::start(&root, &["rtmp"], &[]);
    let addr = host.addr("rtmp");
    let flv = fstream_e2e::generated_flv(root.path(), 3);
    let player = background(
        ffmpeg_play(&format!("rtmp://{addr}/fier/obs")),
        Duration::from_secs(30),
    );
    wait_log_count(&host, "playing stream=fier/obs", 1);

    let mut c = RtmpClient::new(addr);
    c.set_chunk_size(4096);
    let answer = c.connect("fier");
    assert_eq!(answer.name, "_result");
    let (_, code, _) = info_of(&answer);
    assert_eq!(code, "NetConnection.Connect.Success");
    assert_eq!(
        answer.command_object.get_str("fmsVer"),
        Some("FMS/3,5,7,7009")
    );
    // The app handler's command follows the answer.
    let greeting = c.next_command();
    assert_eq!(greeting.name, "onTestGreeting");
    assert_eq!(greeting.args[0].as_str(), Some("hello"));
    assert_eq!(greeting.args[1].get_str("app"), Some("fier"));

    let key = "obs?user_password=123";
    c.command(
        0,
        "releaseStream",
        2.0,
        Amf0Value::Null,
        vec![Amf0Value::from(key)],
    );
    c.command(
        0,
        "FCPublish",
        3.0,
        Amf0Value::Null,
        vec![Amf0Value::from(key)],
    );
    let msid = c.create_stream(4.0);
    assert_eq!(msid, 1);
    let (level, code, _) = c.publish(msid, key);
    assert_eq!(
        (level.as_str(), code.as_str()),
        ("status", "NetStream.Publish.Start")
    );

    let sent = send_flv_tags(&mut c, msid, &flv);
    c.command(
        0,
        "FCUnpublish",
        6.0,
        Amf0Value::Null,
        vec![Amf0Value::from(key)],
    );
    c.command(
        0,
        "deleteStream",
        7.0,
        Amf0Value::Null,
        vec![Amf0Value::Number(1.0)],
    );
    let (_, code, _) = info_of(&c.expect("onStatus"));
    assert_eq!(code, "NetStream.Unpublish.Success");
    drop(c);

    let (status, out, err) = player.join().unwrap();
    let frames = decoded_frames(&out);
    eprintln!("byte-level publisher sent {sent} video frames; the player decoded {frames}");
    assert!(sent >= 3 * FPS, "{sent}");
    assert!(status.is_some(), "player did not stop: {err}");
    assert!(frames * 10 >= sent * 9, "{frames} of {sent}; {err}");
}

// ---------------------------------------------------------------------------------------------
// 4. Refusals, while another stream keeps flowing

#[test]
fn refusals_get_their_status_codes_while_another_stream_flows() {
    if !tools(&["ffmpeg"]) {
        return;
    }
    let root = root("rtmp-refusals", false);
    root.write("mods/rtmp.toml", "second_publisher = \"reject\"\n");
    // No app handler serves "nope".
    root.write("mods/test-app.toml", "apps = [\"fier\", \"ann\"]\n");
    let host = Host::start(&root, &["rtmp"], &[]);
    let addr = host.addr("rtmp");
    let url = format!("rtmp://{addr}/fier/cam");

    let player = background(ffmpeg_play(&url), Duration::from_secs(40));
    wait_log_count(&host, "playing stream=fier/cam", 1);
    let secs = 7;
    let publisher = background(
        ffmpeg_publish(&format!("{url}?user_password=123"), secs),
        Duration::from_secs(40),
    );
    assert!(host.wait_log("publishing stream=fier/cam", WAIT));
    thread::sleep(Duration::from_millis(500));

    let mut c = RtmpClient::new(addr);
    assert_eq!(c.connect("fier").name, "_result");
    let msid = c.create_stream(2.0);

    // Wrong password.
    let (level, code, description) = c.publish(msid, "cam2?user_password=124");
    assert_eq!(
        (level.as_str(), code.as_str()),
        ("error", "NetStream.Publish.BadName")
    );
    assert!(description.contains("wrong password"), "{description}");
    // No credentials.
    let (level, code, description) = c.publish(msid, "cam2");
    assert_eq!(
        (level.as_str(), code.as_str()),
        ("error", "NetStream.Publish.BadName")
    );
    assert!(description.contains("refused"), "{description}");
    // Another user's password.
    let (_, code, _) = c.publish(msid, "cam2?user_password=456");
    assert_eq!(code, "NetStream.Publish.BadName");
    // A second publisher of the live stream, with the right password (reject policy).
    let (level, code, description) = c.publish(msid, "cam?user_password=123");
    assert_eq!(
        (level.as_str(), code.as_str()),
        ("error", "NetStream.Publish.BadName")
    );
    assert!(
        description.contains("already being published"),
        "{description}"
    );
    // A bad stream name.
    let (_, code, _) = c.publish(msid, "..?user_password=123");
    assert_eq!(code, "NetStream.Publish.BadName");
    // An unknown command is answered, the connection stays.
    c.command(0, "_checkbw", 9.0, Amf0Value::Null, vec![]);
    let e = c.expect("_error");
    assert_eq!(info_of(&e).1, "NetConnection.Call.Failed");
    assert_eq!(c.create_stream(10.0), 2);
    drop(c);

    // An app no handler serves: the host's answer, then the connection closes.
    let mut c = RtmpClient::new(addr);
    let answer = c.connect("nope");
    assert_eq!(answer.name, "_error");
    let (level, code, description) = info_of(&answer);
    assert_eq!(
        (level.as_str(), code.as_str()),
        ("error", "NetConnection.Connect.Rejected")
    );
    assert_eq!(description, "Application not found: nope");
    while c.next().is_some() {}

    // A player with a bad name.
    let mut c = RtmpClient::new(addr);
    c.connect("fier");
    let msid = c.create_stream(2.0);
    c.command(
        msid,
        "play",
        3.0,
        Amf0Value::Null,
        vec![Amf0Value::from("a b")],
    );
    let (_, code, _) = info_of(&c.expect("onStatus"));
    assert_eq!(code, "NetStream.Play.StreamNotFound");
    drop(c);

    // Bad input closes only that connection.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "closed without an answer");

    let (status, _, err) = publisher.join().unwrap();
    assert!(
        status.map(|s| s.success()).unwrap_or(false),
        "publisher: {err}"
    );
    let (_, out, err) = player.join().unwrap();
    let frames = decoded_frames(&out);
    let expected = secs as usize * FPS;
    eprintln!("the other stream: {frames} of {expected} frames decoded meanwhile");
    assert!(frames * 10 >= expected * 9, "{frames}; {err}");
    assert!(
        host.log().contains("kind=handshake"),
        "the bad client is logged"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Across protocols (needs the fstream plugin and client)

fn fstream_ready() -> bool {
    let ok = fstream_e2e::target_dir().join("libfstream.so").exists()
        && fstream_e2e::target_dir().join("fstream").exists();
    if !ok {
        eprintln!("skipped: the fstream plugin or client is not built");
    }
    ok
}

#[test]
fn rtmp_publish_is_watched_over_fstream_as_flv() {
    if !tools(&["ffmpeg", "ffprobe"]) || !fstream_ready() {
        return;
    }
    let root = root("rtmp-to-fstream", true);
    let host = Host::start(&root, &["rtmp", "fstream"], &[]);
    let faddr = host.addr("fstream").to_string();
    let out = root.path().join("watched.flv");
    let watch_file = std::fs::File::create(&out).unwrap();
    let mut w = Command::new(bin("fstream"));
    w.arg(&faddr)
        .arg("watch,user=fier,channel=cam")
        .stdout(watch_file);
    let mut watcher = w.spawn().unwrap();
    thread::sleep(Duration::from_millis(500));
    let secs = 4;
    let url = format!("rtmp://{}/fier/cam?user_password=123", host.addr("rtmp"));
    let (status, _, err) =
        run_with_timeout(&mut ffmpeg_publish(&url, secs), Duration::from_secs(30));
    assert!(
        status.map(|s| s.success()).unwrap_or(false),
        "publisher: {err}"
    );
    // The watcher ends when the grace period is over; don't wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && watcher.try_wait().ok().flatten().is_none() {
        thread::sleep(Duration::from_millis(100));
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    let frames = ffprobe_frames(&out);
    eprintln!("fstream watcher of an RTMP publish: {frames} frames");
    assert!(frames * 10 >= secs as usize * FPS * 9, "{frames}");
}

#[test]
fn fstream_flv_broadcast_plays_over_rtmp_and_raw_bytes_are_not_found() {
    if !tools(&["ffmpeg"]) || !fstream_ready() {
        return;
    }
    let root = root("fstream-to-rtmp", true);
    let host = Host::start(&root, &["rtmp", "fstream"], &[]);
    let faddr = host.addr("fstream").to_string();
    let raddr = host.addr("rtmp");
    let player = background(
        ffmpeg_play(&format!("rtmp://{raddr}/fier/x")),
        Duration::from_secs(40),
    );
    wait_log_count(&host, "playing stream=fier/x", 1);
    let secs = 4;
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(format!(
        "ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=25 \
         -f lavfi -i sine=frequency=440 -t {secs} -c:v libx264 -g 25 -preset ultrafast \
         -c:a aac -f flv - | '{}' {faddr} broadcast,user=fier,user_password=123,channel=x",
        bin("fstream").display()
    ));
    let (status, _, err) = run_with_timeout(&mut sh, Duration::from_secs(30));
    assert!(
        status.map(|s| s.success()).unwrap_or(false),
        "broadcast: {err}"
    );
    let (_, out, err) = player.join().unwrap();
    let frames = decoded_frames(&out);
    eprintln!("RTMP player of an fstream FLV broadcast: {frames} frames");
    assert!(frames * 10 >= secs as usize * FPS * 9, "{frames}; {err}");

    // Raw bytes (not FLV) have no RTMP form: the player is told StreamNotFound.
    let mut c = RtmpClient::new(raddr);
    c.connect("fier");
    let msid = c.create_stream(2.0);
    c.command(
        msid,
        "play",
        3.0,
        Amf0Value::Null,
        vec![Amf0Value::from("raw")],
    );
    let (_, code, _) = info_of(&c.expect("onStatus"));
    assert_eq!(code, "NetStream.Play.Reset");
    let mut b = Command::new("sh");
    b.arg("-c").arg(format!(
        "head -c 100000 /dev/zero | '{}' {faddr} broadcast,user=fier,user_password=123,channel=raw",
        bin("fstream").display()
    ));
    let raw = background(b, Duration::from_secs(20));
    let code = loop {
        let (_, code, _) = info_of(&c.expect("onStatus"));
        if code != "NetStream.Play.Start" {
            break code;
        }
    };
    assert_eq!(code, "NetStream.Play.StreamNotFound");
    let _ = raw.join();
}

// ---------------------------------------------------------------------------------------------
// A live raw fstream broadcast has no RTMP form: StreamNotFound alone (issue 10)

/// Messages up to the first onStatus: (the onStatus codes seen, whether a StreamBegin came).
fn first_status(c: &mut RtmpClient) -> (String, bool) {
    let mut stream_begin = false;
    loop {
        let m = c.next().expect("a status before EOF");
        match m.type_id {
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                let cmd = RtmpCommand::parse(m.type_id, &m.payload, &AmfLimits::default()).unwrap();
                if cmd.name == "onStatus" {
                    return (info_of(&cmd).1, stream_begin);
                }
            }
            t if t <= 6 => {
                if let Ok(ControlMessage::UserControl(e)) = ControlMessage::parse(t, &m.payload) {
                    stream_begin |= format!("{e:?}").starts_with("StreamBegin");
                }
            }
            _ => {}
        }
    }
}

#[test]
fn a_live_raw_broadcast_is_not_found_without_play_start_and_a_media_stream_then_plays() {
    if !tools(&["ffmpeg", "rtmpdump"]) || !fstream_ready() {
        return;
    }
    let root = root("rtmp-raw-live", true);
    let host = Host::start(&root, &["rtmp", "fstream"], &[]);
    let faddr = host.addr("fstream").to_string();
    let raddr = host.addr("rtmp");

    // A raw broadcast that stays live while the players try it.
    let mut raw = std::process::Command::new(bin("fstream"))
        .arg(&faddr)
        .arg("broadcast,user=fier,user_password=123,channel=raw")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut feed = raw.stdin.take().unwrap();
    feed.write_all(&[0x47; 188 * 64]).unwrap();
    feed.flush().unwrap();
    assert!(host.wait_log("broadcast started stream=fier/raw", WAIT));
    assert!(host.wait_log("the broadcast is raw bytes", WAIT));

    let mut c = RtmpClient::new(raddr);
    c.connect("fier");
    let msid = c.create_stream(2.0);
    for i in 0..5 {
        // More bytes between tries: the stream is live throughout.
        feed.write_all(&[0x47; 188 * 16]).unwrap();
        c.command(
            msid,
            "play",
            3.0 + i as f64,
            Amf0Value::Null,
            vec![Amf0Value::from("raw")],
        );
        let (code, stream_begin) = first_status(&mut c);
        assert_eq!(code, "NetStream.Play.StreamNotFound", "try {i}");
        assert!(!stream_begin, "try {i}: StreamBegin before StreamNotFound");
    }

    // rtmpdump (librtmp) gives up with an error instead of "Download complete".
    let (status, _, err) = run_with_timeout(
        Command::new("rtmpdump")
            .args(["-z", "--live", "-r", &format!("rtmp://{raddr}/fier/raw")])
            .args(["-o", "-"]),
        WAIT,
    );
    let status = status.expect("rtmpdump hung");
    let statuses: Vec<&str> = err
        .lines()
        .filter_map(|l| l.split_once("HandleInvoke, onStatus: "))
        .map(|(_, code)| code.trim())
        .collect();
    assert!(!status.success(), "rtmpdump exited 0: {statuses:?}");
    assert!(!err.contains("Download complete"), "{statuses:?}");
    assert!(
        statuses.contains(&"NetStream.Play.StreamNotFound"),
        "{statuses:?}"
    );
    assert!(!statuses.contains(&"NetStream.Play.Start"), "{statuses:?}");
    drop(feed);
    let _ = raw.kill();
    let _ = raw.wait();

    // The same connection then plays a media stream: Reset, Start, then media.
    let publisher = background(
        ffmpeg_publish(&format!("rtmp://{raddr}/fier/cam?user_password=123"), 4),
        Duration::from_secs(30),
    );
    assert!(host.wait_log("publishing stream=fier/cam", WAIT));
    c.command(
        msid,
        "play",
        20.0,
        Amf0Value::Null,
        vec![Amf0Value::from("cam")],
    );
    let (code, stream_begin) = first_status(&mut c);
    assert_eq!(code, "NetStream.Play.Reset");
    assert!(stream_begin, "no StreamBegin before Play.Reset");
    assert_eq!(first_status(&mut c).0, "NetStream.Play.Start");
    let video = loop {
        let m = c.next().expect("media before EOF");
        if m.type_id == msg_type::VIDEO {
            break m;
        }
    };
    assert_eq!(video.stream_id, msid);
    let _ = publisher.join();
}

// ---------------------------------------------------------------------------------------------
// A Flash policy file request on the RTMP port (rtmplite's behaviour, issue 10)

/// Sends a Flash Player's socket policy request and reads until the server closes.
fn ask_for_policy(addr: SocketAddr) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"<policy-file-request/>\0").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("reading the policy answer: {e}"),
        }
    }
}

#[test]
fn a_flash_policy_request_gets_the_cross_domain_policy_unless_turned_off() {
    let on = root("rtmp-policy", false);
    let host = Host::start(&on, &["rtmp"], &[]);
    let addr = host.addr("rtmp");
    for _ in 0..3 {
        let got = ask_for_policy(addr);
        assert_eq!(got.last(), Some(&0), "not NUL-terminated: {got:?}");
        let text = String::from_utf8(got[..got.len() - 1].to_vec()).unwrap();
        assert!(text.contains("<cross-domain-policy>"), "{text}");
        let allow = format!(
            r#"<allow-access-from domain="*" to-ports="{}"/>"#,
            addr.port()
        );
        assert!(text.contains(&allow), "{text}");
        assert!(
            text.trim_end().ends_with("</cross-domain-policy>"),
            "{text}"
        );
    }
    assert!(host.wait_log("answered a Flash policy file request", WAIT));
    // RTMP on the same port is unaffected.
    let mut c = RtmpClient::new(addr);
    let (_, code, _) = info_of(&c.connect("fier"));
    assert_eq!(code, "NetConnection.Connect.Success");

    // policy_file = false: the request is closed without a byte.
    let off = root("rtmp-no-policy", false);
    off.write("mods/rtmp.toml", "policy_file = false\n");
    let host = Host::start(&off, &["rtmp"], &[]);
    let addr = host.addr("rtmp");
    assert!(ask_for_policy(addr).is_empty());
    assert!(host.wait_log("policy_file is off", WAIT));
    let mut c = RtmpClient::new(addr);
    let (_, code, _) = info_of(&c.connect("fier"));
    assert_eq!(code, "NetConnection.Connect.Success");
}

// ---------------------------------------------------------------------------------------------
// A client that asks and never reads

/// A client floods the server with commands (each answered with `_error`) and never reads the
/// answers: once more than `max_control_queue_bytes` of answers wait, the server closes that
/// connection, while a live stream goes on.
#[test]
fn a_client_that_never_reads_its_answers_is_closed_while_a_stream_flows() {
    if !fstream_ready() {
        return;
    }
    let root = root("rtmp-unread-answers", true);
    root.write(
        "mods/host.toml",
        "[limits]\nmax_control_queue_bytes = 65536\n",
    );
    let host = Host::start(&root, &["rtmp", "fstream"], &[]);
    let flow = fstream_e2e::LiveFlow::start(host.addr("fstream"), "fier", "123", "flow");
    assert!(flow.flows(64 * 1024, WAIT));
    let mut c = RtmpClient::new(host.addr("rtmp"));
    assert_eq!(c.connect("fier").name, "_result");
    let m = RtmpCommand::new("_checkbw", 9.0, Amf0Value::Null, vec![])
        .to_message(CommandEncoding::Amf0, 3, 0)
        .unwrap();
    let one = c.enc.encode_message(3, &m).unwrap();
    let burst: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
    let deadline = Instant::now() + WAIT;
    let mut sent = 0usize;
    let closed = loop {
        if host
            .log()
            .contains("peer does not read what the server answers")
        {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        match c.sock.write_all(&burst) {
            Ok(()) => sent += 1000,
            // The server closed it: what we wanted.
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    };
    eprintln!("sent {sent} commands without reading");
    assert!(
        closed,
        "the server kept answering a client that never reads"
    );
    assert!(flow.flows(64 * 1024, WAIT), "the live stream stalled");
}

/// An app handler that sends a client commands in a tight loop (`call_client`, 200,000 of
/// them): the connection's event queue (`max_queued_events`, 64 here) fills, the host refuses
/// the rest and closes that connection; a live stream and other clients go on.
#[test]
fn a_plugin_flooding_a_client_with_commands_closes_only_that_connection() {
    if !fstream_ready() {
        return;
    }
    let root = root("rtmp-event-flood", true);
    root.write("mods/test-app.toml", "flood = 200000\n");
    root.write("mods/host.toml", "[limits]\nmax_queued_events = 64\n");
    let host = Host::start(&root, &["rtmp", "fstream"], &[]);
    let flow = fstream_e2e::LiveFlow::start(host.addr("fstream"), "fier", "123", "flow");
    assert!(flow.flows(64 * 1024, WAIT));

    let mut c = RtmpClient::new(host.addr("rtmp"));
    c.send_connect("flood");
    host.wait_log(
        "too many events queued for this connection; closing it",
        WAIT,
    );
    host.wait_log("test-app: flood sent", WAIT);
    let refused: usize = host
        .log()
        .split("test-app: flood sent refused=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the refused count");
    eprintln!("the host refused {refused} of 200000 commands");
    assert!(refused > 100_000, "{refused}");
    while c.next().is_some() {}
    assert!(c.closed(), "the flooded connection stays open");

    assert!(flow.flows(64 * 1024, WAIT), "the live stream stalled");
    let mut other = RtmpClient::new(host.addr("rtmp"));
    assert_eq!(other.connect("fier").name, "_result");
}

/// A client's own commands (interface v2.1): `app-rename` answers `lookup` with a value
/// (`_result`) or an error (`_error`); a command no handler knows, and any command on an app
/// whose handler predates commands (`rtmp-app`), gets `NetConnection.Call.Failed`. Replies come
/// in the order of the calls, and the connection goes on.
#[test]
fn client_commands_reach_the_app_handler_and_come_back_as_result_or_error() {
    let root = Root::new("rtmp-rpc", &["auth-ini", "rtmp", "app-rename", "rtmp-app"]);
    root.write(
        "mods/app-rename.toml",
        "apps = [\"tv\"]\n[rename]\nnews = \"fier/cam\"\n",
    );
    let host = Host::start(&root, &["rtmp"], &[]);
    let addr = host.addr("rtmp");

    let mut c = RtmpClient::new(addr);
    assert_eq!(c.connect("tv").name, "_result");
    c.command(
        0,
        "lookup",
        2.0,
        Amf0Value::Null,
        vec![Amf0Value::from("news")],
    );
    c.command(
        0,
        "lookup",
        3.0,
        Amf0Value::Null,
        vec![Amf0Value::from("weather")],
    );
    c.command(
        0,
        "myRpc",
        4.0,
        Amf0Value::Null,
        vec![Amf0Value::Number(1.0)],
    );
    c.command(0, "createStream", 5.0, Amf0Value::Null, vec![]);
    let replies: Vec<RtmpCommand> = (0..4).map(|_| c.next_command()).collect();
    let order: Vec<(String, f64)> = replies
        .iter()
        .map(|r| (r.name.clone(), r.transaction_id))
        .collect();
    assert_eq!(
        order,
        [
            ("_result".to_string(), 2.0),
            ("_error".to_string(), 3.0),
            ("_error".to_string(), 4.0),
            ("_result".to_string(), 5.0)
        ],
        "{replies:?}"
    );
    assert_eq!(replies[0].args[0].get_str("stream"), Some("fier/cam"));
    assert_eq!(
        replies[1].args[0].as_str(),
        Some("Stream not found: weather")
    );
    assert_eq!(
        info_of(&replies[2]).1,
        "NetConnection.Call.Failed",
        "{:?}",
        replies[2]
    );

    // rtmp-app serves `fier` and has no commands.
    let mut c = RtmpClient::new(addr);
    assert_eq!(c.connect("fier").name, "_result");
    c.command(
        0,
        "lookup",
        2.0,
        Amf0Value::Null,
        vec![Amf0Value::from("news")],
    );
    let r = c.expect("_error");
    assert_eq!(info_of(&r).1, "NetConnection.Call.Failed");
}
