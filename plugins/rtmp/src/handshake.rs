//! The handshake phase of a connection: C0 C1 in, S0 S1 S2 out, C2 in, within a deadline.
//!
//! Both the simple and the digest ("Flash Player 9") handshake are answered by
//! `fstream_media::rtmp::handshake::ServerHandshake`; this driver adds the deadline and hands
//! back the bytes that followed C2 (the client's first chunks).
//!
//! A Flash Player that wants a socket policy may ask on the RTMP port itself: instead of C0 (3,
//! or 6 for RTMPE) its first byte is `<` of `<policy-file-request/>\0`. With `policy_file` on,
//! that request gets the cross-domain policy (any domain, this port), NUL-terminated, and the
//! connection closes, as rtmplite does; with it off, the connection closes without a byte.

use fstream_media::rtmp::handshake::{
    HandshakeError, HandshakeKind, HandshakeStatus, ServerHandshake,
};
use rand::RngCore;
use thiserror::Error;

/// What a Flash Player sends for a socket policy, terminator included.
pub const POLICY_REQUEST: &[u8] = b"<policy-file-request/>\0";

/// The policy sent for [`POLICY_REQUEST`]: connections from any domain to `port`.
pub fn policy_file(port: u16) -> Vec<u8> {
    let mut v = format!(
        "<?xml version=\"1.0\"?>\
         <cross-domain-policy>\
         <allow-access-from domain=\"*\" to-ports=\"{port}\"/>\
         </cross-domain-policy>"
    )
    .into_bytes();
    v.push(0);
    v
}

pub struct HandshakeDriver {
    hs: ServerHandshake,
    /// `now_ms` by which the handshake must be complete.
    pub deadline: u64,
    /// Some bytes came already: the first byte decided between RTMP and a policy request.
    started: bool,
    /// Bytes of a policy request so far, once the first byte was `<`.
    policy: Option<Vec<u8>>,
}

/// What one call to [`HandshakeDriver::feed`] produced.
pub enum Progress {
    NeedMore,
    /// Done: these bytes followed C2 and belong to the chunk stream.
    Done {
        leftover: Vec<u8>,
    },
    /// The client asked for the Flash socket policy (the whole request is in).
    PolicyRequest,
}

/// Why the handshake failed.
#[derive(Debug, Error)]
pub enum HandshakeFailure {
    #[error(transparent)]
    Rtmp(#[from] HandshakeError),
    /// The first byte was `<` but what followed is not a policy request.
    #[error("the client sent {0:?}, neither an RTMP handshake nor a Flash policy request")]
    NotPolicyRequest(String),
}

impl HandshakeDriver {
    pub fn new<R: RngCore + ?Sized>(now_ms: u64, timeout_ms: u64, rng: &mut R) -> Self {
        Self {
            // S1's time field: our clock in ms, as the handshake describes it.
            hs: ServerHandshake::new(now_ms as u32, rng),
            deadline: now_ms.saturating_add(timeout_ms),
            started: false,
            policy: None,
        }
    }

    /// Feeds received bytes; the reply (S0 S1 S2) is appended to `reply` as soon as C0 C1 are in.
    pub fn feed(&mut self, data: &[u8], reply: &mut Vec<u8>) -> Result<Progress, HandshakeFailure> {
        if let (false, Some(&first)) = (self.started, data.first()) {
            self.started = true;
            if first == b'<' {
                self.policy = Some(Vec::with_capacity(POLICY_REQUEST.len()));
            }
        }
        if let Some(seen) = &mut self.policy {
            return Self::feed_policy(seen, data);
        }
        match self.hs.feed(data, reply)? {
            HandshakeStatus::NeedMore => Ok(Progress::NeedMore),
            HandshakeStatus::Complete => Ok(Progress::Done {
                leftover: self.hs.take_leftover(),
            }),
        }
    }

    /// Collects a policy request, refusing at the first byte that departs from it. Bytes after
    /// the request are of no interest: the connection closes after the answer.
    fn feed_policy(seen: &mut Vec<u8>, data: &[u8]) -> Result<Progress, HandshakeFailure> {
        let want = POLICY_REQUEST.len().saturating_sub(seen.len());
        seen.extend(data.iter().take(want));
        if !POLICY_REQUEST.starts_with(seen) {
            let shown = String::from_utf8_lossy(seen).into_owned();
            return Err(HandshakeFailure::NotPolicyRequest(shown));
        }
        if seen.len() == POLICY_REQUEST.len() {
            Ok(Progress::PolicyRequest)
        } else {
            Ok(Progress::NeedMore)
        }
    }

    pub fn kind(&self) -> Option<HandshakeKind> {
        self.hs.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver() -> HandshakeDriver {
        HandshakeDriver::new(0, 1000, &mut rand::thread_rng())
    }

    #[test]
    fn a_policy_request_is_recognised_in_any_pieces() {
        for split in 1..POLICY_REQUEST.len() {
            let mut d = driver();
            let mut reply = Vec::new();
            let (a, b) = POLICY_REQUEST.split_at(split);
            assert!(matches!(d.feed(a, &mut reply), Ok(Progress::NeedMore)));
            let mut rest = b.to_vec();
            rest.extend_from_slice(b"trailing");
            assert!(matches!(
                d.feed(&rest, &mut reply),
                Ok(Progress::PolicyRequest)
            ));
            assert!(reply.is_empty());
        }
    }

    #[test]
    fn a_less_than_sign_later_in_c1_is_just_handshake_data() {
        let mut d = driver();
        let mut reply = Vec::new();
        assert!(matches!(d.feed(&[3], &mut reply), Ok(Progress::NeedMore)));
        assert!(matches!(
            d.feed(POLICY_REQUEST, &mut reply),
            Ok(Progress::NeedMore)
        ));
        assert!(matches!(
            d.feed(&[0; 1536], &mut reply),
            Ok(Progress::NeedMore)
        ));
        assert_eq!(reply.len(), 1 + 2 * 1536, "S0 S1 S2");
    }

    #[test]
    fn other_text_after_a_less_than_sign_is_refused() {
        let mut d = driver();
        let mut reply = Vec::new();
        assert!(matches!(
            d.feed(b"<policy-file-request>\0", &mut reply),
            Err(HandshakeFailure::NotPolicyRequest(_))
        ));
        let mut d = driver();
        assert!(matches!(
            d.feed(b"<html>", &mut reply),
            Err(HandshakeFailure::NotPolicyRequest(_))
        ));
    }

    #[test]
    fn the_policy_names_the_port_and_ends_with_nul() {
        let p = policy_file(1935);
        assert_eq!(p.last(), Some(&0));
        let text = std::str::from_utf8(&p[..p.len() - 1]).unwrap();
        assert!(!text.contains('\0'));
        assert!(text.contains("<cross-domain-policy>"));
        assert!(text.contains(r#"<allow-access-from domain="*" to-ports="1935"/>"#));
        assert!(text.ends_with("</cross-domain-policy>"));
    }
}
