//! Several plugins on one HTTP listener, by path (interface v2.2 HTTP handlers), with curl as
//! the client: `http-hello` (the example) serves `/hello`, `test-http` serves `/t` and
//! misbehaves there (a panic, a handler slower than the host's timeout, a large answer, odd
//! statuses), and claims prefixes the host refuses. Throughout, an ffmpeg HTTP-FLV viewer of an
//! RTMP stream keeps decoding and the `http` plugin's own paths answer; a reload that drops
//! `test-http` gives its paths back to the `http` plugin.

use std::{process::Command, time::Duration};

use fstream_e2e::{background, ffmpeg_publish, run_with_timeout, Host, Root};

const PLUGINS: &[&str] = &[
    "auth-ini",
    "rtmp",
    "rtmp-app",
    "http",
    "http-hello",
    "test-http",
];

/// curl's answers to `urls`, one connection: (status, content type, body) each.
fn curl(args: &[&str], urls: &[String]) -> Vec<(u16, String, Vec<u8>)> {
    let dir = fstream_e2e::TempDir::new("curl");
    let mut c = Command::new("curl");
    c.args(["-s", "--max-time", "20"]).args(args);
    let mut files = Vec::new();
    for (i, u) in urls.iter().enumerate() {
        let f = dir.0.join(format!("body{i}"));
        c.args([
            "-o",
            f.to_str().unwrap(),
            "-w",
            "%{http_code} %{content_type}\\n",
            u,
        ]);
        files.push(f);
    }
    let (st, out, err) = run_with_timeout(&mut c, Duration::from_secs(30));
    assert!(st.is_some(), "curl hung: {err}");
    let out = String::from_utf8_lossy(&out).into_owned();
    out.lines()
        .zip(files)
        .map(|(l, f)| {
            let (code, ty) = l.split_once(' ').unwrap_or((l, ""));
            (
                code.parse().unwrap_or(0),
                ty.to_string(),
                std::fs::read(f).unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn plugins_share_the_http_listener_by_path_and_a_bad_one_disturbs_nothing() {
    fstream_e2e::require(&["ffmpeg", "curl"]);
    let r = Root::new("http-handlers", PLUGINS);
    r.user("fier", "123");
    r.write("mods/host.toml", "app_timeout_ms = 1000\n");
    r.write("mods/http-hello.toml", "greeting = \"Hi there.\"\n");
    let host = Host::start(&r, &["rtmp", "http"], &[]);
    let (rtmp, http) = (host.addr("rtmp"), host.addr("http"));
    let url = |p: &str| format!("http://{http}{p}");
    let log = host.log();
    assert!(
        log.contains("an HTTP prefix another plugin serves already"),
        "{log}"
    );
    assert_eq!(
        log.matches("an HTTP handler's prefix is not a plain path")
            .count(),
        3,
        "{log}"
    );

    let publisher = background(
        ffmpeg_publish(&format!("rtmp://{rtmp}/fier/cam?user_password=123"), 25),
        Duration::from_secs(60),
    );
    assert!(host.wait_log("publishing stream=fier/cam", Duration::from_secs(20)));
    // A viewer of the http plugin's own HTTP-FLV for the whole test.
    let mut viewer = Command::new("ffmpeg");
    viewer
        .args(["-v", "error", "-i", &url("/fier/cam.flv"), "-t", "15"])
        .args(["-map", "0:v", "-f", "framecrc", "-"]);
    let viewer = background(viewer, Duration::from_secs(60));

    // The example answers its paths; the host tells it who asked.
    let got = curl(&[], &[url("/hello")]);
    assert_eq!(got[0].0, 200);
    assert_eq!(got[0].2, b"Hi there.\n");
    let got = curl(
        &["-X", "POST", "--data-binary", "abc", "-H", "X-Thing: yes"],
        &[url("/hello/echo?q=1")],
    );
    assert_eq!((got[0].0, got[0].1.as_str()), (200, "application/json"));
    let echo = String::from_utf8_lossy(&got[0].2).into_owned();
    for want in [
        "\"method\":\"POST\"",
        "\"query\":\"q=1\"",
        "\"body_bytes\":3",
        "\"x-thing\":\"yes\"",
        "\"listener\":\"http\"",
        "\"peer\":\"127.0.0.1:",
    ] {
        assert!(echo.contains(want), "{want} not in {echo}");
    }
    assert!(!echo.contains("\"connection\":0"), "{echo}");

    // A panic answers 500 to that request; the same connection goes on to the next.
    let got = curl(&[], &[url("/t/panic"), url("/hello"), url("/t/status/201")]);
    let codes: Vec<u16> = got.iter().map(|g| g.0).collect();
    assert_eq!(codes, [500, 200, 201]);
    assert!(host.wait_log("http handler failed", Duration::from_secs(5)));
    assert!(host.log().contains("panicked=true"));
    // Slower than app_timeout_ms: 504, promptly.
    let t = std::time::Instant::now();
    assert_eq!(curl(&[], &[url("/t/slow")])[0].0, 504);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // A large answer arrives whole; a status outside 200..=599 becomes 500.
    let got = curl(&[], &[url("/t/big"), url("/t/status/99")]);
    assert_eq!(got[0].2.len(), 1 << 20);
    assert!(got[0]
        .2
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
    assert_eq!(got[1].0, 500);
    // The http plugin's own paths are still its own; a traversal under a prefix is refused.
    let got = curl(&["--path-as-is"], &[url("/"), url("/t/%2e%2e/hello")]);
    assert_eq!(got[0].0, 200);
    assert!(String::from_utf8_lossy(&got[0].2).contains("fier/cam"));
    assert_eq!(got[1].0, 400);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while curl(&[], &[url("/fier/cam/index.m3u8")])[0].0 != 200 {
        assert!(std::time::Instant::now() < deadline, "no HLS playlist");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A reload without test-http: /t is the http plugin's again (a watch page), /hello stays.
    let kept: Vec<&str> = PLUGINS
        .iter()
        .copied()
        .filter(|p| *p != "test-http")
        .collect();
    r.write("mods/main.mods", &(kept.join("\n") + "\n"));
    host.signal(libc::SIGHUP);
    assert!(host.wait_log("configuration reloaded", Duration::from_secs(20)));
    let got = curl(&[], &[url("/t/status"), url("/hello")]);
    assert_eq!(got[0].0, 200);
    assert!(got[0].1.starts_with("text/html"), "{:?}", got[0].1);
    assert_eq!(got[1].2, b"Hi there.\n");

    let (st, out, err) = viewer.join().unwrap();
    let frames = String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    assert!(
        st.is_some_and(|s| s.success()) && frames >= 300,
        "the HTTP-FLV viewer decoded {frames} frames of 15 s: {err}"
    );
    publisher.join().unwrap();
}
