//! Simulated viewers: an RTMP player (handshake, connect, createStream, play, buffer length,
//! acknowledgements) or an fstream watcher. Each checks every byte it receives (see
//! [`crate::check`]) and counts only what passed; a viewer whose stream does not parse ends
//! with the reason recorded as corrupt.
//!
//! A viewer is a slot that holds one connection (a session) at a time: in a churn run it is
//! told to leave, closes its socket, and joins again at once with a fresh connection whose
//! bytes are checked from the first.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::bail;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Notify,
};

use crate::{
    check::{Corrupt, FlvCheck, Item, RawCheck},
    rtmp_client::RtmpConn,
};

/// Width of a throughput bucket.
pub const BUCKET: Duration = Duration::from_millis(250);
/// The lead is watched from this long after the first media message (the read-ahead burst).
pub const LEAD_SETTLE: Duration = Duration::from_secs(2);

/// What one connection saw.
#[derive(Default, Clone, Debug)]
pub struct Session {
    /// It replaced a session that left (a churn join).
    pub joiner: bool,
    /// It was closed by the churn (a leave).
    pub left: bool,
    /// From the start of its connection to its first video keyframe (raw: first block).
    pub first_key: Option<Duration>,
    /// End-to-end delays sampled from raw blocks.
    pub delays: Vec<Duration>,
    /// With gap tracking (the first session of a slot only): when media messages arrived, ns
    /// since the run's epoch, one entry per read that completed at least one.
    pub media_at: Vec<u64>,
    /// RTMP: how far the media's timestamps ran ahead of the wall clock (both from the first
    /// media message), at least, once `LEAD_SETTLE` had passed: a player that paces a recorded
    /// file has its read-ahead here, and a negative lead is a player that would have stalled.
    pub lead_min_ms: Option<i64>,
    /// The first thing in its bytes that did not parse.
    pub corrupt: Option<String>,
    /// Anything else that ended it early (refused, closed, I/O).
    pub error: Option<String>,
}

/// What one viewer slot saw over the run.
#[derive(Default, Clone)]
pub struct ViewerResult {
    /// Bytes received and validated per bucket since the run's epoch, over all its sessions.
    pub buckets: Vec<u64>,
    pub sessions: Vec<Session>,
}

/// How a viewer connects and what it expects.
#[derive(Clone, Debug)]
pub enum Kind {
    Rtmp {
        addr: String,
        app: String,
        name: String,
    },
    /// An HTTP-FLV viewer: the response head, then the chunked body checked as FLV.
    HttpFlv { addr: String, path: String },
    /// An fstream watcher; `raw`: the bench's stamped raw stream, else FLV.
    Fstream {
        addr: String,
        action: String,
        raw: bool,
    },
}

struct Counter {
    epoch: Instant,
    buckets: Vec<u64>,
}

impl Counter {
    fn add(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        let i = (self.epoch.elapsed().as_nanos() / BUCKET.as_nanos()) as usize;
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, 0);
        }
        self.buckets[i] += n;
    }
}

enum End {
    Done(anyhow::Result<()>),
    Left,
    Until,
}

/// One viewer slot until `until`; each `leave` notification closes its connection and opens a
/// fresh one (or, if the last one already ended, just opens a fresh one). `track_gaps`: its
/// first session records when its media messages arrive ([`Session::media_at`]).
pub async fn viewer(
    kind: Kind,
    epoch: Instant,
    until: Instant,
    leave: Arc<Notify>,
    track_gaps: bool,
) -> ViewerResult {
    let mut counter = Counter {
        epoch,
        buckets: Vec::new(),
    };
    let mut sessions = Vec::new();
    let mut joiner = false;
    loop {
        let mut s = Session {
            joiner,
            ..Session::default()
        };
        let end = tokio::select! {
            r = session(&kind, epoch, &mut counter, &mut s, track_gaps && !joiner) => End::Done(r),
            _ = leave.notified() => End::Left,
            _ = tokio::time::sleep_until(until.into()) => End::Until,
        };
        let mut over = false;
        match end {
            End::Until => over = true,
            End::Left => s.left = true,
            End::Done(r) => {
                if let Err(e) = r {
                    match e.downcast_ref::<Corrupt>() {
                        Some(c) => s.corrupt = Some(c.to_string()),
                        None => s.error = Some(format!("{e:#}")),
                    }
                }
                // Nothing to leave: wait to be replaced, or for the end.
                tokio::select! {
                    _ = leave.notified() => {}
                    _ = tokio::time::sleep_until(until.into()) => over = true,
                }
            }
        }
        sessions.push(s);
        if over {
            break;
        }
        joiner = true;
    }
    ViewerResult {
        buckets: counter.buckets,
        sessions,
    }
}

async fn session(
    kind: &Kind,
    epoch: Instant,
    counter: &mut Counter,
    s: &mut Session,
    track_gaps: bool,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    // Records a media arrival (once per distinct time).
    let arrived = |s: &mut Session| {
        let now = epoch.elapsed().as_nanos() as u64;
        if s.media_at.last() != Some(&now) {
            s.media_at.push(now);
        }
    };
    match kind {
        Kind::Rtmp { addr, app, name } => {
            let mut c = RtmpConn::connect(addr, app).await?;
            let id = c.play(name).await?;
            let mut credited = 0;
            let mut first_media: Option<(Instant, u32)> = None;
            loop {
                let item = c.next_message().await?;
                counter.add(c.validated() - credited);
                credited = c.validated();
                match item {
                    Item::Media {
                        keyframe,
                        stream_id,
                        timestamp,
                    } if stream_id == id => {
                        let (at, ts0) = *first_media.get_or_insert((Instant::now(), timestamp));
                        let wall = at.elapsed();
                        if wall >= LEAD_SETTLE {
                            let lead =
                                timestamp.wrapping_sub(ts0) as i32 as i64 - wall.as_millis() as i64;
                            s.lead_min_ms = Some(s.lead_min_ms.map_or(lead, |m| m.min(lead)));
                        }
                        if keyframe {
                            s.first_key.get_or_insert_with(|| t0.elapsed());
                        }
                        if track_gaps {
                            arrived(s);
                        }
                    }
                    Item::Command { command, stream_id } if stream_id == id || stream_id == 0 => {
                        let info = command.arg(0);
                        let level = info.and_then(|i| i.get_str("level")).unwrap_or("");
                        if command.name == "_error" || level == "error" {
                            let code = info.and_then(|i| i.get_str("code")).unwrap_or("");
                            bail!("{} {code}", command.name);
                        }
                    }
                    _ => {}
                }
            }
        }
        Kind::HttpFlv { addr, path } => {
            let mut sock = TcpStream::connect(addr).await?;
            sock.write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())
                .await?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut pending = Vec::new();
            // The head: a 200 with a chunked body.
            let body_at = loop {
                let n = read(&mut sock, &mut buf).await?;
                pending.extend_from_slice(&buf[..n]);
                if let Some(p) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
                if pending.len() > 16 * 1024 {
                    bail!("no HTTP head in 16 KiB");
                }
            };
            let head = String::from_utf8_lossy(&pending[..body_at]).to_string();
            if !head.starts_with("HTTP/1.1 200") || !head.contains("Transfer-Encoding: chunked") {
                bail!("HTTP answer: {}", head.lines().next().unwrap_or(""));
            }
            pending.drain(..body_at);
            let mut check = FlvCheck::new();
            let mut credited = 0;
            loop {
                // Whole chunks go to the FLV check; a chunk's framing must be exact.
                let mut body = Vec::new();
                while let Some(eol) = pending.windows(2).position(|w| w == b"\r\n") {
                    let len = std::str::from_utf8(&pending[..eol])
                        .ok()
                        .and_then(|s| usize::from_str_radix(s, 16).ok())
                        .ok_or_else(|| Corrupt {
                            at: check.validated(),
                            what: "bad HTTP chunk size".into(),
                        })?;
                    if len == 0 {
                        bail!("the stream ended");
                    }
                    if pending.len() < eol + 4 + len {
                        break;
                    }
                    if &pending[eol + 2 + len..eol + 4 + len] != b"\r\n" {
                        return Err(Corrupt {
                            at: check.validated(),
                            what: "an HTTP chunk without its CRLF".into(),
                        }
                        .into());
                    }
                    body.extend_from_slice(&pending[eol + 2..eol + 2 + len]);
                    pending.drain(..eol + 4 + len);
                }
                let tags = check.tags;
                if check.push(&body)? {
                    s.first_key.get_or_insert_with(|| t0.elapsed());
                }
                if track_gaps && check.tags > tags {
                    arrived(s);
                }
                counter.add(check.validated() - credited);
                credited = check.validated();
                let n = read(&mut sock, &mut buf).await?;
                pending.extend_from_slice(&buf[..n]);
            }
        }
        Kind::Fstream { addr, action, raw } => {
            let mut sock = TcpStream::connect(addr).await?;
            sock.write_all(&fstream_wire::encode_preamble(
                action,
                fstream_wire::Prelude::Blank,
            ))
            .await?;
            let mut buf = vec![0u8; 64 * 1024];
            if *raw {
                let mut check = RawCheck::default();
                let mut sample = 0u32;
                loop {
                    let n = read(&mut sock, &mut buf).await?;
                    let mut got = false;
                    check.push(&buf[..n], |sent| {
                        got = true;
                        s.first_key.get_or_insert_with(|| t0.elapsed());
                        // Keep one delay sample in 16 to stay cheap.
                        sample = sample.wrapping_add(1);
                        if sample % 16 == 1 {
                            let now = epoch.elapsed().as_nanos() as u64;
                            s.delays
                                .push(Duration::from_nanos(now.saturating_sub(sent)));
                        }
                    })?;
                    if track_gaps && got {
                        arrived(s);
                    }
                    counter.add(n as u64);
                }
            } else {
                let mut check = FlvCheck::new();
                let mut credited = 0;
                loop {
                    let n = read(&mut sock, &mut buf).await?;
                    let tags = check.tags;
                    if check.push(&buf[..n])? {
                        s.first_key.get_or_insert_with(|| t0.elapsed());
                    }
                    if track_gaps && check.tags > tags {
                        arrived(s);
                    }
                    counter.add(check.validated() - credited);
                    credited = check.validated();
                }
            }
        }
    }
}

async fn read(sock: &mut TcpStream, buf: &mut [u8]) -> anyhow::Result<usize> {
    let n = sock.read(buf).await?;
    if n == 0 {
        bail!("server closed the connection");
    }
    Ok(n)
}
