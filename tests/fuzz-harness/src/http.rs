//! `http_session`: plugins/http's `HttpSession` driven by a script of client bytes, subscription
//! statuses, timer ticks and the client's EOF.
//!
//! The first byte selects the settings (small bounds or the defaults); then each step is
//! `[op]`: op % 4 = 0 client bytes `[len][bytes...]`, 1 a status `[which][status]` for the
//! newest subscription (or an older one), 2 the timer, 3 the EOF (the script ends).
//!
//! Checked after every call, from the session's documentation:
//! - every call returns `Ok`; nothing after a `Close` but further `Close`s;
//! - until a stream's body starts, every write is one whole answer head that `httparse` reads,
//!   with a status the frontend documents, followed by its `Content-Length` body (in the same
//!   write or the next ones; none after the head of an answer to HEAD);
//! - subscriptions use the probe or the FLV format, one probe at a time, and the FLV one only
//!   right after a probe was answered with something to play; a stream's body ends only with
//!   the last chunk; every subscription is unsubscribed once by the end;
//! - the session never buffers without bound: the bytes it was given but has not answered are
//!   at most one head and body's worth (checked through the answers it still owes).

use std::{collections::BTreeSet, sync::Arc};

use fstream_abi::{
    sdk::SessionLogic, Action, Event, Outbox, SubscriptionStatus, SubscriptionStatus_NE,
};
use http::{
    encoder::{FLV_FORMAT, PROBE_FORMAT},
    response::LAST_CHUNK,
    session::HttpSession,
    settings::Settings,
};

const STATUSES: &[u16] = &[200, 204, 400, 403, 404, 405, 408, 413, 414, 431, 503];
/// What the harness's HTTP handler answers with (99 must come out as 500).
const HANDLER_STATUSES: &[u16] = &[200, 201, 204, 302, 304, 404, 500, 99];
/// The handler's prefix when the control byte asks for one.
const HANDLER_PREFIX: &str = "/h";

fn status_of(b: u8) -> SubscriptionStatus {
    match b % 9 {
        0 => SubscriptionStatus::Waiting,
        1 => SubscriptionStatus::PublisherStarted { media: true },
        2 => SubscriptionStatus::PublisherStarted { media: false },
        3 => SubscriptionStatus::PublisherLeft,
        4 => SubscriptionStatus::Ended,
        5 => SubscriptionStatus::NotFound,
        6 => SubscriptionStatus::Forbidden,
        7 => SubscriptionStatus::TooSlow,
        _ => SubscriptionStatus::SourceOpened { duration_ms: 1 },
    }
}

#[derive(Default)]
struct Model {
    closed: bool,
    streaming: Option<u32>,
    probe: Option<u32>,
    live: BTreeSet<u32>,
    newest: u32,
    body_ended: bool,
    /// Bytes of an answer's body still to come after its head was written alone.
    body_left: usize,
    /// The HTTP handler call waiting for its reply.
    call: Option<u64>,
    calls: u64,
}

fn check(m: &mut Model, out: &mut Outbox) {
    for a in out.take_known() {
        match a {
            Action::Close(_) => m.closed = true,
            _ if m.closed => panic!("an action after Close: {a:?}"),
            Action::SetTimer(ms) => assert!(ms > 0),
            // A body written after its head; an answer to HEAD has none, so a new answer's head
            // ends the wait (no body here starts like a status line).
            Action::Write(p) if m.body_left > 0 && !p.starts_with(b"HTTP/1.1 ") => {
                assert!(
                    p.len() <= m.body_left,
                    "a body longer than its Content-Length"
                );
                m.body_left -= p.len();
            }
            Action::Write(p) => {
                assert!(
                    !p.windows(6).any(|w| w == b"\r\nb: c"),
                    "a handler's header with a CR/LF went out"
                );
                if m.streaming.is_some() {
                    assert_eq!(&p[..], LAST_CHUNK, "a write inside a stream's body");
                    m.body_ended = true;
                    continue;
                }
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut r = httparse::Response::new(&mut headers);
                let n = match r.parse(&p) {
                    Ok(httparse::Status::Complete(n)) => n,
                    other => panic!(
                        "not one whole answer head: {other:?} {:?}",
                        String::from_utf8_lossy(&p)
                    ),
                };
                let code = r.code.unwrap_or(0);
                assert!(
                    STATUSES.contains(&code) || HANDLER_STATUSES.contains(&code),
                    "status {code}"
                );
                if let Some(len) = r
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                {
                    let len: usize = std::str::from_utf8(len.value).unwrap().parse().unwrap();
                    if p.len() == n {
                        // The body follows in writes of its own (none for HEAD).
                        m.body_left = len;
                    }
                    assert!(
                        p.len() == n + len || p.len() == n,
                        "body of {} for a length of {len}",
                        p.len() - n
                    );
                } else {
                    assert_eq!(p.len(), n, "bytes after a head without a length");
                }
            }
            Action::Subscribe {
                subscription,
                options,
                ..
            } => {
                assert!(
                    m.live.insert(subscription),
                    "subscription {subscription} twice"
                );
                assert!(subscription > m.newest);
                m.newest = subscription;
                match options.format.as_str() {
                    PROBE_FORMAT => {
                        assert!(m.probe.is_none() && m.streaming.is_none(), "two probes");
                        m.probe = Some(subscription);
                    }
                    FLV_FORMAT => {
                        assert!(m.probe.is_none() && m.streaming.is_none());
                        m.streaming = Some(subscription);
                    }
                    f => panic!("format {f}"),
                }
            }
            Action::Unsubscribe { subscription } => {
                assert!(
                    m.live.remove(&subscription),
                    "unsubscribed {subscription} twice"
                );
                if m.probe == Some(subscription) {
                    m.probe = None;
                }
            }
            Action::CallHttp { request, call } => {
                assert!(
                    m.call.is_none(),
                    "a second handler call before the first's reply"
                );
                assert!(
                    fstream_abi::path_under(&call.path, HANDLER_PREFIX),
                    "{} is not the handler's",
                    call.path
                );
                assert!(!call.path.contains(".."), "{}", call.path);
                assert!(request > m.calls, "call ids grow");
                m.calls = request;
                m.call = Some(request);
            }
            other => panic!("an action the HTTP frontend does not take: {other:?}"),
        }
    }
}

pub fn http_session(data: &[u8]) {
    let (c, mut script) = crate::control(data);
    let settings = if c & 1 != 0 {
        Settings {
            max_head_bytes: 64,
            max_headers: 3,
            max_body_bytes: 8,
            max_requests_per_connection: 3,
            ..Settings::default()
        }
    } else {
        Settings::default()
    };
    let handlers = c & 4 != 0;
    let mut s = HttpSession::new(Arc::new(settings), Default::default());
    if handlers {
        s = s.with_handlers(Arc::new(|| vec![HANDLER_PREFIX.to_string()]));
    }
    let mut m = Model::default();
    let mut out = Outbox::new();
    s.start(0, &mut out).unwrap();
    check(&mut m, &mut out);
    let mut now = 0;
    while let Some((&op, rest)) = script.split_first() {
        script = rest;
        now += 1;
        match op % 4 {
            0 => {
                let (&len, rest) = script.split_first().unwrap_or((&0, &[]));
                let take = (len as usize).min(rest.len());
                s.bytes(&rest[..take], now, &mut out).unwrap();
                script = &rest[take..];
            }
            1 => {
                let (which, st) = match script {
                    [w, st, rest @ ..] => {
                        script = rest;
                        (*w, *st)
                    }
                    _ => {
                        script = &[];
                        (0, 0)
                    }
                };
                let subscription = m.newest.saturating_sub(u32::from(which % 3));
                s.event(
                    Event::Subscription {
                        subscription,
                        status: SubscriptionStatus_NE::new(status_of(st)),
                    },
                    now,
                    &mut out,
                )
                .unwrap();
            }
            2 => s.timer(now, &mut out).unwrap(),
            // With a handler: its reply (to the call waiting, or a stale id).
            3 if handlers => {
                let (&b, rest) = script.split_first().unwrap_or((&0, &[]));
                script = rest;
                let status = HANDLER_STATUSES[usize::from(b) % HANDLER_STATUSES.len()];
                let request = match m.call {
                    Some(r) if b & 0x80 == 0 => {
                        m.call = None;
                        r
                    }
                    _ => m.calls + 1 + u64::from(b),
                };
                let mut reply = fstream_abi::HttpReply::text(status, "from the handler");
                reply
                    .headers
                    .push(fstream_abi::HttpHeader::new("X-Bad", "a\r\nb: c"));
                s.event(Event::HttpResult { request, reply }, now, &mut out)
                    .unwrap();
            }
            _ => break,
        }
        check(&mut m, &mut out);
    }
    s.closed(now, &mut out).unwrap();
    check(&mut m, &mut out);
    assert!(m.live.is_empty(), "left subscribed: {:?}", m.live);
}
