//! `fstream-bench`: many viewers of one stream, and what they cost the server.
//!
//! One process, a few threads, 64 KiB reads. A publisher plays an FLV file in real time (over
//! RTMP or fstream) or a raw stream of stamped blocks (fstream, for end-to-end delay), or
//! `--publish none` for an external publisher. N viewers (RTMP players, fstream watchers, or a
//! mix) connect at `--connect-rate` per second, then everything is measured over `--seconds`:
//! delivered throughput, per-viewer min/median/max, stalled viewers (below 90% of the stream's
//! bitrate over any 2 s window), time to the first video keyframe, end-to-end delay (raw
//! fstream), and the server's CPU seconds, CPU seconds per GB and peak RSS from /proc by PID,
//! beside this process's own CPU so a reader can tell which side was the limit.
//!
//! Every viewer validates every byte it receives (`check`: the RTMP chunk stream and its
//! messages, FLV tags, the stamped raw stream) and counts only what passed; a viewer whose
//! stream fails to parse is `corrupt`, and then the process exits with status 2 after its
//! report. `--churn-per-sec R` makes R viewers per second leave during the window, each
//! replaced at once by a fresh connection, so joins after leaves are exercised and measured.

mod check;
mod procstat;
mod publisher;
mod rtmp_client;
mod viewer;

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use serde::Serialize;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Mode {
    Rtmp,
    Fstream,
    Mix,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Publish {
    Rtmp,
    Fstream,
    /// Raw fstream blocks stamped with their send time (delay measurement).
    Raw,
    None,
}

#[derive(Parser, Debug)]
#[command(
    name = "fstream-bench",
    version,
    about = "Load generator: one publisher, many viewers"
)]
struct Args {
    #[arg(long, value_enum, default_value = "rtmp")]
    mode: Mode,
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Length of the measured window
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Time between the last viewer connecting and the measured window
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    #[arg(long, default_value = "127.0.0.1:1935")]
    rtmp: String,
    #[arg(long, default_value = "127.0.0.1:61920")]
    fstream: String,
    #[arg(long, value_enum, default_value = "rtmp")]
    publish: Publish,
    /// The FLV file to publish (rtmp/fstream publish)
    #[arg(long)]
    file: Option<String>,
    /// Bitrate of the raw stream, or the expected bitrate with --publish none
    #[arg(long, default_value_t = 2000)]
    kbps: u64,
    /// APP (the fstream user)
    #[arg(long, default_value = "fier")]
    app: String,
    /// STREAM (the fstream channel)
    #[arg(long, default_value = "bench")]
    stream: String,
    #[arg(long, default_value = "123")]
    password: String,
    /// The server's PID, for CPU and memory
    #[arg(long)]
    server_pid: Option<u32>,
    /// Viewers connected per second
    #[arg(long, default_value_t = 500)]
    connect_rate: u64,
    /// During the window, this many viewers per second leave (close their connection) and as
    /// many join afresh, keeping --viewers connected; the oldest connection leaves first
    #[arg(long, default_value_t = 0.0)]
    churn_per_sec: f64,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Write the report as JSON to this file
    #[arg(long)]
    json: Option<String>,
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Serialize, Default)]
struct Report {
    label: String,
    mode: String,
    viewers: usize,
    connected: usize,
    seconds: f64,
    stream_kbps: f64,
    delivered_mbps: f64,
    viewer_mbps_min: f64,
    viewer_mbps_median: f64,
    viewer_mbps_max: f64,
    stalled: usize,
    /// Connections whose bytes failed to parse (each counted once).
    corrupt: usize,
    /// Their first errors, distinct texts (at most 20), with how many connections had each.
    corrupt_examples: Vec<CorruptExample>,
    /// Connections made, churn joins included.
    sessions: usize,
    first_keyframe_ms_p50: Option<f64>,
    first_keyframe_ms_p99: Option<f64>,
    churn_per_sec: f64,
    /// Connections closed by the churn.
    churn_leaves: usize,
    /// Fresh connections opened in their place.
    churn_joins: usize,
    /// Joins that reached a keyframe (or a raw block) before the run ended or they left.
    churn_joins_keyed: usize,
    joiner_first_keyframe_ms_p50: Option<f64>,
    joiner_first_keyframe_ms_p99: Option<f64>,
    delay_ms_p50: Option<f64>,
    delay_ms_p99: Option<f64>,
    server_cpu_s: Option<f64>,
    server_cpu_s_per_gb: Option<f64>,
    server_peak_rss_mb: Option<f64>,
    server_rss_growth_kib_per_viewer: Option<f64>,
    bench_cpu_s: Option<f64>,
    errors: Vec<String>,
}

#[derive(Serialize, Debug)]
struct CorruptExample {
    connections: usize,
    error: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let report = rt.block_on(run(&args))?;
    print_table(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("write {path}"))?;
    }
    if report.corrupt > 0 {
        eprintln!(
            "{} of {} connections received a corrupt stream",
            report.corrupt, report.sessions
        );
        std::process::exit(2);
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)])
}

async fn run(a: &Args) -> anyhow::Result<Report> {
    let epoch = Instant::now();
    let ramp = Duration::from_millis(a.viewers as u64 * 1000 / a.connect_rate.max(1));
    let start_viewers = epoch + Duration::from_millis(1500);
    let measure_from = start_viewers + ramp + Duration::from_secs(a.warmup);
    let measure_to = measure_from + Duration::from_secs(a.seconds);
    let until = measure_to + Duration::from_millis(200);

    let media = match a.publish {
        Publish::Rtmp | Publish::Fstream => {
            let file = a
                .file
                .as_deref()
                .context("--file is needed to publish an FLV file")?;
            Some(publisher::Media::load(file)?)
        }
        _ => None,
    };
    let stream_bps = media
        .as_ref()
        .map(|m| m.bitrate_bps)
        .unwrap_or(a.kbps as f64 * 1000.0);
    let broadcast = |extra: &str| {
        format!(
            "broadcast,user={},user_password={},channel={}{extra}",
            a.app, a.password, a.stream
        )
    };
    let sent = publisher::Sent::new(epoch);
    let publisher = {
        let sent = sent.clone();
        let (rtmp, fstream, app, stream, password) = (
            a.rtmp.clone(),
            a.fstream.clone(),
            a.app.clone(),
            a.stream.clone(),
            a.password.clone(),
        );
        let action_flv = broadcast("");
        let action_raw = broadcast(&format!(",bufsize={}", publisher::BLOCK));
        let kind = a.publish;
        tokio::spawn(async move {
            let r = match (kind, media) {
                (Publish::Rtmp, Some(m)) => {
                    let name = format!("{stream}?user_password={password}");
                    publisher::rtmp(&rtmp, &app, &name, &m, until, &sent).await
                }
                (Publish::Fstream, Some(m)) => {
                    publisher::fstream_flv(&fstream, &action_flv, &m, until, &sent).await
                }
                (Publish::Raw, _) => {
                    publisher::fstream_raw(&fstream, &action_raw, stream_bps, epoch, until, &sent)
                        .await
                }
                _ => Ok(()),
            };
            if let Err(e) = &r {
                eprintln!("publisher: {e:#}");
            }
            r.is_ok()
        })
    };

    // Server stats around the window.
    let pid = a.server_pid.map(|p| p.to_string());
    let rss_before = {
        tokio::time::sleep_until((start_viewers - Duration::from_millis(100)).into()).await;
        pid.as_deref()
            .and_then(|p| procstat::status_kib(p, "VmRSS"))
    };

    let mut viewers = Vec::with_capacity(a.viewers);
    let mut leaves = Vec::with_capacity(a.viewers);
    for i in 0..a.viewers {
        let at = start_viewers + ramp.mul_f64(i as f64 / a.viewers.max(1) as f64);
        let rtmp_viewer = match a.mode {
            Mode::Rtmp => true,
            Mode::Fstream => false,
            Mode::Mix => i % 2 == 0,
        };
        let kind = if rtmp_viewer {
            viewer::Kind::Rtmp {
                addr: a.rtmp.clone(),
                app: a.app.clone(),
                name: a.stream.clone(),
            }
        } else {
            viewer::Kind::Fstream {
                addr: a.fstream.clone(),
                action: format!("watch,user={},channel={}", a.app, a.stream),
                raw: a.publish == Publish::Raw,
            }
        };
        let leave = std::sync::Arc::new(tokio::sync::Notify::new());
        leaves.push(leave.clone());
        viewers.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            viewer::viewer(kind, epoch, until, leave).await
        }));
    }

    // The churn: leave k happens k/R seconds into the window, oldest connection first.
    if a.churn_per_sec > 0.0 && !leaves.is_empty() {
        let rate = a.churn_per_sec;
        tokio::spawn(async move {
            for k in 0u64.. {
                let at = measure_from + Duration::from_secs_f64(k as f64 / rate);
                if at >= measure_to {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                leaves[(k % leaves.len() as u64) as usize].notify_one();
            }
        });
    }

    tokio::time::sleep_until(measure_from.into()).await;
    let cpu0 = pid.as_deref().and_then(procstat::cpu_time);
    let own0 = procstat::cpu_time("self");
    tokio::time::sleep_until(measure_to.into()).await;
    let cpu1 = pid.as_deref().and_then(procstat::cpu_time);
    let own1 = procstat::cpu_time("self");
    let rss_after = pid
        .as_deref()
        .and_then(|p| procstat::status_kib(p, "VmRSS"));
    let hwm = pid
        .as_deref()
        .and_then(|p| procstat::status_kib(p, "VmHWM"));

    let mut results = Vec::new();
    for v in viewers {
        results.push(v.await.unwrap_or_default());
    }
    let published = publisher.await.unwrap_or(false);
    if !published && a.publish != Publish::None {
        bail!("the publisher failed");
    }

    // Buckets of the measured window.
    let b0 = ((measure_from - epoch).as_nanos() / viewer::BUCKET.as_nanos()) as usize;
    let b1 = ((measure_to - epoch).as_nanos() / viewer::BUCKET.as_nanos()) as usize;
    let secs = (measure_to - measure_from).as_secs_f64();
    // A viewer stalls when, over any 2 s window, it got under 90% of what the publisher sent
    // in that window (or in the window one bucket earlier, whichever is less: the server may
    // hold bytes up to its gathering window, moving a large keyframe across the edge), or of
    // the nominal bitrate with an external publisher.
    let per_2s = (2.0 / viewer::BUCKET.as_secs_f64()) as usize;
    let published = sent.buckets();
    let pub_window = |from: usize| -> f64 {
        (from..from + per_2s)
            .map(|i| published.get(i).copied().unwrap_or(0) as f64)
            .sum()
    };
    let expected: Vec<f64> = (b0..b1.saturating_sub(per_2s - 1))
        .map(|start| {
            if a.publish == Publish::None {
                stream_bps / 8.0 * 2.0
            } else {
                pub_window(start).min(pub_window(start - 1))
            }
        })
        .collect();
    let mut rates = Vec::new();
    let mut total = 0u64;
    let mut stalled = 0;
    let mut errors = Vec::new();
    let mut keys = Vec::new();
    let mut joiner_keys = Vec::new();
    let mut delays = Vec::new();
    let mut corrupt = Vec::new();
    let (mut sessions, mut leaves, mut joins) = (0, 0, 0);
    for r in &results {
        let window: Vec<u64> = (b0..b1)
            .map(|i| r.buckets.get(i).copied().unwrap_or(0))
            .collect();
        let bytes: u64 = window.iter().sum();
        total += bytes;
        rates.push(bytes as f64 * 8.0 / secs / 1e6);
        if window
            .windows(per_2s)
            .zip(&expected)
            .any(|(w, e)| (w.iter().sum::<u64>() as f64) < 0.9 * e)
        {
            stalled += 1;
        }
        for s in &r.sessions {
            sessions += 1;
            leaves += usize::from(s.left);
            joins += usize::from(s.joiner);
            if let Some(e) = &s.error {
                errors.push(e.clone());
            }
            if let Some(c) = &s.corrupt {
                corrupt.push(c.clone());
            }
            if let Some(k) = s.first_key {
                let ms = k.as_secs_f64() * 1000.0;
                if s.joiner {
                    joiner_keys.push(ms);
                } else {
                    keys.push(ms);
                }
            }
            delays.extend(s.delays.iter().map(|d| d.as_secs_f64() * 1000.0));
        }
    }
    rates.sort_by(f64::total_cmp);
    keys.sort_by(f64::total_cmp);
    joiner_keys.sort_by(f64::total_cmp);
    delays.sort_by(f64::total_cmp);
    errors.sort();
    errors.dedup();
    let mut examples: Vec<CorruptExample> = Vec::new();
    for c in &corrupt {
        if let Some(e) = examples.iter_mut().find(|e| &e.error == c) {
            e.connections += 1;
        } else if examples.len() < 20 {
            examples.push(CorruptExample {
                connections: 1,
                error: c.clone(),
            });
        }
    }

    let server_cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some((b - a).as_secs_f64()),
        _ => None,
    };
    Ok(Report {
        label: a.label.clone(),
        mode: format!("{:?}", a.mode).to_lowercase(),
        viewers: a.viewers,
        connected: results
            .iter()
            .filter(|r| r.buckets.iter().any(|&b| b > 0))
            .count(),
        seconds: secs,
        stream_kbps: stream_bps / 1000.0,
        delivered_mbps: total as f64 * 8.0 / secs / 1e6,
        viewer_mbps_min: rates.first().copied().unwrap_or(0.0),
        viewer_mbps_median: percentile(&rates, 0.5).unwrap_or(0.0),
        viewer_mbps_max: rates.last().copied().unwrap_or(0.0),
        stalled,
        corrupt: corrupt.len(),
        corrupt_examples: examples,
        sessions,
        first_keyframe_ms_p50: percentile(&keys, 0.5),
        first_keyframe_ms_p99: percentile(&keys, 0.99),
        churn_per_sec: a.churn_per_sec,
        churn_leaves: leaves,
        churn_joins: joins,
        churn_joins_keyed: joiner_keys.len(),
        joiner_first_keyframe_ms_p50: percentile(&joiner_keys, 0.5),
        joiner_first_keyframe_ms_p99: percentile(&joiner_keys, 0.99),
        delay_ms_p50: percentile(&delays, 0.5),
        delay_ms_p99: percentile(&delays, 0.99),
        server_cpu_s: server_cpu,
        server_cpu_s_per_gb: server_cpu
            .filter(|_| total > 0)
            .map(|c| c / (total as f64 / 1e9)),
        server_peak_rss_mb: hwm.map(|k| k as f64 / 1024.0),
        server_rss_growth_kib_per_viewer: match (rss_before, rss_after) {
            (Some(b), Some(a)) => Some((a as f64 - b as f64) / results.len().max(1) as f64),
            _ => None,
        },
        bench_cpu_s: match (own0, own1) {
            (Some(a), Some(b)) => Some((b - a).as_secs_f64()),
            _ => None,
        },
        errors,
    })
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

fn print_table(r: &Report) {
    println!(
        "| label | mode | viewers | connected | Mbit/s delivered | per viewer min/med/max | stalled | corrupt | first key p50/p99 ms | churn leaves/joins | joiner key p50/p99 ms | delay p50/p99 ms | server CPU s | CPU-s/GB | peak RSS MB | RSS KiB/viewer | bench CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let churn = if r.churn_per_sec > 0.0 {
        format!("{}/{}", r.churn_leaves, r.churn_joins)
    } else {
        "-".into()
    };
    println!(
        "| {} | {} | {} | {} | {:.1} | {:.2}/{:.2}/{:.2} | {} | {} | {}/{} | {} | {}/{} | {}/{} | {} | {} | {} | {} | {} |",
        r.label,
        r.mode,
        r.viewers,
        r.connected,
        r.delivered_mbps,
        r.viewer_mbps_min,
        r.viewer_mbps_median,
        r.viewer_mbps_max,
        r.stalled,
        r.corrupt,
        fmt_opt(r.first_keyframe_ms_p50, 0),
        fmt_opt(r.first_keyframe_ms_p99, 0),
        churn,
        fmt_opt(r.joiner_first_keyframe_ms_p50, 0),
        fmt_opt(r.joiner_first_keyframe_ms_p99, 0),
        fmt_opt(r.delay_ms_p50, 1),
        fmt_opt(r.delay_ms_p99, 1),
        fmt_opt(r.server_cpu_s, 2),
        fmt_opt(r.server_cpu_s_per_gb, 2),
        fmt_opt(r.server_peak_rss_mb, 1),
        fmt_opt(r.server_rss_growth_kib_per_viewer, 1),
        fmt_opt(r.bench_cpu_s, 2),
    );
    for e in &r.errors {
        eprintln!("viewer error: {e}");
    }
    for e in r.corrupt_examples.iter().take(5) {
        eprintln!("corrupt ({} connections): {}", e.connections, e.error);
    }
}
