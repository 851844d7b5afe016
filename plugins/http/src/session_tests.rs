//! The session driven byte by byte and event by event, as the host would.

use std::sync::Arc;

use fstream_abi::{
    sdk::SessionLogic, Action, CloseMode, Event, Outbox, SubscriptionStatus, SubscriptionStatus_NE,
};

use crate::{
    encoder::{FLV_FORMAT, PROBE_FORMAT},
    session::HttpSession,
    settings::Settings,
};

struct Harness {
    s: HttpSession,
}

/// What one call asked of the host, in a form tests compare.
#[derive(Debug, PartialEq, Eq)]
enum Did {
    Wrote(String),
    Close(CloseMode),
    Timer(u64),
    Subscribe(u32, String, String, Option<String>),
    Unsubscribe(u32),
}

fn did(out: &mut Outbox) -> Vec<Did> {
    out.take_known()
        .into_iter()
        .filter_map(|a| match a {
            Action::Write(p) => Some(Did::Wrote(String::from_utf8_lossy(&p).into_owned())),
            Action::Close(m) => Some(Did::Close(m)),
            Action::SetTimer(ms) => Some(Did::Timer(ms)),
            Action::Subscribe {
                subscription,
                stream,
                options,
            } => Some(Did::Subscribe(
                subscription,
                stream.to_string(),
                options.format.to_string(),
                options
                    .channel_password
                    .into_option()
                    .map(|p| p.to_string()),
            )),
            Action::Unsubscribe { subscription } => Some(Did::Unsubscribe(subscription)),
            _ => None,
        })
        .collect()
}

impl Harness {
    fn new(settings: Settings) -> Self {
        let mut s = HttpSession::new(Arc::new(settings), Default::default());
        let mut out = Outbox::new();
        s.start(0, &mut out).unwrap();
        assert_eq!(did(&mut out), vec![Did::Timer(15_000)]);
        Self { s }
    }
    fn send(&mut self, bytes: &[u8]) -> Vec<Did> {
        let mut out = Outbox::new();
        self.s.bytes(bytes, 0, &mut out).unwrap();
        did(&mut out)
    }
    fn status(&mut self, subscription: u32, st: SubscriptionStatus) -> Vec<Did> {
        let mut out = Outbox::new();
        self.s
            .event(
                Event::Subscription {
                    subscription,
                    status: SubscriptionStatus_NE::new(st),
                },
                0,
                &mut out,
            )
            .unwrap();
        did(&mut out)
    }
}

fn status_line(d: &[Did]) -> String {
    d.iter()
        .find_map(|x| match x {
            Did::Wrote(s) => s.lines().next().map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default()
}

fn closes(d: &[Did]) -> bool {
    d.iter().any(|x| matches!(x, Did::Close(_)))
}

#[test]
fn a_live_stream_is_probed_then_played_as_chunked_flv() {
    let mut h = Harness::new(Settings::default());
    let d = h.send(b"GET /fier/cam.flv?channel_password=pw HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        d,
        vec![Did::Subscribe(
            1,
            "fier/cam".into(),
            PROBE_FORMAT.into(),
            Some("pw".into())
        )]
    );
    let d = h.status(1, SubscriptionStatus::PublisherStarted { media: true });
    assert_eq!(d[0], Did::Unsubscribe(1));
    assert_eq!(status_line(&d), "HTTP/1.1 200 OK");
    let Did::Wrote(head) = &d[1] else {
        panic!("{d:?}")
    };
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    assert!(head.contains("Content-Type: video/x-flv\r\n"));
    assert!(head.contains("Access-Control-Allow-Origin: *\r\n"));
    assert!(head.contains("Connection: close\r\n"));
    assert_eq!(
        d[2],
        Did::Subscribe(2, "fier/cam".into(), FLV_FORMAT.into(), Some("pw".into()))
    );
    // The probe's later statuses and the client's bytes change nothing.
    assert!(h.status(1, SubscriptionStatus::Ended).is_empty());
    assert!(h.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_empty());
    // The publisher leaves and returns: still playing. The stream ends: the last chunk.
    assert!(h.status(2, SubscriptionStatus::PublisherLeft).is_empty());
    let d = h.status(2, SubscriptionStatus::Ended);
    assert_eq!(
        d,
        vec![
            Did::Unsubscribe(2),
            Did::Wrote("0\r\n\r\n".into()),
            Did::Close(CloseMode::AfterFlush)
        ]
    );
}

#[test]
fn refusals_have_their_status_and_keep_the_connection_when_they_can() {
    let mut h = Harness::new(Settings::default());
    h.send(b"GET /fier/none.flv HTTP/1.1\r\nHost: x\r\n\r\n");
    let d = h.status(1, SubscriptionStatus::NotFound);
    assert_eq!(status_line(&d), "HTTP/1.1 404 Not Found");
    assert!(!closes(&d), "{d:?}");
    // The same connection: a wrong channel password, then a raw stream.
    h.send(b"GET /fier/locked.flv HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        status_line(&h.status(2, SubscriptionStatus::Forbidden)),
        "HTTP/1.1 403 Forbidden"
    );
    h.send(b"HEAD /fier/raw.flv HTTP/1.1\r\nHost: x\r\n\r\n");
    let d = h.status(3, SubscriptionStatus::PublisherStarted { media: false });
    assert_eq!(status_line(&d), "HTTP/1.1 404 Not Found");
    let Did::Wrote(w) = &d[1] else { panic!() };
    assert!(w.ends_with("\r\n\r\n"), "HEAD got a body: {w:?}");
    // A method, a path, and what cannot be read at all (which closes).
    let d = h.send(b"POST /fier/cam.flv HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(status_line(&d), "HTTP/1.1 405 Method Not Allowed");
    let Did::Wrote(w) = &d[0] else { panic!() };
    assert!(w.contains("Allow: GET, HEAD, OPTIONS\r\n"));
    assert_eq!(
        status_line(&h.send(b"GET /fier/cam.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")),
        "HTTP/1.1 404 Not Found"
    );
    let d = h.send(b"GET /fier/%2e%2e/x.flv HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status_line(&d), "HTTP/1.1 400 Bad Request");
    let d = h.send(b"OPTIONS /fier/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status_line(&d), "HTTP/1.1 204 No Content");
    let d = h.send(b"GARBAGE\r\n\r\n");
    assert_eq!(status_line(&d), "HTTP/1.1 400 Bad Request");
    assert!(d.contains(&Did::Close(CloseMode::AfterFlush)));
    assert!(h
        .send(b"GET /fier/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        .is_empty());
}

#[test]
fn bounds_on_the_head_the_headers_the_body_and_idle_time() {
    let settings = || Settings {
        max_head_bytes: 256,
        max_headers: 4,
        max_body_bytes: 10,
        ..Settings::default()
    };
    let mut h = Harness::new(settings());
    let d = h.send(format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n", "a".repeat(300)).as_bytes());
    assert_eq!(
        status_line(&d),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let mut h = Harness::new(settings());
    let d = h.send(format!("GET /{}", "a".repeat(300)).as_bytes());
    assert_eq!(status_line(&d), "HTTP/1.1 414 URI Too Long");
    let mut h = Harness::new(settings());
    let d = h.send(b"GET / HTTP/1.1\r\nHost: x\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\n\r\n");
    assert_eq!(
        status_line(&d),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let mut h = Harness::new(settings());
    let d = h.send(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n");
    assert_eq!(status_line(&d), "HTTP/1.1 413 Content Too Large");
    let mut h = Harness::new(settings());
    let d = h.send(b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(status_line(&d), "HTTP/1.1 400 Bad Request");
    let mut h = Harness::new(settings());
    let d = h.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status_line(&d), "HTTP/1.1 400 Bad Request", "no Host");
    // Half a request, then the idle timer: 408 and close. Nothing at all: a quiet close.
    let mut h = Harness::new(settings());
    assert!(h.send(b"GET /fier/c").is_empty());
    let mut out = Outbox::new();
    h.s.timer(0, &mut out).unwrap();
    let d = did(&mut out);
    assert_eq!(status_line(&d), "HTTP/1.1 408 Request Timeout");
    let mut h = Harness::new(settings());
    let mut out = Outbox::new();
    h.s.timer(0, &mut out).unwrap();
    assert_eq!(did(&mut out), vec![Did::Close(CloseMode::AfterFlush)]);
}

#[test]
fn pipelined_requests_are_answered_in_order_and_http_1_0_closes() {
    let mut h = Harness::new(Settings::default());
    let d = h.send(
        b"GET /a/b.mp4 HTTP/1.1\r\nHost: x\r\n\r\nGET /fier/cam.flv HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(status_line(&d), "HTTP/1.1 404 Not Found");
    assert!(
        matches!(d.last(), Some(Did::Subscribe(1, _, _, _))),
        "{d:?}"
    );
    // The third waits for the probe's answer; the second then plays, and the third is dropped.
    let d = h.status(1, SubscriptionStatus::Waiting);
    assert!(
        d.iter()
            .any(|x| matches!(x, Did::Subscribe(2, _, f, _) if f == FLV_FORMAT)),
        "{d:?}"
    );
    let mut h = Harness::new(Settings::default());
    let d = h.send(b"GET /x HTTP/1.0\r\n\r\n");
    assert_eq!(status_line(&d), "HTTP/1.1 404 Not Found");
    assert!(d.contains(&Did::Close(CloseMode::AfterFlush)), "{d:?}");
}

/// A session whose host has HTTP handlers under `/hello` and `/api/`.
fn with_handlers() -> HttpSession {
    let prefixes: crate::session::Prefixes =
        Arc::new(|| vec!["/hello".to_string(), "/api/".to_string()]);
    let mut s =
        HttpSession::new(Arc::new(Settings::default()), Default::default()).with_handlers(prefixes);
    s.start(0, &mut Outbox::new()).unwrap();
    s
}

#[test]
fn requests_under_a_handlers_prefix_go_to_the_host_and_its_reply_is_framed_by_us() {
    use fstream_abi::{HttpHeader, HttpReply};
    let mut s = with_handlers();
    let mut out = Outbox::new();
    // A POST with a body, then a pipelined GET of our own that waits for the reply.
    s.bytes(
        b"POST /hello/x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello\
          GET /nosuch/page.flv HTTP/1.1\r\nHost: h\r\n\r\n",
        0,
        &mut out,
    )
    .unwrap();
    let calls: Vec<_> = out
        .take_known()
        .into_iter()
        .filter_map(|a| match a {
            Action::CallHttp { request, call } => Some((request, call)),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1, "one call, the GET waits");
    let (request, call) = &calls[0];
    assert_eq!(
        (
            call.method.as_str(),
            call.path.as_str(),
            call.query.as_str()
        ),
        ("POST", "/hello/x", "y=1")
    );
    assert_eq!(call.body.as_slice(), b"hello");
    assert_eq!(call.header("x-a"), Some("b"));

    // The reply: a header with a CR/LF injection and the handler's own framing are dropped.
    let mut reply = HttpReply::new(201, "application/json", b"{}");
    reply
        .headers
        .push(HttpHeader::new("X-Evil", "a\r\nSet-Cookie: x"));
    reply.headers.push(HttpHeader::new("Content-Length", "99"));
    reply.headers.push(HttpHeader::new("X-Ok", "yes"));
    let mut out = Outbox::new();
    s.event(
        Event::HttpResult {
            request: *request,
            reply,
        },
        0,
        &mut out,
    )
    .unwrap();
    let d = did(&mut out);
    let Did::Wrote(head) = &d[0] else {
        panic!("{d:?}")
    };
    assert!(head.starts_with("HTTP/1.1 201 Created\r\n"), "{head}");
    assert!(head.contains("Content-Type: application/json\r\n"));
    assert!(head.contains("X-Ok: yes\r\n") && head.contains("Content-Length: 2\r\n"));
    assert!(!head.contains("Evil") && !head.contains("99"), "{head}");
    assert_eq!(d[1], Did::Wrote("{}".into()));
    // Then the pipelined request is ours (404 without any such stream: a probe first).
    assert!(
        d.iter()
            .any(|x| matches!(x, Did::Subscribe(_, s, _, _) if s == "nosuch/page")),
        "{d:?}"
    );

    // A traversal under the prefix is refused before any call; /helloo is not under /hello.
    let mut s = with_handlers();
    let mut out = Outbox::new();
    s.bytes(
        b"GET /hello/%2e%2e/x HTTP/1.1\r\nHost: h\r\n\r\n",
        0,
        &mut out,
    )
    .unwrap();
    let d = did(&mut out);
    assert!(status_line(&d).starts_with("HTTP/1.1 400"), "{d:?}");
    let mut s = with_handlers();
    let mut out = Outbox::new();
    s.bytes(b"GET /helloo HTTP/1.1\r\nHost: h\r\n\r\n", 0, &mut out)
        .unwrap();
    assert!(
        !out.known().any(|a| matches!(a, Action::CallHttp { .. })),
        "/helloo is not under /hello"
    );
    // A stale reply (another request id) is ignored.
    let mut s = with_handlers();
    let mut out = Outbox::new();
    s.bytes(b"HEAD /api/v1 HTTP/1.1\r\nHost: h\r\n\r\n", 0, &mut out)
        .unwrap();
    let mut out = Outbox::new();
    s.event(
        Event::HttpResult {
            request: 77,
            reply: HttpReply::text(200, "no"),
        },
        0,
        &mut out,
    )
    .unwrap();
    assert!(out.is_empty());
    // HEAD: the length of what GET would get, no body.
    s.event(
        Event::HttpResult {
            request: 1,
            reply: HttpReply::text(200, "yes"),
        },
        0,
        &mut out,
    )
    .unwrap();
    let d = did(&mut out);
    assert!(matches!(&d[0], Did::Wrote(h) if h.contains("Content-Length: 4\r\n")));
    assert!(!d.iter().any(|x| *x == Did::Wrote("yes\n".into())), "{d:?}");
}
