//! The `app-lobby` example end to end: decisions an app handler gives later (interface v2.1's
//! `AppVerdict::Defer` + `HostApi::decide`), commands it sends a client at any time
//! (`HostApi::call_client`), and a client's own commands, through the real host with RTMP
//! clients: the harness's byte-level client as moderator and guests, ffmpeg as a publisher and
//! as a guest that plays once admitted.
//!
//! Build first (`cargo build --workspace`). 127.0.0.1, ephemeral ports; every wait is bounded.

use std::{
    net::SocketAddr,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use fstream_e2e::{
    background, decoded_frames, ffmpeg_play,
    rtmp_client::{info_of, RtmpClient},
    Host, Root,
};
use fstream_media::{amf0::Amf0Value, rtmp::message::Command as RtmpCommand};

const WAIT: Duration = Duration::from_secs(20);

fn lobby_root(tag: &str, defer_timeout_ms: u64) -> Root {
    let root = Root::new(tag, &["rtmp", "app-lobby"]);
    root.write(
        "mods/app-lobby.toml",
        "apps = [\"studio\"]\nmoderator_key = \"k3y\"\nwait_ms = 20000\n",
    );
    root.write(
        "mods/host.toml",
        &format!("app_defer_timeout_ms = {defer_timeout_ms}\n"),
    );
    root
}

/// The next command named `name` the moderator gets (skipping the others).
fn next_named(c: &mut RtmpClient, name: &str) -> RtmpCommand {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let cmd = c
            .command_within(left)
            .unwrap_or_else(|| panic!("no {name:?} command within {WAIT:?}"));
        if cmd.name == name {
            return cmd;
        }
    }
}

/// The guest id in a `waiting`/`left` notice.
fn notice_id(cmd: &RtmpCommand) -> u64 {
    cmd.args[0].get_f64("id").expect("an id") as u64
}

fn items(v: &Amf0Value) -> &[Amf0Value] {
    match v {
        Amf0Value::StrictArray(items) => items,
        other => panic!("not an array: {other:?}"),
    }
}

fn peer_of(cmd: &RtmpCommand) -> String {
    cmd.args[0].get_str("peer").unwrap_or("").to_string()
}

/// A guest connects; the moderator hears of it. Returns (guest, its id).
fn guest_arrives(addr: SocketAddr, moderator: &mut RtmpClient) -> (RtmpClient, u64) {
    let mut g = RtmpClient::new(addr);
    g.send_connect("studio");
    let notice = next_named(moderator, "waiting");
    assert_eq!(
        peer_of(&notice),
        g.sock.local_addr().unwrap().to_string(),
        "{notice:?}"
    );
    (g, notice_id(&notice))
}

fn call(c: &mut RtmpClient, txn: f64, name: &str, args: Vec<Amf0Value>) -> RtmpCommand {
    c.command(0, name, txn, Amf0Value::Null, args);
    loop {
        let r = c.next_command();
        if r.transaction_id == txn && (r.name == "_result" || r.name == "_error") {
            return r;
        }
    }
}

/// Guests wait while nobody decides; the moderator hears of arrivals and departures and admits
/// or refuses; a guest nobody decides about is rejected by the host's deferral timeout; a
/// second moderator sees who waits; admitted guests play, others may not.
#[test]
fn guests_wait_until_a_moderator_decides_and_the_host_bounds_the_wait() {
    let root = lobby_root("lobby-history", 1500);
    let host = Host::start(&root, &["rtmp"], &[]);
    let addr = host.addr("rtmp");

    let mut m = RtmpClient::new(addr);
    let answer = m.connect("studio?key=k3y");
    assert_eq!(answer.name, "_result", "{answer:?}");
    let lobby = next_named(&mut m, "lobby");
    assert!(items(&lobby.args[0]).is_empty());

    // Two guests: neither hears anything while nobody decides.
    let (mut g1, id1) = guest_arrives(addr, &mut m);
    let (mut g2, id2) = guest_arrives(addr, &mut m);
    assert_ne!(id1, id2);
    // The first guest does not wait for its answer to ask for a stream (ffmpeg publishers
    // pipeline like this): the request waits unread in the socket while the call is held.
    g1.command(0, "createStream", 2.0, Amf0Value::Null, vec![]);
    assert!(
        g1.command_within(Duration::from_millis(400)).is_none(),
        "a guest got an answer nobody gave"
    );

    // A second moderator sees both waiting.
    let mut m2 = RtmpClient::new(addr);
    assert_eq!(m2.connect("studio?key=k3y").name, "_result");
    let list = next_named(&mut m2, "lobby");
    let ids: Vec<u64> = items(&list.args[0])
        .iter()
        .map(|g| g.get_f64("id").unwrap() as u64)
        .collect();
    assert_eq!(ids, [id1, id2]);

    // Admit the first: it is connected, then greeted, and may play.
    let r = call(&mut m, 2.0, "admit", vec![Amf0Value::Number(id1 as f64)]);
    assert_eq!(r.name, "_result", "{r:?}");
    let a = g1.connect_answer();
    assert_eq!(a.name, "_result");
    assert_eq!(info_of(&a).1, "NetConnection.Connect.Success");
    assert_eq!(g1.expect("admitted").args[0].as_str(), Some("Welcome"));
    // Held bytes are handed over once the answer is out.
    let created = g1.command_within(WAIT).unwrap_or_else(|| {
        panic!(
            "no answer to the pipelined createStream; log:\n{}",
            host.log()
        )
    });
    assert_eq!(created.transaction_id, 2.0, "{created:?}");
    let msid = created.args[0].as_f64().unwrap() as u32;
    g1.command(
        msid,
        "play",
        3.0,
        Amf0Value::Null,
        vec![Amf0Value::from("stage")],
    );
    let st = info_of(&g1.expect("onStatus")).1;
    assert!(st.starts_with("NetStream.Play."), "{st}");
    assert_ne!(st, "NetStream.Play.Failed");

    // Refuse the second, with a reason.
    let r = call(
        &mut m2,
        2.0,
        "refuse",
        vec![Amf0Value::Number(id2 as f64), Amf0Value::from("Not today")],
    );
    assert_eq!(r.name, "_result", "{r:?}");
    let a = g2.connect_answer();
    assert_eq!(a.name, "_error");
    assert_eq!(info_of(&a).1, "NetConnection.Connect.Rejected");
    assert!(info_of(&a).2.contains("Not today"), "{a:?}");
    // Deciding about a guest twice fails.
    let r = call(&mut m, 3.0, "admit", vec![Amf0Value::Number(id2 as f64)]);
    assert_eq!(r.name, "_error");

    // A guest that gives up: both moderators hear it left, and it cannot be admitted.
    let (g3, id3) = guest_arrives(addr, &mut m);
    let _ = next_named(&mut m2, "waiting");
    drop(g3);
    assert_eq!(notice_id(&next_named(&mut m, "left")), id3);
    assert_eq!(notice_id(&next_named(&mut m2, "left")), id3);
    let r = call(&mut m, 4.0, "admit", vec![Amf0Value::Number(id3 as f64)]);
    assert_eq!(r.name, "_error", "{r:?}");

    // Nobody decides: the host's deferral timeout (1.5 s here) rejects the guest.
    let started = Instant::now();
    let (mut g4, id4) = guest_arrives(addr, &mut m);
    let a = g4.connect_answer();
    assert_eq!(a.name, "_error");
    assert!(info_of(&a).2.contains("did not decide in time"), "{a:?}");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    let r = call(&mut m, 5.0, "admit", vec![Amf0Value::Number(id4 as f64)]);
    assert_eq!(
        r.name, "_error",
        "a guest the host rejected cannot be admitted"
    );

    // Guests have no say; the moderators' connection went on through all of it.
    let (g5, _) = guest_arrives(addr, &mut m);
    let r = call(&mut m, 6.0, "lobby", vec![]);
    assert_eq!(r.name, "_result");
    drop(g5.sock.shutdown(std::net::Shutdown::Both));
    host.wait_log("a guest left the lobby", WAIT);
}

/// ffmpeg publishes as a moderator; ffmpeg as a guest waits in the lobby (its connect
/// unanswered) until the moderator admits it, then decodes the stream.
#[test]
fn ffmpeg_waits_in_the_lobby_then_plays_once_admitted() {
    fstream_e2e::require(&["ffmpeg"]);
    let root = lobby_root("lobby-ffmpeg", 30_000);
    let host = Host::start(&root, &["rtmp"], &[]);
    let addr = host.addr("rtmp");

    let mut m = RtmpClient::new(addr);
    assert_eq!(m.connect("studio?key=k3y").name, "_result");
    let _ = next_named(&mut m, "lobby");

    let secs = 8;
    let mut publish = Command::new("ffmpeg");
    publish
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-preset",
            "ultrafast",
            "-f",
            "flv",
        ])
        .args(["-rtmp_app", "studio?key=k3y", "-rtmp_playpath", "stage"])
        .arg(format!("rtmp://{addr}/"));
    let publisher = background(publish, Duration::from_secs(40));
    host.wait_log("publishing stream=studio/stage", WAIT);

    let player = background(
        ffmpeg_play(&format!("rtmp://{addr}/studio/stage")),
        Duration::from_secs(40),
    );
    let notice = next_named(&mut m, "waiting");
    // Held a while: ffmpeg must simply wait for its connect's answer.
    thread::sleep(Duration::from_millis(1000));
    let r = call(
        &mut m,
        2.0,
        "admit",
        vec![Amf0Value::Number(notice_id(&notice) as f64)],
    );
    assert_eq!(r.name, "_result", "{r:?}");

    let (status, out, err) = player.join().unwrap();
    let frames = decoded_frames(&out);
    eprintln!("the admitted guest decoded {frames} frames");
    assert!(status.is_some(), "the player did not stop: {err}");
    assert!(frames >= 50, "{frames} frames decoded; ffmpeg said: {err}");
    let (status, _, err) = publisher.join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "publisher: {err}");
}
