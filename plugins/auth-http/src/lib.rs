//! `auth-http`: asks an HTTP backend whether a request is allowed.
//!
//! For every request the host's chain gives it (publish, play, token, connect; the actions in
//! `actions`), it POSTs a description to `url` and maps the status:
//!
//! - 2xx: allow;
//! - 401 or 403: deny, the reason naming the status;
//! - anything else, a timeout, no connection, or more than `max_concurrent` calls in flight:
//!   `on_error` (`deny` by default, or `allow`), logged as a warning.
//!
//! The body is JSON (`style = "json"`, as MediaMTX's `authHTTPAddress` and SRS's `http_hooks`
//! send) or nginx-rtmp's `on_publish` form (`style = "nginx"`); see [`body`]. With
//! `hmac_secret` every call is signed: `X-Fstream-Signature: sha256=HEX` over the exact body.
//! Answers may be kept for identical requests (`cache_ms`). The query string and connection
//! id come from the request's `ext` (`Var` entries `query` and `conn_id`, filled by the RTMP
//! app handler and the host); credentials are never part of the query sent.
//!
//! In the nginx style, a 3xx answer to a publish or play with a `Location` allows it under
//! another name, as nginx-rtmp does: the last path part of the location (`cam2`,
//! `rtmp://host/app/cam2`) is the new stream name in the same app, given to the host as an
//! [`Extension::Rename`] grant. A 3xx without a usable location, and any 3xx in the JSON style,
//! meet `on_error`; redirects are never followed.
//!
//! The plugin is also an observer ([`notify`]): with a `[notify]` table, publish and play
//! starts and ends and finished recordings are POSTed to the URLs set there, retried with a
//! bounded backoff on the host's observer thread, never on a media path.
//!
//! Settings: `mods/auth-http.toml` ([`settings`]). Not in the stock `main.mods`: it needs a
//! backend. List it before `auth-ini` (the backend decides, and `auth-ini` is never asked about
//! what it answers) or instead of it.

pub mod body;
pub mod cache;
pub mod client;
pub mod gate;
pub mod notify;
pub mod settings;

use std::time::{Duration, Instant};

use fstream_abi::{
    kinds,
    names::validate_part,
    sdk::{authenticator_box, observer_box, Authenticate},
    var, AuthRequest, AuthVerdict, Credential, Extension, Extension_NE, HostApiBox, InitContext,
    PluginError, PluginInstance, PluginObject,
};

use crate::{
    body::Question,
    cache::Cache,
    client::{Backend, HttpBackend, Poster},
    gate::Gate,
    notify::Notifier,
    settings::{ActionName, OnError, Settings, Style},
};

fstream_abi::export_plugin! {
    name: "auth-http",
    kinds: kinds::AUTHENTICATOR | kinds::OBSERVER,
    init: init,
}

/// Query keys that carry credentials; they are dropped from the query the backend sees (the
/// password has a field of its own).
pub use fstream_abi::query::SECRET_KEYS;

fn init(_host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings = Settings::parse(&ctx.settings).map_err(|e| PluginError::new(e.to_string()))?;
    tracing::info!(
        url = %settings.url,
        style = ?settings.style,
        timeout_ms = settings.timeout_ms,
        max_concurrent = settings.max_concurrent,
        on_error = ?settings.on_error,
        cache_ms = settings.cache_ms,
        signed = settings.hmac_secret.is_some(),
        "auth-http ready"
    );
    let notifier = match &settings.notify {
        Some(n) => {
            tracing::info!(
                events = ?n.events(), timeout_ms = n.timeout_ms, max_attempts = n.max_attempts,
                retry_ms = n.retry_ms, max_retry_ms = n.max_retry_ms, max_age_ms = n.max_age_ms,
                "auth-http notifications on"
            );
            Notifier::new(&settings, Poster::new(n.timeout_ms, &settings.headers))
        }
        None => Notifier::off(),
    };
    let backend = HttpBackend::new(&settings);
    let auth = authenticator_box(HttpAuth::new(settings, backend));
    // Both objects always, as the plugin declares both kinds; without `[notify]` the observer
    // does nothing.
    Ok(PluginInstance::empty()
        .with(PluginObject::Authenticator(auth))
        .with(PluginObject::Observer(observer_box(notifier))))
}

/// What the backend said, as kept in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Allow,
    /// 401 or 403.
    Deny(u16),
    /// A 3xx with a `Location` (nginx style): allowed as this stream name, in the same app.
    Rename(String),
}

impl Answer {
    fn verdict(&self) -> AuthVerdict {
        match self {
            Answer::Allow => AuthVerdict::Allow,
            Answer::Deny(status) => AuthVerdict::Deny(format!("backend answered {status}").into()),
            Answer::Rename(name) => AuthVerdict::AllowWith(
                vec![Extension_NE::new(Extension::Rename(name.as_str().into()))].into(),
            ),
        }
    }
}

/// The stream name a redirect's `Location` gives, as nginx-rtmp reads it: the last part of its
/// path (`cam2`, `/live/cam2`, `rtmp://host/live/cam2?x=1` all name `cam2`). `None` when that is
/// not a valid stream name.
pub fn renamed_to(location: &str) -> Option<String> {
    let location = location.trim();
    let path = location.split(['?', '#']).next().unwrap_or("");
    // After a scheme, the first part is the host, not a name.
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, p)| p),
        None => path,
    };
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    let name = String::from_utf8(fstream_abi::query::percent_decode(last)).ok()?;
    validate_part(&name).ok()?;
    Some(name)
}

/// A request for the cache: the question without what differs between two connections of
/// the same client (its port and connection id).
type CacheKey = Question;

fn cache_key(q: &Question) -> CacheKey {
    Question {
        client_addr: String::new(),
        conn_id: String::new(),
        ..q.clone()
    }
}

pub struct HttpAuth<B> {
    settings: Settings,
    backend: B,
    gate: Gate,
    cache: Cache<CacheKey, Answer>,
}

impl<B: Backend> HttpAuth<B> {
    pub fn new(settings: Settings, backend: B) -> Self {
        Self {
            gate: Gate::new(settings.max_concurrent),
            cache: Cache::new(
                Duration::from_millis(settings.cache_ms),
                settings.cache_entries,
            ),
            settings,
            backend,
        }
    }

    /// The answer of the failure policy, with the warning that says why it was needed.
    fn on_error(&self, q: &Question, why: &dyn std::fmt::Display) -> AuthVerdict {
        tracing::warn!(
            action = q.action, path = %q.path, user = %q.user, peer = %q.client_addr,
            error = %why, on_error = ?self.settings.on_error,
            "backend gave no answer; applying on_error"
        );
        match self.settings.on_error {
            OnError::Allow => AuthVerdict::Allow,
            OnError::Deny => AuthVerdict::Deny(format!("backend unavailable: {why}").into()),
        }
    }

    /// Whether a 3xx may rename what `q` asks about: nginx style, publish or play.
    fn renames(&self, q: &Question) -> bool {
        self.settings.style == Style::Nginx && matches!(q.action, "publish" | "play")
    }

    fn ask(&self, q: &Question) -> AuthVerdict {
        let now = Instant::now();
        let key = cache_key(q);
        if let Some(answer) = self.cache.get(&key, now) {
            tracing::debug!(action = q.action, path = %q.path, user = %q.user, ?answer, "cached answer");
            return answer.verdict();
        }
        let Some(_permit) = self.gate.try_enter() else {
            let why = format!(
                "{} calls in flight already (max_concurrent)",
                self.settings.max_concurrent
            );
            return self.on_error(q, &why);
        };
        let (content_type, body) = match self.settings.style {
            Style::Json => (body::JSON, body::json(q)),
            Style::Nginx => (body::FORM, body::nginx(q)),
        };
        let signature = self
            .settings
            .hmac_secret
            .as_ref()
            .map(|k| body::signature(k.as_bytes(), &body));
        let reply = match self.backend.call(content_type, &body, signature.as_deref()) {
            Ok(reply) => reply,
            Err(e) => return self.on_error(q, &e),
        };
        let answer = match reply.status {
            200..=299 => Answer::Allow,
            s @ (401 | 403) => Answer::Deny(s),
            300..=399 if self.renames(q) => match reply.location.as_deref().and_then(renamed_to) {
                Some(name) => {
                    tracing::info!(action = q.action, path = %q.path, to = %name,
                            status = reply.status, "backend renamed the stream");
                    Answer::Rename(name)
                }
                None => {
                    let why = format!(
                        "status {} with no usable Location ({:?})",
                        reply.status,
                        reply.location.as_deref().unwrap_or("")
                    );
                    return self.on_error(q, &why);
                }
            },
            s => return self.on_error(q, &format!("status {s}")),
        };
        tracing::debug!(action = q.action, path = %q.path, user = %q.user, ?answer, "backend answered");
        let verdict = answer.verdict();
        self.cache.put(key, answer, Instant::now());
        verdict
    }
}

impl<B: Backend> Authenticate for HttpAuth<B> {
    fn authenticate(&self, request: &AuthRequest) -> Result<AuthVerdict, PluginError> {
        // An action of a newer host, or one not asked about: the next authenticator's.
        let Some(action) = request.action().and_then(ActionName::of) else {
            return Ok(AuthVerdict::Abstain);
        };
        if !self.settings.asks(action) {
            return Ok(AuthVerdict::Abstain);
        }
        Ok(self.ask(&question(request, action)))
    }
}

/// The request in the words of the bodies.
pub fn question(request: &AuthRequest, action: ActionName) -> Question {
    let (password, token) = match request.credential() {
        Some(Credential::Password(p)) => (p.to_string(), String::new()),
        Some(Credential::Token(t)) => (String::new(), t.to_string()),
        _ => (String::new(), String::new()),
    };
    let path = request.stream.to_string();
    let (app, stream) = match path.split_once('/') {
        Some((a, s)) => (a.to_string(), s.to_string()),
        None => (path.clone(), String::new()),
    };
    let peer = request.peer.as_str();
    let ip = match peer.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().to_string(),
        Err(_) => peer.to_string(),
    };
    Question {
        action: action.as_str(),
        protocol: request.protocol.to_string(),
        app,
        stream,
        path,
        user: request.user.to_string(),
        password,
        token,
        query: without_secrets(var(&request.ext, "query").unwrap_or("")),
        ip,
        client_addr: peer.to_string(),
        conn_id: var(&request.ext, "conn_id").unwrap_or("").to_string(),
    }
}

/// The query's items but those whose key names a credential (decoded, `-` read as `_`, as the
/// RTMP app handler reads keys), as they were written.
pub fn without_secrets(query: &str) -> String {
    fstream_abi::query::redacted(query)
}

#[cfg(test)]
mod tests;
