//! `auth-http` notifications and nginx-rtmp style renames, with a real HTTP backend: a server
//! on a thread of the test (requests parsed with httparse) that answers `/auth` (the
//! authentication calls) and `/events` (the notifications) by the test's rule, and records
//! every request with the time it arrived. Real clients (ffmpeg publishing and playing, ffprobe
//! reading a renamed stream, raw fstream broadcasters) drive the real binary.

use std::{
    collections::BTreeMap,
    io::Write,
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use fstream_e2e::{
    background, ffmpeg_publish, ffmpeg_video_frames, ffprobe_codecs, fstream_preamble,
    generated_flv,
    http_backend::{self, form_fields, read_request},
    Host, Root,
};

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "shared-with-the-backend";

// ---------------------------------------------------------------------------------------------
// The backend

/// One request as the backend got it.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    /// The JSON object's members (numbers as their text) or the form's fields, decoded.
    fields: BTreeMap<String, String>,
    /// For JSON bodies: the members that are numbers.
    numbers: Vec<String>,
    at: Instant,
}

impl Got {
    fn field(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }
    fn number(&self, k: &str) -> u64 {
        self.field(k)
            .parse()
            .unwrap_or_else(|_| panic!("{k} is no number in {:?}", self.fields))
    }
    /// `publish`, `play_done`, ...: the JSON `action` or the form's `call`.
    fn kind(&self) -> &str {
        match self.fields.get("action") {
            Some(a) => a,
            None => self.field("call"),
        }
    }
    /// `APP/NAME` in either style.
    fn stream(&self) -> String {
        match self
            .fields
            .get("path")
            .filter(|_| self.fields.contains_key("action"))
        {
            Some(p) => p.clone(),
            None => format!("{}/{}", self.field("app"), self.field("name")),
        }
    }
}

#[derive(Clone, Debug)]
enum Reply {
    Status(u16),
    /// Waits, then answers with the status.
    Slow(Duration, u16),
    /// A status with a `Location` header.
    Redirect(u16, String),
}

type Rule = Arc<dyn Fn(&Got) -> Reply + Send + Sync>;

struct Backend {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Backend {
    /// A backend on a free port.
    fn start(rule: impl Fn(&Got) -> Reply + Send + Sync + 'static) -> Backend {
        Backend::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), rule)
    }

    fn start_on(
        listener: TcpListener,
        rule: impl Fn(&Got) -> Reply + Send + Sync + 'static,
    ) -> Backend {
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let rule: Rule = Arc::new(rule);
        let (g, r) = (got.clone(), rule.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (g, r) = (g.clone(), r.clone());
                thread::spawn(move || serve(conn, g, r));
            }
        });
        Backend { addr, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The notifications (requests to `/events`) about `stream`, in the order they came.
    fn events(&self, stream: &str) -> Vec<Got> {
        self.got()
            .into_iter()
            .filter(|g| g.path == "/events" && g.stream() == stream)
            .collect()
    }

    fn kinds(&self, stream: &str) -> Vec<String> {
        self.events(stream)
            .iter()
            .map(|g| g.kind().to_string())
            .collect()
    }

    /// Waits until the notifications about `stream` are `kinds`, exactly.
    fn wait_kinds(&self, stream: &str, kinds: &[&str], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.kinds(stream) == kinds {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve(mut conn: TcpStream, got: Arc<Mutex<Vec<Got>>>, rule: Rule) {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut conn, &mut buf) {
        assert_eq!(req.method, "POST");
        let (path, headers, body) = (req.path, req.headers, req.body);
        let (fields, numbers) = match headers["content-type"].as_str() {
            "application/json" => {
                let v: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
                let mut fields = BTreeMap::new();
                let mut numbers = Vec::new();
                for (k, v) in v.as_object().expect("an object") {
                    let text = match v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => {
                            numbers.push(k.clone());
                            n.to_string()
                        }
                        other => panic!("{k} is {other}"),
                    };
                    fields.insert(k.clone(), text);
                }
                (fields, numbers)
            }
            "application/x-www-form-urlencoded" => (form_fields(&body), Vec::new()),
            other => panic!("unexpected Content-Type {other}"),
        };
        let g = Got {
            path,
            headers,
            body,
            fields,
            numbers,
            at: Instant::now(),
        };
        let reply = rule(&g);
        got.lock().unwrap().push(g);
        let (status, extra) = match reply {
            Reply::Status(s) => (s, String::new()),
            Reply::Slow(d, s) => {
                thread::sleep(d);
                (s, String::new())
            }
            Reply::Redirect(s, to) => (s, format!("Location: {to}\r\n")),
        };
        let answer = format!("HTTP/1.1 {status} X\r\n{extra}Content-Length: 2\r\n\r\nok");
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn signature(body: &[u8]) -> String {
    http_backend::signature(SECRET, body)
}

// ---------------------------------------------------------------------------------------------
// The host

/// A root with auth-http (asking `auth_url` about publishes, notifying `events_url`) before
/// auth-ini, and `extra` settings at the top of `mods/auth-http.toml`, `notify` in `[notify]`.
fn root(tag: &str, auth_url: &str, events_url: &str, extra: &str, notify: &str) -> Root {
    fstream_e2e::require(&["ffmpeg", "ffprobe"]);
    let r = Root::new(
        tag,
        &["auth-http", "auth-ini", "fstream", "rtmp", "rtmp-app"],
    );
    r.user("fier", "123");
    r.write("mods/rtmp.toml", "grace_ms = 300\n");
    r.write(
        "mods/auth-http.toml",
        &format!(
            "url = \"{auth_url}\"\nhmac_secret = \"{SECRET}\"\n{extra}\n[notify]\nurl = \"{events_url}\"\n{notify}\n"
        ),
    );
    r
}

fn start(root: &Root) -> Host {
    Host::start(root, &["fstream", "rtmp"], &[])
}

/// ffmpeg publishing `fier/NAME` with the password and a query argument for `secs` seconds,
/// in the background.
fn publish(host: &Host, name: &str, secs: u32) -> thread::JoinHandle<fstream_e2e::Outcome> {
    let url = format!(
        "rtmp://{}/fier/{name}?user_password=123&room=5",
        host.addr("rtmp")
    );
    background(ffmpeg_publish(&url, secs), Duration::from_secs(60))
}

fn published(host: &Host, stream: &str) {
    assert!(
        host.wait_log(&format!("publishing stream={stream}"), WAIT),
        "{stream} was not published; log:\n{}",
        host.log()
    );
}

// ---------------------------------------------------------------------------------------------
// The cases

#[test]
fn publish_play_and_their_ends_reach_the_backend_in_order_with_their_fields_signed() {
    let backend = Backend::start(|_| Reply::Status(200));
    let root = root(
        "notify-order",
        &backend.url("/auth"),
        &backend.url("/events"),
        "",
        "",
    );
    let host = start(&root);
    let publisher = publish(&host, "cam", 8);
    published(&host, "fier/cam");
    // A viewer for three seconds of media, well before the publisher stops.
    let url = format!("rtmp://{}/fier/cam", host.addr("rtmp"));
    let (frames, _) = ffmpeg_video_frames(&url, &[], 3.0);
    assert!(frames >= 50, "{frames} frames");
    assert!(
        backend.wait_kinds("fier/cam", &["publish", "play", "play_done"], WAIT),
        "{:?}",
        backend.kinds("fier/cam")
    );
    let (status, _, err) = publisher.join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "publisher: {err}");
    assert!(
        backend.wait_kinds(
            "fier/cam",
            &["publish", "play", "play_done", "publish_done"],
            WAIT
        ),
        "{:?}",
        backend.kinds("fier/cam")
    );

    let ev = backend.events("fier/cam");
    let (pub_start, play, play_done, pub_done) = (&ev[0], &ev[1], &ev[2], &ev[3]);
    for g in &ev {
        assert_eq!(g.headers["content-type"], "application/json");
        assert_eq!(
            g.headers["x-fstream-signature"],
            signature(&g.body),
            "{g:?}"
        );
        for (k, v) in [
            ("protocol", "rtmp"),
            ("app", "fier"),
            ("stream", "cam"),
            ("path", "fier/cam"),
            ("ip", "127.0.0.1"),
            ("file", ""),
        ] {
            assert_eq!(g.field(k), v, "{k} in {:?}", g.fields);
        }
        assert!(g.field("client_addr").starts_with("127.0.0.1:"), "{g:?}");
        assert!(g.number("unix_ms") > 1_600_000_000_000, "{g:?}");
        let mut numbers = g.numbers.clone();
        numbers.sort();
        assert_eq!(numbers, ["bytes", "duration_ms", "unix_ms"], "{g:?}");
        // The password never travels in a notification.
        let text = String::from_utf8_lossy(&g.body);
        assert!(
            !text.contains("user_password") && !text.contains("\"123\""),
            "{text}"
        );
    }
    for g in [pub_start, pub_done] {
        assert_eq!(g.field("user"), "fier", "{g:?}");
        assert_eq!(g.field("query"), "room=5", "{g:?}");
    }
    // One connection publishes, another plays.
    assert_eq!(pub_start.field("conn_id"), pub_done.field("conn_id"));
    assert_eq!(play.field("conn_id"), play_done.field("conn_id"));
    assert_ne!(pub_start.field("conn_id"), play.field("conn_id"));
    assert!(play.field("conn_id").parse::<u64>().is_ok());
    // The start kinds carry no totals; the ends do.
    for g in [pub_start, play] {
        assert_eq!(
            (g.number("bytes"), g.number("duration_ms")),
            (0, 0),
            "{g:?}"
        );
    }
    let (in_bytes, in_ms) = (pub_done.number("bytes"), pub_done.number("duration_ms"));
    let (out_bytes, out_ms) = (play_done.number("bytes"), play_done.number("duration_ms"));
    eprintln!(
        "publish_done: {in_bytes} bytes in {in_ms} ms; play_done: {out_bytes} bytes in {out_ms} ms"
    );
    assert!(in_bytes > 50_000, "{pub_done:?}");
    assert!((6_000..20_000).contains(&in_ms), "{pub_done:?}");
    assert!(out_bytes > 20_000, "{play_done:?}");
    assert!((1_000..in_ms).contains(&out_ms), "{play_done:?}");
    // The authentication call was signed too, and came before the first notification.
    let auth: Vec<_> = backend
        .got()
        .into_iter()
        .filter(|g| g.path == "/auth")
        .collect();
    assert_eq!(auth.len(), 1, "{auth:?}");
    assert_eq!(
        auth[0].headers["x-fstream-signature"],
        signature(&auth[0].body)
    );
    assert!(auth[0].at <= pub_start.at);
}

#[test]
fn a_publisher_that_leaves_and_returns_gives_two_pairs_in_the_nginx_form() {
    let backend = Backend::start(|_| Reply::Status(200));
    let root = root(
        "notify-twice",
        &backend.url("/auth"),
        &backend.url("/events"),
        "style = \"nginx\"\n",
        "",
    );
    let host = start(&root);
    for round in 1..=2 {
        let (status, _, err) = publish(&host, "cam", 3).join().unwrap();
        assert!(status.is_some_and(|s| s.success()), "round {round}: {err}");
        let want: Vec<&str> = ["publish", "publish_done"]
            .iter()
            .copied()
            .cycle()
            .take(2 * round)
            .collect();
        assert!(
            backend.wait_kinds("fier/cam", &want, WAIT),
            "round {round}: {:?}",
            backend.kinds("fier/cam")
        );
    }
    let ev = backend.events("fier/cam");
    for g in &ev {
        assert_eq!(
            g.headers["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(g.headers["x-fstream-signature"], signature(&g.body));
        for (k, v) in [
            ("app", "fier"),
            ("name", "cam"),
            ("addr", "127.0.0.1"),
            ("room", "5"),
            ("user", "fier"),
        ] {
            assert_eq!(g.field(k), v, "{k} in {:?}", g.fields);
        }
        assert!(!g.fields.contains_key("user_password") && !g.fields.contains_key("password"));
    }
    // Each pair is one connection; the two connections differ.
    assert_eq!(ev[0].field("clientid"), ev[1].field("clientid"));
    assert_eq!(ev[2].field("clientid"), ev[3].field("clientid"));
    assert_ne!(ev[0].field("clientid"), ev[2].field("clientid"));
    for done in [&ev[1], &ev[3]] {
        assert!(done.number("bytes") > 20_000, "{done:?}");
        assert!(done.number("duration_ms") >= 2_000, "{done:?}");
    }
}

#[test]
fn a_notice_for_a_backend_that_is_down_is_retried_until_it_is_up() {
    let auth = Backend::start(|_| Reply::Status(200));
    // A port with nothing behind it (for now).
    let spare = TcpListener::bind("127.0.0.1:0").unwrap();
    let events_addr = spare.local_addr().unwrap();
    drop(spare);
    let root = root(
        "notify-down",
        &auth.url("/auth"),
        &format!("http://{events_addr}/events"),
        "",
        "retry_ms = 200\nmax_retry_ms = 800\nmax_attempts = 20\ntimeout_ms = 1000\n",
    );
    let host = start(&root);
    let started = Instant::now();
    let publisher = publish(&host, "cam", 6);
    published(&host, "fier/cam");
    let publish_took = started.elapsed();
    assert!(
        host.wait_log("a notice failed; retrying", WAIT),
        "{}",
        host.log()
    );
    // A viewer gets the stream meanwhile.
    let url = format!("rtmp://{}/fier/cam", host.addr("rtmp"));
    let (frames, _) = ffmpeg_video_frames(&url, &[], 1.0);
    assert!(frames >= 20, "{frames} frames while the backend is down");
    let retries_while_down = host.log().matches("a notice failed; retrying").count();
    // Up again, on the same port.
    let up_at = Instant::now();
    let events = Backend::start_on(TcpListener::bind(events_addr).unwrap(), |_| {
        Reply::Status(200)
    });
    assert!(
        events.wait_kinds("fier/cam", &["publish", "play", "play_done"], WAIT),
        "{:?}\n{}",
        events.kinds("fier/cam"),
        host.log()
    );
    let first = events.events("fier/cam")[0].at - up_at;
    let (status, _, err) = publisher.join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "publisher: {err}");
    assert!(
        events.wait_kinds(
            "fier/cam",
            &["publish", "play", "play_done", "publish_done"],
            WAIT
        ),
        "{:?}",
        events.kinds("fier/cam")
    );
    eprintln!(
        "publish took {publish_took:?}; {retries_while_down} retries while down; first delivery {first:?} after the backend came up"
    );
    // The wait between retries is at most max_retry_ms.
    assert!(first < Duration::from_millis(2_500), "{first:?}");
    assert!(publish_took < Duration::from_secs(10), "{publish_took:?}");
    assert!(!host.log().contains("given up"), "{}", host.log());
}

#[test]
fn a_slow_notification_backend_never_delays_the_media() {
    let backend = Backend::start(|g| {
        if g.path == "/events" {
            Reply::Slow(Duration::from_secs(4), 200)
        } else {
            Reply::Status(200)
        }
    });
    let root = root(
        "notify-slow",
        &backend.url("/auth"),
        &backend.url("/events"),
        "",
        "timeout_ms = 10000\n",
    );
    let host = start(&root);
    let started = Instant::now();
    let publisher = publish(&host, "cam", 10);
    published(&host, "fier/cam");
    let publishing_after = started.elapsed();
    // While the backend sits on the first notice, a viewer plays.
    let url = format!("rtmp://{}/fier/cam", host.addr("rtmp"));
    let play_started = Instant::now();
    let (frames, err) = ffmpeg_video_frames(&url, &[], 2.0);
    let play_took = play_started.elapsed();
    // Nothing was answered yet when the viewer had its frames.
    let answered_before = backend
        .events("fier/cam")
        .iter()
        .filter(|g| g.at + Duration::from_secs(4) <= Instant::now())
        .count();
    eprintln!(
        "publishing after {publishing_after:?}; viewer decoded {frames} frames in {play_took:?}; \
         notices answered by then: {answered_before}"
    );
    assert!(frames >= 40, "{frames} frames: {err}");
    assert!(play_took < Duration::from_secs(4), "{play_took:?}");
    assert!(
        publishing_after < Duration::from_secs(4),
        "{publishing_after:?}"
    );
    let (status, _, err) = publisher.join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "publisher: {err}");
    // All four arrive, late, in order.
    assert!(
        backend.wait_kinds(
            "fier/cam",
            &["publish", "play", "play_done", "publish_done"],
            Duration::from_secs(40)
        ),
        "{:?}",
        backend.kinds("fier/cam")
    );
}

#[test]
fn a_3xx_with_location_renames_rtmp_and_fstream_publishers() {
    let backend = Backend::start(
        |g| match (g.path.as_str(), g.field("call"), g.field("name")) {
            ("/auth", "publish", "cam") => {
                Reply::Redirect(302, "rtmp://elsewhere.example/fier/renamed".into())
            }
            // Relative, so ureq could follow it to this backend: it must not.
            ("/auth", "publish", "fcam") => Reply::Redirect(301, "/followed/frenamed".into()),
            ("/auth", "publish", "bad") => {
                Reply::Redirect(302, "rtmp://elsewhere.example/fier/..".into())
            }
            _ => Reply::Status(200),
        },
    );
    let root = root(
        "notify-rename",
        &backend.url("/auth"),
        &backend.url("/events"),
        "style = \"nginx\"\n",
        "events = [\"publish\"]\n",
    );
    let host = start(&root);
    let rtmp = host.addr("rtmp");

    // RTMP: ffmpeg publishes fier/cam, which goes live as fier/renamed.
    let publisher = publish(&host, "cam", 8);
    published(&host, "fier/renamed");
    let codecs = ffprobe_codecs(&format!("rtmp://{rtmp}/fier/renamed"));
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{codecs}"
    );
    let (frames, _) = ffmpeg_video_frames(&format!("rtmp://{rtmp}/fier/renamed"), &[], 2.0);
    assert!(frames >= 40, "{frames} frames of fier/renamed");
    assert!(
        !host.log().contains("publishing stream=fier/cam"),
        "{}",
        host.log()
    );
    let (status, _, err) = publisher.join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "publisher: {err}");
    // The notification names the new stream.
    assert!(backend.wait_kinds("fier/renamed", &["publish"], WAIT));

    // fstream: a broadcast of fier/fcam (an FLV file, paced) goes live as fier/frenamed.
    let flv = generated_flv(root.path(), 8);
    let fstream = host.addr("fstream");
    let sender = thread::spawn(move || {
        let mut b = TcpStream::connect(fstream).unwrap();
        b.write_all(&fstream_preamble(
            "broadcast,user=fier,user_password=123,channel=fcam",
        ))
        .unwrap();
        // About real time: 8 s of media in 80 pieces.
        for piece in flv.chunks(flv.len() / 80 + 1) {
            if b.write_all(piece).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    published(&host, "fier/frenamed");
    let codecs = ffprobe_codecs(&format!("rtmp://{rtmp}/fier/frenamed"));
    assert!(codecs.contains("h264"), "{codecs}");
    let (frames, _) = ffmpeg_video_frames(&format!("rtmp://{rtmp}/fier/frenamed"), &[], 2.0);
    assert!(frames >= 40, "{frames} frames of fier/frenamed");
    assert!(
        !host.log().contains("publishing stream=fier/fcam"),
        "{}",
        host.log()
    );
    sender.join().unwrap();
    assert!(backend.wait_kinds("fier/frenamed", &["publish"], WAIT));

    // Neither redirect was followed.
    assert!(
        backend
            .got()
            .iter()
            .all(|g| !g.path.starts_with("/followed")),
        "{:?}",
        backend.got()
    );

    // A Location that names no valid stream: on_error (deny) answers, nothing goes live.
    let (status, _, _) = publish(&host, "bad", 3).join().unwrap();
    assert!(
        !status.is_some_and(|s| s.success()),
        "a bad rename was published"
    );
    assert!(host.wait_log("no usable Location", WAIT), "{}", host.log());
    assert!(!host.log().contains("publishing stream=fier/bad"));
}

#[test]
fn a_finished_recording_is_notified_with_its_file() {
    let backend = Backend::start(|_| Reply::Status(200));
    fstream_e2e::require(&["ffmpeg", "ffprobe"]);
    let root = Root::new(
        "notify-record",
        &[
            "auth-http",
            "auth-ini",
            "fstream",
            "rtmp",
            "rtmp-app",
            "flv-recorder",
        ],
    );
    root.user("fier", "123");
    root.write("mods/rtmp.toml", "grace_ms = 300\n");
    root.write("mods/flv-recorder.toml", "record = [\"fier/*\"]\n");
    root.write(
        "mods/auth-http.toml",
        &format!(
            "url = \"{}\"\nhmac_secret = \"{SECRET}\"\n[notify]\non_record_done = \"{}\"\n",
            backend.url("/auth"),
            backend.url("/events")
        ),
    );
    let host = start(&root);
    let (status, _, err) = publish(&host, "cam", 4).join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "publisher: {err}");
    // Only record_done has a URL here.
    assert!(
        backend.wait_kinds("fier/cam", &["record_done"], WAIT),
        "{:?}\n{}",
        backend.kinds("fier/cam"),
        host.log()
    );
    let g = &backend.events("fier/cam")[0];
    assert_eq!(g.headers["x-fstream-signature"], signature(&g.body));
    let file = g.field("file");
    assert!(
        file.starts_with("recordings/fier/cam") && file.ends_with(".flv"),
        "{g:?}"
    );
    let path = root.path().join(file);
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(g.number("bytes"), size, "{g:?}");
    assert!((3_000..6_000).contains(&g.number("duration_ms")), "{g:?}");
    assert_eq!((g.field("protocol"), g.field("conn_id")), ("rtmp", ""));
    assert_eq!(g.field("query"), "room=5");
    assert!(
        fstream_e2e::video_frames_in(&path) >= 75,
        "{}",
        path.display()
    );
}

#[test]
fn with_play_auth_a_3xx_renames_an_rtmp_play_and_a_403_refuses_it() {
    let backend = Backend::start(
        |g| match (g.path.as_str(), g.field("call"), g.field("name")) {
            ("/auth", "play", "alias") => Reply::Redirect(302, "cam".into()),
            ("/auth", "play", "secret") => Reply::Status(403),
            _ => Reply::Status(200),
        },
    );
    let root = root(
        "notify-play-rename",
        &backend.url("/auth"),
        &backend.url("/events"),
        "style = \"nginx\"\n",
        "events = [\"play\", \"play_done\"]\n",
    );
    root.write("mods/rtmp-app.toml", "play_auth = true\n");
    let host = start(&root);
    let rtmp = host.addr("rtmp");
    let publisher = publish(&host, "cam", 8);
    published(&host, "fier/cam");
    // fier/alias plays fier/cam.
    let codecs = ffprobe_codecs(&format!("rtmp://{rtmp}/fier/alias"));
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{codecs}"
    );
    let (frames, _) = ffmpeg_video_frames(&format!("rtmp://{rtmp}/fier/alias"), &[], 2.0);
    assert!(frames >= 40, "{frames} frames through fier/alias");
    // fier/secret is refused.
    let (status, _, _) = fstream_e2e::run_with_timeout(
        std::process::Command::new("ffprobe")
            .args(["-v", "error", "-rw_timeout", "10000000"])
            .arg(format!("rtmp://{rtmp}/fier/secret")),
        Duration::from_secs(20),
    );
    assert!(
        !status.is_some_and(|s| s.success()),
        "a refused play played"
    );
    let asked: Vec<_> = backend
        .got()
        .into_iter()
        .filter(|g| g.path == "/auth" && g.field("call") == "play")
        .map(|g| g.field("name").to_string())
        .collect();
    assert!(
        asked.contains(&"alias".to_string()) && asked.contains(&"secret".to_string()),
        "{asked:?}"
    );
    // The viewers' notices name the stream they watched.
    assert!(
        backend.wait_kinds(
            "fier/cam",
            &["play", "play_done", "play", "play_done"],
            WAIT
        ),
        "{:?}",
        backend.kinds("fier/cam")
    );
    assert!(backend.events("fier/alias").is_empty());
    let (status, _, err) = publisher.join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "publisher: {err}");
}

#[test]
fn notices_still_retrying_do_not_hold_up_a_shutdown() {
    let auth = Backend::start(|_| Reply::Status(200));
    let spare = TcpListener::bind("127.0.0.1:0").unwrap();
    let events_addr = spare.local_addr().unwrap();
    drop(spare);
    let root = root(
        "notify-shutdown",
        &auth.url("/auth"),
        &format!("http://{events_addr}/events"),
        "",
        "retry_ms = 5000\nmax_retry_ms = 60000\nmax_attempts = 20\n",
    );
    let mut host = start(&root);
    let (status, _, err) = publish(&host, "cam", 2).join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "publisher: {err}");
    assert!(
        host.wait_log("a notice failed; retrying", WAIT),
        "{}",
        host.log()
    );
    let asked = Instant::now();
    host.signal(libc::SIGTERM);
    let exit = host.wait_exit(Duration::from_secs(10));
    eprintln!("exited {exit:?} {:?} after SIGTERM", asked.elapsed());
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}\n{}",
        host.log()
    );
}
