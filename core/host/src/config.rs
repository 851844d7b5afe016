//! `mods/host.toml`: the host's own settings. Every key is optional; unknown keys are errors.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// The log filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    pub log: String,
    /// Listen address per frontend protocol (`fstream = "0.0.0.0:61920"`); `--listen` overrides.
    pub listen: BTreeMap<String, String>,
    /// TLS listeners by frontend protocol (`[tls.rtmp]`), each next to the plain listener.
    pub tls: BTreeMap<String, TlsListen>,
    /// How long a session waits for the authenticators before the request is denied.
    pub auth_timeout_ms: u64,
    /// How long an app handler may take before the call is rejected.
    pub app_timeout_ms: u64,
    /// How long a client waits for an answer its app handler deferred (`AppVerdict::Defer`)
    /// before it is rejected.
    pub app_defer_timeout_ms: u64,
    /// How long a token stays valid.
    pub token_ttl_ms: u64,
    pub hub: HubConfig,
    pub limits: Limits,
    /// Milliseconds to let sinks finish on shutdown.
    pub shutdown_grace_ms: u64,
    /// The runtime's worker threads (0: one per core).
    pub worker_threads: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            log: "info".into(),
            listen: BTreeMap::new(),
            tls: BTreeMap::new(),
            auth_timeout_ms: 5_000,
            app_timeout_ms: 5_000,
            app_defer_timeout_ms: 30_000,
            token_ttl_ms: 120_000,
            hub: HubConfig::default(),
            limits: Limits::default(),
            shutdown_grace_ms: 3_000,
            worker_threads: 0,
        }
    }
}

/// A TLS listener for a frontend: `[tls.rtmp]` serves RTMPS, `[tls.fstream]` fstream over TLS.
/// It is an extra listener; the frontend's plain listener stays as `[listen]` says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsListen {
    /// The address it listens on (`0.0.0.0:1936`).
    pub listen: String,
    /// The certificate chain in PEM, the server's own certificate first. A relative path is
    /// relative to the server root.
    pub cert: PathBuf,
    /// The private key in PEM (PKCS#8, PKCS#1 or SEC1). A relative path is relative to the
    /// server root.
    pub key: PathBuf,
    /// A client that has not completed the TLS handshake after this long is disconnected
    /// (0: no limit).
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
}

fn default_handshake_timeout_ms() -> u64 {
    10_000
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
    /// Flusher shards: connections are spread over this many write tasks (0: one per runtime
    /// worker thread).
    pub flush_shards: usize,
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
            flush_shards: 0,
        }
    }
}

/// Limits that protect the server from floods and stuck peers. 0 disables a limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connections open at once, all listeners together.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_ip: usize,
    /// Streams one user (the APP part of `APP/NAME`) may publish at once.
    pub max_streams_per_user: usize,
    /// A publishing connection that sends nothing for this long is closed (a publisher whose
    /// network vanished without a FIN); its viewers are then told the publisher left.
    pub publisher_idle_ms: u64,
    /// A connection whose socket takes no bytes for this long (a viewer that stopped reading)
    /// is closed.
    pub write_stall_ms: u64,
    /// Failed authentications from one IP address within `auth_failure_window_ms` before the
    /// address is refused without asking the authenticators, for `auth_ban_ms`.
    pub auth_failures_per_ip: u32,
    pub auth_failure_window_ms: u64,
    pub auth_ban_ms: u64,
    /// Apply that rule to loopback addresses too. Off by default: behind a local proxy every
    /// client comes from 127.0.0.1, and one guesser would get everyone refused.
    pub auth_limit_loopback: bool,
    /// IPv6 addresses sharing this many leading bits count as one address for that rule.
    pub auth_ipv6_prefix: u8,
    /// Addresses that rule tracks at most (past it, new addresses go untracked).
    pub auth_guard_addresses: usize,
    /// Authenticator calls running at once (0: one per core; each argon2 check of auth-ini
    /// takes about 19 MiB), and calls waiting for one beyond that; more are refused as busy.
    pub auth_concurrency: usize,
    pub auth_queue: usize,
    /// App-handler calls running at once, and waiting; more are refused as busy.
    pub app_concurrency: usize,
    pub app_queue: usize,
    /// A connection's own answers (not media) waiting to be written, at most: a peer that
    /// keeps asking and never reads is closed.
    pub max_control_queue_bytes: usize,
    /// Events (answers, statuses, plugins' commands) waiting for a connection's session, at
    /// most; past it the connection is closed, since its session missed one.
    pub max_queued_events: usize,
    /// Threads that run source plugins' calls (opening, reading, seeking recorded files), and
    /// the calls that may wait or run at once: players are tasks on the runtime, and only these
    /// threads ever wait on a disk. Read at start-up.
    pub source_read_threads: usize,
    pub source_read_queue: usize,
    /// Recorded-stream (VOD) players at once; past it a play is refused as not found.
    pub max_source_players: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            max_connections_per_ip: 1_000,
            max_streams_per_user: 16,
            publisher_idle_ms: 30_000,
            write_stall_ms: 30_000,
            auth_failures_per_ip: 10,
            auth_failure_window_ms: 60_000,
            auth_ban_ms: 60_000,
            auth_limit_loopback: false,
            auth_ipv6_prefix: 64,
            auth_guard_addresses: 100_000,
            auth_concurrency: 0,
            auth_queue: 256,
            app_concurrency: 64,
            app_queue: 1024,
            max_control_queue_bytes: 1 << 20,
            max_queued_events: 4096,
            source_read_threads: 4,
            source_read_queue: 1024,
            max_source_players: 5_000,
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
