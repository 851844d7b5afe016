//! Who may record (issue 14): an RTMP publisher asks for a recording with the publish type
//! `record` or `append`; the stock `rtmp-app` honours it only for users the authenticator
//! grants it to (`record = yes` in users/NAME.ini) while `record_requires_permission` is on,
//! its default. Anyone else is published live and not recorded, and told
//! `NetStream.Record.NoAccess` after `NetStream.Publish.Start`.
//!
//! The publisher is the harness's byte-level RTMP client (ffmpeg, OBS and librtmp always say
//! `live`), sending an ffmpeg-made FLV at its real pace; the viewers are ffmpeg over RTMP, the
//! recordings are checked with ffprobe. One host lives through the whole history, including a
//! reload that opens recording to everyone but a user who says `record = no`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{mpsc, Arc},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use fstream_e2e::{
    bin, ffmpeg_video_frames, generated_flv,
    rtmp_client::{send_flv_tags_paced, Info, RtmpClient},
    run_with_timeout, video_frames_in, Host, Root,
};

const WAIT: Duration = Duration::from_secs(20);
/// Seconds of media each publisher sends (25 fps).
const SECS: u32 = 4;

/// Publishes `flv` to `app/cam` with publish type `kind`, paced; the onStatus answers come
/// through the channel as soon as the publish is answered, then media flows and the client
/// leaves.
fn publish(
    addr: SocketAddr,
    app: &str,
    query: &str,
    kind: &str,
    flv: Arc<Vec<u8>>,
) -> (mpsc::Receiver<Vec<Info>>, JoinHandle<usize>) {
    let (tx, rx) = mpsc::channel();
    let (app, key, kind) = (app.to_string(), format!("cam?{query}"), kind.to_string());
    let h = thread::spawn(move || {
        let mut c = RtmpClient::new(addr);
        assert_eq!(c.connect(&app).name, "_result");
        c.set_chunk_size(4096);
        let msid = c.create_stream(2.0);
        let statuses = c.publish_typed(msid, &key, &kind, Duration::from_millis(300));
        let started = statuses[0].1 == "NetStream.Publish.Start";
        tx.send(statuses).unwrap();
        if !started {
            return 0;
        }
        let sent = send_flv_tags_paced(&mut c, msid, &flv);
        thread::sleep(Duration::from_millis(200));
        sent
    });
    (rx, h)
}

fn codes(statuses: &[Info]) -> Vec<&str> {
    statuses.iter().map(|s| s.1.as_str()).collect()
}

fn flv_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "flv"));
    v.sort();
    v
}

struct History {
    root: Root,
    host: Host,
    flv: Arc<Vec<u8>>,
    /// "recording finished" lines so far.
    finished: usize,
}

impl History {
    /// One publish of `app/cam` as `kind`, watched by ffmpeg while it lasts. Returns the
    /// statuses the publisher got; checks that the viewer decoded the live stream.
    fn round(&mut self, app: &str, password: &str, kind: &str) -> Vec<Info> {
        self.round_with(app, &format!("user_password={password}"), kind)
    }

    /// [`Self::round`] with the stream name's query string (`token=...`).
    fn round_with(&mut self, app: &str, query: &str, kind: &str) -> Vec<Info> {
        let rtmp = self.host.addr("rtmp");
        let (rx, publisher) = publish(rtmp, app, query, kind, self.flv.clone());
        let statuses = rx.recv_timeout(WAIT).expect("an answer to publish");
        assert_eq!(
            statuses[0].1, "NetStream.Publish.Start",
            "{app} {kind}: {statuses:?}"
        );
        let t = Instant::now();
        let (frames, err) = ffmpeg_video_frames(&format!("rtmp://{rtmp}/{app}/cam"), &[], 2.0);
        eprintln!(
            "{app} {kind}: {:?}; live viewer decoded {frames} frames in {:?}",
            codes(&statuses),
            t.elapsed()
        );
        assert!(frames >= 40, "{app} {kind}: the viewer got {frames}: {err}");
        assert_eq!(
            publisher.join().unwrap(),
            (SECS * 25) as usize,
            "frames sent"
        );
        statuses
    }

    /// After a round that was to be recorded: its file, checked with ffprobe.
    fn recorded(&mut self, app: &str, file: impl Fn(&Path) -> bool) -> PathBuf {
        self.finished += 1;
        self.host
            .expect_log_count("recording finished", self.finished, WAIT);
        let files: Vec<PathBuf> = flv_files(&self.root.path().join("recordings").join(app))
            .into_iter()
            .filter(|p| file(p))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let frames = video_frames_in(&files[0]);
        eprintln!("{}: {frames} frames", files[0].display());
        assert_eq!(frames, (SECS * 25) as usize, "{}", files[0].display());
        files[0].clone()
    }

    /// After a round that was not to be recorded: no sink was opened, no file exists.
    fn not_recorded(&self, app: &str) {
        let log = self.host.log();
        assert!(
            !log.contains(&format!("flv_recorder: recording stream={app}/cam")),
            "{app}/cam was recorded; log:\n{log}"
        );
        assert!(
            flv_files(&self.root.path().join("recordings").join(app)).is_empty(),
            "a file for {app}"
        );
        assert_eq!(log.matches("recording finished").count(), self.finished);
    }
}

fn is_new_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("cam-"))
}

#[test]
fn only_users_allowed_to_record_get_their_record_and_append_publishes_recorded() {
    fstream_e2e::require(&["ffmpeg", "ffprobe"]);
    let root = Root::new(
        "record-permission",
        &["auth-ini", "fstream", "rtmp", "rtmp-app", "flv-recorder"],
    );
    // fier says nothing about recording, ann may, bob may not.
    root.user("fier", "123");
    root.write("users/ann.ini", "[DEFAULT]\npassword=456\nrecord = yes\n");
    root.write("users/bob.ini", "[DEFAULT]\npassword=789\nrecord = no\n");
    root.write("mods/rtmp.toml", "grace_ms = 200\n");
    let flv = Arc::new(generated_flv(root.path(), SECS));
    let host = Host::start(&root, &["rtmp", "fstream"], &[]);
    let mut h = History {
        root,
        host,
        flv,
        finished: 0,
    };
    let no_access = ["NetStream.Publish.Start", "NetStream.Record.NoAccess"];

    // The default: fier's record and append are published live, not recorded.
    for kind in ["record", "append"] {
        let st = h.round("fier", "123", kind);
        assert_eq!(codes(&st), no_access, "fier {kind}");
        assert_eq!(
            st[1].0, "status",
            "a status, not an error: the publish goes on"
        );
        h.not_recorded("fier");
    }
    assert!(h.host.log().contains("publishing live, not recording"));

    // ann may: a new file for record, ann/cam.flv for append; nobody is told NoAccess.
    let st = h.round("ann", "456", "record");
    assert_eq!(codes(&st), ["NetStream.Publish.Start"]);
    let first = h.recorded("ann", is_new_file);
    let st = h.round("ann", "456", "append");
    assert_eq!(codes(&st), ["NetStream.Publish.Start"]);
    h.recorded("ann", |p| p.ends_with("cam.flv"));
    assert!(first.exists(), "the first recording stays");

    // A token (fetched with the fstream client) keeps the right its password had, and
    // fier's token gives none.
    for (user, password, recorded) in [("ann", "456", true), ("fier", "123", false)] {
        let (st, out, err) = run_with_timeout(
            Command::new(bin("fstream"))
                .arg(h.host.addr("fstream").to_string())
                .arg(format!("token,user={user},user_password={password}")),
            WAIT,
        );
        assert!(st.is_some_and(|s| s.success()), "token for {user}: {err}");
        let token = String::from_utf8(out).unwrap().trim().to_string();
        assert_eq!(token.len(), 32, "{token:?}");
        let st = h.round_with(user, &format!("token={token}"), "record");
        if recorded {
            assert_eq!(codes(&st), ["NetStream.Publish.Start"]);
            let before = first.clone();
            h.recorded(user, |p| is_new_file(p) && *p != before);
        } else {
            assert_eq!(codes(&st), no_access);
            h.not_recorded(user);
        }
    }

    // bob's explicit no, and a live publish (nothing asked, nothing refused).
    let st = h.round("bob", "789", "record");
    assert_eq!(codes(&st), no_access);
    h.not_recorded("bob");
    let st = h.round("fier", "123", "live");
    assert_eq!(codes(&st), ["NetStream.Publish.Start"]);
    h.not_recorded("fier");

    // The operator opens recording to everyone: fier's record is recorded now, bob's no
    // still counts.
    h.root
        .write("mods/rtmp-app.toml", "record_requires_permission = false\n");
    h.host.signal(libc::SIGHUP);
    assert!(
        h.host.wait_log("configuration reloaded", WAIT),
        "{}",
        h.host.log()
    );
    let st = h.round("fier", "123", "record");
    assert_eq!(codes(&st), ["NetStream.Publish.Start"]);
    h.recorded("fier", is_new_file);
    let st = h.round("bob", "789", "append");
    assert_eq!(codes(&st), no_access);
    h.not_recorded("bob");

    // Every publisher was accepted, live viewers were served each time.
    assert_eq!(h.host.log().matches("authentication denied").count(), 0);
}

/// What a sink is told of the publisher's query string: its own arguments, not the password
/// (nor a token, or a channel password).
#[test]
fn sinks_get_the_query_without_credentials() {
    fstream_e2e::require(&["ffmpeg"]);
    let root = Root::new("sink-query", &["auth-ini", "rtmp", "rtmp-app", "test-sink"]);
    root.user("fier", "123");
    let host = Host::start(&root, &["rtmp"], &[]);
    let url = format!(
        "rtmp://{}/fier/cam?room=a%20b&user_password=123&channel_password=s3cret&x=1",
        host.addr("rtmp")
    );
    let (st, _, err) = run_with_timeout(&mut fstream_e2e::ffmpeg_publish(&url, 1), WAIT);
    assert!(st.is_some_and(|s| s.success()), "{err}");
    assert!(host.wait_log("test-sink finished", WAIT), "{}", host.log());
    let log = host.log();
    let line = log
        .lines()
        .find(|l| l.contains("test-sink opened"))
        .expect("the sink's line");
    assert!(line.contains("query=room=a%20b&x=1"), "{line}");
    assert!(!line.contains("123") && !line.contains("s3cret"), "{line}");
}
