//! RTMP message payloads: type ids, protocol control messages, user control events, commands
//! (AMF0 and AMF3 encodings), data messages and aggregate splitting.

mod aggregate;
mod command;
mod control;

pub use aggregate::split_aggregate;
pub use command::{parse_data, Command, CommandEncoding, Status};
pub use control::{
    is_protocol_control, user_control_event, ControlMessage, PeerBandwidthLimit, UserControlEvent,
};

use crate::amf0::Amf0Error;

/// RTMP message type ids.
pub mod msg_type {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// Errors from parsing or building message payloads.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageError {
    #[error("message type {type_id}: payload of {len} bytes is too short ({needed} needed)")]
    Truncated {
        type_id: u8,
        len: usize,
        needed: usize,
    },
    #[error("message type {0} is not a protocol control message")]
    NotControl(u8),
    #[error("message type {0} is not a command message (17 or 20)")]
    NotCommand(u8),
    #[error("message type {0} is not a data message (15 or 18)")]
    NotData(u8),
    #[error("invalid Set Peer Bandwidth limit type {0}")]
    BadLimitType(u8),
    #[error("command message does not start with a command name string")]
    MissingCommandName,
    #[error("command AMF: {0}")]
    Amf0(#[from] Amf0Error),
    #[error("aggregate message malformed at byte {offset}: {reason}")]
    BadAggregate { offset: usize, reason: &'static str },
}
