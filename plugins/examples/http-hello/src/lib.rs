//! `http-hello`: an HTTP handler, the smallest plugin that serves paths of its own on the HTTP
//! frontend's listener beside HTTP-FLV and HLS (interface v2.2).
//!
//! - `GET /hello` answers a greeting (`greeting` in `mods/http-hello.toml`).
//! - `/hello/echo`, any method, answers JSON saying what arrived: method, path, query, the
//!   headers, the body's length, and who asked (connection id and peer, which the host fills
//!   in whatever the request says).
//!
//! The `http` plugin parses the request and applies its limits; the host sees that `/hello` is
//! this plugin's and calls [`HandleHttp::handle`] on a blocking thread, under the host's
//! `app_timeout_ms`; the `http` plugin frames the answer (length, keep-alive, CORS). A panic
//! here answers 500 to that request and nothing else.

use fstream_abi::{
    kinds,
    sdk::{http_handler_box, HandleHttp},
    HostApiBox, HttpCall, HttpReply, InitContext, PluginError, PluginInstance, PluginObject,
};
use serde::Deserialize;

fstream_abi::export_plugin! {
    name: "http-hello",
    kinds: kinds::HTTP_HANDLER,
    init: init,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    greeting: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            greeting: "Hello from a plugin.".into(),
        }
    }
}

fn init(_host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings: Settings =
        toml::from_str(&ctx.settings).map_err(|e| PluginError::new(e.message()))?;
    Ok(
        PluginInstance::empty().with(PluginObject::HttpHandler(http_handler_box(Hello {
            greeting: settings.greeting,
        }))),
    )
}

pub struct Hello {
    greeting: String,
}

impl HandleHttp for Hello {
    fn prefixes(&self) -> Vec<String> {
        vec!["/hello".into()]
    }

    fn handle(&self, call: &HttpCall) -> Result<HttpReply, PluginError> {
        Ok(answer(&self.greeting, call))
    }
}

/// The answer to one request (plain logic, tested without a host).
pub fn answer(greeting: &str, call: &HttpCall) -> HttpReply {
    match (call.method.as_str(), call.path.as_str()) {
        ("GET" | "HEAD", "/hello" | "/hello/") => HttpReply::new(
            200,
            "text/plain; charset=utf-8",
            format!("{greeting}\n").as_bytes(),
        ),
        (_, "/hello/echo") => {
            let headers: serde_json::Map<String, serde_json::Value> = call
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.as_str().into()))
                .collect();
            let body = serde_json::json!({
                "method": call.method.as_str(),
                "path": call.path.as_str(),
                "query": call.query.as_str(),
                "headers": headers,
                "body_bytes": call.body.len(),
                "listener": call.listener.as_str(),
                "connection": call.caller.connection,
                "peer": call.caller.peer.as_str(),
            });
            tracing::info!(method = %call.method, peer = %call.caller.peer, "echo");
            HttpReply::new(200, "application/json", body.to_string().as_bytes())
        }
        ("GET" | "HEAD", _) => HttpReply::text(404, "Not Found"),
        _ => {
            let mut r = HttpReply::text(405, "Method Not Allowed");
            r.headers
                .push(fstream_abi::HttpHeader::new("Allow", "GET, HEAD"));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstream_abi::{Caller, HttpHeader, NetAddr};

    fn call(method: &str, path: &str) -> HttpCall {
        HttpCall {
            method: method.into(),
            path: path.into(),
            query: "a=1".into(),
            headers: vec![HttpHeader::new("X-Thing", "yes")].into(),
            body: b"abc".to_vec().into(),
            listener: "http".into(),
            caller: Caller {
                connection: 7,
                peer: "127.0.0.1:5000".into(),
                peer_addr: NetAddr::UNSPECIFIED,
            },
            ext: Default::default(),
        }
    }

    #[test]
    fn greets_echoes_and_refuses() {
        let r = answer("hi", &call("GET", "/hello"));
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi\n"[..]));
        let r = answer("hi", &call("POST", "/hello/echo"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["method"], "POST");
        assert_eq!(v["headers"]["x-thing"], "yes");
        assert_eq!(v["body_bytes"], 3);
        assert_eq!(v["connection"], 7);
        assert_eq!(answer("hi", &call("GET", "/hello/nope")).status, 404);
        assert_eq!(answer("hi", &call("DELETE", "/hello")).status, 405);
    }
}
