//! `control-api`: the operators' control plane, served on the control listener (the http
//! plugin's `api_listen`, `127.0.0.1:9997` by default, `--listen api=ADDR`):
//!
//! - a JSON API of the server, its streams and sessions, and kicking a session
//!   ([`routes`]);
//! - `GET /metrics` for Prometheus ([`metrics`]);
//! - `GET /dashboard`, a page of live streams, viewers, bitrates and sessions ([`dashboard`]).
//!
//! Everything comes from the host (`HostApi::stats`, `HostApi::kick`); this plugin keeps no
//! state. On the public HTTP listener its paths do not exist. Who may call: [`access`].
//! Settings: `mods/control-api.toml` ([`settings`]).

pub mod access;
pub mod dashboard;
pub mod metrics;
pub mod routes;
pub mod settings;

use fstream_abi::{
    kinds,
    sdk::{http_handler_box, HandleHttp},
    HostApiBox, HttpCall, HttpReply, InitContext, PluginError, PluginInstance, PluginObject,
};

use crate::{routes::Control, settings::Settings};

fstream_abi::export_plugin! {
    name: "control-api",
    kinds: kinds::HTTP_HANDLER,
    init: init,
}

fn init(host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings = Settings::parse(&ctx.settings).map_err(|e| PluginError::new(e.to_string()))?;
    tracing::info!(
        token = !settings.token.is_empty(),
        "control-api ready on the api listener{}",
        if settings.token.is_empty() {
            " (loopback clients only: no token)"
        } else {
            ""
        }
    );
    let handler = ControlApi {
        host: host.clone(),
        token: settings.token,
    };
    Ok(PluginInstance::empty().with(PluginObject::HttpHandler(http_handler_box(handler))))
}

pub struct ControlApi {
    host: HostApiBox,
    token: String,
}

impl Control for ControlApi {
    fn stats(&self, parts: &str) -> String {
        self.host.stats_of(parts.into()).into()
    }

    fn kick(&self, id: u64, reason: &str) -> bool {
        self.host.kick(id, reason.into())
    }
}

impl HandleHttp for ControlApi {
    fn prefixes(&self) -> Vec<String> {
        routes::PREFIXES.iter().map(|p| p.to_string()).collect()
    }

    fn handle(&self, call: &HttpCall) -> Result<HttpReply, PluginError> {
        Ok(handle(self, &self.token, call))
    }
}

/// One request: the access check, then the route. The dashboard page itself holds no data and
/// is served without the token (the page asks for it); it still needs the control listener.
pub fn handle(control: &dyn Control, token: &str, call: &HttpCall) -> HttpReply {
    let page = call.path.as_str().trim_end_matches('/') == "/dashboard";
    let checked = access::check(call, if page { "" } else { token });
    let checked = match checked {
        Err(access::Refusal::NotLoopback) if page && !token.is_empty() => Ok(()),
        other => other,
    };
    if let Err(refusal) = checked {
        tracing::info!(peer = %call.caller.peer, path = %call.path, %refusal, "control-api: refused");
        let mut reply = routes::error(refusal.status(), &refusal.to_string());
        if refusal.status() == 401 {
            reply
                .headers
                .push(fstream_abi::HttpHeader::new("WWW-Authenticate", "Bearer"));
        }
        return reply;
    }
    routes::answer(control, call)
}

#[cfg(test)]
mod tests;
