//! Keyframe indexes: the one a file carries in its metadata, and one built by scanning tag
//! headers, cached per file version.

use std::{
    collections::VecDeque,
    fs::File,
    os::unix::fs::{FileExt, MetadataExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
    time::SystemTime,
};

use fstream_media::{
    amf0::{Amf0Value, Properties},
    flv::{classify_audio, classify_video, KeyframeEntry, TagHeader, TagType, TAG_HEADER_LEN},
};

/// Audio-only files get an index entry at most this often.
const AUDIO_INDEX_STEP_MS: u32 = 1000;
/// Bytes read per scan step.
const SCAN_WINDOW: usize = 64 * 1024;

/// What a scan of a file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanInfo {
    /// Video keyframes, or for files without video, audio frames about every second.
    pub entries: Vec<KeyframeEntry>,
    /// First and last audio/video timestamps.
    pub first_ts: Option<u32>,
    pub last_ts: Option<u32>,
}

impl ScanInfo {
    pub fn duration_ms(&self) -> u64 {
        match (self.first_ts, self.last_ts) {
            (Some(f), Some(l)) => u64::from(l.saturating_sub(f)),
            _ => 0,
        }
    }
}

/// Identifies one version of a file: a changed file gets a new entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: Option<SystemTime>,
}

impl FileKey {
    pub fn of(path: &Path, file: &File) -> std::io::Result<Self> {
        let m = file.metadata()?;
        Ok(Self {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: m.modified().ok(),
        })
    }
}

type Slot = Arc<OnceLock<Result<Arc<ScanInfo>, String>>>;

/// Scanned indexes, least recently used dropped first. Concurrent players of one file wait for a
/// single scan instead of each scanning.
pub struct IndexCache {
    capacity: usize,
    slots: Mutex<VecDeque<(FileKey, Slot)>>,
    scans: std::sync::atomic::AtomicU64,
}

impl IndexCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            slots: Mutex::new(VecDeque::new()),
            scans: Default::default(),
        }
    }

    /// How many scans ran (for tests and logs).
    pub fn scans(&self) -> u64 {
        self.scans.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The scan of `file` (identified by `key`), running it on a miss.
    pub fn get(&self, key: &FileKey, file: &File, first_tag: u64) -> Result<Arc<ScanInfo>, String> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let found = slots.iter().position(|(k, _)| k == key);
            let slot = match found.and_then(|i| slots.remove(i)) {
                Some((_, s)) => s,
                None => Slot::default(),
            };
            if self.capacity > 0 {
                slots.push_back((key.clone(), slot.clone()));
                while slots.len() > self.capacity {
                    slots.pop_front();
                }
            }
            slot
        };
        slot.get_or_init(|| {
            self.scans
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let started = std::time::Instant::now();
            let r = scan(file, key.size, first_tag).map(Arc::new);
            match &r {
                Ok(info) => tracing::debug!(path = %key.path.display(),
                    keyframes = info.entries.len(), ms = started.elapsed().as_millis() as u64,
                    "scanned a file for its keyframes"),
                Err(e) => tracing::warn!(path = %key.path.display(), error = %e,
                    "cannot scan a file for its keyframes"),
            }
            r
        })
        .clone()
    }
}

/// Walks the tag headers of `file` from `first_tag` (reading only headers and the first bytes of
/// video data, in windows) and lists the keyframes. Stops quietly at a damaged or partial tag.
pub fn scan(file: &File, len: u64, first_tag: u64) -> Result<ScanInfo, String> {
    let mut window = vec![0u8; SCAN_WINDOW];
    let mut win_start = 0u64;
    let mut win_len = 0usize;
    let mut pos = first_tag;
    let mut video = Vec::new();
    let mut audio = Vec::new();
    let (mut first_ts, mut last_ts) = (None, None);
    // Header plus the 5 data bytes classification needs.
    const NEED: usize = TAG_HEADER_LEN + 5;
    while pos + TAG_HEADER_LEN as u64 <= len {
        let in_window = pos >= win_start && pos + NEED as u64 <= win_start + win_len as u64;
        if !in_window {
            let want = SCAN_WINDOW.min((len - pos) as usize);
            let buf = window.get_mut(..want).unwrap_or_default();
            let n = read_full_at(file, buf, pos).map_err(|e| e.to_string())?;
            win_start = pos;
            win_len = n;
            if n < TAG_HEADER_LEN {
                break;
            }
        }
        let at = (pos - win_start) as usize;
        let bytes = window.get(at..win_len).unwrap_or_default();
        let Ok(h) = TagHeader::decode(bytes, pos) else {
            break;
        };
        let data_end = pos + TAG_HEADER_LEN as u64 + u64::from(h.data_size);
        if data_end > len {
            break;
        }
        let data = bytes
            .get(TAG_HEADER_LEN..)
            .map(|d| d.get(..(h.data_size as usize).min(5)).unwrap_or(d))
            .unwrap_or_default();
        match h.tag_type {
            TagType::Video => {
                if let Some(info) = classify_video(data) {
                    if !info.is_sequence_header() {
                        note(&mut first_ts, &mut last_ts, h.timestamp);
                    }
                    if info.is_keyframe() {
                        video.push(KeyframeEntry {
                            timestamp: h.timestamp,
                            offset: pos,
                        });
                    }
                }
            }
            TagType::Audio => {
                if classify_audio(data).is_some_and(|i| !i.is_sequence_header()) {
                    note(&mut first_ts, &mut last_ts, h.timestamp);
                    let due = audio
                        .last()
                        .map(|e: &KeyframeEntry| {
                            h.timestamp >= e.timestamp.saturating_add(AUDIO_INDEX_STEP_MS)
                        })
                        .unwrap_or(true);
                    if due {
                        audio.push(KeyframeEntry {
                            timestamp: h.timestamp,
                            offset: pos,
                        });
                    }
                }
            }
            TagType::Script => {}
        }
        pos = data_end + 4;
    }
    Ok(ScanInfo {
        entries: if video.is_empty() { audio } else { video },
        first_ts,
        last_ts,
    })
}

fn note(first: &mut Option<u32>, last: &mut Option<u32>, ts: u32) {
    first.get_or_insert(ts);
    *last = Some(last.map_or(ts, |l| l.max(ts)));
}

/// Reads as much of `buf` as the file has at `at`.
pub fn read_full_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        match file.read_at(rest, at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The `keyframes` index of an `onMetaData` (`{times: [s...], filepositions: [bytes...]}`), if
/// it is present and sane: same lengths, finite non-negative numbers, times not decreasing,
/// positions inside the file.
pub fn metadata_index(meta: &Properties, file_len: u64) -> Option<Vec<KeyframeEntry>> {
    let kf = meta
        .iter()
        .find(|(k, _)| k == "keyframes")
        .map(|(_, v)| v)?;
    let list = |key: &str| -> Option<Vec<f64>> {
        match kf.get(key)? {
            Amf0Value::StrictArray(items) => items.iter().map(Amf0Value::as_f64).collect(),
            _ => None,
        }
    };
    let times = list("times")?;
    let positions = list("filepositions")?;
    if times.is_empty() || times.len() != positions.len() {
        return None;
    }
    let mut out = Vec::with_capacity(times.len());
    for (t, p) in times.into_iter().zip(positions) {
        let ok = t.is_finite() && p.is_finite() && t >= 0.0 && p >= 0.0;
        let ms = t * 1000.0;
        if !ok || ms > f64::from(u32::MAX) || p >= file_len as f64 {
            return None;
        }
        let e = KeyframeEntry {
            timestamp: ms.round() as u32,
            offset: p as u64,
        };
        if out
            .last()
            .is_some_and(|l: &KeyframeEntry| l.timestamp > e.timestamp)
        {
            return None;
        }
        out.push(e);
    }
    Some(out)
}
