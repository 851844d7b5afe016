//! The control plane's paths, answered from the host's stats document (plain logic over a
//! [`Control`], tested without a host).
//!
//! - `GET /api/v1` — what is here;
//! - `GET /api/v1/server` — version, uptime and the counters;
//! - `GET /api/v1/streams`, `GET /api/v1/streams/APP/NAME`;
//! - `GET /api/v1/sessions`, `GET /api/v1/sessions/ID`;
//! - `POST /api/v1/sessions/ID/kick` (or `DELETE /api/v1/sessions/ID`) — closes that
//!   connection; a publisher's viewers are told the stream ended;
//! - `GET /metrics` — Prometheus text ([`crate::metrics`]);
//! - `GET /dashboard` — the page ([`crate::dashboard`]).

use fstream_abi::{query::percent_decode, HttpCall, HttpHeader, HttpReply};
use serde_json::{json, Value};

/// What the control plane needs of the host.
pub trait Control {
    /// The stats document (JSON) with only `parts` (`server,streams,sessions,counters`), as
    /// `HostApi::stats_of` gives it.
    fn stats(&self, parts: &str) -> String;
    /// Closes connection `id`; false when there is none.
    fn kick(&self, id: u64, reason: &str) -> bool;
}

/// The prefixes this plugin serves.
pub const PREFIXES: [&str; 3] = ["/api/v1", "/metrics", "/dashboard"];

pub fn answer(control: &dyn Control, call: &HttpCall) -> HttpReply {
    let method = call.method.as_str();
    let path = call.path.as_str().trim_end_matches('/');
    // The frontend routes only paths under PREFIXES here; anything else is not ours.
    let Some(path) = path.strip_prefix('/') else {
        return error(404, "not found");
    };
    let segments: Vec<String> = path
        .split('/')
        .map(|s| String::from_utf8_lossy(&percent_decode(s)).into_owned())
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let get = matches!(method, "GET" | "HEAD");
    match segs.as_slice() {
        ["metrics"] if get => HttpReply::new(
            200,
            crate::metrics::CONTENT_TYPE,
            crate::metrics::render(&doc(control, "server,streams,counters")).as_bytes(),
        ),
        ["dashboard"] if get => HttpReply::new(
            200,
            "text/html; charset=utf-8",
            crate::dashboard::PAGE.as_bytes(),
        ),
        ["api", "v1"] if get => json_reply(200, &index()),
        ["api", "v1", "server"] if get => {
            let d = doc(control, "server,counters");
            json_reply(
                200,
                &json!({"server": d["server"], "counters": d["counters"]}),
            )
        }
        ["api", "v1", "streams"] if get => {
            json_reply(200, &json!({"streams": doc(control, "streams")["streams"]}))
        }
        ["api", "v1", "streams", rest @ ..] if get && matches!(rest.len(), 1 | 2) => {
            // APP/NAME; an fstream channel's name alone.
            let wanted = rest.join("/");
            match find(&doc(control, "streams"), "streams", |s| {
                s["path"] == wanted.as_str()
            }) {
                Some(s) => json_reply(200, &s),
                None => error(404, &format!("no stream {wanted}")),
            }
        }
        ["api", "v1", "sessions"] if get => json_reply(
            200,
            &json!({"sessions": doc(control, "sessions")["sessions"]}),
        ),
        ["api", "v1", "sessions", id] if get => match id.parse::<u64>() {
            Ok(n) => match find(&doc(control, "sessions"), "sessions", |s| s["id"] == n) {
                Some(s) => json_reply(200, &s),
                None => error(404, &format!("no session {n}")),
            },
            Err(_) => error(400, "a session id is a number"),
        },
        ["api", "v1", "sessions", id, "kick"] if method == "POST" => kick(control, id),
        ["api", "v1", "sessions", id] if method == "DELETE" => kick(control, id),
        ["metrics"]
        | ["dashboard"]
        | ["api", "v1"]
        | ["api", "v1", "server"]
        | ["api", "v1", "streams", ..] => not_allowed("GET, HEAD"),
        ["api", "v1", "sessions"] => not_allowed("GET, HEAD"),
        ["api", "v1", "sessions", _] => not_allowed("GET, HEAD, DELETE"),
        ["api", "v1", "sessions", _, "kick"] => not_allowed("POST"),
        _ => error(404, "no such path (see GET /api/v1)"),
    }
}

fn kick(control: &dyn Control, id: &str) -> HttpReply {
    let Ok(n) = id.parse::<u64>() else {
        return error(400, "a session id is a number");
    };
    if control.kick(n, "kicked through the control API") {
        tracing::info!(session = n, "control-api: session kicked");
        json_reply(200, &json!({"kicked": n}))
    } else {
        error(404, &format!("no session {n}"))
    }
}

/// The `parts` of the host's document; an unreadable one (never expected) reads as empty
/// lists.
fn doc(control: &dyn Control, parts: &str) -> Value {
    serde_json::from_str(&control.stats(parts))
        .unwrap_or_else(|_| json!({"server": {}, "streams": [], "sessions": [], "counters": {}}))
}

fn find(doc: &Value, list: &str, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    doc[list].as_array()?.iter().find(|v| pred(v)).cloned()
}

fn index() -> Value {
    json!({
        "endpoints": [
            "GET /api/v1/server",
            "GET /api/v1/streams",
            "GET /api/v1/streams/APP/NAME",
            "GET /api/v1/sessions",
            "GET /api/v1/sessions/ID",
            "POST /api/v1/sessions/ID/kick",
            "DELETE /api/v1/sessions/ID",
            "GET /metrics",
            "GET /dashboard",
        ]
    })
}

pub fn json_reply(status: u16, v: &Value) -> HttpReply {
    let mut r = HttpReply::new(status, "application/json", format!("{v}\n").as_bytes());
    r.headers.push(HttpHeader::new("Cache-Control", "no-store"));
    r
}

pub fn error(status: u16, message: &str) -> HttpReply {
    json_reply(status, &json!({"error": message}))
}

fn not_allowed(allow: &str) -> HttpReply {
    let mut r = error(405, &format!("allowed here: {allow}"));
    r.headers.push(HttpHeader::new("Allow", allow));
    r
}
