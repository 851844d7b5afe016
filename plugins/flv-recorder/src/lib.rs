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
//! `std::fs` calls there. See [`recorder`] for the file layout and crash safety, [`quota`] for
//! `max_total_bytes`. Each finished file is reported with a `RecordDone` notice.
//!
//! Whether a publisher may ask for `record` / `append` is the app handler's to decide (the
//! stock `rtmp-app`: `record_requires_permission`); this plugin records what the publication's
//! record mode says.

mod date;
pub mod quota;
pub mod recorder;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fstream_abi::{
    kinds,
    names::validate_part,
    sdk::{sink_box, sink_factory_box, MakeSink},
    HostApiBox, InitContext, PluginError, PluginInstance, PluginObject, RecordMode, SinkBox,
    StreamStart,
};
use serde::Deserialize;

pub use date::utc_stamp;
pub use fstream_abi::glob::{check_pattern, matches as glob_matches};
pub use quota::{OnFull, Quota};
pub use recorder::{Limits, Mode, Notifier, Recorder};

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
    /// The most the recordings directory may hold, in bytes; 0 = no limit.
    pub max_total_bytes: u64,
    /// What to do when it is reached.
    pub on_full: OnFull,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            dir: "recordings".into(),
            record: Vec::new(),
            max_file_bytes: 0,
            max_duration_ms: 0,
            sync_interval_ms: 5000,
            max_total_bytes: 0,
            on_full: OnFull::Refuse,
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
    let factory =
        RecorderFactory::new(Path::new(ctx.root.as_str()), &settings).with_host(host.clone());
    tracing::info!(dir = %factory.dir.display(), patterns = %settings.record.join(","),
        max_total_bytes = settings.max_total_bytes, on_full = ?settings.on_full,
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
    /// Shared by every recording of this configuration.
    quota: Option<Arc<Quota>>,
    /// For `RecordDone` notices.
    host: Option<HostApiBox>,
}

impl RecorderFactory {
    pub fn new(root: &Path, settings: &Settings) -> Self {
        let dir = root.join(&settings.dir);
        Self {
            root: root.to_path_buf(),
            quota: (settings.max_total_bytes > 0).then(|| {
                Arc::new(Quota::new(
                    dir.clone(),
                    settings.max_total_bytes,
                    settings.on_full,
                ))
            }),
            host: None,
            dir,
            patterns: settings.record.clone(),
            limits: Limits {
                max_file_bytes: settings.max_file_bytes,
                max_duration_ms: settings.max_duration_ms,
                sync_interval: (settings.sync_interval_ms > 0)
                    .then(|| Duration::from_millis(settings.sync_interval_ms)),
            },
        }
    }

    /// Finished files are reported to this host.
    pub fn with_host(mut self, host: HostApiBox) -> Self {
        self.host = Some(host);
        self
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
        let mut recorder = Recorder::new(
            self.dir.join(app),
            name,
            &full,
            mode,
            start.unix_ms,
            self.limits.clone(),
        );
        if let Some(q) = &self.quota {
            recorder = recorder.with_quota(q.clone());
        }
        if let Some(host) = &self.host {
            recorder = recorder.with_notifier(Notifier {
                host: host.clone(),
                root: self.root.clone(),
                protocol: start.protocol.to_string(),
                app: app.to_string(),
                name: name.to_string(),
                query: fstream_abi::query::redacted(&start.query),
            });
        }
        Some(recorder)
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
        let s =
            Settings::parse("max_total_bytes = 1000000\non_full = \"delete_oldest\"\n").unwrap();
        assert_eq!(
            (s.max_total_bytes, s.on_full),
            (1_000_000, OnFull::DeleteOldest)
        );
        assert_eq!(
            Settings::parse("on_full = \"refuse\"\n").unwrap().on_full,
            OnFull::Refuse
        );
        let e = Settings::parse("on_full = \"delete\"\n").unwrap_err();
        assert!(e.contains("delete_oldest") && e.contains("refuse"), "{e}");
        assert!(Settings::parse("max_total_bytes = -5\n").is_err());
        // No quota unless asked for.
        let f = RecorderFactory::new(Path::new("/r"), &Settings::default());
        assert!(f.quota.is_none());
        let f = RecorderFactory::new(
            Path::new("/r"),
            &Settings::parse("max_total_bytes = 9\n").unwrap(),
        );
        assert_eq!(
            f.quota.as_ref().map(|q| (q.max(), q.on_full())),
            Some((9, OnFull::Refuse))
        );
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
