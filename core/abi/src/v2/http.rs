//! Since v2.2: HTTP handlers, plugins that answer HTTP requests under path prefixes on the HTTP
//! frontend's listener, so that several plugins share one listener by path.
//!
//! The HTTP frontend (the stock `http` plugin) parses requests and applies its limits; when a
//! request's path falls under a handler's prefix ([`super::HostApi::http_prefixes`] lists
//! them), its session asks the host with [`super::Action::CallHttp`], and the host runs the
//! handler on a blocking thread with a timeout and answers with [`super::Event::HttpResult`].
//! The handler never sees a socket; the host never parses HTTP.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RString, RVec},
    StableAbi,
};

use super::{Caller, Extensions, Payload, PluginError};

#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct HttpHeader {
    pub name: RString,
    pub value: RString,
}

impl HttpHeader {
    pub fn new(name: &str, value: &str) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A request for a handler.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct HttpCall {
    /// `GET`, `POST`, ... as received.
    pub method: RString,
    /// The path as received (percent-encoded), under one of the handler's prefixes.
    pub path: RString,
    /// The query string without its `?` (may be empty).
    pub query: RString,
    /// The request's headers in order, as received (connection-level ones included).
    pub headers: RVec<HttpHeader>,
    /// The body, within the frontend's `max_body_bytes`.
    pub body: RVec<u8>,
    /// The protocol name of the frontend it came through (`http`).
    pub listener: RString,
    /// Who asks (set by the host, whatever the session said).
    pub caller: Caller,
    pub ext: Extensions,
}

impl HttpCall {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

/// A handler's answer. The frontend adds the framing headers (`Content-Length`, `Connection`,
/// `Date`-less by design) and its CORS header, and drops any of those the handler set.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct HttpReply {
    /// 100..=599; anything else is answered as 500.
    pub status: u16,
    pub headers: RVec<HttpHeader>,
    pub body: Payload,
    pub ext: Extensions,
}

impl HttpReply {
    pub fn new(status: u16, content_type: &str, body: &[u8]) -> Self {
        Self {
            status,
            headers: vec![HttpHeader::new("Content-Type", content_type)].into(),
            body: super::payload_from(body),
            ext: Default::default(),
        }
    }

    /// A short plain-text answer (errors).
    pub fn text(status: u16, text: &str) -> Self {
        Self::new(
            status,
            "text/plain; charset=utf-8",
            format!("{text}\n").as_bytes(),
        )
    }
}

/// The HTTP handler kind. `handle` runs on host-managed blocking threads under a timeout, so it
/// may block.
#[sabi_trait]
pub trait HttpHandler: Send + Sync {
    /// The path prefixes it answers under, each starting with `/` (e.g. `/hello`: that path
    /// and everything below it, `/hello/...`). The longest matching prefix of any handler
    /// wins; they come before the frontend's own paths.
    fn prefixes(&self) -> RVec<RString>;
    #[sabi(last_prefix_field)]
    fn handle(&self, call: &HttpCall) -> RResult<HttpReply, PluginError>;
}

pub type HttpHandlerBox = HttpHandler_TO<'static, RBox<()>>;

/// Whether `path` falls under `prefix` (`/a` covers `/a` and `/a/...`, not `/ab`).
pub fn path_under(path: &str, prefix: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    match path.strip_prefix(p) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || p.is_empty(),
        None => false,
    }
}

/// Whether a handler's prefix is one the host accepts: `/` then name characters and `/`, no
/// `.` or `..` segment, at most 128 bytes, and not `/` alone (which would hide every path of
/// the frontend).
pub fn valid_prefix(prefix: &str) -> bool {
    prefix.len() >= 2
        && prefix.len() <= 128
        && prefix.starts_with('/')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./~".contains(&b))
        && prefix.split('/').all(|seg| seg != "." && seg != "..")
        && prefix.trim_end_matches('/').len() > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_their_subtree_only() {
        assert!(path_under("/hello", "/hello"));
        assert!(path_under("/hello/x", "/hello"));
        assert!(path_under("/hello/x", "/hello/"));
        assert!(!path_under("/helloo", "/hello"));
        assert!(!path_under("/hell", "/hello"));
        for bad in ["/", "//", "hello", "/a/../b", "/a b", "/./x", ""] {
            assert!(!valid_prefix(bad), "{bad}");
        }
        for good in ["/hello", "/api/v1/", "/_hooks"] {
            assert!(valid_prefix(good), "{good}");
        }
    }
}
