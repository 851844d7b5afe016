//! `http`: the HTTP frontend. Today it serves live streams as HTTP-FLV
//! (`GET /APP/STREAM.flv`, what flv.js, mpegts.js, `ffplay http://...` and VLC read), with
//! `?channel_password=` where the stream has one.
//!
//! Sans-IO like the other frontends: the host owns the listener (`--listen http=ADDR`, TLS
//! through `[tls.http]`), and sessions turn bytes and events into actions. Requests are read
//! with `httparse` within bounds (`mods/http.toml`): head size, header count, body size, idle
//! time, requests per connection. Answers: 400, 403, 404, 405, 408, 413, 414, 431, 503 with a
//! short body; CORS headers; keep-alive between requests; HEAD.

pub mod encoder;
pub mod error;
pub mod request;
pub mod response;
pub mod route;
pub mod session;
pub mod settings;

use std::sync::Arc;

use fstream_abi::{
    kinds,
    sdk::{encoder_box, frontend_box, session_box, Frontend},
    ConnInfo, EncoderBox, HostApiBox, InitContext, PluginError, PluginInstance, PluginObject,
    SessionBox,
};

use crate::{
    encoder::{ChunkedFlv, Probe, FLV_FORMAT, PROBE_FORMAT},
    session::HttpSession,
    settings::Settings,
};

fstream_abi::export_plugin! {
    name: "http",
    kinds: kinds::FRONTEND,
    init: init,
}

/// The protocol name (`--listen http=ADDR`).
pub const PROTOCOL: &str = "http";

fn init(_host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings = Settings::parse(&ctx.settings).map_err(|e| PluginError::new(e.to_string()))?;
    tracing::debug!(?settings, "http settings");
    let frontend = frontend_box(HttpFrontend {
        settings: Arc::new(settings),
    });
    Ok(PluginInstance::empty().with(PluginObject::Frontend(frontend)))
}

pub struct HttpFrontend {
    settings: Arc<Settings>,
}

impl Frontend for HttpFrontend {
    fn protocol(&self) -> String {
        PROTOCOL.into()
    }

    fn default_listen(&self) -> String {
        self.settings.listen.clone()
    }

    fn new_session(&self, _conn: &ConnInfo) -> Result<SessionBox, PluginError> {
        Ok(session_box(HttpSession::new(self.settings.clone())))
    }

    fn encoder(&self, format: &str) -> Result<EncoderBox, PluginError> {
        match format {
            FLV_FORMAT => Ok(encoder_box(ChunkedFlv)),
            PROBE_FORMAT => Ok(encoder_box(Probe)),
            _ => Err(PluginError::new(format!(
                "the http frontend has no format {format:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod session_tests;
