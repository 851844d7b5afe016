//! Protocol control messages (types 1-6) and user control events.

use super::{msg_type, MessageError};
use crate::reader::Reader;
use crate::rtmp::chunk::CSID_PROTOCOL_CONTROL;
use crate::rtmp::RtmpMessage;

/// User control event type numbers.
pub mod user_control_event {
    pub const STREAM_BEGIN: u16 = 0;
    pub const STREAM_EOF: u16 = 1;
    pub const STREAM_DRY: u16 = 2;
    pub const SET_BUFFER_LENGTH: u16 = 3;
    pub const STREAM_IS_RECORDED: u16 = 4;
    pub const PING_REQUEST: u16 = 6;
    pub const PING_RESPONSE: u16 = 7;
    pub const BUFFER_EMPTY: u16 = 31;
    pub const BUFFER_READY: u16 = 32;
}

use user_control_event as ev;

/// True for message types 1..=6, which are handled by the RTMP layer itself.
pub fn is_protocol_control(type_id: u8) -> bool {
    (msg_type::SET_CHUNK_SIZE..=msg_type::SET_PEER_BANDWIDTH).contains(&type_id)
}

/// Limit type of Set Peer Bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PeerBandwidthLimit {
    Hard = 0,
    Soft = 1,
    Dynamic = 2,
}

/// A user control event (message type 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControlEvent {
    StreamBegin(u32),
    StreamEof(u32),
    StreamDry(u32),
    SetBufferLength {
        stream_id: u32,
        buffer_ms: u32,
    },
    StreamIsRecorded(u32),
    /// Carries the sender's timestamp; answer with PingResponse of the same value.
    PingRequest(u32),
    PingResponse(u32),
    /// Any other event (e.g. BufferEmpty/BufferReady), data kept raw.
    Other {
        event_type: u16,
        data: Vec<u8>,
    },
}

/// A protocol control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlMessage {
    SetChunkSize(u32),
    /// Abort the partial message of this chunk stream id.
    Abort(u32),
    /// Sequence number: bytes received so far.
    Acknowledgement(u32),
    UserControl(UserControlEvent),
    WindowAckSize(u32),
    SetPeerBandwidth {
        window: u32,
        limit: PeerBandwidthLimit,
    },
}

impl ControlMessage {
    /// Parses a control message payload of type `type_id` (1..=6). Extra trailing bytes are
    /// ignored.
    pub fn parse(type_id: u8, payload: &[u8]) -> Result<Self, MessageError> {
        let trunc = |needed| MessageError::Truncated {
            type_id,
            len: payload.len(),
            needed,
        };
        let mut r = Reader::new(payload);
        let mut u32_at = |needed| r.u32_be().map_err(|_| trunc(needed));
        Ok(match type_id {
            msg_type::SET_CHUNK_SIZE => ControlMessage::SetChunkSize(u32_at(4)?),
            msg_type::ABORT => ControlMessage::Abort(u32_at(4)?),
            msg_type::ACKNOWLEDGEMENT => ControlMessage::Acknowledgement(u32_at(4)?),
            msg_type::WINDOW_ACK_SIZE => ControlMessage::WindowAckSize(u32_at(4)?),
            msg_type::SET_PEER_BANDWIDTH => {
                let window = u32_at(5)?;
                let limit = match payload.get(4) {
                    Some(0) => PeerBandwidthLimit::Hard,
                    Some(1) => PeerBandwidthLimit::Soft,
                    Some(2) => PeerBandwidthLimit::Dynamic,
                    Some(&other) => return Err(MessageError::BadLimitType(other)),
                    None => return Err(trunc(5)),
                };
                ControlMessage::SetPeerBandwidth { window, limit }
            }
            msg_type::USER_CONTROL => ControlMessage::UserControl(parse_event(payload)?),
            other => return Err(MessageError::NotControl(other)),
        })
    }

    pub fn type_id(&self) -> u8 {
        match self {
            ControlMessage::SetChunkSize(_) => msg_type::SET_CHUNK_SIZE,
            ControlMessage::Abort(_) => msg_type::ABORT,
            ControlMessage::Acknowledgement(_) => msg_type::ACKNOWLEDGEMENT,
            ControlMessage::UserControl(_) => msg_type::USER_CONTROL,
            ControlMessage::WindowAckSize(_) => msg_type::WINDOW_ACK_SIZE,
            ControlMessage::SetPeerBandwidth { .. } => msg_type::SET_PEER_BANDWIDTH,
        }
    }

    /// The message payload.
    pub fn payload(&self) -> Vec<u8> {
        match self {
            ControlMessage::SetChunkSize(v)
            | ControlMessage::Abort(v)
            | ControlMessage::Acknowledgement(v)
            | ControlMessage::WindowAckSize(v) => v.to_be_bytes().to_vec(),
            ControlMessage::SetPeerBandwidth { window, limit } => {
                let mut p = window.to_be_bytes().to_vec();
                p.push(*limit as u8);
                p
            }
            ControlMessage::UserControl(e) => event_payload(e),
        }
    }

    /// The complete message: chunk stream 2, message stream 0, timestamp 0.
    pub fn to_message(&self) -> RtmpMessage {
        RtmpMessage::new(CSID_PROTOCOL_CONTROL, 0, self.type_id(), 0, self.payload())
    }
}

fn parse_event(payload: &[u8]) -> Result<UserControlEvent, MessageError> {
    let trunc = |needed| MessageError::Truncated {
        type_id: msg_type::USER_CONTROL,
        len: payload.len(),
        needed,
    };
    let mut r = Reader::new(payload);
    let event_type = r.u16_be().map_err(|_| trunc(2))?;
    let mut u32_at = |needed| r.u32_be().map_err(|_| trunc(needed));
    Ok(match event_type {
        ev::STREAM_BEGIN => UserControlEvent::StreamBegin(u32_at(6)?),
        ev::STREAM_EOF => UserControlEvent::StreamEof(u32_at(6)?),
        ev::STREAM_DRY => UserControlEvent::StreamDry(u32_at(6)?),
        ev::SET_BUFFER_LENGTH => {
            let stream_id = u32_at(10)?;
            let buffer_ms = u32_at(10)?;
            UserControlEvent::SetBufferLength {
                stream_id,
                buffer_ms,
            }
        }
        ev::STREAM_IS_RECORDED => UserControlEvent::StreamIsRecorded(u32_at(6)?),
        ev::PING_REQUEST => UserControlEvent::PingRequest(u32_at(6)?),
        ev::PING_RESPONSE => UserControlEvent::PingResponse(u32_at(6)?),
        other => UserControlEvent::Other {
            event_type: other,
            data: payload.get(2..).unwrap_or_default().to_vec(),
        },
    })
}

fn event_payload(e: &UserControlEvent) -> Vec<u8> {
    let (t, data): (u16, Vec<u8>) = match e {
        UserControlEvent::StreamBegin(v) => (ev::STREAM_BEGIN, v.to_be_bytes().to_vec()),
        UserControlEvent::StreamEof(v) => (ev::STREAM_EOF, v.to_be_bytes().to_vec()),
        UserControlEvent::StreamDry(v) => (ev::STREAM_DRY, v.to_be_bytes().to_vec()),
        UserControlEvent::SetBufferLength {
            stream_id,
            buffer_ms,
        } => {
            let mut d = stream_id.to_be_bytes().to_vec();
            d.extend_from_slice(&buffer_ms.to_be_bytes());
            (ev::SET_BUFFER_LENGTH, d)
        }
        UserControlEvent::StreamIsRecorded(v) => (ev::STREAM_IS_RECORDED, v.to_be_bytes().to_vec()),
        UserControlEvent::PingRequest(v) => (ev::PING_REQUEST, v.to_be_bytes().to_vec()),
        UserControlEvent::PingResponse(v) => (ev::PING_RESPONSE, v.to_be_bytes().to_vec()),
        UserControlEvent::Other { event_type, data } => (*event_type, data.clone()),
    };
    let mut p = t.to_be_bytes().to_vec();
    p.extend_from_slice(&data);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_bytes() {
        assert_eq!(
            ControlMessage::SetChunkSize(4096).payload(),
            vec![0, 0, 0x10, 0]
        );
        assert_eq!(
            ControlMessage::SetPeerBandwidth {
                window: 2_500_000,
                limit: PeerBandwidthLimit::Dynamic
            }
            .payload(),
            vec![0x00, 0x26, 0x25, 0xA0, 2]
        );
        assert_eq!(
            ControlMessage::UserControl(UserControlEvent::StreamBegin(1)).payload(),
            vec![0, 0, 0, 0, 0, 1]
        );
        let m = ControlMessage::WindowAckSize(5_000_000).to_message();
        assert_eq!((m.csid, m.type_id, m.stream_id, m.timestamp), (2, 5, 0, 0));
    }

    #[test]
    fn round_trips() {
        let all = [
            ControlMessage::SetChunkSize(60000),
            ControlMessage::Abort(6),
            ControlMessage::Acknowledgement(123_456),
            ControlMessage::WindowAckSize(2_500_000),
            ControlMessage::SetPeerBandwidth {
                window: 1,
                limit: PeerBandwidthLimit::Hard,
            },
            ControlMessage::SetPeerBandwidth {
                window: 1,
                limit: PeerBandwidthLimit::Soft,
            },
            ControlMessage::UserControl(UserControlEvent::StreamBegin(1)),
            ControlMessage::UserControl(UserControlEvent::StreamEof(1)),
            ControlMessage::UserControl(UserControlEvent::StreamDry(2)),
            ControlMessage::UserControl(UserControlEvent::SetBufferLength {
                stream_id: 1,
                buffer_ms: 3000,
            }),
            ControlMessage::UserControl(UserControlEvent::StreamIsRecorded(1)),
            ControlMessage::UserControl(UserControlEvent::PingRequest(99)),
            ControlMessage::UserControl(UserControlEvent::PingResponse(99)),
            ControlMessage::UserControl(UserControlEvent::Other {
                event_type: ev::BUFFER_EMPTY,
                data: vec![0, 0, 0, 1],
            }),
        ];
        for c in all {
            let p = c.payload();
            assert_eq!(ControlMessage::parse(c.type_id(), &p), Ok(c.clone()));
            for cut in 0..p.len() {
                let r = ControlMessage::parse(c.type_id(), &p[..cut]);
                if !matches!(
                    c,
                    ControlMessage::UserControl(UserControlEvent::Other { .. })
                ) || cut < 2
                {
                    assert!(r.is_err(), "{c:?} cut {cut}");
                }
            }
        }
        assert!(is_protocol_control(1) && is_protocol_control(6));
        assert!(!is_protocol_control(8) && !is_protocol_control(0));
    }

    #[test]
    fn errors() {
        assert_eq!(
            ControlMessage::parse(6, &[0, 0, 0, 1, 7]),
            Err(MessageError::BadLimitType(7))
        );
        assert_eq!(
            ControlMessage::parse(9, &[0, 0, 0, 1]),
            Err(MessageError::NotControl(9))
        );
        assert_eq!(
            ControlMessage::parse(1, &[0, 0]),
            Err(MessageError::Truncated {
                type_id: 1,
                len: 2,
                needed: 4
            })
        );
    }
}
