//! The handshake phase of a connection: C0 C1 in, S0 S1 S2 out, C2 in, within a deadline.
//!
//! Both the simple and the digest ("Flash Player 9") handshake are answered by
//! `fstream_media::rtmp::handshake::ServerHandshake`; this driver adds the deadline and hands
//! back the bytes that followed C2 (the client's first chunks).

use fstream_media::rtmp::handshake::{
    HandshakeError, HandshakeKind, HandshakeStatus, ServerHandshake,
};
use rand::RngCore;

pub struct HandshakeDriver {
    hs: ServerHandshake,
    /// `now_ms` by which the handshake must be complete.
    pub deadline: u64,
}

/// What one call to [`HandshakeDriver::feed`] produced.
pub enum Progress {
    NeedMore,
    /// Done: these bytes followed C2 and belong to the chunk stream.
    Done {
        leftover: Vec<u8>,
    },
}

impl HandshakeDriver {
    pub fn new<R: RngCore + ?Sized>(now_ms: u64, timeout_ms: u64, rng: &mut R) -> Self {
        Self {
            // S1's time field: our clock in ms, as the handshake describes it.
            hs: ServerHandshake::new(now_ms as u32, rng),
            deadline: now_ms.saturating_add(timeout_ms),
        }
    }

    /// Feeds received bytes; the reply (S0 S1 S2) is appended to `reply` as soon as C0 C1 are in.
    pub fn feed(&mut self, data: &[u8], reply: &mut Vec<u8>) -> Result<Progress, HandshakeError> {
        match self.hs.feed(data, reply)? {
            HandshakeStatus::NeedMore => Ok(Progress::NeedMore),
            HandshakeStatus::Complete => Ok(Progress::Done {
                leftover: self.hs.take_leftover(),
            }),
        }
    }

    pub fn kind(&self) -> Option<HandshakeKind> {
        self.hs.kind()
    }
}
