//! plugins/control-api: one request with fuzzed method, path, query, headers, peer and token,
//! against a stats document whose stream and user names are fuzzed too (they come from the
//! network: stream names, user names, protocols' query strings).
//!
//! Properties, whatever the input:
//! - the status is one the plugin documents (200, 400 for a session id that is no number, 401, 403, 404, 405);
//! - nothing but the dashboard page answers 2xx to a caller without the right to: a peer that
//!   is not loopback when there is no token, or a wrong or missing bearer token, or a request
//!   from another origin;
//! - a kick reaches the host only through `POST .../kick` or `DELETE` of a session, and only
//!   when the request was allowed;
//! - JSON answers are JSON; `/metrics` is Prometheus text whose every sample line parses, with
//!   label values escaped.

use std::sync::Mutex;

use control_api::{access, handle, routes::Control};
use fstream_abi::{Caller, HttpCall, HttpHeader, NetAddr};
use serde_json::{json, Value};

struct Fake {
    doc: String,
    kicked: Mutex<Vec<u64>>,
}

impl Control for Fake {
    fn stats(&self, _parts: &str) -> String {
        self.doc.clone()
    }
    fn kick(&self, id: u64, _reason: &str) -> bool {
        if let Ok(mut k) = self.kicked.lock() {
            k.push(id);
        }
        id == 3
    }
}

/// Splits `data` at NUL bytes into at most `n` text fields (lossy UTF-8).
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data
        .splitn(n, |&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

pub fn control_api(data: &[u8]) {
    control_api_status(data);
}

/// The body of [`control_api`], giving the answer's status and whether the host was asked to
/// kick (for the seeds' test).
pub fn control_api_status(data: &[u8]) -> (u16, bool) {
    let (c, rest) = crate::control(data);
    let f = fields(rest, 8);
    let (method, path, query, host, origin, auth, name, user) =
        (&f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7]);
    let method = match c & 7 {
        0 => "GET",
        1 => "POST",
        2 => "DELETE",
        3 => "HEAD",
        4 => "PUT",
        _ => method.as_str(),
    };
    let token = if c & 8 != 0 { "s3cret" } else { "" };
    let peer = if c & 16 != 0 {
        "127.0.0.1:5000"
    } else {
        "192.0.2.7:5000"
    };
    let listener = if c & 32 != 0 { "http" } else { "api" };
    let path = if c & 64 != 0 {
        path.clone()
    } else {
        // Mostly paths under the plugin's prefixes, as the http frontend only routes those.
        const P: [&str; 6] = [
            "/api/v1/streams/",
            "/api/v1/sessions/",
            "/metrics",
            "/dashboard",
            "/api/v1/",
            "/api/v1/sessions/3/",
        ];
        format!("{}{}", P[path.len() % P.len()], path).replace("//", "/")
    };
    let mut headers = Vec::new();
    if !host.is_empty() {
        headers.push(HttpHeader::new("Host", host));
    }
    if !origin.is_empty() {
        headers.push(HttpHeader::new("Origin", origin));
    }
    if c & 128 != 0 {
        headers.push(HttpHeader::new("Authorization", &format!("Bearer {auth}")));
    } else if !auth.is_empty() {
        headers.push(HttpHeader::new("Authorization", auth));
    }
    let call = HttpCall {
        method: method.into(),
        path: path.clone().into(),
        query: query.as_str().into(),
        headers: headers.into_iter().collect(),
        body: Default::default(),
        listener: listener.into(),
        caller: Caller {
            connection: 9,
            peer: peer.into(),
            peer_addr: NetAddr::parse_or_unspecified(peer),
        },
        ext: Default::default(),
    };
    let doc = json!({
        "server": {"version": "0.0.0", "uptime_ms": 5, "unix_ms": 1},
        "streams": [{
            "path": format!("{name}/{user}"), "app": name, "name": user, "live": true,
            "publisher": {"session": 3, "protocol": "rtmp", "peer": peer, "user": user},
            "bytes_in": 1, "bytes_out": 2, "bitrate_in_kbps": 3, "bitrate_out_kbps": 4,
            "viewers": 1, "viewers_by_protocol": {name.as_str(): 1}
        }],
        "sessions": [{"id": 3, "protocol": name, "user": user}],
        "counters": {"connections_open": {user.as_str(): 1}, "protocols": {name.as_str(): {"bytes_in": 1}}}
    });
    let fake = Fake {
        doc: doc.to_string(),
        kicked: Mutex::new(Vec::new()),
    };

    let reply = handle(&fake, token, &call);
    let status = reply.status;
    assert!(
        matches!(status, 200 | 400 | 401 | 403 | 404 | 405),
        "status {status} for {method} {path}"
    );
    let page = path.trim_end_matches('/') == "/dashboard";
    let allowed = access::check(&call, token).is_ok();
    if status == 200 && !page {
        assert!(allowed, "{method} {path} answered without the right to");
        assert_eq!(listener, "api");
        if token.is_empty() {
            assert_eq!(peer, "127.0.0.1:5000");
        } else {
            assert!(call.header("Authorization") == Some("Bearer s3cret"));
        }
    }
    let kicks = fake.kicked.lock().map(|k| k.len()).unwrap_or(0);
    if kicks > 0 {
        assert!(allowed, "a kick without the right to");
        assert!(matches!(method, "POST" | "DELETE"), "a kick by {method}");
        assert!(path.starts_with("/api/v1/sessions/"), "a kick by {path}");
    }
    let body = reply.body.as_slice();
    let content_type = reply
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Content-Type"))
        .map(|h| h.value.to_string())
        .unwrap_or_default();
    if content_type.starts_with("application/json") && !body.is_empty() {
        serde_json::from_slice::<Value>(body).expect("a JSON answer that is not JSON");
    }
    if status == 200 && path.trim_end_matches('/') == "/metrics" {
        let text = std::str::from_utf8(body).expect("metrics are UTF-8");
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            check_sample(line);
        }
    }
    (status, kicks > 0)
}

/// `name{label="value",...} number`, values with `\\`, `\"` and `\n` escaped.
fn check_sample(line: &str) {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line:?}"));
    let name = &line[..name_end];
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "bad metric name in {line:?}"
    );
    let mut rest = &line[name_end..];
    if let Some(labels) = rest.strip_prefix('{') {
        let mut chars = labels.char_indices();
        let mut in_value = false;
        let mut end = None;
        while let Some((i, ch)) = chars.next() {
            match (in_value, ch) {
                (true, '\\') => {
                    let (_, e) = chars
                        .next()
                        .unwrap_or_else(|| panic!("dangling \\ in {line:?}"));
                    assert!(matches!(e, '\\' | '"' | 'n'), "bad escape in {line:?}");
                }
                (true, '"') => in_value = false,
                (true, '\n') => panic!("raw newline in {line:?}"),
                (false, '"') => in_value = true,
                (false, '}') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.unwrap_or_else(|| panic!("labels not closed in {line:?}"));
        rest = &labels[end + 1..];
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value in {line:?}"));
    assert!(
        value.parse::<f64>().is_ok() || matches!(value, "NaN" | "+Inf" | "-Inf"),
        "bad value in {line:?}"
    );
}
