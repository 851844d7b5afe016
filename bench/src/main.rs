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
//!
//! `--join-burst N --burst-within-ms T`: while the `--viewers` watch, N more join within T ms
//! (from `--burst-at` seconds into the window). The viewers already watching record when each
//! media message arrives; the report gives their longest delivery gap during the burst window
//! and outside it (`gaps`), the joiners' time to their first keyframe, and the server's RSS
//! before the burst and at its peak. The joiners run on a runtime of their own, so checking
//! their bursts does not delay the watchers' reads in this process.

mod check;
mod gaps;
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
    /// HTTP-FLV viewers (`GET /APP/STREAM.flv` from the `http` plugin).
    HttpFlv,
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
    /// The `http` plugin's listener (--mode http-flv)
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: String,
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
    /// Viewers that join in a burst during the window, besides --viewers (who are then the
    /// players already watching, whose delivery gaps are measured)
    #[arg(long, default_value_t = 0)]
    join_burst: usize,
    /// The burst's joiners connect evenly spread over this many ms
    #[arg(long, default_value_t = 1000)]
    burst_within_ms: u64,
    /// When the burst starts, in seconds into the window (default: a third of --seconds)
    #[arg(long)]
    burst_at: Option<f64>,
    /// The burst window lasts from the first join to this many ms after the last
    #[arg(long, default_value_t = 1000)]
    burst_tail_ms: u64,
    /// The server's gathering window (only for the burst's verdict: the longest gap should stay
    /// under this + 100 ms)
    #[arg(long, default_value_t = 50)]
    gather_ms: u64,
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
    /// RTMP players: the smallest lead of media time over wall time any had after settling
    /// (see `viewer::Session::lead_min_ms`), its median over players, and the players whose
    /// lead fell below 0 (a real player would have stalled). For recorded files (VOD).
    lead_ms_min: Option<f64>,
    lead_ms_median_of_min: Option<f64>,
    behind: usize,
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
    /// With --join-burst.
    burst: Option<BurstReport>,
    errors: Vec<String>,
}

/// The join burst: the gaps of the players already watching, the joiners, the server's memory.
#[derive(Serialize, Default)]
struct BurstReport {
    /// Players already watching (gaps measured).
    watching: usize,
    joiners: usize,
    within_ms: u64,
    /// The burst window, ms from the start of the measured window.
    window_from_ms: f64,
    window_to_ms: f64,
    /// Joiners that received a validated byte, and that reached a keyframe.
    joiners_connected: usize,
    joiners_keyed: usize,
    /// Over the watching players, of each one's longest gap between media messages overlapping
    /// the burst window: the largest, and the 99th percentile.
    gap_ms_burst_max: Option<f64>,
    gap_ms_burst_p99: Option<f64>,
    /// The same for the gaps before the burst window (the watchers alone) and after it (the
    /// joiners still there).
    gap_ms_before_max: Option<f64>,
    gap_ms_before_p99: Option<f64>,
    gap_ms_after_max: Option<f64>,
    gap_ms_after_p99: Option<f64>,
    /// Where the longest gap of all ended, ms after the burst started.
    worst_gap_end_ms: Option<f64>,
    /// The publisher's own longest pause between writes (this process, not the server).
    publisher_gap_ms_burst: Option<f64>,
    publisher_gap_ms_outside: Option<f64>,
    joiner_first_keyframe_ms_p50: Option<f64>,
    joiner_first_keyframe_ms_p99: Option<f64>,
    joiner_first_keyframe_ms_max: Option<f64>,
    /// Bytes the joiners received (validated) during the burst window, MB.
    joiner_mb_in_burst_window: f64,
    server_rss_before_burst_mb: Option<f64>,
    gather_ms: u64,
    /// Longest gap during the burst under gather_ms + 100 ms.
    goal_met: bool,
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
    // The burst's joiners get their own runtime (and threads).
    let burst_rt = if args.join_burst > 0 {
        Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .thread_name("burst")
                .enable_all()
                .build()?,
        )
    } else {
        None
    };
    let report = rt.block_on(run(&args, burst_rt.as_ref().map(|r| r.handle().clone())))?;
    print_table(&report);
    if let Some(b) = &report.burst {
        print_burst_table(&report, b);
    }
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

async fn run(a: &Args, burst_rt: Option<tokio::runtime::Handle>) -> anyhow::Result<Report> {
    let epoch = Instant::now();
    let ramp = Duration::from_millis(a.viewers as u64 * 1000 / a.connect_rate.max(1));
    let start_viewers = epoch + Duration::from_millis(1500);
    let measure_from = start_viewers + ramp + Duration::from_secs(a.warmup);
    let measure_to = measure_from + Duration::from_secs(a.seconds);
    let until = measure_to + Duration::from_millis(200);
    let burst = a.join_burst > 0;
    let burst_from =
        measure_from + Duration::from_secs_f64(a.burst_at.unwrap_or(a.seconds as f64 / 3.0));
    let burst_to = burst_from + Duration::from_millis(a.burst_within_ms + a.burst_tail_ms);
    if burst {
        if a.churn_per_sec > 0.0 {
            bail!("--join-burst and --churn-per-sec do not go together");
        }
        if burst_to > measure_to {
            bail!("the burst window does not end within the measured window (see --burst-at, --seconds)");
        }
    }
    let ns = |t: Instant| (t - epoch).as_nanos() as u64;

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

    let mut viewers = Vec::with_capacity(a.viewers + a.join_burst);
    let mut leaves = Vec::with_capacity(a.viewers);
    for i in 0..a.viewers + a.join_burst {
        let joiner = i >= a.viewers;
        let at = if joiner {
            let j = (i - a.viewers) as f64 / a.join_burst as f64;
            burst_from + Duration::from_millis(a.burst_within_ms).mul_f64(j)
        } else {
            start_viewers + ramp.mul_f64(i as f64 / a.viewers.max(1) as f64)
        };
        let rtmp_viewer = match a.mode {
            Mode::Rtmp => true,
            Mode::Fstream | Mode::HttpFlv => false,
            Mode::Mix => i % 2 == 0,
        };
        let kind = if a.mode == Mode::HttpFlv {
            viewer::Kind::HttpFlv {
                addr: a.http.clone(),
                path: format!("/{}/{}.flv", a.app, a.stream),
            }
        } else if rtmp_viewer {
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
        if !joiner {
            leaves.push(leave.clone());
        }
        let task = async move {
            tokio::time::sleep_until(at.into()).await;
            viewer::viewer(kind, epoch, until, leave, burst && !joiner).await
        };
        viewers.push(match (&burst_rt, joiner) {
            (Some(rt), true) => rt.spawn(task),
            _ => tokio::spawn(task),
        });
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
    let rss_before_burst = if burst {
        tokio::time::sleep_until((burst_from - Duration::from_millis(50)).into()).await;
        pid.as_deref()
            .and_then(|p| procstat::status_kib(p, "VmRSS"))
    } else {
        None
    };
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
    let mut leads = Vec::new();
    let mut behind = 0;
    let mut corrupt = Vec::new();
    let (mut sessions, mut leaves, mut joins) = (0, 0, 0);
    // The burst: the watchers' longest gaps, the joiners' keys and bytes in the burst window.
    let (window_ns, burst_ns) = (
        ns(measure_from)..ns(measure_to),
        ns(burst_from)..ns(burst_to),
    );
    let (mut gaps_before, mut gaps_burst, mut gaps_after) = (Vec::new(), Vec::new(), Vec::new());
    let mut worst = (0u64, 0u64);
    let (mut burst_keys, mut joiners_connected, mut joiner_bytes) = (Vec::new(), 0, 0u64);
    let bucket_of = |t: Instant| ((t - epoch).as_nanos() / viewer::BUCKET.as_nanos()) as usize;
    for (i, r) in results.iter().enumerate() {
        let window: Vec<u64> = (b0..b1)
            .map(|i| r.buckets.get(i).copied().unwrap_or(0))
            .collect();
        let bytes: u64 = window.iter().sum();
        total += bytes;
        if i >= a.viewers {
            // A burst joiner: only its own figures (it was not there for most of the window).
            joiners_connected += usize::from(r.buckets.iter().any(|&b| b > 0));
            joiner_bytes += (bucket_of(burst_from)..bucket_of(burst_to))
                .map(|i| r.buckets.get(i).copied().unwrap_or(0))
                .sum::<u64>();
            for s in &r.sessions {
                sessions += 1;
                if let Some(e) = &s.error {
                    errors.push(e.clone());
                }
                if let Some(c) = &s.corrupt {
                    corrupt.push(c.clone());
                }
                if let Some(k) = s.first_key {
                    burst_keys.push(k.as_secs_f64() * 1000.0);
                }
            }
            continue;
        }
        if burst {
            let media_at = r.sessions.first().map_or(&[][..], |s| &s.media_at[..]);
            let g = gaps::longest(media_at, window_ns.clone(), burst_ns.clone());
            gaps_before.extend(g.before.map(|g| g as f64 / 1e6));
            gaps_burst.extend(g.in_burst.map(|g| g as f64 / 1e6));
            gaps_after.extend(g.after.map(|g| g as f64 / 1e6));
            let longest = g.in_burst.max(g.outside()).unwrap_or(0);
            if longest > worst.0 {
                worst = (longest, g.worst_end.unwrap_or(0));
            }
        }
        rates.push(bytes as f64 * 8.0 / secs / 1e6);
        if window
            .windows(per_2s)
            .zip(&expected)
            .any(|(w, e)| (w.iter().sum::<u64>() as f64) < 0.9 * e)
        {
            stalled += 1;
        }
        for s in &r.sessions {
            if let Some(l) = s.lead_min_ms {
                leads.push(l as f64);
                behind += usize::from(l < 0);
            }
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
    gaps_before.sort_by(f64::total_cmp);
    gaps_burst.sort_by(f64::total_cmp);
    gaps_after.sort_by(f64::total_cmp);
    burst_keys.sort_by(f64::total_cmp);
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

    let burst = burst.then(|| {
        let publisher = gaps::longest(&sent.times(), window_ns.clone(), burst_ns.clone());
        let ms = |g: Option<u64>| g.map(|g| g as f64 / 1e6);
        let rel = |t: Instant| (t - measure_from).as_secs_f64() * 1000.0;
        let gap_ms_burst_max = gaps_burst.last().copied();
        BurstReport {
            watching: a.viewers,
            joiners: a.join_burst,
            within_ms: a.burst_within_ms,
            window_from_ms: rel(burst_from),
            window_to_ms: rel(burst_to),
            joiners_connected,
            joiners_keyed: burst_keys.len(),
            gap_ms_burst_max,
            gap_ms_burst_p99: percentile(&gaps_burst, 0.99),
            gap_ms_before_max: gaps_before.last().copied(),
            gap_ms_before_p99: percentile(&gaps_before, 0.99),
            gap_ms_after_max: gaps_after.last().copied(),
            gap_ms_after_p99: percentile(&gaps_after, 0.99),
            worst_gap_end_ms: (worst.0 > 0).then(|| (worst.1 as f64 - ns(burst_from) as f64) / 1e6),
            publisher_gap_ms_burst: ms(publisher.in_burst),
            publisher_gap_ms_outside: ms(publisher.outside()),
            joiner_first_keyframe_ms_p50: percentile(&burst_keys, 0.5),
            joiner_first_keyframe_ms_p99: percentile(&burst_keys, 0.99),
            joiner_first_keyframe_ms_max: burst_keys.last().copied(),
            joiner_mb_in_burst_window: joiner_bytes as f64 / 1e6,
            server_rss_before_burst_mb: rss_before_burst.map(|k| k as f64 / 1024.0),
            gather_ms: a.gather_ms,
            goal_met: gap_ms_burst_max.is_some_and(|g| g < (a.gather_ms + 100) as f64),
        }
    });
    let server_cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some((b - a).as_secs_f64()),
        _ => None,
    };
    Ok(Report {
        label: a.label.clone(),
        mode: format!("{:?}", a.mode).to_lowercase(),
        viewers: a.viewers,
        connected: results[..a.viewers]
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
        lead_ms_min: {
            leads.sort_by(f64::total_cmp);
            leads.first().copied()
        },
        lead_ms_median_of_min: percentile(&leads, 0.5),
        behind,
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
        burst,
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

fn print_burst_table(r: &Report, b: &BurstReport) {
    println!();
    println!(
        "| label | mode | watching | joiners within ms | joined/keyed | burst window s | watchers' longest gap before / in / after the burst window, max/p99 ms | worst gap ends at ms | publisher gap burst/outside ms | joiner key p50/p99/max ms | joiners' MB in burst window | corrupt | server RSS before burst MB | peak RSS MB | gap < gather+100 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} in {} | {}/{} | {:.1}-{:.1} | {}/{} / {}/{} / {}/{} | {} | {}/{} | {}/{}/{} | {:.1} | {} | {} | {} | {} |",
        r.label,
        r.mode,
        b.watching,
        b.joiners,
        b.within_ms,
        b.joiners_connected,
        b.joiners_keyed,
        b.window_from_ms / 1000.0,
        b.window_to_ms / 1000.0,
        fmt_opt(b.gap_ms_before_max, 0),
        fmt_opt(b.gap_ms_before_p99, 0),
        fmt_opt(b.gap_ms_burst_max, 0),
        fmt_opt(b.gap_ms_burst_p99, 0),
        fmt_opt(b.gap_ms_after_max, 0),
        fmt_opt(b.gap_ms_after_p99, 0),
        fmt_opt(b.worst_gap_end_ms, 0),
        fmt_opt(b.publisher_gap_ms_burst, 0),
        fmt_opt(b.publisher_gap_ms_outside, 0),
        fmt_opt(b.joiner_first_keyframe_ms_p50, 0),
        fmt_opt(b.joiner_first_keyframe_ms_p99, 0),
        fmt_opt(b.joiner_first_keyframe_ms_max, 0),
        b.joiner_mb_in_burst_window,
        r.corrupt,
        fmt_opt(b.server_rss_before_burst_mb, 1),
        fmt_opt(r.server_peak_rss_mb, 1),
        if b.goal_met { "yes" } else { "**no**" },
    );
}
