//! TLS listeners end to end (issue 7): fstream over TLS driven by `openssl s_client`, RTMPS
//! published and played by ffmpeg, plain clients on a TLS port, and bad certificates at start-up
//! and on reload. Certificates are made here with the `openssl` command.
//!
//! Build first (`cargo build --workspace`). Every test uses 127.0.0.1 and ephemeral ports, stops
//! by itself, and skips (with a message) when a tool it needs is not installed.

use std::{
    fs::File,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use fstream_e2e::{
    background, bin, decoded_frames, ffmpeg_play, ffmpeg_publish, fstream_preamble,
    run_with_timeout, Host, LiveFlow, Root,
};
use rand::RngCore;

const WAIT: Duration = Duration::from_secs(20);
/// The generated RTMP test stream: 25 frames per second.
const FPS: usize = 25;

// ---------------------------------------------------------------------------------------------
// Helpers

fn tools(names: &[&str]) -> bool {
    fstream_e2e::require(names);
    true
}

/// A self-signed certificate for `cn` and its key, written to `ROOT/cert` and `ROOT/key`.
fn make_cert(root: &Root, cert: &str, key: &str, cn: &str) {
    std::fs::create_dir_all(root.path().join("tls")).unwrap();
    let mut c = Command::new("openssl");
    c.args(["req", "-x509", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "2", "-subj", &format!("/CN={cn}")])
        .arg("-keyout")
        .arg(root.path().join(key))
        .arg("-out")
        .arg(root.path().join(cert));
    let (status, _, err) = run_with_timeout(&mut c, WAIT);
    assert!(status.is_some_and(|s| s.success()), "openssl req: {err}");
}

/// host.toml's table for a TLS listener of `protocol` on 127.0.0.1, any port.
fn tls_table(protocol: &str, cert: &str, key: &str, extra: &str) -> String {
    format!(
        "[tls.{protocol}]\nlisten = \"127.0.0.1:0\"\ncert = \"{cert}\"\nkey = \"{key}\"\n{extra}"
    )
}

/// A root with `plugins`, users `fier` (123) and `ann` (456), a certificate in tls/ and a TLS
/// listener for `protocol`.
fn tls_root(tag: &str, plugins: &[&str], protocol: &str, extra: &str) -> Root {
    let root = Root::new(tag, plugins);
    root.user("fier", "123");
    root.user("ann", "456");
    make_cert(&root, "tls/cert.pem", "tls/key.pem", "localhost");
    root.write(
        "mods/host.toml",
        &tls_table(protocol, "tls/cert.pem", "tls/key.pem", extra),
    );
    root
}

/// A file in the root holding `bytes`, to be a client's stdin.
fn stdin_file(root: &Root, name: &str, bytes: &[u8]) -> Stdio {
    let path: PathBuf = root.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    Stdio::from(File::open(&path).unwrap())
}

/// `openssl s_client` to `addr`. It does not verify the (self-signed) certificate.
fn s_client(addr: SocketAddr, args: &[&str]) -> Command {
    let mut c = Command::new("openssl");
    c.args(["s_client", "-connect", &addr.to_string()])
        .args(args);
    c
}

/// A background client whose stdout is collected; killed on drop.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Proc {
    fn spawn(mut cmd: Command, stdin: Stdio) -> Proc {
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut so = child.stdout.take().expect("stdout");
        let out = Arc::new(Mutex::new(Vec::new()));
        let o = out.clone();
        let reader = thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = so.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let stdin = child.stdin.take();
        Proc {
            child,
            stdin,
            out,
            reader: Some(reader),
        }
    }

    fn send(&mut self, data: &[u8]) -> bool {
        match &mut self.stdin {
            Some(s) => s.write_all(data).and_then(|()| s.flush()).is_ok(),
            None => false,
        }
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn len(&self) -> usize {
        self.out.lock().unwrap().len()
    }

    /// Waits for the process to exit and its stdout to be read to the end.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn data(&self) -> Vec<u8> {
        self.out.lock().unwrap().clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        thread::sleep(Duration::from_millis(10));
    }
}

/// A token for fier, asked for over TLS with s_client.
fn tls_token(root: &Root, addr: SocketAddr) -> String {
    let stdin = stdin_file(
        root,
        "token.bin",
        &fstream_preamble("token,user=fier,user_password=123"),
    );
    let mut c = s_client(addr, &["-quiet"]);
    c.stdin(stdin);
    let (status, out, err) = run_with_timeout(&mut c, WAIT);
    assert!(status.is_some(), "s_client did not stop: {err}");
    let text = String::from_utf8_lossy(&out).to_string();
    let token = text.trim_end_matches('\n');
    assert_eq!(text.len(), 33, "token answer {text:?}; s_client: {err}");
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{token:?}"
    );
    token.to_string()
}

/// Reads until the server closes; returns the bytes received.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
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

// ---------------------------------------------------------------------------------------------
// 1. fstream over TLS: a token, and a broadcast through TLS to a TLS and a plain watcher.

#[test]
fn fstream_over_tls_with_openssl_s_client() {
    if !tools(&["openssl"]) {
        return;
    }
    let root = tls_root("tls-fstream", &["auth-ini", "fstream"], "fstream", "");
    // Watchers end soon after their broadcaster.
    root.write("mods/fstream.toml", "grace_ms = 100\n");
    let host = Host::start(&root, &["fstream"], &[]);
    let plain = host.addr("fstream");
    let tls = host.wait_addr("fstream+tls", WAIT);
    assert_ne!(plain, tls);

    // A token over TLS: 32 hex digits and a newline.
    let token = tls_token(&root, tls);
    eprintln!("token over TLS: {token}");

    // Two watchers, one through TLS (s_client, `-quiet` keeps it reading after its stdin's
    // end) and one plain.
    let watch = fstream_preamble("watch,user=fier,channel=tls");
    let mut tls_watcher = Proc::spawn(
        s_client(tls, &["-quiet"]),
        stdin_file(&root, "watch.bin", &watch),
    );
    let mut plain_watcher = TcpStream::connect(plain).unwrap();
    plain_watcher.write_all(&watch).unwrap();
    plain_watcher
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    wait_log_count(
        &host,
        "watcher waiting for a broadcaster stream=fier/tls\n",
        2,
    );

    // The broadcaster through TLS too: s_client ends the session (close_notify) at its stdin's
    // end; `-nocommands` keeps it from reading the data as its commands.
    let mut broadcaster = Proc::spawn(s_client(tls, &["-nocommands"]), Stdio::piped());
    assert!(broadcaster.send(&fstream_preamble(
        "broadcast,user=fier,user_password=123,channel=tls"
    )));
    wait_log_count(&host, "broadcast started stream=fier/tls\n", 1);
    let mut data = vec![0u8; 3 * 1024 * 1024];
    rand::thread_rng().fill_bytes(&mut data);
    for chunk in data.chunks(64 * 1024) {
        assert!(broadcaster.send(chunk), "the TLS broadcaster is gone");
    }
    broadcaster.close_stdin();
    assert!(
        broadcaster.wait_exit(WAIT).is_some(),
        "the TLS broadcaster did not stop"
    );
    wait_log_count(&host, "broadcast ended stream=fier/tls\n", 1);

    // The broadcast's end closes both watchers, after every byte.
    let plain_got = read_to_close(&mut plain_watcher);
    assert!(
        tls_watcher.wait_exit(WAIT).is_some(),
        "s_client (watcher) did not stop after the broadcast; got {} bytes",
        tls_watcher.len()
    );
    let tls_got = tls_watcher.data();
    eprintln!(
        "sent {} bytes through TLS; TLS watcher got {}, plain watcher {}",
        data.len(),
        tls_got.len(),
        plain_got.len()
    );
    assert_eq!(plain_got.len(), data.len());
    assert!(plain_got == data, "the plain watcher's bytes differ");
    assert_eq!(tls_got.len(), data.len());
    assert!(tls_got == data, "the TLS watcher's bytes differ");
    assert!(
        !host.log().contains("TLS handshake failed"),
        "{}",
        host.log()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. RTMPS: ffmpeg publishes over TLS; an RTMPS and a plain RTMP player decode it.

#[test]
fn rtmps_publish_and_play_with_ffmpeg() {
    if !tools(&["openssl", "ffmpeg"]) {
        return;
    }
    let root = tls_root("tls-rtmps", &["auth-ini", "rtmp", "rtmp-app"], "rtmp", "");
    let host = Host::start(&root, &["rtmp"], &[]);
    let plain = host.addr("rtmp");
    let tls = host.wait_addr("rtmp+tls", WAIT);

    // ffmpeg's TLS does not verify the certificate unless told to.
    let players = [
        ("rtmps", format!("rtmps://{tls}/fier/cam")),
        ("rtmp", format!("rtmp://{plain}/fier/cam")),
    ]
    .map(|(kind, url)| (kind, background(ffmpeg_play(&url), Duration::from_secs(40))));
    wait_log_count(&host, "playing stream=fier/cam", 2);

    let secs = 6;
    let (status, _, err) = run_with_timeout(
        &mut ffmpeg_publish(&format!("rtmps://{tls}/fier/cam?user_password=123"), secs),
        Duration::from_secs(40),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "RTMPS publisher: {err}\nlog:\n{}",
        host.log()
    );
    let expected = secs as usize * FPS;
    for (kind, p) in players {
        let (status, out, err) = p.join().unwrap();
        let frames = decoded_frames(&out);
        eprintln!("{kind} player: {frames} of {expected} frames decoded");
        assert!(status.is_some(), "{kind} player did not stop: {err}");
        assert!(
            frames * 10 >= expected * 9,
            "{kind} player: {frames} frames; {err}"
        );
    }
    assert!(
        !host.log().contains("TLS handshake failed"),
        "{}",
        host.log()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Plain clients on a TLS port are closed without harm to others; bad TLS settings refuse a
//    reload (the running ones stay) and a new certificate is taken on reload.

#[test]
fn plain_clients_on_a_tls_port_are_closed_and_reload_checks_certificates() {
    if !tools(&["openssl"]) {
        return;
    }
    let root = tls_root(
        "tls-plain",
        &["auth-ini", "fstream"],
        "fstream",
        "handshake_timeout_ms = 500\n",
    );
    let host = Host::start(&root, &["fstream"], &[]);
    let plain = host.addr("fstream");
    let tls = host.wait_addr("fstream+tls", WAIT);
    let flow = LiveFlow::start(plain, "fier", "123", "live");
    assert!(flow.flows(100_000, WAIT), "the plain stream does not flow");

    // A plain fstream client on the TLS port: at most an alert, then the end.
    let t = Instant::now();
    let mut s = TcpStream::connect(tls).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&fstream_preamble("watch,user=fier,channel=live"))
        .unwrap();
    let got = read_to_close(&mut s);
    assert!(got.len() <= 16, "the server sent {} bytes", got.len());
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(host.wait_log("TLS handshake failed", WAIT));

    // A client that says nothing is closed after handshake_timeout_ms.
    let t = Instant::now();
    let mut s = TcpStream::connect(tls).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let got = read_to_close(&mut s);
    let took = t.elapsed();
    assert!(got.is_empty());
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    assert!(host.wait_log("no handshake within 500 ms", WAIT));

    // Nothing else was harmed: the stream flows and TLS clients are served.
    assert!(flow.flows(100_000, WAIT), "the plain stream stopped");
    tls_token(&root, tls);

    // A reload with a missing certificate is refused; everything goes on.
    root.write(
        "mods/host.toml",
        &tls_table("fstream", "tls/missing.pem", "tls/key.pem", ""),
    );
    host.signal(libc::SIGHUP);
    assert!(host.wait_log("reload refused", WAIT), "{}", host.log());
    let refused = host
        .log()
        .lines()
        .find(|l| l.contains("reload refused"))
        .unwrap_or_default()
        .to_string();
    assert!(refused.contains("missing.pem"), "{refused}");
    tls_token(&root, tls);
    assert!(flow.flows(100_000, WAIT), "the plain stream stopped");

    // A new certificate at the same address: taken by the next connections.
    make_cert(&root, "tls/cert2.pem", "tls/key2.pem", "rotated.example");
    root.write(
        "mods/host.toml",
        &tls_table("fstream", "tls/cert2.pem", "tls/key2.pem", ""),
    );
    host.signal(libc::SIGHUP);
    assert!(
        host.wait_log("configuration reloaded", WAIT),
        "{}",
        host.log()
    );
    assert_eq!(host.wait_addr("fstream+tls", WAIT), tls);
    let mut c = s_client(tls, &[]);
    c.stdin(Stdio::null());
    let (status, out, err) = run_with_timeout(&mut c, WAIT);
    assert!(status.is_some(), "s_client did not stop: {err}");
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("rotated.example"),
        "the old certificate is still served:\n{text}\n{err}"
    );
    tls_token(&root, tls);
    assert!(flow.flows(100_000, WAIT), "the plain stream stopped");
}

// ---------------------------------------------------------------------------------------------
// 4. Bad TLS settings refuse start-up, naming the file.

#[test]
fn bad_tls_settings_refuse_startup() {
    if !tools(&["openssl"]) {
        return;
    }
    let root = tls_root("tls-bad", &["auth-ini", "fstream"], "fstream", "");
    make_cert(&root, "tls/other.pem", "tls/other-key.pem", "other");
    root.write("tls/garbage.pem", "-----BEGIN CERTIFICATE-----\n!!\n");
    let cases = [
        (
            tls_table("fstream", "tls/missing.pem", "tls/key.pem", ""),
            "missing.pem",
        ),
        (
            tls_table("fstream", "tls/garbage.pem", "tls/key.pem", ""),
            "garbage.pem",
        ),
        (
            tls_table("fstream", "tls/cert.pem", "tls/other-key.pem", ""),
            "does not belong",
        ),
        (
            tls_table("nosuch", "tls/cert.pem", "tls/key.pem", ""),
            "[tls.nosuch]",
        ),
    ];
    for (table, needle) in cases {
        root.write("mods/host.toml", &table);
        let mut c = Command::new(bin("fstream-host"));
        c.arg("--root")
            .arg(root.path())
            .args(["--listen", "fstream=127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        let (status, _, err) = run_with_timeout(&mut c, WAIT);
        let status = status.unwrap_or_else(|| panic!("the host started with {table}"));
        assert!(!status.success(), "{table}");
        assert!(err.contains("not starting"), "{table}: {err}");
        assert!(err.contains(needle), "{table}: no {needle:?} in\n{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. HTTPS: the http plugin behind `[tls.http]`, read by ffprobe and ffmpeg.

#[test]
fn https_serves_hls_and_http_flv_to_ffmpeg() {
    if !tools(&["openssl", "ffmpeg", "ffprobe"]) {
        return;
    }
    let root = tls_root(
        "tls-https",
        &["auth-ini", "rtmp", "rtmp-app", "http"],
        "http",
        "",
    );
    root.write("mods/http.toml", "hls_segment_ms = 1000\n");
    let host = Host::start(&root, &["rtmp", "http"], &[]);
    let rtmp = host.addr("rtmp");
    let https = host.wait_addr("http+tls", WAIT);
    let publisher = background(
        ffmpeg_publish(&format!("rtmp://{rtmp}/fier/cam?user_password=123"), 10),
        Duration::from_secs(60),
    );
    assert!(host.wait_log("publishing stream=fier/cam", WAIT));
    // Two segments into the playlist.
    std::thread::sleep(Duration::from_secs(3));
    let hls = format!("https://{https}/fier/cam/index.m3u8");
    let codecs = fstream_e2e::ffprobe_codecs(&hls);
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{codecs}"
    );
    let (frames, err) = fstream_e2e::ffmpeg_video_frames(&hls, &["-live_start_index", "0"], 1.5);
    assert!(frames >= 30, "HLS over HTTPS: {frames} frames: {err}");
    let (frames, err) =
        fstream_e2e::ffmpeg_video_frames(&format!("https://{https}/fier/cam.flv"), &[], 2.0);
    assert!(frames >= 40, "HTTP-FLV over HTTPS: {frames} frames: {err}");
    assert!(
        !host.log().contains("TLS handshake failed"),
        "{}",
        host.log()
    );
    publisher.join().unwrap();
}
