//! `rtmp`: the RTMP protocol frontend.
//!
//! Publishers (OBS, ffmpeg, ...) and players (ffmpeg, VLC, rtmpdump, ...) speak RTMP to a sans-IO
//! session per connection; the host owns sockets, clocks and threads. The stream
//! `rtmp://host/APP/NAME?query` is the hub's `APP/NAME` (`shared/spec/streams.md`), so what is
//! published over RTMP can be watched over fstream and the other way round.
//!
//! # Layout
//! - [`settings`]: the settings of `mods/rtmp.toml`.
//! - [`handshake`]: the handshake phase (simple and digest) with its deadline.
//! - [`chunkio`]: chunk decoding with limits and acknowledgements; chunking our own messages.
//! - [`session`]: the connection's state machine, protocol control, timers, the end;
//!   [`state`]: what it knows about its NetConnection and NetStreams.
//! - [`commands`]: command dispatch and the NetConnection commands (`connect`, `createStream`, ...).
//! - [`publish`]: `publish` and the publisher's media as packets.
//! - [`play`]: `play`, subscription status changes as NetStream statuses, player controls.
//! - [`encoder`]: the `rtmp/CHUNK/MSID` format: packets as chunked messages, encoded once per
//!   packet for every player of that format; and the byte-less `rtmp-probe` format of a play's
//!   first subscription.
//! - [`names`], [`amf_json`]: names and queries; AMF0 ⇄ JSON for the app handler interface.
//!
//! The other side, a sans-IO RTMP *client* session (for relays), is the crate
//! `fstream-rtmp-client` in core/rtmp-client; its tests drive it against this crate's session.
//!
//! Every connect, publish and play goes to the app handler serving the app (`AppCall`), which
//! accepts (and for publishing checks the credentials in the query), rejects or redirects.

// Everything here handles what a client sent: no panicking shortcuts outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod amf_json;
pub mod chunkio;
pub mod commands;
pub mod custom_commands;
pub mod encoder;
pub mod error;
pub mod handshake;
pub mod names;
pub mod play;
pub mod publish;
pub mod session;
pub mod settings;
pub mod state;

use std::sync::Arc;

use fstream_abi::{
    kinds,
    sdk::{encoder_box, frontend_box, session_box, Frontend},
    ConnInfo, EncoderBox, HostApiBox, InitContext, PluginError, PluginInstance, PluginObject,
    SessionBox,
};

use crate::{
    encoder::{ProbeEncoder, RtmpEncoder, PROBE_FORMAT},
    session::RtmpSession,
    settings::Settings,
};

fstream_abi::export_plugin! {
    name: "rtmp",
    kinds: kinds::FRONTEND,
    init: init,
}

/// The protocol name (`--listen rtmp=ADDR`, `[listen] rtmp = ...` in host.toml).
pub const PROTOCOL: &str = "rtmp";

fn init(_host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings = Settings::parse(&ctx.settings)
        .map_err(|e| PluginError::new(format!("{}: {e}", ctx.settings_path)))?;
    tracing::debug!(?settings, "rtmp settings");
    let frontend = frontend_box(RtmpFrontend::new(settings));
    Ok(PluginInstance::empty().with(PluginObject::Frontend(frontend)))
}

pub struct RtmpFrontend {
    settings: Arc<Settings>,
}

impl RtmpFrontend {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }
}

impl Frontend for RtmpFrontend {
    fn protocol(&self) -> String {
        PROTOCOL.into()
    }

    fn default_listen(&self) -> String {
        self.settings.listen.clone()
    }

    fn new_session(&self, conn: &ConnInfo) -> Result<SessionBox, PluginError> {
        Ok(session_box(RtmpSession::new(self.settings.clone(), conn)))
    }

    fn encoder(&self, format: &str) -> Result<EncoderBox, PluginError> {
        if format == PROBE_FORMAT {
            return Ok(encoder_box(ProbeEncoder));
        }
        Ok(encoder_box(RtmpEncoder::new(format)?))
    }
}

#[cfg(test)]
mod session_tests;
