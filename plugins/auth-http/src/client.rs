//! The calls to the backend: one POST each, its status (and `Location`, for nginx-rtmp's
//! renaming redirects), nothing else read. Redirects are never followed.

use std::time::Duration;

use thiserror::Error;

use crate::settings::Settings;

/// Why the backend gave no status.
#[derive(Debug, Error)]
pub enum CallError {
    #[error("no answer from {url} within {ms} ms")]
    Timeout { url: String, ms: u64 },
    #[error("cannot reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: ureq::Error,
    },
}

/// What the backend answered: its status and, for a redirect, where it points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The `Location` header, when the answer has one that is text.
    pub location: Option<String>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            location: None,
        }
    }
}

/// Something that answers a body with an HTTP status (the real backend, or a test's).
pub trait Backend: Send + Sync + 'static {
    /// POSTs `body` with `content_type` (and the signature header when there is one) and
    /// gives the reply.
    fn call(
        &self,
        content_type: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<Reply, CallError>;
}

/// An HTTP(S) client for POSTs to any URL, with ureq's blocking agent (connections kept alive
/// between calls), a timeout for the whole call, no redirects followed and no proxy.
pub struct Poster {
    agent: ureq::Agent,
    timeout_ms: u64,
    headers: Vec<(String, String)>,
}

/// The longest `Location` value kept; a longer one is ignored.
const MAX_LOCATION: usize = 2048;

impl Poster {
    pub fn new(timeout_ms: u64, headers: &std::collections::BTreeMap<String, String>) -> Self {
        let agent = ureq::Agent::config_builder()
            // The whole call, resolving and connecting included.
            .timeout_global(Some(Duration::from_millis(timeout_ms)))
            // Every status is an answer to map, not an error.
            .http_status_as_error(false)
            // A redirect is not followed: the 3xx itself is the answer.
            .max_redirects(0)
            .max_redirects_will_error(false)
            // No proxy from the environment: the backend is where the URL says.
            .proxy(None)
            .user_agent(concat!(
                "fstream-host auth-http/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .into();
        Self {
            agent,
            timeout_ms,
            headers: headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    pub fn post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<Reply, CallError> {
        let mut request = self.agent.post(url).header("Content-Type", content_type);
        for (k, v) in &self.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        if let Some(sig) = signature {
            request = request.header("X-Fstream-Signature", sig);
        }
        match request.send(body) {
            // The body is not read: the status is the answer.
            Ok(response) => Ok(Reply {
                status: response.status().as_u16(),
                location: response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| v.len() <= MAX_LOCATION)
                    .map(str::to_string),
            }),
            Err(ureq::Error::Timeout(_)) => Err(CallError::Timeout {
                url: url.to_string(),
                ms: self.timeout_ms,
            }),
            Err(source) => Err(CallError::Transport {
                url: url.to_string(),
                source,
            }),
        }
    }
}

/// The authentication backend: [`Poster`] to the settings' `url`.
pub struct HttpBackend {
    poster: Poster,
    url: String,
}

impl HttpBackend {
    pub fn new(settings: &Settings) -> Self {
        Self {
            poster: Poster::new(settings.timeout_ms, &settings.headers),
            url: settings.url.clone(),
        }
    }
}

impl Backend for HttpBackend {
    fn call(
        &self,
        content_type: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<Reply, CallError> {
        self.poster.post(&self.url, content_type, body, signature)
    }
}
