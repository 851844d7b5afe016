//! Who may use the control plane: only on the control listener; with a token, whoever
//! presents it; without one, loopback peers only. A request sent by a web page of another
//! origin (its `Origin` header names another host) is refused, so that a page the operator
//! happens to visit cannot kick anyone through their browser.

use std::net::IpAddr;

use fstream_abi::HttpCall;

/// The listener the control plane answers on (the http plugin's `api_listen`).
pub const LISTENER: &str = "api";

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not the control listener: the paths do not exist there.
    #[error("not found")]
    Elsewhere,
    #[error("a bearer token is required (Authorization: Bearer ...)")]
    NoToken,
    #[error("the bearer token is wrong")]
    WrongToken,
    #[error(
        "only loopback clients are served without a token (set token in mods/control-api.toml)"
    )]
    NotLoopback,
    #[error("a request from another origin ({0}) is refused")]
    CrossOrigin(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Elsewhere => 404,
            Refusal::NoToken | Refusal::WrongToken => 401,
            Refusal::NotLoopback | Refusal::CrossOrigin(_) => 403,
        }
    }
}

/// Whether `call` may be answered; `token` empty = loopback only.
pub fn check(call: &HttpCall, token: &str) -> Result<(), Refusal> {
    if call.listener.as_str() != LISTENER {
        return Err(Refusal::Elsewhere);
    }
    if let Some(origin) = call.header("Origin") {
        if !same_origin(origin, call.header("Host").unwrap_or("")) {
            return Err(Refusal::CrossOrigin(origin.chars().take(100).collect()));
        }
    }
    if token.is_empty() {
        return match call.caller.peer_addr.ip() {
            IpAddr::V4(a) if a.is_loopback() => Ok(()),
            IpAddr::V6(a)
                if a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v| v.is_loopback()) =>
            {
                Ok(())
            }
            _ => Err(Refusal::NotLoopback),
        };
    }
    let Some(given) = call.header("Authorization").and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    }) else {
        return Err(Refusal::NoToken);
    };
    if constant_time_eq(given.trim().as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::WrongToken)
    }
}

/// `Origin: http://HOST[:PORT]` against the request's `Host`.
fn same_origin(origin: &str, host: &str) -> bool {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|r| !host.is_empty() && r.eq_ignore_ascii_case(host))
}

/// Compares without stopping at the first difference (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstream_abi::{Caller, HttpHeader, NetAddr};

    fn call(listener: &str, peer: &str, headers: &[(&str, &str)]) -> HttpCall {
        HttpCall {
            method: "GET".into(),
            path: "/api/v1/streams".into(),
            query: "".into(),
            headers: headers.iter().map(|(n, v)| HttpHeader::new(n, v)).collect(),
            body: Default::default(),
            listener: listener.into(),
            caller: Caller {
                connection: 1,
                peer: peer.into(),
                peer_addr: NetAddr::parse_or_unspecified(peer),
            },
            ext: Default::default(),
        }
    }

    #[test]
    fn listener_loopback_token_and_origin() {
        assert_eq!(
            check(&call("http", "127.0.0.1:5", &[]), ""),
            Err(Refusal::Elsewhere)
        );
        assert_eq!(check(&call("api", "127.0.0.1:5", &[]), ""), Ok(()));
        assert_eq!(check(&call("api", "[::1]:5", &[]), ""), Ok(()));
        assert_eq!(
            check(&call("api", "10.0.0.2:5", &[]), ""),
            Err(Refusal::NotLoopback)
        );
        assert_eq!(
            check(&call("api", "10.0.0.2:5", &[]), "s3cret"),
            Err(Refusal::NoToken)
        );
        let bad = [("Authorization", "Bearer nope")];
        assert_eq!(
            check(&call("api", "10.0.0.2:5", &bad), "s3cret"),
            Err(Refusal::WrongToken)
        );
        let good = [("Authorization", "Bearer s3cret")];
        assert_eq!(check(&call("api", "10.0.0.2:5", &good), "s3cret"), Ok(()));
        // The token is needed from loopback too once it is set.
        assert_eq!(
            check(&call("api", "127.0.0.1:5", &[]), "s3cret"),
            Err(Refusal::NoToken)
        );
        let same = [
            ("Host", "127.0.0.1:9997"),
            ("Origin", "http://127.0.0.1:9997"),
        ];
        assert_eq!(check(&call("api", "127.0.0.1:5", &same), ""), Ok(()));
        let other = [
            ("Host", "127.0.0.1:9997"),
            ("Origin", "https://evil.example"),
        ];
        assert!(matches!(
            check(&call("api", "127.0.0.1:5", &other), ""),
            Err(Refusal::CrossOrigin(_))
        ));
    }
}
