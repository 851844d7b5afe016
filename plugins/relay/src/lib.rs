//! `relay`: pushing live streams to other RTMP servers (restreaming to a platform, a backup
//! origin), as nginx-rtmp's `push` and SRS's `forward` do.
//!
//! Everything here is sans-IO and independent of the host: the host (not yet) opens the
//! sockets, runs the timers and feeds each push the stream's tags; this crate decides what to
//! connect to, what to write and when to give up or try again.
//!
//! # Layout
//! - [`settings`]: the `[[push]]` rules (`streams` patterns, `to` URL templates with `{app}`,
//!   `{name}`, `{stream}`), reconnect timing and the queue bound, validated with errors that
//!   name the key; [`settings::Destination`], a resolved URL that displays redacted.
//! - [`matching`]: stream patterns (`APP/NAME`, `*` within a part) and
//!   [`settings::Settings::destinations`], the destinations of a live stream, each once.
//! - [`push`]: one destination's state machine over the RTMP client session of
//!   `fstream_rtmp_client` (Idle → Connecting → Publishing → Backoff → ...): sequence headers first,
//!   keyframe-first (re)starts, a bounded queue that drops up to the next keyframe, the
//!   unpublish at the stream's end, exponential backoff.
//! - [`relay`]: every push of every live stream behind one object: streams in by name,
//!   actions and events out tagged with a push id, socket input back to that push.
//! - [`redact`]: destination URLs without their credentials, for logs and stats.
//!
//! # Not a plugin yet
//! The library does not export a plugin (no `export_plugin!`), and is not in `mods/main.mods`:
//! the interface has no way yet for a plugin to ask the host for an outbound connection, nor
//! to receive a stream's packets outside a sink. Until then the host (or a test) links this
//! crate and drives [`relay::Relay`] (or a single [`push::Push`]) itself.
//!
//! The RTMP client session it drives is the crate `fstream-rtmp-client` (core/rtmp-client),
//! which exports no plugin, so a cdylib of this crate will carry only its own.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod matching;
pub mod push;
pub mod redact;
pub mod relay;
pub mod settings;

#[cfg(test)]
mod tests;
