//! The host itself (issue 2): loading plugins, authentication, panic isolation, the log bridge,
//! slow authenticators, the hub's fan-out with a slow subscriber, `--check` and shutdown.
//! Driven through the `test-echo` frontend and `test-auth` authenticator under tests/plugins.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use fstream_e2e::{bin, run_with_timeout, target_dir, Host, Root, TempDir};

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn ask(s: &mut TcpStream, r: &mut BufReader<TcpStream>, line: &str) -> String {
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    r.read_line(&mut answer).unwrap_or(0);
    answer.trim_end().to_string()
}

fn check(root: &Root, extra: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(bin("fstream-host"));
    cmd.arg("--root")
        .arg(root.path())
        .arg("--check")
        .args(extra);
    let (status, out, err) = run_with_timeout(&mut cmd, Duration::from_secs(20));
    (
        status.map(|s| s.success()).unwrap_or(false),
        String::from_utf8_lossy(&out).into_owned(),
        err,
    )
}

/// A plugin directory holding links to the built plugins plus whatever a test adds.
fn plugin_dir_with(extra: &[(&str, &[u8])]) -> TempDir {
    let dir = TempDir::new("plugins");
    for entry in std::fs::read_dir(target_dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("lib") && name.ends_with(".so") {
            std::os::unix::fs::symlink(entry.path(), dir.path().join(&name)).unwrap();
        }
    }
    for (name, bytes) in extra {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

#[test]
fn check_lists_plugins_and_accepts_comments_and_blank_lines() {
    let root = Root::new("check", &[]);
    root.write(
        "mods/main.mods",
        "# the stock authenticator\n\nauth-ini   # users/*.ini\n\n   \ntest-echo\n",
    );
    let (ok, out, err) = check(&root, &[]);
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("PLUGIN"), "{out}");
    assert!(
        rows.iter().any(|l| l.starts_with("auth-ini")
            && l.contains("authenticator")
            && l.contains(" v2.")
            && l.contains("libauth_ini.so")),
        "{out}"
    );
    assert!(
        rows.iter()
            .any(|l| l.starts_with("test-echo") && l.contains("frontend")),
        "{out}"
    );
    assert!(out.contains("ok: 2 plugin(s)"), "{out}");
}

#[test]
fn loader_refuses_bad_plugins_with_clear_messages() {
    // A real shared library that is not a plugin: any system library will do.
    let system_lib = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .iter()
    .find(|p| Path::new(p).exists())
    .map(|p| std::fs::read(p).unwrap())
    .expect("a system shared library");
    let dir = plugin_dir_with(&[
        ("libgarbage.so", b"this is not an ELF file"),
        ("libnot_a_plugin.so", &system_lib),
    ]);
    let pd = dir.path().to_str().unwrap().to_string();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "nosuch",
            "",
            &["plugin \"nosuch\"", "libnosuch.so is missing"],
        ),
        (
            "garbage",
            "",
            &["plugin \"garbage\"", "libgarbage.so cannot be opened"],
        ),
        (
            "not-a-plugin",
            "",
            &["libnot_a_plugin.so is not an fstream-host plugin"],
        ),
        (
            "test-wrong-kind",
            "",
            &["wrong kind", "declares frontend but provides authenticator"],
        ),
        (
            "test-abi-layout",
            "",
            &[
                "libtest_abi_layout.so is incompatible",
                "interface v1 or v2.0 to v2.",
                "found a different v2.0 layout; first difference: Error:",
            ],
        ),
        (
            "test-abi-future",
            "",
            &[
                "libtest_abi_future.so is incompatible",
                "found interface v2.99 (built for a newer host",
            ],
        ),
        (
            "auth-ini",
            "bogus_key = 1\n",
            &["auth-ini.toml", "bogus_key"],
        ),
    ];
    for (name, settings, expected) in cases {
        let root = Root::new("loader", &[name]);
        if !settings.is_empty() {
            root.write(&format!("mods/{name}.toml"), settings);
        }
        let (ok, out, err) = check(&root, &["--plugin-dir", &pd]);
        assert!(!ok, "{name}: should fail\n{out}\n{err}");
        for e in *expected {
            assert!(err.contains(e), "{name}: expected {e:?} in:\n{err}");
        }
    }
    // A bad line in main.mods names the file and line.
    let root = Root::new("loader", &["auth-ini", "../evil"]);
    let (ok, _, err) = check(&root, &[]);
    assert!(!ok);
    assert!(
        err.contains("main.mods:2") && err.contains("../evil"),
        "{err}"
    );
    // Unknown keys in host.toml name the file and the key.
    let root = Root::new("loader", &["auth-ini"]);
    root.write("mods/host.toml", "no_such_setting = true\n");
    let (ok, _, err) = check(&root, &[]);
    assert!(!ok);
    assert!(
        err.contains("host.toml") && err.contains("no_such_setting"),
        "{err}"
    );
    // --listen must name a frontend.
    let root = Root::new("loader", &["auth-ini"]);
    let (ok, _, err) = check(&root, &["--listen", "auth-ini=127.0.0.1:0"]);
    assert!(!ok);
    assert!(err.contains("not a protocol frontend"), "{err}");
}

#[test]
fn ini_authentication_right_wrong_unknown_hashed_bad_names_and_runtime_users() {
    let root = Root::new("auth", &["auth-ini", "test-echo"]);
    root.user("fier", "123");
    // A hashed user created with the operator command.
    let mut add = Command::new(bin("fstream-host"));
    add.arg("--root")
        .arg(root.path())
        .args(["user", "add", "ann"]);
    add.stdin(std::process::Stdio::piped());
    let mut child = add
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    assert!(child.wait().unwrap().success());
    let ini = std::fs::read_to_string(root.path().join("users/ann.ini")).unwrap();
    assert!(
        ini.contains("[DEFAULT]") && ini.contains("password_hash = $argon2id$"),
        "{ini}"
    );
    assert!(!ini.contains("s3cret"));

    let host = Host::start(&root, &["echo"], &[]);
    let (mut s, mut r) = connect(host.addr("echo"));
    assert_eq!(ask(&mut s, &mut r, "AUTH fier 123"), "AUTH allowed");
    assert_eq!(ask(&mut s, &mut r, "AUTH fier 1234"), "AUTH denied");
    assert_eq!(ask(&mut s, &mut r, "AUTH nobody 123"), "AUTH denied");
    assert_eq!(ask(&mut s, &mut r, "AUTH ann s3cret"), "AUTH allowed");
    assert_eq!(ask(&mut s, &mut r, "AUTH ann 123"), "AUTH denied");
    for bad in [
        "../fier",
        "a/b",
        "/etc/passwd",
        ".fier",
        "f%2e%2e",
        "fi\u{e9}r",
        "fier\u{2215}x",
        &"x".repeat(129),
    ] {
        assert_eq!(
            ask(&mut s, &mut r, &format!("AUTH {bad} 123")),
            "AUTH denied",
            "{bad}"
        );
    }
    // Added and changed while the host runs.
    root.user("late", "abc");
    assert_eq!(ask(&mut s, &mut r, "AUTH late abc"), "AUTH allowed");
    root.user("late", "xyz");
    assert_eq!(ask(&mut s, &mut r, "AUTH late abc"), "AUTH denied");
    assert_eq!(ask(&mut s, &mut r, "AUTH late xyz"), "AUTH allowed");
    // The name check happens in the host before any plugin sees the name.
    assert!(host.log().contains("invalid user name"), "{}", host.log());
}

#[test]
fn a_panicking_plugin_closes_only_its_session() {
    let root = Root::new("panic", &["test-auth", "test-echo"]);
    root.write(
        "mods/test-auth.toml",
        "user = \"u\"\npassword = \"p\"\npanic_user = \"boom\"\n",
    );
    let host = Host::start(&root, &["echo"], &[]);
    let (mut a, mut ra) = connect(host.addr("echo"));
    let (mut b, mut rb) = connect(host.addr("echo"));
    assert_eq!(ask(&mut a, &mut ra, "hello"), "hello");
    a.write_all(b"PANIC\n").unwrap();
    let mut rest = Vec::new();
    let n = ra.read_to_end(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "the panicking session's connection is closed");
    assert_eq!(ask(&mut b, &mut rb, "still here"), "still here");
    // A panic in an authenticator: that request is refused, the host goes on.
    assert_eq!(ask(&mut b, &mut rb, "AUTH boom p"), "AUTH denied");
    assert_eq!(ask(&mut b, &mut rb, "AUTH u p"), "AUTH allowed");
    let (mut c, mut rc) = connect(host.addr("echo"));
    assert_eq!(ask(&mut c, &mut rc, "new connection"), "new connection");
    assert!(host.wait_log("session panicked", Duration::from_secs(5)));
    let log = host.log();
    assert!(
        log.contains("plugin=test-echo") && log.contains("test-echo was asked to panic"),
        "{log}"
    );
    assert!(log.contains("test-auth was told to panic"), "{log}");
}

#[test]
fn plugin_log_events_reach_the_host_log_with_the_plugin_target() {
    let root = Root::new("logs", &["test-echo"]);
    let host = Host::start(&root, &["echo"], &[]);
    let (mut s, mut r) = connect(host.addr("echo"));
    assert_eq!(ask(&mut s, &mut r, "x"), "x");
    assert!(host.wait_log("echo got bytes", Duration::from_secs(5)));
    let log = host.log();
    let line = log
        .lines()
        .find(|l| l.contains("echo session created"))
        .expect(&log);
    assert!(
        line.contains("INFO") && line.contains("test_echo") && line.contains("conn="),
        "{line}"
    );
    // Inside the host's connection span.
    assert!(line.contains("conn{"), "{line}");
    // The host's filter (host.toml `log`) applies per plugin target.
    let root2 = Root::new("logs", &["test-echo"]);
    root2.write("mods/host.toml", "log = \"info,test_echo=warn\"\n");
    let host2 = Host::start_with_log(&root2, &["echo"], &[], None);
    let (mut s, mut r) = connect(host2.addr("echo"));
    assert_eq!(ask(&mut s, &mut r, "x"), "x");
    std::thread::sleep(Duration::from_millis(200));
    let log2 = host2.log();
    assert!(log2.contains("listening"), "{log2}");
    assert!(!log2.contains("echo session created"), "{log2}");
}

#[test]
fn a_slow_authenticator_delays_no_other_connection_and_times_out() {
    let root = Root::new("slowauth", &["test-auth", "test-echo"]);
    root.write(
        "mods/test-auth.toml",
        "user = \"u\"\npassword = \"p\"\nsleep_ms = 1500\n",
    );
    root.write("mods/host.toml", "auth_timeout_ms = 4000\n");
    let host = Host::start(&root, &["echo"], &[]);
    let (mut a, mut ra) = connect(host.addr("echo"));
    let (mut b, mut rb) = connect(host.addr("echo"));
    let t0 = Instant::now();
    a.write_all(b"AUTH u p\n").unwrap();
    // While a's authentication sleeps, b is served at once.
    for i in 0..5 {
        assert_eq!(
            ask(&mut b, &mut rb, &format!("ping {i}")),
            format!("ping {i}")
        );
    }
    // b's five round trips finished while a's answer was still pending (it takes 1.5 s): the
    // slow authenticator held no one else up. (An ordering check, not a stopwatch, so a busy
    // machine cannot make it flake unless b itself took over 1.5 s.)
    a.set_nonblocking(true).unwrap();
    let mut peek = [0u8; 1];
    assert!(
        matches!(a.peek(&mut peek), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a's answer came before b was served: b was delayed ({:?})",
        t0.elapsed()
    );
    a.set_nonblocking(false).unwrap();
    let mut line = String::new();
    ra.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "AUTH allowed");
    assert!(t0.elapsed() >= Duration::from_millis(1400));

    let root = Root::new("slowauth", &["test-auth", "test-echo"]);
    root.write(
        "mods/test-auth.toml",
        "user = \"u\"\npassword = \"p\"\nsleep_ms = 3000\n",
    );
    root.write("mods/host.toml", "auth_timeout_ms = 300\n");
    let host = Host::start(&root, &["echo"], &[]);
    let (mut a, mut ra) = connect(host.addr("echo"));
    let t0 = Instant::now();
    assert_eq!(ask(&mut a, &mut ra, "AUTH u p"), "AUTH denied");
    assert!(t0.elapsed() < Duration::from_millis(2500));
    assert!(host.wait_log("timed out", Duration::from_secs(5)));
}

#[test]
fn fan_out_reaches_every_fast_subscriber_while_a_slow_one_is_dropped() {
    let root = Root::new("fanout", &["test-echo"]);
    let host = Host::start(&root, &["echo"], &[]);
    let addr = host.addr("echo");
    // Three fast readers and one that never reads, with a small queue.
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (mut s, mut r) = connect(addr);
        s.write_all(b"SUB live/x\n").unwrap();
        let _ = &mut r;
        readers.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0usize;
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n;
            }
            drop(s);
            total
        }));
    }
    let (mut slow, _slow_r) = connect(addr);
    slow.write_all(b"SUB live/x 65536\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (mut p, mut pr) = connect(addr);
    assert_eq!(ask(&mut p, &mut pr, "PUB live/x"), "PUB started");
    let line = format!("{}\n", "y".repeat(1023));
    let lines = 24 * 1024; // 24 MiB: far more than the slow reader's socket buffers hold
    let t0 = Instant::now();
    let mut chunk = String::new();
    for _ in 0..64 {
        chunk.push_str(&line);
    }
    for _ in 0..lines / 64 {
        p.write_all(chunk.as_bytes()).unwrap();
    }
    let publish_time = t0.elapsed();
    // Closing the publisher ends the stream (grace 0), so readers see EOF.
    drop(p);
    for h in readers {
        assert_eq!(
            h.join().unwrap(),
            lines * 1024,
            "a fast subscriber lost bytes"
        );
    }
    assert!(
        host.wait_log("viewer too slow", Duration::from_secs(5)),
        "{}",
        host.log()
    );
    eprintln!("published 24 MiB in {publish_time:?}");
}

#[test]
fn per_format_encoding_is_shared_and_applied() {
    let root = Root::new("format", &["test-echo"]);
    let host = Host::start(&root, &["echo"], &[]);
    let addr = host.addr("echo");
    let (mut a, mut ra) = connect(addr);
    a.write_all(b"SUB live/f 0 upper\n").unwrap();
    let (mut b, mut rb) = connect(addr);
    b.write_all(b"SUB live/f 0 raw\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (mut p, mut pr) = connect(addr);
    assert_eq!(ask(&mut p, &mut pr, "PUB live/f"), "PUB started");
    p.write_all(b"hello world\n").unwrap();
    let mut l = String::new();
    ra.read_line(&mut l).unwrap();
    assert_eq!(l, "HELLO WORLD\n");
    l.clear();
    rb.read_line(&mut l).unwrap();
    assert_eq!(l, "hello world\n");
}

#[test]
fn sigterm_stops_the_host_cleanly() {
    let root = Root::new("stop", &["auth-ini", "test-echo"]);
    let mut host = Host::start(&root, &["echo"], &[]);
    let (_s, _r) = connect(host.addr("echo"));
    host.signal(libc::SIGTERM);
    let status = host
        .wait_exit(Duration::from_secs(5))
        .expect("exits within 5 s");
    assert!(status.success(), "{status:?}");
    assert!(host.log().contains("shutting down"));
}

#[test]
fn authenticators_are_asked_in_main_mods_order() {
    // auth-toml knows alice and denies her a wrong password even though auth-ini would allow it;
    // fier is unknown to auth-toml, so auth-ini decides.
    let root = Root::new("order", &["auth-toml", "auth-ini", "test-echo"]);
    root.write("mods/auth-toml.toml", "[users]\nalice = \"wonderland\"\n");
    root.user("alice", "other");
    root.user("fier", "123");
    let host = Host::start(&root, &["echo"], &[]);
    let (mut s, mut r) = connect(host.addr("echo"));
    assert_eq!(ask(&mut s, &mut r, "AUTH alice wonderland"), "AUTH allowed");
    assert_eq!(ask(&mut s, &mut r, "AUTH alice other"), "AUTH denied");
    assert_eq!(ask(&mut s, &mut r, "AUTH fier 123"), "AUTH allowed");
    assert!(
        host.log().contains("auth_toml: auth-toml ready"),
        "{}",
        host.log()
    );
}

#[test]
fn a_panicking_sink_ends_its_recording_only() {
    fstream_e2e::require(&["ffmpeg"]);
    let root = Root::new("sinkpanic", &["auth-ini", "fstream", "test-sink"]);
    root.user("fier", "123");
    root.write("mods/test-sink.toml", "panic_after = 20\n");
    let host = Host::start(&root, &["fstream"], &[]);
    let addr = host.addr("fstream").to_string();
    // A watcher of the stream, then an FLV broadcast (sinks get media streams).
    let mut watch = Command::new(bin("fstream"));
    watch.args([addr.as_str(), "watch,user=fier,channel=rec"]);
    let watcher = std::thread::spawn(move || run_with_timeout(&mut watch, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(300));
    let cmd = format!(
        "ffmpeg -v error -f lavfi -i testsrc2=size=160x120:rate=25 -t 3 -c:v libx264 -g 25 -f flv - | {} {addr} broadcast,user=fier,user_password=123,channel=rec",
        bin("fstream").display()
    );
    let (status, _, err) = run_with_timeout(
        Command::new("sh").args(["-c", &cmd]),
        Duration::from_secs(30),
    );
    assert!(status.map(|s| s.success()).unwrap_or(false), "{err}");
    let (_, watched, _) = watcher.join().unwrap();
    assert!(
        host.wait_log(
            "test-sink was told to panic at packet 20",
            Duration::from_secs(5)
        ),
        "{}",
        host.log()
    );
    assert!(host.log().contains("sink failed"));
    // The watcher got the whole stream: FLV header and all 75 frames' worth of tags.
    assert!(watched.starts_with(b"FLV"), "{} bytes", watched.len());
    assert!(watched.len() > 10_000, "{} bytes", watched.len());
    // And the host still serves.
    let (mut s, mut r) = {
        let s = TcpStream::connect(host.addr("fstream")).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        (s, r)
    };
    s.write_all(&fstream_e2e::fstream_preamble(
        "token,user=fier,user_password=123",
    ))
    .unwrap();
    let mut token = String::new();
    r.read_line(&mut token).unwrap();
    assert_eq!(token.trim().len(), 32);
}
