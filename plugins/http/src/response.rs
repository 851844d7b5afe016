//! The bytes of the answers: a status with a short body, and the head of an HTTP-FLV stream.

use crate::error::HttpError;

pub const SERVER: &str = "fstream-host";

/// Headers every answer carries: the server, CORS, and whether the connection stays.
fn common(out: &mut String, keep_alive: bool, cors_origin: &str) {
    out.push_str("Server: ");
    out.push_str(SERVER);
    out.push_str("\r\n");
    if !cors_origin.is_empty() {
        out.push_str("Access-Control-Allow-Origin: ");
        out.push_str(cors_origin);
        out.push_str("\r\n");
    }
    out.push_str(if keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    });
}

/// A complete answer with a plain-text body (no body for HEAD; the length says what GET gets).
pub fn text(
    code: u16,
    reason: &str,
    body: &str,
    extra: &[(&str, &str)],
    keep_alive: bool,
    cors_origin: &str,
    head_only: bool,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {code} {reason}\r\n");
    common(&mut out, keep_alive, cors_origin);
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if code == 204 {
        out.push_str("\r\n");
        return out.into_bytes();
    }
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len() + 1));
    if !head_only {
        out.push_str(body);
        out.push('\n');
    }
    out.into_bytes()
}

/// The answer for an error.
pub fn error(e: &HttpError, keep_alive: bool, cors_origin: &str, head_only: bool) -> Vec<u8> {
    let (code, reason) = e.status();
    let allow = [("Allow", "GET, HEAD, OPTIONS")];
    let extra: &[(&str, &str)] = match e {
        HttpError::MethodNotAllowed(_) => &allow,
        _ => &[],
    };
    text(
        code,
        reason,
        &e.to_string(),
        extra,
        keep_alive,
        cors_origin,
        head_only,
    )
}

/// The answer to a CORS preflight (`OPTIONS`).
pub fn preflight(keep_alive: bool, cors_origin: &str) -> Vec<u8> {
    text(
        204,
        "No Content",
        "",
        &[
            ("Allow", "GET, HEAD, OPTIONS"),
            ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
            ("Access-Control-Allow-Headers", "*"),
            ("Access-Control-Max-Age", "86400"),
        ],
        keep_alive,
        cors_origin,
        true,
    )
}

/// The head of a live HTTP-FLV stream: chunked, never cached, ended by the server.
pub fn flv_head(keep_alive: bool, cors_origin: &str) -> Vec<u8> {
    let mut out = String::from("HTTP/1.1 200 OK\r\n");
    common(&mut out, keep_alive, cors_origin);
    out.push_str("Content-Type: video/x-flv\r\n");
    out.push_str("Cache-Control: no-cache, no-store\r\n");
    out.push_str("Transfer-Encoding: chunked\r\n\r\n");
    out.into_bytes()
}

/// A complete answer with a body of `content_type`, cached as `cache_control` says.
pub fn body_head(
    content_type: &str,
    len: usize,
    cache_control: &str,
    keep_alive: bool,
    cors_origin: &str,
) -> Vec<u8> {
    let mut out = String::from("HTTP/1.1 200 OK\r\n");
    common(&mut out, keep_alive, cors_origin);
    out.push_str(&format!(
        "Content-Type: {content_type}\r\nCache-Control: {cache_control}\r\nContent-Length: {len}\r\n\r\n"
    ));
    out.into_bytes()
}

/// The end of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The reason phrase of a status an HTTP handler may answer with.
fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Headers the frontend writes itself (framing, the connection, CORS when it sets it): a
/// handler's are dropped.
const OURS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "server",
];

fn token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The head of an HTTP handler's answer (its body follows unless `head_only` or the status has
/// none). A status outside 200..=599 becomes 500; a header whose name is not a token or whose
/// value holds a control character (a CR/LF injection) is dropped.
pub fn handler_head(
    reply: &fstream_abi::HttpReply,
    keep_alive: bool,
    cors_origin: &str,
) -> (Vec<u8>, bool) {
    let code = if (200..=599).contains(&reply.status) {
        reply.status
    } else {
        500
    };
    let has_body = !(code == 204 || code == 304);
    let sets_cors = reply
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("access-control-allow-origin"));
    let mut out = format!("HTTP/1.1 {code} {}\r\n", reason(code));
    common(
        &mut out,
        keep_alive,
        if sets_cors { "" } else { cors_origin },
    );
    for h in reply.headers.iter() {
        let (name, value) = (h.name.as_str(), h.value.as_str());
        let lower = name.to_ascii_lowercase();
        if !token(name)
            || value.chars().any(|c| c.is_control() && c != '\t')
            || OURS.contains(&lower.as_str())
        {
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if has_body {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    out.push_str("\r\n");
    (out.into_bytes(), has_body)
}
