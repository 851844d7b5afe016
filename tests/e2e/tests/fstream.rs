//! The fstream frontend (issue 3) end to end: the real host with `auth-ini` and `fstream`, the
//! real `fstream` client, ffmpeg/ffprobe where installed, and raw sockets written from
//! `shared/spec/fstream.md`.
//!
//! Build first (`cargo build --workspace`). Every test uses 127.0.0.1 and ephemeral ports, and
//! short settings so the file runs in well under a minute.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use fstream_e2e::{bin, run_with_timeout, Host, Root, TempDir};
use rand::RngCore;

const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Helpers

/// A server root with users `fier` (password 123) and `ann` (456), the stock plugins, and
/// `fstream_toml` as the plugin's settings.
fn root(tag: &str, fstream_toml: &str, host_toml: &str) -> Root {
    let root = Root::new(tag, &["auth-ini", "fstream"]);
    root.user("fier", "123");
    root.user("ann", "456");
    root.write("mods/fstream.toml", fstream_toml);
    root.write("mods/host.toml", host_toml);
    root
}

fn start(root: &Root) -> (Host, String) {
    let host = Host::start(root, &["fstream"], &[]);
    let addr = host.addr("fstream").to_string();
    (host, addr)
}

/// How often `needle` occurs in the host's log.
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
        thread::sleep(Duration::from_millis(10));
    }
}

/// The log line of a watcher of `stream` that waits for its broadcaster.
fn waiting(stream: &str) -> String {
    format!("watcher waiting for a broadcaster stream={stream}\n")
}

fn started(stream: &str) -> String {
    format!("broadcast started stream={stream}\n")
}

/// A running `fstream` client; its stdout and stderr are collected. Killed on drop.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<String>>,
    /// How many of the two reader threads reached EOF.
    readers_done: Arc<AtomicUsize>,
}

impl Client {
    fn spawn(addr: &str, action: &str, args: &[&str], stdin: Stdio) -> Client {
        Self::spawn_env(addr, action, args, &[], stdin)
    }

    fn spawn_env(
        addr: &str,
        action: &str,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Stdio,
    ) -> Client {
        let mut child = Command::new(bin("fstream"))
            .envs(env.iter().copied())
            .args(args)
            .arg(addr)
            .arg(action)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fstream");
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let readers_done = Arc::new(AtomicUsize::new(0));
        let mut so = child.stdout.take().expect("stdout");
        let (o, done) = (out.clone(), readers_done.clone());
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = so.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            done.fetch_add(1, Ordering::SeqCst);
        });
        let mut se = child.stderr.take().expect("stderr");
        let (e, done) = (err.clone(), readers_done.clone());
        thread::spawn(move || {
            let mut s = String::new();
            let _ = se.read_to_string(&mut s);
            e.lock().unwrap().push_str(&s);
            done.fetch_add(1, Ordering::SeqCst);
        });
        let stdin = child.stdin.take();
        Client {
            child,
            stdin,
            out,
            err,
            readers_done,
        }
    }

    fn watch(addr: &str, action: &str) -> Client {
        Self::spawn(addr, action, &[], Stdio::null())
    }

    fn broadcast(addr: &str, action: &str) -> Client {
        Self::spawn(addr, action, &[], Stdio::piped())
    }

    /// Writes to the client's stdin; false once it is gone.
    fn send(&mut self, data: &[u8]) -> bool {
        match &mut self.stdin {
            Some(s) => s.write_all(data).and_then(|()| s.flush()).is_ok(),
            None => false,
        }
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn data(&self) -> Vec<u8> {
        self.out.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.out.lock().unwrap().len()
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    fn wait_len(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.len() < n {
            assert!(
                Instant::now() < deadline,
                "got {} of {n} bytes; stderr: {}",
                self.len(),
                self.stderr()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn try_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                // Let the reader threads take the last bytes.
                let deadline = Instant::now() + Duration::from_secs(5);
                while self.readers_done.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(2));
                }
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn exit(&mut self) -> ExitStatus {
        match self.try_exit(WAIT) {
            Some(s) => s,
            None => panic!("the client did not exit; stderr: {}", self.stderr()),
        }
    }

    /// Ends a broadcast: EOF on stdin, then the client's exit.
    fn finish(&mut self) -> ExitStatus {
        self.close_stdin();
        self.exit()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a broadcaster (stdin open) on `stream` and tells whether the server accepted it: its
/// "broadcast started" log line appears, or the client exits (refused).
fn try_broadcast(host: &Host, addr: &str, action: &str, stream: &str) -> (bool, Client) {
    let needle = started(stream);
    let before = log_count(host, &needle);
    let mut c = Client::broadcast(addr, action);
    c.send(b"x");
    let deadline = Instant::now() + WAIT;
    loop {
        if log_count(host, &needle) > before {
            return (true, c);
        }
        if let Some(status) = c.try_exit(Duration::ZERO) {
            assert!(!status.success(), "a refused broadcaster exits non-zero");
            return (false, c);
        }
        assert!(Instant::now() < deadline, "neither accepted nor refused");
        thread::sleep(Duration::from_millis(5));
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

/// The preamble as `shared/spec/fstream.md` defines it: PRELUDE, u32 big-endian LENGTH of
/// ACTION, a NUL byte, ACTION. Written here from the spec, not with fstream-wire.
fn spec_preamble(prelude: &[u8], action: &str) -> Vec<u8> {
    let mut v = prelude.to_vec();
    v.extend_from_slice(&(action.len() as u32).to_be_bytes());
    v.push(0);
    v.extend_from_slice(action.as_bytes());
    v
}

fn raw_connect(addr: &str) -> TcpStream {
    let a: SocketAddr = addr.parse().unwrap();
    let s = TcpStream::connect(a).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Reads until the server closes; returns the bytes received.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                return got
            }
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

/// Sends `input` on a new connection and checks the server closes it without a byte.
/// Returns how long the close took.
fn expect_silent_close(addr: &str, input: &[u8], what: &str) -> Duration {
    let t = Instant::now();
    let mut s = raw_connect(addr);
    // The server may close while we still write (prelude over the limit): that is fine.
    let _ = s.write_all(input);
    let got = read_to_close(&mut s);
    assert!(
        got.is_empty(),
        "{what}: the server sent {} bytes",
        got.len()
    );
    t.elapsed()
}

fn ffprobe_frames(file: &Path) -> (u64, String) {
    let (status, out, err) = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=codec_name,nb_read_frames",
                "-of",
                "csv=p=0",
            ])
            .arg(file),
        Duration::from_secs(30),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "ffprobe failed on {}: {err}",
        file.display()
    );
    let text = String::from_utf8_lossy(&out);
    let line = text.lines().next().unwrap_or("").to_string();
    let frames = line
        .rsplit(',')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (frames, line)
}

// ---------------------------------------------------------------------------------------------
// 1. ffmpeg H.264 (Annex B, and MPEG-TS) to two watchers that were there first.

#[test]
fn ffmpeg_h264_reaches_two_early_watchers() {
    fstream_e2e::require(&["ffmpeg", "ffprobe"]);
    let root = root("ffmpeg", "grace_ms = 200\n", "");
    let (host, addr) = start(&root);
    let tmp = TempDir::new("ffmpeg-out");
    for (format, ext) in [("h264", "h264"), ("mpegts", "ts")] {
        let channel = format!("ff{ext}");
        let stream = format!("fier/{channel}");
        let watch = format!("watch,user=fier,channel={channel}");
        let mut watchers = [Client::watch(&addr, &watch), Client::watch(&addr, &watch)];
        wait_log_count(&host, &waiting(&stream), 2);

        let mut ffmpeg = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-f", "lavfi"])
            .args(["-i", "testsrc2=size=320x240:rate=25", "-t", "4"])
            .args(["-c:v", "libx264", "-g", "25", "-f", format, "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ffmpeg");
        let pipe = ffmpeg.stdout.take().expect("ffmpeg stdout");
        let mut b = Client::spawn(
            &addr,
            &format!("broadcast,user=fier,user_password=123,channel={channel}"),
            &[],
            Stdio::from(pipe),
        );
        assert!(b.exit().success(), "broadcaster: {}", b.stderr());
        assert!(ffmpeg.wait().unwrap().success());
        for (i, w) in watchers.iter_mut().enumerate() {
            assert!(w.exit().success(), "watcher {i}: {}", w.stderr());
            let file = tmp.path().join(format!("w{i}.{ext}"));
            std::fs::write(&file, w.data()).unwrap();
            let (frames, line) = ffprobe_frames(&file);
            eprintln!(
                "{format}: watcher {i} got {} bytes, ffprobe: {line}",
                w.len()
            );
            assert!(line.starts_with("h264"), "{line}");
            assert!((95..=100).contains(&frames), "{format}: {frames} frames");
        }
        assert_eq!(watchers[0].data(), watchers[1].data());
    }
}

// ---------------------------------------------------------------------------------------------
// 2. 5 MiB of random bytes, byte-identical at three watchers.

#[test]
fn random_broadcast_is_byte_identical_at_three_watchers() {
    let root = root("random", "grace_ms = 100\n", "");
    let (host, addr) = start(&root);
    let mut watchers: Vec<Client> = (0..3)
        .map(|_| Client::watch(&addr, "watch,user=fier"))
        .collect();
    wait_log_count(&host, &waiting("fier/default"), 3);
    let data = random_bytes(5 * 1024 * 1024);
    let mut b = Client::broadcast(&addr, "broadcast,user=fier,user_password=123");
    // Bytes sent before the broadcast is authenticated wait in a bounded buffer
    // (max_pending_bytes, 4 MiB): let it start before pouring 5 MiB in at loopback speed.
    wait_log_count(&host, &started("fier/default"), 1);
    for chunk in data.chunks(64 * 1024) {
        assert!(b.send(chunk));
    }
    assert!(b.finish().success(), "{}", b.stderr());
    for w in watchers.iter_mut() {
        assert!(w.exit().success(), "{}", w.stderr());
        let got = w.data();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "the bytes differ");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. bufsize=188 on MPEG-TS: a watcher joining mid-stream starts on a packet boundary.

#[test]
fn mid_stream_joiner_of_mpegts_with_bufsize_188_is_aligned() {
    fstream_e2e::require(&["ffmpeg", "ffprobe"]);
    let root = root("ts188", "grace_ms = 100\n", "");
    let (host, addr) = start(&root);
    let mut early = Client::watch(&addr, "watch,user=fier,channel=ts");
    wait_log_count(&host, &waiting("fier/ts"), 1);
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-re", "-f", "lavfi"])
        .args(["-i", "testsrc2=size=320x240:rate=25", "-t", "3"])
        .args(["-c:v", "libx264", "-g", "25", "-tune", "zerolatency"])
        .args(["-flush_packets", "1", "-f", "mpegts", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ffmpeg");
    let pipe = ffmpeg.stdout.take().expect("ffmpeg stdout");
    let mut b = Client::spawn(
        &addr,
        "broadcast,user=fier,user_password=123,channel=ts,bufsize=188",
        &[],
        Stdio::from(pipe),
    );
    // Join about a second into the stream.
    early.wait_len(1);
    thread::sleep(Duration::from_millis(1000));
    let mut late = Client::watch(&addr, "watch,user=fier,channel=ts");
    assert!(b.exit().success(), "{}", b.stderr());
    assert!(ffmpeg.wait().unwrap().success());
    assert!(early.exit().success());
    assert!(late.exit().success(), "{}", late.stderr());
    let (all, got) = (early.data(), late.data());
    assert!(all.len() % 188 == 0 && all[0] == 0x47);
    assert!(!got.is_empty(), "the late watcher got nothing");
    assert!(got.len() < all.len(), "the late watcher got everything");
    assert_eq!(got[0], 0x47, "the first byte is not a sync byte");
    assert_eq!(got.len() % 188, 0, "{} bytes", got.len());
    assert!(got.chunks(188).all(|p| p[0] == 0x47));
    assert!(
        all.ends_with(&got),
        "the late watcher's bytes are not the stream's tail"
    );
    let tmp = TempDir::new("ts188-out");
    let file = tmp.path().join("late.ts");
    std::fs::write(&file, &got).unwrap();
    // Decoding errors before the first keyframe are normal for a raw joiner; the container
    // must read cleanly.
    let (status, out, err) = run_with_timeout(
        Command::new("ffprobe")
            .args([
                "-v",
                "warning",
                "-show_entries",
                "format=format_name:stream=codec_name",
            ])
            .args(["-of", "compact"])
            .arg(&file),
        Duration::from_secs(30),
    );
    let out = String::from_utf8_lossy(&out);
    assert!(status.is_some_and(|s| s.success()), "{err}");
    assert!(
        out.contains("format_name=mpegts") && out.contains("codec_name=h264"),
        "{out}"
    );
    assert!(!err.contains("[mpegts"), "the demuxer complained: {err}");
    let (frames, _) = ffprobe_frames(&file);
    eprintln!(
        "late watcher: {} of {} bytes, {} TS packets, {frames} frames decoded",
        got.len(),
        all.len(),
        got.len() / 188
    );
    assert!(frames > 0);
}

// ---------------------------------------------------------------------------------------------
// 3b. An FLV broadcast is parsed into media packets and sent to watchers as FLV again; a late
// joiner starts with the header, metadata, sequence headers and a keyframe.

/// (tag type, first two data bytes) of each tag of an FLV byte stream.
fn flv_tags(bytes: &[u8]) -> Vec<(u8, [u8; 2])> {
    assert!(bytes.len() >= 13 && &bytes[..3] == b"FLV", "no FLV header");
    let mut tags = Vec::new();
    let mut at = 13;
    while at + 11 <= bytes.len() {
        let size = u32::from_be_bytes([0, bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let data = &bytes[at + 11..(at + 11 + size).min(bytes.len())];
        tags.push((
            bytes[at],
            [
                data.first().copied().unwrap_or(0),
                data.get(1).copied().unwrap_or(0),
            ],
        ));
        at += 11 + size + 4;
    }
    assert_eq!(
        at,
        bytes.len(),
        "the FLV stream does not end on a tag boundary"
    );
    tags
}

#[test]
fn flv_broadcast_is_sent_as_flv_and_late_joiners_start_on_a_keyframe() {
    fstream_e2e::require(&["ffmpeg", "ffprobe"]);
    let root = root("flv", "grace_ms = 100\n", "");
    let (host, addr) = start(&root);
    let mut early = Client::watch(&addr, "watch,user=fier,channel=flv");
    wait_log_count(&host, &waiting("fier/flv"), 1);
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-re", "-f", "lavfi"])
        .args([
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
        ])
        .args([
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-tune",
            "zerolatency",
            "-c:a",
            "aac",
        ])
        // Real-time output, so the late watcher joins in the middle.
        .args(["-flush_packets", "1", "-f", "flv", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ffmpeg");
    let pipe = ffmpeg.stdout.take().expect("ffmpeg stdout");
    let mut b = Client::spawn(
        &addr,
        "broadcast,user=fier,user_password=123,channel=flv",
        &[],
        Stdio::from(pipe),
    );
    early.wait_len(1);
    thread::sleep(Duration::from_millis(1300));
    let mut late = Client::watch(&addr, "watch,user=fier,channel=flv");
    assert!(b.exit().success(), "{}", b.stderr());
    assert!(ffmpeg.wait().unwrap().success());
    assert!(early.exit().success());
    assert!(late.exit().success(), "{}", late.stderr());
    assert!(host.wait_log("the broadcast is FLV", WAIT));

    let tmp = TempDir::new("flv-out");
    let mut counts = Vec::new();
    for (name, w) in [("early", &early), ("late", &late)] {
        let data = w.data();
        assert_eq!(&data[..13], b"FLV\x01\x05\0\0\0\x09\0\0\0\0", "{name}");
        let tags = flv_tags(&data);
        // Metadata, the AVC and AAC sequence headers, then a keyframe.
        assert_eq!(tags[0].0, 18, "{name}: {tags:?}");
        assert_eq!(tags[1], (9, [0x17, 0]), "{name}");
        assert_eq!(tags[2], (8, [0xAF, 0]), "{name}");
        let first_frame = tags.iter().position(|t| t.0 == 9 && t.1[1] == 1);
        assert_eq!(
            tags[first_frame.unwrap()].1[0],
            0x17,
            "{name}: first frame not a keyframe"
        );
        let file = tmp.path().join(format!("{name}.flv"));
        std::fs::write(&file, &data).unwrap();
        let (status, _, err) = run_with_timeout(
            Command::new("ffprobe")
                .args(["-v", "error", "-count_frames"])
                .arg(&file),
            Duration::from_secs(30),
        );
        assert!(status.is_some_and(|s| s.success()));
        assert!(err.trim().is_empty(), "{name}: ffprobe errors: {err}");
        let (frames, line) = ffprobe_frames(&file);
        eprintln!(
            "{name} watcher: {} bytes, {} tags, ffprobe: {line}",
            data.len(),
            tags.len()
        );
        counts.push(frames);
    }
    assert_eq!(counts[0], 75);
    assert!(
        counts[1] > 0 && counts[1] < 75,
        "late joiner: {} frames",
        counts[1]
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Tokens: issue, use, reuse, expiry, replacement, another user's.

fn get_token(addr: &str, user: &str, password: &str) -> String {
    let (status, out, err) = run_with_timeout(
        Command::new(bin("fstream"))
            .arg(addr)
            .arg(format!("token,user={user},user_password={password}")),
        WAIT,
    );
    assert!(status.is_some_and(|s| s.success()), "token: {err}");
    let text = String::from_utf8(out).unwrap();
    let token = text.trim_end_matches('\n').to_string();
    assert_eq!(text.len(), 33, "{text:?}");
    assert!(token
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    token
}

#[test]
fn tokens_are_single_use_per_user_and_expire() {
    let root = root("tokens", "grace_ms = 100\n", "token_ttl_ms = 1500\n");
    let (host, addr) = start(&root);
    let bcast = |token: &str, user: &str, channel: &str| {
        try_broadcast(
            &host,
            &addr,
            &format!("broadcast,user={user},token={token},channel={channel}"),
            &format!("{user}/{channel}"),
        )
    };

    // A wrong password gets no token, and nothing is sent.
    let (status, out, _) = run_with_timeout(
        Command::new(bin("fstream"))
            .arg(&addr)
            .arg("token,user=fier,user_password=nope"),
        WAIT,
    );
    assert!(!status.unwrap().success());
    assert!(out.is_empty());

    // Issue and use; the watcher gets the broadcast.
    let t1 = get_token(&addr, "fier", "123");
    let w = Client::watch(&addr, "watch,user=fier,channel=t1");
    wait_log_count(&host, &waiting("fier/t1"), 1);
    let (ok, mut b) = bcast(&t1, "fier", "t1");
    assert!(ok, "a fresh token is refused: {}", b.stderr());
    b.send(b"with a token");
    w.wait_len(13);
    assert!(b.finish().success());
    assert_eq!(w.data(), b"xwith a token");

    // Used once: refused the second time.
    let (ok, b) = bcast(&t1, "fier", "t1b");
    assert!(!ok);
    assert!(b.stderr().contains("refused"), "{}", b.stderr());

    // A new token cancels the old one.
    let t2 = get_token(&addr, "fier", "123");
    let t3 = get_token(&addr, "fier", "123");
    assert_ne!(t2, t3);
    assert!(!bcast(&t2, "fier", "t2").0);
    // Another user's token is refused, and the user's own token still works after that.
    let ta = get_token(&addr, "ann", "456");
    assert!(!bcast(&ta, "fier", "ta").0);
    assert!(!bcast(&t3, "ann", "ta").0);
    let (ok, mut b) = bcast(&t3, "fier", "t3");
    assert!(ok);
    // Both start before either ends: a short broadcast's client holds its end for the verdict
    // wait, longer than this test's token lifetime.
    let (ok, mut b2) = bcast(&ta, "ann", "ta2");
    assert!(ok);
    assert!(b.finish().success());
    assert!(b2.finish().success());

    // Expiry.
    let t4 = get_token(&addr, "fier", "123");
    thread::sleep(Duration::from_millis(1700));
    assert!(!bcast(&t4, "fier", "t4").0);
    assert!(host.wait_log("token expired", WAIT));
}

// ---------------------------------------------------------------------------------------------
// 5. Every bad input closes without a byte; a broadcast at the same time is unaffected.

#[test]
fn bad_inputs_close_silently_while_a_broadcast_runs() {
    let root = root(
        "bad",
        "grace_ms = 100\nmax_prelude_bytes = 1024\npreamble_timeout_ms = 700\n",
        "",
    );
    let (host, addr) = start(&root);

    // The broadcast that must not notice: a paced stream with a channel password.
    let mut w = Client::watch(&addr, "watch,user=fier,channel=live,channel_password=cp");
    wait_log_count(&host, &waiting("fier/live"), 1);
    let mut b = Client::broadcast(
        &addr,
        "broadcast,user=fier,user_password=123,channel=live,channel_password=cp",
    );
    let mut stdin = b.stdin.take().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let feeder = thread::spawn(move || {
        let mut sent = Vec::new();
        let mut n = 0u32;
        while !stop2.load(Ordering::SeqCst) {
            let chunk: Vec<u8> = (0..4096u32).map(|i| (i * 7 + n) as u8).collect();
            if stdin.write_all(&chunk).is_err() {
                break;
            }
            sent.extend_from_slice(&chunk);
            n += 1;
            thread::sleep(Duration::from_millis(5));
        }
        sent
    });
    w.wait_len(4096);

    let p = |action: &str| spec_preamble(b"\n\n", action);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage prelude over the limit", vec![b'x'; 4096]),
        ("length 0", b"\n\n\0\0\0\0\0watch".to_vec()),
        ("length too large", b"\n\n\0\0\x10\x01\0watch".to_vec()),
        ("missing NUL", b"\n\n\0\0\0\x0f\x01watch,user=fier".to_vec()),
        ("invalid UTF-8", b"\n\n\0\0\0\x04\0wa\xff\xfe".to_vec()),
        ("item without '='", p("watch,user=fier,channel")),
        ("unknown action", p("play,user=fier")),
        ("unknown user", p("broadcast,user=nobody,user_password=123")),
        (
            "wrong password",
            p("broadcast,user=fier,user_password=124,channel=x"),
        ),
        (
            "token for an unknown user",
            p("token,user=nobody,user_password=1"),
        ),
        (
            "wrong channel password",
            p("watch,user=fier,channel=live,channel_password=cq"),
        ),
        (
            "missing channel password",
            p("watch,user=fier,channel=live"),
        ),
        ("bad user name", p("watch,user=../fier")),
    ];
    // Broadcasters that send bytes right after the preamble are refused just the same.
    let mut with_data = p("broadcast,user=fier,user_password=bad,channel=live");
    with_data.extend_from_slice(&[0x47; 10_000]);
    cases.push(("wrong password, with data", with_data));
    for (what, input) in &cases {
        expect_silent_close(&addr, input, what);
    }
    // Nothing at all after the blank line: the preamble timeout (700 ms) closes it.
    let took = expect_silent_close(&addr, b"\n\n\0\0", "preamble timeout");
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // A client that leaves during the preamble.
    let mut s = raw_connect(&addr);
    s.write_all(b"\n\n\0\0\0").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(read_to_close(&mut s).is_empty());

    // Every refusal is logged with its reason.
    for reason in [
        "prelude longer than 1024 bytes",
        "action length is zero",
        "action length 4097 exceeds",
        "expected a NUL byte",
        "not valid UTF-8",
        "has no '='",
        "unknown action",
        "authentication denied",
        "wrong channel password",
        "did not arrive within 700 ms",
        "bad user name",
    ] {
        assert!(host.wait_log(reason, WAIT), "no log of {reason:?}");
    }

    stop.store(true, Ordering::SeqCst);
    let sent = feeder.join().unwrap();
    assert!(b.finish().success(), "{}", b.stderr());
    assert!(w.exit().success());
    let got = w.data();
    eprintln!(
        "{} refusals; the concurrent broadcast delivered {} of {} bytes",
        cases.len() + 2,
        got.len(),
        sent.len()
    );
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the concurrent broadcast was disturbed");
}

// ---------------------------------------------------------------------------------------------
// 6. Old spellings, other preludes, and a client written from the spec.

#[test]
fn old_key_spellings_http_prelude_and_a_raw_socket_client() {
    let root = root("compat", "grace_ms = 100\n", "");
    let (host, addr) = start(&root);

    // The stock client: dash keys (first README) with an HTTP prelude; the watcher sends no
    // prelude at all and takes its user from the environment (newer README).
    let mut w = Client::spawn_env(
        &addr,
        "watch,channel=old,channel-password=456",
        &["--prelude", "none"],
        &[("fserv_arg_user", "fier")],
        Stdio::null(),
    );
    wait_log_count(&host, &waiting("fier/old"), 1);
    let mut b = Client::spawn(
        &addr,
        "broadcast,user=fier,user-password=123,channel=old,channel-password=456",
        &["--prelude", "http"],
        Stdio::piped(),
    );
    b.send(b"old spellings");
    w.wait_len(13);
    assert!(b.finish().success(), "{}", b.stderr());
    assert!(w.exit().success());
    assert_eq!(w.data(), b"old spellings");

    // Raw sockets written from the spec: a watcher with no prelude (first byte 0x00), a
    // broadcaster with HTTP request headers as its prelude and its first bytes in the same
    // segment as the preamble.
    let mut watcher = raw_connect(&addr);
    watcher
        .write_all(&spec_preamble(b"", "watch,user=fier,channel=raw"))
        .unwrap();
    wait_log_count(&host, &waiting("fier/raw"), 1);
    let mut caster = raw_connect(&addr);
    let mut first = spec_preamble(
        b"GET /fstream HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: raw-test\r\n\r\n",
        "broadcast,user=fier,user-password=123,channel=raw,zzz=ignored",
    );
    first.extend_from_slice(b"first bytes|");
    caster.write_all(&first).unwrap();
    wait_log_count(&host, &started("fier/raw"), 1);
    caster.write_all(b"second bytes").unwrap();
    caster.shutdown(std::net::Shutdown::Write).unwrap();
    // The server closes the broadcaster after its EOF, without a byte.
    assert!(read_to_close(&mut caster).is_empty());
    assert_eq!(read_to_close(&mut watcher), b"first bytes|second bytes");
    assert!(host.wait_log("ignored unknown keys keys=zzz", WAIT));

    // A bare "\n\n" prelude and a duplicate key (the last wins).
    let mut watcher = raw_connect(&addr);
    watcher
        .write_all(&spec_preamble(
            b"\n\n",
            "watch,user=ann,channel=x,channel=dup",
        ))
        .unwrap();
    wait_log_count(&host, &waiting("ann/dup"), 1);
    let mut caster = raw_connect(&addr);
    let mut first = spec_preamble(
        b"\r\n\r\n",
        "broadcast,user=ann,user_password=456,channel=dup",
    );
    first.extend_from_slice(b"dup");
    caster.write_all(&first).unwrap();
    caster.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(read_to_close(&mut caster).is_empty());
    assert_eq!(read_to_close(&mut watcher), b"dup");
}

// ---------------------------------------------------------------------------------------------
// 7. Second broadcaster (replace / reject) and the grace period.

#[test]
fn second_broadcaster_replace_and_grace_period() {
    let root = root("replace", "grace_ms = 1000\n", "");
    let (host, addr) = start(&root);

    // Replace: the watcher continues with the newcomer's bytes.
    let mut w = Client::watch(&addr, "watch,user=fier,channel=rep");
    wait_log_count(&host, &waiting("fier/rep"), 1);
    let (ok, mut b1) = try_broadcast(
        &host,
        &addr,
        "broadcast,user=fier,user_password=123,channel=rep",
        "fier/rep",
    );
    assert!(ok);
    b1.send(&[b'A'; 999]);
    w.wait_len(1000);
    let (ok, mut b2) = try_broadcast(
        &host,
        &addr,
        "broadcast,user=fier,user_password=123,channel=rep",
        "fier/rep",
    );
    assert!(ok);
    // The first broadcaster is closed by the server.
    let s1 = b1.exit();
    assert!(!s1.success(), "{}", b1.stderr());
    b2.send(&[b'B'; 999]);
    w.wait_len(2000);
    assert!(b2.finish().success());
    assert!(w.exit().success());
    let mut expected = b"x".to_vec();
    expected.extend_from_slice(&[b'A'; 999]);
    expected.push(b'x');
    expected.extend_from_slice(&[b'B'; 999]);
    assert_eq!(w.data(), expected);

    // Grace: a broadcaster that returns within it continues the stream to the same watcher;
    // after it the watcher gets EOF.
    let mut w = Client::watch(&addr, "watch,user=fier,channel=grace");
    wait_log_count(&host, &waiting("fier/grace"), 1);
    let mut b = Client::broadcast(&addr, "broadcast,user=fier,user_password=123,channel=grace");
    b.send(b"before|");
    w.wait_len(7);
    assert!(b.finish().success());
    thread::sleep(Duration::from_millis(300));
    let mut b = Client::broadcast(&addr, "broadcast,user=fier,user_password=123,channel=grace");
    b.send(b"after");
    w.wait_len(12);
    assert!(b.finish().success());
    let left = Instant::now();
    let status = w.exit();
    let waited = left.elapsed();
    assert!(status.success());
    assert_eq!(w.data(), b"before|after");
    eprintln!("the watcher got EOF {waited:?} after the broadcaster left (grace 1000 ms)");
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[test]
fn second_broadcaster_rejected_by_setting() {
    let root = root(
        "reject",
        "grace_ms = 100\nsecond_broadcaster = \"reject\"\n",
        "",
    );
    let (host, addr) = start(&root);
    let mut w = Client::watch(&addr, "watch,user=fier,channel=rej");
    wait_log_count(&host, &waiting("fier/rej"), 1);
    let action = "broadcast,user=fier,user_password=123,channel=rej";
    let (ok, mut b1) = try_broadcast(&host, &addr, action, "fier/rej");
    assert!(ok);
    let (ok, b2) = try_broadcast(&host, &addr, action, "fier/rej");
    assert!(!ok, "the second broadcaster was accepted");
    assert!(b2.stderr().contains("rejects a second broadcaster"));
    assert!(host.wait_log("rejects a second broadcaster", WAIT));
    // The first one is unaffected.
    assert!(b1.send(b"still here"));
    w.wait_len(11);
    assert!(b1.finish().success());
    assert!(w.exit().success());
    assert_eq!(w.data(), b"xstill here");
}

// ---------------------------------------------------------------------------------------------
// 8. A watcher that never reads is disconnected; the others get every byte.

#[test]
fn slow_watcher_is_dropped_and_does_not_slow_the_others() {
    const QUEUE: usize = 1024 * 1024;
    let root = root(
        "slow",
        &format!("grace_ms = 100\nwatcher_queue_bytes = {QUEUE}\n"),
        "",
    );
    let (host, addr) = start(&root);
    let mut fast: Vec<Client> = (0..2)
        .map(|_| Client::watch(&addr, "watch,user=fier,channel=slow"))
        .collect();
    // The slow one: a small receive buffer, and it never reads.
    let slow = raw_connect(&addr);
    set_rcvbuf(&slow, 16 * 1024);
    (&slow)
        .write_all(&spec_preamble(b"\n\n", "watch,user=fier,channel=slow"))
        .unwrap();
    wait_log_count(&host, &waiting("fier/slow"), 3);

    let data = random_bytes(20 * 1024 * 1024);
    let mut b = Client::broadcast(&addr, "broadcast,user=fier,user_password=123,channel=slow");
    wait_log_count(&host, &started("fier/slow"), 1);
    let t = Instant::now();
    for chunk in data.chunks(64 * 1024) {
        assert!(
            b.send(chunk),
            "the broadcaster was blocked or cut: {}",
            b.stderr()
        );
        thread::sleep(Duration::from_millis(3));
    }
    assert!(b.finish().success(), "{}", b.stderr());
    let took = t.elapsed();
    for w in fast.iter_mut() {
        assert!(w.exit().success(), "{}", w.stderr());
        assert!(
            w.data() == data,
            "a fast watcher lost bytes ({} of {})",
            w.len(),
            data.len()
        );
    }
    assert!(host.wait_log("viewer too slow for its queue", WAIT));
    let mut slow = slow;
    let got = read_to_close(&mut slow);
    eprintln!(
        "broadcast of {} bytes took {took:?}; the slow watcher got {} bytes before it was dropped",
        data.len(),
        got.len()
    );
    assert!(got.len() < data.len());
    assert!(
        data.starts_with(&got),
        "the slow watcher's bytes are not a prefix"
    );
}

fn set_rcvbuf(s: &TcpStream, bytes: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket descriptor and a pointer to an int of the size given.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt SO_RCVBUF");
}

// ---------------------------------------------------------------------------------------------
// 9. A refused broadcast exits 1 whatever the length of its input; an accepted short one 0
//    (issue 10).

#[test]
fn refused_broadcasts_with_empty_or_short_input_exit_1_and_accepted_ones_0() {
    let root = root("short-refusals", "", "");
    let (host, addr) = start(&root);
    let refused = [
        "broadcast,user=fier,user_password=wrong,channel=short",
        "broadcast,user=nobody,user_password=123,channel=short",
        "broadcast,user=fier,token=00000000000000000000000000000000,channel=short",
    ];
    for i in 0..20 {
        for action in refused {
            // `</dev/null`
            let mut c = Client::spawn(&addr, action, &[], Stdio::null());
            let status = c.exit();
            assert_eq!(
                status.code(),
                Some(1),
                "run {i}, {action}, no input: {}",
                c.stderr()
            );
            assert!(c.stderr().contains("refused"), "{}", c.stderr());
            // A few bytes, then EOF.
            let mut c = Client::broadcast(&addr, action);
            c.send(b"\x47\x40\x00");
            let status = c.finish();
            assert_eq!(
                status.code(),
                Some(1),
                "run {i}, {action}, 3 bytes: {}",
                c.stderr()
            );
        }
    }
    assert_eq!(log_count(&host, &started("fier/short")), 0);

    // Accepted: an empty broadcast, then short ones that a watcher receives, all end cleanly
    // with 0 and at once (the host resets a refused connection, so the client needs no wait).
    let ok = "broadcast,user=fier,user_password=123,channel=short";
    let t = Instant::now();
    let mut c = Client::spawn(&addr, ok, &[], Stdio::null());
    let status = c.exit();
    assert_eq!(
        status.code(),
        Some(0),
        "empty accepted broadcast: {}",
        c.stderr()
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    wait_log_count(&host, &started("fier/short"), 1);
    assert!(host.wait_log("broadcast ended stream=fier/short", WAIT));

    let ok = "broadcast,user=fier,user_password=123,channel=short2";
    let w = Client::watch(&addr, "watch,user=fier,channel=short2");
    wait_log_count(&host, &waiting("fier/short2"), 1);
    for n in 0..3 {
        let mut c = Client::spawn(&addr, ok, &[], Stdio::piped());
        c.send(&[b'a' + n; 5]);
        let status = c.finish();
        assert_eq!(
            status.code(),
            Some(0),
            "short accepted broadcast: {}",
            c.stderr()
        );
        w.wait_len(5 * (n as usize + 1));
    }
    assert_eq!(w.data(), b"aaaaabbbbbccccc");
}
