//! Notifications: the observer side of the plugin.
//!
//! The host hands each notice (a publication or a play began or ended, a recording was
//! finished) to this observer on a thread of the observer's own, through a bounded queue
//! (`notices.rs` in the host: 1024 waiting; past that the host drops and counts them). So a
//! notice is delivered here synchronously, in order, one at a time: a publish always reaches
//! the backend before its publish_done. Media never waits for any of it.
//!
//! One notice: POSTed to the URL `[notify]` gives its kind, in the plugin's `style`, signed
//! like the authentication calls. A 2xx delivers it. A timeout, no connection, a 5xx, 408, 425
//! or 429 is retried after `retry_ms`, doubling up to `max_retry_ms`, for at most
//! `max_attempts` attempts; a notice older than `max_age_ms` is not retried again. Any other
//! status (a 3xx, which is not followed, or a 4xx) means the backend will not take it: dropped
//! with a warning. So one notice occupies the thread for at most
//! `max_attempts * timeout_ms` plus the sum of the waits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fstream_abi::{sdk::Observe, Notice, PluginError};
use serde::Serialize;

use crate::{
    body::{self, Form},
    client::{CallError, Poster, Reply},
    settings::{EventName, NotifySettings, Settings, Style},
    without_secrets,
};

/// Something that POSTs a body to a URL (the real client, or a test's).
pub trait Post: Send + Sync + 'static {
    fn post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<Reply, CallError>;
}

impl Post for Poster {
    fn post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<Reply, CallError> {
        Poster::post(self, url, content_type, body, signature)
    }
}

/// The observer. Without `[notify]` it does nothing.
pub struct Notifier<P = Poster> {
    on: Option<On<P>>,
}

struct On<P> {
    notify: NotifySettings,
    style: Style,
    secret: Option<String>,
    poster: P,
}

/// How one notice's delivery ended (for the log and the tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Its kind is not sent anywhere (or this build does not know the kind).
    NotSent,
    /// A 2xx, at this attempt.
    Delivered { attempts: u32 },
    /// A status that retrying cannot change.
    Refused { status: u16, attempts: u32 },
    /// Every attempt failed, or it grew too old to retry.
    GaveUp { attempts: u32, why: String },
}

impl Notifier<Poster> {
    pub fn off() -> Self {
        Self { on: None }
    }
}

impl<P: Post> Notifier<P> {
    /// The notifier of `settings.notify` (off when that is `None`), posting with `poster`.
    pub fn new(settings: &Settings, poster: P) -> Self {
        Self {
            on: settings.notify.clone().map(|notify| On {
                notify,
                style: settings.style,
                secret: settings.hmac_secret.clone(),
                poster,
            }),
        }
    }

    /// Sends `n` to its URL, retrying as the settings say. Blocks until it is delivered or
    /// given up.
    pub fn deliver(&self, n: &Notice) -> Delivery {
        let Some(on) = &self.on else {
            return Delivery::NotSent;
        };
        let Some(event) = n.kind().and_then(EventName::of) else {
            return Delivery::NotSent;
        };
        let Some(url) = on.notify.url_for(event) else {
            return Delivery::NotSent;
        };
        let fields = Fields::of(n, event);
        let (content_type, body) = match on.style {
            Style::Json => (body::JSON, json(&fields)),
            Style::Nginx => (body::FORM, form(&fields)),
        };
        let signature = on
            .secret
            .as_ref()
            .map(|k| body::signature(k.as_bytes(), &body));
        let max = on.notify.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let why = match on
                .poster
                .post(url, content_type, &body, signature.as_deref())
            {
                Ok(r) if (200..300).contains(&r.status) => {
                    tracing::debug!(event = event.as_str(), path = %fields.path, attempt,
                        "notice delivered");
                    return Delivery::Delivered { attempts: attempt };
                }
                Ok(r) if !retryable(r.status) => {
                    tracing::warn!(event = event.as_str(), path = %fields.path, url,
                        status = r.status, attempt, "the backend refused a notice; not retried");
                    return Delivery::Refused {
                        status: r.status,
                        attempts: attempt,
                    };
                }
                Ok(r) => format!("status {}", r.status),
                Err(e) => e.to_string(),
            };
            let age = age_ms(n);
            if attempt >= max || age >= on.notify.max_age_ms {
                tracing::warn!(event = event.as_str(), path = %fields.path, url, attempts = attempt,
                    age_ms = age, error = %why, "a notice could not be delivered; given up");
                return Delivery::GaveUp {
                    attempts: attempt,
                    why,
                };
            }
            let wait = on.notify.backoff(attempt);
            tracing::info!(event = event.as_str(), path = %fields.path, attempt, error = %why,
                retry_in_ms = wait.as_millis() as u64, "a notice failed; retrying");
            std::thread::sleep(wait);
        }
    }
}

impl<P: Post> Observe for Notifier<P> {
    fn notice(&self, notice: &Notice) -> Result<(), PluginError> {
        // Failures are logged where they happen; the host has nothing to do about them.
        self.deliver(notice);
        Ok(())
    }
}

/// Whether a status may change if asked again: the server's trouble, not the request's.
fn retryable(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500..=599)
}

/// Milliseconds since the notice's event (0 when the event has no time, or the clock went
/// back).
fn age_ms(n: &Notice) -> u64 {
    if n.unix_ms == 0 {
        return 0;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64;
    now.saturating_sub(n.unix_ms)
}

/// A notice in the words of the bodies. Numbers are JSON numbers; everything else a string,
/// empty when unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fields {
    pub action: &'static str,
    pub protocol: String,
    pub app: String,
    pub stream: String,
    pub path: String,
    pub user: String,
    /// The client's query, credentials left out (the host redacts it already; this plugin
    /// does again).
    pub query: String,
    pub ip: String,
    pub client_addr: String,
    pub conn_id: String,
    /// In for a publisher, out for a viewer; a recording's size (0 for the start kinds).
    pub bytes: u64,
    pub duration_ms: u64,
    /// The recording (`record_done` only).
    pub file: String,
    pub unix_ms: u64,
}

impl Fields {
    pub fn of(n: &Notice, event: EventName) -> Self {
        let peer = n.caller.peer.as_str();
        let ip = match peer.parse::<std::net::SocketAddr>() {
            Ok(a) => a.ip().to_string(),
            Err(_) => peer.to_string(),
        };
        let (app, stream) = (n.app.to_string(), n.name.to_string());
        Fields {
            action: event.as_str(),
            protocol: n.protocol.to_string(),
            path: if stream.is_empty() {
                app.clone()
            } else {
                format!("{app}/{stream}")
            },
            app,
            stream,
            user: n.user.to_string(),
            query: without_secrets(&n.query),
            ip,
            client_addr: peer.to_string(),
            conn_id: match n.caller.connection {
                0 => String::new(),
                c => c.to_string(),
            },
            bytes: n.bytes,
            duration_ms: n.duration_ms,
            file: n.path.to_string(),
            unix_ms: n.unix_ms,
        }
    }
}

/// The JSON body: every field of [`Fields`], in its order.
pub fn json(f: &Fields) -> Vec<u8> {
    // Strings and integers always serialise.
    serde_json::to_vec(f).unwrap_or_default()
}

/// The nginx-rtmp form: `call`, `app`, `name`, `addr`, `clientid`, the client's own query
/// arguments, then `user` when known, `bytes`, `duration_ms`, `path` (the file, for
/// `record_done`, as nginx-rtmp's `on_record_done` sends it) and `unix_ms`.
pub fn form(f: &Fields) -> Vec<u8> {
    let mut form = Form::nginx_head(f.action, &f.app, &f.stream, &f.ip, &f.conn_id, &f.query);
    if !f.user.is_empty() {
        form.field("user", &f.user);
    }
    form.field("bytes", &f.bytes.to_string());
    form.field("duration_ms", &f.duration_ms.to_string());
    if !f.file.is_empty() {
        form.field("path", &f.file);
    }
    form.field("unix_ms", &f.unix_ms.to_string());
    form.0.into_bytes()
}

#[cfg(test)]
mod tests;
