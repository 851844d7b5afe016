//! RTMP: handshake state machines, chunk stream decoding/encoding and typed messages.
//!
//! The pieces are sans-IO: a session task owns the socket, feeds received bytes to
//! [`handshake::ServerHandshake`] and then to [`chunk::ChunkDecoder`], interprets the resulting
//! [`RtmpMessage`]s with [`message`], and writes what [`chunk::ChunkEncoder`] produces.
//!
//! ```
//! use fstream_media::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits};
//! use fstream_media::rtmp::handshake::{ClientHandshake, HandshakeStatus, ServerHandshake};
//! use fstream_media::rtmp::message::{msg_type, Command, CommandEncoding, Status};
//! use fstream_media::{amf0::Amf0Value, AmfLimits};
//!
//! let mut rng = rand::thread_rng();
//! let mut client = ClientHandshake::new(0, &mut rng);
//! let mut server = ServerHandshake::new(0, &mut rng);
//!
//! // Handshake: C0C1 -> S0S1S2 -> C2 (+ the client's first chunks).
//! let mut to_client = Vec::new();
//! server.feed(&client.c0c1(), &mut to_client).unwrap();
//! let mut to_server = Vec::new();
//! client.feed(&to_client, &mut to_server).unwrap();
//! let connect = Command::new("connect", 1.0, Amf0Value::object([("app", "live".into())]), vec![]);
//! let msg = connect.to_message(CommandEncoding::Amf0, 3, 0).unwrap();
//! ChunkEncoder::default().encode_message_into(&mut to_server, 3, &msg).unwrap();
//! assert_eq!(server.feed(&to_server, &mut Vec::new()), Ok(HandshakeStatus::Complete));
//!
//! // Chunks: the leftover bytes are the start of the chunk stream.
//! let mut chunks = ChunkDecoder::new(ChunkLimits::default());
//! chunks.push(&server.take_leftover());
//! let m = chunks.next_message().unwrap().unwrap();
//! assert_eq!(m.type_id, msg_type::COMMAND_AMF0);
//! let cmd = Command::parse(m.type_id, &m.payload, &AmfLimits::default()).unwrap();
//! assert_eq!(cmd.command_object.get_str("app"), Some("live"));
//!
//! // Reply, encoded once.
//! let info = Status::status("NetConnection.Connect.Success", "Connection succeeded.");
//! let reply = Command::result(cmd.transaction_id, Amf0Value::Null, vec![info.to_amf0()]);
//! let bytes = ChunkEncoder::default()
//!     .encode_message(3, &reply.to_message(CommandEncoding::Amf0, 3, 0).unwrap())
//!     .unwrap();
//! assert!(!bytes.is_empty());
//! ```

pub mod chunk;
pub mod chunk_in;
pub mod handshake;
pub mod message;

use bytes::Bytes;

use crate::flv::{FlvTag, TagType};

/// One complete RTMP message, as reassembled from chunks or to be chunked.
///
/// The payload is `Bytes` so one received media message can be handed to many consumers
/// (players, recorder, other protocols) without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpMessage {
    /// Chunk stream the message arrived on (or should be sent on).
    pub csid: u32,
    /// Absolute timestamp in milliseconds (wraps at 2^32).
    pub timestamp: u32,
    /// Message type id, see [`message::msg_type`].
    pub type_id: u8,
    /// Message stream id (0 for the connection's control stream).
    pub stream_id: u32,
    pub payload: Bytes,
}

impl RtmpMessage {
    pub fn new(
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: impl Into<Bytes>,
    ) -> Self {
        RtmpMessage {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: payload.into(),
        }
    }

    /// The FLV tag for an audio (8), video (9) or AMF0 data (18) message; `None` otherwise.
    /// Data messages keep their payload as is: strip `@setDataFrame` first if needed.
    pub fn to_flv_tag(&self) -> Option<FlvTag> {
        Some(FlvTag {
            tag_type: TagType::from_u8(self.type_id)?,
            timestamp: self.timestamp,
            data: self.payload.clone(),
        })
    }

    /// A message carrying an FLV tag (the tag type is the message type).
    pub fn from_flv_tag(tag: &FlvTag, csid: u32, stream_id: u32) -> Self {
        RtmpMessage {
            csid,
            timestamp: tag.timestamp,
            type_id: tag.tag_type.as_u8(),
            stream_id,
            payload: tag.data.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flv_bridge() {
        let tag = FlvTag::new(TagType::Video, 40, vec![0x17, 1]);
        let m = RtmpMessage::from_flv_tag(&tag, 6, 1);
        assert_eq!(m.type_id, 9);
        assert_eq!(m.to_flv_tag(), Some(tag));
        assert_eq!(RtmpMessage::new(3, 0, 20, 0, vec![]).to_flv_tag(), None);
    }
}
