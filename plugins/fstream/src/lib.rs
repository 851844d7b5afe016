//! `fstream`: the fstream protocol frontend (`shared/spec/fstream.md`).
//!
//! A client sends one preamble (prelude, length, NUL, action string) and then:
//! - `broadcast`: its bytes are published on the stream `USER/CHANNEL`, raw (in whole `bufsize`
//!   chunks) or, when they start with an FLV header, as media packets;
//! - `watch`: it receives the stream in the `fstream` format (raw bytes as broadcast, media as
//!   an FLV byte stream);
//! - `token`: it receives a single-use broadcast token.
//!
//! Sans-IO: sessions turn bytes, events and timer ticks into host actions; the host owns the
//! sockets, clocks and threads. Settings come from `mods/fstream.toml` ([`settings`]).

pub mod broadcast;
pub mod encoder;
pub mod error;
pub mod ingest;
pub mod session;
pub mod settings;
pub mod token;
pub mod watch;

use std::sync::Arc;

use abi_stable::std_types::RVec;
use fstream_abi::{
    kinds,
    sdk::{encoder_box, frontend_box, session_box, Frontend},
    AuthAction, AuthAction_NE, AuthRequest, ConnInfo, Credential, Credential_NE, EncoderBox,
    HostApiBox, InitContext, NetAddr, PluginError, PluginInstance, PluginObject, SessionBox,
};

use crate::{encoder::FstreamEncoder, session::FstreamSession, settings::Settings};

fstream_abi::export_plugin! {
    name: "fstream",
    kinds: kinds::FRONTEND,
    init: init,
}

/// The protocol name (`--listen fstream=ADDR`, `[listen] fstream = ...` in host.toml).
pub const PROTOCOL: &str = "fstream";

fn init(_host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings = Settings::parse(&ctx.settings).map_err(|e| PluginError::new(e.to_string()))?;
    tracing::debug!(?settings, "fstream settings");
    let frontend = frontend_box(FstreamFrontend::new(settings));
    Ok(PluginInstance::empty().with(PluginObject::Frontend(frontend)))
}

/// A question for the host's authenticators. The host fills in the peer and the protocol.
pub(crate) fn auth_request(
    user: String,
    action: AuthAction,
    credential: Credential,
    stream: String,
) -> AuthRequest {
    AuthRequest {
        user: user.into(),
        action: AuthAction_NE::new(action),
        credential: Credential_NE::new(credential),
        stream: stream.into(),
        peer: "".into(),
        peer_addr: NetAddr::UNSPECIFIED,
        protocol: "".into(),
        ext: RVec::new(),
    }
}

pub struct FstreamFrontend {
    settings: Arc<Settings>,
}

impl FstreamFrontend {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }
}

impl Frontend for FstreamFrontend {
    fn protocol(&self) -> String {
        PROTOCOL.into()
    }

    fn default_listen(&self) -> String {
        self.settings.listen.clone()
    }

    fn new_session(&self, _conn: &ConnInfo) -> Result<SessionBox, PluginError> {
        Ok(session_box(FstreamSession::new(self.settings.clone())))
    }

    fn encoder(&self, format: &str) -> Result<EncoderBox, PluginError> {
        if format == encoder::FORMAT {
            Ok(encoder_box(FstreamEncoder))
        } else {
            Err(PluginError::new(format!(
                "the fstream frontend has no format {format:?}"
            )))
        }
    }
}

#[cfg(test)]
mod session_tests;
