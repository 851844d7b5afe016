use std::sync::Mutex;

use fstream_abi::{Caller, HttpCall, HttpHeader, HttpReply, NetAddr};
use serde_json::{json, Value};

use crate::{handle, routes::Control};

struct Fake {
    doc: Value,
    kicked: Mutex<Vec<u64>>,
}

impl Control for Fake {
    /// Only the parts asked for, as the host does: a route that forgets one it needs
    /// answers without it, and its test fails.
    fn stats(&self, parts: &str) -> String {
        let mut doc = serde_json::Map::new();
        for part in parts.split(',') {
            if let Some(v) = self.doc.get(part) {
                doc.insert(part.to_string(), v.clone());
            }
        }
        Value::Object(doc).to_string()
    }
    fn kick(&self, id: u64, _reason: &str) -> bool {
        let known = self.doc["sessions"]
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s["id"] == id));
        if known {
            self.kicked.lock().unwrap().push(id);
        }
        known
    }
}

fn fake() -> Fake {
    Fake {
        doc: json!({
            "server": {"version": "9.9.9", "uptime_ms": 12_500, "unix_ms": 1},
            "streams": [{
                "path": "live/cam", "app": "live", "name": "cam", "live": true,
                "publisher": {"session": 3, "protocol": "rtmp", "peer": "127.0.0.1:4000"},
                "video": {"codec": "h264", "width": 320, "height": 240},
                "bytes_in": 1000, "bytes_out": 3000, "bitrate_in_kbps": 250,
                "bitrate_out_kbps": 500, "viewers": 2,
                "viewers_by_protocol": {"rtmp": 1, "http": 1}
            }, {
                "path": "my \"odd\" app/x", "app": "my \"odd\" app", "name": "x", "live": false,
                "viewers": 0, "viewers_by_protocol": {}
            }],
            "sessions": [{"id": 3, "protocol": "rtmp"}, {"id": 4, "protocol": "http"}],
            "counters": {
                "connections_total": 9, "connections_open": {"rtmp": 1, "http": 1},
                "protocols": {"rtmp": {"bytes_in": 1000, "bytes_out": 10}},
                "auth_allowed": 5, "auth_denied": 2, "auth_errors": 1, "kicks": 0
            }
        }),
        kicked: Mutex::new(Vec::new()),
    }
}

fn call(method: &str, path: &str, headers: &[(&str, &str)]) -> HttpCall {
    HttpCall {
        method: method.into(),
        path: path.into(),
        query: "".into(),
        headers: headers.iter().map(|(n, v)| HttpHeader::new(n, v)).collect(),
        body: Default::default(),
        listener: "api".into(),
        caller: Caller {
            connection: 1,
            peer: "127.0.0.1:5000".into(),
            peer_addr: NetAddr::parse_or_unspecified("127.0.0.1:5000"),
        },
        ext: Default::default(),
    }
}

fn body(r: &HttpReply) -> String {
    String::from_utf8(r.body.as_slice().to_vec()).unwrap()
}

fn json_of(r: &HttpReply) -> Value {
    serde_json::from_str(&body(r)).unwrap()
}

#[test]
fn streams_sessions_and_one_of_each() {
    let f = fake();
    let r = handle(&f, "", &call("GET", "/api/v1/streams", &[]));
    assert_eq!(r.status, 200);
    assert_eq!(json_of(&r)["streams"][0]["path"], "live/cam");
    let r = handle(&f, "", &call("GET", "/api/v1/streams/live/cam", &[]));
    assert_eq!(json_of(&r)["video"]["width"], 320);
    let r = handle(&f, "", &call("GET", "/api/v1/streams/live/nope", &[]));
    assert_eq!(r.status, 404);
    assert!(json_of(&r)["error"].as_str().unwrap().contains("live/nope"));
    let r = handle(&f, "", &call("GET", "/api/v1/sessions/4", &[]));
    assert_eq!(json_of(&r)["protocol"], "http");
    assert_eq!(
        handle(&f, "", &call("GET", "/api/v1/sessions/x", &[])).status,
        400
    );
    let r = handle(&f, "", &call("GET", "/api/v1/server", &[]));
    assert_eq!(json_of(&r)["counters"]["auth_denied"], 2);
    assert_eq!(
        handle(&f, "", &call("GET", "/api/v1/nothing", &[])).status,
        404
    );
}

#[test]
fn kicks_by_post_or_delete_and_wrong_methods_are_405() {
    let f = fake();
    let r = handle(&f, "", &call("POST", "/api/v1/sessions/3/kick", &[]));
    assert_eq!((r.status, json_of(&r)["kicked"].clone()), (200, json!(3)));
    assert_eq!(
        handle(&f, "", &call("DELETE", "/api/v1/sessions/4", &[])).status,
        200
    );
    assert_eq!(
        handle(&f, "", &call("POST", "/api/v1/sessions/77/kick", &[])).status,
        404
    );
    assert_eq!(*f.kicked.lock().unwrap(), vec![3, 4]);
    let r = handle(&f, "", &call("GET", "/api/v1/sessions/3/kick", &[]));
    assert_eq!(r.status, 405);
    assert!(r
        .headers
        .iter()
        .any(|h| h.name.as_str() == "Allow" && h.value.as_str() == "POST"));
    assert_eq!(
        handle(&f, "", &call("POST", "/api/v1/streams", &[])).status,
        405
    );
}

#[test]
fn the_token_guards_all_but_the_page() {
    let f = fake();
    let r = handle(&f, "t0k", &call("GET", "/api/v1/streams", &[]));
    assert_eq!(r.status, 401);
    assert!(r
        .headers
        .iter()
        .any(|h| h.name.as_str() == "WWW-Authenticate"));
    assert_eq!(handle(&f, "t0k", &call("GET", "/metrics", &[])).status, 401);
    let auth = [("Authorization", "Bearer t0k")];
    assert_eq!(
        handle(&f, "t0k", &call("GET", "/metrics", &auth)).status,
        200
    );
    let r = handle(&f, "t0k", &call("GET", "/dashboard", &[]));
    assert_eq!(r.status, 200);
    assert!(body(&r).contains("<title>fstream-host dashboard</title>"));
    // A kick posted by a page of another origin is refused, and nobody is kicked.
    let cross = [
        ("Host", "127.0.0.1:9997"),
        ("Origin", "http://evil.example"),
    ];
    assert_eq!(
        handle(&f, "", &call("POST", "/api/v1/sessions/3/kick", &cross)).status,
        403
    );
    assert!(f.kicked.lock().unwrap().is_empty());
    // Not on the public listener.
    let mut c = call("GET", "/api/v1/streams", &[]);
    c.listener = "http".into();
    assert_eq!(handle(&f, "", &c).status, 404);
}

#[test]
fn metrics_are_valid_prometheus_text() {
    let f = fake();
    let r = handle(&f, "", &call("GET", "/metrics", &[]));
    assert_eq!(r.status, 200);
    let text = body(&r);
    for want in [
        "fstream_streams 1\n",
        "fstream_viewers{protocol=\"http\"} 1\n",
        "fstream_viewers{protocol=\"rtmp\"} 1\n",
        "fstream_stream_viewers{app=\"live\",name=\"cam\"} 2\n",
        "fstream_stream_bitrate_in_kbps{app=\"live\",name=\"cam\"} 250\n",
        "fstream_stream_bitrate_out_kbps{app=\"live\",name=\"cam\"} 500\n",
        "fstream_bytes_in_total{protocol=\"rtmp\"} 1000\n",
        "fstream_connections{protocol=\"rtmp\"} 1\n",
        "fstream_connections_total 9\n",
        "fstream_auth_total{result=\"deny\"} 2\n",
        "fstream_auth_total{result=\"error\"} 1\n",
        "fstream_uptime_seconds 12.5\n",
        "fstream_stream_viewers{app=\"my \\\"odd\\\" app\",name=\"x\"} 0\n",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    // Every line is a comment or `name{labels} number`, and each family is declared once.
    let mut types = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(
                types.insert(rest.split(' ').next().unwrap().to_string()),
                "{line}"
            );
        } else if !line.starts_with("# HELP ") {
            let (series, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
            let name = series.split('{').next().unwrap();
            assert!(types.contains(name), "{name} has no TYPE before it");
        }
    }
}
