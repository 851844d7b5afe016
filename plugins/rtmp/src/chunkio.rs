//! Chunk I/O of one connection: the decoder with its limits and acknowledgement window, and the
//! writer that chunks our own messages into one buffer per session call.

use fstream_abi::{payload_from_vec, Payload};
use fstream_media::{
    amf0::{self, Amf0Value},
    rtmp::{
        chunk::{ChunkEncoder, ChunkError, RtmpMessage},
        message::{msg_type, Command, CommandEncoding, ControlMessage, UserControlEvent},
    },
};

use crate::error::EncodeError;

/// Chunk stream of connection-level commands (`_result`, `_error`, app handler calls).
pub const CSID_COMMAND: u32 = 3;
/// Chunk stream of stream-level commands and data (`onStatus`, `|RtmpSampleAccess`).
pub const CSID_STREAM: u32 = 5;
/// Chunk streams of media sent to players (see [`crate::encoder`]).
pub const CSID_AUDIO: u32 = 6;
pub const CSID_VIDEO: u32 = 7;
pub const CSID_DATA: u32 = 8;

/// The receiving side lives in core/media, shared with the RTMP client session.
pub use fstream_media::rtmp::chunk_in::ChunkIn;

/// The sending side for the session's own messages. Everything written during one session call
/// goes out as one `Write` action.
#[derive(Debug)]
pub struct ChunkOut {
    encoder: ChunkEncoder,
    /// The encoding of commands: AMF3 (type 17) for clients that connected with
    /// `objectEncoding: 3`.
    pub encoding: CommandEncoding,
    buf: Vec<u8>,
}

impl Default for ChunkOut {
    fn default() -> Self {
        Self {
            encoder: ChunkEncoder::default(),
            encoding: CommandEncoding::Amf0,
            buf: Vec::new(),
        }
    }
}

impl ChunkOut {
    pub fn chunk_size(&self) -> u32 {
        self.encoder.chunk_size()
    }

    /// Takes effect for messages written after it (send Set Chunk Size first).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        self.encoder.set_chunk_size(size)
    }

    /// Raw bytes (the handshake reply).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn message(&mut self, msg: &RtmpMessage) -> Result<(), EncodeError> {
        self.encoder
            .encode_message_into(&mut self.buf, msg.csid, msg)?;
        Ok(())
    }

    pub fn control(&mut self, c: &ControlMessage) -> Result<(), EncodeError> {
        self.message(&c.to_message())
    }

    pub fn user_control(&mut self, e: UserControlEvent) -> Result<(), EncodeError> {
        self.control(&ControlMessage::UserControl(e))
    }

    pub fn command(&mut self, csid: u32, msid: u32, cmd: &Command) -> Result<(), EncodeError> {
        let msg = cmd.to_message(self.encoding, csid, msid)?;
        self.message(&msg)
    }

    /// An AMF0 data message (type 18).
    pub fn data(&mut self, csid: u32, msid: u32, values: &[Amf0Value]) -> Result<(), EncodeError> {
        let mut payload = Vec::new();
        amf0::encode_all(values, &mut payload)?;
        self.message(&RtmpMessage::new(
            csid,
            0,
            msg_type::DATA_AMF0,
            msid,
            payload,
        ))
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// What was written since the last call, as one payload.
    pub fn take(&mut self) -> Option<Payload> {
        if self.buf.is_empty() {
            return None;
        }
        Some(payload_from_vec(std::mem::take(&mut self.buf)))
    }
}

#[cfg(test)]
mod tests {
    use fstream_media::rtmp::chunk::ChunkLimits;

    use super::*;

    #[test]
    fn acknowledges_every_window() {
        let mut input = ChunkIn::new(ChunkLimits::default());
        input.count_handshake(3073);
        input.push(&[0u8; 1000]);
        assert_eq!(input.ack_due(), None, "no window announced yet");
        input.set_window(2500);
        assert_eq!(input.ack_due(), Some(4073));
        assert_eq!(input.ack_due(), None);
        input.push(&[0u8; 2499]);
        assert_eq!(input.ack_due(), None);
        input.push(&[0u8; 1]);
        assert_eq!(input.ack_due(), Some(6573));
        input.set_window(0);
        input.push(&[0u8; 5000]);
        assert_eq!(input.ack_due(), None);
    }

    #[test]
    fn writes_collect_into_one_payload() {
        let mut out = ChunkOut::default();
        assert!(out.take().is_none());
        out.control(&ControlMessage::SetChunkSize(4096)).unwrap();
        out.set_chunk_size(4096).unwrap();
        out.user_control(UserControlEvent::StreamBegin(1)).unwrap();
        let p = out.take().unwrap();
        assert_eq!(p.len(), 16 + 18);
        assert!(out.is_empty());
    }
}
