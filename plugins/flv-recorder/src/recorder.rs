//! One publication's recording: media packets in, FLV files out.
//!
//! # File layout
//! FLV header, an `onMetaData` script tag (the publisher's metadata, or a small one of our own,
//! always with Number fields `duration` and `filesize`), the latest video and audio sequence
//! headers, then the tags. Timestamps start at 0 in every file. Nothing is written before the
//! first coded frame, so late metadata and sequence headers still land at the head; video before
//! the file's first keyframe is dropped so every file starts decodable.
//!
//! # Crash safety
//! Each tag (header, data and PreviousTagSize) is built in memory and handed to the kernel in one
//! `write` on an unbuffered file, so after a SIGKILL the file holds every complete tag written
//! and at most one partial tag at its end, which players ignore. Data is also `fdatasync`ed every
//! [`Limits::sync_interval`] against power loss. When the publication ends, `duration` (seconds)
//! and `filesize` (bytes) are patched into the metadata in place.
//!
//! # Rotation
//! When a file reaches [`Limits::max_file_bytes`] or [`Limits::max_duration_ms`], the recording
//! moves to a new file at the next video keyframe (any audio frame for audio-only streams).
//!
//! # Quota
//! With a [`Quota`] (`max_total_bytes`), each file is admitted before it is created and every
//! write is counted; a recording the quota stops is finished at once, like a publication that
//! ended, and no further file is started for it (see [`crate::quota`]).
//!
//! # Notices
//! Each finished file is reported to the host as a `RecordDone` notice (path, bytes, duration)
//! when a [`Notifier`] is set.
//!
//! # Append
//! `DIR/APP/STREAM.flv` is opened, a partial tag at its end (from a crash) is cut off, and tags
//! continue 20 ms after its last timestamp. The first tag's `duration`/`filesize`, when it is such
//! metadata, are patched at the end. Rotation continues in timestamped files.

use std::{
    fs::{File, OpenOptions},
    io::{self, Seek, SeekFrom, Write},
    os::unix::fs::FileExt,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use abi_stable::std_types::RVec;
use fstream_abi::{
    sdk::Consume, Caller, HostApiBox, MediaKind, MediaPacket, NetAddr, Notice, NoticeKind,
    NoticeKind_NE, Payload, PluginError,
};
use fstream_media::{
    amf0::{AmfLimits, Properties},
    flv::{
        build_on_metadata, classify_audio, classify_video, metadata_number_offset,
        parse_on_metadata, strip_set_data_frame, write_tag, AudioCodec, FlvError, FlvHeader,
        TagHeader, TagType, VideoCodec, FLV_HEADER_LEN, MAX_TAG_DATA_SIZE, PREVIOUS_TAG_SIZE_LEN,
        TAG_HEADER_LEN,
    },
};

use crate::{
    date::utc_stamp,
    quota::{OpenFile, Quota},
};

/// Gap between the last tag of an existing file and the first appended one.
const APPEND_GAP_MS: u32 = 20;
/// Script tags (other than metadata) kept while waiting for the first frame.
const MAX_EARLY_SCRIPTS: usize = 16;
/// Metadata larger than this at the head of an existing file is not parsed for patching.
const MAX_HEAD_METADATA: u32 = 1 << 20;

/// When files are rotated and synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// 0 = no limit.
    pub max_file_bytes: u64,
    /// 0 = no limit.
    pub max_duration_ms: u64,
    /// `None`: sync only when a file is finished.
    pub sync_interval: Option<Duration>,
}

/// How the recording names its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `STREAM-YYYYmmddTHHMMSSZ.flv`, a new file each time.
    NewFiles,
    /// `STREAM.flv`, appended to.
    Append,
}

/// Errors of a recording; the message names the file and the OS error.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {} to append to it: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not an FLV file; not appending to it ({reason})", path.display())]
    NotFlv { path: PathBuf, reason: String },
    #[error("no free file name for {} (tried up to -{tries})", path.display())]
    NoName { path: PathBuf, tries: u32 },
}

impl From<RecordError> for PluginError {
    fn from(e: RecordError) -> Self {
        PluginError::new(e.to_string())
    }
}

/// The sink of one publication.
pub struct Recorder {
    dir: PathBuf,
    name: String,
    stream: String,
    mode: Mode,
    start_unix_ms: u64,
    limits: Limits,
    /// Stream timestamp of the publication's first packet (for rotated file names).
    first_ts: Option<u32>,
    metadata: Option<Properties>,
    video_header: Option<Payload>,
    audio_header: Option<Payload>,
    early_scripts: Vec<(u32, Vec<u8>)>,
    has_video: bool,
    has_audio: bool,
    out: Option<Output>,
    /// The next file must be a timestamped one (append mode rotated once).
    appended: bool,
    rotate: bool,
    failed: bool,
    /// Files finished so far (oldest first), for logs and tests.
    finished: Vec<PathBuf>,
    quota: Option<Arc<Quota>>,
    /// The quota refused a file or stopped one: nothing more is recorded.
    quota_stopped: bool,
    notifier: Option<Notifier>,
}

/// Tells the host about finished files (`RecordDone`, v2.3).
pub struct Notifier {
    pub host: HostApiBox,
    /// Paths in notices are relative to this when under it.
    pub root: PathBuf,
    /// Of the publisher.
    pub protocol: String,
    pub app: String,
    pub name: String,
    /// The publisher's query string without credentials.
    pub query: String,
}

impl Notifier {
    fn record_done(&self, done: &Finished) {
        let path = done.path.strip_prefix(&self.root).unwrap_or(&done.path);
        self.host.notify(&Notice {
            kind: NoticeKind_NE::new(NoticeKind::RecordDone),
            protocol: self.protocol.as_str().into(),
            app: self.app.as_str().into(),
            name: self.name.as_str().into(),
            // The recorder is not told who published.
            user: "".into(),
            query: self.query.as_str().into(),
            caller: Caller {
                connection: 0,
                peer: "".into(),
                peer_addr: NetAddr::parse_or_unspecified(""),
            },
            path: path.to_string_lossy().as_ref().into(),
            bytes: done.bytes,
            duration_ms: done.duration_ms,
            // The host fills in the time.
            unix_ms: 0,
            ext: RVec::new(),
        });
    }
}

/// A file once finished.
struct Finished {
    path: PathBuf,
    bytes: u64,
    duration_ms: u64,
}

/// An open file.
struct Output {
    path: PathBuf,
    file: File,
    len: u64,
    /// Bytes this recording put into the file (what `max_file_bytes` counts).
    bytes: u64,
    /// Stream timestamp that maps to file timestamp `offset`.
    base: u32,
    offset: u32,
    first_ts: u32,
    last_ts: u32,
    duration_at: Option<u64>,
    filesize_at: Option<u64>,
    /// Video is dropped until a keyframe.
    wait_key: bool,
    synced: Instant,
    dirty: bool,
    buf: Vec<u8>,
    /// Counts this file's writes, once the file is admitted.
    quota: Option<Arc<Quota>>,
    /// The quota was reached by a write to this file.
    over_quota: bool,
    /// Keeps the quota from deleting this file while it is written.
    _open: Option<OpenFile>,
}

impl Output {
    /// The file timestamp of a stream timestamp; packets slightly older than the file's first one
    /// (audio interleaved with the first keyframe) get the start time.
    fn file_ts(&self, ts: u32) -> u32 {
        let d = ts.wrapping_sub(self.base);
        let d = if d > i32::MAX as u32 { 0 } else { d };
        self.offset.saturating_add(d)
    }

    fn write_tag(
        &mut self,
        tag_type: TagType,
        ts: u32,
        data: &[u8],
        limits: &Limits,
    ) -> Result<(), RecordError> {
        self.buf.clear();
        if let Err(e) = write_tag(&mut self.buf, tag_type, ts, data) {
            // Only a tag over 16 MiB can fail; skip it rather than stop the recording.
            tracing::warn!(path = %self.path.display(), error = %e, "tag not recorded");
            return Ok(());
        }
        // One write per tag: a crash leaves whole tags and at most one partial tag at the end.
        self.file
            .write_all(&self.buf)
            .map_err(|source| RecordError::Write {
                path: self.path.clone(),
                source,
            })?;
        let n = self.buf.len() as u64;
        self.len += n;
        self.bytes += n;
        self.dirty = true;
        if let Some(q) = &self.quota {
            if !q.charge(n) {
                self.over_quota = true;
            }
        }
        if tag_type != TagType::Script {
            self.last_ts = self.last_ts.max(ts);
        }
        if let Some(every) = limits.sync_interval {
            if self.synced.elapsed() >= every {
                self.sync()?;
            }
        }
        // Keep the buffer from holding on to one huge tag.
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), RecordError> {
        if self.dirty {
            self.file.sync_data().map_err(|source| RecordError::Write {
                path: self.path.clone(),
                source,
            })?;
            self.dirty = false;
        }
        self.synced = Instant::now();
        Ok(())
    }

    /// Patches duration and file size into the metadata and syncs.
    fn finish(mut self) -> Result<Finished, RecordError> {
        let duration = f64::from(self.last_ts) / 1000.0;
        for (at, value) in [
            (self.duration_at, duration),
            (self.filesize_at, self.len as f64),
        ] {
            if let Some(at) = at {
                // pwrite: the file is not opened with O_APPEND, so this patches in place.
                self.file
                    .write_all_at(&value.to_be_bytes(), at)
                    .map_err(|source| RecordError::Write {
                        path: self.path.clone(),
                        source,
                    })?;
                self.dirty = true;
            }
        }
        self.sync()?;
        let duration_ms = u64::from(self.last_ts.saturating_sub(self.first_ts));
        tracing::info!(path = %self.path.display(), bytes = self.len, duration_ms,
            "recording finished");
        Ok(Finished {
            path: self.path,
            bytes: self.len,
            duration_ms,
        })
    }
}

impl Recorder {
    /// A recorder writing into `dir` (that is `DIR/APP`) files named after `name`.
    pub fn new(
        dir: PathBuf,
        name: &str,
        stream: &str,
        mode: Mode,
        start_unix_ms: u64,
        limits: Limits,
    ) -> Self {
        Self {
            dir,
            name: name.to_string(),
            stream: stream.to_string(),
            mode,
            start_unix_ms,
            limits,
            first_ts: None,
            metadata: None,
            video_header: None,
            audio_header: None,
            early_scripts: Vec::new(),
            has_video: false,
            has_audio: false,
            out: None,
            appended: false,
            rotate: false,
            failed: false,
            finished: Vec::new(),
            quota: None,
            quota_stopped: false,
            notifier: None,
        }
    }

    /// Files are admitted by, and their writes counted against, this quota.
    pub fn with_quota(mut self, quota: Arc<Quota>) -> Self {
        self.quota = Some(quota);
        self
    }

    /// Each finished file is reported through this.
    pub fn with_notifier(mut self, notifier: Notifier) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The quota refused or stopped this recording.
    pub fn stopped_by_quota(&self) -> bool {
        self.quota_stopped
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Files finished so far.
    pub fn finished_files(&self) -> &[PathBuf] {
        &self.finished
    }

    /// The file being written, if any.
    pub fn current_file(&self) -> Option<&Path> {
        self.out.as_ref().map(|o| o.path.as_path())
    }

    fn on_packet(&mut self, p: &MediaPacket) -> Result<(), RecordError> {
        if self.quota_stopped {
            return Ok(());
        }
        self.first_ts.get_or_insert(p.timestamp);
        match p.kind {
            MediaKind::Raw => {}
            MediaKind::Script => self.on_script(p)?,
            MediaKind::Audio | MediaKind::Video => self.on_media(p)?,
        }
        if self.out.as_ref().is_some_and(|o| o.over_quota) {
            // Finished here, as if the publication had ended: a complete file.
            self.quota_stopped = true;
            self.close()?;
        }
        Ok(())
    }

    fn on_script(&mut self, p: &MediaPacket) -> Result<(), RecordError> {
        let body = strip_set_data_frame(&p.payload);
        match parse_on_metadata(body, &AmfLimits::default()) {
            Ok(Some(props)) => {
                // Kept for the head of the next file; a file has one metadata tag, at its head.
                self.metadata = Some(props);
                return Ok(());
            }
            Ok(None) if !p.is_metadata() => {}
            Ok(None) => return Ok(()),
            Err(e) => {
                if p.is_metadata() {
                    tracing::warn!(stream = %self.stream, error = %e,
                        "unreadable metadata from the publisher; not recorded");
                    return Ok(());
                }
            }
        }
        match &mut self.out {
            Some(out) => {
                let ts = out.file_ts(p.timestamp);
                out.write_tag(TagType::Script, ts, body, &self.limits)
            }
            None => {
                if self.early_scripts.len() < MAX_EARLY_SCRIPTS {
                    self.early_scripts.push((p.timestamp, body.to_vec()));
                }
                Ok(())
            }
        }
    }

    fn on_media(&mut self, p: &MediaPacket) -> Result<(), RecordError> {
        let video = p.kind == MediaKind::Video;
        let tag_type = if video {
            TagType::Video
        } else {
            TagType::Audio
        };
        if video {
            self.has_video = true;
        } else {
            self.has_audio = true;
        }
        if p.is_sequence_header() {
            if video {
                self.video_header = Some(p.payload.clone());
            } else {
                self.audio_header = Some(p.payload.clone());
            }
            if let Some(out) = &mut self.out {
                let ts = out.file_ts(p.timestamp);
                out.write_tag(tag_type, ts, &p.payload, &self.limits)?;
            }
            return Ok(());
        }
        let key = video && p.is_keyframe();
        // Where a file may start: a keyframe, or any audio frame when there is no video.
        let sync_point = key || (!video && !self.has_video);
        if self.rotate && sync_point {
            self.close()?;
            self.rotate = false;
        }
        if self.out.is_none() {
            if video && !key {
                return Ok(());
            }
            self.open(p.timestamp, key)?;
        }
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        if video && out.wait_key {
            if !key {
                return Ok(());
            }
            out.wait_key = false;
        }
        let ts = out.file_ts(p.timestamp);
        out.write_tag(tag_type, ts, &p.payload, &self.limits)?;
        let l = &self.limits;
        if (l.max_file_bytes > 0 && out.bytes >= l.max_file_bytes)
            || (l.max_duration_ms > 0
                && u64::from(out.last_ts.saturating_sub(out.first_ts)) >= l.max_duration_ms)
        {
            self.rotate = true;
        }
        Ok(())
    }

    /// Starts a file at a frame with stream timestamp `ts`.
    fn open(&mut self, ts: u32, starts_with_key: bool) -> Result<(), RecordError> {
        if let Some(q) = &self.quota {
            if let Err(why) = q.admit() {
                tracing::warn!(stream = %self.stream, reason = %why,
                    "recording refused: recordings quota (the live stream goes on)");
                self.quota_stopped = true;
                return Ok(());
            }
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| RecordError::CreateDir {
            path: self.dir.clone(),
            source,
        })?;
        let out = if self.mode == Mode::Append && !self.appended {
            self.appended = true;
            self.open_append(ts)?
        } else {
            self.open_new(ts)?
        };
        let mut out = out;
        // Video waits for a keyframe unless the file starts with one.
        out.wait_key = !starts_with_key;
        // Registered with or without a quota: a later configuration's may delete old files.
        out._open = out.file.metadata().ok().map(|m| OpenFile::new(&m));
        if let Some(q) = &self.quota {
            // What was written before the quota was attached (head, sequence headers).
            out.over_quota = !q.charge(out.bytes);
            out.quota = Some(q.clone());
            if out.over_quota && out.len == out.bytes {
                // Not even room for the head of a file it made: no file rather than one
                // without a frame.
                let path = out.path.clone();
                drop(out);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove an empty recording");
                }
                tracing::warn!(stream = %self.stream, "recording refused: recordings quota \
                    (no room left for a file; the live stream goes on)");
                self.quota_stopped = true;
                return Ok(());
            }
        }
        tracing::info!(stream = %self.stream, path = %out.path.display(), "recording to a file");
        self.out = Some(out);
        Ok(())
    }

    fn open_new(&mut self, ts: u32) -> Result<Output, RecordError> {
        let elapsed = ts.wrapping_sub(self.first_ts.unwrap_or(ts));
        let stamp = utc_stamp(self.start_unix_ms.saturating_add(u64::from(elapsed)));
        const TRIES: u32 = 1000;
        let mut found = None;
        for i in 0..TRIES {
            let file_name = if i == 0 {
                format!("{}-{stamp}.flv", self.name)
            } else {
                format!("{}-{stamp}-{i}.flv", self.name)
            };
            let path = self.dir.join(file_name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => {
                    found = Some((path, f));
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(RecordError::Create { path, source }),
            }
        }
        let Some((path, file)) = found else {
            return Err(RecordError::NoName {
                path: self.dir.join(format!("{}-{stamp}.flv", self.name)),
                tries: TRIES,
            });
        };
        self.start_file(path, file, 0, ts)
    }

    /// Writes the head of a new (or empty) file: header, metadata, sequence headers.
    fn start_file(
        &mut self,
        path: PathBuf,
        file: File,
        offset: u64,
        ts: u32,
    ) -> Result<Output, RecordError> {
        let (has_audio, has_video) = self.stream_kinds();
        let meta = self.metadata_body();
        let mut head = Vec::with_capacity(64 + meta.len());
        head.extend_from_slice(&FlvHeader::new(has_audio, has_video).encode_with_first_tag_size());
        let meta_data_at = offset + head.len() as u64 + TAG_HEADER_LEN as u64;
        let mut duration_at = None;
        let mut filesize_at = None;
        if write_tag(&mut head, TagType::Script, 0, &meta).is_ok() {
            let l = AmfLimits::default();
            let at = |k| {
                metadata_number_offset(&meta, k, &l)
                    .ok()
                    .flatten()
                    .map(|o| meta_data_at + o as u64)
            };
            duration_at = at("duration");
            filesize_at = at("filesize");
        }
        let mut out = Output {
            path,
            file,
            len: offset,
            bytes: 0,
            base: ts,
            offset: 0,
            first_ts: 0,
            last_ts: 0,
            duration_at,
            filesize_at,
            wait_key: false,
            synced: Instant::now(),
            dirty: false,
            buf: Vec::new(),
            quota: None,
            over_quota: false,
            _open: None,
        };
        out.file
            .write_all(&head)
            .map_err(|source| RecordError::Write {
                path: out.path.clone(),
                source,
            })?;
        out.len += head.len() as u64;
        out.bytes += head.len() as u64;
        out.dirty = true;
        self.write_headers(&mut out)?;
        Ok(out)
    }

    /// Sequence headers and early script data at the current start of `out`.
    fn write_headers(&mut self, out: &mut Output) -> Result<(), RecordError> {
        let ts = out.offset;
        for (tag_type, h) in [
            (TagType::Video, &self.video_header),
            (TagType::Audio, &self.audio_header),
        ] {
            if let Some(h) = h {
                out.write_tag(tag_type, ts, h, &self.limits)?;
            }
        }
        for (sts, data) in std::mem::take(&mut self.early_scripts) {
            let t = out.file_ts(sts);
            out.write_tag(TagType::Script, t, &data, &self.limits)?;
        }
        Ok(())
    }

    fn open_append(&mut self, ts: u32) -> Result<Output, RecordError> {
        let path = self.dir.join(format!("{}.flv", self.name));
        let read_err = |source| RecordError::Read {
            path: path.clone(),
            source,
        };
        // The file is named after the stream; a link put in its place (by whoever can write
        // the directory) is not followed, so appending never writes outside the directory.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|source| RecordError::Create {
                path: path.clone(),
                source,
            })?;
        let len = file.metadata().map_err(read_err)?.len();
        if len == 0 {
            return self.start_file(path, file, 0, ts);
        }
        let existing = inspect_existing(&file, len, &path)?;
        if existing.end < len {
            tracing::warn!(path = %path.display(), cut = len - existing.end,
                "cutting a partial tag off the end before appending");
            file.set_len(existing.end)
                .map_err(|source| RecordError::Write {
                    path: path.clone(),
                    source,
                })?;
        }
        file.seek(SeekFrom::Start(existing.end)).map_err(read_err)?;
        let offset = existing
            .last_ts
            .map(|t| t.saturating_add(APPEND_GAP_MS))
            .unwrap_or(0);
        let mut out = Output {
            path,
            file,
            len: existing.end,
            bytes: 0,
            base: ts,
            offset,
            first_ts: offset,
            last_ts: existing.last_ts.unwrap_or(0),
            duration_at: existing.duration_at,
            filesize_at: existing.filesize_at,
            wait_key: false,
            synced: Instant::now(),
            dirty: false,
            buf: Vec::new(),
            quota: None,
            over_quota: false,
            _open: None,
        };
        self.write_headers(&mut out)?;
        Ok(out)
    }

    fn close(&mut self) -> Result<(), RecordError> {
        if let Some(out) = self.out.take() {
            let done = out.finish()?;
            if let Some(n) = &self.notifier {
                n.record_done(&done);
            }
            self.finished.push(done.path);
        }
        Ok(())
    }

    /// (audio, video) for the FLV header flags.
    fn stream_kinds(&self) -> (bool, bool) {
        let meta_has = |k: &str| {
            self.metadata
                .as_ref()
                .is_some_and(|m| m.iter().any(|(key, _)| key == k))
        };
        (
            self.has_audio || self.audio_header.is_some() || meta_has("audiocodecid"),
            self.has_video || self.video_header.is_some() || meta_has("videocodecid"),
        )
    }

    /// The metadata for a new file's head: the publisher's with fresh `duration` and `filesize`
    /// Number fields to patch (and no `keyframes` index, whose offsets would be wrong here), or a
    /// small one of our own.
    fn metadata_body(&self) -> Vec<u8> {
        use fstream_media::amf0::Amf0Value;
        let mut props: Properties = match &self.metadata {
            Some(p) => p
                .iter()
                .filter(|(k, _)| k != "keyframes" && k != "duration" && k != "filesize")
                .cloned()
                .collect(),
            None => {
                let mut p: Properties = Vec::new();
                if let Some(VideoCodec::Legacy(id)) = self
                    .video_header
                    .as_deref()
                    .and_then(|h| classify_video(h))
                    .map(|i| i.codec)
                {
                    p.push(("videocodecid".into(), Amf0Value::Number(f64::from(id))));
                }
                if let Some(AudioCodec::Legacy(id)) = self
                    .audio_header
                    .as_deref()
                    .and_then(|h| classify_audio(h))
                    .map(|i| i.codec)
                {
                    p.push(("audiocodecid".into(), Amf0Value::Number(f64::from(id))));
                }
                p.push((
                    "encoder".into(),
                    Amf0Value::from("fstream-host flv-recorder"),
                ));
                p
            }
        };
        props.insert(0, ("duration".into(), Amf0Value::Number(0.0)));
        props.insert(1, ("filesize".into(), Amf0Value::Number(0.0)));
        match build_on_metadata(&props) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(stream = %self.stream, error = %e,
                    "publisher metadata cannot be written back; using a minimal one");
                build_on_metadata(&props[..2]).unwrap_or_default()
            }
        }
    }
}

impl Consume for Recorder {
    fn packet(&mut self, packet: &MediaPacket) -> Result<(), PluginError> {
        if self.failed {
            return Ok(());
        }
        self.on_packet(packet).map_err(|e| {
            self.failed = true;
            // Drop the file; whatever was written stays playable.
            self.out = None;
            e.into()
        })
    }

    fn finish(&mut self) -> Result<(), PluginError> {
        if self.failed {
            return Ok(());
        }
        self.close().map_err(|e| {
            self.failed = true;
            e.into()
        })
    }
}

/// What an existing file to append to holds.
#[derive(Debug, PartialEq, Eq)]
struct Existing {
    /// The end of its last complete tag (and PreviousTagSize).
    end: u64,
    last_ts: Option<u32>,
    duration_at: Option<u64>,
    filesize_at: Option<u64>,
}

fn read_at(file: &File, at: u64, buf: &mut [u8], path: &Path) -> Result<(), RecordError> {
    file.read_exact_at(buf, at)
        .map_err(|source| RecordError::Read {
            path: path.to_path_buf(),
            source,
        })
}

fn tag_header_at(file: &File, at: u64, path: &Path) -> Result<Option<TagHeader>, RecordError> {
    let mut h = [0u8; TAG_HEADER_LEN];
    read_at(file, at, &mut h, path)?;
    Ok(TagHeader::decode(&h, at).ok())
}

/// Checks the header of an existing file and finds where its last complete tag ends: by the last
/// PreviousTagSize when it is consistent (the usual case, one read), else by walking the tag
/// headers from the start.
fn inspect_existing(file: &File, len: u64, path: &Path) -> Result<Existing, RecordError> {
    let not_flv = |reason: String| RecordError::NotFlv {
        path: path.to_path_buf(),
        reason,
    };
    if len < (FLV_HEADER_LEN + PREVIOUS_TAG_SIZE_LEN) as u64 {
        return Err(not_flv(format!("only {len} bytes")));
    }
    let mut h = [0u8; FLV_HEADER_LEN];
    read_at(file, 0, &mut h, path)?;
    let header = FlvHeader::decode(&h, 1 << 16).map_err(|e: FlvError| not_flv(e.to_string()))?;
    let first = u64::from(header.data_offset) + PREVIOUS_TAG_SIZE_LEN as u64;
    if len < first {
        return Err(not_flv(format!("only {len} bytes")));
    }

    let (mut duration_at, mut filesize_at) = (None, None);
    if len >= first + TAG_HEADER_LEN as u64 {
        if let Some(th) = tag_header_at(file, first, path)? {
            let data_at = first + TAG_HEADER_LEN as u64;
            if th.tag_type == TagType::Script
                && th.data_size <= MAX_HEAD_METADATA
                && data_at + u64::from(th.data_size) <= len
            {
                let mut data = vec![0u8; th.data_size as usize];
                read_at(file, data_at, &mut data, path)?;
                let l = AmfLimits::default();
                let at = |k| {
                    metadata_number_offset(&data, k, &l)
                        .ok()
                        .flatten()
                        .map(|o| data_at + o as u64)
                };
                duration_at = at("duration");
                filesize_at = at("filesize");
            }
        }
    }

    // Fast path: the file ends with a complete tag.
    let min_tag = (TAG_HEADER_LEN + PREVIOUS_TAG_SIZE_LEN) as u64;
    if len >= first + min_tag {
        let mut p = [0u8; PREVIOUS_TAG_SIZE_LEN];
        read_at(file, len - PREVIOUS_TAG_SIZE_LEN as u64, &mut p, path)?;
        let prev = u64::from(u32::from_be_bytes(p));
        if prev >= TAG_HEADER_LEN as u64 && len >= first + prev + PREVIOUS_TAG_SIZE_LEN as u64 {
            let at = len - PREVIOUS_TAG_SIZE_LEN as u64 - prev;
            if let Some(th) = tag_header_at(file, at, path)? {
                if u64::from(th.data_size) + TAG_HEADER_LEN as u64 == prev {
                    return Ok(Existing {
                        end: len,
                        last_ts: Some(th.timestamp),
                        duration_at,
                        filesize_at,
                    });
                }
            }
        }
    }

    // Slow path: walk the tags.
    let mut pos = first;
    let mut end = first;
    let mut last_ts = None;
    while pos + TAG_HEADER_LEN as u64 <= len {
        let Some(th) = tag_header_at(file, pos, path)? else {
            break;
        };
        if th.data_size > MAX_TAG_DATA_SIZE {
            break;
        }
        let tag_end = pos + min_tag + u64::from(th.data_size);
        if tag_end > len {
            break;
        }
        last_ts = Some(last_ts.map_or(th.timestamp, |l: u32| l.max(th.timestamp)));
        end = tag_end;
        pos = tag_end;
    }
    Ok(Existing {
        end,
        last_ts,
        duration_at: duration_at.filter(|a| a + 8 <= end),
        filesize_at: filesize_at.filter(|a| a + 8 <= end),
    })
}

#[cfg(test)]
mod tests;
