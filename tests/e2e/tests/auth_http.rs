//! `auth-http` with a real HTTP backend: a server inside the test (a listener on a thread,
//! requests parsed with httparse) that answers by a rule each test sets and records every
//! request, so each test checks what fstream-host sent (JSON fields, form fields, the
//! signature). Every case runs while another RTMP stream, allowed by the backend, keeps
//! flowing to an ffmpeg viewer that decodes its frames.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Child, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use fstream_e2e::{
    background, decoded_frames, ffmpeg_play, ffmpeg_publish, fstream_preamble,
    http_backend::{form_fields, read_request, signature},
    rtmp_client::RtmpClient,
    Host, LiveFlow, Root,
};

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "backend-shared-key";

// ---------------------------------------------------------------------------------------------
// The backend

/// One request as the backend got it.
#[derive(Debug, Clone)]
struct Got {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    /// The body's fields: the JSON object's, or the form's (decoded).
    fields: BTreeMap<String, String>,
}

impl Got {
    fn field(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }
    /// `APP/STREAM` in either style.
    fn stream_path(&self) -> String {
        match self.fields.get("path") {
            Some(p) => p.clone(),
            None => format!("{}/{}", self.field("app"), self.field("name")),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// Waits, then answers with the status.
    Slow(Duration, u16),
    /// Bytes that are not HTTP, then the connection closes.
    Garbage,
}

type Rule = Arc<dyn Fn(&Got) -> Reply + Send + Sync>;

struct Backend {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
    /// Requests being answered now, and the most at once.
    busy: Arc<AtomicUsize>,
    most_busy: Arc<AtomicUsize>,
}

impl Backend {
    /// A backend that allows the flowing stream (`fier/other`) and answers the rest by `rule`.
    fn start(rule: impl Fn(&Got) -> Reply + Send + Sync + 'static) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let rule: Rule = Arc::new(rule);
        let busy = Arc::new(AtomicUsize::new(0));
        let most_busy = Arc::new(AtomicUsize::new(0));
        let (g, r, b, m) = (got.clone(), rule.clone(), busy.clone(), most_busy.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (g, r, b, m) = (g.clone(), r.clone(), b.clone(), m.clone());
                thread::spawn(move || serve(conn, g, r, b, m));
            }
        });
        Backend {
            addr,
            got,
            busy,
            most_busy,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/auth/check", self.addr)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The requests about `path` (`fier/cam`).
    fn about(&self, path: &str) -> Vec<Got> {
        self.got()
            .into_iter()
            .filter(|g| g.stream_path() == path)
            .collect()
    }
}

fn serve(
    mut conn: TcpStream,
    got: Arc<Mutex<Vec<Got>>>,
    rule: Rule,
    busy: Arc<AtomicUsize>,
    most_busy: Arc<AtomicUsize>,
) {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut conn, &mut buf) {
        let (method, path, headers, body) = (req.method, req.path, req.headers, req.body);
        let fields = match headers.get("content-type").map(String::as_str) {
            Some("application/json") => {
                let v: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
                v.as_object()
                    .expect("a JSON object")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("string fields").to_string()))
                    .collect()
            }
            Some("application/x-www-form-urlencoded") => form_fields(&body),
            other => panic!("unexpected Content-Type {other:?}"),
        };
        let g = Got {
            method,
            path,
            headers,
            body,
            fields,
        };
        let reply = if g.stream_path() == "fier/other" {
            Reply::Status(200)
        } else {
            rule(&g)
        };
        got.lock().unwrap().push(g);
        let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
        most_busy.fetch_max(now, Ordering::SeqCst);
        let status = match reply {
            Reply::Status(s) => s,
            Reply::Slow(d, s) => {
                thread::sleep(d);
                s
            }
            Reply::Garbage => {
                busy.fetch_sub(1, Ordering::SeqCst);
                let _ = conn.write_all(b"\x00\x01 certainly not HTTP\r\n\r\n");
                return;
            }
        };
        busy.fetch_sub(1, Ordering::SeqCst);
        let answer = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: 2\r\n\r\nok");
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn signed(body: &[u8]) -> String {
    signature(SECRET, body)
}

// ---------------------------------------------------------------------------------------------
// The host and the stream that keeps flowing

/// A root with auth-http asked first (before auth-ini, as the README says), and `settings`
/// after the backend's URL in `mods/auth-http.toml`.
fn root(tag: &str, url: &str, settings: &str) -> Root {
    fstream_e2e::require(&["ffmpeg"]);
    let r = Root::new(
        tag,
        &["auth-http", "auth-ini", "fstream", "rtmp", "rtmp-app"],
    );
    // auth-ini knows fier: a publish the backend refuses must stay refused anyway.
    r.user("fier", "123");
    r.write("mods/rtmp.toml", "grace_ms = 300\n");
    r.write(
        "mods/auth-http.toml",
        &format!("url = \"{url}\"\n{settings}"),
    );
    r
}

fn start(root: &Root) -> Host {
    Host::start(root, &["fstream", "rtmp"], &[])
}

/// `fier/other`: an ffmpeg publisher the backend allows and an ffmpeg viewer decoding it,
/// whose frames are counted as they come.
struct Flow {
    publisher: Child,
    player: Child,
    frames: Arc<AtomicUsize>,
}

impl Flow {
    fn start(host: &Host) -> Flow {
        let addr = host.addr("rtmp");
        let mut publish =
            ffmpeg_publish(&format!("rtmp://{addr}/fier/other?user_password=123"), 120);
        let publisher = publish
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            host.wait_log("publishing stream=fier/other", WAIT),
            "the flowing stream was not published; log:\n{}",
            host.log()
        );
        let mut player = ffmpeg_play(&format!("rtmp://{addr}/fier/other"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = player.stdout.take().unwrap();
        let frames = Arc::new(AtomicUsize::new(0));
        let f = frames.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if !line.starts_with('#') && !line.trim().is_empty() {
                    f.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let flow = Flow {
            publisher,
            player,
            frames,
        };
        assert!(flow.advances(25, WAIT), "the viewer decodes no frames");
        flow
    }

    fn frames(&self) -> usize {
        self.frames.load(Ordering::Relaxed)
    }

    /// Whether at least `more` further frames are decoded within `timeout`.
    fn advances(&self, more: usize, timeout: Duration) -> bool {
        let start = self.frames();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.frames() >= start + more {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        for c in [&mut self.player, &mut self.publisher] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// ffmpeg publishing `fier/cam` with a password and a query argument of its own, for `secs`;
/// its exit status and how long it ran.
fn publish_cam(host: &Host, secs: u32) -> (bool, Duration, String) {
    let url = format!(
        "rtmp://{}/fier/cam?user_password=123&room=5",
        host.addr("rtmp")
    );
    let started = Instant::now();
    let (status, _, err) = background(ffmpeg_publish(&url, secs), Duration::from_secs(40))
        .join()
        .unwrap();
    (status.is_some_and(|s| s.success()), started.elapsed(), err)
}

/// The refusal of `fier/cam` (ffmpeg fails, the host never publishes it), quickly.
fn assert_refused(host: &Host, within: Duration) {
    let (ok, took, err) = publish_cam(host, 5);
    assert!(!ok, "ffmpeg published; it said: {err}");
    assert!(took < within, "refused after {took:?}");
    assert!(
        !host.log().contains("publishing stream=fier/cam"),
        "{}",
        host.log()
    );
}

/// The JSON request for `fier/cam` as fstream-host must send it.
fn check_json_publish(g: &Got) {
    assert_eq!(
        (g.method.as_str(), g.path.as_str()),
        ("POST", "/auth/check")
    );
    assert_eq!(g.headers["content-type"], "application/json");
    for (k, v) in [
        ("action", "publish"),
        ("protocol", "rtmp"),
        ("app", "fier"),
        ("stream", "cam"),
        ("path", "fier/cam"),
        ("user", "fier"),
        ("password", "123"),
        ("token", ""),
        ("query", "room=5"),
        ("ip", "127.0.0.1"),
    ] {
        assert_eq!(g.field(k), v, "{k} in {:?}", g.fields);
    }
    assert!(g.field("client_addr").starts_with("127.0.0.1:"), "{g:?}");
    assert!(g.field("conn_id").parse::<u64>().is_ok(), "{g:?}");
    assert_eq!(g.fields.len(), 12, "{:?}", g.fields);
}

// ---------------------------------------------------------------------------------------------
// The cases

#[test]
fn an_allowed_publish_plays_and_every_call_is_signed_json() {
    let backend = Backend::start(|_| Reply::Status(200));
    let root = root(
        "authhttp-allow",
        &backend.url(),
        &format!("hmac_secret = \"{SECRET}\"\n"),
    );
    let host = start(&root);
    let flow = Flow::start(&host);

    let addr = host.addr("rtmp");
    let publisher = background(
        ffmpeg_publish(
            &format!("rtmp://{addr}/fier/cam?user_password=123&room=5"),
            6,
        ),
        Duration::from_secs(40),
    );
    assert!(
        host.wait_log("publishing stream=fier/cam", WAIT),
        "{}",
        host.log()
    );
    let (_, out, err) = background(
        ffmpeg_play(&format!("rtmp://{addr}/fier/cam")),
        Duration::from_secs(30),
    )
    .join()
    .unwrap();
    let frames = decoded_frames(&out);
    assert!(frames >= 50, "{frames} frames decoded: {err}");
    let (status, _, err) = publisher.join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "publisher: {err}");

    let cam = backend.about("fier/cam");
    assert_eq!(cam.len(), 1, "{cam:?}");
    check_json_publish(&cam[0]);
    for g in backend.got() {
        assert_eq!(g.headers["x-fstream-signature"], signed(&g.body), "{g:?}");
    }
    assert!(flow.advances(25, WAIT), "the other stream stopped");
}

#[test]
fn a_403_refuses_the_publish_even_for_a_user_auth_ini_knows() {
    let backend = Backend::start(|_| Reply::Status(403));
    let root = root("authhttp-deny", &backend.url(), "");
    let host = start(&root);
    let flow = Flow::start(&host);

    assert_refused(&host, Duration::from_secs(5));
    let cam = backend.about("fier/cam");
    assert_eq!(cam.len(), 1, "{cam:?}");
    check_json_publish(&cam[0]);
    // No secret set, no signature.
    assert!(!cam[0].headers.contains_key("x-fstream-signature"));
    assert!(
        host.wait_log("auth-http: backend answered 403", WAIT),
        "{}",
        host.log()
    );
    assert!(flow.advances(25, WAIT), "the other stream stopped");
}

#[test]
fn a_slow_backend_meets_on_error_deny_promptly() {
    let backend = Backend::start(|_| Reply::Slow(Duration::from_secs(4), 200));
    let root = root("authhttp-slow-deny", &backend.url(), "timeout_ms = 500\n");
    let host = start(&root);
    let flow = Flow::start(&host);

    // Refused after the 500 ms timeout, well before the backend's 4 s answer.
    assert_refused(&host, Duration::from_millis(3500));
    assert_eq!(backend.about("fier/cam").len(), 1);
    assert!(host.wait_log("backend gave no answer", WAIT));
    assert!(host.log().contains("within 500 ms"), "{}", host.log());
    assert!(flow.advances(25, WAIT), "the other stream stopped");
}

#[test]
fn a_slow_backend_with_on_error_allow_lets_the_publish_through() {
    let backend = Backend::start(|_| Reply::Slow(Duration::from_secs(4), 403));
    let root = root(
        "authhttp-slow-allow",
        &backend.url(),
        "timeout_ms = 500\non_error = \"allow\"\n",
    );
    let host = start(&root);
    let flow = Flow::start(&host);

    let (ok, took, err) = publish_cam(&host, 2);
    assert!(ok, "ffmpeg failed: {err}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(host.log().contains("publishing stream=fier/cam"));
    assert!(host.log().contains("applying on_error"));
    assert!(flow.advances(25, WAIT), "the other stream stopped");
}

#[test]
fn a_backend_that_is_down_refuses() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    // The flowing stream is allowed by a live backend; then the URL moves to the closed port
    // (SIGHUP: the plugin's init runs again with the new settings).
    let backend = Backend::start(|_| Reply::Status(200));
    let root = root("authhttp-down", &backend.url(), "");
    let host = start(&root);
    let flow = Flow::start(&host);
    root.write(
        "mods/auth-http.toml",
        &format!("url = \"http://127.0.0.1:{port}/auth\"\n"),
    );
    host.signal(libc::SIGHUP);
    assert!(
        host.wait_log(&format!("url=http://127.0.0.1:{port}/auth"), WAIT),
        "{}",
        host.log()
    );

    assert_refused(&host, Duration::from_secs(5));
    assert!(backend.about("fier/cam").is_empty());
    assert!(
        host.wait_log("cannot reach", WAIT),
        "the warning names the failure: {}",
        host.log()
    );
    assert!(flow.advances(25, WAIT), "the other stream stopped");
}

#[test]
fn a_500_or_garbage_answer_meets_on_error() {
    let garbage = Arc::new(AtomicUsize::new(0));
    let g = garbage.clone();
    let backend = Backend::start(move |_| {
        if g.load(Ordering::SeqCst) == 0 {
            Reply::Status(500)
        } else {
            Reply::Garbage
        }
    });
    let root = root("authhttp-bad", &backend.url(), "");
    let host = start(&root);
    let flow = Flow::start(&host);

    assert_refused(&host, Duration::from_secs(5));
    assert!(host.wait_log("error=status 500", WAIT), "{}", host.log());
    garbage.store(1, Ordering::SeqCst);
    assert_refused(&host, Duration::from_secs(5));
    assert_eq!(backend.about("fier/cam").len(), 2);
    assert!(host.wait_log("cannot reach", WAIT), "{}", host.log());
    assert!(flow.advances(25, WAIT), "the other stream stopped");
}

#[test]
fn a_flood_past_max_concurrent_is_refused_at_once_and_the_other_stream_flows() {
    let backend = Backend::start(|_| Reply::Slow(Duration::from_secs(3), 200));
    let root = root(
        "authhttp-flood",
        &backend.url(),
        "max_concurrent = 2\ntimeout_ms = 4000\n",
    );
    // The host's own bound on authenticator calls is one per core by default: raise it, so
    // that the plugin's bound is the one met.
    root.write(
        "mods/host.toml",
        "auth_timeout_ms = 8000\napp_timeout_ms = 8000\n[limits]\nauth_concurrency = 32\nmax_streams_per_user = 64\n",
    );
    let host = start(&root);
    let flow = Flow::start(&host);
    let addr = host.addr("rtmp");
    let frames_before = flow.frames();

    const ATTEMPTS: usize = 12;
    let attempts: Vec<_> = (0..ATTEMPTS)
        .map(|i| {
            thread::spawn(move || {
                let mut c = RtmpClient::new(addr);
                let answer = c.connect("fier");
                assert_eq!(answer.name, "_result");
                let msid = c.create_stream(2.0);
                let started = Instant::now();
                let info = c.publish(msid, &format!("cam{i}?user_password=123"));
                (info, started.elapsed())
            })
        })
        .collect();
    // While they wait: the host still answers a new client at once.
    thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let mut probe = RtmpClient::new(addr);
    assert_eq!(probe.connect("fier").name, "_result");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        flow.advances(25, Duration::from_secs(5)),
        "the other stream stalled"
    );

    let results: Vec<_> = attempts.into_iter().map(|t| t.join().unwrap()).collect();
    let allowed: Vec<_> = results
        .iter()
        .filter(|(info, _)| info.1 == "NetStream.Publish.Start")
        .collect();
    let refused: Vec<_> = results
        .iter()
        .filter(|(info, _)| info.1 != "NetStream.Publish.Start")
        .collect();
    assert_eq!(allowed.len(), 2, "{results:?}");
    assert!(allowed
        .iter()
        .all(|(_, t)| *t >= Duration::from_millis(2500)));
    assert_eq!(refused.len(), ATTEMPTS - 2);
    assert!(
        refused.iter().all(|(_, t)| *t < Duration::from_secs(1)),
        "refused late: {results:?}"
    );
    // Never more calls in flight than the bound (the flowing stream's was answered before).
    assert_eq!(backend.most_busy.load(Ordering::SeqCst), 2);
    assert_eq!(backend.busy.load(Ordering::SeqCst), 0);
    assert!(host.log().contains("max_concurrent"));
    // About 25 frames a second throughout.
    assert!(
        flow.frames() - frames_before >= 60,
        "{} frames in the flood",
        flow.frames() - frames_before
    );
    assert!(flow.advances(25, WAIT), "the other stream stopped");
}

#[test]
fn the_nginx_style_sends_the_form_with_the_clients_own_arguments() {
    let backend = Backend::start(|_| Reply::Status(403));
    let root = root(
        "authhttp-nginx",
        &backend.url(),
        &format!("style = \"nginx\"\nhmac_secret = \"{SECRET}\"\n[headers]\nX-Api-Key = \"k1\"\n"),
    );
    let host = start(&root);
    let flow = Flow::start(&host);

    let url = format!(
        "rtmp://{}/fier/cam?user_password=12%203&room=a%20b&k=%26x&token=t",
        host.addr("rtmp")
    );
    let (status, _, _) = background(ffmpeg_publish(&url, 3), Duration::from_secs(30))
        .join()
        .unwrap();
    assert!(!status.is_some_and(|s| s.success()));
    let cam = backend.about("fier/cam");
    assert_eq!(cam.len(), 1, "{cam:?}");
    let g = &cam[0];
    assert_eq!(
        g.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(g.headers["x-api-key"], "k1");
    assert_eq!(g.headers["x-fstream-signature"], signed(&g.body));
    let text = String::from_utf8(g.body.clone()).unwrap();
    assert!(
        text.starts_with("call=publish&app=fier&name=cam&addr=127.0.0.1&clientid="),
        "{text}"
    );
    assert!(
        text.ends_with("&room=a+b&k=%26x&user=fier&password=12+3"),
        "{text}"
    );
    let expect: BTreeMap<String, String> = [
        ("call", "publish"),
        ("app", "fier"),
        ("name", "cam"),
        ("addr", "127.0.0.1"),
        ("room", "a b"),
        ("k", "&x"),
        ("user", "fier"),
        ("password", "12 3"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([("clientid".to_string(), g.field("clientid").to_string())])
    .collect();
    assert_eq!(
        g.fields, expect,
        "the credentials are not passed as arguments"
    );
    assert!(g.field("clientid").parse::<u64>().is_ok());
    assert!(flow.advances(25, WAIT), "the other stream stopped");
}

#[test]
fn a_cached_answer_spares_the_backend_the_second_identical_attempt() {
    let backend = Backend::start(|_| Reply::Status(403));
    let root = root("authhttp-cache", &backend.url(), "cache_ms = 30000\n");
    let host = start(&root);
    let flow = Flow::start(&host);

    assert_refused(&host, Duration::from_secs(5));
    assert_refused(&host, Duration::from_secs(5));
    assert_eq!(backend.about("fier/cam").len(), 1, "{:?}", backend.got());
    assert!(
        host.log()
            .matches("auth-http: backend answered 403")
            .count()
            >= 2
    );
    // Another request is not the same one.
    let url = format!("rtmp://{}/fier/cam?user_password=124", host.addr("rtmp"));
    let (status, _, _) = background(ffmpeg_publish(&url, 3), Duration::from_secs(30))
        .join()
        .unwrap();
    assert!(!status.is_some_and(|s| s.success()));
    assert_eq!(backend.about("fier/cam").len(), 2);
    assert!(flow.advances(25, WAIT), "the other stream stopped");
}

#[test]
fn fstream_broadcasts_and_tokens_are_asked_about_too() {
    let backend = Backend::start(|g| {
        if g.field("path") == "fier/nope" {
            Reply::Status(401)
        } else {
            Reply::Status(200)
        }
    });
    let root = root("authhttp-fstream", &backend.url(), "");
    let host = start(&root);
    let flow = Flow::start(&host);
    let addr = host.addr("fstream");

    // Allowed: the watcher receives the broadcast.
    let live = LiveFlow::start(addr, "fier", "123", "cam");
    assert!(
        live.flows(100_000, WAIT),
        "the fstream broadcast does not flow"
    );
    let cam = backend.about("fier/cam");
    assert_eq!(cam.len(), 1, "{cam:?}");
    let g = &cam[0];
    for (k, v) in [
        ("action", "publish"),
        ("protocol", "fstream"),
        ("app", "fier"),
        ("stream", "cam"),
        ("user", "fier"),
        ("password", "123"),
        ("query", ""),
        ("ip", "127.0.0.1"),
    ] {
        assert_eq!(g.field(k), v, "{k} in {:?}", g.fields);
    }
    assert!(g.field("conn_id").parse::<u64>().is_ok(), "{g:?}");

    // Refused with 401: the broadcaster is closed.
    let mut b = TcpStream::connect(addr).unwrap();
    b.write_all(&fstream_preamble(
        "broadcast,user=fier,user_password=123,channel=nope",
    ))
    .unwrap();
    b.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    let _ = b.read_to_end(&mut rest);
    assert_eq!(backend.about("fier/nope").len(), 1);
    assert!(
        host.wait_log("auth-http: backend answered 401", WAIT),
        "{}",
        host.log()
    );
    assert!(!host.log().contains("publishing stream=fier/nope"));

    // A token: the password is the backend's to check.
    let mut t = TcpStream::connect(addr).unwrap();
    t.write_all(&fstream_preamble("token,user=fier,user_password=123"))
        .unwrap();
    t.set_read_timeout(Some(WAIT)).unwrap();
    let mut line = String::new();
    t.read_to_string(&mut line).unwrap();
    assert_eq!(line.trim().len(), 32, "{line:?}");
    let token = backend
        .got()
        .into_iter()
        .find(|g| g.field("action") == "token")
        .expect("the backend was asked about the token");
    assert_eq!(token.field("password"), "123");
    assert_eq!(token.field("protocol"), "fstream");
    assert!(flow.advances(25, WAIT), "the other stream stopped");
}
