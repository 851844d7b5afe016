//! The session targets' seeds reach the states they are meant to start the fuzzer from: a seed
//! that stops at the handshake because the session changed would still pass the replay test,
//! and the fuzzer would quietly lose its way into the deep states.

use fuzz_harness::session::{fstream, rtmp, rtmp_client};

fn trace_of(
    seeds: Vec<(&'static str, Vec<u8>)>,
    name: &str,
    trace: fn(&[u8]) -> Vec<String>,
) -> Vec<String> {
    let (_, bytes) = seeds
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no seed {name}"));
    trace(&bytes)
}

fn count(trace: &[String], prefix: &str) -> usize {
    trace.iter().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn rtmp_seeds_publish_play_and_refuse() {
    let t = |name| trace_of(rtmp::seeds(), name, rtmp::rtmp_session_trace);
    let publish = t("publish");
    assert_eq!(count(&publish, "publish fier/cam"), 1, "{publish:#?}");
    assert_eq!(count(&publish, "packet "), 6, "{publish:#?}");
    assert_eq!(count(&publish, "unpublish"), 1, "{publish:#?}");

    let play = t("play");
    assert_eq!(
        count(&play, "subscribe fier/cam rtmp-probe"),
        1,
        "{play:#?}"
    );
    assert_eq!(
        count(&play, "subscribe fier/cam rtmp/4096/1"),
        2,
        "{play:#?}"
    );
    assert!(count(&play, "control Pause") == 2, "{play:#?}");

    let vod = t("vod");
    assert!(count(&vod, "control Seek") == 1, "{vod:#?}");
    assert!(count(&vod, "status NetStream.Seek.Notify") == 1, "{vod:#?}");

    let takeover = t("takeover");
    assert!(takeover.last().is_some_and(|l| l.starts_with("close")));
    assert!(count(&takeover, "packet ") == 1, "{takeover:#?}");

    let refused = t("refused");
    assert_eq!(refused.last().map(String::as_str), Some("close AfterFlush"));
    assert_eq!(count(&refused, "app close"), 0, "{refused:#?}");

    let raw = t("raw-handshake");
    assert_eq!(count(&raw, "publish fier/cam"), 1, "{raw:#?}");
    assert_eq!(
        count(&raw, "status NetStream.Publish.BadName"),
        1,
        "{raw:#?}"
    );
}

#[test]
fn fstream_seeds_broadcast_watch_and_refuse() {
    let t = |name| trace_of(fstream::seeds(), name, fstream::fstream_session_trace);
    let raw = t("broadcast-raw");
    assert_eq!(count(&raw, "packet Raw"), 1, "{raw:#?}");
    assert_eq!(count(&raw, "unpublish"), 1, "{raw:#?}");
    let flv = t("broadcast-flv");
    assert_eq!(count(&flv, "packet "), 6, "{flv:#?}");
    let watch = t("watch");
    assert_eq!(count(&watch, "subscribe x.y-z_1/default fstream"), 1);
    let token = t("token");
    assert_eq!(count(&token, "write 7"), 1, "{token:#?}");
    let denied = t("denied");
    assert_eq!(count(&denied, "authenticate a/default"), 1, "{denied:#?}");
    let slow = t("slow-preamble");
    assert_eq!(count(&slow, "timer"), 2, "{slow:#?}");
}

/// The control API's seeds reach the answers they are named for, so the target's properties
/// are checked on allowed requests too, not only on refusals.
#[test]
fn control_api_seeds_allow_refuse_and_kick() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/control_api");
    let run = |name: &str| {
        let data = std::fs::read(dir.join(name)).unwrap();
        fuzz_harness::control::control_api_status(&data)
    };
    assert_eq!(run("streams-loopback"), (200, false));
    assert_eq!(run("metrics-odd-names"), (200, false));
    assert_eq!(run("kick-with-token"), (200, true));
    assert_eq!(run("delete-session"), (200, true));
    assert_eq!(run("kick-cross-origin"), (403, false));
    assert_eq!(run("kick-remote-no-token"), (403, false));
    assert_eq!(run("dashboard-remote"), (200, false));
    assert_eq!(run("odd-method").0, 405);
    assert_eq!(run("stream-percent"), (404, false));
}

#[test]
fn rtmp_client_seeds_publish_play_and_fail_as_named() {
    let t = |name| trace_of(rtmp_client::seeds(), name, rtmp_client::run);
    let publish = t("publish");
    assert_eq!(
        publish,
        ["Connected", "Publishing", "Ended(Unpublished)"],
        "{publish:#?}"
    );
    let play = t("play");
    assert_eq!(
        play.first().map(String::as_str),
        Some("Connected"),
        "{play:#?}"
    );
    assert_eq!(count(&play, "Media("), 5, "{play:#?}");
    assert_eq!(count(&play, "Unpublished"), 1, "{play:#?}");
    assert!(
        play.last().unwrap().starts_with("Ended(PlayStopped"),
        "{play:#?}"
    );
    for (name, failure) in [
        ("connect-rejected", "Failed(ConnectRejected"),
        ("stream-not-found", "Failed(StreamNotFound"),
        ("bad-name", "Failed(PublishRejected"),
        ("timeout", "Failed(Timeout"),
        ("output-full", "Failed(Closed"),
    ] {
        let trace = t(name);
        assert!(
            trace.last().is_some_and(|l| l.starts_with(failure)),
            "{name}: {trace:#?}"
        );
    }
    assert_eq!(
        t("play-stop").last().map(String::as_str),
        Some("Ended(Stopped)")
    );
}
