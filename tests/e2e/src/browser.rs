//! Headless Chromium for the tests that watch the watch page, and reading what the page
//! reports to the server's log (`watch_report_ms`).

use std::{process::Command, time::Duration};

use crate::run_with_timeout;

/// Runs headless Chromium on `url` for `run_for` (or until it has written a `--screenshot`).
pub fn chromium(args: &[&str], url: &str, run_for: Duration) {
    let mut c = Command::new("chromium");
    c.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        "--window-size=800,600",
    ])
    .args(args)
    .arg(url);
    // Chromium runs until it is stopped (or, with --screenshot, until it has written it).
    let _ = run_with_timeout(&mut c, run_for);
}

/// Seconds of the day of a log line's timestamp (`2026-12-02T15:09:01.219556Z ...`).
pub fn log_seconds(line: &str) -> Option<f64> {
    let time = line.get(11..26)?;
    let h: f64 = time.get(0..2)?.parse().ok()?;
    let m: f64 = time.get(3..5)?.parse().ok()?;
    let s: f64 = time.get(6..)?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// The (wall s, currentTime) reports of one player of one stream.
pub fn reports(log: &str, stream: &str, player: &str) -> Vec<(f64, f64)> {
    log.lines()
        .filter(|l| l.contains("watch page report") && l.contains(&format!("player={player} ")))
        .filter(|l| l.contains(&format!("stream={stream} ")))
        .filter_map(|l| {
            let t = l
                .split("t=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some((log_seconds(l)?, t))
        })
        .collect()
}

/// The most `currentTime` advanced over any 10 s of wall time.
pub fn best_advance(r: &[(f64, f64)]) -> f64 {
    let mut best = 0.0f64;
    for (i, &(w0, t0)) in r.iter().enumerate() {
        for &(w1, t1) in &r[i..] {
            if w1 - w0 <= 10.0 {
                best = best.max(t1 - t0);
            }
        }
    }
    best
}
