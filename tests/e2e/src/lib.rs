//! Test harness for end-to-end tests: start the real `fstream-host` with a temporary root, find
//! the addresses it bound, run real clients, and clean up.
//!
//! The binaries and plugin libraries come from `cargo build --workspace` (the README's test
//! command builds first); they are found next to the test executable's `deps/` directory.

pub mod browser;
pub mod cdp;
pub mod http_backend;
pub mod rtmp_client;

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

/// `target/<profile>/`, where cargo puts binaries and `cdylib`s.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "fstream-e2e-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server root: `mods/main.mods`, `mods/*.toml`, `users/*.ini`.
pub struct Root {
    pub dir: TempDir,
}

impl Root {
    pub fn new(tag: &str, plugins: &[&str]) -> Self {
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.path().join("mods")).unwrap();
        std::fs::create_dir_all(dir.path().join("users")).unwrap();
        let r = Root { dir };
        r.write("mods/main.mods", &(plugins.join("\n") + "\n"));
        r
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }
    pub fn user(&self, name: &str, password: &str) {
        self.write(
            &format!("users/{name}.ini"),
            &format!("[DEFAULT]\npassword={password}\n"),
        );
    }
}

/// A running host. Killed on drop.
pub struct Host {
    pub child: Child,
    /// Protocol -> bound address, from the "listening" log lines.
    pub addrs: Vec<(String, SocketAddr)>,
    log: Arc<Mutex<String>>,
}

impl Host {
    /// Starts the host on `root` with every frontend on 127.0.0.1:0 (or as `extra_args` say),
    /// and waits until it listens on `expect` protocols.
    pub fn start(root: &Root, listen: &[&str], extra_args: &[&str]) -> Host {
        let filter = std::env::var("E2E_LOG").unwrap_or_else(|_| "debug".into());
        Self::start_with_log(root, listen, extra_args, Some(&filter))
    }

    /// Like [`Host::start`]; `rust_log: None` leaves the filter to `host.toml`.
    pub fn start_with_log(
        root: &Root,
        listen: &[&str],
        extra_args: &[&str],
        rust_log: Option<&str>,
    ) -> Host {
        Self::start_exe(&bin("fstream-host"), root, listen, extra_args, rust_log)
    }

    /// Like [`Host::start_with_log`], with another build of the host (an older or a
    /// differently versioned one).
    pub fn start_exe(
        exe: &Path,
        root: &Root,
        listen: &[&str],
        extra_args: &[&str],
        rust_log: Option<&str>,
    ) -> Host {
        let mut cmd = Command::new(exe);
        cmd.arg("--root").arg(root.path());
        // The http plugin's control listener ("api", 127.0.0.1:9997 by default) goes on an
        // ephemeral port too, unless the test's http.toml decides about it.
        let http_toml =
            std::fs::read_to_string(root.path().join("mods/http.toml")).unwrap_or_default();
        let mut listen: Vec<&str> = listen.to_vec();
        if listen.contains(&"http") && !listen.contains(&"api") && !http_toml.contains("api_listen")
        {
            listen.push("api");
        }
        for l in &listen {
            cmd.arg("--listen").arg(format!("{l}=127.0.0.1:0"));
        }
        match rust_log {
            Some(f) => cmd.env("RUST_LOG", f),
            None => cmd.env_remove("RUST_LOG"),
        };
        cmd.args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn fstream-host");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let log2 = log.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if std::env::var_os("E2E_ECHO").is_some() {
                    eprint!("host| {line}");
                }
                if let Some(found) = parse_listening(&line) {
                    let _ = tx.send(Some(found));
                }
                if line.contains("not starting") || line.contains("fstream-host:") {
                    let _ = tx.send(None);
                }
                log2.lock().unwrap().push_str(&line);
                line.clear();
            }
            let _ = tx.send(None);
        });
        let mut addrs: Vec<(String, SocketAddr)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        // TLS listeners ("rtmp+tls", from host.toml) are not among `listen`: see `wait_addr`.
        while addrs.iter().filter(|(p, _)| !p.ends_with("+tls")).count() < listen.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Some(a)) => addrs.push(a),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    std::thread::sleep(Duration::from_millis(100));
                    panic!("host did not start; log:\n{}", log.lock().unwrap());
                }
            }
        }
        Host { child, addrs, log }
    }

    pub fn addr(&self, protocol: &str) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(p, _)| p == protocol)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no {protocol} listener"))
    }

    /// The address of a listener that host.toml asks for rather than `--listen` (a TLS
    /// listener, "rtmp+tls"), from its latest "listening" log line; waits for the line.
    pub fn wait_addr(&self, protocol: &str, timeout: Duration) -> SocketAddr {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .log()
                .lines()
                .rev()
                .filter_map(parse_listening)
                .find(|(p, _)| p == protocol);
            if let Some((_, addr)) = found {
                return addr;
            }
            assert!(
                Instant::now() < deadline,
                "no {protocol} listener; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits until the log holds `needle` at least `n` times; fails the test (showing the
    /// log) after `timeout`.
    pub fn expect_log_count(&self, needle: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.log().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "waited for {n}x {needle:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `... listening protocol=fstream plugin=fstream addr=127.0.0.1:4000`
fn parse_listening(line: &str) -> Option<(String, SocketAddr)> {
    if !line.contains("listening") {
        return None;
    }
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .map(|s| s.to_string())
    };
    let proto = field("protocol=")?;
    let addr = field("addr=")?.parse().ok()?;
    Some((proto, addr))
}

/// A TCP connection to `addr` from the local address `from` (any of 127.0.0.0/8 on Linux), so
/// that one test can be many clients' addresses.
pub fn connect_from(from: std::net::Ipv4Addr, addr: SocketAddr) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = addr else {
        panic!("connect_from: {addr} is not IPv4");
    };
    let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a new socket we own; bind and connect get valid sockaddr_in values of that size;
    // on success the descriptor is handed to a TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let local = sin(from, 0);
        let rc = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert!(rc == 0, "bind {from}: {}", std::io::Error::last_os_error());
        let remote = sin(*to.ip(), to.port());
        let rc = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        assert!(
            rc == 0,
            "connect {addr}: {}",
            std::io::Error::last_os_error()
        );
        std::net::TcpStream::from_raw_fd(fd)
    }
}

/// The codecs ffprobe finds at `url` (one per line), or a panic with its error.
pub fn ffprobe_codecs(url: &str) -> String {
    let (st, out, err) = run_with_timeout(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name",
                "-of",
                "csv=p=0",
            ])
            .arg(url),
        Duration::from_secs(30),
    );
    assert!(st.is_some_and(|s| s.success()), "ffprobe {url}: {err}");
    String::from_utf8_lossy(&out).into_owned()
}

/// Video frames ffmpeg decodes from `url` in `secs` seconds of media (`input_opts` before
/// `-i`), with its stderr; a panic if ffmpeg fails.
pub fn ffmpeg_video_frames(url: &str, input_opts: &[&str], secs: f64) -> (usize, String) {
    let (st, out, err) = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "error"])
            .args(input_opts)
            .args([
                "-i",
                url,
                "-t",
                &secs.to_string(),
                "-map",
                "0:v",
                "-f",
                "framecrc",
                "-",
            ]),
        Duration::from_secs(30),
    );
    assert!(st.is_some_and(|s| s.success()), "ffmpeg {url}: {err}");
    let frames = String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    (frames, err)
}

/// A generated FLV file (H.264 + AAC, 320x240, a keyframe every second) of `secs` seconds,
/// written as `dir/source.flv`; its bytes.
pub fn generated_flv(dir: &std::path::Path, secs: u32) -> Vec<u8> {
    require(&["ffmpeg"]);
    let path = dir.join("source.flv");
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", &secs.to_string()])
        .args(["-c:v", "libx264", "-g", "25", "-preset", "ultrafast"])
        .args(["-c:a", "aac", "-f", "flv"])
        .arg(&path);
    let (status, _, err) = run_with_timeout(&mut c, Duration::from_secs(60));
    assert!(status.map(|s| s.success()).unwrap_or(false), "{err}");
    std::fs::read(&path).unwrap()
}

/// Runs a command to completion with a timeout; returns (status, stdout, stderr).
pub fn run_with_timeout(
    cmd: &mut Command,
    timeout: Duration,
) -> (Option<std::process::ExitStatus>, Vec<u8>, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status,
        t_out.join().unwrap_or_default(),
        t_err.join().unwrap_or_default(),
    )
}

/// Whether a program is installed (ffmpeg, ffprobe, rtmpdump).
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The fstream preamble for `action`, as the spec frames it (blank-line prelude).
pub fn fstream_preamble(action: &str) -> Vec<u8> {
    let mut v = b"\n\n".to_vec();
    v.extend_from_slice(&(action.len() as u32).to_be_bytes());
    v.push(0);
    v.extend_from_slice(action.as_bytes());
    v
}

/// A live fstream stream for "the host still serves a normal stream" checks: a watcher that
/// counts what it receives and a broadcaster that sends 4 KiB every 5 ms, both raw sockets.
pub struct LiveFlow {
    received: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl LiveFlow {
    pub fn start(addr: SocketAddr, user: &str, password: &str, channel: &str) -> LiveFlow {
        use std::io::Write;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut w = std::net::TcpStream::connect(addr).expect("watcher connects");
        w.write_all(&fstream_preamble(&format!(
            "watch,user={user},channel={channel}"
        )))
        .unwrap();
        w.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (rx, st) = (received.clone(), stop.clone());
        let watcher = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !st.load(Ordering::Relaxed) {
                match w.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        rx.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(_) => {}
                }
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let mut b = std::net::TcpStream::connect(addr).expect("broadcaster connects");
        b.write_all(&fstream_preamble(&format!(
            "broadcast,user={user},user_password={password},channel={channel}"
        )))
        .unwrap();
        let st = stop.clone();
        let broadcaster = std::thread::spawn(move || {
            let chunk = [0x5au8; 4096];
            while !st.load(Ordering::Relaxed) {
                if b.write_all(&chunk).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        LiveFlow {
            received,
            stop,
            threads: vec![watcher, broadcaster],
        }
    }

    pub fn received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether at least `more` further bytes arrive within `timeout`.
    pub fn flows(&self, more: usize, timeout: Duration) -> bool {
        let start = self.received();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.received() >= start + more {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for LiveFlow {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Fails the test unless every program is installed: a test that quietly skips its real
/// clients would pass without testing anything. `.ci/run` installs them.
pub fn require(programs: &[&str]) {
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !have(p)).collect();
    assert!(
        missing.is_empty(),
        "{missing:?} not installed: run scripts/test once (it installs them), or apt-get install -y ffmpeg rtmpdump gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav chromium nginx libnginx-mod-rtmp"
    );
}

/// What a finished command gave: its status (none on timeout), stdout and stderr.
pub type Outcome = (Option<std::process::ExitStatus>, Vec<u8>, String);

/// Runs a command on a thread, with a timeout.
pub fn background(mut cmd: Command, timeout: Duration) -> std::thread::JoinHandle<Outcome> {
    std::thread::spawn(move || run_with_timeout(&mut cmd, timeout))
}

/// ffmpeg publishing a generated H.264 + AAC stream for `secs` seconds at real time.
pub fn ffmpeg_publish(url: &str, secs: u32) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", &secs.to_string()])
        .args(["-c:v", "libx264", "-g", "25", "-preset", "ultrafast"])
        .args(["-c:a", "aac", "-f", "flv", url]);
    c
}

/// The imageio-ffmpeg release `.ci/run` installs from PyPI (a static ffmpeg 9).
pub const MODERN_FFMPEG_PACKAGE: &str = "imageio-ffmpeg==0.8.1";

/// A recent ffmpeg, for what Debian's 5.1 cannot do: publish HEVC and AV1 over Enhanced RTMP.
/// `FSTREAM_MODERN_FFMPEG` names one; else the one PyPI's imageio-ffmpeg carries.
pub fn modern_ffmpeg() -> PathBuf {
    if let Some(p) = std::env::var_os("FSTREAM_MODERN_FFMPEG") {
        return PathBuf::from(p);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string())
        }
        _ => panic!(
            "no recent ffmpeg: run .ci/run once, or pip install {MODERN_FFMPEG_PACKAGE} \
             (or set FSTREAM_MODERN_FFMPEG to an ffmpeg 6.1 or later)"
        ),
    }
}

/// The recent ffmpeg publishing a generated stream for `secs` seconds at real time, its video
/// encoded with `video` (e.g. `["-c:v", "libx265"]`) and AAC audio; the flv muxer of ffmpeg 6.1
/// and later writes HEVC and AV1 as Enhanced RTMP.
pub fn modern_ffmpeg_publish(url: &str, secs: u32, video: &[&str]) -> Command {
    let mut c = Command::new(modern_ffmpeg());
    c.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", &secs.to_string(), "-pix_fmt", "yuv420p"])
        .args(video)
        .args(["-c:a", "aac", "-f", "flv", url]);
    c
}

/// ffmpeg playing `url` and printing one line per decoded video frame (framemd5).
pub fn ffmpeg_play(url: &str) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-i", url])
        .args(["-map", "0:v:0", "-f", "framemd5", "-"]);
    c
}

/// Video frames ffprobe decodes in a file (0 when it reads none, e.g. an empty file; ffprobe's
/// complaint is printed).
pub fn video_frames_in(path: &Path) -> usize {
    let mut c = Command::new("ffprobe");
    c.args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path);
    let (_, out, err) = run_with_timeout(&mut c, Duration::from_secs(30));
    match String::from_utf8_lossy(&out).trim().parse() {
        Ok(n) => n,
        Err(_) => {
            eprintln!("ffprobe of {}: {err}", path.display());
            0
        }
    }
}

/// Video frames in `ffmpeg_play`'s output.
pub fn decoded_frames(stdout: &[u8]) -> usize {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count()
}

/// Waits for `child` to exit and says whether it succeeded; kills it after `timeout` (false).
pub fn wait_success(child: &mut std::process::Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return s.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}
