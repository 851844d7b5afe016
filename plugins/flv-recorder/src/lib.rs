//! `flv-recorder`: records published media streams into FLV files.
//!
//! The host opens a sink per publication at its first media packet ([`MakeSink::open`]); this
//! plugin decides whether to record it:
//!
//! * RTMP publish type `record`: a new file `DIR/APP/STREAM-YYYYmmddTHHMMSSZ.flv`;
//! * `append`: appended to `DIR/APP/STREAM.flv` (timestamps continue after its last tag);
//! * `live` (and every fstream broadcast): recorded into a new file only when `APP/STREAM`
//!   matches one of the `record` patterns of `mods/flv-recorder.toml`.
//!
//! The host runs each sink on a thread of its own, so the files are written with plain blocking
//! `std::fs` calls there. See [`recorder`] for the file layout and crash safety.

mod date;
mod glob;
pub mod recorder;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fstream_abi::{
    kinds,
    names::validate_part,
    sdk::{sink_box, sink_factory_box, MakeSink},
    Caller, HostApiBox, InitContext, NetAddr, Notice, NoticeKind, NoticeKind_NE, PluginError,
    PluginInstance, PluginObject, RecordMode, SinkBox, StreamStart,
};
use serde::Deserialize;

pub use date::utc_stamp;
pub use glob::{check_pattern, matches as glob_matches};
pub use recorder::{Limits, Mode, Recorder};

fstream_abi::export_plugin! {
    name: "flv-recorder",
    kinds: kinds::SINK,
    init: init,
}

/// `mods/flv-recorder.toml`. Every key is optional; an unknown key is an init error naming it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where recordings go, relative to the server root (or absolute).
    pub dir: String,
    /// Glob patterns on `APP/STREAM` (`*`, `?`) of live publications to record anyway.
    pub record: Vec<String>,
    /// Start a new file (at the next keyframe) once a file holds this many bytes; 0 = no limit.
    pub max_file_bytes: u64,
    /// Start a new file (at the next keyframe) once a file spans this long; 0 = no limit.
    pub max_duration_ms: u64,
    /// `fdatasync` a file at most this often while recording (and always when it is finished);
    /// 0 = only when finished.
    pub sync_interval_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            dir: "recordings".into(),
            record: Vec::new(),
            max_file_bytes: 0,
            max_duration_ms: 0,
            sync_interval_ms: 5000,
        }
    }
}

impl Settings {
    /// Parses and checks the settings text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let s: Settings = toml::from_str(text).map_err(|e| {
            fstream_abi::sdk::settings_message(text, e.span().map(|sp| sp.start), e.message())
        })?;
        if s.dir.trim().is_empty() {
            return Err("dir must not be empty".into());
        }
        for p in &s.record {
            check_pattern(p).map_err(|e| format!("record: {e}"))?;
        }
        Ok(s)
    }
}

fn init(host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings = Settings::parse(&ctx.settings)
        .map_err(|e| PluginError::new(format!("{}: {e}", ctx.settings_path)))?;
    let mut factory = RecorderFactory::new(Path::new(ctx.root.as_str()), &settings);
    factory.host = Some(host.clone());
    tracing::info!(dir = %factory.dir.display(), patterns = %settings.record.join(","),
        "flv-recorder ready");
    Ok(PluginInstance::empty().with(PluginObject::Sink(sink_factory_box(factory))))
}

/// Decides per publication whether to record it. Does no I/O: `open` runs on the host's packet
/// path; files are created by the sink on its own thread.
pub struct RecorderFactory {
    root: PathBuf,
    dir: PathBuf,
    patterns: Vec<String>,
    limits: Limits,
    /// Told of finished files (a `record_done` notice each), when set.
    pub host: Option<HostApiBox>,
}

impl RecorderFactory {
    pub fn new(root: &Path, settings: &Settings) -> Self {
        Self {
            root: root.to_path_buf(),
            host: None,
            dir: root.join(&settings.dir),
            patterns: settings.record.clone(),
            limits: Limits {
                max_file_bytes: settings.max_file_bytes,
                max_duration_ms: settings.max_duration_ms,
                sync_interval: (settings.sync_interval_ms > 0)
                    .then(|| Duration::from_millis(settings.sync_interval_ms)),
            },
        }
    }

    /// The recorder for a publication, or `None` when it is not to be recorded (or its name is
    /// not safe to build a path from).
    pub fn recorder_for(&self, start: &StreamStart) -> Option<Recorder> {
        let (app, name) = (start.app.as_str(), start.name.as_str());
        // The host validated these already; a path is built from them, so check again.
        for part in [app, name] {
            if let Err(e) = validate_part(part) {
                tracing::warn!(stream = %start.stream, part, error = %e,
                    "not recording a stream with an unsafe name");
                return None;
            }
        }
        let full = format!("{app}/{name}");
        let mode = match start.record {
            RecordMode::Record => Mode::NewFiles,
            RecordMode::Append => Mode::Append,
            RecordMode::Live => {
                if !self.patterns.iter().any(|p| glob_matches(p, &full)) {
                    return None;
                }
                Mode::NewFiles
            }
        };
        tracing::info!(stream = %full, mode = ?mode, protocol = %start.protocol, "recording");
        let recorder = Recorder::new(
            self.dir.join(app),
            name,
            &full,
            mode,
            start.unix_ms,
            self.limits.clone(),
        );
        Some(match &self.host {
            Some(host) => recorder.on_done(self.record_done(host.clone(), start)),
            None => recorder,
        })
    }

    /// What tells the host's observers of each file this publication's recorder finishes.
    fn record_done(&self, host: HostApiBox, start: &StreamStart) -> recorder::OnDone {
        let root = self.root.clone();
        let template = Notice {
            kind: NoticeKind_NE::new(NoticeKind::RecordDone),
            protocol: start.protocol.clone(),
            app: start.app.clone(),
            name: start.name.clone(),
            user: "".into(),
            query: fstream_abi::query::redacted(&start.query).into(),
            caller: Caller {
                connection: 0,
                peer: "".into(),
                peer_addr: NetAddr::parse_or_unspecified(""),
            },
            path: "".into(),
            bytes: 0,
            duration_ms: 0,
            unix_ms: 0,
            ext: Default::default(),
        };
        std::sync::Arc::new(move |path: &Path, bytes: u64, duration_ms: u64| {
            let shown = path.strip_prefix(&root).unwrap_or(path);
            host.notify(&Notice {
                path: shown.to_string_lossy().into_owned().into(),
                bytes,
                duration_ms,
                ..template.clone()
            });
        })
    }
}

impl MakeSink for RecorderFactory {
    fn open(&self, start: &StreamStart) -> Result<Option<SinkBox>, PluginError> {
        Ok(self.recorder_for(start).map(sink_box))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::RVec;

    fn start(app: &str, name: &str, record: RecordMode) -> StreamStart {
        StreamStart {
            stream: format!("{app}/{name}").into(),
            app: app.into(),
            name: name.into(),
            record,
            query: "".into(),
            protocol: "rtmp".into(),
            unix_ms: 0,
            ext: RVec::new(),
        }
    }

    #[test]
    fn settings_defaults_and_errors() {
        assert_eq!(Settings::parse("").unwrap(), Settings::default());
        let s = Settings::parse(
            "dir = \"/tmp/r\"\nrecord = [\"fier/*\", \"*/cam?\"]\nmax_file_bytes = 10\n\
             max_duration_ms = 20\nsync_interval_ms = 0\n",
        )
        .unwrap();
        assert_eq!(s.record.len(), 2);
        assert_eq!((s.max_file_bytes, s.max_duration_ms), (10, 20));
        let e = Settings::parse("dirr = \"x\"\n").unwrap_err();
        assert!(e.contains("dirr") && e.contains("line 1"), "{e}");
        let e = Settings::parse("record = [\"*\"]\n").unwrap_err();
        assert!(e.contains("APP/STREAM"), "{e}");
        assert!(Settings::parse("dir = \"\"\n").is_err());
        assert!(Settings::parse("max_file_bytes = -1\n").is_err());
    }

    #[test]
    fn decides_what_to_record() {
        let s = Settings::parse("record = [\"fier/*\"]\n").unwrap();
        let f = RecorderFactory::new(Path::new("/nonexistent-root"), &s);
        assert!(f
            .recorder_for(&start("fier", "cam", RecordMode::Live))
            .is_some());
        assert!(f
            .recorder_for(&start("ann", "cam", RecordMode::Live))
            .is_none());
        let r = f
            .recorder_for(&start("ann", "cam", RecordMode::Record))
            .unwrap();
        assert_eq!(r.mode(), Mode::NewFiles);
        let r = f
            .recorder_for(&start("ann", "cam", RecordMode::Append))
            .unwrap();
        assert_eq!(r.mode(), Mode::Append);
    }

    #[test]
    fn bad_names_are_refused() {
        let s = Settings::parse("record = [\"*/*\"]\n").unwrap();
        let f = RecorderFactory::new(Path::new("/nonexistent-root"), &s);
        for (app, name) in [
            ("..", "x"),
            ("fier", ".."),
            ("fier", "../etc"),
            ("fier", "a/b"),
            ("", "x"),
            ("fier", "a\0b"),
            ("fier", ".hidden"),
        ] {
            for mode in [RecordMode::Live, RecordMode::Record, RecordMode::Append] {
                assert!(
                    f.recorder_for(&start(app, name, mode)).is_none(),
                    "{app:?}/{name:?}"
                );
            }
        }
    }
    #[test]
    fn shipped_settings_file_is_the_defaults() {
        let text = include_str!("../../../mods/flv-recorder.toml");
        assert_eq!(Settings::parse(text).unwrap(), Settings::default());
    }
}
