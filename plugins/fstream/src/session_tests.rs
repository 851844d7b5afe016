//! The session state machine with bytes in and actions out (no sockets, no host).

use std::sync::Arc;

use abi_stable::std_types::RResult;
use fstream_abi::{
    flags, sdk::SessionLogic, Action, AuthAction, AuthOutcome, AuthOutcome_NE, CloseMode,
    Credential, Event, MediaKind, MediaPacket, Outbox, OverflowPolicy, PublishConflict,
    PublishOutcome, PublishOutcome_NE, SubscriptionStatus, SubscriptionStatus_NE,
};
use fstream_media::flv::{build_on_metadata, write_file_header, write_tag, TagType};

use crate::{session::FstreamSession, settings::Settings};

fn frame(prelude: &[u8], action: &str) -> Vec<u8> {
    let mut v = prelude.to_vec();
    v.extend_from_slice(&(action.len() as u32).to_be_bytes());
    v.push(0);
    v.extend_from_slice(action.as_bytes());
    v
}

struct Harness {
    s: FstreamSession,
    now: u64,
}

impl Harness {
    fn new(settings: Settings) -> (Self, Vec<Action>) {
        let mut h = Harness {
            s: FstreamSession::new(Arc::new(settings)),
            now: 1000,
        };
        let mut out = Outbox::new();
        h.s.start(h.now, &mut out).unwrap();
        (h, out.take_known())
    }
    fn default() -> Self {
        Self::new(Settings::default()).0
    }
    fn bytes(&mut self, data: &[u8]) -> Vec<Action> {
        let mut out = Outbox::new();
        self.s.bytes(data, self.now, &mut out).unwrap();
        out.take_known()
    }
    fn event(&mut self, e: Event) -> Vec<Action> {
        let mut out = Outbox::new();
        self.s.event(e, self.now, &mut out).unwrap();
        out.take_known()
    }
    fn timer(&mut self, at: u64) -> Vec<Action> {
        self.now = at;
        let mut out = Outbox::new();
        self.s.timer(self.now, &mut out).unwrap();
        out.take_known()
    }
    fn closed(&mut self) -> Vec<Action> {
        let mut out = Outbox::new();
        self.s.closed(self.now, &mut out).unwrap();
        out.take_known()
    }
    /// A broadcaster authenticated and publishing; returns the actions of the publish start.
    fn live_broadcast(&mut self, action: &str, early: &[u8]) -> Vec<Action> {
        let mut input = frame(b"\n\n", action);
        input.extend_from_slice(early);
        let a = self.bytes(&input);
        assert!(
            matches!(a.as_slice(), [Action::Authenticate { .. }]),
            "{a:?}"
        );
        let a = self.event(auth_result(AuthOutcome::Allowed));
        assert!(matches!(a.as_slice(), [Action::Publish { .. }]), "{a:?}");
        self.event(publish_result(PublishOutcome::Started))
    }
}

/// The host's answer to the broadcaster's authentication (request 1).
fn auth_result(outcome: AuthOutcome) -> Event {
    Event::AuthResult {
        request: 1,
        outcome: AuthOutcome_NE::new(outcome),
    }
}

/// The host's answer to the broadcaster's publish (publication 1).
fn publish_result(outcome: PublishOutcome) -> Event {
    Event::PublishResult {
        publication: 1,
        outcome: PublishOutcome_NE::new(outcome),
    }
}

fn is_close_now(a: &Action) -> bool {
    matches!(a, Action::Close(CloseMode::Now))
}

fn no_writes(actions: &[Action]) -> bool {
    !actions.iter().any(|a| matches!(a, Action::Write(_)))
}

fn packets(actions: &[Action]) -> Vec<MediaPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Packet { packet, .. } => Some(packet.clone()),
            _ => None,
        })
        .collect()
}

fn concat(ps: &[MediaPacket]) -> Vec<u8> {
    ps.iter().flat_map(|p| p.payload.to_vec()).collect()
}

#[test]
fn start_arms_the_preamble_timer() {
    let (_, a) = Harness::new(Settings::default());
    assert!(matches!(a.as_slice(), [Action::SetTimer(10_000)]));
}

#[test]
fn framing_errors_close_without_writes() {
    let settings = Settings {
        max_prelude_bytes: 64,
        ..Settings::default()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("prelude too long", vec![b'x'; 100]),
        ("length 0", b"\n\n\0\0\0\0\0".to_vec()),
        ("length too large", b"\n\n\0\0\x10\x01\0".to_vec()),
        ("missing NUL", b"\n\n\0\0\0\x05\x01watch".to_vec()),
        ("invalid UTF-8", b"\n\n\0\0\0\x02\0\xff\xfe".to_vec()),
        ("item without =", frame(b"\n\n", "watch,user=fier,oops")),
        ("unknown action", frame(b"\n\n", "play,user=fier")),
        ("missing user", frame(b"\n\n", "watch,channel=x")),
        ("bad user name", frame(b"\n\n", "watch,user=../etc")),
        ("bad channel name", frame(b"\0", "watch,user=a,channel=a/b")),
        (
            "bufsize too large",
            frame(b"\n\n", "broadcast,user=a,token=t,bufsize=16777217"),
        ),
    ];
    for (what, input) in cases {
        let mut h = Harness::new(settings.clone()).0;
        let a = h.bytes(&input);
        assert!(no_writes(&a), "{what}: {a:?}");
        assert!(a.last().is_some_and(is_close_now), "{what}: {a:?}");
        // Nothing more happens after the close.
        assert!(h.bytes(b"more").is_empty(), "{what}");
    }
}

#[test]
fn bufsize_limit_comes_from_the_settings() {
    let settings = Settings {
        max_bufsize: 1000,
        ..Settings::default()
    };
    let mut h = Harness::new(settings).0;
    let a = h.bytes(&frame(b"\n\n", "broadcast,user=a,token=t,bufsize=1001"));
    assert!(
        matches!(a.as_slice(), [Action::Close(CloseMode::Now)]),
        "{a:?}"
    );
}

#[test]
fn preamble_may_arrive_byte_by_byte() {
    let mut h = Harness::default();
    let input = frame(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "watch,user=fier");
    let (last, head) = input.split_last().unwrap();
    for b in head {
        assert!(h.bytes(std::slice::from_ref(b)).is_empty());
    }
    let a = h.bytes(&[*last]);
    match a.as_slice() {
        [Action::Subscribe {
            stream, options, ..
        }] => {
            assert_eq!(stream.as_str(), "fier/default");
            assert_eq!(options.format.as_str(), "fstream");
            assert_eq!(options.wait_ms, 30_000);
            assert_eq!(options.overflow, OverflowPolicy::Disconnect);
            assert!(options.join_with_cache && options.audio && options.video);
            assert!(options.channel_password.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn preamble_timeout_closes_and_is_ignored_later() {
    let (mut h, _) = Harness::new(Settings {
        preamble_timeout_ms: 500,
        ..Settings::default()
    });
    assert!(h.bytes(b"\n\n\0\0").is_empty());
    // An early tick re-arms for the rest.
    assert!(matches!(h.timer(1200).as_slice(), [Action::SetTimer(300)]));
    let a = h.timer(1500);
    assert!(
        matches!(a.as_slice(), [Action::Close(CloseMode::Now)]),
        "{a:?}"
    );

    // Once the preamble is complete, the timer does nothing.
    let (mut h, _) = Harness::new(Settings {
        preamble_timeout_ms: 500,
        ..Settings::default()
    });
    h.bytes(&frame(b"\n\n", "watch,user=fier"));
    assert!(h.timer(5000).is_empty());
}

#[test]
fn eof_during_the_preamble_closes() {
    let mut h = Harness::default();
    h.bytes(b"\n\n\0");
    let a = h.closed();
    assert!(
        matches!(a.as_slice(), [Action::Close(CloseMode::Now)]),
        "{a:?}"
    );
}

#[test]
fn broadcast_auth_flow_with_password() {
    let settings = Settings {
        grace_ms: 1234,
        second_broadcaster: crate::settings::SecondBroadcaster::Reject,
        ..Settings::default()
    };
    let mut h = Harness::new(settings).0;
    let a = h.bytes(&frame(
        b"\n\n",
        "broadcast,user=fier,user-password=123,channel=cam,channel-password=cp",
    ));
    match a.as_slice() {
        [Action::Authenticate { request, auth }] => {
            assert_eq!(*request, 1);
            assert_eq!(auth.user.as_str(), "fier");
            assert_eq!(auth.action(), Some(AuthAction::Publish));
            assert_eq!(auth.credential(), Some(&Credential::Password("123".into())));
            assert_eq!(auth.stream.as_str(), "fier/cam");
        }
        other => panic!("{other:?}"),
    }
    // Bytes before the publish started wait.
    assert!(h.bytes(b"early").is_empty());
    let a = h.event(auth_result(AuthOutcome::Allowed));
    match a.as_slice() {
        [Action::Publish {
            publication,
            stream,
            options,
        }] => {
            assert_eq!(*publication, 1);
            assert_eq!(stream.as_str(), "fier/cam");
            assert_eq!(
                options.channel_password.as_ref().map(|p| p.as_str()),
                abi_stable::std_types::ROption::RSome("cp")
            );
            assert_eq!(options.conflict, PublishConflict::Reject);
            assert_eq!(options.grace_ms, 1234);
            assert_eq!(options.query.as_str(), "");
        }
        other => panic!("{other:?}"),
    }
    assert!(h.bytes(b" bytes").is_empty());
    let a = h.event(publish_result(PublishOutcome::Started));
    assert_eq!(concat(&packets(&a)), b"early bytes");
    let a = h.bytes(b"live");
    assert_eq!(concat(&packets(&a)), b"live");
    // EOF: unpublish, then close.
    let a = h.closed();
    assert!(
        matches!(
            a.as_slice(),
            [
                Action::Unpublish { publication: 1 },
                Action::Close(CloseMode::AfterFlush)
            ]
        ),
        "{a:?}"
    );
}

#[test]
fn broadcast_with_token_and_denials() {
    let mut h = Harness::default();
    let a = h.bytes(&frame(b"\n\n", "broadcast,user=fier,token=abc"));
    match a.as_slice() {
        [Action::Authenticate { auth, .. }] => {
            assert_eq!(auth.credential(), Some(&Credential::Token("abc".into())))
        }
        other => panic!("{other:?}"),
    }
    let a = h.event(auth_result(AuthOutcome::Denied("wrong token".into())));
    assert!(
        matches!(a.as_slice(), [Action::Close(CloseMode::Now)]),
        "{a:?}"
    );

    for outcome in [PublishOutcome::Busy, PublishOutcome::Refused("vod".into())] {
        let mut h = Harness::default();
        h.bytes(&frame(b"\n\n", "broadcast,user=fier,user_password=1"));
        h.event(auth_result(AuthOutcome::Allowed));
        let a = h.event(publish_result(outcome));
        assert!(
            matches!(a.as_slice(), [Action::Close(CloseMode::Now)]),
            "{a:?}"
        );
    }
}

#[test]
fn pending_bytes_are_bounded() {
    let mut h = Harness::new(Settings {
        max_pending_bytes: 10,
        ..Settings::default()
    })
    .0;
    let mut input = frame(b"\n\n", "broadcast,user=fier,user_password=1");
    input.extend_from_slice(b"0123456789");
    assert_eq!(h.bytes(&input).len(), 1);
    let a = h.bytes(b"x");
    assert!(
        matches!(a.as_slice(), [Action::Close(CloseMode::Now)]),
        "{a:?}"
    );
}

#[test]
fn eof_before_the_publish_started_still_delivers() {
    let mut h = Harness::default();
    let mut input = frame(b"\n\n", "broadcast,user=fier,user_password=1");
    input.extend_from_slice(b"short");
    h.bytes(&input);
    assert!(h.closed().is_empty());
    h.event(auth_result(AuthOutcome::Allowed));
    let a = h.event(publish_result(PublishOutcome::Started));
    assert_eq!(concat(&packets(&a)), b"short");
    assert!(matches!(
        a.as_slice(),
        [
            Action::Packet { .. },
            Action::Unpublish { .. },
            Action::Close(CloseMode::AfterFlush)
        ]
    ));
}

#[test]
fn bufsize_chunks_across_reads() {
    let mut h = Harness::default();
    // 5 bytes arrive with the preamble, before the publish starts.
    let a = h.live_broadcast("broadcast,user=fier,user_password=1,bufsize=4", b"GABCD");
    let p = packets(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(&p[0].payload[..], b"GABC");
    let mut got = concat(&p);
    for read in [&b"E"[..], b"FG", b"HIJKLMNOPQ", b"", b"RST"] {
        let p = packets(&h.bytes(read));
        assert!(p.iter().all(|p| p.len() % 4 == 0 && !p.is_empty()));
        assert!(p
            .iter()
            .all(|p| p.kind == MediaKind::Raw && p.flags == flags::KEYFRAME));
        got.extend(concat(&p));
    }
    assert_eq!(got, b"GABCDEFGHIJKLMNOPQRS");
    // The incomplete last chunk ("T") is not forwarded.
    let a = h.closed();
    assert!(packets(&a).is_empty());
}

#[test]
fn bufsize_zero_forwards_each_read() {
    let mut h = Harness::default();
    h.live_broadcast("broadcast,user=fier,user_password=1", b"");
    for read in [&b"a"[..], b"bcdef", b"\x47\x00"] {
        let p = packets(&h.bytes(read));
        assert_eq!(p.len(), 1);
        assert_eq!(&p[0].payload[..], read);
    }
}

#[test]
fn flv_broadcast_becomes_media_packets() {
    let mut file = Vec::new();
    write_file_header(&mut file, true, true);
    let meta = build_on_metadata(&[]).unwrap();
    write_tag(&mut file, TagType::Script, 0, &meta).unwrap();
    write_tag(&mut file, TagType::Video, 0, &[0x17, 0, 0, 0, 0, 1, 0x64]).unwrap();
    write_tag(&mut file, TagType::Audio, 0, &[0xAF, 0, 0x12, 0x10]).unwrap();
    write_tag(&mut file, TagType::Video, 0, &[0x17, 1, 0, 0, 0, 1]).unwrap();
    write_tag(&mut file, TagType::Audio, 21, &[0xAF, 1, 2, 3]).unwrap();
    write_tag(&mut file, TagType::Video, 40, &[0x27, 1, 0, 0, 0, 2]).unwrap();
    // Enhanced RTMP HEVC: SequenceStart, then a CodedFrames key frame.
    write_tag(&mut file, TagType::Video, 80, b"\x90hvc1\x01").unwrap();
    write_tag(&mut file, TagType::Video, 80, b"\x91hvc1\0\0\0\x02").unwrap();
    let mut h = Harness::default();
    // The header arrives with the preamble; the rest in odd pieces.
    let mut all = h.live_broadcast(
        "broadcast,user=fier,user_password=1,bufsize=188",
        &file[..5],
    );
    for piece in file[5..].chunks(7) {
        all.extend(h.bytes(piece));
    }
    let p = packets(&all);
    let got: Vec<(MediaKind, u8, u32, usize)> = p
        .iter()
        .map(|p| (p.kind, p.flags, p.timestamp, p.len()))
        .collect();
    assert_eq!(
        got,
        vec![
            (MediaKind::Script, flags::METADATA, 0, meta.len()),
            (MediaKind::Video, flags::SEQUENCE_HEADER, 0, 7),
            (MediaKind::Audio, flags::SEQUENCE_HEADER, 0, 4),
            (MediaKind::Video, flags::KEYFRAME, 0, 6),
            (MediaKind::Audio, 0, 21, 4),
            (MediaKind::Video, 0, 40, 6),
            (MediaKind::Video, flags::SEQUENCE_HEADER, 80, 6),
            (MediaKind::Video, flags::KEYFRAME, 80, 9),
        ]
    );
    assert_eq!(&p[3].payload[..], &[0x17, 1, 0, 0, 0, 1]);
}

#[test]
fn broken_flv_closes_the_broadcaster() {
    let mut h = Harness::default();
    let mut file = Vec::new();
    write_file_header(&mut file, true, true);
    h.live_broadcast("broadcast,user=fier,user_password=1", &file);
    let a = h.bytes(&[0x42; 16]);
    assert!(
        matches!(
            a.as_slice(),
            [
                Action::Unpublish { publication: 1 },
                Action::Close(CloseMode::Now)
            ]
        ),
        "{a:?}"
    );
}

#[test]
fn replaced_broadcaster_closes() {
    let mut h = Harness::default();
    h.live_broadcast("broadcast,user=fier,user_password=1", b"");
    let a = h.event(Event::PublicationReplaced { publication: 1 });
    assert!(
        matches!(a.as_slice(), [Action::Close(CloseMode::Now)]),
        "{a:?}"
    );
}

#[test]
fn watch_statuses() {
    let watch = |h: &mut Harness| {
        let a = h.bytes(&frame(
            b"\n\n",
            "watch,user=fier,channel=c,channel_password=pw,zz=1",
        ));
        match a.as_slice() {
            [Action::Subscribe {
                subscription,
                stream,
                options,
            }] => {
                assert_eq!(*subscription, 1);
                assert_eq!(stream.as_str(), "fier/c");
                assert_eq!(options.max_queue_bytes, 4096);
                assert_eq!(options.wait_ms, 77);
                assert_eq!(
                    options.channel_password.as_ref().map(|p| p.to_string()),
                    abi_stable::std_types::ROption::RSome("pw".to_string())
                );
            }
            other => panic!("{other:?}"),
        }
    };
    let settings = Settings {
        watcher_queue_bytes: 4096,
        watch_wait_ms: 77,
        ..Settings::default()
    };
    let status = |s| Event::Subscription {
        subscription: 1,
        status: SubscriptionStatus_NE::new(s),
    };
    for (s, close) in [
        (SubscriptionStatus::NotFound, Some(CloseMode::Now)),
        (SubscriptionStatus::Forbidden, Some(CloseMode::Now)),
        (SubscriptionStatus::TooSlow, Some(CloseMode::Now)),
        (SubscriptionStatus::Ended, Some(CloseMode::AfterFlush)),
        (SubscriptionStatus::Waiting, None),
        (SubscriptionStatus::PublisherStarted { media: false }, None),
        (SubscriptionStatus::PublisherLeft, None),
    ] {
        let mut h = Harness::new(settings.clone()).0;
        watch(&mut h);
        // The watcher's own bytes are ignored.
        assert!(h.bytes(b"ignored").is_empty());
        let a = h.event(status(s.clone()));
        match close {
            Some(mode) => assert!(
                a.iter()
                    .any(|x| matches!(x, Action::Close(m) if *m == mode)),
                "{s:?}: {a:?}"
            ),
            None => assert!(a.is_empty(), "{s:?}: {a:?}"),
        }
        assert!(no_writes(&a));
    }
    // Its EOF closes.
    let mut h = Harness::new(settings).0;
    watch(&mut h);
    let a = h.closed();
    assert!(a.last().is_some_and(is_close_now), "{a:?}");
}

#[test]
fn token_flow() {
    let mut h = Harness::default();
    let a = h.bytes(&frame(b"\n\n", "token,user=fier,user_password=123"));
    match a.as_slice() {
        [Action::IssueToken { request, auth }] => {
            assert_eq!(*request, 2);
            assert_eq!(auth.action(), Some(AuthAction::Token));
            assert_eq!(auth.credential(), Some(&Credential::Password("123".into())));
            assert_eq!(auth.user.as_str(), "fier");
        }
        other => panic!("{other:?}"),
    }
    // A half-close after the request does not cancel it.
    assert!(h.closed().is_empty());
    let token = "0123456789abcdef0123456789abcdef";
    let a = h.event(Event::TokenResult {
        request: 2,
        token: RResult::ROk(token.into()),
    });
    match a.as_slice() {
        [Action::Write(p), Action::Close(CloseMode::AfterFlush)] => {
            assert_eq!(&p[..], format!("{token}\n").as_bytes())
        }
        other => panic!("{other:?}"),
    }

    let mut h = Harness::default();
    h.bytes(&frame(b"\n\n", "token,user=fier,user_password=bad"));
    let a = h.event(Event::TokenResult {
        request: 2,
        token: RResult::RErr("wrong password".into()),
    });
    assert!(
        matches!(a.as_slice(), [Action::Close(CloseMode::Now)]),
        "{a:?}"
    );
}
