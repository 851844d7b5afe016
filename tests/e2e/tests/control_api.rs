//! The control plane end to end: ffmpeg publishes over RTMP, ffmpeg watches over HTTP-FLV,
//! curl reads the API and the metrics and kicks, headless Chromium shows the dashboard and
//! kicks from it. Each test checks what the publisher and the viewer live through (the stream
//! listed with its codecs, the viewer counted, the publisher ended by a kick), not only what
//! the API says.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use fstream_e2e::{
    background, cdp::Page, decoded_frames, ffmpeg_play, ffmpeg_publish, require, run_with_timeout,
    Host, Root,
};
use serde_json::Value;

const PASSWORD: &str = "s3cret-pw";

/// curl's (status, body) for one request.
fn curl(args: &[&str], url: &str) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url);
    let (st, out, err) = run_with_timeout(&mut c, Duration::from_secs(20));
    assert!(st.is_some(), "curl hung: {err}");
    let out = String::from_utf8_lossy(&out).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn get_json(url: &str, args: &[&str]) -> Value {
    let (code, body) = curl(args, url);
    assert_eq!(code, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

/// Polls `url` until `pred` holds on its JSON, within `timeout`; gives the last document.
fn wait_json(url: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (code, body) = curl(&[], url);
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if code == 200 && pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never became as wanted; last: {code} {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn root(tag: &str) -> Root {
    let root = Root::new(
        tag,
        &["auth-ini", "rtmp", "rtmp-app", "http", "control-api"],
    );
    root.user("alice", PASSWORD);
    root
}

fn publish_url(host: &Host, stream: &str) -> String {
    format!(
        "rtmp://{}/alice/{stream}?user=alice&user_password={PASSWORD}&room=blue",
        host.addr("rtmp")
    )
}

/// A sample's value in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_api_lists_stream_and_viewer_counts_them_in_metrics_and_a_kick_ends_the_publisher() {
    require(&["ffmpeg", "curl"]);
    let root = root("ctl-api");
    let host = Host::start(&root, &["rtmp", "http"], &[]);
    let api = format!("http://{}", host.addr("api"));
    let publisher = background(
        ffmpeg_publish(&publish_url(&host, "cam"), 60),
        Duration::from_secs(90),
    );

    let stream = wait_json(
        &format!("{api}/api/v1/streams/alice/cam"),
        Duration::from_secs(20),
        |s| s["live"] == true && s["video"]["width"] == 320 && s["audio"]["codec"] == "aac",
    );
    assert_eq!(stream["video"]["codec"], "h264");
    assert_eq!(stream["video"]["height"], 240);
    assert_eq!(stream["audio"]["sample_rate"], 44100);
    assert_eq!(stream["publisher"]["protocol"], "rtmp");
    // The http plugin's HLS segmenter is a sink, and not a recording.
    assert_eq!(stream["sinks"], serde_json::json!(["http"]), "{stream}");
    assert_eq!(stream["recording"], false, "{stream}");
    let publisher_id = stream["publisher"]["session"]
        .as_u64()
        .expect("publisher session");

    // A viewer over HTTP-FLV: counted by protocol, its session listed as playing.
    let mut viewer = Command::new("ffmpeg");
    viewer
        .args(["-v", "error", "-i"])
        .arg(format!("http://{}/alice/cam.flv", host.addr("http")))
        .args(["-t", "30", "-f", "null", "-"]);
    let viewer = background(viewer, Duration::from_secs(60));
    let stream = wait_json(
        &format!("{api}/api/v1/streams/alice/cam"),
        Duration::from_secs(20),
        |s| {
            s["viewers"] == 1
                && s["viewers_by_protocol"]["http"] == 1
                && s["bitrate_in_kbps"].as_u64() > Some(0)
        },
    );
    assert!(stream["bytes_in"].as_u64() > Some(10_000), "{stream}");
    let sessions = wait_json(
        &format!("{api}/api/v1/sessions"),
        Duration::from_secs(10),
        |d| {
            d["sessions"]
                .as_array()
                .is_some_and(|l| l.iter().any(|s| s["playing"][0] == "alice/cam"))
        },
    );
    let list = sessions["sessions"].as_array().unwrap();
    let me = list
        .iter()
        .find(|s| s["id"] == publisher_id)
        .expect("the publisher's session");
    assert_eq!(me["protocol"], "rtmp");
    assert_eq!(me["publishing"][0], "alice/cam");
    assert_eq!(me["user"], "alice");
    // The query is shown without its credentials.
    let q = me["query"].as_str().unwrap_or_default();
    assert!(q.contains("room=blue") && !q.contains("password"), "{me}");
    // Credentials never leave the server.
    let everything = curl(&[], &format!("{api}/api/v1/sessions")).1
        + &curl(&[], &format!("{api}/api/v1/streams")).1
        + &curl(&[], &format!("{api}/metrics")).1;
    assert!(
        !everything.contains(PASSWORD),
        "the password leaked: {everything}"
    );

    let (code, metrics) = curl(&[], &format!("{api}/metrics"));
    assert_eq!(code, 200);
    assert_eq!(sample(&metrics, "fstream_streams"), Some(1.0), "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "fstream_stream_viewers{app=\"alice\",name=\"cam\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "fstream_viewers{protocol=\"http\"}"),
        Some(1.0)
    );
    assert!(sample(&metrics, "fstream_bytes_in_total{protocol=\"rtmp\"}") > Some(10_000.0));
    assert!(sample(&metrics, "fstream_bytes_out_total{protocol=\"http\"}") > Some(0.0));
    assert!(sample(&metrics, "fstream_auth_total{result=\"allow\"}") >= Some(1.0));
    assert_eq!(
        sample(&metrics, "fstream_recordings_started_total"),
        Some(0.0),
        "HLS counted as a recording: {metrics}"
    );

    // None of it exists on the public listener.
    let public = format!("http://{}", host.addr("http"));
    assert_eq!(curl(&[], &format!("{public}/api/v1/streams")).0, 404);
    assert_eq!(curl(&[], &format!("{public}/metrics")).0, 404);
    // Nor do streams on the control listener.
    assert_eq!(curl(&[], &format!("{api}/alice/cam.flv")).0, 404);

    // The kick: the publisher's ffmpeg ends long before its 60 s, the stream goes.
    let kicked = Instant::now();
    let (code, body) = curl(
        &["-X", "POST"],
        &format!("{api}/api/v1/sessions/{publisher_id}/kick"),
    );
    assert_eq!(
        (code, body.trim()),
        (200, format!("{{\"kicked\":{publisher_id}}}").as_str())
    );
    let (st, _, err) = publisher.join().unwrap();
    assert!(st.is_some(), "the publisher outlived its kick: {err}");
    assert!(kicked.elapsed() < Duration::from_secs(15));
    wait_json(
        &format!("{api}/api/v1/streams"),
        Duration::from_secs(10),
        |d| {
            d["streams"]
                .as_array()
                .is_some_and(|l| l.iter().all(|s| s["live"] != true))
        },
    );
    // The viewer was told the stream ended (its ffmpeg stops before its 30 s).
    let (st, _, _) = viewer.join().unwrap();
    assert!(st.is_some());
    assert_eq!(
        curl(
            &["-X", "POST"],
            &format!("{api}/api/v1/sessions/{publisher_id}/kick")
        )
        .0,
        404
    );
    let (_, metrics) = curl(&[], &format!("{api}/metrics"));
    assert_eq!(
        sample(&metrics, "fstream_kicks_total"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "fstream_streams"), Some(0.0));

    // The same user publishes again after the kick, and is listed again.
    let again = background(
        ffmpeg_publish(&publish_url(&host, "cam"), 3),
        Duration::from_secs(30),
    );
    wait_json(
        &format!("{api}/api/v1/streams/alice/cam"),
        Duration::from_secs(20),
        |s| s["live"] == true,
    );
    let (st, _, err) = again.join().unwrap();
    assert!(st.is_some_and(|s| s.success()), "{err}");
    assert!(
        !host.log().contains(PASSWORD),
        "the password reached the log"
    );
}

#[test]
fn with_a_token_every_call_but_the_page_needs_it() {
    require(&["curl"]);
    let root = root("ctl-token");
    root.write("mods/control-api.toml", "token = \"letmein-42\"\n");
    let host = Host::start(&root, &["rtmp", "http"], &[]);
    let api = format!("http://{}", host.addr("api"));
    let (code, body) = curl(&[], &format!("{api}/api/v1/streams"));
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("Bearer"), "{body}");
    assert_eq!(
        curl(
            &["-H", "Authorization: Bearer nope"],
            &format!("{api}/metrics")
        )
        .0,
        401
    );
    let auth = ["-H", "Authorization: Bearer letmein-42"];
    assert_eq!(
        get_json(&format!("{api}/api/v1/streams"), &auth)["streams"],
        Value::Array(vec![])
    );
    let (code, metrics) = curl(&auth, &format!("{api}/metrics"));
    assert_eq!(code, 200);
    assert_eq!(sample(&metrics, "fstream_streams"), Some(0.0));
    assert_eq!(curl(&[], &format!("{api}/dashboard")).0, 200);
    // A kick posted from another origin (a page elsewhere, the operator's browser) is refused.
    let (code, _) = curl(
        &[
            "-X",
            "POST",
            "-H",
            "Origin: http://evil.example",
            auth[0],
            auth[1],
        ],
        &format!("{api}/api/v1/sessions/1/kick"),
    );
    assert_eq!(code, 403);
}

#[test]
fn an_empty_api_listen_opens_no_control_listener() {
    let root = root("ctl-off");
    root.write("mods/http.toml", "api_listen = \"\"\n");
    let host = Host::start(&root, &["rtmp", "http"], &[]);
    assert!(host.wait_log("listening", Duration::from_secs(5)));
    assert!(!host.log().contains("protocol=api"), "{}", host.log());
}

#[test]
fn the_dashboard_in_chromium_shows_the_stream_and_its_kick_button_ends_the_publisher() {
    require(&["ffmpeg", "chromium"]);
    let root = root("ctl-dash");
    let host = Host::start(&root, &["rtmp", "http"], &[]);
    let api = format!("http://{}", host.addr("api"));
    let publisher = background(
        ffmpeg_publish(&publish_url(&host, "dash"), 90),
        Duration::from_secs(120),
    );
    let stream = wait_json(
        &format!("{api}/api/v1/streams/alice/dash"),
        Duration::from_secs(20),
        |s| s["live"] == true && s["video"]["width"] == 320,
    );
    let id = stream["publisher"]["session"].as_u64().unwrap();

    let mut page = Page::open(&format!("{api}/dashboard"));
    let row = "document.querySelector('tr[data-stream=\"alice/dash\"]')";
    let video = page
        .wait_for(
            &format!("{row} && {row}.querySelector('td.video').textContent"),
            Duration::from_secs(20),
        )
        .expect("the dashboard lists the stream");
    assert_eq!(video, "h264 320×240");
    // The graph draws the incoming bitrate: some pixel of its canvas is not blank.
    let drawn = page.wait_for(
        &format!(
            "(() => {{ const c = {row}.querySelector('canvas'); if (!c) return false;
               const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
               return d.some(x => x !== 0); }})()"
        ),
        Duration::from_secs(10),
    );
    assert!(drawn.is_some(), "no graph");
    let status = page.eval("document.getElementById('status').textContent");
    assert!(status.as_str().unwrap_or("").contains("1 live"), "{status}");

    // A click on the publisher's kick button.
    let button = format!("document.querySelector('button[data-kick=\"{id}\"]')");
    assert!(page
        .wait_for(&format!("!!{button}"), Duration::from_secs(10))
        .is_some());
    page.eval(&format!("{button}.click()"));
    let kicked = Instant::now();
    let (st, _, err) = publisher.join().unwrap();
    assert!(st.is_some(), "the publisher outlived the kick: {err}");
    assert!(kicked.elapsed() < Duration::from_secs(15));
    assert!(page
        .wait_for(&format!("document.getElementById('status').textContent.includes('kicked session {id}') || !{row}"), Duration::from_secs(10))
        .is_some());
    assert!(
        page.wait_for(&format!("!{row}"), Duration::from_secs(10))
            .is_some(),
        "the stream stays listed"
    );
    assert!(host.log().contains("control-api: session kicked"));
    assert!(
        !host.log().contains(PASSWORD),
        "the password reached the log"
    );
}

/// What the API says about a stream's viewers: (total, rtmp, http).
fn viewers(api: &str, stream: &str) -> Option<(u64, u64, u64)> {
    let (code, body) = curl(&[], &format!("{api}/api/v1/streams/{stream}"));
    if code != 200 {
        return None;
    }
    let s: Value = serde_json::from_str(&body).ok()?;
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    Some((
        n(&s["viewers"]),
        n(&s["viewers_by_protocol"]["rtmp"]),
        n(&s["viewers_by_protocol"]["http"]),
    ))
}

fn wait_viewers(api: &str, stream: &str, want: (u64, u64, u64)) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = viewers(api, stream);
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{stream}: viewers {got:?}, wanted {want:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The id of the session playing `stream` over `protocol` that is not in `not`.
fn player_session(api: &str, stream: &str, protocol: &str, not: &[u64]) -> u64 {
    let d = wait_json(
        &format!("{api}/api/v1/sessions"),
        Duration::from_secs(20),
        |d| {
            d["sessions"].as_array().is_some_and(|l| {
                l.iter().any(|s| {
                    s["protocol"] == protocol
                        && s["playing"][0] == stream
                        && !not.contains(&s["id"].as_u64().unwrap_or(0))
                })
            })
        },
    );
    d["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| {
            s["protocol"] == protocol
                && s["playing"][0] == stream
                && !not.contains(&s["id"].as_u64().unwrap_or(0))
        })
        .and_then(|s| s["id"].as_u64())
        .expect("a player session")
}

/// A history: viewers over RTMP and HTTP-FLV join, one is kicked, the other leaves, both come
/// back; the configuration is reloaded in the middle; the publisher is kicked and returns. At
/// each step the API's counts equal who is really watching, and every viewer that was not
/// kicked decoded its frames.
#[test]
fn viewer_counts_follow_joins_kicks_leaves_a_reload_and_a_returning_publisher() {
    require(&["ffmpeg", "curl"]);
    let root = root("ctl-hist");
    let host = Host::start(&root, &["rtmp", "http"], &[]);
    let api = format!("http://{}", host.addr("api"));
    let rtmp_url = format!("rtmp://{}/alice/hist", host.addr("rtmp"));
    let flv_url = format!("http://{}/alice/hist.flv", host.addr("http"));
    let mut kicked_before = Vec::new();

    for round in 0..2 {
        let publisher = background(
            ffmpeg_publish(&publish_url(&host, "hist"), 60),
            Duration::from_secs(90),
        );
        let stream = wait_json(
            &format!("{api}/api/v1/streams/alice/hist"),
            Duration::from_secs(20),
            |s| s["live"] == true && s["video"]["codec"] == "h264",
        );
        let publisher_id = stream["publisher"]["session"].as_u64().unwrap();
        assert!(
            !kicked_before.contains(&publisher_id),
            "round {round}: a new publisher got an old id"
        );
        wait_viewers(&api, "alice/hist", (0, 0, 0));

        // Two viewers: the RTMP one is kicked, the HTTP-FLV one watches 3 s and leaves.
        let rtmp_viewer = background(ffmpeg_play(&rtmp_url), Duration::from_secs(60));
        let mut flv = Command::new("ffmpeg");
        flv.args(["-hide_banner", "-loglevel", "error", "-i", &flv_url])
            .args(["-t", "3", "-map", "0:v:0", "-f", "framemd5", "-"]);
        let flv_viewer = background(flv, Duration::from_secs(60));
        wait_viewers(&api, "alice/hist", (2, 1, 1));
        let rtmp_id = player_session(&api, "alice/hist", "rtmp", &[]);
        if round == 0 {
            // A reload in the middle: the API answers from the new configuration's plugin,
            // and counts the same viewers.
            host.signal(libc::SIGHUP);
            assert!(
                host.wait_log("configuration reloaded", Duration::from_secs(10)),
                "{}",
                host.log()
            );
            wait_viewers(&api, "alice/hist", (2, 1, 1));
        }
        let (code, body) = curl(
            &["-X", "POST"],
            &format!("{api}/api/v1/sessions/{rtmp_id}/kick"),
        );
        assert_eq!(code, 200, "{body}");
        let (st, _, err) = rtmp_viewer.join().unwrap();
        assert!(st.is_some(), "the kicked viewer played on: {err}");
        wait_viewers(&api, "alice/hist", (1, 0, 1));
        let (st, out, err) = flv_viewer.join().unwrap();
        assert!(st.is_some_and(|s| s.success()), "round {round}: {err}");
        let frames = decoded_frames(&out);
        assert!(frames >= 50, "round {round}: {frames} frames over HTTP-FLV");
        wait_viewers(&api, "alice/hist", (0, 0, 0));

        // A viewer comes back over RTMP, reads 2 s, and is counted until it leaves.
        let mut again = Command::new("ffmpeg");
        again
            .args(["-hide_banner", "-loglevel", "error", "-i", &rtmp_url])
            .args(["-t", "2", "-map", "0:v:0", "-f", "framemd5", "-"]);
        let again = background(again, Duration::from_secs(60));
        wait_viewers(&api, "alice/hist", (1, 1, 0));
        assert_ne!(
            player_session(&api, "alice/hist", "rtmp", &[]),
            rtmp_id,
            "the returning viewer is a new session"
        );
        let (st, out, err) = again.join().unwrap();
        assert!(st.is_some_and(|s| s.success()), "{err}");
        assert!(decoded_frames(&out) >= 25, "{err}");
        wait_viewers(&api, "alice/hist", (0, 0, 0));

        // The publisher is kicked; the stream is gone from the list; the next round has it
        // return.
        let (code, _) = curl(
            &["-X", "POST"],
            &format!("{api}/api/v1/sessions/{publisher_id}/kick"),
        );
        assert_eq!(code, 200);
        let (st, _, _) = publisher.join().unwrap();
        assert!(st.is_some(), "the kicked publisher went on");
        wait_json(
            &format!("{api}/api/v1/streams"),
            Duration::from_secs(20),
            |d| {
                d["streams"]
                    .as_array()
                    .is_some_and(|l| l.iter().all(|s| s["live"] != true))
            },
        );
        kicked_before.push(publisher_id);
        kicked_before.push(rtmp_id);
    }
    let (_, metrics) = curl(&[], &format!("{api}/metrics"));
    assert_eq!(
        sample(&metrics, "fstream_kicks_total"),
        Some(4.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "fstream_streams"), Some(0.0), "{metrics}");
    // Only this request's own session is left.
    let d = get_json(&format!("{api}/api/v1/sessions"), &[]);
    let left: Vec<&Value> = d["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["protocol"] != "api")
        .collect();
    assert!(left.is_empty(), "sessions left over: {left:?}");
}
