//! The lobby against a host that records what it is asked (the end-to-end test in
//! `tests/e2e/tests/rtmp.rs` drives it through the real host with RTMP clients).

use std::sync::{Arc, Mutex};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RStr, RVec},
};
use fstream_abi::{
    AppVerdict, AuthOutcome, AuthOutcome_NE, AuthRequest, CloseCall, ConnectCall, Extension,
    Extension_NE, HostApi, HostApi_TO, InterfaceVersion, LogLevel, LogRecord, NetAddr, PlayCall,
    PublishCall, INTERFACE,
};

use super::*;

#[derive(Clone, Default)]
struct FakeHost {
    /// (ticket, verdict) of each `decide` that found its call.
    decided: Arc<Mutex<Vec<(u64, AppVerdict)>>>,
    /// (connection, command name, args) of each `call_client`.
    told: Arc<Mutex<Vec<(u64, String, Value)>>>,
    /// Tickets still open on the host's side.
    open: Arc<Mutex<BTreeSet<u64>>>,
}

impl HostApi for FakeHost {
    fn max_level(&self) -> LogLevel {
        LogLevel::Off
    }
    fn enabled(&self, _: LogLevel, _: RStr<'_>) -> bool {
        false
    }
    fn log(&self, _: &LogRecord<'_>) {}
    fn authenticate(&self, _: &AuthRequest) -> AuthOutcome_NE {
        AuthOutcome_NE::new(AuthOutcome::Denied("no".into()))
    }
    fn interface(&self) -> InterfaceVersion {
        INTERFACE
    }
    fn decide(&self, ticket: u64, decision: AppDecision) -> bool {
        if !self.open.lock().unwrap().remove(&ticket) {
            return false;
        }
        let v = decision.verdict().cloned().unwrap();
        self.decided.lock().unwrap().push((ticket, v));
        true
    }
    fn call_client(&self, connection: u64, command: ClientCommand) -> bool {
        let args = serde_json::from_str(&command.args_json).unwrap();
        self.told
            .lock()
            .unwrap()
            .push((connection, command.name.to_string(), args));
        true
    }
}

struct World {
    host: FakeHost,
    lobby: Lobby,
}

fn caller(id: u64) -> Caller {
    Caller {
        connection: id,
        peer: format!("127.0.0.1:{id}").into(),
        peer_addr: NetAddr::parse_or_unspecified("127.0.0.1:1"),
    }
}

impl World {
    fn new(extra: &str) -> Self {
        let host = FakeHost::default();
        let api = HostApi_TO::from_ptr(RArc::new(host.clone()), TD_Opaque);
        let text = format!("apps = [\"studio\"]\nmoderator_key = \"k3y\"\n{extra}");
        let lobby = Lobby::new(Settings::parse(&text).unwrap(), api);
        World { host, lobby }
    }

    /// A connect as the host hands it over: with a ticket (the connection id + 1000 here).
    fn connect(&self, id: u64, query: &str) -> AppDecision {
        let ticket = 1000 + id;
        self.host.open.lock().unwrap().insert(ticket);
        let call = AppCall::Connect(ConnectCall {
            app: "studio".into(),
            tc_url: format!("rtmp://h/studio{query}").into(),
            args_json: "[{}]".into(),
            caller: caller(id),
            ext: RVec::from(vec![Extension_NE::new(Extension::Ticket(ticket))]),
        });
        self.lobby.call(&call).unwrap()
    }

    fn command(&self, id: u64, name: &str, args: Value) -> CommandReply {
        let call = CommandCall {
            app: "studio".into(),
            name: name.into(),
            args_json: args.to_string().into(),
            caller: caller(id),
            ext: RVec::new(),
        };
        self.lobby.command(&call).unwrap()
    }

    fn close(&self, id: u64) {
        let call = AppCall::Close(CloseCall {
            app: "studio".into(),
            caller: caller(id),
            ext: RVec::new(),
        });
        self.lobby.call(&call).unwrap();
    }

    fn play(&self, id: u64) -> AppVerdict {
        let call = AppCall::Play(PlayCall {
            app: "studio".into(),
            stream: "stage".into(),
            query: "".into(),
            caller: caller(id),
            ext: RVec::new(),
        });
        self.lobby.call(&call).unwrap().verdict().cloned().unwrap()
    }

    fn told(&self) -> Vec<(u64, String, Value)> {
        std::mem::take(&mut *self.host.told.lock().unwrap())
    }

    fn decided(&self) -> Vec<(u64, AppVerdict)> {
        std::mem::take(&mut *self.host.decided.lock().unwrap())
    }
}

fn verdict(d: &AppDecision) -> AppVerdict {
    d.verdict().cloned().unwrap()
}

#[test]
fn a_guest_waits_until_a_moderator_admits_it_and_may_play_after() {
    let w = World::new("");
    let m = w.connect(1, "?key=k3y");
    assert_eq!(verdict(&m), AppVerdict::Accept);
    assert_eq!(
        m.commands[0].name.as_str(),
        "lobby",
        "the moderator sees the lobby"
    );

    assert_eq!(verdict(&w.connect(2, "")), AppVerdict::Defer);
    let told = w.told();
    assert_eq!(told.len(), 1);
    assert_eq!((told[0].0, told[0].1.as_str()), (1, "waiting"));
    assert_eq!(told[0].2[0]["id"], 2);
    assert_eq!(
        w.play(2),
        AppVerdict::Reject("You have not been admitted".into())
    );

    assert_eq!(
        w.command(1, "admit", json!([2])),
        CommandReply::Result("true".into())
    );
    assert_eq!(w.decided(), [(1002, AppVerdict::Accept)]);
    assert_eq!(w.play(2), AppVerdict::Accept);
    // Twice: nobody waits any more.
    assert!(matches!(
        w.command(1, "admit", json!([2])),
        CommandReply::Error(_)
    ));
    // Guests cannot admit themselves or anyone.
    assert_eq!(verdict(&w.connect(3, "?key=wrong")), AppVerdict::Defer);
    assert_eq!(
        w.command(3, "admit", json!([3])),
        CommandReply::Error("\"Only a moderator may do that\"".into())
    );
    assert_eq!(w.command(3, "other", json!([])), CommandReply::NotHandled);
}

#[test]
fn refusals_leavers_and_latecomers() {
    let w = World::new("wait_ms = 50\nmax_waiting = 2\n");
    w.connect(1, "?key=k3y");
    w.connect(2, "");
    w.connect(3, "");
    // Full: refused at once, not deferred.
    assert!(matches!(verdict(&w.connect(4, "")), AppVerdict::Reject(r) if r.contains("full")));
    w.told();

    assert_eq!(
        w.command(1, "refuse", json!([2, "Not today"])),
        CommandReply::Result("true".into())
    );
    assert_eq!(
        w.decided(),
        [(1002, AppVerdict::Reject("Not today".into()))]
    );

    // A guest leaves while it waits: the moderators hear of it, and admitting it fails.
    w.close(3);
    assert_eq!(w.told(), [(1, "left".to_string(), json!([{ "id": 3 }]))]);
    assert!(matches!(
        w.command(1, "admit", json!([3])),
        CommandReply::Error(_)
    ));

    // The host answered a guest first (its own timeout): the moderator's admit fails, and the
    // guest is not marked admitted.
    w.connect(5, "");
    w.host.open.lock().unwrap().remove(&1005);
    assert_eq!(
        w.command(1, "admit", json!([5])),
        CommandReply::Error("\"Guest 5 is gone\"".into())
    );
    assert!(matches!(w.play(5), AppVerdict::Reject(_)));

    // Past wait_ms the lobby refuses a guest itself, on the next call.
    w.connect(6, "");
    w.told();
    std::thread::sleep(Duration::from_millis(80));
    let CommandReply::Result(list) = w.command(1, "lobby", json!([])) else {
        panic!("lobby")
    };
    assert_eq!(list.as_str(), "[]");
    assert_eq!(
        w.decided(),
        [(
            1006,
            AppVerdict::Reject("No moderator admitted you in time".into())
        )]
    );
    assert_eq!(w.told(), [(1, "left".to_string(), json!([{ "id": 6 }]))]);
}

#[test]
fn only_moderators_publish_and_a_moderator_that_leaves_hears_nothing_more() {
    let w = World::new("");
    w.connect(1, "?a=b&key=k3y");
    let publish = |id| {
        let call = AppCall::Publish(PublishCall {
            app: "studio".into(),
            stream: "stage".into(),
            kind: "live".into(),
            query: "".into(),
            caller: caller(id),
            ext: RVec::new(),
        });
        verdict(&w.lobby.call(&call).unwrap())
    };
    assert_eq!(publish(1), AppVerdict::Accept);
    assert!(matches!(publish(9), AppVerdict::Reject(_)));
    w.close(1);
    w.connect(2, "");
    assert!(w.told().is_empty());
}

#[test]
fn without_a_ticket_a_guest_is_refused_not_held_forever() {
    let w = World::new("");
    let call = AppCall::Connect(ConnectCall {
        app: "studio".into(),
        tc_url: "rtmp://h/studio".into(),
        args_json: "[{}]".into(),
        caller: caller(2),
        ext: RVec::new(),
    });
    assert!(matches!(
        verdict(&w.lobby.call(&call).unwrap()),
        AppVerdict::Reject(_)
    ));
}

#[test]
fn the_shipped_settings_parse_and_bad_ones_say_why() {
    Settings::parse(include_str!("../app-lobby.toml")).unwrap();
    let err = |t: &str| Settings::parse(t).unwrap_err().to_string();
    assert!(err("apps = [\"s\"]").contains("moderator_key"));
    assert!(err("apps = [\"s\"]\nmoderator_key = \"\"").contains("empty"));
    assert!(err("apps = []\nmoderator_key = \"k\"").contains("at least one"));
    assert!(err("apps = [\"s\"]\nmoderator_key = \"k\"\nmax_waiting = 0").contains("max_waiting"));
    assert!(err("apps = [\"s\"]\nmoderator_key = \"k\"\nwait = 1").contains("wait"));
}
