//! `vod`: plays FLV files from a media directory.
//!
//! The host routes every play of `APP/NAME` (RTMP or fstream) for the configured app (default
//! `vod`) to this plugin. `NAME` or `NAME.flv` is the file `DIR/NAME.flv`. Names are checked
//! before a path is built from them, and the file must resolve (symlinks followed) to a path
//! inside the media directory.
//!
//! A player reads its file tag by tag ([`source::FlvSource`]); the host paces it. Seeking uses the
//! file's own keyframe index (`onMetaData.keyframes`, as yamdi or `ffmpeg -flvflags
//! add_keyframe_index` write it) when it checks out, or else an index built by scanning the tag
//! headers once, shared by all players of that file version through a small cache
//! ([`index::IndexCache`]).

pub mod index;
pub mod source;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use fstream_abi::{
    kinds,
    names::validate_part,
    sdk::{source_box, source_factory_box, MakeSource},
    HostApiBox, InitContext, PluginError, PluginInstance, PluginObject, SourceBox, SourceError,
    SourceOpen,
};
use serde::Deserialize;

pub use index::IndexCache;
pub use source::FlvSource;

fstream_abi::export_plugin! {
    name: "vod",
    kinds: kinds::SOURCE,
    init: init,
}

/// `mods/vod.toml`. Every key is optional; an unknown key is an init error naming it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The media directory, relative to the server root (or absolute).
    pub dir: String,
    /// The app whose streams are files.
    pub app: String,
    /// Scanned keyframe indexes kept (files without an index of their own).
    pub index_cache_entries: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            dir: "media".into(),
            app: "vod".into(),
            index_cache_entries: 64,
        }
    }
}

impl Settings {
    pub fn parse(text: &str) -> Result<Self, String> {
        let s: Settings = toml::from_str(text).map_err(|e| {
            fstream_abi::sdk::settings_message(text, e.span().map(|sp| sp.start), e.message())
        })?;
        if s.dir.trim().is_empty() {
            return Err("dir must not be empty".into());
        }
        validate_part(&s.app).map_err(|e| format!("app = {:?}: {e}", s.app))?;
        Ok(s)
    }
}

fn init(_host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings = Settings::parse(&ctx.settings)
        .map_err(|e| PluginError::new(format!("{}: {e}", ctx.settings_path)))?;
    let vod = Vod::new(Path::new(ctx.root.as_str()), &settings);
    if !vod.dir.is_dir() {
        tracing::warn!(dir = %vod.dir.display(), "media directory does not exist (yet)");
    }
    tracing::info!(dir = %vod.dir.display(), app = %vod.app, "vod ready");
    Ok(PluginInstance::empty().with(PluginObject::Source(source_factory_box(vod))))
}

/// Why a name does not lead to a playable file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("bad name {0:?}: {1}")]
    BadName(String, String),
    #[error("media directory {0} is not available: {1}")]
    NoMediaDir(String, String),
    #[error("no file {0}")]
    Missing(String),
    #[error("{0} resolves outside the media directory")]
    Outside(String),
    #[error("{0} is not a regular file")]
    NotAFile(String),
    #[error("cannot open {0}: {1}")]
    Io(String, String),
}

/// The source factory.
pub struct Vod {
    dir: PathBuf,
    app: String,
    cache: Arc<IndexCache>,
}

impl Vod {
    pub fn new(root: &Path, settings: &Settings) -> Self {
        Self {
            dir: root.join(&settings.dir),
            app: settings.app.clone(),
            cache: Arc::new(IndexCache::new(settings.index_cache_entries)),
        }
    }

    /// The file for a requested name: checked, resolved and confined to the media directory.
    pub fn resolve(&self, name: &str) -> Result<PathBuf, Refusal> {
        let stem = name.strip_suffix(".flv").unwrap_or(name);
        // The host validated the name as a part already; this plugin builds a path from it, so
        // check again: no separators, NUL, leading dot (`.`, `..`), nothing absolute.
        validate_part(stem).map_err(|e| Refusal::BadName(name.to_string(), e.to_string()))?;
        let dir = std::fs::canonicalize(&self.dir)
            .map_err(|e| Refusal::NoMediaDir(self.dir.display().to_string(), e.to_string()))?;
        let candidate = dir.join(format!("{stem}.flv"));
        let real = match std::fs::canonicalize(&candidate) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Refusal::Missing(candidate.display().to_string()))
            }
            Err(e) => return Err(Refusal::Io(candidate.display().to_string(), e.to_string())),
        };
        // A symlink may point anywhere; what it resolves to must stay inside.
        if !real.starts_with(&dir) {
            return Err(Refusal::Outside(candidate.display().to_string()));
        }
        Ok(real)
    }

    /// Opens a player's source for `name`.
    pub fn open_source(&self, name: &str, peer: &str) -> Result<FlvSource, Refusal> {
        let path = self.resolve(name)?;
        let source = FlvSource::open(&path, self.cache.clone())?;
        tracing::info!(path = %path.display(), peer, "playing a file");
        Ok(source)
    }
}

impl MakeSource for Vod {
    fn app(&self) -> String {
        self.app.clone()
    }

    fn open(&self, request: &SourceOpen) -> Result<SourceBox, SourceError> {
        match self.open_source(&request.name, &request.peer) {
            Ok(s) => Ok(source_box(s)),
            Err(why) => {
                match &why {
                    Refusal::Missing(_) => {
                        tracing::info!(name = %request.name, peer = %request.peer, reason = %why,
                            "refused a play")
                    }
                    _ => {
                        tracing::warn!(name = %request.name, peer = %request.peer, reason = %why,
                            "refused a play")
                    }
                }
                Err(SourceError::NotFound(why.to_string().into()))
            }
        }
    }
}

#[cfg(test)]
mod tests;
