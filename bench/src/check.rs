//! Validation of everything a viewer receives, from its first byte.
//!
//! Three sans-IO checkers, fed the bytes exactly as they came off the socket:
//!
//! - [`RtmpCheck`]: the chunk stream, parsed strictly with core/media's [`ChunkDecoder`] (Set
//!   Chunk Size and Abort applied as they arrive), then every message decoded: protocol control
//!   and user control messages, commands (AMF0 or AMF3), data messages (AMF0), aggregates, and
//!   audio/video payloads through [`MediaCheck`].
//! - [`FlvCheck`]: an FLV byte stream through [`FlvDemuxer`] (the file header first, then every
//!   tag, with each PreviousTagSize compared with the tag it follows) and the same media checks.
//! - [`RawCheck`]: the stamped raw stream of the bench's own publisher (see
//!   [`crate::publisher::fstream_raw`]): whole blocks from the first byte, consecutive sequence
//!   numbers, stamps that never go back, zero padding.
//!
//! Media rules ([`MediaCheck`]): every audio and video payload must classify as FLV-style data
//! of a known codec; AVC/HEVC decoder configurations must parse and every coded AVC/HEVC frame
//! must split exactly into length-prefixed NAL units; a coded frame needs its decoder
//! configuration first (AVC, HEVC, AAC, Enhanced RTMP codecs); the first coded video frame after
//! a video sequence header, or after a publication boundary, must be a keyframe; audio and video
//! timestamps each never go backwards, except across a publication boundary the checker can see
//! (RTMP StreamBegin/StreamEOF and the `Play.*` statuses that announce a publisher change).
//!
//! Payloads are inspected in place: nothing here copies media bytes (the decoders themselves
//! buffer what they are fed).

use std::{collections::VecDeque, fmt};

use fstream_media::{
    flv::{
        self, AudioCodec, AudioPacket, FlvDemuxer, TagType, VideoCodec, VideoPacket, SET_DATA_FRAME,
    },
    rtmp::{
        chunk::{ChunkDecoder, ChunkLimits, CSID_PROTOCOL_CONTROL},
        message::{
            msg_type, parse_data, split_aggregate, Command, ControlMessage, UserControlEvent,
        },
        RtmpMessage,
    },
    AmfLimits,
};

use crate::publisher;

/// Largest message or tag a viewer accepts: far above any frame of the streams we bench, and
/// small enough that a chunk header read from the wrong place (which claims a random 24-bit
/// length) is refused at once instead of being waited for.
pub const MAX_MESSAGE: u32 = 4 << 20;

/// The reason a viewer's bytes are not a valid stream: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    /// Offset in the viewer's byte stream (after the RTMP handshake, or from the fstream
    /// preamble's end) at or just before which the problem was found.
    pub at: u64,
    pub what: String,
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt at byte {}: {}", self.at, self.what)
    }
}

impl std::error::Error for Corrupt {}

/// Up to `n` bytes as hex, for error texts.
pub fn hex(bytes: &[u8], n: usize) -> String {
    let mut s = String::new();
    for (i, b) in bytes.iter().take(n).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    if bytes.len() > n {
        s.push_str(" ...");
    }
    s
}

/// `ts` is earlier than `prev` (timestamps wrap at 2^32).
fn went_back(prev: u32, ts: u32) -> bool {
    (ts.wrapping_sub(prev) as i32) < 0
}

/// What a video decoder configuration said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoConfig {
    /// AVC or legacy-id HEVC: coded frames are NAL units with this many length bytes.
    Nal(usize),
    /// Any other configured codec (Enhanced RTMP): frames are not walked.
    Opaque,
}

/// Media rules for one stream (one RTMP message stream, or one FLV byte stream).
#[derive(Debug, Default)]
pub struct MediaCheck {
    video_ts: Option<u32>,
    audio_ts: Option<u32>,
    video_config: Option<VideoConfig>,
    aac_config: bool,
    /// The next coded video frame must be a keyframe.
    need_key: bool,
}

impl MediaCheck {
    /// A publication boundary: timestamps may start over, and video must restart at a keyframe.
    pub fn boundary(&mut self) {
        self.video_ts = None;
        self.audio_ts = None;
        self.need_key = true;
    }

    /// Checks a video payload; `Ok(true)` for a keyframe.
    pub fn video(&mut self, ts: u32, data: &[u8]) -> Result<bool, String> {
        let bad = |why: &str| format!("video payload [{}] at {ts} ms: {why}", hex(data, 8));
        if let Some(prev) = self.video_ts {
            if went_back(prev, ts) {
                return Err(bad(&format!("timestamp went back from {prev} ms")));
            }
        }
        self.video_ts = Some(ts);
        let info = flv::classify_video(data).ok_or_else(|| bad("too short to classify"))?;
        if !(1..=5).contains(&info.frame_type) {
            return Err(bad(&format!("frame type {}", info.frame_type)));
        }
        // Whether coded frames need a configuration first, and how to walk them.
        let nal_config_at = match info.codec {
            VideoCodec::Legacy(flv::codec_id::AVC) => Some(ConfigKind::Avc),
            VideoCodec::Legacy(flv::codec_id::HEVC_LEGACY) => Some(ConfigKind::Hevc),
            VideoCodec::Legacy(2..=6) => None,
            VideoCodec::Legacy(id) => return Err(bad(&format!("unknown codec id {id}"))),
            VideoCodec::FourCc(cc) => {
                if !matches!(&cc, b"avc1" | b"hvc1" | b"av01" | b"vp09" | b"vp08") {
                    return Err(bad(&format!("unknown FourCC {}", hex(&cc, 4))));
                }
                Some(ConfigKind::Opaque)
            }
            VideoCodec::Unknown => None,
        };
        match info.packet {
            VideoPacket::SequenceStart => {
                self.video_config = Some(match nal_config_at {
                    Some(ConfigKind::Avc) => VideoConfig::Nal(avc_length_size(data).map_err(bad)?),
                    Some(ConfigKind::Hevc) => {
                        VideoConfig::Nal(hevc_length_size(data).map_err(bad)?)
                    }
                    _ => VideoConfig::Opaque,
                });
                self.need_key = true;
                Ok(false)
            }
            VideoPacket::CodedFrame => {
                if nal_config_at.is_some() {
                    match self.video_config {
                        None => return Err(bad("coded frame before any sequence header")),
                        Some(VideoConfig::Nal(n)) if !info.enhanced => {
                            walk_nal_units(data.get(5..).unwrap_or_default(), n).map_err(bad)?
                        }
                        Some(_) => {}
                    }
                }
                let key = info.is_keyframe();
                if self.need_key && !key {
                    return Err(bad(
                        "the first video frame after the sequence header is not a keyframe",
                    ));
                }
                self.need_key &= !key;
                Ok(key)
            }
            VideoPacket::SequenceEnd | VideoPacket::Metadata | VideoPacket::Command => Ok(false),
            VideoPacket::Other(t) => Err(bad(&format!("unknown packet type {t}"))),
        }
    }

    /// Checks an audio payload.
    pub fn audio(&mut self, ts: u32, data: &[u8]) -> Result<(), String> {
        let bad = |why: &str| format!("audio payload [{}] at {ts} ms: {why}", hex(data, 8));
        if let Some(prev) = self.audio_ts {
            if went_back(prev, ts) {
                return Err(bad(&format!("timestamp went back from {prev} ms")));
            }
        }
        self.audio_ts = Some(ts);
        let info = flv::classify_audio(data).ok_or_else(|| bad("too short to classify"))?;
        match (info.codec, info.packet) {
            (AudioCodec::Legacy(f), _) if matches!(f, 12 | 13) => {
                Err(bad(&format!("reserved sound format {f}")))
            }
            (AudioCodec::Legacy(flv::SOUND_FORMAT_AAC), AudioPacket::SequenceStart) => {
                // AudioSpecificConfig: at least 2 bytes.
                if data.len() < 4 {
                    return Err(bad("AAC sequence header without an AudioSpecificConfig"));
                }
                self.aac_config = true;
                Ok(())
            }
            (AudioCodec::Legacy(flv::SOUND_FORMAT_AAC), _) => {
                if !self.aac_config {
                    return Err(bad("AAC frame before the AAC sequence header"));
                }
                if data.len() <= 2 {
                    return Err(bad("empty AAC frame"));
                }
                Ok(())
            }
            (AudioCodec::FourCc(cc), _)
                if !matches!(
                    &cc,
                    b"mp4a" | b"Opus" | b"fLaC" | b"ac-3" | b"ec-3" | b".mp3"
                ) =>
            {
                Err(bad(&format!("unknown FourCC {}", hex(&cc, 4))))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Copy)]
enum ConfigKind {
    Avc,
    Hevc,
    Opaque,
}

/// The NAL length size of an AVC sequence header (AVCDecoderConfigurationRecord after the 5-byte
/// FLV video header), with its SPS and PPS lists checked to fit.
fn avc_length_size(data: &[u8]) -> Result<usize, &'static str> {
    let rec = data.get(5..).unwrap_or_default();
    if rec.len() < 7 {
        return Err("AVC configuration record too short");
    }
    if rec[0] != 1 {
        return Err("AVC configuration record version is not 1");
    }
    let size = usize::from(rec[4] & 3) + 1;
    if size == 3 {
        return Err("AVC NAL length size 3");
    }
    let mut i = 6;
    let mut lists = [usize::from(rec[5] & 0x1F), 0];
    for (n, list) in lists.iter_mut().enumerate() {
        if n == 1 {
            *list = usize::from(*rec.get(i).ok_or("AVC configuration: no PPS count")?);
            i += 1;
        }
        for _ in 0..*list {
            let len = rec
                .get(i..i + 2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                .ok_or("AVC configuration: parameter set length truncated")?;
            i += 2 + len;
            if i > rec.len() {
                return Err("AVC configuration: parameter set overruns the record");
            }
        }
    }
    Ok(size)
}

/// The NAL length size of a legacy-id HEVC sequence header (HEVCDecoderConfigurationRecord).
fn hevc_length_size(data: &[u8]) -> Result<usize, &'static str> {
    let rec = data.get(5..).unwrap_or_default();
    if rec.len() < 23 {
        return Err("HEVC configuration record too short");
    }
    if rec[0] != 1 {
        return Err("HEVC configuration record version is not 1");
    }
    match usize::from(rec[21] & 3) + 1 {
        3 => Err("HEVC NAL length size 3"),
        n => Ok(n),
    }
}

/// Checks that `body` (a coded frame after its composition time) is a sequence of non-empty
/// NAL units, each after a `size`-byte big-endian length, ending exactly at the end.
fn walk_nal_units(body: &[u8], size: usize) -> Result<(), &'static str> {
    if body.is_empty() {
        return Err("coded frame without NAL units");
    }
    let mut i = 0;
    while i < body.len() {
        let len = body
            .get(i..i + size)
            .ok_or("NAL unit length truncated")?
            .iter()
            .fold(0usize, |a, &b| a << 8 | usize::from(b));
        i += size;
        if len == 0 {
            return Err("empty NAL unit");
        }
        let first = *body.get(i).ok_or("NAL unit overruns the frame")?;
        if len > body.len() - i {
            return Err("NAL unit overruns the frame");
        }
        if first & 0x80 != 0 {
            return Err("NAL unit with the forbidden bit set");
        }
        i += len;
    }
    Ok(())
}

/// Checks a data message or script tag body: AMF0 values, the first a name string. The
/// publisher-side `@setDataFrame` wrapper must not reach a viewer.
fn check_script(type_id: u8, payload: &[u8], limits: &AmfLimits) -> Result<(), String> {
    let bad = |why: String| format!("data message [{}]: {why}", hex(payload, 16));
    let values = parse_data(type_id, payload, limits).map_err(|e| bad(e.to_string()))?;
    match values.first().and_then(|v| v.as_str()) {
        Some(SET_DATA_FRAME) => Err(bad(format!("{SET_DATA_FRAME} sent to a viewer"))),
        Some(_) => Ok(()),
        None => Err(bad("does not start with a name string".into())),
    }
}

/// One message a viewer received, checked.
#[derive(Debug)]
pub enum Item {
    /// Protocol or user control (already applied to the decoder where it concerns it).
    Control(ControlMessage),
    Command {
        stream_id: u32,
        command: Command,
    },
    Data,
    /// Audio, video or an aggregate of them; `keyframe` if it carried a video keyframe;
    /// `timestamp`: the message's (an aggregate's last part's), in ms.
    Media {
        stream_id: u32,
        keyframe: bool,
        timestamp: u32,
    },
}

/// The RTMP chunk stream a client receives after the handshake.
#[derive(Debug)]
pub struct RtmpCheck {
    dec: ChunkDecoder,
    limits: AmfLimits,
    /// Media rules per message stream id.
    streams: Vec<(u32, MediaCheck)>,
    /// `consumed()` when the last message completed.
    at_last_message: u64,
    pub messages: u64,
}

impl Default for RtmpCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl RtmpCheck {
    pub fn new() -> Self {
        RtmpCheck {
            dec: ChunkDecoder::new(ChunkLimits {
                max_message_size: MAX_MESSAGE,
                max_chunk_streams: 32,
                ..ChunkLimits::default()
            }),
            limits: AmfLimits::default(),
            streams: Vec::new(),
            at_last_message: 0,
            messages: 0,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.dec.push(data);
    }

    /// Bytes pushed so far.
    pub fn received(&self) -> u64 {
        self.dec.bytes_received()
    }

    /// Offset just after the last complete message: the bytes checked so far.
    pub fn validated(&self) -> u64 {
        self.at_last_message
    }

    /// Bytes the decoder has taken from its input (complete chunks), the offset of the next
    /// chunk header.
    pub fn consumed(&self) -> u64 {
        self.dec.bytes_received() - self.dec.buffered() as u64
    }

    fn media(&mut self, stream_id: u32) -> &mut MediaCheck {
        let i = match self.streams.iter().position(|(id, _)| *id == stream_id) {
            Some(i) => i,
            None => {
                self.streams.push((stream_id, MediaCheck::default()));
                self.streams.len() - 1
            }
        };
        &mut self.streams[i].1
    }

    /// The next message, checked; `Ok(None)` when more input is needed.
    pub fn next(&mut self) -> Result<Option<Item>, Corrupt> {
        let m = match self.dec.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => {
                let waiting = self.received() - self.at_last_message;
                if waiting > u64::from(MAX_MESSAGE) + (1 << 20) {
                    return Err(self.corrupt(format!("{waiting} bytes without a complete message")));
                }
                return Ok(None);
            }
            Err(e) => return Err(self.corrupt(format!("chunk stream: {e}"))),
        };
        self.messages += 1;
        self.at_last_message = self.consumed();
        self.check(m).map(Some).map_err(|why| self.corrupt(why))
    }

    fn corrupt(&self, what: String) -> Corrupt {
        Corrupt {
            at: self.consumed(),
            what: format!("message {}: {what}", self.messages),
        }
    }

    fn check(&mut self, m: RtmpMessage) -> Result<Item, String> {
        let (sid, csid, ts, t) = (m.stream_id, m.csid, m.timestamp, m.type_id);
        let head = || format!("type {t} on chunk stream {csid}, message stream {sid}");
        match t {
            msg_type::SET_CHUNK_SIZE..=msg_type::SET_PEER_BANDWIDTH => {
                if sid != 0 || csid != CSID_PROTOCOL_CONTROL {
                    return Err(format!("control message {}", head()));
                }
                let c = ControlMessage::parse(t, &m.payload)
                    .map_err(|e| format!("{}: {e} [{}]", head(), hex(&m.payload, 16)))?;
                match &c {
                    ControlMessage::SetChunkSize(n) => self
                        .dec
                        .set_chunk_size(*n)
                        .map_err(|e| format!("Set Chunk Size: {e}"))?,
                    ControlMessage::Abort(cs) => self.dec.abort(*cs),
                    ControlMessage::UserControl(
                        UserControlEvent::StreamBegin(id) | UserControlEvent::StreamEof(id),
                    ) => self.media(*id).boundary(),
                    _ => {}
                }
                Ok(Item::Control(c))
            }
            msg_type::AUDIO | msg_type::VIDEO => {
                if sid == 0 {
                    return Err(format!("media {}", head()));
                }
                let media = self.media(sid);
                let keyframe = if t == msg_type::VIDEO {
                    media.video(ts, &m.payload)?
                } else {
                    media.audio(ts, &m.payload).map(|()| false)?
                };
                Ok(Item::Media {
                    stream_id: sid,
                    keyframe,
                    timestamp: ts,
                })
            }
            msg_type::AGGREGATE => {
                if sid == 0 {
                    return Err(format!("aggregate {}", head()));
                }
                let parts = split_aggregate(&m).map_err(|e| format!("{}: {e}", head()))?;
                let mut keyframe = false;
                let mut timestamp = ts;
                for p in parts {
                    timestamp = p.timestamp;
                    match p.type_id {
                        msg_type::VIDEO => {
                            keyframe |= self.media(sid).video(p.timestamp, &p.payload)?
                        }
                        msg_type::AUDIO => self.media(sid).audio(p.timestamp, &p.payload)?,
                        msg_type::DATA_AMF0 => check_script(p.type_id, &p.payload, &self.limits)?,
                        other => return Err(format!("aggregate with a type {other} part")),
                    }
                }
                Ok(Item::Media {
                    stream_id: sid,
                    keyframe,
                    timestamp,
                })
            }
            msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => {
                check_script(t, &m.payload, &self.limits)?;
                Ok(Item::Data)
            }
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                let command = Command::parse(t, &m.payload, &self.limits)
                    .map_err(|e| format!("command {}: {e} [{}]", head(), hex(&m.payload, 16)))?;
                if command.name == "onStatus" {
                    let code = command.arg(0).and_then(|i| i.get_str("code")).unwrap_or("");
                    if matches!(
                        code,
                        "NetStream.Play.Reset"
                            | "NetStream.Play.Start"
                            | "NetStream.Play.PublishNotify"
                            | "NetStream.Play.UnpublishNotify"
                    ) {
                        self.media(sid).boundary();
                    }
                }
                Ok(Item::Command {
                    stream_id: sid,
                    command,
                })
            }
            _ => Err(format!(
                "unexpected message {} [{}]",
                head(),
                hex(&m.payload, 16)
            )),
        }
    }
}

/// A PreviousTagSize still to be compared: its stream offset, the value it must have, and the
/// bytes of it seen so far.
#[derive(Debug)]
struct PendingSize {
    at: u64,
    want: u32,
    got: u32,
    have: u8,
}

/// An FLV byte stream (what an fstream watcher of a media stream receives).
#[derive(Debug)]
pub struct FlvCheck {
    demux: FlvDemuxer,
    media: MediaCheck,
    limits: AmfLimits,
    sizes: VecDeque<PendingSize>,
    header_seen: bool,
    received: u64,
    pub tags: u64,
}

impl Default for FlvCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvCheck {
    pub fn new() -> Self {
        FlvCheck {
            demux: FlvDemuxer::new(MAX_MESSAGE),
            media: MediaCheck::default(),
            limits: AmfLimits::default(),
            sizes: VecDeque::new(),
            header_seen: false,
            received: 0,
            tags: 0,
        }
    }

    /// Bytes of complete tags (and the header), i.e. validated so far.
    pub fn validated(&self) -> u64 {
        self.demux.offset()
    }

    /// Feeds one read; `Ok(true)` if it completed a video keyframe.
    pub fn push(&mut self, data: &[u8]) -> Result<bool, Corrupt> {
        let start = self.received;
        self.received += data.len() as u64;
        self.demux.push(data);
        let mut keyframe = false;
        loop {
            let tag = match self.demux.next_tag() {
                Ok(t) => t,
                Err(e) => {
                    return Err(Corrupt {
                        at: self.demux.offset(),
                        what: format!("FLV: {e}"),
                    })
                }
            };
            if !self.header_seen {
                if let Some(h) = self.demux.header() {
                    self.header_seen = true;
                    if h.version != 1 {
                        return Err(Corrupt {
                            at: 3,
                            what: format!("FLV: version {}", h.version),
                        });
                    }
                    self.sizes.push_back(PendingSize {
                        at: u64::from(h.data_offset),
                        want: 0,
                        got: 0,
                        have: 0,
                    });
                }
            }
            let Some(t) = tag else { break };
            self.tags += 1;
            let len = t.tag.data.len() as u64;
            self.sizes.push_back(PendingSize {
                at: t.offset + 11 + len,
                want: 11 + len as u32,
                got: 0,
                have: 0,
            });
            let at = t.offset;
            let fail = |what: String| Corrupt {
                at,
                what: format!("FLV tag {}: {what}", self.tags),
            };
            let ts = t.tag.timestamp;
            match t.tag.tag_type {
                TagType::Video => keyframe |= self.media.video(ts, &t.tag.data).map_err(fail)?,
                TagType::Audio => self.media.audio(ts, &t.tag.data).map_err(fail)?,
                TagType::Script => {
                    check_script(msg_type::DATA_AMF0, &t.tag.data, &self.limits).map_err(fail)?
                }
            }
        }
        self.check_sizes(data, start)?;
        Ok(keyframe)
    }

    /// Compares the PreviousTagSize fields that lie (partly) in this read, which started at
    /// stream offset `start`.
    fn check_sizes(&mut self, data: &[u8], start: u64) -> Result<(), Corrupt> {
        let end = start + data.len() as u64;
        while let Some(p) = self.sizes.front_mut() {
            while p.have < 4 {
                let at = p.at + u64::from(p.have);
                if at >= end {
                    return Ok(());
                }
                // A field never starts before the read that completes the tag it follows.
                let Some(&b) = at.checked_sub(start).and_then(|i| data.get(i as usize)) else {
                    return Err(Corrupt {
                        at,
                        what: "FLV: lost track of a PreviousTagSize".into(),
                    });
                };
                p.got = p.got << 8 | u32::from(b);
                p.have += 1;
            }
            if p.got != p.want {
                return Err(Corrupt {
                    at: p.at,
                    what: format!("FLV: PreviousTagSize {} where {} was due", p.got, p.want),
                });
            }
            self.sizes.pop_front();
        }
        Ok(())
    }
}

/// Length of a raw block's stamp: [`publisher::MAGIC`], send time (ns, u64 BE), sequence number
/// (u64 BE); the rest of the block is zero.
pub const RAW_HEAD: usize = 24;

/// The bench publisher's stamped raw stream, as an fstream watcher receives it.
#[derive(Default)]
pub struct RawCheck {
    /// Position in the current block.
    pos: usize,
    head: [u8; RAW_HEAD],
    last: Option<(u64, u64)>,
    received: u64,
    pub blocks: u64,
}

impl RawCheck {
    /// Feeds one read; calls `stamp(send_time_ns)` for each block whose stamp completed.
    pub fn push(&mut self, data: &[u8], mut stamp: impl FnMut(u64)) -> Result<(), Corrupt> {
        let mut i = 0;
        while i < data.len() {
            let at = self.received + i as u64;
            let take = (publisher::BLOCK - self.pos).min(data.len() - i);
            let piece = &data[i..i + take];
            if self.pos < RAW_HEAD {
                let n = (RAW_HEAD - self.pos).min(take);
                self.head[self.pos..self.pos + n].copy_from_slice(&piece[..n]);
                if self.pos + n == RAW_HEAD {
                    self.stamped(at - self.pos as u64, &mut stamp)?;
                }
                self.zeros(&piece[n..], at + n as u64)?;
            } else {
                self.zeros(piece, at)?;
            }
            self.pos = (self.pos + take) % publisher::BLOCK;
            i += take;
        }
        self.received += data.len() as u64;
        Ok(())
    }

    fn stamped(&mut self, at: u64, stamp: &mut impl FnMut(u64)) -> Result<(), Corrupt> {
        let bad = |what: String| Corrupt { at, what };
        if &self.head[..8] != publisher::MAGIC {
            return Err(bad(format!(
                "raw block {} does not start with the stamp: [{}]",
                self.blocks,
                hex(&self.head, 16)
            )));
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.head[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let (sent, seq) = (word(8), word(16));
        if let Some((last_sent, last_seq)) = self.last {
            if seq != last_seq.wrapping_add(1) {
                return Err(bad(format!("raw block {seq} after block {last_seq}")));
            }
            if sent < last_sent {
                return Err(bad(format!(
                    "raw block {seq} stamped before its predecessor"
                )));
            }
        }
        self.last = Some((sent, seq));
        self.blocks += 1;
        stamp(sent);
        Ok(())
    }

    fn zeros(&self, piece: &[u8], at: u64) -> Result<(), Corrupt> {
        // An OR over the slice vectorises; the position is only needed on failure.
        if piece.iter().fold(0u8, |a, &b| a | b) == 0 {
            return Ok(());
        }
        let i = piece.iter().position(|&b| b != 0).unwrap_or(0);
        Err(Corrupt {
            at: at + i as u64,
            what: format!("raw block padding is not zero: [{}]", hex(&piece[i..], 16)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstream_media::{
        amf0::{self, Amf0Value},
        flv::{write_file_header, write_tag},
        rtmp::{
            chunk::ChunkEncoder,
            message::{CommandEncoding, Status},
        },
    };

    // A tiny but real-shaped H.264/AAC stream: SPS/PPS configuration, IDR and P frames made of
    // length-prefixed NAL units.
    fn avc_config() -> Vec<u8> {
        let mut v = vec![0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE1];
        let sps = [0x67, 0x64, 0x00, 0x1F, 0xAC];
        v.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        v.extend_from_slice(&sps);
        v.push(1);
        let pps = [0x68, 0xEE, 0x3C, 0x80];
        v.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        v.extend_from_slice(&pps);
        v
    }

    fn avc_frame(key: bool, size: usize) -> Vec<u8> {
        let mut v = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        let nal = if key { 0x65 } else { 0x41 };
        v.extend_from_slice(&(size as u32).to_be_bytes());
        v.push(nal);
        v.extend((1..size).map(|i| (i % 251) as u8));
        v
    }

    const AAC_CONFIG: &[u8] = &[0xAF, 0, 0x12, 0x10];

    fn aac_frame() -> Vec<u8> {
        vec![0xAF, 1, 0x21, 0x10, 0x04]
    }

    fn data_message(values: &[Amf0Value]) -> Vec<u8> {
        let mut out = Vec::new();
        amf0::encode_all(values, &mut out).unwrap();
        out
    }

    fn metadata() -> Vec<u8> {
        data_message(&[
            "onMetaData".into(),
            Amf0Value::ecma_array([("width", 1280.0.into()), ("height", 720.0.into())]),
        ])
    }

    fn on_status(code: &str) -> RtmpMessage {
        Command::on_status(&Status::status(code, "x"))
            .to_message(CommandEncoding::Amf0, 5, 1)
            .unwrap()
    }

    /// What a player of stream 1 gets from the server: controls, statuses, metadata, headers, a
    /// GOP. Chunked at 128 until Set Chunk Size 4096, then at 4096.
    fn player_stream(frames: &[(u32, Vec<u8>)]) -> (Vec<u8>, Vec<RtmpMessage>) {
        let mut msgs = vec![
            ControlMessage::WindowAckSize(2_500_000).to_message(),
            ControlMessage::SetChunkSize(4096).to_message(),
            ControlMessage::UserControl(UserControlEvent::StreamBegin(1)).to_message(),
            on_status("NetStream.Play.Reset"),
            on_status("NetStream.Play.Start"),
            RtmpMessage::new(
                5,
                0,
                18,
                1,
                data_message(&["|RtmpSampleAccess".into(), true.into(), true.into()]),
            ),
            RtmpMessage::new(5, 0, 18, 1, metadata()),
            RtmpMessage::new(6, 0, 9, 1, avc_config()),
            RtmpMessage::new(4, 0, 8, 1, AAC_CONFIG.to_vec()),
        ];
        for (ts, f) in frames {
            let (csid, t) = if f[0] == 0xAF { (4, 8) } else { (6, 9) };
            msgs.push(RtmpMessage::new(csid, *ts, t, 1, f.clone()));
        }
        let mut enc = ChunkEncoder::default();
        let mut out = Vec::new();
        for m in &msgs {
            enc.encode_message_into(&mut out, m.csid, m).unwrap();
            if let Ok(ControlMessage::SetChunkSize(n)) =
                ControlMessage::parse(m.type_id, &m.payload)
            {
                enc.set_chunk_size(n).unwrap();
            }
        }
        (out, msgs)
    }

    fn gop() -> Vec<(u32, Vec<u8>)> {
        vec![
            (0, avc_frame(true, 9000)),
            (0, aac_frame()),
            (23, aac_frame()),
            (40, avc_frame(false, 300)),
            (46, aac_frame()),
            (80, avc_frame(false, 5000)),
        ]
    }

    /// Feeds `bytes` in pieces of `step`; all items, or the first corruption.
    fn run_rtmp(bytes: &[u8], step: usize) -> Result<Vec<Item>, Corrupt> {
        let mut c = RtmpCheck::new();
        let mut items = Vec::new();
        for piece in bytes.chunks(step) {
            c.push(piece);
            while let Some(i) = c.next()? {
                items.push(i);
            }
        }
        Ok(items)
    }

    fn keyframes(items: &[Item]) -> usize {
        items
            .iter()
            .filter(|i| matches!(i, Item::Media { keyframe: true, .. }))
            .count()
    }

    #[test]
    fn a_good_player_stream_parses_in_any_pieces() {
        let (bytes, msgs) = player_stream(&gop());
        for step in [1, 7, 128, 1000, 4096, bytes.len()] {
            let items = run_rtmp(&bytes, step).unwrap_or_else(|e| panic!("step {step}: {e}"));
            assert_eq!(items.len(), msgs.len(), "step {step}");
            assert_eq!(keyframes(&items), 1);
        }
    }

    #[test]
    fn a_bare_amf_body_without_a_chunk_header_is_corrupt() {
        // Issue 10: after |RtmpSampleAccess the player got onMetaData's payload with no chunk
        // header (the encoder of a reused format slot was gone).
        let (good, _) = player_stream(&[]);
        let mut c = RtmpCheck::new();
        c.push(&good);
        let mut sample_access_at = None;
        while let Some(i) = c.next().unwrap() {
            if matches!(i, Item::Data) && sample_access_at.is_none() {
                sample_access_at = Some(c.consumed());
            }
        }
        // Rebuild: everything up to and including |RtmpSampleAccess, then the bare bodies.
        let cut = sample_access_at.unwrap() as usize;
        let mut bytes = good[..cut].to_vec();
        bytes.extend_from_slice(&metadata());
        bytes.extend_from_slice(&avc_config());
        bytes.extend_from_slice(&avc_frame(true, 2000));
        let e = run_rtmp(&bytes, 4096).unwrap_err();
        assert_eq!(e.at, cut as u64, "{e}");
        assert!(e.what.contains("chunk stream"), "{e}");
    }

    #[test]
    fn the_chunk_size_must_be_honoured() {
        // The server chunks at 4096 without announcing it: the decoder (at 128) reads payload
        // bytes as headers.
        let m = RtmpMessage::new(6, 0, 9, 1, avc_config());
        let f = RtmpMessage::new(6, 40, 9, 1, avc_frame(true, 3000));
        let enc = ChunkEncoder::new(4096).unwrap();
        let mut bytes = Vec::new();
        enc.encode_message_into(&mut bytes, 6, &m).unwrap();
        enc.encode_message_into(&mut bytes, 6, &f).unwrap();
        assert!(run_rtmp(&bytes, 100).is_err());
        // The same after a Set Chunk Size.
        let mut ok = Vec::new();
        let scs = ControlMessage::SetChunkSize(4096).to_message();
        ChunkEncoder::default()
            .encode_message_into(&mut ok, 2, &scs)
            .unwrap();
        ok.extend_from_slice(&bytes);
        assert_eq!(keyframes(&run_rtmp(&ok, 100).unwrap()), 1);
    }

    #[test]
    fn abort_drops_the_partial_message() {
        let enc = ChunkEncoder::default();
        let cfg = RtmpMessage::new(6, 0, 9, 1, avc_config());
        let big = RtmpMessage::new(6, 40, 9, 1, avc_frame(true, 1000));
        let mut bytes = Vec::new();
        enc.encode_message_into(&mut bytes, 6, &cfg).unwrap();
        let mut partial = Vec::new();
        enc.encode_message_into(&mut partial, 6, &big).unwrap();
        bytes.extend_from_slice(&partial[..12 + 128]);
        let abort = ControlMessage::Abort(6).to_message();
        enc.encode_message_into(&mut bytes, 2, &abort).unwrap();
        enc.encode_message_into(&mut bytes, 6, &big).unwrap();
        let items = run_rtmp(&bytes, 50).unwrap();
        assert_eq!(keyframes(&items), 1);
        // Without the Abort, the fmt 0 header in the middle of the message is an error.
        let mut no_abort = Vec::new();
        enc.encode_message_into(&mut no_abort, 6, &cfg).unwrap();
        no_abort.extend_from_slice(&partial[..12 + 128]);
        enc.encode_message_into(&mut no_abort, 6, &big).unwrap();
        assert!(run_rtmp(&no_abort, 50).is_err());
    }

    fn corrupt_with(frames: &[(u32, Vec<u8>)]) -> String {
        let (bytes, _) = player_stream(frames);
        run_rtmp(&bytes, 333).unwrap_err().to_string()
    }

    #[test]
    fn media_rules() {
        let e = corrupt_with(&[(0, avc_frame(false, 100))]);
        assert!(e.contains("not a keyframe"), "{e}");
        let e = corrupt_with(&[(40, avc_frame(true, 100)), (0, avc_frame(false, 100))]);
        assert!(e.contains("went back"), "{e}");
        let e = corrupt_with(&[(40, aac_frame()), (39, aac_frame())]);
        assert!(e.contains("went back"), "{e}");
        let mut broken = avc_frame(true, 100);
        broken[8] = 0xFF; // the NAL length says 255 where 100 bytes follow
        let e = corrupt_with(&[(0, broken)]);
        assert!(e.contains("overruns"), "{e}");
        let e = corrupt_with(&[(0, vec![0x17])]);
        assert!(e.contains("too short"), "{e}");
        let e = corrupt_with(&[(0, vec![0x1F, 1, 0, 0, 0])]);
        assert!(e.contains("codec id 15"), "{e}");
        // Audio and video timelines are separate; both at the same time is fine.
        let (bytes, _) = player_stream(&[
            (0, avc_frame(true, 100)),
            (0, aac_frame()),
            (20, aac_frame()),
            (20, avc_frame(false, 100)),
        ]);
        assert!(run_rtmp(&bytes, 333).is_ok());
    }

    #[test]
    fn frames_need_their_sequence_headers() {
        let mut c = RtmpCheck::new();
        let enc = ChunkEncoder::default();
        let mut bytes = Vec::new();
        let f = RtmpMessage::new(6, 0, 9, 1, avc_frame(true, 100));
        enc.encode_message_into(&mut bytes, 6, &f).unwrap();
        c.push(&bytes);
        assert!(c
            .next()
            .unwrap_err()
            .what
            .contains("before any sequence header"));

        let mut c = RtmpCheck::new();
        let mut bytes = Vec::new();
        let a = RtmpMessage::new(4, 0, 8, 1, aac_frame());
        enc.encode_message_into(&mut bytes, 4, &a).unwrap();
        c.push(&bytes);
        assert!(c.next().unwrap_err().what.contains("AAC frame before"));
    }

    #[test]
    fn a_publisher_switch_may_restart_the_timeline() {
        let (mut bytes, _) = player_stream(&[(5000, avc_frame(true, 100))]);
        let enc = ChunkEncoder::new(4096).unwrap();
        let again = [
            ControlMessage::UserControl(UserControlEvent::StreamBegin(1)).to_message(),
            on_status("NetStream.Play.PublishNotify"),
            RtmpMessage::new(6, 0, 9, 1, avc_config()),
            RtmpMessage::new(6, 0, 9, 1, avc_frame(true, 100)),
        ];
        for m in &again {
            enc.encode_message_into(&mut bytes, m.csid, m).unwrap();
        }
        assert_eq!(keyframes(&run_rtmp(&bytes, 1000).unwrap()), 2);
        // Without the notice, the same bytes are a timestamp going back.
        let (mut bytes, _) = player_stream(&[(5000, avc_frame(true, 100))]);
        for m in &again[2..] {
            enc.encode_message_into(&mut bytes, m.csid, m).unwrap();
        }
        assert!(run_rtmp(&bytes, 1000)
            .unwrap_err()
            .what
            .contains("went back"));
    }

    #[test]
    fn message_level_errors() {
        let enc = ChunkEncoder::default();
        let one = |m: RtmpMessage| {
            let mut b = Vec::new();
            enc.encode_message_into(&mut b, m.csid, &m).unwrap();
            run_rtmp(&b, 64).map(|_| ()).unwrap_err().what
        };
        // Media on the control stream, an unknown type, broken AMF, a bare @setDataFrame, a
        // control message on a media chunk stream, an invalid chunk size.
        assert!(one(RtmpMessage::new(6, 0, 9, 0, avc_config())).contains("media type 9"));
        assert!(one(RtmpMessage::new(3, 0, 0x74, 0, vec![1, 2])).contains("unexpected"));
        assert!(one(RtmpMessage::new(3, 0, 20, 0, vec![0x02, 0, 9, b'x'])).contains("command"));
        let sdf = data_message(&["@setDataFrame".into(), "onMetaData".into()]);
        assert!(one(RtmpMessage::new(5, 0, 18, 1, sdf)).contains("@setDataFrame"));
        assert!(one(RtmpMessage::new(3, 0, 18, 1, vec![0x00; 3])).contains("data message"));
        let scs = ControlMessage::SetChunkSize(4096).to_message();
        assert!(one(RtmpMessage { csid: 3, ..scs }).contains("control message"));
        assert!(one(RtmpMessage::new(2, 0, 1, 0, vec![0, 0, 0, 0])).contains("chunk size"));
        assert!(one(RtmpMessage::new(2, 0, 4, 0, vec![0])).contains("too short"));
    }

    #[test]
    fn aggregates_are_checked_part_by_part() {
        let mut agg = Vec::new();
        for (t, ts, data) in [(9u8, 0u32, avc_config()), (9, 0, avc_frame(true, 50))] {
            agg.push(t);
            agg.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            agg.extend_from_slice(&ts.to_be_bytes()[1..]);
            agg.push(0);
            agg.extend_from_slice(&[0, 0, 0]);
            agg.extend_from_slice(&data);
            agg.extend_from_slice(&(11 + data.len() as u32).to_be_bytes());
        }
        let enc = ChunkEncoder::default();
        let mut b = Vec::new();
        enc.encode_message_into(&mut b, 6, &RtmpMessage::new(6, 0, 22, 1, agg.clone()))
            .unwrap();
        assert_eq!(keyframes(&run_rtmp(&b, 100).unwrap()), 1);
        agg.truncate(agg.len() - 10);
        let mut b = Vec::new();
        enc.encode_message_into(&mut b, 6, &RtmpMessage::new(6, 0, 22, 1, agg))
            .unwrap();
        assert!(run_rtmp(&b, 100).unwrap_err().what.contains("aggregate"));
    }

    #[test]
    fn a_stream_that_never_completes_a_message_is_corrupt() {
        // A header claiming 4 MiB, then chunk after chunk of it: fine up to the limit, but a
        // header claiming more is refused at once.
        let mut b = vec![0x06, 0, 0, 0];
        b.extend_from_slice(&(MAX_MESSAGE + 1).to_be_bytes()[1..]);
        b.extend_from_slice(&[9, 1, 0, 0, 0]);
        let e = run_rtmp(&b, 100).unwrap_err();
        assert!(e.what.contains("exceeds the limit"), "{e}");
    }

    fn flv_stream(tags: &[(TagType, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        write_file_header(&mut out, true, true);
        for (t, ts, d) in tags {
            write_tag(&mut out, *t, *ts, d).unwrap();
        }
        out
    }

    fn good_flv_tags() -> Vec<(TagType, u32, Vec<u8>)> {
        vec![
            (TagType::Script, 0, metadata()),
            (TagType::Video, 0, avc_config()),
            (TagType::Audio, 0, AAC_CONFIG.to_vec()),
            (TagType::Video, 0, avc_frame(true, 3000)),
            (TagType::Audio, 10, aac_frame()),
            (TagType::Video, 40, avc_frame(false, 200)),
        ]
    }

    fn run_flv(bytes: &[u8], step: usize) -> Result<(usize, FlvCheck), Corrupt> {
        let mut c = FlvCheck::new();
        let mut keys = 0;
        for piece in bytes.chunks(step) {
            keys += usize::from(c.push(piece)?);
        }
        Ok((keys, c))
    }

    #[test]
    fn a_good_flv_stream_parses_in_any_pieces() {
        let bytes = flv_stream(&good_flv_tags());
        for step in [1, 2, 3, 5, 13, 100, bytes.len()] {
            let (keys, c) = run_flv(&bytes, step).unwrap_or_else(|e| panic!("step {step}: {e}"));
            assert_eq!((keys, c.tags), (1, 6), "step {step}");
            assert_eq!(c.validated(), bytes.len() as u64);
        }
    }

    #[test]
    fn broken_flv_streams() {
        let good = flv_stream(&good_flv_tags());
        // No file header (a watcher that joined mid-stream, or a lost preamble).
        assert!(run_flv(&good[13..], 7)
            .unwrap_err()
            .what
            .contains("signature"));
        // A wrong PreviousTagSize after the first tag.
        let first_end = 13 + 11 + metadata().len();
        let mut b = good.clone();
        b[first_end + 3] ^= 1;
        for step in [1, 3, 1000] {
            let e = run_flv(&b, step).unwrap_err();
            assert!(e.what.contains("PreviousTagSize"), "{e}");
            assert_eq!(e.at, first_end as u64);
        }
        // PreviousTagSize0 must be 0.
        let mut b = good.clone();
        b[12] = 1;
        assert!(run_flv(&b, 5).unwrap_err().what.contains("PreviousTagSize"));
        // A tag header read from the middle of a tag.
        let mut b = good[..first_end + 4].to_vec();
        b.extend_from_slice(&good[first_end + 9..]);
        assert!(run_flv(&b, 64).is_err());
        // Media rules apply.
        let mut tags = good_flv_tags();
        tags.swap(3, 5);
        let e = run_flv(&flv_stream(&tags), 64).unwrap_err();
        assert!(e.what.contains("not a keyframe"), "{e}");
        let mut tags = good_flv_tags();
        tags[4].1 = 0;
        tags[2].1 = 5;
        assert!(run_flv(&flv_stream(&tags), 64)
            .unwrap_err()
            .what
            .contains("went back"));
        let mut tags = good_flv_tags();
        tags[0].2 = data_message(&["@setDataFrame".into(), "onMetaData".into()]);
        assert!(run_flv(&flv_stream(&tags), 64).is_err());
    }

    fn raw_blocks(first: u64, n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for seq in first..first + n {
            out.extend_from_slice(publisher::MAGIC);
            out.extend_from_slice(&(1000 + seq * 10).to_be_bytes());
            out.extend_from_slice(&seq.to_be_bytes());
            out.resize(out.len() + publisher::BLOCK - RAW_HEAD, 0);
        }
        out
    }

    fn run_raw(bytes: &[u8], step: usize) -> Result<Vec<u64>, Corrupt> {
        let mut c = RawCheck::default();
        let mut stamps = Vec::new();
        for piece in bytes.chunks(step) {
            c.push(piece, |s| stamps.push(s))?;
        }
        Ok(stamps)
    }

    #[test]
    fn raw_stamped_blocks() {
        let good = raw_blocks(7, 5);
        for step in [1, 5, 24, 1000, 1316, 4000, good.len()] {
            let stamps = run_raw(&good, step).unwrap_or_else(|e| panic!("step {step}: {e}"));
            assert_eq!(stamps, vec![1070, 1080, 1090, 1100, 1110]);
        }
        // Starting mid-block.
        assert!(run_raw(&good[100..], 500)
            .unwrap_err()
            .what
            .contains("stamp"));
        // A lost block.
        let mut gap = raw_blocks(0, 2);
        gap.extend_from_slice(&raw_blocks(3, 1));
        let e = run_raw(&gap, 700).unwrap_err();
        assert_eq!(e.at, 2 * publisher::BLOCK as u64);
        assert!(e.what.contains("block 3 after block 1"), "{e}");
        // A stray byte in the padding.
        let mut b = good.clone();
        b[publisher::BLOCK + 500] = 9;
        let e = run_raw(&b, 300).unwrap_err();
        assert_eq!(e.at, publisher::BLOCK as u64 + 500);
    }
}
