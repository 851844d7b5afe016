//! The interface promise, proven with real old builds: the stock plugins as built at the
//! commit that froze an interface version are loaded into today's host, and into today's host
//! with the product version bumped as a release would bump it (9.0.0), and still work end to
//! end: ini authentication, an fstream broadcast to two watchers (byte-identical), an RTMP
//! publish played by ffmpeg, a recording read back by ffprobe.
//!
//! The old plugins and the bumped host are built by `.ci/compat-build` (cached between runs;
//! the first run takes a few minutes). The commits are those listed under "Compatibility
//! builds" in `core/abi/CHANGELOG.md`.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    thread,
    time::{Duration, Instant},
};

use fstream_e2e::{
    background, bin, decoded_frames, ffmpeg_play, ffmpeg_publish, fstream_preamble,
    run_with_timeout, Host, Root,
};

const WAIT: Duration = Duration::from_secs(20);
/// Interface versions frozen so far, with the commit that froze each.
const FROZEN: &[(&str, &str)] = &[
    ("v1", "84a8393"),
    ("v2.0", "16d1ad0"),
    ("v2.1", "628fab5"),
    ("v2.2", "a1e6d79"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn compat_build(args: &[&str]) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo().join(".ci/compat-build"))
        .args(args)
        .output()
        .expect("run .ci/compat-build");
    assert!(
        out.status.success(),
        ".ci/compat-build {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The old plugins of `commit` (built once per test process; the script caches across runs).
fn old_plugins(commit: &'static str) -> PathBuf {
    static DIRS: OnceLock<std::sync::Mutex<Vec<(&'static str, PathBuf)>>> = OnceLock::new();
    let dirs = DIRS.get_or_init(Default::default);
    let mut d = dirs.lock().unwrap();
    if let Some((_, p)) = d.iter().find(|(c, _)| *c == commit) {
        return p.clone();
    }
    let p = compat_build(&["plugins", commit]);
    d.push((commit, p.clone()));
    p
}

fn bumped_host() -> PathBuf {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| compat_build(&["bumped-host"])).clone()
}

/// A root with the old commit's settings files and the user `fier` (123).
fn old_root(tag: &str, plugins_dir: &Path, record: bool) -> Root {
    let root = Root::new(
        tag,
        &["auth-ini", "fstream", "rtmp", "rtmp-app", "flv-recorder"],
    );
    for entry in std::fs::read_dir(plugins_dir.join("mods")).expect("old mods") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            root.write(&format!("mods/{name}"), &text);
        }
    }
    if record {
        root.write(
            "mods/flv-recorder.toml",
            "dir = \"recordings\"\nrecord = [\"fier/*\"]\n",
        );
    }
    root.user("fier", "123");
    root
}

/// The hosts each old build must work in: today's, and today's with a bumped version.
fn hosts() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("current host", bin("fstream-host")),
        ("host 9.0.0", bumped_host()),
    ]
}

fn start(exe: &Path, root: &Root, plugins: &Path) -> Host {
    let dir = plugins.to_string_lossy().to_string();
    let host = Host::start_exe(
        exe,
        root,
        &["fstream", "rtmp"],
        &["--plugin-dir", &dir],
        Some("debug"),
    );
    for p in ["auth-ini", "fstream", "rtmp", "rtmp-app", "flv-recorder"] {
        assert!(
            host.log().contains(&format!("loaded plugin={p} ")),
            "{p} not loaded:\n{}",
            host.log()
        );
    }
    host
}

fn fstream_conn(host: &Host, action: &str) -> TcpStream {
    let mut s = TcpStream::connect(host.addr("fstream")).expect("connect");
    s.write_all(&fstream_preamble(action)).expect("preamble");
    s
}

#[test]
fn check_lists_old_plugins_with_their_interface_in_every_host() {
    for (interface, commit) in FROZEN {
        let plugins = old_plugins(commit);
        for (what, exe) in hosts() {
            let root = old_root("compat-check", &plugins, false);
            let mut c = Command::new(&exe);
            c.arg("--root")
                .arg(root.path())
                .arg("--plugin-dir")
                .arg(&plugins)
                .arg("--check");
            let (status, out, err) = run_with_timeout(&mut c, WAIT);
            let text = String::from_utf8_lossy(&out).to_string() + &err;
            assert!(
                status.map(|s| s.success()).unwrap_or(false),
                "{what} refused the {interface} plugins of {commit}:\n{text}"
            );
            for p in ["auth-ini", "fstream", "rtmp", "rtmp-app", "flv-recorder"] {
                let line = text
                    .lines()
                    .find(|l| l.starts_with(&format!("{p} ")))
                    .unwrap_or_else(|| panic!("{what}: no line for {p}:\n{text}"));
                assert!(line.contains(interface), "{what}: {line}");
            }
        }
    }
}

#[test]
fn old_plugins_authenticate_and_fan_out_fstream_byte_identical() {
    for (_, commit) in FROZEN {
        let plugins = old_plugins(commit);
        for (what, exe) in hosts() {
            let root = old_root("compat-fstream", &plugins, false);
            let host = start(&exe, &root, &plugins);
            // A wrong password is refused without a byte.
            let mut bad = fstream_conn(&host, "broadcast,user=fier,user_password=nope");
            let _ = bad.set_read_timeout(Some(WAIT));
            let mut buf = [0u8; 16];
            assert!(
                matches!(bad.read(&mut buf), Ok(0) | Err(_)),
                "{what}: wrong password"
            );
            let watchers: Vec<_> = (0..2)
                .map(|_| {
                    let w = fstream_conn(&host, "watch,user=fier,channel=cam");
                    w.set_read_timeout(Some(WAIT)).unwrap();
                    w
                })
                .collect();
            let deadline = Instant::now() + WAIT;
            while host
                .log()
                .matches("watcher waiting for a broadcaster stream=fier/cam")
                .count()
                < 2
                && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(20));
            }
            let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
            let mut b = fstream_conn(&host, "broadcast,user=fier,user_password=123,channel=cam");
            b.write_all(&data).expect("broadcast");
            drop(b);
            for (i, mut w) in watchers.into_iter().enumerate() {
                let mut got = Vec::new();
                let _ = w.read_to_end(&mut got);
                assert!(
                    got == data,
                    "{what}, plugins of {commit}: watcher {i} got {} of {} bytes (equal prefix: {})",
                    got.len(),
                    data.len(),
                    data.starts_with(&got)
                );
            }
        }
    }
}

#[test]
fn old_plugins_play_rtmp_to_ffmpeg_and_record() {
    fstream_e2e::require(&["ffmpeg", "ffprobe"]);
    for (_, commit) in FROZEN {
        let plugins = old_plugins(commit);
        for (what, exe) in hosts() {
            let root = old_root("compat-rtmp", &plugins, true);
            let mut host = start(&exe, &root, &plugins);
            let url = format!("rtmp://{}/fier/cam", host.addr("rtmp"));
            let player = background(ffmpeg_play(&url), Duration::from_secs(40));
            let deadline = Instant::now() + WAIT;
            while !host.log().contains("playing stream=fier/cam") && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            let (status, _, err) = run_with_timeout(
                &mut ffmpeg_publish(&format!("{url}?user_password=123"), 4),
                Duration::from_secs(40),
            );
            assert!(
                status.map(|s| s.success()).unwrap_or(false),
                "{what}: publish: {err}"
            );
            let (_, out, err) = player.join().expect("player");
            let frames = decoded_frames(&out);
            eprintln!("{what}, plugins of {commit}: ffmpeg decoded {frames} frames");
            assert!(frames >= 80, "{what}: {frames} frames; {err}");
            // A clean stop: the recorder finishes its file.
            host.signal(libc::SIGTERM);
            assert!(
                host.wait_exit(WAIT).is_some(),
                "{what}: the host did not stop"
            );
            let dir = root.path().join("recordings/fier");
            let file = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{what}: {}: {e}", dir.display()))
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "flv"))
                .unwrap_or_else(|| panic!("{what}: no recording in {}", dir.display()));
            let recorded = fstream_e2e::video_frames_in(&file);
            eprintln!("{what}: the recording has {recorded} frames");
            assert!(recorded >= 80, "{what}: {recorded} frames recorded");
        }
    }
}

/// A directory of plugin files picked from several builds (symbolic links).
fn mixed_plugins(tag: &str, picks: &[(&str, &Path)]) -> fstream_e2e::TempDir {
    let dir = fstream_e2e::TempDir::new(tag);
    for (plugin, from) in picks {
        let file = format!("lib{}.so", plugin.replace('-', "_"));
        std::os::unix::fs::symlink(from.join(&file), dir.path().join(&file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    dir
}

/// Plugins of different interface versions in one host, each side of an addition: today's
/// RTMP frontend with the v2.0 app handler (whose vtable has no `command`: the host answers a
/// client's own command "method not found" for it), and the v2.0 frontend with today's
/// `app-lobby` (which defers connects and calls clients: the host resolves the deferral for the
/// old session, and `call_client` says false for a session that cannot send commands).
#[test]
fn plugins_of_v2_0_and_today_work_together_each_way() {
    use fstream_e2e::rtmp_client::{info_of, RtmpClient};
    use fstream_media::amf0::Amf0Value;
    let old = old_plugins("16d1ad0");
    let new = bin("fstream-host").parent().unwrap().to_path_buf();

    // Today's rtmp, v2.0's rtmp-app.
    let dir = mixed_plugins(
        "compat-mixed-a",
        &[("auth-ini", &new), ("rtmp", &new), ("rtmp-app", &old)],
    );
    let root = Root::new("compat-mixed-a", &["auth-ini", "rtmp", "rtmp-app"]);
    root.user("fier", "123");
    let plugin_dir = dir.path().to_string_lossy().to_string();
    let host = Host::start(&root, &["rtmp"], &["--plugin-dir", &plugin_dir]);
    let (check, ok) = check_table(&root, &plugin_dir);
    assert!(ok, "{check}");
    assert!(
        check
            .lines()
            .any(|l| l.contains("rtmp-app") && l.contains("v2.0")),
        "{check}"
    );
    let addr = host.addr("rtmp");
    let mut c = RtmpClient::new(addr);
    assert_eq!(c.connect("fier").name, "_result");
    c.command(
        0,
        "myRpc",
        2.0,
        Amf0Value::Null,
        vec![Amf0Value::Number(1.0)],
    );
    let r = c.expect("_error");
    assert_eq!(r.transaction_id, 2.0);
    assert_eq!(info_of(&r).1, "NetConnection.Call.Failed");
    // The old handler still decides publishes (asking the authenticators).
    let msid = c.create_stream(3.0);
    assert_eq!(
        c.publish(msid, "cam?user_password=123").1,
        "NetStream.Publish.Start"
    );
    let mut bad = RtmpClient::new(addr);
    assert_eq!(bad.connect("fier").name, "_result");
    let msid = bad.create_stream(3.0);
    assert_eq!(
        bad.publish(msid, "cam2?user_password=nope").1,
        "NetStream.Publish.BadName"
    );
    drop(host);

    // v2.0's rtmp, today's app-lobby.
    let dir = mixed_plugins("compat-mixed-b", &[("rtmp", &old), ("app-lobby", &new)]);
    let root = Root::new("compat-mixed-b", &["rtmp", "app-lobby"]);
    root.write(
        "mods/app-lobby.toml",
        "apps = [\"studio\"]\nmoderator_key = \"k3y\"\n",
    );
    root.write("mods/host.toml", "app_defer_timeout_ms = 1000\n");
    let plugin_dir = dir.path().to_string_lossy().to_string();
    let host = Host::start(&root, &["rtmp"], &["--plugin-dir", &plugin_dir]);
    let addr = host.addr("rtmp");
    let mut m = RtmpClient::new(addr);
    assert_eq!(m.connect("studio?key=k3y").name, "_result");
    let mut g = RtmpClient::new(addr);
    g.send_connect("studio");
    host.wait_log("a guest waits", WAIT);
    // The old session cannot send commands: the moderator is not told, and the old session
    // cannot pass on the moderator's own command either.
    assert!(m
        .command_within(Duration::from_millis(300))
        .is_none_or(|c| c.name != "waiting"));
    m.command(0, "lobby", 2.0, Amf0Value::Null, vec![]);
    let r = m.expect("_error");
    assert_eq!(info_of(&r).1, "NetConnection.Call.Failed");
    // The deferral still works for the old session: it waits, and the host's answer (here
    // its deferral timeout) reaches it as an ordinary decision.
    assert!(g.command_within(Duration::from_millis(300)).is_none());
    let a = g.connect_answer();
    assert_eq!(a.name, "_error", "{a:?}");
    assert!(info_of(&a).2.contains("did not decide in time"), "{a:?}");
    drop(host);
}

/// `--check` on a root with another plugin directory: (output, success).
fn check_table(root: &Root, plugin_dir: &str) -> (String, bool) {
    let mut c = Command::new(bin("fstream-host"));
    c.arg("--root")
        .arg(root.path())
        .args(["--plugin-dir", plugin_dir, "--check"]);
    let (status, out, err) = run_with_timeout(&mut c, WAIT);
    (
        format!("{}{err}", String::from_utf8_lossy(&out)),
        status.is_some_and(|s| s.success()),
    )
}

/// Who may record, with a frontend older than the rule: v2.2's RTMP frontend does not read the
/// `MayRecord(false)` that today's rtmp-app puts in its decision, so the host itself publishes
/// such a `record` publish live. A user who may record still records through the old frontend.
#[test]
fn a_v2_2_rtmp_frontend_cannot_record_for_a_user_who_may_not() {
    use fstream_e2e::{
        generated_flv,
        rtmp_client::{send_flv_tags_paced, RtmpClient},
        video_frames_in,
    };
    let old = old_plugins("a1e6d79");
    let new = bin("fstream-host").parent().unwrap().to_path_buf();
    let dir = mixed_plugins(
        "compat-record",
        &[
            ("auth-ini", &new),
            ("rtmp", &old),
            ("rtmp-app", &new),
            ("flv-recorder", &new),
        ],
    );
    let root = Root::new(
        "compat-record",
        &["auth-ini", "rtmp", "rtmp-app", "flv-recorder"],
    );
    root.user("fier", "123");
    root.write("users/ann.ini", "[DEFAULT]\npassword=456\nrecord = yes\n");
    let plugin_dir = dir.path().to_string_lossy().to_string();
    let host = Host::start(&root, &["rtmp"], &["--plugin-dir", &plugin_dir]);
    let (check, ok) = check_table(&root, &plugin_dir);
    assert!(ok, "{check}");
    assert!(
        check
            .lines()
            .any(|l| l.contains("rtmp ") && l.contains("v2.2")),
        "{check}"
    );
    let flv = generated_flv(root.path(), 2);
    let addr = host.addr("rtmp");
    for (app, password) in [("fier", "123"), ("ann", "456")] {
        let mut c = RtmpClient::new(addr);
        assert_eq!(c.connect(app).name, "_result");
        let msid = c.create_stream(2.0);
        let statuses = c.publish_typed(
            msid,
            &format!("cam?user_password={password}"),
            "record",
            Duration::from_millis(300),
        );
        assert_eq!(statuses[0].1, "NetStream.Publish.Start", "{statuses:?}");
        assert_eq!(send_flv_tags_paced(&mut c, msid, &flv), 50);
        drop(c);
        thread::sleep(Duration::from_millis(300));
    }
    let deadline = Instant::now() + WAIT;
    while !host.log().contains("recording finished") {
        assert!(Instant::now() < deadline, "{}", host.log());
        thread::sleep(Duration::from_millis(50));
    }
    let files = |app: &str| -> Vec<PathBuf> {
        std::fs::read_dir(root.path().join("recordings").join(app))
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    assert!(
        files("fier").is_empty(),
        "recorded for a user who may not: {:?}\n{}",
        files("fier"),
        host.log()
    );
    assert!(host
        .log()
        .contains("the app handler refused the recording; publishing live"));
    let ann = files("ann");
    assert_eq!(ann.len(), 1, "{ann:?}");
    assert!(video_frames_in(&ann[0]) >= 45, "{ann:?}");
}
