//! The authenticator with a backend of the test's own: status mapping, the failure policy,
//! the cache and the bound on calls in flight.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Barrier, Mutex,
};

use abi_stable::std_types::RVec;
use fstream_abi::{AuthAction, AuthAction_NE, Credential_NE, Extension, Extension_NE, NetAddr};

use super::*;
use crate::client::{CallError, Reply};

/// One call as the backend got it: content type, body, signature.
type Call = (String, Vec<u8>, Option<String>);

/// Answers every call with `status` (0: a timeout), recording what it got.
#[derive(Clone, Default)]
struct Fake {
    calls: Arc<Mutex<Vec<Call>>>,
    status: Arc<AtomicUsize>,
    /// When set, each call waits here twice: once to say it runs, once to be let go.
    hold: Option<Arc<Barrier>>,
    /// The `Location` of every answer.
    location: Option<String>,
}

impl Fake {
    fn answering(status: u16) -> Self {
        let f = Fake::default();
        f.status.store(status.into(), Ordering::SeqCst);
        f
    }
    fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

impl Backend for Fake {
    fn call(&self, ct: &str, body: &[u8], sig: Option<&str>) -> Result<Reply, CallError> {
        self.calls
            .lock()
            .unwrap()
            .push((ct.into(), body.to_vec(), sig.map(Into::into)));
        if let Some(b) = &self.hold {
            b.wait();
            b.wait();
        }
        match self.status.load(Ordering::SeqCst) {
            0 => Err(CallError::Timeout {
                url: "http://test/".into(),
                ms: 1,
            }),
            s => Ok(Reply {
                status: u16::try_from(s).unwrap(),
                location: self.location.clone(),
            }),
        }
    }
}

fn settings(extra: &str) -> Settings {
    Settings::parse(&format!("url = \"http://test/\"\n{extra}")).unwrap()
}

fn request(action: AuthAction, query: Option<&str>) -> AuthRequest {
    let mut ext = RVec::new();
    if let Some(q) = query {
        ext.push(Extension_NE::new(Extension::Var {
            name: "query".into(),
            value: q.into(),
        }));
    }
    ext.push(Extension_NE::new(Extension::Var {
        name: "conn_id".into(),
        value: "17".into(),
    }));
    AuthRequest {
        user: "fier".into(),
        action: AuthAction_NE::new(action),
        credential: Credential_NE::new(Credential::Password("123".into())),
        stream: "fier/cam".into(),
        peer: "127.0.0.1:5555".into(),
        peer_addr: NetAddr::parse_or_unspecified("127.0.0.1:5555"),
        protocol: "rtmp".into(),
        ext,
    }
}

fn verdict<B: Backend>(a: &HttpAuth<B>, r: &AuthRequest) -> AuthVerdict {
    a.authenticate(r).unwrap()
}

#[test]
fn the_request_becomes_the_documented_json_body_and_is_signed() {
    let fake = Fake::answering(200);
    let a = HttpAuth::new(settings("hmac_secret = \"k\"\n"), fake.clone());
    let r = request(
        AuthAction::Publish,
        Some("a=b&user_password=123&token=t&channel-password=c"),
    );
    assert_eq!(verdict(&a, &r), AuthVerdict::Allow);
    let calls = fake.calls.lock().unwrap();
    let (ct, body, sig) = &calls[0];
    assert_eq!(ct, "application/json");
    assert_eq!(
        String::from_utf8(body.clone()).unwrap(),
        r#"{"action":"publish","protocol":"rtmp","app":"fier","stream":"cam","path":"fier/cam","user":"fier","password":"123","token":"","query":"a=b","ip":"127.0.0.1","client_addr":"127.0.0.1:5555","conn_id":"17"}"#
    );
    assert_eq!(sig.as_deref(), Some(body::signature(b"k", body).as_str()));
}

#[test]
fn the_nginx_style_sends_the_form() {
    let fake = Fake::answering(204);
    let a = HttpAuth::new(settings("style = \"nginx\"\n"), fake.clone());
    assert_eq!(
        verdict(&a, &request(AuthAction::Play, Some("room=1&password=x"))),
        AuthVerdict::Allow
    );
    let calls = fake.calls.lock().unwrap();
    assert_eq!(calls[0].0, "application/x-www-form-urlencoded");
    assert_eq!(
        calls[0].1,
        b"call=play&app=fier&name=cam&addr=127.0.0.1&clientid=17&room=1&user=fier&password=123"
    );
    // No secret, no signature.
    assert_eq!(calls[0].2, None);
}

#[test]
fn statuses_map_to_verdicts_and_failures_to_the_policy() {
    for (status, deny_policy, allow_policy) in [
        (200, Some(true), Some(true)),
        (299, Some(true), Some(true)),
        (401, Some(false), Some(false)),
        (403, Some(false), Some(false)),
        (404, Some(false), Some(true)),
        (302, Some(false), Some(true)),
        (500, Some(false), Some(true)),
        (0, Some(false), Some(true)), // a timeout
    ] {
        for (policy, expect) in [("deny", deny_policy), ("allow", allow_policy)] {
            let a = HttpAuth::new(
                settings(&format!("on_error = \"{policy}\"\n")),
                Fake::answering(status),
            );
            let v = verdict(&a, &request(AuthAction::Publish, None));
            assert_eq!(
                Some(v == AuthVerdict::Allow),
                expect,
                "{status} {policy}: {v:?}"
            );
            if let AuthVerdict::Deny(why) = &v {
                if status == 401 || status == 403 {
                    assert!(why.contains(&status.to_string()), "{why}");
                } else {
                    assert!(why.contains("backend unavailable"), "{why}");
                }
            }
        }
    }
}

#[test]
fn actions_not_listed_are_left_to_the_next_authenticator() {
    let fake = Fake::answering(200);
    let a = HttpAuth::new(settings("actions = [\"publish\"]\n"), fake.clone());
    assert_eq!(
        verdict(&a, &request(AuthAction::Play, None)),
        AuthVerdict::Abstain
    );
    assert_eq!(fake.count(), 0);
    assert_eq!(
        verdict(&a, &request(AuthAction::Publish, None)),
        AuthVerdict::Allow
    );
}

#[test]
fn answers_are_cached_for_identical_requests_until_they_expire() {
    let fake = Fake::answering(403);
    let a = HttpAuth::new(settings("cache_ms = 150\n"), fake.clone());
    let r = request(AuthAction::Publish, Some("a=b"));
    assert!(matches!(verdict(&a, &r), AuthVerdict::Deny(_)));
    // Another connection of the same client: same answer, no call.
    let mut again = r.clone();
    again.peer = "127.0.0.1:6666".into();
    assert!(matches!(verdict(&a, &again), AuthVerdict::Deny(_)));
    assert_eq!(fake.count(), 1);
    // A different request is asked.
    let other = request(AuthAction::Publish, Some("a=c"));
    fake.status.store(200, Ordering::SeqCst);
    assert_eq!(verdict(&a, &other), AuthVerdict::Allow);
    assert_eq!(fake.count(), 2);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(verdict(&a, &r), AuthVerdict::Allow);
    assert_eq!(fake.count(), 3);
}

#[test]
fn failures_are_not_cached() {
    let fake = Fake::answering(500);
    let a = HttpAuth::new(settings("cache_ms = 10000\n"), fake.clone());
    let r = request(AuthAction::Publish, None);
    for _ in 0..3 {
        assert!(matches!(verdict(&a, &r), AuthVerdict::Deny(_)));
    }
    assert_eq!(fake.count(), 3);
}

#[test]
fn past_max_concurrent_the_policy_answers_at_once() {
    let hold = Arc::new(Barrier::new(3));
    let fake = Fake {
        hold: Some(hold.clone()),
        ..Fake::answering(200)
    };
    let a = Arc::new(HttpAuth::new(
        settings("max_concurrent = 2\n"),
        fake.clone(),
    ));
    let running: Vec<_> = (0..2)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || verdict(&a, &request(AuthAction::Publish, None)))
        })
        .collect();
    hold.wait(); // both calls are in the backend now
    let started = Instant::now();
    let third = verdict(&a, &request(AuthAction::Publish, None));
    assert!(
        matches!(&third, AuthVerdict::Deny(w) if w.contains("max_concurrent")),
        "{third:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(fake.count(), 2);
    hold.wait(); // let them go
    for t in running {
        assert_eq!(t.join().unwrap(), AuthVerdict::Allow);
    }
    // The places are free again.
    let free = HttpAuth::new(settings("max_concurrent = 1\n"), Fake::answering(200));
    for _ in 0..3 {
        assert_eq!(
            verdict(&free, &request(AuthAction::Publish, None)),
            AuthVerdict::Allow
        );
    }
}

#[test]
fn secrets_never_reach_the_query() {
    assert_eq!(
        without_secrets("a=1&user_password=x&User-Password=y&user%5Fpassword=z&password&token=t&channel_password=c&b=2"),
        "a=1&b=2"
    );
    assert_eq!(without_secrets(""), "");
    assert_eq!(without_secrets("&&a"), "a");
}

#[test]
fn a_real_call_to_a_closed_port_fails_as_transport() {
    // Bind and drop, so the port is very likely closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = settings("timeout_ms = 2000\n");
    let s = Settings {
        url: format!("http://127.0.0.1:{port}/auth"),
        ..s
    };
    let backend = HttpBackend::new(&s);
    let e = backend.call(body::JSON, b"{}", None).unwrap_err();
    assert!(matches!(e, CallError::Transport { .. }), "{e}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");
}

fn redirecting(status: u16, location: &str) -> Fake {
    Fake {
        location: Some(location.into()),
        ..Fake::answering(status)
    }
}

fn renamed(name: &str) -> AuthVerdict {
    AuthVerdict::AllowWith(vec![Extension_NE::new(Extension::Rename(name.into()))].into())
}

#[test]
fn an_nginx_style_redirect_renames_a_publish_or_a_play() {
    for (status, location, to) in [
        (302, "cam2", "cam2"),
        (301, "/live/cam2", "cam2"),
        (307, "rtmp://other.example/live/cam2?x=1", "cam2"),
        (303, "rtmp://other.example:1935/live/cam%2D2/", "cam-2"),
    ] {
        let a = HttpAuth::new(
            settings("style = \"nginx\"\n"),
            redirecting(status, location),
        );
        for action in [AuthAction::Publish, AuthAction::Play] {
            assert_eq!(
                verdict(&a, &request(action, None)),
                renamed(to),
                "{status} {location}"
            );
        }
    }
}

#[test]
fn a_redirect_without_a_usable_name_or_in_json_style_meets_on_error() {
    for location in [
        "",
        "rtmp://host",
        "rtmp://host/",
        "a/..",
        "a b",
        ".hidden",
        "x/%2F",
    ] {
        let a = HttpAuth::new(
            settings("style = \"nginx\"\non_error = \"deny\"\n"),
            redirecting(302, location),
        );
        let v = verdict(&a, &request(AuthAction::Publish, None));
        assert!(
            matches!(&v, AuthVerdict::Deny(w) if w.contains("backend unavailable")),
            "{location:?}: {v:?}"
        );
    }
    // A redirect without any Location.
    let a = HttpAuth::new(settings("style = \"nginx\"\n"), Fake::answering(302));
    assert!(matches!(
        verdict(&a, &request(AuthAction::Publish, None)),
        AuthVerdict::Deny(_)
    ));
    // JSON backends are not nginx-rtmp: a 3xx is no answer.
    let a = HttpAuth::new(settings(""), redirecting(302, "cam2"));
    assert!(matches!(
        verdict(&a, &request(AuthAction::Publish, None)),
        AuthVerdict::Deny(_)
    ));
    // Nor does a token or a connect get renamed.
    let a = HttpAuth::new(settings("style = \"nginx\"\n"), redirecting(302, "cam2"));
    assert!(matches!(
        verdict(&a, &request(AuthAction::Token, None)),
        AuthVerdict::Deny(_)
    ));
}

#[test]
fn a_rename_is_cached_like_any_answer() {
    let fake = redirecting(302, "cam2");
    let a = HttpAuth::new(
        settings("style = \"nginx\"\ncache_ms = 10000\n"),
        fake.clone(),
    );
    let r = request(AuthAction::Publish, None);
    assert_eq!(verdict(&a, &r), renamed("cam2"));
    assert_eq!(verdict(&a, &r), renamed("cam2"));
    assert_eq!(fake.count(), 1);
}
