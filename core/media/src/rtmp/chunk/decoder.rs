//! Sans-IO chunk stream decoder.

use std::collections::HashMap;

use bytes::{Buf, BytesMut};

use super::{
    ChunkError, ChunkLimits, RtmpMessage, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP,
    MAX_EFFECTIVE_CHUNK_SIZE,
};
use crate::reader::{Eof, Reader};

/// Per chunk stream header state (what fmt 1/2/3 chunks inherit).
#[derive(Debug, Default)]
struct StreamState {
    has_header: bool,
    /// Timestamp of the last message started on this chunk stream.
    timestamp: u32,
    /// Delta applied by a fmt 3 chunk that starts a new message.
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last fmt 0/1/2 header used an extended timestamp, so fmt 3 chunks carry one too.
    extended: bool,
    /// Payload received so far of a message spanning several chunks.
    partial: Option<BytesMut>,
}

/// A parsed chunk header (basic + message header + extended timestamp).
#[derive(Debug)]
struct ChunkHeader {
    fmt: u8,
    csid: u32,
    len: usize,
    ts_field: Option<u32>,
    length: Option<u32>,
    type_id: Option<u8>,
    stream_id: Option<u32>,
    ext: Option<u32>,
}

enum Step {
    NeedMore,
    Chunk,
    Message(RtmpMessage),
}

/// Reassembles RTMP messages from chunks.
///
/// Feed bytes with [`ChunkDecoder::push`], then call [`ChunkDecoder::next_message`] until it
/// returns `Ok(None)`. The decoder does not interpret messages: when the peer sends Set Chunk
/// Size or Abort, the session calls [`ChunkDecoder::set_chunk_size`] / [`ChunkDecoder::abort`]
/// before asking for the next message (input is parsed lazily, so later chunks already pushed
/// are decoded with the new size).
///
/// Timestamps: fmt 0 carries the absolute timestamp, fmt 1/2 a delta; a fmt 3 chunk starting a
/// new message repeats the previous delta, where the delta after a fmt 0 header is that header's
/// timestamp field (as FFmpeg and librtmp read and write it). Timestamps wrap at 2^32.
#[derive(Debug)]
pub struct ChunkDecoder {
    buf: BytesMut,
    chunk_size: u32,
    limits: ChunkLimits,
    streams: HashMap<u32, StreamState>,
    pending: usize,
    received: u64,
}

impl ChunkDecoder {
    pub fn new(limits: ChunkLimits) -> Self {
        ChunkDecoder {
            buf: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            limits,
            streams: HashMap::new(),
            pending: 0,
            received: 0,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.received = self.received.wrapping_add(data.len() as u64);
    }

    /// Total bytes pushed so far (for Acknowledgement sequence numbers; wraps as u32 on the wire).
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Bytes pushed but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The current incoming chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Applies the peer's Set Chunk Size. Values above 2^24 - 1 are clamped (no message can use
    /// more); 0 or a set top bit is invalid.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > 0x7FFF_FFFF {
            return Err(ChunkError::InvalidChunkSize(size));
        }
        let size = size.min(MAX_EFFECTIVE_CHUNK_SIZE);
        if size > self.limits.max_chunk_size {
            return Err(ChunkError::ChunkSizeTooLarge {
                size,
                limit: self.limits.max_chunk_size,
            });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Applies the peer's Abort Message: drops the partial message of `csid`, if any.
    pub fn abort(&mut self, csid: u32) {
        if let Some(p) = self.streams.get_mut(&csid).and_then(|s| s.partial.take()) {
            self.pending = self.pending.saturating_sub(p.len());
        }
    }

    /// The next complete message, or `Ok(None)` when more input is needed.
    pub fn next_message(&mut self) -> Result<Option<RtmpMessage>, ChunkError> {
        loop {
            match self.step()? {
                Step::NeedMore => return Ok(None),
                Step::Chunk => {}
                Step::Message(m) => return Ok(Some(m)),
            }
        }
    }

    fn parse_header(&self) -> Result<ChunkHeader, Eof> {
        let mut r = Reader::new(&self.buf);
        let b0 = r.u8()?;
        let fmt = b0 >> 6;
        let csid = match b0 & 0x3F {
            0 => 64 + u32::from(r.u8()?),
            1 => {
                let lo = r.u8()?;
                let hi = r.u8()?;
                64 + u32::from(lo) + (u32::from(hi) << 8)
            }
            n => u32::from(n),
        };
        let mut h = ChunkHeader {
            fmt,
            csid,
            len: 0,
            ts_field: None,
            length: None,
            type_id: None,
            stream_id: None,
            ext: None,
        };
        if fmt <= 2 {
            h.ts_field = Some(r.u24_be()?);
        }
        if fmt <= 1 {
            h.length = Some(r.u24_be()?);
            h.type_id = Some(r.u8()?);
        }
        if fmt == 0 {
            h.stream_id = Some(r.u32_le()?);
        }
        let extended = match h.ts_field {
            Some(f) => f == EXTENDED_TIMESTAMP,
            None => self.streams.get(&csid).is_some_and(|s| s.extended),
        };
        if extended {
            h.ext = Some(r.u32_be()?);
        }
        h.len = r.pos();
        Ok(h)
    }

    fn step(&mut self) -> Result<Step, ChunkError> {
        let Ok(h) = self.parse_header() else {
            return Ok(Step::NeedMore);
        };
        let (csid, fmt) = (h.csid, h.fmt);
        let existing = self.streams.get(&csid);
        if existing.is_none() && self.streams.len() >= self.limits.max_chunk_streams {
            return Err(ChunkError::TooManyChunkStreams {
                limit: self.limits.max_chunk_streams,
            });
        }
        let has_header = existing.is_some_and(|s| s.has_header);
        let received = existing.and_then(|s| s.partial.as_ref()).map(BytesMut::len);
        // fmt 1 carries length and type, so a fresh chunk stream may start with it (stream id 0,
        // base timestamp 0); fmt 2/3 would have to guess the length.
        if !has_header && fmt >= 2 {
            return Err(ChunkError::MissingPreviousHeader { csid, fmt });
        }
        if received.is_some() && fmt != 3 {
            return Err(ChunkError::InterleavedHeader { csid, fmt });
        }
        let length = h.length.unwrap_or_else(|| existing.map_or(0, |s| s.length));
        if length > self.limits.max_message_size {
            return Err(ChunkError::MessageTooLarge {
                csid,
                size: length,
                limit: self.limits.max_message_size,
            });
        }
        let remaining = (length as usize).saturating_sub(received.unwrap_or(0));
        let payload_len = remaining.min(self.chunk_size as usize);
        if self.buf.len() < h.len + payload_len {
            return Ok(Step::NeedMore);
        }
        let whole = received.is_none() && payload_len == remaining;
        if !whole && self.pending + payload_len > self.limits.max_pending_bytes {
            return Err(ChunkError::PendingBytesExceeded {
                limit: self.limits.max_pending_bytes,
            });
        }

        let state = self.streams.entry(csid).or_default();
        if received.is_none() {
            // First chunk of a message: resolve its header.
            let ts_field = h.ts_field.unwrap_or(0);
            match fmt {
                0 => {
                    let ts = h.ext.unwrap_or(ts_field);
                    state.timestamp = ts;
                    state.delta = ts;
                }
                1 | 2 => {
                    let delta = h.ext.unwrap_or(ts_field);
                    state.delta = delta;
                    state.timestamp = state.timestamp.wrapping_add(delta);
                }
                _ => {
                    let delta = h.ext.unwrap_or(state.delta);
                    state.timestamp = state.timestamp.wrapping_add(delta);
                }
            }
            if let Some(f) = h.ts_field {
                state.extended = f == EXTENDED_TIMESTAMP;
            }
            if let Some(l) = h.length {
                state.length = l;
            }
            if let Some(t) = h.type_id {
                state.type_id = t;
            }
            if let Some(s) = h.stream_id {
                state.stream_id = s;
            }
            state.has_header = true;
        }
        self.buf.advance(h.len);

        let payload = if whole {
            // Common case (message fits one chunk): hand out the buffer slice without copying.
            self.buf.split_to(payload_len).freeze()
        } else {
            let partial = state
                .partial
                .get_or_insert_with(|| BytesMut::with_capacity(remaining.min(1 << 16)));
            partial.extend_from_slice(self.buf.get(..payload_len).unwrap_or_default());
            self.buf.advance(payload_len);
            self.pending += payload_len;
            if partial.len() < length as usize {
                return Ok(Step::Chunk);
            }
            let done = state.partial.take().unwrap_or_default();
            self.pending = self.pending.saturating_sub(done.len());
            done.freeze()
        };
        Ok(Step::Message(RtmpMessage {
            csid,
            timestamp: state.timestamp,
            type_id: state.type_id,
            stream_id: state.stream_id,
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::chunk::{encode_message, ChunkEncoder, CSID_PROTOCOL_CONTROL};

    fn dec() -> ChunkDecoder {
        ChunkDecoder::new(ChunkLimits::default())
    }

    fn drain(d: &mut ChunkDecoder) -> Vec<RtmpMessage> {
        let mut v = Vec::new();
        while let Some(m) = d.next_message().unwrap() {
            v.push(m);
        }
        v
    }

    fn msg(csid: u32, ts: u32, type_id: u8, sid: u32, len: usize) -> RtmpMessage {
        RtmpMessage::new(
            csid,
            ts,
            type_id,
            sid,
            (0..len).map(|i| (i * 31 % 256) as u8).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn fmt0_single_chunk_exact_bytes() {
        let mut d = dec();
        d.push(&[
            0x02, // fmt 0, csid 2
            0x00, 0x00, 0x00, // timestamp
            0x00, 0x00, 0x04, // length
            0x01, // type: set chunk size
            0x00, 0x00, 0x00, 0x00, // stream id (LE)
            0x00, 0x00, 0x10, 0x00, // payload 4096
        ]);
        let m = d.next_message().unwrap().unwrap();
        assert_eq!(
            m,
            RtmpMessage::new(CSID_PROTOCOL_CONTROL, 0, 1, 0, vec![0, 0, 0x10, 0])
        );
        assert_eq!(d.next_message(), Ok(None));
        assert_eq!(d.bytes_received(), 16);
    }

    #[test]
    fn multi_chunk_message_byte_by_byte() {
        let m = msg(6, 1000, 9, 1, 1000);
        let bytes = encode_message(128, 6, &m).unwrap();
        // 1000 bytes at 128 per chunk: 8 chunks; 12-byte first header + 7 one-byte headers.
        assert_eq!(bytes.len(), 12 + 1000 + 7);
        let mut d = dec();
        let mut got = Vec::new();
        for b in &bytes {
            d.push(&[*b]);
            got.extend(drain(&mut d));
        }
        assert_eq!(got, vec![m]);
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.pending, 0);
    }

    #[test]
    fn fmt1_fmt2_fmt3_deltas_accumulate() {
        let mut b = Vec::new();
        // fmt 0 csid 4: ts 1000, len 2, type 8, stream 1
        b.extend_from_slice(&[0x04, 0x00, 0x03, 0xE8, 0, 0, 2, 8, 1, 0, 0, 0, 0xAA, 0xBB]);
        // fmt 1 csid 4: delta 20, len 1, type 8
        b.extend_from_slice(&[0x44, 0, 0, 20, 0, 0, 1, 8, 0xCC]);
        // fmt 2 csid 4: delta 23
        b.extend_from_slice(&[0x84, 0, 0, 23, 0xDD]);
        // fmt 3 csid 4: new message, same delta 23
        b.extend_from_slice(&[0xC4, 0xEE]);
        let mut d = dec();
        d.push(&b);
        let got = drain(&mut d);
        let ts: Vec<u32> = got.iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, vec![1000, 1020, 1043, 1066]);
        assert!(got.iter().all(|m| m.stream_id == 1 && m.type_id == 8));
        assert_eq!(&got[0].payload[..], &[0xAA, 0xBB]);
        assert_eq!(&got[3].payload[..], &[0xEE]);
    }

    #[test]
    fn fmt3_after_fmt0_reuses_the_timestamp_field_as_delta() {
        // FFmpeg writes fmt 3 after fmt 0 when the new delta equals the previous field.
        let mut d = dec();
        d.push(&[0x05, 0, 0, 23, 0, 0, 1, 8, 1, 0, 0, 0, 0x01, 0xC5, 0x02]);
        let got = drain(&mut d);
        assert_eq!(got[1].timestamp, 46);
    }

    #[test]
    fn extended_timestamps() {
        let big = 0x0100_0000 + 5;
        let m = msg(3, big, 20, 0, 300);
        let bytes = encode_message(128, 3, &m).unwrap();
        // 3 chunks, each with the extended timestamp: 12+4, then 1+4 twice.
        assert_eq!(bytes.len(), 16 + 300 + 2 * 5);
        assert_eq!(&bytes[1..4], &[0xFF, 0xFF, 0xFF]);
        assert_eq!(&bytes[12..16], &big.to_be_bytes());
        assert_eq!(
            &bytes[16 + 128..16 + 128 + 5],
            &[0xC3, 0x01, 0x00, 0x00, 0x05]
        );
        let mut d = dec();
        for piece in bytes.chunks(3) {
            d.push(piece);
        }
        assert_eq!(drain(&mut d), vec![m]);

        // A fmt 3 chunk starting a new message after an extended fmt 1 header carries the
        // delta in its own extended timestamp.
        let mut b = vec![0x03, 0, 0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 0x01];
        b.extend_from_slice(&[0x43, 0xFF, 0xFF, 0xFF, 0, 0, 1, 9]);
        b.extend_from_slice(&0x0100_0000u32.to_be_bytes());
        b.push(0x02);
        b.push(0xC3);
        b.extend_from_slice(&0x0100_0000u32.to_be_bytes());
        b.push(0x03);
        let mut d = dec();
        d.push(&b);
        let ts: Vec<u32> = drain(&mut d).iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, vec![0, 0x0100_0000, 0x0200_0000]);
    }

    #[test]
    fn timestamps_wrap() {
        let mut d = dec();
        let mut b = vec![0x03, 0xFF, 0xFF, 0xFF, 0, 0, 0, 9, 0, 0, 0, 0];
        b.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        b.extend_from_slice(&[0x83, 0, 0, 0x20]);
        d.push(&b);
        let ts: Vec<u32> = drain(&mut d).iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, vec![0xFFFF_FFF0, 0x10]);
    }

    #[test]
    fn two_and_three_byte_csids() {
        for csid in [2, 63, 64, 319, 320, 1000, 65599] {
            let m = msg(csid, 7, 8, 1, 200);
            let bytes = encode_message(64, csid, &m).unwrap();
            let basic = match csid {
                2..=63 => 1,
                64..=319 => 2,
                _ => 3,
            };
            assert_eq!(bytes.len(), basic + 11 + 200 + 3 * basic, "csid {csid}");
            let mut d = dec();
            d.set_chunk_size(64).unwrap();
            for b in &bytes {
                d.push(&[*b]);
            }
            assert_eq!(drain(&mut d), vec![m], "csid {csid}");
        }
        // 3-byte form exact bytes: csid 320 = 64 + 256 -> [0x01, 0x00, 0x01]
        let bytes = encode_message(128, 320, &msg(320, 0, 8, 0, 0)).unwrap();
        assert_eq!(&bytes[..3], &[0x01, 0x00, 0x01]);
        let bytes = encode_message(128, 100, &msg(100, 0, 8, 0, 0)).unwrap();
        assert_eq!(&bytes[..2], &[0x00, 36]);
    }

    #[test]
    fn interleaved_chunk_streams() {
        let a = msg(4, 0, 8, 1, 300);
        let v = msg(6, 0, 9, 1, 300);
        let ea = encode_message(128, 4, &a).unwrap();
        let ev = encode_message(128, 6, &v).unwrap();
        // Interleave chunk by chunk: a0 v0 a1 v1 a2 v2.
        let split = |e: &[u8]| vec![e[..140].to_vec(), e[140..269].to_vec(), e[269..].to_vec()];
        let (pa, pv) = (split(&ea), split(&ev));
        let mut d = dec();
        for i in 0..3 {
            d.push(&pa[i]);
            d.push(&pv[i]);
        }
        assert_eq!(drain(&mut d), vec![a, v]);
    }

    #[test]
    fn set_chunk_size_and_abort() {
        let mut d = dec();
        assert_eq!(d.set_chunk_size(0), Err(ChunkError::InvalidChunkSize(0)));
        assert_eq!(
            d.set_chunk_size(0x8000_0000),
            Err(ChunkError::InvalidChunkSize(0x8000_0000))
        );
        d.set_chunk_size(0x7FFF_FFFF).unwrap();
        assert_eq!(d.chunk_size(), MAX_EFFECTIVE_CHUNK_SIZE);
        let mut small = ChunkDecoder::new(ChunkLimits {
            max_chunk_size: 4096,
            ..ChunkLimits::default()
        });
        assert_eq!(
            small.set_chunk_size(8192),
            Err(ChunkError::ChunkSizeTooLarge {
                size: 8192,
                limit: 4096
            })
        );

        // Abort: first chunk of a 300-byte message, abort, then a fresh message on the same csid.
        let m = msg(5, 0, 9, 1, 300);
        let e = encode_message(128, 5, &m).unwrap();
        let mut d = dec();
        d.push(&e[..140]);
        assert_eq!(d.next_message(), Ok(None));
        assert_eq!(d.pending, 128);
        d.abort(5);
        assert_eq!(d.pending, 0);
        d.abort(99);
        d.push(&e);
        assert_eq!(drain(&mut d), vec![m]);
    }

    #[test]
    fn chunk_size_change_applies_to_following_chunks() {
        let enc = ChunkEncoder::new(4096).unwrap();
        let m = msg(6, 0, 9, 1, 5000);
        let mut d = dec();
        let mut e = Vec::new();
        let scs = RtmpMessage::new(2, 0, 1, 0, 4096u32.to_be_bytes().to_vec());
        ChunkEncoder::default()
            .encode_message_into(&mut e, 2, &scs)
            .unwrap();
        enc.encode_message_into(&mut e, 6, &m).unwrap();
        d.push(&e);
        let first = d.next_message().unwrap().unwrap();
        assert_eq!(first.type_id, 1);
        d.set_chunk_size(4096).unwrap();
        assert_eq!(d.next_message(), Ok(Some(m)));
    }

    #[test]
    fn protocol_errors() {
        let mut d = dec();
        d.push(&[0xC7, 0x00]);
        assert_eq!(
            d.next_message(),
            Err(ChunkError::MissingPreviousHeader { csid: 7, fmt: 3 })
        );
        let mut d = dec();
        d.push(&[0x87, 0, 0, 0]);
        assert_eq!(
            d.next_message(),
            Err(ChunkError::MissingPreviousHeader { csid: 7, fmt: 2 })
        );
        // fmt 1 on a fresh chunk stream is accepted.
        let mut d = dec();
        d.push(&[0x47, 0, 0, 10, 0, 0, 1, 8, 0x55]);
        let m = d.next_message().unwrap().unwrap();
        assert_eq!((m.timestamp, m.stream_id, m.type_id), (10, 0, 8));

        // A new header in the middle of a message.
        let e = encode_message(128, 5, &msg(5, 0, 9, 1, 300)).unwrap();
        let mut d = dec();
        d.push(&e[..140]);
        d.push(&[0x05, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 0]);
        assert_eq!(
            d.next_message(),
            Err(ChunkError::InterleavedHeader { csid: 5, fmt: 0 })
        );

        let mut d = ChunkDecoder::new(ChunkLimits {
            max_message_size: 100,
            ..ChunkLimits::default()
        });
        d.push(&[0x05, 0, 0, 0, 0, 0, 101, 9, 1, 0, 0, 0]);
        assert_eq!(
            d.next_message(),
            Err(ChunkError::MessageTooLarge {
                csid: 5,
                size: 101,
                limit: 100
            })
        );

        let mut d = ChunkDecoder::new(ChunkLimits {
            max_chunk_streams: 2,
            ..ChunkLimits::default()
        });
        for csid in 3..5u8 {
            d.push(&[csid, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0]);
        }
        assert_eq!(drain(&mut d).len(), 2);
        d.push(&[0x05, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0]);
        assert_eq!(
            d.next_message(),
            Err(ChunkError::TooManyChunkStreams { limit: 2 })
        );

        let mut d = ChunkDecoder::new(ChunkLimits {
            max_pending_bytes: 200,
            ..ChunkLimits::default()
        });
        for csid in [3, 4] {
            let e = encode_message(128, csid, &msg(csid, 0, 9, 1, 1000)).unwrap();
            d.push(&e[..140]);
        }
        assert_eq!(
            d.next_message(),
            Err(ChunkError::PendingBytesExceeded { limit: 200 })
        );
    }

    #[test]
    fn zero_length_messages() {
        let mut d = dec();
        d.push(&[0x03, 0, 0, 5, 0, 0, 0, 20, 0, 0, 0, 0, 0xC3, 0xC3]);
        let got = drain(&mut d);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|m| m.payload.is_empty()));
        assert_eq!(got[2].timestamp, 15);
    }
}
