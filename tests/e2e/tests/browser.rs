//! A browser we did not write: headless Chromium opens the watch page of an ffmpeg-published
//! stream and plays it with hls.js and with mpegts.js (HTTP-FLV). The page reports its
//! `<video>`'s `currentTime` to the server (`watch_report_ms`), whose log the test reads: it
//! must advance by at least 3 s within 10 s of wall time for each player. A screenshot of the
//! playing page must not be blank (much larger than one of a page whose stream does not exist).
//! hls.js also plays fMP4 segments: of H.264 where the settings ask for them, and of AV1 that a
//! recent ffmpeg publishes over Enhanced RTMP (Chromium decodes AV1 in software; its HEVC needs
//! a hardware decoder, so HEVC is left to ffmpeg's tests in hls.rs).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    time::Duration,
};

use fstream_e2e::{
    background,
    browser::{best_advance, chromium, log_seconds, reports},
    ffmpeg_publish, Host, Root, TempDir,
};

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut b = String::new();
    s.read_to_string(&mut b).unwrap();
    b
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn chromium_plays_the_watch_page_with_hls_js_and_mpegts_js() {
    fstream_e2e::require(&["ffmpeg", "chromium"]);
    let r = Root::new("browser", &["auth-ini", "rtmp", "rtmp-app", "http"]);
    r.user("fier", "123");
    r.write(
        "mods/http.toml",
        "watch_report_ms = 500\nhls_segment_ms = 1000\n",
    );
    let host = Host::start(&r, &["rtmp", "http"], &[]);
    let (rtmp, http) = (host.addr("rtmp"), host.addr("http"));
    let publisher = background(
        ffmpeg_publish(&format!("rtmp://{rtmp}/fier/cam?user_password=123"), 45),
        Duration::from_secs(90),
    );
    assert!(host.wait_log("publishing stream=fier/cam", Duration::from_secs(20)));
    std::thread::sleep(Duration::from_secs(3));

    // The index lists the stream.
    let index = get(http, "/");
    assert!(
        index.contains("<a href=\"/fier/cam\">fier/cam</a>"),
        "{index}"
    );

    for player in ["hls", "flv"] {
        let url = format!("http://{http}/fier/cam?player={player}");
        chromium(&[], &url, Duration::from_secs(14));
        let log = host.log();
        let r = reports(&log, "fier/cam", player);
        let advance = best_advance(&r);
        eprintln!(
            "{player}: {} reports, currentTime advanced {advance:.2} s within 10 s",
            r.len()
        );
        if player == "hls" {
            // hls.js keeps the stream's timestamps (they start at 0 when ffmpeg starts, in
            // real time): the wall time since the publication began, less currentTime, is how
            // far behind the publisher the picture is. A figure for BENCHMARKS.md, not a test.
            let start = log
                .lines()
                .find(|l| l.contains("publishing stream=fier/cam"))
                .and_then(log_seconds);
            if let Some(start) = start {
                let mut lags: Vec<f64> = r
                    .iter()
                    .filter(|(_, t)| *t > 0.0)
                    .map(|(w, t)| w - start - t)
                    .collect();
                lags.sort_by(f64::total_cmp);
                if let (Some(lo), Some(hi)) = (lags.first(), lags.last()) {
                    eprintln!(
                        "hls: publish-to-display {lo:.2} .. {hi:.2} s, median {:.2} s",
                        lags[lags.len() / 2]
                    );
                }
            }
        }
        assert!(
            advance >= 3.0,
            "{player}: currentTime advanced {advance:.2} s within 10 s: {r:?}"
        );
    }

    let dir = TempDir::new("browser-shots");
    let playing = dir.path().join("playing.png");
    let missing = dir.path().join("missing.png");
    for (path, shot) in [("/fier/cam", &playing), ("/fier/nosuch", &missing)] {
        let arg = format!("--screenshot={}", shot.display());
        chromium(
            &["--virtual-time-budget=8000", &arg],
            &format!("http://{http}{path}"),
            Duration::from_secs(30),
        );
    }
    let (a, b) = (file_len(&playing), file_len(&missing));
    eprintln!("screenshots: playing {a} bytes, no stream {b} bytes");
    assert!(b > 0, "no screenshot was written");
    assert!(
        a > 3 * b && a > 30_000,
        "the playing page looks blank: {a} bytes against {b}"
    );
    publisher.join().unwrap();
}

#[test]
fn chromium_plays_fmp4_hls_of_h264_and_of_av1_with_hls_js() {
    fstream_e2e::require(&["ffmpeg", "chromium"]);
    let r = Root::new("browser-fmp4", &["auth-ini", "rtmp", "rtmp-app", "http"]);
    r.user("fier", "123");
    r.write(
        "mods/http.toml",
        "watch_report_ms = 500\nhls_segment_ms = 1000\nhls_format = \"fmp4\"\n",
    );
    let host = Host::start(&r, &["rtmp", "http"], &[]);
    let (rtmp, http) = (host.addr("rtmp"), host.addr("http"));
    let h264 = background(
        ffmpeg_publish(&format!("rtmp://{rtmp}/fier/cam?user_password=123"), 40),
        Duration::from_secs(90),
    );
    let av1 = background(
        fstream_e2e::modern_ffmpeg_publish(
            &format!("rtmp://{rtmp}/fier/av1?user_password=123"),
            40,
            &[
                "-c:v",
                "libsvtav1",
                "-preset",
                "12",
                "-g",
                "25",
                "-svtav1-params",
                "lp=1",
            ],
        ),
        Duration::from_secs(90),
    );
    assert!(host.wait_log("publishing stream=fier/av1", Duration::from_secs(20)));
    std::thread::sleep(Duration::from_secs(3));
    let playlist = get(http, "/fier/av1/index.m3u8");
    assert!(playlist.contains("#EXT-X-MAP:"), "{playlist}");
    for stream in ["fier/cam", "fier/av1"] {
        chromium(
            &[],
            &format!("http://{http}/{stream}?player=hls"),
            Duration::from_secs(14),
        );
        let r = reports(&host.log(), stream, "hls");
        let advance = best_advance(&r);
        eprintln!("{stream}: currentTime advanced {advance:.2} s within 10 s");
        assert!(
            advance >= 3.0,
            "{stream} in fMP4: currentTime advanced {advance:.2} s within 10 s: {r:?}"
        );
    }
    h264.join().unwrap();
    av1.join().unwrap();
}
