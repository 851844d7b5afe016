//! `http`: the HTTP frontend. Today it serves live streams as HTTP-FLV
//! (`GET /APP/STREAM.flv`, what flv.js, mpegts.js, `ffplay http://...` and VLC read), with
//! `?channel_password=` where the stream has one.
//!
//! Sans-IO like the other frontends: the host owns the listener (`--listen http=ADDR`, TLS
//! through `[tls.http]`), and sessions turn bytes and events into actions. Requests are read
//! with `httparse` within bounds (`mods/http.toml`): head size, header count, body size, idle
//! time, requests per connection. Answers: 400, 403, 404, 405, 408, 413, 414, 431, 503 with a
//! short body; CORS headers; keep-alive between requests; HEAD.
//!
//! A second listener, protocol `api` (`api_listen`, loopback by default), serves the HTTP
//! handlers' paths and nothing else, without CORS headers: where `control-api` answers.

pub mod encoder;
pub mod error;
pub mod hls;
pub mod pages;
pub mod request;
pub mod response;
pub mod route;
pub mod session;
pub mod settings;

use std::sync::{Arc, OnceLock};

use fstream_abi::{
    kinds,
    sdk::{encoder_box, frontend_box, session_box, sink_box, sink_factory_box, Frontend, MakeSink},
    ConnInfo, EncoderBox, HostApiBox, InitContext, PluginError, PluginInstance, PluginObject,
    SessionBox, SinkBox, StreamStart,
};

use crate::{
    encoder::{ChunkedFlv, Probe, FLV_FORMAT, PROBE_FORMAT},
    hls::{
        sink::{Cutting, HlsSink},
        store::Store,
    },
    session::{HttpSession, Prefixes},
    settings::Settings,
};

fstream_abi::export_plugin! {
    name: "http",
    kinds: kinds::FRONTEND | kinds::SINK,
    init: init,
}

/// The HLS segments, one store for the loaded library: a reload's new plugin instance serves
/// what the running publications' sinks (of the old instance) keep cutting.
fn store() -> Arc<Store> {
    static STORE: OnceLock<Arc<Store>> = OnceLock::new();
    STORE.get_or_init(Default::default).clone()
}

/// The protocol name (`--listen http=ADDR`).
pub const PROTOCOL: &str = "http";

/// The control listener's protocol name (`--listen api=ADDR`).
pub const API_PROTOCOL: &str = "api";

fn init(host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings = Settings::parse(&ctx.settings).map_err(|e| PluginError::new(e.to_string()))?;
    tracing::debug!(?settings, "http settings");
    let settings = Arc::new(settings);
    // Requests under the HTTP handlers' prefixes go to them, through the host.
    let host = host.clone();
    let prefixes: Prefixes =
        Arc::new(move || host.http_prefixes().into_iter().map(String::from).collect());
    let api = (!settings.api_listen.is_empty()).then(|| {
        // No CORS header there: a web page elsewhere must not read the control API.
        let mut api_settings = (*settings).clone();
        api_settings.cors_origin.clear();
        frontend_box(ApiFrontend {
            settings: Arc::new(api_settings),
            hls: store(),
            prefixes: prefixes.clone(),
        })
    });
    let frontend = frontend_box(HttpFrontend {
        settings: settings.clone(),
        hls: store(),
        prefixes,
    });
    let sinks = sink_factory_box(HlsSinks {
        settings,
        hls: store(),
    });
    let mut instance = PluginInstance::empty()
        .with(PluginObject::Frontend(frontend))
        .with(PluginObject::Sink(sinks));
    if let Some(api) = api {
        instance = instance.with(PluginObject::Frontend(api));
    }
    Ok(instance)
}

pub struct HttpFrontend {
    settings: Arc<Settings>,
    hls: Arc<Store>,
    prefixes: Prefixes,
}

/// Opens an HLS segmenter for every live publication (when `hls` is on).
pub struct HlsSinks {
    settings: Arc<Settings>,
    hls: Arc<Store>,
}

impl MakeSink for HlsSinks {
    fn open(&self, start: &StreamStart) -> Result<Option<SinkBox>, PluginError> {
        if !self.settings.hls {
            return Ok(None);
        }
        let s = &self.settings;
        let Some(segments) = self
            .hls
            .publish(&start.stream, start.unix_ms, s.hls_max_streams)
        else {
            tracing::warn!(stream = %start.stream, max = s.hls_max_streams,
                "too many streams with HLS (hls_max_streams); this one gets none");
            return Ok(None);
        };
        let cutting = Cutting {
            segment_ms: s.hls_segment_ms.max(100),
            part_ms: s.hls_part_ms,
            window: s.hls_window.max(1),
            max_segment_bytes: s.hls_max_segment_bytes,
            fmp4: s.hls_format == crate::settings::HlsFormat::Fmp4,
        };
        Ok(Some(sink_box(HlsSink::new(
            start.stream.to_string(),
            segments,
            cutting,
        ))))
    }
}

impl Frontend for HttpFrontend {
    fn protocol(&self) -> String {
        PROTOCOL.into()
    }

    fn default_listen(&self) -> String {
        self.settings.listen.clone()
    }

    fn new_session(&self, _conn: &ConnInfo) -> Result<SessionBox, PluginError> {
        Ok(session_box(
            HttpSession::new(self.settings.clone(), self.hls.clone())
                .with_handlers(self.prefixes.clone()),
        ))
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

/// The control listener: the same HTTP sessions, serving the HTTP handlers' paths only (the
/// handlers see `listener = "api"` and decide what they offer there).
pub struct ApiFrontend {
    settings: Arc<Settings>,
    hls: Arc<Store>,
    prefixes: Prefixes,
}

impl Frontend for ApiFrontend {
    fn protocol(&self) -> String {
        API_PROTOCOL.into()
    }

    fn default_listen(&self) -> String {
        self.settings.api_listen.clone()
    }

    fn new_session(&self, _conn: &ConnInfo) -> Result<SessionBox, PluginError> {
        Ok(session_box(
            HttpSession::new(self.settings.clone(), self.hls.clone())
                .with_handlers(self.prefixes.clone())
                .handlers_only(),
        ))
    }

    fn encoder(&self, format: &str) -> Result<EncoderBox, PluginError> {
        Err(PluginError::new(format!(
            "the control listener has no format {format:?}"
        )))
    }
}

#[cfg(test)]
mod session_tests;
