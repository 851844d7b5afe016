//! Why a client session ended badly, and why a media message was not queued.

use fstream_media::rtmp::{chunk::ChunkError, handshake::HandshakeError, message::MessageError};
use thiserror::Error;

use crate::Phase;

/// The end of a client session that did not go as asked. Each variant says whose doing it was
/// (the server refused, the server broke the protocol, time ran out, a bound was reached) and
/// carries what the server said, so a relay can log it and decide whether to retry.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ClientError {
    // The server said no.
    /// `connect` answered with `_error` (e.g. `NetConnection.Connect.Rejected`).
    #[error("connect rejected: {code}: {description}")]
    ConnectRejected { code: String, description: String },
    /// `publish` answered with an error status (e.g. `NetStream.Publish.BadName`).
    #[error("publish refused: {code}: {description}")]
    PublishRejected { code: String, description: String },
    /// `play` answered with `NetStream.Play.StreamNotFound`.
    #[error("stream not found: {description}")]
    StreamNotFound { description: String },
    /// `play` answered with another error status (e.g. `NetStream.Play.Failed`).
    #[error("play refused: {code}: {description}")]
    PlayRejected { code: String, description: String },
    /// A command other than `connect` answered with `_error` (e.g. `createStream`).
    #[error("{command} failed: {code}: {description}")]
    CommandFailed {
        command: &'static str,
        code: String,
        description: String,
    },
    /// An error status on the stream once publishing or playing (e.g. taken over by another
    /// publisher).
    #[error("stream error: {code}: {description}")]
    StreamError { code: String, description: String },

    // The server broke the protocol.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    #[error("malformed message: {0}")]
    Message(#[from] MessageError),
    /// A well-formed message that makes no sense here (a `createStream` result without a stream
    /// id, ...).
    #[error("unexpected from the server: {0}")]
    Unexpected(&'static str),

    // Time ran out, or the connection went.
    /// A phase (handshake, connect, createStream, publish, play) got no answer in time, or a
    /// playing stream went silent.
    #[error("no answer during {phase} within {after_ms} ms")]
    Timeout { phase: Phase, after_ms: u64 },
    /// The server closed the connection (the host saw EOF) before we were done.
    #[error("connection closed by the server during {phase}")]
    Closed { phase: Phase },

    // A bound was reached.
    /// The server made us queue more than we may hold (its pings and acknowledgements while the
    /// host does not take our output).
    #[error("{pending} bytes of output queued; the limit is {limit}")]
    OutputOverflow { pending: usize, limit: usize },
    /// More commands awaiting an answer than `max_transactions`.
    #[error("more than {limit} commands awaiting an answer")]
    TooManyTransactions { limit: usize },
    /// We could not encode something of our own (a name too long for AMF0, ...).
    #[error("cannot encode a command: {0}")]
    Encode(String),
}

impl ClientError {
    /// A short name for logs, metrics and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::ConnectRejected { .. } => "connect_rejected",
            ClientError::PublishRejected { .. } => "publish_rejected",
            ClientError::StreamNotFound { .. } => "stream_not_found",
            ClientError::PlayRejected { .. } => "play_rejected",
            ClientError::CommandFailed { .. } => "command_failed",
            ClientError::StreamError { .. } => "stream_error",
            ClientError::Handshake(_) => "handshake",
            ClientError::Chunk(_) => "chunk",
            ClientError::Message(_) => "message",
            ClientError::Unexpected(_) => "unexpected",
            ClientError::Timeout { .. } => "timeout",
            ClientError::Closed { .. } => "closed",
            ClientError::OutputOverflow { .. } => "output_overflow",
            ClientError::TooManyTransactions { .. } => "transactions",
            ClientError::Encode(_) => "encode",
        }
    }

    /// Whether the server refused what we asked (trying again at once would get the same
    /// answer), as opposed to a failure of the connection, the protocol or time.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ClientError::ConnectRejected { .. }
                | ClientError::PublishRejected { .. }
                | ClientError::StreamNotFound { .. }
                | ClientError::PlayRejected { .. }
                | ClientError::CommandFailed { .. }
        )
    }
}

/// Why [`super::RtmpClient::send_media`] did not queue a message. The session goes on: the host
/// decides what to drop (e.g. everything up to the next keyframe).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// Not (or no longer) publishing: wait for [`super::ClientEvent::Publishing`].
    #[error("not publishing")]
    NotPublishing,
    /// The output queue holds `pending` bytes; this message would take it past `limit`.
    #[error("{pending} bytes of output queued; this message would pass the limit of {limit}")]
    OutputFull { pending: usize, limit: usize },
    /// The payload does not fit an RTMP message (24-bit length) or is empty.
    #[error("a payload of {len} bytes cannot be sent")]
    BadPayload { len: usize },
}
