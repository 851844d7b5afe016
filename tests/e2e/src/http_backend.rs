//! The pieces of a test's HTTP backend (the server auth-http calls): read one request off a
//! connection, decode a form body, compute the signature the host should have sent.

use std::{collections::BTreeMap, io::Read, net::TcpStream};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One request as the host sent it; header names lower-cased.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// The next request on `conn` (`buf` keeps what was read past it, for keep-alive): the head,
/// then exactly Content-Length bytes of body, which the host always sends. `None` when the
/// connection ends first; a malformed request fails the test.
pub fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let mut chunk = [0u8; 8192];
    let (head_len, method, path, headers) = loop {
        let mut hs = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut hs);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let headers: BTreeMap<String, String> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                break (
                    n,
                    req.method.unwrap_or("").to_string(),
                    req.path.unwrap_or("").to_string(),
                    headers,
                );
            }
            Ok(httparse::Status::Partial) => match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            Err(e) => panic!("the host sent a bad request: {e}"),
        }
    };
    let len: usize = headers
        .get("content-length")
        .map(|v| v.parse().expect("a Content-Length"))
        .expect("the host sends a Content-Length");
    while buf.len() < head_len + len {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_len..head_len + len].to_vec();
    buf.drain(..head_len + len);
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// `k=v&...` decoded as a form (`+` is a space); every byte must be one a form encoder emits.
pub fn form_fields(body: &[u8]) -> BTreeMap<String, String> {
    let text = std::str::from_utf8(body).expect("an ASCII form");
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*-._+%&=".contains(&b)),
        "not properly encoded: {text}"
    );
    text.split('&')
        .filter(|i| !i.is_empty())
        .map(|item| {
            let (k, v) = item.split_once('=').expect("key=value");
            (decode_form(k), decode_form(v))
        })
        .collect()
}

/// One form-encoded key or value.
pub fn decode_form(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("a %XX escape");
                out.push(u8::from_str_radix(hex, 16).expect("a %XX escape"));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8 once decoded")
}

/// `sha256=HEX`, the `X-Fstream-Signature` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}
