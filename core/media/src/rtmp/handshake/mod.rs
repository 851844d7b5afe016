//! RTMP handshake, sans-IO: bytes in, bytes out.
//!
//! Server side ([`ServerHandshake`]) accepts both the simple handshake and the digest
//! ("complex", Flash Player 9+) handshake; the client side ([`ClientHandshake`]) is for load
//! generators and tests. Time and randomness are passed in by the caller.

mod client;
mod digest;
mod server;

pub use client::ClientHandshake;
pub use digest::{
    compute_digest, find_digest, hmac_sha256, imprint_digest, DigestScheme, DIGEST_LEN,
    GENUINE_FMS_KEY, GENUINE_FMS_KEY_SHORT_LEN, GENUINE_FP_KEY, GENUINE_FP_KEY_SHORT_LEN,
};
pub use server::{HandshakeKind, ServerHandshake};

/// Size of C1/S1/C2/S2.
pub const HANDSHAKE_SIZE: usize = 1536;
/// The only plain RTMP version (C0/S0).
pub const RTMP_VERSION: u8 = 3;

/// Progress of a handshake after a [`ServerHandshake::feed`] / [`ClientHandshake::feed`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeStatus {
    /// More input is needed.
    NeedMore,
    /// Done: take the leftover bytes (the first chunks) and switch to chunk decoding.
    Complete,
}

/// Handshake failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("RTMPE (encrypted RTMP, version byte {0}) is not supported")]
    Encrypted(u8),
    #[error("unsupported RTMP version byte {0} (expected 3)")]
    UnsupportedVersion(u8),
    #[error("handshake already complete; feed the chunk decoder instead")]
    AlreadyComplete,
}
