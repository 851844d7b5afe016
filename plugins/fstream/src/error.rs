//! Why a session closes its connection early. The protocol has no error channel: every one of
//! these closes at once without a byte sent, and is logged.

use fstream_abi::names::NameError;
use fstream_media::flv::FlvError;
use fstream_wire::{ActionError, WireError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Refusal {
    #[error("bad preamble: {0}")]
    Preamble(#[from] WireError),
    #[error("the preamble did not arrive within {0} ms")]
    PreambleTimeout(u64),
    #[error("bad action: {0}")]
    Action(#[from] ActionError),
    #[error("bad {what} name {name:?}: {source}")]
    Name {
        what: &'static str,
        name: String,
        source: NameError,
    },
    #[error("bufsize {asked} exceeds this server's limit of {limit} bytes")]
    Bufsize { asked: u64, limit: u64 },
    #[error("authentication denied: {0}")]
    Denied(String),
    #[error("the stream {0} is live and this server rejects a second broadcaster")]
    Busy(String),
    #[error("publishing refused: {0}")]
    PublishRefused(String),
    #[error("more than {0} bytes arrived before the broadcast could start")]
    PendingOverflow(usize),
    #[error("broken FLV stream: {0}")]
    Flv(#[from] FlvError),
    #[error("no token issued: {0}")]
    NoToken(String),
    #[error("watch refused: {0}")]
    Watch(&'static str),
}

/// Checks one part of a stream name (a user or a channel) before anything is asked of the host.
pub fn check_name(what: &'static str, name: &str) -> Result<(), Refusal> {
    fstream_abi::names::validate_part(name).map_err(|source| Refusal::Name {
        what,
        name: name.chars().take(64).collect(),
        source,
    })
}
