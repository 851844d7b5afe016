//! Simulated viewers: an RTMP player (handshake, connect, createStream, play, buffer length,
//! acknowledgements) or an fstream watcher; each drains the stream and counts.

use std::time::{Duration, Instant};

use fstream_media::flv::{self, FlvDemuxer, TagType};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{publisher, rtmp_client::RtmpConn};

/// Width of a throughput bucket.
pub const BUCKET: Duration = Duration::from_millis(250);

/// What one viewer saw.
#[derive(Default, Clone)]
pub struct ViewerResult {
    /// Bytes received per bucket since the run's epoch.
    pub buckets: Vec<u64>,
    /// From the start of its connection to its first video keyframe.
    pub first_key: Option<Duration>,
    /// End-to-end delays sampled from raw delay blocks.
    pub delays: Vec<Duration>,
    pub error: Option<String>,
}

struct Counter {
    epoch: Instant,
    buckets: Vec<u64>,
}

impl Counter {
    fn add(&mut self, n: usize) {
        let i = (self.epoch.elapsed().as_nanos() / BUCKET.as_nanos()) as usize;
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, 0);
        }
        self.buckets[i] += n as u64;
    }
}

pub async fn rtmp_player(
    addr: String,
    app: String,
    name: String,
    epoch: Instant,
    until: Instant,
) -> ViewerResult {
    let mut r = ViewerResult::default();
    let mut counter = Counter {
        epoch,
        buckets: Vec::new(),
    };
    let t0 = Instant::now();
    let run = async {
        let mut c = RtmpConn::connect(&addr, &app).await?;
        c.play(&name).await?;
        let mut seen = c.bytes_in;
        loop {
            let m = c.next_message().await?;
            counter.add((c.bytes_in - seen) as usize);
            seen = c.bytes_in;
            if r.first_key.is_none() && m.type_id == 9 && flv::is_video_keyframe(&m.payload) {
                r.first_key = Some(t0.elapsed());
            }
        }
        #[allow(unreachable_code)]
        anyhow::Ok(())
    };
    tokio::select! {
        res = run => if let Err(e) = res { r.error = Some(e.to_string()) },
        _ = tokio::time::sleep_until(until.into()) => {}
    }
    r.buckets = counter.buckets;
    r
}

/// An fstream watcher. `flv`: look for the first keyframe in an FLV stream; otherwise parse
/// raw delay blocks.
pub async fn fstream_watcher(
    addr: String,
    action: String,
    flv_stream: bool,
    epoch: Instant,
    until: Instant,
) -> ViewerResult {
    let mut r = ViewerResult::default();
    let mut counter = Counter {
        epoch,
        buckets: Vec::new(),
    };
    let t0 = Instant::now();
    let run = async {
        let mut s = TcpStream::connect(&addr).await?;
        s.write_all(&fstream_wire::encode_preamble(
            &action,
            fstream_wire::Prelude::Blank,
        ))
        .await?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut demux = FlvDemuxer::new(16 << 20);
        let mut parsing = flv_stream;
        let mut block_pos = 0usize; // offset into the current raw block
        let mut stamp = Vec::with_capacity(16);
        let mut sample = 0u32;
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                anyhow::bail!("server closed the connection");
            }
            counter.add(n);
            let data = &buf[..n];
            if parsing {
                demux.push(data);
                while let Some(t) = demux.next_tag()? {
                    if t.tag.tag_type == TagType::Video && flv::is_video_keyframe(&t.tag.data) {
                        r.first_key = Some(t0.elapsed());
                        parsing = false;
                        break;
                    }
                }
            } else if !flv_stream {
                // Raw blocks of BLOCK bytes, aligned (bufsize); the first 16 bytes stamp them.
                let mut i = 0;
                while i < data.len() {
                    let take = (publisher::BLOCK - block_pos).min(data.len() - i);
                    if block_pos < 16 {
                        let head = (16 - block_pos).min(take);
                        stamp.extend_from_slice(&data[i..i + head]);
                        if stamp.len() == 16 {
                            if &stamp[..8] == publisher::MAGIC {
                                sample += 1;
                                // Keep one delay sample in 16 to stay cheap.
                                if sample % 16 == 1 {
                                    let sent = u64::from_be_bytes(
                                        stamp[8..16].try_into().unwrap_or([0; 8]),
                                    );
                                    let now = epoch.elapsed().as_nanos() as u64;
                                    r.delays
                                        .push(Duration::from_nanos(now.saturating_sub(sent)));
                                }
                                if r.first_key.is_none() {
                                    r.first_key = Some(t0.elapsed());
                                }
                            }
                            stamp.clear();
                        }
                    }
                    block_pos = (block_pos + take) % publisher::BLOCK;
                    i += take;
                }
            }
        }
        #[allow(unreachable_code)]
        anyhow::Ok(())
    };
    tokio::select! {
        res = run => if let Err(e) = res { r.error = Some(e.to_string()) },
        _ = tokio::time::sleep_until(until.into()) => {}
    }
    r.buckets = counter.buckets;
    r
}
