//! The disk quota of the recordings directory (`max_total_bytes`, `on_full`).
//!
//! What counts: the sizes of the regular files directly in `DIR` and in its app directories
//! `DIR/APP/` (the layout the recorder writes). Symbolic links are neither followed nor
//! counted, and deeper directories are not looked into. A scan reads at most
//! [`MAX_SCAN_ENTRIES`] directory entries; a directory holding more cannot be checked, and
//! new recordings are then refused.
//!
//! When it is checked: before each file is started (a publication's first, and each rotation)
//! with a fresh scan, and as files grow, against a running total that every recorder of this
//! configuration adds its writes to; a recording that takes the total to the quota rescans, so
//! space freed meanwhile by hand counts.
//!
//! What happens when the total reaches the quota:
//! * `refuse`: no new file is started, and a recording that reaches it is finished there (a
//!   complete, playable file); the live stream goes on. A file whose head alone reaches it is
//!   removed at once rather than left without a frame.
//! * `delete_oldest`: the oldest finished recordings (by modification time) are deleted until
//!   the total is under the quota. Only files the recorder names itself are candidates:
//!   `DIR/APP/STREAM-YYYYmmddTHHMMSSZ.flv` and `...Z-N.flv`, regular files, never a file that
//!   any recording in this process has open, never an appended `STREAM.flv`. When nothing is
//!   left to delete, it refuses as above.

use std::{
    collections::HashSet,
    fs,
    os::unix::fs::MetadataExt,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::SystemTime,
};

use fstream_abi::names::validate_part;
use serde::Deserialize;

/// Directory entries one scan reads at most (the recordings directory and its app
/// directories together).
pub const MAX_SCAN_ENTRIES: usize = 100_000;

/// What to do when the recordings reach the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Start no new recording; finish one that reaches the quota.
    #[default]
    Refuse,
    /// Delete the oldest recordings to make room.
    DeleteOldest,
}

/// Files recordings have open right now, by (device, inode): never deleted. Process-wide, so
/// that the recorders of an old configuration (kept alive after a reload) count too.
static OPEN: Mutex<Option<HashSet<(u64, u64)>>> = Mutex::new(None);

fn with_open<T>(f: impl FnOnce(&mut HashSet<(u64, u64)>) -> T) -> T {
    let mut guard = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(HashSet::new))
}

/// Marks a file as being recorded to while it lives.
#[derive(Debug)]
pub struct OpenFile(Option<(u64, u64)>);

impl OpenFile {
    /// `meta` is the open file's metadata.
    pub fn new(meta: &fs::Metadata) -> Self {
        let id = (meta.dev(), meta.ino());
        with_open(|set| set.insert(id));
        OpenFile(Some(id))
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let Some(id) = self.0.take() {
            with_open(|set| set.remove(&id));
        }
    }
}

/// Whether a file name is one the recorder gives its new files:
/// `STREAM-YYYYmmddTHHMMSSZ.flv` or `STREAM-YYYYmmddTHHMMSSZ-N.flv`, `STREAM` a valid name.
pub fn is_recorder_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".flv") else {
        return false;
    };
    // An "-N" after the stamp, when the plain name was taken.
    let stem = match stem.rsplit_once('-') {
        Some((head, n))
            if !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            head
        }
        _ => stem,
    };
    let Some((stream, stamp)) = stem.rsplit_once('-') else {
        return false;
    };
    let b = stamp.as_bytes();
    let stamp_ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    stamp_ok && validate_part(stream).is_ok()
}

/// A recording that may be deleted to make room.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    path: PathBuf,
    bytes: u64,
    modified: SystemTime,
    id: (u64, u64),
}

/// What a scan found.
#[derive(Debug, Default)]
struct Scan {
    total: u64,
    candidates: Vec<Candidate>,
    /// The scan stopped at [`MAX_SCAN_ENTRIES`].
    truncated: bool,
}

/// The quota of one configuration's recordings directory; shared by its recorders.
#[derive(Debug)]
pub struct Quota {
    dir: PathBuf,
    max: u64,
    on_full: OnFull,
    max_entries: usize,
    /// Bytes in the directory: the last scan's count plus what has been written since.
    used: AtomicU64,
    /// One scan or deletion at a time.
    busy: Mutex<()>,
}

impl Quota {
    /// The quota of `dir`; `max_total_bytes` must not be 0 (no quota).
    pub fn new(dir: PathBuf, max_total_bytes: u64, on_full: OnFull) -> Self {
        Self {
            dir,
            max: max_total_bytes,
            on_full,
            max_entries: MAX_SCAN_ENTRIES,
            used: AtomicU64::new(0),
            busy: Mutex::new(()),
        }
    }

    /// The same with another scan bound (for tests).
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn on_full(&self) -> OnFull {
        self.on_full
    }

    /// The bytes counted in the directory now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Before a new file is started: `Err` with the reason (for the log) when it must not be.
    pub fn admit(&self) -> Result<(), String> {
        let _busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        self.make_room()
    }

    /// `bytes` were just written to a recording. False when the recording must stop there
    /// (the quota is reached and no room can be made).
    pub fn charge(&self, bytes: u64) -> bool {
        let now = self
            .used
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes);
        if now < self.max {
            return true;
        }
        let _busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        // Another recorder may have made room while this one waited.
        if self.used() < self.max {
            return true;
        }
        match self.make_room() {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(dir = %self.dir.display(), reason = %why,
                    "recordings quota reached; finishing the recording here (the live stream goes on)");
                false
            }
        }
    }

    /// Rescans; when over the quota, deletes what `on_full` allows. Called with `busy` held.
    fn make_room(&self) -> Result<(), String> {
        let scan = self.scan();
        self.used.store(scan.total, Ordering::Relaxed);
        if scan.truncated {
            return Err(format!(
                "{} holds more than {} entries; the quota cannot be checked",
                self.dir.display(),
                self.max_entries
            ));
        }
        if scan.total < self.max {
            return Ok(());
        }
        let full = |total: u64| {
            format!(
                "the recordings in {} take {total} bytes, max_total_bytes is {}",
                self.dir.display(),
                self.max
            )
        };
        if self.on_full == OnFull::Refuse {
            return Err(full(scan.total));
        }
        let mut total = scan.total;
        let mut candidates = scan.candidates;
        candidates.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
        for c in candidates {
            if total < self.max {
                break;
            }
            if with_open(|set| set.contains(&c.id)) {
                continue;
            }
            match fs::remove_file(&c.path) {
                Ok(()) => {
                    total = total.saturating_sub(c.bytes);
                    tracing::warn!(path = %c.path.display(), bytes = c.bytes, used = total,
                        max_total_bytes = self.max, "recordings quota: deleted the oldest recording");
                }
                // Gone meanwhile (deleted by hand): it no longer counts either.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    total = total.saturating_sub(c.bytes);
                }
                Err(e) => {
                    tracing::warn!(path = %c.path.display(), error = %e,
                        "recordings quota: cannot delete an old recording");
                }
            }
        }
        self.used.store(total, Ordering::Relaxed);
        if total < self.max {
            Ok(())
        } else {
            Err(format!(
                "{}, and no finished recording is left to delete",
                full(total)
            ))
        }
    }

    /// Counts the directory, bounded; see the module's documentation for what counts.
    fn scan(&self) -> Scan {
        let mut scan = Scan::default();
        let mut entries = 0usize;
        let Ok(top) = fs::read_dir(&self.dir) else {
            // Not there yet (nothing recorded): nothing counts.
            return scan;
        };
        let mut apps = Vec::new();
        for entry in top.flatten() {
            entries += 1;
            if entries > self.max_entries {
                scan.truncated = true;
                return scan;
            }
            // `DirEntry::file_type` and `metadata` do not follow symbolic links.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_file() {
                if let Ok(m) = entry.metadata() {
                    scan.total = scan.total.saturating_add(m.len());
                }
            } else if kind.is_dir() {
                apps.push(entry.path());
            }
        }
        for app_dir in apps {
            let app_ok = app_dir
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| validate_part(n).is_ok());
            let Ok(list) = fs::read_dir(&app_dir) else {
                continue;
            };
            for entry in list.flatten() {
                entries += 1;
                if entries > self.max_entries {
                    scan.truncated = true;
                    return scan;
                }
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if !kind.is_file() {
                    continue;
                }
                let Ok(m) = entry.metadata() else {
                    continue;
                };
                scan.total = scan.total.saturating_add(m.len());
                let ours = app_ok
                    && entry
                        .file_name()
                        .to_str()
                        .is_some_and(is_recorder_file_name);
                if ours {
                    scan.candidates.push(Candidate {
                        path: entry.path(),
                        bytes: m.len(),
                        modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        id: (m.dev(), m.ino()),
                    });
                }
            }
        }
        scan
    }
}

#[cfg(test)]
mod tests;
