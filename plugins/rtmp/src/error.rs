//! Why a connection is closed by us.

use fstream_media::{
    amf0::Amf0Error,
    rtmp::{chunk::ChunkError, message::MessageError},
};
use thiserror::Error;

use crate::handshake::HandshakeFailure;

/// A reason to close one connection. Every variant is logged with the connection's fields;
/// nothing else is affected.
#[derive(Debug, Error)]
pub enum Violation {
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeFailure),
    /// A Flash policy file request while `policy_file` is off.
    #[error("a Flash policy file request, and policy_file is off")]
    PolicyRequest,
    #[error("no complete handshake within {0} ms")]
    HandshakeTimeout(u64),
    #[error("nothing received for {0} ms")]
    Idle(u64),
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    #[error("malformed message: {0}")]
    Message(#[from] MessageError),
    #[error("{buffered} bytes arrived while waiting for {waiting}; the limit is {limit}")]
    TooMuchPending {
        buffered: usize,
        waiting: &'static str,
        limit: usize,
    },
    /// We could not encode something of our own (an app handler's command with absurd
    /// arguments, ...).
    #[error("cannot encode a reply: {0}")]
    Encode(#[from] EncodeError),
}

impl Violation {
    /// A short name for logs and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::Handshake(_) => "handshake",
            Violation::HandshakeTimeout(_) => "handshake_timeout",
            Violation::PolicyRequest => "policy_request",
            Violation::Idle(_) => "idle",
            Violation::Chunk(_) => "chunk",
            Violation::Message(_) => "message",
            Violation::TooMuchPending { .. } => "pending",
            Violation::Encode(_) => "encode",
        }
    }
}

/// Failures to encode our own messages.
#[derive(Debug, Error)]
pub enum EncodeError {
    #[error("{0}")]
    Message(#[from] MessageError),
    #[error("{0}")]
    Chunk(#[from] ChunkError),
    #[error("{0}")]
    Amf0(#[from] Amf0Error),
}
