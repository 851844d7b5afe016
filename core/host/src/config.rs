//! `mods/host.toml`: the host's own settings. Every key is optional; unknown keys are errors.

use std::{collections::BTreeMap, path::Path};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// The log filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    pub log: String,
    /// Listen address per frontend protocol (`fstream = "0.0.0.0:61920"`); `--listen` overrides.
    pub listen: BTreeMap<String, String>,
    /// How long a session waits for the authenticators before the request is denied.
    pub auth_timeout_ms: u64,
    /// How long an app handler may take before the call is rejected.
    pub app_timeout_ms: u64,
    /// How long a token stays valid.
    pub token_ttl_ms: u64,
    pub hub: HubConfig,
    /// Seconds to let sinks finish on shutdown.
    pub shutdown_grace_ms: u64,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            log: "info".into(),
            listen: BTreeMap::new(),
            auth_timeout_ms: 5_000,
            app_timeout_ms: 5_000,
            token_ttl_ms: 120_000,
            hub: HubConfig::default(),
            shutdown_grace_ms: 3_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// The bound of a subscriber's queue, in bytes, unless its session asks for another.
    pub queue_bytes: u64,
    /// Keep the last group of pictures for late joiners.
    pub gop_cache: bool,
    /// The most bytes the GOP cache holds per stream; past it, late joiners wait for the next
    /// keyframe.
    pub gop_cache_bytes: u64,
    /// How long bytes may wait in a viewer's queue to be gathered into one vectored write
    /// (0: write at once, lowest delay).
    pub gather_ms: u64,
    /// Write at once when this many bytes are pending, whatever the window.
    pub gather_bytes: u64,
    /// Packets a sink's queue holds before packets for it are dropped (slow disk).
    pub sink_queue_packets: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            queue_bytes: 8 * 1024 * 1024,
            gop_cache: true,
            gop_cache_bytes: 16 * 1024 * 1024,
            gather_ms: 50,
            gather_bytes: 32 * 1024,
            sink_queue_packets: 8192,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl HostConfig {
    /// Reads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.message().to_string(),
        })
    }
}
