//! Reading a request head with `httparse`, within the settings' bounds.

use crate::{error::HttpError, settings::Settings};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Options,
    Other(String),
}

impl Method {
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Other(m) => m,
        }
    }
}

/// A complete request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The request target as sent (origin form: `/path?query`).
    pub target: String,
    /// Whether the client wants the connection kept after the answer.
    pub keep_alive: bool,
    pub content_length: u64,
    /// Bytes of the head, up to and including the blank line.
    pub head_len: usize,
    /// The headers as received (for HTTP handlers; within `max_headers`, `max_head_bytes`).
    pub headers: Vec<(String, String)>,
    /// The body, once read to its end (see `HttpSession::process`).
    pub body: Vec<u8>,
}

pub enum Parsed {
    /// More bytes are needed.
    Partial,
    Complete(Request),
}

/// Parses the head at the start of `buf`.
pub fn parse(buf: &[u8], settings: &Settings) -> Result<Parsed, HttpError> {
    let mut headers = vec![httparse::EMPTY_HEADER; settings.max_headers.max(1)];
    let mut req = httparse::Request::new(&mut headers);
    let status = match req.parse(buf) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::HeadTooLarge(settings.max_head_bytes))
        }
        Err(e) => return Err(HttpError::BadRequest(e.to_string())),
    };
    let head_len = match status {
        httparse::Status::Partial => {
            if buf.len() > settings.max_head_bytes {
                let line = buf.iter().position(|&c| c == b'\n').unwrap_or(buf.len());
                return Err(if line >= settings.max_head_bytes {
                    HttpError::UriTooLong(settings.max_head_bytes)
                } else {
                    HttpError::HeadTooLarge(settings.max_head_bytes)
                });
            }
            return Ok(Parsed::Partial);
        }
        httparse::Status::Complete(n) => n,
    };
    if head_len > settings.max_head_bytes {
        return Err(HttpError::HeadTooLarge(settings.max_head_bytes));
    }
    let method = match req.method.unwrap_or("") {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.chars().take(32).collect()),
    };
    let target = req.path.unwrap_or("").to_string();
    let minor = req.version.unwrap_or(1);
    let (mut close, mut keep, mut host) = (false, false, false);
    let mut content_length: Option<u64> = None;
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HttpError::BadRequest(format!("header {} is not text", h.name)))?
            .trim();
        headers.push((h.name.to_string(), value.to_string()));
        if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| HttpError::BadRequest("bad Content-Length".into()))?;
            if content_length.is_some_and(|c| c != n) {
                return Err(HttpError::BadRequest(
                    "two different Content-Lengths".into(),
                ));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // A body of unknown length would have to be read to find the next request; this
            // server takes no bodies, and refusing also closes the door to request smuggling.
            return Err(HttpError::BadRequest(
                "request bodies with Transfer-Encoding are not accepted".into(),
            ));
        } else if h.name.eq_ignore_ascii_case("host") {
            host = true;
        }
    }
    if minor >= 1 && !host {
        return Err(HttpError::BadRequest(
            "an HTTP/1.1 request needs Host".into(),
        ));
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > settings.max_body_bytes {
        return Err(HttpError::BodyTooLarge(settings.max_body_bytes));
    }
    Ok(Parsed::Complete(Request {
        method,
        target,
        keep_alive: if minor >= 1 { !close } else { keep && !close },
        content_length,
        head_len,
        headers,
        body: Vec::new(),
    }))
}
