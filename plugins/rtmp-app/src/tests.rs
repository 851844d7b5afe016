use std::sync::{Arc, Mutex};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RStr, RString},
};
use fstream_abi::{
    outcome_allows, AppCall_NE, AppHandlerBox, AppVerdict, Caller, CloseCall, HostApi, HostApi_TO,
    InterfaceVersion, LogLevel, LogRecord, NetAddr, INTERFACE,
};

use super::*;

/// A host whose authenticators know one user with a password and a token, and which records
/// every request.
#[derive(Clone, Default)]
struct FakeHost {
    seen: Arc<Mutex<Vec<AuthRequest>>>,
}

impl HostApi for FakeHost {
    fn max_level(&self) -> LogLevel {
        LogLevel::Off
    }
    fn enabled(&self, _: LogLevel, _: RStr<'_>) -> bool {
        false
    }
    fn log(&self, _: &LogRecord<'_>) {}
    fn authenticate(&self, request: &AuthRequest) -> AuthOutcome_NE {
        self.seen.lock().unwrap().push(request.clone());
        let ok = request.user.as_str() == "alice"
            && match request.credential() {
                Some(Credential::Password(p)) => p.as_str() == "s3cret&more",
                Some(Credential::Token(t)) => t.as_str() == "tok",
                _ => false,
            };
        AuthOutcome_NE::new(if ok {
            AuthOutcome::Allowed
        } else {
            AuthOutcome::Denied("auth-test: wrong password".into())
        })
    }
    fn interface(&self) -> InterfaceVersion {
        INTERFACE
    }
    /// Users `rec` (password `r`, may record) and `norec` (password `n`, may not), besides
    /// alice, who is allowed without a word about recording; a stream called `old` is renamed
    /// to `new`.
    fn authorize(&self, request: &AuthRequest) -> fstream_abi::AuthAnswer {
        let grant = match (request.user.as_str(), request.credential()) {
            ("rec", Some(Credential::Password(p))) if p.as_str() == "r" => Some(true),
            ("norec", Some(Credential::Password(p))) if p.as_str() == "n" => Some(false),
            _ => None,
        };
        let Some(may) = grant else {
            let outcome = self.authenticate(request);
            let grants = if outcome_allows(&outcome) && request.stream.ends_with("/old") {
                RVec::from(vec![Extension_NE::new(Extension::Rename("new".into()))])
            } else {
                RVec::new()
            };
            return fstream_abi::AuthAnswer { outcome, grants };
        };
        self.seen.lock().unwrap().push(request.clone());
        fstream_abi::AuthAnswer {
            outcome: AuthOutcome_NE::new(AuthOutcome::Allowed),
            grants: RVec::from(vec![Extension_NE::new(Extension::MayRecord(may))]),
        }
    }
}

fn init_context(settings: &str) -> InitContext {
    InitContext {
        name: "rtmp-app".into(),
        settings: settings.into(),
        settings_path: "mods/rtmp-app.toml".into(),
        root: ".".into(),
        host_interface: INTERFACE,
        ext: RVec::new(),
    }
}

fn caller() -> Caller {
    Caller {
        connection: 1,
        peer: "127.0.0.1:5000".into(),
        peer_addr: NetAddr::parse_or_unspecified("127.0.0.1:5000"),
    }
}

struct Fixture {
    handler: AppHandlerBox,
    seen: Arc<Mutex<Vec<AuthRequest>>>,
}

/// Builds the handler the way the host does: through `init` and the ABI box.
fn fixture(settings: &str) -> Fixture {
    let fake = FakeHost::default();
    let seen = fake.seen.clone();
    let host: HostApiBox = HostApi_TO::from_ptr(RArc::new(fake), TD_Opaque);
    let instance = init(&host, &init_context(settings)).unwrap();
    assert_eq!(instance.kinds(), kinds::APP_HANDLER);
    let handler = instance
        .objects
        .into_iter()
        .find_map(|o| match o.into_enum() {
            Ok(PluginObject::AppHandler(h)) => Some(h),
            _ => None,
        })
        .unwrap();
    Fixture { handler, seen }
}

impl Fixture {
    fn call(&self, call: AppCall) -> AppVerdict {
        let decision = self
            .handler
            .call(&AppCall_NE::new(call))
            .into_result()
            .unwrap();
        assert!(decision.commands.is_empty());
        decision.verdict().cloned().unwrap()
    }
    fn connect(&self, app: &str) -> AppVerdict {
        self.call(AppCall::Connect(ConnectCall {
            app: app.into(),
            tc_url: RString::from(format!("rtmp://localhost/{app}")),
            args_json: "[{}]".into(),
            caller: caller(),
            ext: RVec::new(),
        }))
    }
    fn publish(&self, app: &str, stream: &str, query: &str) -> AppVerdict {
        self.call(AppCall::Publish(PublishCall {
            app: app.into(),
            stream: stream.into(),
            kind: "live".into(),
            query: query.into(),
            caller: caller(),
            ext: RVec::new(),
        }))
    }
    /// A publish of `kind`: the verdict, and what the decision says about recording.
    fn publish_as(&self, app: &str, query: &str, kind: &str) -> (AppVerdict, Option<bool>) {
        let decision = self
            .handler
            .call(&AppCall_NE::new(AppCall::Publish(PublishCall {
                app: app.into(),
                stream: "cam".into(),
                kind: kind.into(),
                query: query.into(),
                caller: caller(),
                ext: RVec::new(),
            })))
            .into_result()
            .unwrap();
        (
            decision.verdict().cloned().unwrap(),
            fstream_abi::may_record(&decision.ext),
        )
    }
    fn play(&self, app: &str, stream: &str) -> AppVerdict {
        self.play_q(app, stream, "")
    }
    fn play_q(&self, app: &str, stream: &str, query: &str) -> AppVerdict {
        self.call(AppCall::Play(PlayCall {
            app: app.into(),
            stream: stream.into(),
            query: query.into(),
            caller: caller(),
            ext: RVec::new(),
        }))
    }
    fn asked(&self) -> Vec<AuthRequest> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn reason(v: &AppVerdict) -> &str {
    match v {
        AppVerdict::Reject(r) => r.as_str(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn serves_every_app() {
    let f = fixture("");
    let apps: Vec<String> = f.handler.apps().into_iter().map(String::from).collect();
    assert_eq!(apps, ["*"]);
}

#[test]
fn connect_accepts_any_valid_app_by_default() {
    let f = fixture("");
    assert_eq!(f.connect("alice"), AppVerdict::Accept);
    assert_eq!(f.connect("alice/"), AppVerdict::Accept);
    assert_eq!(f.connect("vod"), AppVerdict::Accept);
    assert_eq!(reason(&f.connect("")), "Missing app path");
    assert!(reason(&f.connect("live/room1")).starts_with("Application paths are not supported"));
    assert!(reason(&f.connect("..")).starts_with("Invalid application name"));
    assert!(f.asked().is_empty(), "connect asks no authenticator");
}

#[test]
fn allow_list_rejects_other_apps_like_rtmplite() {
    let f = fixture("allowed_apps = [\"alice\"]");
    assert_eq!(f.connect("alice"), AppVerdict::Accept);
    assert_eq!(f.connect("vod"), AppVerdict::Accept);
    assert_eq!(reason(&f.connect("bob")), "Application not found: bob");
    // Also enforced on publish and play, whatever the frontend did at connect.
    assert_eq!(
        reason(&f.publish("bob", "cam", "user_password=x")),
        "Application not found: bob"
    );
    assert_eq!(reason(&f.play("bob", "cam")), "Application not found: bob");
    assert!(f.asked().is_empty());
}

#[test]
fn publish_checks_the_password_from_the_query_string() {
    let f = fixture("");
    assert_eq!(
        f.publish("alice", "cam", "user_password=s3cret%26more"),
        AppVerdict::Accept
    );
    let asked = f.asked();
    assert_eq!(asked.len(), 1);
    let r = &asked[0];
    assert_eq!(r.user.as_str(), "alice");
    assert_eq!(r.action(), Some(AuthAction::Publish));
    assert_eq!(
        r.credential(),
        Some(&Credential::Password("s3cret&more".into()))
    );
    assert_eq!(r.stream.as_str(), "alice/cam");
    assert_eq!(r.peer.as_str(), "127.0.0.1:5000");
    assert_eq!(r.peer_addr, caller().peer_addr);
    assert_eq!(r.protocol.as_str(), "rtmp");
    // The client's other arguments and its connection, for authenticators that want them; the
    // credential is not among them.
    assert_eq!(fstream_abi::var(&r.ext, "query"), Some(""));
    assert_eq!(fstream_abi::var(&r.ext, "conn_id"), Some("1"));
    assert_eq!(
        f.publish(
            "alice",
            "cam",
            "room=a%20b&user_password=s3cret%26more&token=x&k"
        ),
        AppVerdict::Accept
    );
    assert_eq!(
        fstream_abi::var(&f.asked()[0].ext, "query"),
        Some("room=a%20b&k")
    );

    // The key may be spelt with '-', and a trailing '/' on the app is ignored.
    assert_eq!(
        f.publish("alice/", "cam", "user-password=s3cret%26more"),
        AppVerdict::Accept
    );
    assert_eq!(f.asked()[0].stream.as_str(), "alice/cam");

    // The frontend passes the stream name's query, then the app's: the first value counts.
    assert_eq!(
        f.publish(
            "alice",
            "cam",
            "user_password=s3cret%26more&user_password=wrong"
        ),
        AppVerdict::Accept
    );
    assert_eq!(
        f.publish("alice", "cam", "token=tok&user_password=wrong"),
        AppVerdict::Reject("Authentication failed for alice/cam".into()),
        "a password anywhere is preferred to a token, as fstream does"
    );
    f.asked();
}

#[test]
fn publish_with_a_token() {
    let f = fixture("");
    assert_eq!(f.publish("alice", "cam", "token=tok"), AppVerdict::Accept);
    assert_eq!(
        f.asked()[0].credential(),
        Some(&Credential::Token("tok".into()))
    );
}

#[test]
fn publish_denied_gives_a_reason_without_the_authenticators_details() {
    let f = fixture("");
    let v = f.publish("alice", "cam", "user_password=wrong");
    assert_eq!(reason(&v), "Authentication failed for alice/cam");
    assert!(!reason(&v).contains("wrong"));
    // Another user's password does not open alice's app.
    let v = f.publish("bob", "cam", "user_password=s3cret%26more");
    assert_eq!(reason(&v), "Authentication failed for bob/cam");
    assert_eq!(f.asked()[1].user.as_str(), "bob");
}

#[test]
fn publish_without_credentials_still_asks_and_then_says_what_is_missing() {
    let f = fixture("");
    let v = f.publish("alice", "cam", "");
    assert!(reason(&v).contains("needs credentials"), "{v:?}");
    assert!(reason(&v).contains("?user_password="));
    // Asked with no credential: an authenticator may allow that (say, by address).
    assert_eq!(f.asked()[0].credential(), Some(&Credential::None));
}

#[test]
fn publish_to_the_vod_app_is_refused_before_authentication() {
    let f = fixture("");
    let v = f.publish("vod", "movie", "user_password=s3cret%26more");
    assert!(reason(&v).contains("'vod' is not allowed"), "{v:?}");
    assert!(f.asked().is_empty());
    // ... and plays of it are open.
    assert_eq!(f.play("vod", "movie"), AppVerdict::Accept);

    let f = fixture("vod_app = \"films\"");
    assert!(reason(&f.publish("films", "x", "")).contains("'films'"));
    assert_eq!(
        f.publish("alice", "vod", "token=tok"),
        AppVerdict::Accept,
        "only the configured VOD app is special"
    );
}

#[test]
fn bad_stream_names_and_queries_are_refused_before_authentication() {
    let f = fixture("");
    assert!(reason(&f.publish("alice", "../etc", "token=tok")).starts_with("Invalid stream name"));
    assert!(reason(&f.publish("alice", "a/b", "token=tok")).starts_with("Invalid stream name"));
    assert!(reason(&f.publish("alice", "", "token=tok")).starts_with("Invalid stream name"));
    assert!(reason(&f.play("alice", ".hidden")).starts_with("Invalid stream name"));
    let v = f.publish("alice", "cam", "user_password=%FF");
    assert!(reason(&v).starts_with("Invalid query string"), "{v:?}");
    assert!(f.asked().is_empty());
}

#[test]
fn reasons_quote_client_names_short_and_escaped() {
    let f = fixture("");
    let long = format!("{}\n", "x".repeat(200));
    let r = reason(&f.publish("alice", &long, "")).to_string();
    assert!(r.len() < 120, "{r}");
    assert!(!r.contains('\n'));
    assert!(r.ends_with("..."));
}

#[test]
fn publish_auth_can_be_turned_off() {
    let f = fixture("require_publish_auth = false");
    assert_eq!(f.publish("anyone", "cam", ""), AppVerdict::Accept);
    assert!(f.asked().is_empty());
    assert!(reason(&f.publish("vod", "cam", "")).contains("not allowed"));
}

#[test]
fn play_and_close_are_accepted() {
    let f = fixture("");
    assert_eq!(f.play("alice", "cam"), AppVerdict::Accept);
    assert_eq!(
        f.call(AppCall::Close(CloseCall {
            app: "alice".into(),
            caller: caller(),
            ext: RVec::new(),
        })),
        AppVerdict::Accept
    );
    assert!(f.asked().is_empty(), "playing asks no authenticator");
}

#[test]
fn init_refuses_bad_settings() {
    let host: HostApiBox = HostApi_TO::from_ptr(RArc::new(FakeHost::default()), TD_Opaque);
    let e = init(&host, &init_context("allowed = [\"x\"]"))
        .err()
        .unwrap();
    assert!(e.message.contains("allowed"), "{e}");
    assert!(init(&host, &init_context("vod_app = \"a b\"")).is_err());
}

#[test]
fn a_rename_the_authenticators_grant_is_answered_as_a_redirect() {
    let f = fixture("");
    assert_eq!(
        f.publish("alice", "old", "user_password=s3cret%26more"),
        AppVerdict::Redirect("new".into())
    );
    assert_eq!(
        f.publish("alice", "cam", "user_password=s3cret%26more"),
        AppVerdict::Accept
    );
    // Plays are open and not asked about by default.
    f.asked();
    assert_eq!(f.play("alice", "old"), AppVerdict::Accept);
    assert!(f.asked().is_empty());
}

#[test]
fn with_play_auth_plays_are_asked_refused_or_renamed() {
    let f = fixture("play_auth = true");
    assert!(matches!(f.play("alice", "cam"), AppVerdict::Reject(_)));
    let asked = f.asked();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].action(), Some(AuthAction::Play));
    assert_eq!(asked[0].stream.as_str(), "alice/cam");
    assert_eq!(
        f.play_q("alice", "cam", "token=tok&room=1"),
        AppVerdict::Accept
    );
    assert_eq!(
        f.play_q("alice", "old", "user_password=s3cret%26more"),
        AppVerdict::Redirect("new".into())
    );
    let asked = f.asked();
    assert_eq!(fstream_abi::var(&asked[0].ext, "query"), Some("room=1"));
    // The VOD app stays open.
    assert_eq!(f.play("vod", "film"), AppVerdict::Accept);
    assert!(f.asked().is_empty());
}

#[test]
fn recording_on_request_needs_the_users_permission_by_default() {
    let f = fixture("");
    let accept = AppVerdict::Accept;
    for kind in ["record", "append", "appendWithGap"] {
        // Granted: the decision says nothing, the frontend records as asked.
        assert_eq!(
            f.publish_as("rec", "user_password=r", kind),
            (accept.clone(), None)
        );
        // Refused, or never mentioned: accepted live, without the recording.
        assert_eq!(
            f.publish_as("norec", "user_password=n", kind),
            (accept.clone(), Some(false))
        );
        assert_eq!(
            f.publish_as("alice", "user_password=s3cret%26more", kind),
            (accept.clone(), Some(false)),
            "an authenticator that grants nothing grants no recording"
        );
        assert_eq!(
            f.publish_as("alice", "token=tok", kind),
            (accept.clone(), Some(false))
        );
        // A wrong password is still refused, whatever the type.
        assert!(matches!(
            f.publish_as("rec", "user_password=x", kind).0,
            AppVerdict::Reject(_)
        ));
    }
    // Live publishes carry nothing about recording.
    assert_eq!(
        f.publish_as("norec", "user_password=n", "live"),
        (accept.clone(), None)
    );
    assert_eq!(
        f.publish_as("alice", "user_password=s3cret%26more", "LIVE"),
        (accept, None)
    );
    // Types are FMS's, case and all: "Record" is no request to record.
    assert_eq!(
        f.publish_as("norec", "user_password=n", "Record"),
        (AppVerdict::Accept, None)
    );
}

#[test]
fn recording_on_request_can_be_opened_to_all_but_those_refused() {
    let f = fixture("record_requires_permission = false");
    let accept = AppVerdict::Accept;
    assert_eq!(
        f.publish_as("alice", "user_password=s3cret%26more", "record"),
        (accept.clone(), None)
    );
    assert_eq!(
        f.publish_as("rec", "user_password=r", "append"),
        (accept.clone(), None)
    );
    assert_eq!(
        f.publish_as("norec", "user_password=n", "record"),
        (accept.clone(), Some(false)),
        "an explicit no still counts"
    );
    // Without authentication nobody has a grant: the setting alone decides.
    let f = fixture("require_publish_auth = false");
    assert_eq!(
        f.publish_as("anyone", "", "record"),
        (accept.clone(), Some(false))
    );
    let f = fixture("require_publish_auth = false\nrecord_requires_permission = false");
    assert_eq!(f.publish_as("anyone", "", "record"), (accept, None));
}
