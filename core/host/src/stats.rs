//! What the server can tell about itself at run time (since interface v2.3): the live
//! sessions, the counters since start, and the codecs of a stream read from its sequence
//! headers. `HostApi::stats` renders them with the hub's streams as one JSON document
//! (`render`); the control API plugin serves it.
//!
//! Counting costs the packet path nothing it did not pay already: bytes in are added by the
//! connection that read them, bytes out by the queue that wrote them, and the stream counters
//! live under the stream's lock the fan-out holds anyway.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Instant,
};

use fstream_media::fmp4::dims;
use serde_json::{json, Value};

use crate::{hub::StreamSnapshot, outq::Outq};

/// Counters since start, for `/metrics`.
pub struct Counters {
    pub connections: AtomicU64,
    /// Viewers over their queue bound (each time, whatever the policy).
    pub queue_overflows: AtomicU64,
    /// Viewers disconnected for being too slow.
    pub dropped_viewers: AtomicU64,
    /// Recordings started (sinks opened) and finished files reported.
    pub recordings: AtomicU64,
    pub recordings_done: AtomicU64,
    /// Panics caught at the plugin boundary (sessions, handlers, sinks, observers).
    pub plugin_panics: AtomicU64,
    /// Connections ended by `kick`.
    pub kicks: AtomicU64,
}

pub static COUNTERS: Counters = Counters {
    connections: AtomicU64::new(0),
    queue_overflows: AtomicU64::new(0),
    dropped_viewers: AtomicU64::new(0),
    recordings: AtomicU64::new(0),
    recordings_done: AtomicU64::new(0),
    plugin_panics: AtomicU64::new(0),
    kicks: AtomicU64::new(0),
};

impl Counters {
    pub fn plugin_panic(&self) {
        self.plugin_panics.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a connection is doing, as the API shows it.
#[derive(Default, Clone)]
pub struct Detail {
    /// The user name it authenticated as (or gave to its app), empty when none.
    pub user: String,
    /// Its query string, credentials redacted.
    pub query: String,
    pub publishing: Vec<String>,
    pub playing: Vec<String>,
}

/// One live connection.
pub struct SessionEntry {
    pub id: u64,
    pub protocol: String,
    pub peer: String,
    pub since_unix_ms: u64,
    started: Instant,
    out: Arc<Outq>,
    pub bytes_in: AtomicU64,
    detail: Mutex<Detail>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SessionEntry {
    pub fn detail(&self) -> MutexGuard<'_, Detail> {
        lock(&self.detail)
    }
    pub fn bytes_out(&self) -> u64 {
        self.out.sent_bytes()
    }
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// The live connections, and the bytes of the ended ones by protocol.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<u64, Arc<SessionEntry>>>,
    /// protocol -> (bytes in, bytes out) of connections that ended.
    ended: Mutex<BTreeMap<String, (u64, u64)>>,
}

impl Sessions {
    pub fn open(&self, id: u64, protocol: &str, peer: &str, out: Arc<Outq>) -> Arc<SessionEntry> {
        COUNTERS.connections.fetch_add(1, Ordering::Relaxed);
        let e = Arc::new(SessionEntry {
            id,
            protocol: protocol.to_string(),
            peer: peer.to_string(),
            since_unix_ms: crate::hub::unix_ms(),
            started: Instant::now(),
            out,
            bytes_in: AtomicU64::new(0),
            detail: Mutex::new(Detail::default()),
        });
        lock(&self.live).insert(id, e.clone());
        e
    }

    pub fn close(&self, id: u64) {
        let Some(e) = lock(&self.live).remove(&id) else {
            return;
        };
        let mut ended = lock(&self.ended);
        let t = ended.entry(e.protocol.clone()).or_default();
        t.0 += e.bytes_in.load(Ordering::Relaxed);
        t.1 += e.bytes_out();
    }

    pub fn get(&self, id: u64) -> Option<Arc<SessionEntry>> {
        lock(&self.live).get(&id).cloned()
    }

    /// Ends a connection: its queue is aborted, so its task stops reading, unpublishes and
    /// unsubscribes as for any other end.
    pub fn kick(&self, id: u64, reason: &str) -> bool {
        let Some(e) = self.get(id) else {
            return false;
        };
        tracing::warn!(conn = id, peer = %e.peer, reason, "connection kicked");
        COUNTERS.kicks.fetch_add(1, Ordering::Relaxed);
        e.out.abort();
        true
    }

    fn all(&self) -> Vec<Arc<SessionEntry>> {
        let mut v: Vec<_> = lock(&self.live).values().cloned().collect();
        v.sort_by_key(|e| e.id);
        v
    }

    /// protocol -> (bytes in, bytes out), live and ended connections together.
    fn bytes_by_protocol(&self, live: &[Arc<SessionEntry>]) -> BTreeMap<String, (u64, u64)> {
        let mut m = lock(&self.ended).clone();
        for e in live {
            let t = m.entry(e.protocol.clone()).or_default();
            t.0 += e.bytes_in.load(Ordering::Relaxed);
            t.1 += e.bytes_out();
        }
        m
    }
}

/// What a stream's video sequence header says: codec, width, height.
pub fn video_info(payload: &[u8]) -> Option<(String, Option<(u32, u32)>)> {
    let b0 = *payload.first()?;
    if b0 & 0x80 != 0 {
        // Enhanced RTMP: the FourCC follows the first byte; the sequence start's record after.
        let fourcc = payload.get(1..5)?;
        let rec = payload.get(5..).unwrap_or(&[]);
        let (name, size) = match fourcc {
            b"hvc1" => ("hevc", dims::hevc_record_sps(rec)),
            b"av01" => ("av1", dims::av1_record(rec)),
            b"avc1" => ("h264", avc_record_size(rec)),
            b"vp09" => ("vp9", None),
            _ => ("unknown", None),
        };
        return Some((name.to_string(), size));
    }
    Some(match b0 & 0x0F {
        7 => ("h264".to_string(), avc_record_size(payload.get(5..)?)),
        2 => ("h263".to_string(), None),
        4 | 5 => ("vp6".to_string(), None),
        12 => ("hevc".to_string(), dims::hevc_record_sps(payload.get(5..)?)),
        _ => ("unknown".to_string(), None),
    })
}

fn avc_record_size(rec: &[u8]) -> Option<(u32, u32)> {
    if *rec.get(5)? & 0x1F == 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*rec.get(6)?, *rec.get(7)?]));
    dims::h264_sps(rec.get(8..8 + len)?)
}

/// What a stream's audio says: codec, sample rate, channels.
pub fn audio_info(payload: &[u8]) -> Option<(String, Option<u32>, Option<u32>)> {
    let b0 = *payload.first()?;
    let format = b0 >> 4;
    if format == 10 {
        // AAC: the AudioSpecificConfig after the packet type.
        let asc = payload.get(2..4);
        let (rate, channels) = match asc {
            Some(a) => {
                let idx = ((a[0] & 0x07) << 1) | (a[1] >> 7);
                const RATES: [u32; 13] = [
                    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
                    8000, 7350,
                ];
                let ch = u32::from((a[1] >> 3) & 0x0F);
                (RATES.get(usize::from(idx)).copied(), Some(ch))
            }
            None => (None, None),
        };
        return Some(("aac".to_string(), rate, channels));
    }
    let name = match format {
        2 | 14 => "mp3",
        11 => "speex",
        0 | 3 => "pcm",
        7 => "pcm_alaw",
        8 => "pcm_mulaw",
        4..=6 => "nellymoser",
        9 => "extended",
        _ => "unknown",
    };
    let rate = [5512, 11025, 22050, 44100]
        .get(usize::from((b0 >> 2) & 3))
        .copied();
    let channels = if b0 & 1 == 1 { 2 } else { 1 };
    Some((name.to_string(), rate, Some(channels)))
}

fn stream_json(s: &StreamSnapshot, sessions: &Sessions, frontends: &[String]) -> Value {
    let (app, name) = s.name.split_once('/').unwrap_or((&s.name, ""));
    let publisher = s.publisher.as_ref().map(|p| {
        let detail = sessions.get(p.conn_id).map(|e| e.detail().clone());
        let peer = sessions.get(p.conn_id).map(|e| e.peer.clone());
        json!({
            "session": p.conn_id,
            "protocol": p.protocol,
            "peer": peer,
            "user": detail.as_ref().map(|d| d.user.clone()).filter(|u| !u.is_empty()),
            "query": detail.as_ref().map(|d| d.query.clone()).filter(|q| !q.is_empty()),
        })
    });
    let mut viewers: BTreeMap<&str, u64> = BTreeMap::new();
    for v in &s.viewers {
        *viewers.entry(v.as_str()).or_default() += 1;
    }
    let video = s.video_header.as_deref().and_then(video_info).map(|(codec, size)| {
        json!({"codec": codec, "width": size.map(|d| d.0), "height": size.map(|d| d.1)})
    });
    let audio = s
        .audio_header
        .as_deref()
        .and_then(audio_info)
        .map(|(codec, rate, ch)| json!({"codec": codec, "sample_rate": rate, "channels": ch}));
    json!({
        "path": s.name,
        "app": app,
        "name": name,
        "live": s.publisher.is_some(),
        "publisher": publisher,
        "uptime_ms": s.uptime_ms,
        "video": video,
        "audio": audio,
        "bytes_in": s.bytes_in,
        "bytes_out": s.bytes_out,
        "bitrate_in_kbps": s.kbps_in,
        "bitrate_out_kbps": s.kbps_out,
        "viewers": s.viewers.len(),
        "viewers_by_protocol": viewers,
        "recording": s.sinks.iter().any(|p| !frontends.contains(p)),
        "sinks": s.sinks,
    })
}

fn session_json(e: &SessionEntry) -> Value {
    let d = e.detail().clone();
    let state = if !d.publishing.is_empty() {
        "publishing"
    } else if !d.playing.is_empty() {
        "playing"
    } else {
        "idle"
    };
    json!({
        "id": e.id,
        "protocol": e.protocol,
        "peer": e.peer,
        "user": (!d.user.is_empty()).then_some(d.user.clone()),
        "query": (!d.query.is_empty()).then_some(d.query.clone()),
        "state": state,
        "publishing": d.publishing,
        "playing": d.playing,
        "bytes_in": e.bytes_in.load(Ordering::Relaxed),
        "bytes_out": e.bytes_out(),
        "since_unix_ms": e.since_unix_ms,
        "uptime_ms": e.uptime_ms(),
    })
}

/// Everything else `render` needs that lives elsewhere.
pub struct Extra {
    pub uptime_ms: u64,
    pub auth: [u64; 3],
    pub notices_sent: u64,
    pub notices_dropped: u64,
    /// Plugins that are protocol frontends (their sinks, such as HLS, are not recordings).
    pub frontend_plugins: std::sync::Arc<Vec<String>>,
}

/// Which parts of the document to render (`HostApi::stats_of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub server: bool,
    pub streams: bool,
    pub sessions: bool,
    pub counters: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        server: true,
        streams: true,
        sessions: true,
        counters: true,
    };

    /// `server,streams,...`; unknown names are ignored.
    pub fn parse(list: &str) -> Parts {
        let has = |name: &str| list.split(',').any(|p| p.trim() == name);
        Parts {
            server: has("server"),
            streams: has("streams"),
            sessions: has("sessions"),
            counters: has("counters"),
        }
    }
}

/// The document `HostApi::stats` returns (the README's control API section describes it),
/// with only `parts` in it.
pub fn render(
    streams: &[StreamSnapshot],
    sessions: &Sessions,
    extra: &Extra,
    parts: Parts,
) -> String {
    let mut doc = serde_json::Map::new();
    if parts.server {
        doc.insert(
            "server".into(),
            json!({
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_ms": extra.uptime_ms,
                "unix_ms": crate::hub::unix_ms(),
            }),
        );
    }
    if parts.streams {
        let list: Vec<Value> = streams
            .iter()
            .map(|s| stream_json(s, sessions, &extra.frontend_plugins))
            .collect();
        doc.insert("streams".into(), list.into());
    }
    if !(parts.sessions || parts.counters) {
        return Value::Object(doc).to_string();
    }
    let live = sessions.all();
    if parts.sessions {
        let list: Vec<Value> = live.iter().map(|e| session_json(e)).collect();
        doc.insert("sessions".into(), list.into());
    }
    if parts.counters {
        let by_protocol: BTreeMap<String, Value> = sessions
            .bytes_by_protocol(&live)
            .into_iter()
            .map(|(p, (i, o))| (p, json!({"bytes_in": i, "bytes_out": o})))
            .collect();
        let mut connections: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &live {
            *connections.entry(e.protocol.as_str()).or_default() += 1;
        }
        let c = &COUNTERS;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        doc.insert(
            "counters".into(),
            json!({
                "connections_total": r(&c.connections),
                "connections_open": connections,
                "protocols": by_protocol,
                "auth_allowed": extra.auth[0],
                "auth_denied": extra.auth[1],
                "auth_errors": extra.auth[2],
                "queue_overflows": r(&c.queue_overflows),
                "dropped_viewers": r(&c.dropped_viewers),
                "recordings_started": r(&c.recordings),
                "recordings_done": r(&c.recordings_done),
                "plugin_panics": r(&c.plugin_panics),
                "kicks": r(&c.kicks),
                "notices_sent": extra.notices_sent,
                "notices_dropped": extra.notices_dropped,
            }),
        );
    }
    Value::Object(doc).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_from_sequence_headers() {
        // AAC LC, 44.1 kHz, stereo: AudioSpecificConfig 0x12 0x10.
        let aac = [0xAF, 0x00, 0x12, 0x10];
        assert_eq!(
            audio_info(&aac),
            Some(("aac".to_string(), Some(44100), Some(2)))
        );
        // MP3 at 44 kHz, stereo.
        assert_eq!(
            audio_info(&[0x2F, 0xFF]),
            Some(("mp3".to_string(), Some(44100), Some(2)))
        );
        assert_eq!(audio_info(&[]), None);
        // Enhanced RTMP sequence start with a truncated record: the codec, no size.
        let hevc = [0x90, b'h', b'v', b'c', b'1', 0x01];
        assert_eq!(video_info(&hevc), Some(("hevc".to_string(), None)));
        // AVC header with no SPS in its record.
        let avc = [0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE0];
        assert_eq!(video_info(&avc), Some(("h264".to_string(), None)));
        assert_eq!(video_info(&[]), None);
    }
}
