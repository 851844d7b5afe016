//! The host's library: everything but the command line, so benchmarks and tests can drive the
//! hub and the loader directly. The binary is `src/main.rs`.

pub mod auth;
pub mod auth_guard;
pub mod call_gate;
pub mod clients;
pub mod compat_v1;
pub mod config;
pub mod conn;
pub mod frontends;
pub mod host_api;
pub mod hub;
pub mod loader;
pub mod mods;
pub mod not_recorded;
pub mod notices;
pub mod outq;
pub mod read_pool;
pub mod renames;
pub mod server;
pub mod setup;
pub mod source_player;
pub mod stats;
pub mod tls;
pub mod users;
