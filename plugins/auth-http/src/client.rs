//! The call to the backend: one POST, its status, nothing else read.

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

/// Something that answers a body with an HTTP status (the real backend, or a test's).
pub trait Backend: Send + Sync + 'static {
    /// POSTs `body` with `content_type` (and the signature header when there is one) and
    /// gives the status.
    fn call(
        &self,
        content_type: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<u16, CallError>;
}

/// The backend over HTTP(S), with ureq's blocking agent (its connections kept alive between
/// calls).
pub struct HttpBackend {
    agent: ureq::Agent,
    url: String,
    timeout_ms: u64,
    headers: Vec<(String, String)>,
}

impl HttpBackend {
    pub fn new(settings: &Settings) -> Self {
        let agent = ureq::Agent::config_builder()
            // The whole call, resolving and connecting included.
            .timeout_global(Some(Duration::from_millis(settings.timeout_ms)))
            // Every status is an answer to map, not an error.
            .http_status_as_error(false)
            // A redirect is not followed: its status meets the failure policy.
            .max_redirects(0)
            .max_redirects_will_error(false)
            // No proxy from the environment: the backend is where `url` says.
            .proxy(None)
            .user_agent(concat!(
                "fstream-host auth-http/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .into();
        Self {
            agent,
            url: settings.url.clone(),
            timeout_ms: settings.timeout_ms,
            headers: settings
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

impl Backend for HttpBackend {
    fn call(
        &self,
        content_type: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<u16, CallError> {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", content_type);
        for (k, v) in &self.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        if let Some(sig) = signature {
            request = request.header("X-Fstream-Signature", sig);
        }
        match request.send(body) {
            // The body is not read: the status is the answer.
            Ok(response) => Ok(response.status().as_u16()),
            Err(ureq::Error::Timeout(_)) => Err(CallError::Timeout {
                url: self.url.clone(),
                ms: self.timeout_ms,
            }),
            Err(source) => Err(CallError::Transport {
                url: self.url.clone(),
                source,
            }),
        }
    }
}
