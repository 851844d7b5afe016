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
