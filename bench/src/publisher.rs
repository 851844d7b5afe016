//! The publisher: an FLV file played in real time (looped), over RTMP or fstream; or a raw
//! fstream stream of fixed-size blocks carrying their send time, for delay measurement.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fstream_media::{
    flv::{self, FlvDemuxer, TagType},
    rtmp::{message::ControlMessage, RtmpMessage},
};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::rtmp_client::RtmpConn;

/// Bytes the publisher sent per bucket since the run's epoch, so viewers can be compared with
/// what was actually published in the same window (the file's bitrate is not constant); and
/// when each write was made, so a pause of the publisher itself (this process being late) can
/// be told from a pause of the server.
#[derive(Clone)]
pub struct Sent {
    epoch: Instant,
    inner: std::sync::Arc<std::sync::Mutex<SentLog>>,
}

#[derive(Default)]
struct SentLog {
    buckets: Vec<u64>,
    /// ns since the epoch of each write of a media message (or raw batch).
    times: Vec<u64>,
}

impl Sent {
    pub fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            inner: Default::default(),
        }
    }

    fn add(&self, n: usize) {
        let now = self.epoch.elapsed().as_nanos();
        let i = (now / crate::viewer::BUCKET.as_nanos()) as usize;
        let mut log = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if log.buckets.len() <= i {
            log.buckets.resize(i + 1, 0);
        }
        log.buckets[i] += n as u64;
        log.times.push(now as u64);
    }

    pub fn buckets(&self) -> Vec<u64> {
        let log = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        log.buckets.clone()
    }

    /// When each write was made (ns since the epoch, ascending).
    pub fn times(&self) -> Vec<u64> {
        let log = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        log.times.clone()
    }
}

/// One tag of the input file.
#[derive(Clone)]
pub struct Tag {
    pub kind: TagType,
    pub timestamp: u32,
    pub data: bytes::Bytes,
}

/// The media file, parsed once.
pub struct Media {
    pub tags: Vec<Tag>,
    pub duration_ms: u32,
    pub bitrate_bps: f64,
}

impl Media {
    pub fn load(path: &str) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("read {path}"))?;
        let mut d = FlvDemuxer::new(16 << 20);
        d.push(&bytes);
        let mut tags = Vec::new();
        while let Some(t) = d.next_tag()? {
            tags.push(Tag {
                kind: t.tag.tag_type,
                timestamp: t.tag.timestamp,
                data: t.tag.data,
            });
        }
        if tags.is_empty() {
            bail!("{path}: no FLV tags");
        }
        let duration_ms = tags.iter().map(|t| t.timestamp).max().unwrap_or(0).max(1);
        let media_bytes: usize = tags.iter().map(|t| t.data.len() + 15).sum();
        Ok(Media {
            bitrate_bps: media_bytes as f64 * 8.0 * 1000.0 / duration_ms as f64,
            tags,
            duration_ms,
        })
    }

    /// The tags in play order, looping forever with continuous timestamps; the first loop
    /// includes script and sequence-header tags, later loops skip them.
    fn schedule(&self) -> impl Iterator<Item = Tag> + '_ {
        let period = self.duration_ms + 40;
        (0u32..).flat_map(move |lap| {
            self.tags
                .iter()
                .filter(move |t| lap == 0 || !(t.kind == TagType::Script || is_header(t)))
                .map(move |t| Tag {
                    timestamp: t.timestamp.wrapping_add(lap.wrapping_mul(period)),
                    ..t.clone()
                })
        })
    }
}

fn is_header(t: &Tag) -> bool {
    match t.kind {
        TagType::Video => flv::is_video_sequence_header(&t.data),
        TagType::Audio => flv::is_audio_sequence_header(&t.data),
        TagType::Script => false,
    }
}

/// Sleeps until `ts` milliseconds after `start`.
async fn pace(start: Instant, ts: u32) {
    tokio::time::sleep_until((start + Duration::from_millis(ts as u64)).into()).await;
}

pub async fn rtmp(
    addr: &str,
    app: &str,
    name: &str,
    media: &Media,
    until: Instant,
    sent: &Sent,
) -> anyhow::Result<()> {
    let mut c = RtmpConn::connect(addr, app).await?;
    c.control(ControlMessage::SetChunkSize(4096)).await?;
    let id = c.publish(name).await?;
    let start = Instant::now();
    for t in media.schedule() {
        if Instant::now() >= until {
            break;
        }
        pace(start, t.timestamp).await;
        let (csid, type_id, payload) = match t.kind {
            TagType::Audio => (4, 8, t.data),
            TagType::Video => (6, 9, t.data),
            TagType::Script => {
                // Publishers send metadata as @setDataFrame.
                let mut p = Vec::with_capacity(t.data.len() + 16);
                p.extend_from_slice(&[0x02, 0x00, 0x0d]);
                p.extend_from_slice(b"@setDataFrame");
                p.extend_from_slice(&t.data);
                (5, 18, bytes::Bytes::from(p))
            }
        };
        sent.add(payload.len());
        c.send(&RtmpMessage::new(csid, t.timestamp, type_id, id, payload))
            .await?;
    }
    Ok(())
}

pub async fn fstream_flv(
    addr: &str,
    action: &str,
    media: &Media,
    until: Instant,
    sent: &Sent,
) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(&fstream_wire::encode_preamble(
        action,
        fstream_wire::Prelude::Blank,
    ))
    .await?;
    let mut header = Vec::new();
    flv::write_file_header(&mut header, true, true);
    s.write_all(&header).await?;
    let start = Instant::now();
    let mut out = Vec::new();
    for t in media.schedule() {
        if Instant::now() >= until {
            break;
        }
        pace(start, t.timestamp).await;
        out.clear();
        flv::write_tag(&mut out, t.kind, t.timestamp, &t.data)?;
        sent.add(out.len());
        s.write_all(&out).await?;
    }
    Ok(())
}

/// Size of a raw delay-measurement block: 7 MPEG-TS packets, so `bufsize=1316` aligns them.
pub const BLOCK: usize = 1316;
/// Marks the start of a block: then 8 bytes of nanoseconds since the run's epoch, 8 bytes of
/// sequence number (both big-endian), and zeros to the end of the block (checked by
/// [`crate::check::RawCheck`]).
pub const MAGIC: &[u8; 8] = b"FSBENCH\0";

/// A raw stream at `bitrate_bps`: every 10 ms, the blocks due, each stamped with its send time
/// and numbered.
pub async fn fstream_raw(
    addr: &str,
    action: &str,
    bitrate_bps: f64,
    epoch: Instant,
    until: Instant,
    sent_bytes: &Sent,
) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(&fstream_wire::encode_preamble(
        action,
        fstream_wire::Prelude::Blank,
    ))
    .await?;
    let blocks_per_sec = bitrate_bps / 8.0 / BLOCK as f64;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut buf = Vec::new();
    while Instant::now() < until {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * blocks_per_sec) as u64;
        buf.clear();
        while sent < due {
            let now = epoch.elapsed().as_nanos() as u64;
            buf.extend_from_slice(MAGIC);
            buf.extend_from_slice(&now.to_be_bytes());
            buf.extend_from_slice(&sent.to_be_bytes());
            buf.resize(buf.len() + BLOCK - crate::check::RAW_HEAD, 0);
            sent += 1;
        }
        sent_bytes.add(buf.len());
        s.write_all(&buf).await?;
    }
    Ok(())
}
