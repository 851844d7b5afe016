//! The notifier with a poster of the test's own: bodies, per-kind URLs, retries and their
//! bounds.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Instant,
};

use fstream_abi::{Caller, NetAddr, NoticeKind, NoticeKind_NE};

use super::*;

/// One post as the poster got it: URL, content type, body, signature.
type Posted = (String, String, Vec<u8>, Option<String>);

/// Answers with the scripted replies in turn (0: a timeout), then with the last one.
#[derive(Clone, Default)]
struct Script {
    posted: Arc<Mutex<Vec<(Posted, Instant)>>>,
    replies: Arc<Mutex<VecDeque<u16>>>,
}

impl Script {
    fn new(replies: &[u16]) -> Self {
        let s = Script::default();
        s.replies.lock().unwrap().extend(replies);
        s
    }
    fn posted(&self) -> Vec<Posted> {
        self.posted
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
    fn times(&self) -> Vec<Instant> {
        self.posted
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| *t)
            .collect()
    }
}

impl Post for Script {
    fn post(
        &self,
        url: &str,
        ct: &str,
        body: &[u8],
        sig: Option<&str>,
    ) -> Result<Reply, CallError> {
        self.posted.lock().unwrap().push((
            (url.into(), ct.into(), body.to_vec(), sig.map(Into::into)),
            Instant::now(),
        ));
        let mut r = self.replies.lock().unwrap();
        let status = if r.len() > 1 {
            r.pop_front().unwrap()
        } else {
            *r.front().unwrap_or(&200)
        };
        match status {
            0 => Err(CallError::Timeout {
                url: url.into(),
                ms: 1,
            }),
            s => Ok(Reply::status(s)),
        }
    }
}

fn settings(extra: &str) -> Settings {
    Settings::parse(&format!(
        "url = \"http://auth/\"\n{extra}\n[notify]\nurl = \"http://events/\"\nretry_ms = 5\nmax_retry_ms = 20\n"
    ))
    .unwrap()
}

fn settings_notify(notify: &str) -> Settings {
    Settings::parse(&format!(
        "url = \"http://auth/\"\n[notify]\nretry_ms = 5\nmax_retry_ms = 20\n{notify}\n"
    ))
    .unwrap()
}

fn notice(kind: NoticeKind) -> Notice {
    Notice {
        kind: NoticeKind_NE::new(kind),
        protocol: "rtmp".into(),
        app: "fier".into(),
        name: "cam".into(),
        user: "fier".into(),
        query: "room=5&user_password=123".into(),
        caller: Caller {
            connection: 17,
            peer: "127.0.0.1:5555".into(),
            peer_addr: NetAddr::parse_or_unspecified("127.0.0.1:5555"),
        },
        path: "".into(),
        bytes: 1000,
        duration_ms: 2500,
        unix_ms: 0,
        ext: Default::default(),
    }
}

#[test]
fn a_notice_becomes_the_documented_json_body_signed() {
    let script = Script::new(&[200]);
    let n = Notifier::new(&settings("hmac_secret = \"k\""), script.clone());
    let mut done = notice(NoticeKind::PublishEnd);
    done.unix_ms = 1_700_000_000_000;
    assert_eq!(n.deliver(&done), Delivery::Delivered { attempts: 1 });
    let posted = script.posted();
    let (url, ct, body, sig) = &posted[0];
    assert_eq!(
        (url.as_str(), ct.as_str()),
        ("http://events/", "application/json")
    );
    assert_eq!(
        String::from_utf8(body.clone()).unwrap(),
        r#"{"action":"publish_done","protocol":"rtmp","app":"fier","stream":"cam","path":"fier/cam","user":"fier","query":"room=5","ip":"127.0.0.1","client_addr":"127.0.0.1:5555","conn_id":"17","bytes":1000,"duration_ms":2500,"file":"","unix_ms":1700000000000}"#
    );
    assert_eq!(sig.as_deref(), Some(body::signature(b"k", body).as_str()));
}

#[test]
fn the_nginx_style_sends_the_form_with_the_file_of_a_recording() {
    let script = Script::new(&[204]);
    let n = Notifier::new(&settings("style = \"nginx\""), script.clone());
    let mut rec = notice(NoticeKind::RecordDone);
    rec.caller = Caller {
        connection: 0,
        peer: "".into(),
        peer_addr: NetAddr::parse_or_unspecified(""),
    };
    rec.path = "recordings/fier/cam-1.flv".into();
    assert_eq!(n.deliver(&rec), Delivery::Delivered { attempts: 1 });
    let (_, ct, body, sig) = &script.posted()[0];
    assert_eq!(ct, "application/x-www-form-urlencoded");
    assert_eq!(
        String::from_utf8(body.clone()).unwrap(),
        "call=record_done&app=fier&name=cam&addr=&clientid=&room=5&user=fier&bytes=1000\
         &duration_ms=2500&path=recordings%2Ffier%2Fcam-1.flv&unix_ms=0"
    );
    assert_eq!(sig, &None);
}

#[test]
fn each_kind_goes_to_its_own_url_or_the_common_one_and_events_filter() {
    let script = Script::new(&[200]);
    let s = settings_notify(
        "url = \"http://all/\"\non_publish_done = \"http://done/\"\n\
         events = [\"publish\", \"publish_done\", \"play_done\"]",
    );
    let n = Notifier::new(&s, script.clone());
    for kind in [
        NoticeKind::PublishStart,
        NoticeKind::PublishEnd,
        NoticeKind::PlayStart,
        NoticeKind::PlayEnd,
        NoticeKind::RecordDone,
    ] {
        n.deliver(&notice(kind));
    }
    let urls: Vec<_> = script.posted().into_iter().map(|p| p.0).collect();
    assert_eq!(urls, ["http://all/", "http://done/", "http://all/"]);
    // Only per-kind URLs: the other kinds are not sent.
    let script = Script::new(&[200]);
    let n = Notifier::new(
        &settings_notify("on_record_done = \"http://rec/\""),
        script.clone(),
    );
    assert_eq!(n.deliver(&notice(NoticeKind::PlayStart)), Delivery::NotSent);
    assert!(matches!(
        n.deliver(&notice(NoticeKind::RecordDone)),
        Delivery::Delivered { .. }
    ));
    assert_eq!(script.posted().len(), 1);
}

#[test]
fn without_notify_nothing_is_sent() {
    let s = Settings::parse("url = \"http://auth/\"\n").unwrap();
    let n = Notifier::new(&s, Script::new(&[200]));
    assert_eq!(
        n.deliver(&notice(NoticeKind::PublishStart)),
        Delivery::NotSent
    );
    assert_eq!(
        Notifier::off().deliver(&notice(NoticeKind::PublishStart)),
        Delivery::NotSent
    );
}

#[test]
fn failures_are_retried_with_a_growing_bounded_wait_until_delivered() {
    // A timeout, a 503, a 429, then delivered.
    let script = Script::new(&[0, 503, 429, 200]);
    let n = Notifier::new(&settings(""), script.clone());
    assert_eq!(
        n.deliver(&notice(NoticeKind::PlayStart)),
        Delivery::Delivered { attempts: 4 }
    );
    let t = script.times();
    let waits: Vec<_> = t.windows(2).map(|w| w[1] - w[0]).collect();
    // 5, 10, 20 ms (retry_ms 5, doubling, max_retry_ms 20).
    for (w, least) in waits.iter().zip([5, 10, 20]) {
        assert!(*w >= Duration::from_millis(least), "{waits:?}");
    }
    // The same body every time.
    let bodies: Vec<_> = script.posted().into_iter().map(|p| p.2).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn attempts_are_bounded() {
    let script = Script::new(&[500]);
    let n = Notifier::new(
        &settings_notify("url = \"http://e/\"\nmax_attempts = 3"),
        script.clone(),
    );
    assert!(matches!(
        n.deliver(&notice(NoticeKind::PublishStart)),
        Delivery::GaveUp { attempts: 3, .. }
    ));
    assert_eq!(script.posted().len(), 3);
}

#[test]
fn a_refusal_is_not_retried() {
    for status in [301, 400, 404, 410] {
        let script = Script::new(&[status]);
        let n = Notifier::new(&settings(""), script.clone());
        assert_eq!(
            n.deliver(&notice(NoticeKind::PublishStart)),
            Delivery::Refused {
                status,
                attempts: 1
            }
        );
        assert_eq!(script.posted().len(), 1, "{status}");
    }
}

#[test]
fn a_notice_past_max_age_is_tried_once_only() {
    let script = Script::new(&[503]);
    let n = Notifier::new(
        &settings_notify("url = \"http://e/\"\nmax_age_ms = 1000"),
        script.clone(),
    );
    let mut old = notice(NoticeKind::PublishEnd);
    old.unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 5_000;
    assert!(matches!(
        n.deliver(&old),
        Delivery::GaveUp { attempts: 1, .. }
    ));
}

#[test]
fn the_backoff_doubles_and_stops_at_its_cap() {
    let s = Settings::parse(
        "url = \"http://a/\"\n[notify]\nurl = \"http://e/\"\nretry_ms = 500\nmax_retry_ms = 3000\n",
    )
    .unwrap();
    let n = s.notify.unwrap();
    let waits: Vec<_> = (1..=6).map(|a| n.backoff(a).as_millis()).collect();
    assert_eq!(waits, [500, 1000, 2000, 3000, 3000, 3000]);
    assert_eq!(n.backoff(200).as_millis(), 3000);
}
