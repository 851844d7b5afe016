//! The receiving side of one RTMP connection, for servers and clients alike: the chunk
//! decoder with its limits, and when to acknowledge (the peer's Window Acknowledgement Size
//! counted over the handshake and the chunks, as the peer counts them).

use super::chunk::{ChunkDecoder, ChunkError, ChunkLimits, RtmpMessage};

/// The receiving side: chunks in, messages out, and when to acknowledge.
#[derive(Debug)]
pub struct ChunkIn {
    decoder: ChunkDecoder,
    /// The peer's Window Acknowledgement Size: we acknowledge every this many bytes.
    window: Option<u32>,
    /// Bytes of the handshake, counted in acknowledgements as the peer counts them.
    handshake_bytes: u64,
    /// The byte count at our last acknowledgement.
    acked: u64,
}

impl ChunkIn {
    pub fn new(limits: ChunkLimits) -> Self {
        Self {
            decoder: ChunkDecoder::new(limits),
            window: None,
            handshake_bytes: 0,
            acked: 0,
        }
    }

    pub fn count_handshake(&mut self, n: usize) {
        self.handshake_bytes += n as u64;
    }

    pub fn push(&mut self, data: &[u8]) {
        self.decoder.push(data);
    }

    pub fn next_message(&mut self) -> Result<Option<RtmpMessage>, ChunkError> {
        self.decoder.next_message()
    }

    /// Bytes received and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.decoder.buffered()
    }

    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        self.decoder.set_chunk_size(size)
    }

    pub fn abort(&mut self, csid: u32) {
        self.decoder.abort(csid);
    }

    pub fn set_window(&mut self, window: u32) {
        self.window = (window > 0).then_some(window);
    }

    fn received(&self) -> u64 {
        self.handshake_bytes + self.decoder.bytes_received()
    }

    /// The sequence number to acknowledge, once a window's worth arrived since the last one.
    pub fn ack_due(&mut self) -> Option<u32> {
        let window = u64::from(self.window?);
        let received = self.received();
        if received.saturating_sub(self.acked) < window {
            return None;
        }
        self.acked = received;
        // The field is 32 bits and wraps, as every implementation does.
        Some(received as u32)
    }
}
