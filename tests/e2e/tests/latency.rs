//! Publish-to-display latency in headless Chromium, for BENCHMARKS.md (run by
//! `bench/latency.sh`; ignored in CI: timing is a benchmark's business, not a test's).
//!
//! ffmpeg publishes in real time (`-re`, timestamps from 0 at its start), the watch page
//! reports its `<video>`'s `currentTime` twice a second to the server's log, and the delay is
//! read off the log's wall clock:
//! - hls.js keeps the stream's timestamps: delay = wall time since the publication began,
//!   less `currentTime` (LL-HLS with 200 ms parts, and plain HLS with 2 s segments).
//! - mpegts.js (HTTP-FLV) starts `currentTime` at 0 on the first frame it gets, the start of
//!   the cached group of pictures; with a keyframe in every frame (`-g 1`) that frame is the
//!   newest when the viewer joins, so delay = wall time since the server logged the join, less
//!   `currentTime` (short by at most one frame, 40 ms).

use std::time::Duration;

use fstream_e2e::{
    background,
    browser::{chromium, log_seconds, reports},
    Host, Root,
};

fn publish(url: &str, gop: u32, secs: u32) -> std::process::Command {
    let mut c = std::process::Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", &gop.to_string(), "-c:a", "aac", "-f", "flv", url]);
    c
}

fn summary(mut lags: Vec<f64>) -> String {
    lags.sort_by(f64::total_cmp);
    match (lags.first(), lags.last()) {
        (Some(lo), Some(hi)) => format!(
            "median {:.2} s ({lo:.2} .. {hi:.2}, {} reports)",
            lags[lags.len() / 2],
            lags.len()
        ),
        _ => "no reports".into(),
    }
}

/// One configuration: (its name, mods/http.toml, the player, the GOP length in frames).
fn measure(name: &str, http_toml: &str, player: &str, gop: u32) {
    let r = Root::new(
        &format!("latency-{player}"),
        &["auth-ini", "rtmp", "rtmp-app", "http"],
    );
    r.user("fier", "123");
    r.write(
        "mods/http.toml",
        &format!("watch_report_ms = 500\n{http_toml}"),
    );
    let host = Host::start(&r, &["rtmp", "http"], &[]);
    let (rtmp, http) = (host.addr("rtmp"), host.addr("http"));
    let publisher = background(
        publish(
            &format!("rtmp://{rtmp}/fier/cam?user_password=123"),
            gop,
            40,
        ),
        Duration::from_secs(90),
    );
    assert!(host.wait_log("publishing stream=fier/cam", Duration::from_secs(20)));
    std::thread::sleep(Duration::from_secs(6));
    chromium(
        &[],
        &format!("http://{http}/fier/cam?player={player}"),
        Duration::from_secs(25),
    );
    let log = host.log();
    let at = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .and_then(log_seconds)
    };
    let reports = reports(&log, "fier/cam", player);
    // The first seconds are the player starting up; the rest is steady state.
    let steady: Vec<(f64, f64)> = reports
        .iter()
        .copied()
        .filter(|(_, t)| *t > 0.0)
        .skip(10)
        .collect();
    let lags: Vec<f64> = match player {
        "hls" => {
            let start = at("publishing stream=fier/cam").expect("the publication in the log");
            steady.iter().map(|(w, t)| w - start - t).collect()
        }
        _ => {
            let join = at("http-flv: playing").expect("the viewer's join in the log");
            steady.iter().map(|(w, t)| w - join - t).collect()
        }
    };
    eprintln!("latency: {name}: {}", summary(lags));
    drop(host);
    let _ = publisher.join();
}

#[test]
#[ignore = "a benchmark: bench/latency.sh runs it"]
fn publish_to_display_in_chromium() {
    fstream_e2e::require(&["ffmpeg", "chromium"]);
    measure("LL-HLS, 200 ms parts, 2 s segments (hls.js)", "", "hls", 50);
    measure(
        "plain HLS, 2 s segments (hls.js)",
        "hls_part_ms = 0\n",
        "hls",
        50,
    );
    measure("HTTP-FLV (mpegts.js)", "", "flv", 1);
}
