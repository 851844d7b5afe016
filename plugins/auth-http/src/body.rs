//! What the backend is sent: the request as a JSON object (MediaMTX's `authHTTPAddress`, SRS's
//! `http_hooks`) or as nginx-rtmp's `on_publish` form, and the body's signature.

use fstream_abi::query::percent_decode;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// One question, in the words both styles are built from. The query is the client's own
/// (undecoded, without credentials: the senders drop them before it reaches this plugin).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Question {
    pub action: &'static str,
    pub protocol: String,
    pub app: String,
    pub stream: String,
    pub path: String,
    pub user: String,
    pub password: String,
    pub token: String,
    pub query: String,
    pub ip: String,
    pub client_addr: String,
    pub conn_id: String,
}

/// `Content-Type` of a JSON body.
pub const JSON: &str = "application/json";
/// `Content-Type` of an nginx-style body.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// The JSON body: every field of [`Question`], in its order, strings all (empty when unknown).
pub fn json(q: &Question) -> Vec<u8> {
    // A struct of strings always serialises.
    serde_json::to_vec(q).unwrap_or_default()
}

/// The nginx-rtmp form: `call`, `app`, `name`, `addr`, `clientid`, then the client's own query
/// arguments (as nginx-rtmp appends them), then `user` and `password` when there are some.
pub fn nginx(q: &Question) -> Vec<u8> {
    let mut form = Form::nginx_head(q.action, &q.app, &q.stream, &q.ip, &q.conn_id, &q.query);
    if !q.user.is_empty() {
        form.field("user", &q.user);
    }
    if !q.password.is_empty() {
        form.field("password", &q.password);
    }
    form.0.into_bytes()
}

/// The client's own query arguments as form fields, decoded then encoded again (see [`nginx`]).
pub(crate) fn query_fields(form: &mut Form, query: &str) {
    for item in query.split('&').filter(|i| !i.is_empty()) {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        form.field(&lossy(&percent_decode(k)), &lossy(&percent_decode(v)));
    }
}

/// `sha256=HEX`, the HMAC-SHA256 of `body` keyed with `secret`, for `X-Fstream-Signature`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A form being written, field by field, each encoded.
#[derive(Default)]
pub(crate) struct Form(pub(crate) String);

impl Form {
    /// What every nginx-rtmp call starts with: `call`, `app`, `name`, `addr`, `clientid`, then
    /// the client's own query arguments. Those were encoded by the client: they are decoded,
    /// then encoded again, so that what the backend parses is exactly what the client meant,
    /// and nothing can break out of its field.
    pub(crate) fn nginx_head(
        call: &str,
        app: &str,
        name: &str,
        addr: &str,
        clientid: &str,
        query: &str,
    ) -> Form {
        let mut form = Form::default();
        form.field("call", call);
        form.field("app", app);
        form.field("name", name);
        form.field("addr", addr);
        form.field("clientid", clientid);
        query_fields(&mut form, query);
        form
    }

    pub(crate) fn field(&mut self, key: &str, value: &str) {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        encode_into(&mut self.0, key);
        self.0.push('=');
        encode_into(&mut self.0, value);
    }
}

/// `application/x-www-form-urlencoded` as the WHATWG URL standard writes it: unreserved bytes
/// as they are, space as `+`, everything else `%XX`.
fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Question {
        Question {
            action: "publish",
            protocol: "rtmp".into(),
            app: "fier".into(),
            stream: "cam".into(),
            path: "fier/cam".into(),
            user: "fier".into(),
            password: "123".into(),
            token: "".into(),
            query: "a=b".into(),
            ip: "127.0.0.1".into(),
            client_addr: "127.0.0.1:5555".into(),
            conn_id: "17".into(),
        }
    }

    #[test]
    fn the_json_body_is_byte_exact() {
        assert_eq!(
            String::from_utf8(json(&sample())).unwrap(),
            r#"{"action":"publish","protocol":"rtmp","app":"fier","stream":"cam","path":"fier/cam","user":"fier","password":"123","token":"","query":"a=b","ip":"127.0.0.1","client_addr":"127.0.0.1:5555","conn_id":"17"}"#
        );
        let q = Question {
            password: "p\"w\\\n".into(),
            ..sample()
        };
        assert!(String::from_utf8(json(&q))
            .unwrap()
            .contains(r#""password":"p\"w\\\n""#));
    }

    #[test]
    fn the_nginx_body_is_byte_exact_and_encodes_what_it_must() {
        assert_eq!(
            String::from_utf8(nginx(&sample())).unwrap(),
            "call=publish&app=fier&name=cam&addr=127.0.0.1&clientid=17&a=b&user=fier&password=123"
        );
        let q = Question {
            query: "room=a%20b&k=%26x%3D&flag&&e=%zz".into(),
            password: "p&w=+ é".into(),
            user: "".into(),
            conn_id: "".into(),
            ..sample()
        };
        assert_eq!(
            String::from_utf8(nginx(&q)).unwrap(),
            "call=publish&app=fier&name=cam&addr=127.0.0.1&clientid=\
             &room=a+b&k=%26x%3D&flag=&e=%25zz&password=p%26w%3D%2B+%C3%A9"
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 4231, test case 1: a 20-byte key of 0x0b.
        assert_eq!(
            signature(&[0x0b; 20], b"Hi There"),
            "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }
}
