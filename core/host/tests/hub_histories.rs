//! The hub as a state machine, driven through random histories without sockets or a runtime.
//!
//! Publishers come, are replaced, leave and return (within and after their grace period);
//! viewers of every stock format (raw, fstream FLV, RTMP chunked at several chunk sizes and
//! message stream ids) subscribe, pause, turn audio or video off, read slowly or not at all,
//! leave and come back, on the same connection or a new one. The `rtmp` plugin's own frontend
//! makes the RTMP bytes; the FLV bytes come from a frontend here that writes tags as the
//! `fstream` plugin does (both plugins export the same root symbol, so one test binary cannot
//! link both). Timers run on a virtual clock.
//!
//! After every step each viewer's bytes so far are parsed strictly from its first byte (RTMP
//! with core/media's chunk decoder, FLV with its demuxer, raw as the records the publishers
//! wrote) and checked: every packet is one that was published, byte for byte; audio and video
//! frames come after their publication's sequence headers; video is decodable (a keyframe,
//! then that GOP's frames in order with none missing); frame timestamps never go backwards; a
//! raw viewer gets whole records, in order, and without gaps unless it was skipped ahead. The
//! hub's own state is checked too: its subscribers and formats are exactly the model's, and
//! every pending timer belongs to a live subscriber or publication.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use abi_stable::std_types::{ROption, RString};
use fstream_abi::{
    flags, payload_from_vec,
    sdk::{encoder_box, frontend_box, Encode, Frontend as FrontendLogic},
    ConnInfo, EncoderBox, Event, MediaKind, MediaPacket, OverflowPolicy, Payload, PluginError,
    PublishConflict, PublishOptions, RecordMode, SessionBox, SubscribeOptions, SubscriptionControl,
    SubscriptionStatus, RAW_FORMAT,
};
use fstream_host::{
    config::HubConfig,
    frontends::Frontend,
    hub::{EventTx, Hub, ManualTimers, Peer, Stream},
    outq::Outq,
};
use fstream_media::{
    amf0::{self, Amf0Value},
    flv::{write_tag, FlvDemuxer, FlvHeader, TagType},
    rtmp::chunk::{ChunkDecoder, ChunkLimits},
    AmfLimits,
};
use proptest::prelude::*;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const STREAM: &str = "app/cam";
const PUBLISHERS: usize = 3;
const VIEWERS: usize = 6;
/// A keyframe every this many video frames.
const GOP_FRAMES: u32 = 6;
const PASSWORD: &str = "pw";
/// The `fstream` plugin's format name for FLV watchers.
const FLV_FORMAT: &str = "fstream";

/// Writes FLV as the `fstream` plugin's encoder does: the file header as the preamble of a
/// media stream, one tag per media packet, raw packets unchanged.
struct FlvEncoder;

impl Encode for FlvEncoder {
    fn preamble(&mut self, media: bool) -> Result<Option<Payload>, PluginError> {
        Ok(media.then(|| {
            payload_from_vec(
                FlvHeader::new(true, true)
                    .encode_with_first_tag_size()
                    .to_vec(),
            )
        }))
    }

    fn encode(&mut self, packet: &MediaPacket) -> Result<Option<Payload>, PluginError> {
        let tag_type = match packet.kind {
            MediaKind::Raw => return Ok(Some(packet.payload.clone())),
            MediaKind::Audio => TagType::Audio,
            MediaKind::Video => TagType::Video,
            MediaKind::Script => TagType::Script,
        };
        let ts = if tag_type == TagType::Script {
            0
        } else {
            packet.timestamp
        };
        let mut out = Vec::new();
        write_tag(&mut out, tag_type, ts, &packet.payload)
            .map_err(|e| PluginError::new(e.to_string()))?;
        Ok(Some(payload_from_vec(out)))
    }
}

struct FlvFrontend;

impl FrontendLogic for FlvFrontend {
    fn protocol(&self) -> String {
        "fstream".into()
    }
    fn default_listen(&self) -> String {
        String::new()
    }
    fn new_session(&self, _: &ConnInfo) -> Result<SessionBox, PluginError> {
        Err(PluginError::new("no sessions here"))
    }
    fn encoder(&self, format: &str) -> Result<EncoderBox, PluginError> {
        if format == FLV_FORMAT {
            Ok(encoder_box(FlvEncoder))
        } else {
            Err(PluginError::new(format!("no format {format}")))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What a history is made of

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fmt {
    Raw,
    Flv,
    Rtmp { chunk: u32, msid: u32 },
}

impl Fmt {
    fn name(self) -> String {
        match self {
            Fmt::Raw => RAW_FORMAT.into(),
            Fmt::Flv => FLV_FORMAT.into(),
            Fmt::Rtmp { chunk, msid } => rtmp::encoder::format_name(chunk, msid),
        }
    }
}

#[derive(Debug, Clone)]
struct ViewerSpec {
    fmt: Fmt,
    audio: bool,
    video: bool,
    skip: bool,
    queue: u64,
    cache: bool,
    wait_ms: u32,
    /// None: no password; Some(true): the right one; Some(false): a wrong one.
    password: Option<bool>,
}

#[derive(Debug, Clone)]
enum Op {
    Publish {
        who: usize,
        reject: bool,
        grace_ms: u32,
        password: bool,
    },
    Unpublish {
        who: usize,
    },
    Send {
        who: usize,
        n: u32,
    },
    NewHeaders {
        who: usize,
    },
    Subscribe {
        viewer: usize,
        spec: ViewerSpec,
        same_conn: bool,
    },
    Unsubscribe {
        viewer: usize,
    },
    Control {
        viewer: usize,
        control: Ctl,
    },
    Read {
        viewer: usize,
    },
    ReadAll,
    Advance {
        ms: u32,
    },
}

#[derive(Debug, Clone, Copy)]
enum Ctl {
    Pause(bool),
    Audio(bool),
    Video(bool),
}

fn fmt_strategy(media: bool) -> BoxedStrategy<Fmt> {
    let rtmp = (
        prop::sample::select(vec![128u32, 1000, 4096, 65536]),
        1u32..4,
    )
        .prop_map(|(chunk, msid)| Fmt::Rtmp { chunk, msid });
    if media {
        // The raw format hands out payloads as they are: for a byte stream, not for media.
        prop_oneof![Just(Fmt::Flv), rtmp.clone(), rtmp].boxed()
    } else {
        prop_oneof![Just(Fmt::Raw), Just(Fmt::Flv)].boxed()
    }
}

fn spec_strategy(media: bool) -> impl Strategy<Value = ViewerSpec> {
    (
        fmt_strategy(media),
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.85),
        any::<bool>(),
        prop::sample::select(vec![0u64, 3_000, 12_000, 60_000]),
        prop::bool::weighted(0.8),
        prop::sample::select(vec![0u32, 30, 400, u32::MAX]),
        prop::sample::select(vec![None, None, Some(true), Some(false)]),
    )
        .prop_map(
            |(fmt, audio, video, skip, queue, cache, wait_ms, password)| ViewerSpec {
                fmt,
                audio,
                video,
                skip,
                queue,
                cache,
                wait_ms,
                password,
            },
        )
}

fn op_strategy(media: bool) -> impl Strategy<Value = Op> {
    let who = 0..PUBLISHERS;
    let viewer = 0..VIEWERS;
    prop_oneof![
        3 => (who.clone(), prop::bool::weighted(0.2), prop::sample::select(vec![0u32, 50, 300]),
              prop::bool::weighted(0.2))
            .prop_map(|(who, reject, grace_ms, password)| Op::Publish { who, reject, grace_ms, password }),
        2 => who.clone().prop_map(|who| Op::Unpublish { who }),
        12 => (who.clone(), 1u32..25).prop_map(|(who, n)| Op::Send { who, n }),
        1 => who.prop_map(|who| Op::NewHeaders { who }),
        5 => (viewer.clone(), spec_strategy(media), any::<bool>())
            .prop_map(|(viewer, spec, same_conn)| Op::Subscribe { viewer, spec, same_conn }),
        2 => viewer.clone().prop_map(|viewer| Op::Unsubscribe { viewer }),
        2 => (viewer.clone(), prop_oneof![
                any::<bool>().prop_map(Ctl::Pause),
                any::<bool>().prop_map(Ctl::Audio),
                any::<bool>().prop_map(Ctl::Video),
            ]).prop_map(|(viewer, control)| Op::Control { viewer, control }),
        5 => viewer.prop_map(|viewer| Op::Read { viewer }),
        3 => Just(Op::ReadAll),
        2 => prop::sample::select(vec![10u32, 40, 100, 350, 1000]).prop_map(|ms| Op::Advance { ms }),
    ]
}

// ---------------------------------------------------------------------------------------------
// The packets publishers send, and the record of every one

/// What the test knows of a packet it published.
#[derive(Debug, Clone)]
struct Sent {
    publication: u32,
    kind: MediaKind,
    flags: u8,
    /// (gop, index in gop) of a video frame.
    frame: (u32, u32),
    /// Raw records: the publisher's sequence number.
    seq: u32,
    payload: Vec<u8>,
}

#[derive(Default)]
struct Ledger {
    next_id: u64,
    sent: HashMap<u64, Sent>,
}

fn filler(id: u64) -> usize {
    (id.wrapping_mul(2_654_435_761) % 1800) as usize
}

/// One publication's packet source: media (metadata, headers, interleaved video and audio) or
/// raw records.
struct Generator {
    media: bool,
    publication: u32,
    step: u32,
    ts: u32,
    video_frames: u32,
    seq: u32,
}

impl Generator {
    fn new(media: bool, publication: u32, start_ts: u32) -> Self {
        Self {
            media,
            publication,
            step: 0,
            ts: start_ts,
            video_frames: 0,
            seq: 0,
        }
    }

    fn id(ledger: &mut Ledger) -> u64 {
        ledger.next_id += 1;
        ledger.next_id
    }

    /// Metadata and both sequence headers (a publisher changing them mid-stream).
    fn headers(&mut self, ledger: &mut Ledger) -> Vec<MediaPacket> {
        (0..3).map(|i| self.header(ledger, i)).collect()
    }

    fn header(&mut self, ledger: &mut Ledger, i: u32) -> MediaPacket {
        let (kind, fl) = match i {
            0 => (MediaKind::Script, flags::METADATA),
            1 => (MediaKind::Video, flags::SEQUENCE_HEADER),
            _ => (MediaKind::Audio, flags::SEQUENCE_HEADER),
        };
        self.make(ledger, kind, fl, (0, 0))
    }

    fn next(&mut self, ledger: &mut Ledger) -> MediaPacket {
        if !self.media {
            self.seq += 1;
            let id = Self::id(ledger);
            let len = filler(id) + 1;
            let mut p = vec![0xA5];
            p.extend_from_slice(&id.to_le_bytes());
            p.extend_from_slice(&(len as u16).to_le_bytes());
            p.extend(std::iter::repeat_n(id as u8, len));
            ledger.sent.insert(
                id,
                Sent {
                    publication: self.publication,
                    kind: MediaKind::Raw,
                    flags: 0,
                    frame: (0, 0),
                    seq: self.seq,
                    payload: p.clone(),
                },
            );
            return MediaPacket::raw(payload_from_vec(p));
        }
        // A publication starts with its metadata and sequence headers.
        let s = self.step;
        self.step += 1;
        if s < 3 {
            return self.header(ledger, s);
        }
        self.ts = self.ts.wrapping_add(20);
        if s % 2 == 1 {
            let n = self.video_frames;
            self.video_frames += 1;
            let frame = (n / GOP_FRAMES, n % GOP_FRAMES);
            let fl = if frame.1 == 0 { flags::KEYFRAME } else { 0 };
            self.make(ledger, MediaKind::Video, fl, frame)
        } else {
            self.make(ledger, MediaKind::Audio, 0, (0, 0))
        }
    }

    fn make(
        &mut self,
        ledger: &mut Ledger,
        kind: MediaKind,
        fl: u8,
        frame: (u32, u32),
    ) -> MediaPacket {
        let id = Self::id(ledger);
        let mut p = match kind {
            MediaKind::Video => {
                let first = if fl & (flags::KEYFRAME | flags::SEQUENCE_HEADER) != 0 {
                    0x17
                } else {
                    0x27
                };
                let avc = if fl & flags::SEQUENCE_HEADER != 0 {
                    0
                } else {
                    1
                };
                vec![first, avc, 0, 0, 0]
            }
            MediaKind::Audio => {
                let aac = if fl & flags::SEQUENCE_HEADER != 0 {
                    0
                } else {
                    1
                };
                vec![0xAF, aac]
            }
            _ => {
                let mut v = Vec::new();
                amf0::encode(&Amf0Value::String("onMetaData".into()), &mut v).expect("amf");
                amf0::encode(
                    &Amf0Value::ecma_array([("id", Amf0Value::Number(id as f64))]),
                    &mut v,
                )
                .expect("amf");
                v
            }
        };
        if kind != MediaKind::Script {
            p.extend_from_slice(&id.to_le_bytes());
            p.extend(std::iter::repeat_n(id as u8, filler(id)));
        }
        ledger.sent.insert(
            id,
            Sent {
                publication: self.publication,
                kind,
                flags: fl,
                frame,
                seq: 0,
                payload: p.clone(),
            },
        );
        MediaPacket::new(kind, fl, self.ts, payload_from_vec(p))
    }
}

// ---------------------------------------------------------------------------------------------
// What a viewer must receive

enum Parser {
    Raw(Vec<u8>),
    Flv(FlvDemuxer),
    Rtmp { dec: ChunkDecoder, msid: u32 },
}

/// The checks on one connection's bytes.
struct Validator {
    parser: Parser,
    /// Raw: records must follow each other without gaps (the viewer is never skipped ahead).
    contiguous: bool,
    publication: Option<u32>,
    video_header: bool,
    audio_header: bool,
    last_frame: Option<(u32, u32)>,
    last_ts: Option<u32>,
    last_seq: Option<(u32, u32)>,
    frames: usize,
}

impl Validator {
    fn new(fmt: Fmt, media: bool, contiguous: bool) -> Self {
        let parser = match (fmt, media) {
            (Fmt::Rtmp { chunk, msid }, _) => {
                let mut dec = ChunkDecoder::new(ChunkLimits::default());
                dec.set_chunk_size(chunk).expect("chunk size");
                Parser::Rtmp { dec, msid }
            }
            (Fmt::Flv, true) => Parser::Flv(FlvDemuxer::new(1 << 20)),
            _ => Parser::Raw(Vec::new()),
        };
        Self {
            parser,
            contiguous,
            publication: None,
            video_header: false,
            audio_header: false,
            last_frame: None,
            last_ts: None,
            last_seq: None,
            frames: 0,
        }
    }

    /// A new subscription on the same connection (after the old one ended): the stream may
    /// have been made anew, so its timeline may start again.
    fn resubscribed(&mut self) {
        self.last_ts = None;
        self.last_seq = None;
    }

    fn feed(&mut self, bytes: &[u8], ledger: &Ledger) -> Result<(), String> {
        let mut items: Vec<(u8, u32, Vec<u8>)> = Vec::new();
        match &mut self.parser {
            Parser::Raw(buf) => {
                buf.extend_from_slice(bytes);
                return self.raw_records(ledger);
            }
            Parser::Flv(d) => {
                d.push(bytes);
                while let Some(t) = d.next_tag().map_err(|e| format!("FLV: {e}"))? {
                    let ty = match t.tag.tag_type {
                        TagType::Audio => 8,
                        TagType::Video => 9,
                        TagType::Script => 18,
                    };
                    items.push((ty, t.tag.timestamp, t.tag.data.to_vec()));
                }
            }
            Parser::Rtmp { dec, msid } => {
                dec.push(bytes);
                while let Some(m) = dec
                    .next_message()
                    .map_err(|e| format!("RTMP chunks: {e}"))?
                {
                    if m.stream_id != *msid {
                        return Err(format!("message stream id {} (wanted {msid})", m.stream_id));
                    }
                    items.push((m.type_id, m.timestamp, m.payload.to_vec()));
                }
            }
        }
        for (ty, ts, data) in items {
            self.media(ty, ts, &data, ledger)?;
        }
        Ok(())
    }

    fn raw_records(&mut self, ledger: &Ledger) -> Result<(), String> {
        let Parser::Raw(buf) = &mut self.parser else {
            return Ok(());
        };
        loop {
            if buf.len() < 11 {
                return Ok(());
            }
            if buf[0] != 0xA5 {
                return Err(format!("raw bytes out of step: {:02x?}", &buf[..11]));
            }
            let id = u64::from_le_bytes(buf[1..9].try_into().expect("8 bytes"));
            let len = u16::from_le_bytes([buf[9], buf[10]]) as usize;
            if buf.len() < 11 + len {
                return Ok(());
            }
            let rec: Vec<u8> = buf.drain(..11 + len).collect();
            let sent = ledger
                .sent
                .get(&id)
                .ok_or(format!("raw record {id} never sent"))?;
            if sent.payload != rec {
                return Err(format!("raw record {id} differs from what was sent"));
            }
            let here = (sent.publication, sent.seq);
            if let Some(last) = self.last_seq {
                if here.0 < last.0 || here.0 == last.0 && here.1 <= last.1 {
                    return Err(format!("raw record {here:?} after {last:?}"));
                }
                if self.contiguous && here.0 == last.0 && here.1 != last.1 + 1 {
                    return Err(format!("raw record {here:?} after {last:?}: a gap"));
                }
            }
            self.last_seq = Some(here);
            self.frames += 1;
        }
    }

    fn media(&mut self, ty: u8, ts: u32, data: &[u8], ledger: &Ledger) -> Result<(), String> {
        let id = match ty {
            9 if data.len() >= 13 => u64::from_le_bytes(data[5..13].try_into().expect("8")),
            8 if data.len() >= 10 => u64::from_le_bytes(data[2..10].try_into().expect("8")),
            18 => {
                let values = amf0::decode_all(data, &AmfLimits::default())
                    .map_err(|e| format!("metadata does not parse: {e:?}"))?;
                if values.first().and_then(Amf0Value::as_str) != Some("onMetaData") {
                    return Err("script data is not onMetaData".into());
                }
                values
                    .get(1)
                    .and_then(|v| v.get_f64("id"))
                    .ok_or("metadata without id")? as u64
            }
            _ => return Err(format!("message type {ty} of {} bytes", data.len())),
        };
        let sent = ledger
            .sent
            .get(&id)
            .ok_or(format!("packet {id} never sent"))?;
        if sent.payload != data {
            return Err(format!("packet {id} differs from what was sent"));
        }
        if sent.kind as u8 != ty {
            return Err(format!(
                "packet {id} of kind {:?} arrived as type {ty}",
                sent.kind
            ));
        }
        if let Some(p) = self.publication {
            if sent.publication < p {
                return Err(format!("publication {} after {p}", sent.publication));
            }
        }
        if self.publication != Some(sent.publication) {
            self.publication = Some(sent.publication);
            self.video_header = false;
            self.audio_header = false;
            self.last_frame = None;
        }
        let header = sent.flags & (flags::SEQUENCE_HEADER | flags::METADATA) != 0;
        match sent.kind {
            MediaKind::Video if header => self.video_header = true,
            MediaKind::Audio if header => self.audio_header = true,
            MediaKind::Video => {
                if !self.video_header {
                    return Err(format!("video {id} before the video sequence header"));
                }
                let ok = if sent.flags & flags::KEYFRAME != 0 {
                    true
                } else {
                    self.last_frame == Some((sent.frame.0, sent.frame.1.wrapping_sub(1)))
                };
                if !ok {
                    return Err(format!(
                        "video frame {:?} after {:?}: not decodable",
                        sent.frame, self.last_frame
                    ));
                }
                self.last_frame = Some(sent.frame);
            }
            MediaKind::Audio if !self.audio_header => {
                return Err(format!("audio {id} before the audio sequence header"));
            }
            _ => {}
        }
        if !header {
            if let Some(last) = self.last_ts {
                if ts < last {
                    return Err(format!("timestamp {ts} after {last}"));
                }
            }
            self.last_ts = Some(ts);
            self.frames += 1;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The model

struct Pub {
    peer: Peer,
    rx: UnboundedReceiver<Box<Event>>,
    publication: u32,
    stream: Option<Arc<Stream>>,
    /// The hub's current publisher (not replaced, not refused).
    current: bool,
    generator: Generator,
}

struct Viewer {
    peer: Peer,
    rx: UnboundedReceiver<Box<Event>>,
    subscription: u32,
    stream: Option<Arc<Stream>>,
    /// Subscribed, and the hub has not ended the subscription.
    active: bool,
    fmt: Fmt,
    validator: Validator,
    /// Its queue was aborted (too slow): the connection is gone.
    dead: bool,
}

struct World {
    media: bool,
    hub: Arc<Hub>,
    timers: Arc<ManualTimers>,
    rtmp: Arc<Frontend>,
    fstream: Arc<Frontend>,
    ledger: Ledger,
    pubs: Vec<Option<Pub>>,
    viewers: Vec<Option<Viewer>>,
    next_conn: u64,
    next_number: u32,
    clock_ts: u32,
    log: Arc<Mutex<Vec<String>>>,
}

fn frontend(name: &str, factory: fstream_abi::FrontendFactoryBox) -> Arc<Frontend> {
    Arc::new(Frontend {
        plugin: name.into(),
        protocol: name.into(),
        default_listen: String::new(),
        factory,
        takes_commands: true,
    })
}

impl World {
    fn new(media: bool, gop_bytes: u64) -> Self {
        let timers = ManualTimers::new();
        let cfg = HubConfig {
            gop_cache_bytes: gop_bytes,
            ..HubConfig::default()
        };
        let hub = Hub::with_timers(cfg, Vec::new(), timers.clone());
        Self {
            media,
            hub,
            timers,
            rtmp: frontend(
                "rtmp",
                frontend_box(rtmp::RtmpFrontend::new(rtmp::settings::Settings::default())),
            ),
            fstream: frontend("fstream", frontend_box(FlvFrontend)),
            ledger: Ledger::default(),
            pubs: (0..PUBLISHERS).map(|_| None).collect(),
            viewers: (0..VIEWERS).map(|_| None).collect(),
            next_conn: 0,
            next_number: 0,
            clock_ts: 1000,
            log: Arc::default(),
        }
    }

    fn peer(&mut self, fe: Arc<Frontend>) -> (Peer, UnboundedReceiver<Box<Event>>) {
        self.next_conn += 1;
        let (tx, rx) = unbounded_channel();
        (
            Peer {
                conn_id: self.next_conn,
                out: Outq::detached(Duration::from_millis(50), 1 << 30),
                events: EventTx::new(tx),
                frontend: fe,
            },
            rx,
        )
    }

    fn number(&mut self) -> u32 {
        self.next_number += 1;
        self.next_number
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match op.clone() {
            Op::Publish {
                who,
                reject,
                grace_ms,
                password,
            } => {
                if let Some(p) = self.pubs[who].take() {
                    if let Some(s) = &p.stream {
                        self.hub.unpublish(s, p.peer.conn_id, p.publication);
                    }
                }
                let (peer, rx) = self.peer(self.rtmp.clone());
                let publication = self.number();
                let options = PublishOptions {
                    channel_password: if password {
                        ROption::RSome(RString::from(PASSWORD))
                    } else {
                        ROption::RNone
                    },
                    conflict: if reject {
                        PublishConflict::Reject
                    } else {
                        PublishConflict::Replace
                    },
                    grace_ms,
                    record: RecordMode::Live,
                    query: "".into(),
                    ext: Default::default(),
                };
                let (_, stream) = self
                    .hub
                    .publish(&peer, publication, STREAM, "test", options);
                let current = stream.is_some();
                if current {
                    for p in self.pubs.iter_mut().flatten() {
                        p.current = false;
                    }
                }
                self.clock_ts = self.clock_ts.wrapping_add(7919);
                self.pubs[who] = Some(Pub {
                    peer,
                    rx,
                    publication,
                    stream,
                    current,
                    generator: Generator::new(self.media, publication, self.clock_ts % 5000),
                });
            }
            Op::Unpublish { who } => {
                if let Some(p) = self.pubs[who].take() {
                    if let Some(s) = &p.stream {
                        self.hub.unpublish(s, p.peer.conn_id, p.publication);
                    }
                }
            }
            Op::Send { who, n } => {
                if let Some(p) = self.pubs[who].as_mut() {
                    if let Some(s) = p.stream.clone() {
                        for _ in 0..n {
                            let pkt = p.generator.next(&mut self.ledger);
                            self.hub.packet(&s, p.peer.conn_id, p.publication, pkt);
                        }
                    }
                }
            }
            Op::NewHeaders { who } => {
                if let Some(p) = self.pubs[who].as_mut() {
                    if let (Some(s), true) = (p.stream.clone(), self.media && p.generator.step >= 3)
                    {
                        for pkt in p.generator.headers(&mut self.ledger) {
                            self.hub.packet(&s, p.peer.conn_id, p.publication, pkt);
                        }
                    }
                }
            }
            Op::Subscribe {
                viewer,
                spec,
                same_conn,
            } => self.subscribe(viewer, &spec, same_conn)?,
            Op::Unsubscribe { viewer } => {
                if let Some(v) = self.viewers[viewer].as_mut() {
                    if let (Some(s), true) = (v.stream.take(), v.active) {
                        self.hub.unsubscribe(&s, v.peer.conn_id, v.subscription);
                    }
                    v.active = false;
                }
            }
            Op::Control { viewer, control } => {
                if let Some(v) = self.viewers[viewer].as_ref() {
                    if let (Some(s), true) = (&v.stream, v.active) {
                        let c = match control {
                            Ctl::Pause(p) => SubscriptionControl::Pause(p),
                            Ctl::Audio(on) => SubscriptionControl::ReceiveAudio(on),
                            Ctl::Video(on) => SubscriptionControl::ReceiveVideo(on),
                        };
                        self.hub.control(s, v.peer.conn_id, v.subscription, c);
                    }
                }
            }
            Op::Read { viewer } => self.read(viewer)?,
            Op::ReadAll => {
                for i in 0..VIEWERS {
                    self.read(i)?;
                }
            }
            Op::Advance { ms } => self.timers.advance(ms as u64),
        }
        self.events();
        self.check_state()
    }

    fn subscribe(
        &mut self,
        viewer: usize,
        spec: &ViewerSpec,
        same_conn: bool,
    ) -> Result<(), String> {
        // A viewer subscribes once at a time; fstream and raw watchers use a new connection
        // per subscription, RTMP players may play again on theirs.
        let reuse = same_conn
            && matches!(
                &self.viewers[viewer],
                Some(v) if !v.active && !v.dead && matches!(v.fmt, Fmt::Rtmp { .. }) && v.fmt == spec.fmt
            );
        if !reuse {
            if let Some(v) = self.viewers[viewer].as_mut() {
                if let (Some(s), true) = (v.stream.take(), v.active) {
                    self.hub.unsubscribe(&s, v.peer.conn_id, v.subscription);
                }
            }
            self.read(viewer)?;
            let fe = match spec.fmt {
                Fmt::Rtmp { .. } => self.rtmp.clone(),
                _ => self.fstream.clone(),
            };
            let (peer, rx) = self.peer(fe);
            self.viewers[viewer] = Some(Viewer {
                peer,
                rx,
                subscription: 0,
                stream: None,
                active: false,
                fmt: spec.fmt,
                validator: Validator::new(spec.fmt, self.media, !spec.skip),
                dead: false,
            });
        } else {
            self.read(viewer)?;
        }
        let subscription = self.number();
        let v = self.viewers[viewer].as_mut().expect("viewer");
        if reuse {
            v.validator.resubscribed();
        }
        let options = SubscribeOptions {
            format: spec.fmt.name().into(),
            channel_password: match spec.password {
                None => ROption::RNone,
                Some(true) => ROption::RSome(PASSWORD.into()),
                Some(false) => ROption::RSome("nope".into()),
            },
            wait_ms: spec.wait_ms,
            overflow: if spec.skip {
                OverflowPolicy::SkipToKeyframe
            } else {
                OverflowPolicy::Disconnect
            },
            max_queue_bytes: spec.queue,
            join_with_cache: spec.cache,
            audio: spec.audio,
            video: spec.video,
            start_ms: 0,
            ext: Default::default(),
        };
        v.subscription = subscription;
        v.stream = self.hub.subscribe(&v.peer, subscription, STREAM, options);
        v.active = v.stream.is_some();
        Ok(())
    }

    fn read(&mut self, viewer: usize) -> Result<(), String> {
        let Some(v) = self.viewers[viewer].as_mut() else {
            return Ok(());
        };
        let bytes = v.peer.out.take_queued();
        v.validator
            .feed(&bytes, &self.ledger)
            .map_err(|e| format!("viewer {viewer} ({:?}): {e}", v.fmt))
    }

    /// Statuses the hub sent: the ones that end a subscription, and replacements.
    fn events(&mut self) {
        for v in self.viewers.iter_mut().flatten() {
            while let Ok(e) = v.rx.try_recv() {
                if let Event::Subscription {
                    subscription,
                    status,
                } = *e
                {
                    let status = status.into_enum().ok();
                    let ends = matches!(
                        status,
                        Some(
                            SubscriptionStatus::Ended
                                | SubscriptionStatus::NotFound
                                | SubscriptionStatus::Forbidden
                                | SubscriptionStatus::TooSlow
                        )
                    );
                    if ends && subscription == v.subscription {
                        v.active = false;
                        v.stream = None;
                    }
                    if status == Some(SubscriptionStatus::TooSlow) && subscription == v.subscription
                    {
                        v.dead = true;
                    }
                    self.log.lock().expect("log").push(format!(
                        "conn {} sub {subscription}: {status:?}",
                        v.peer.conn_id
                    ));
                }
            }
        }
        for p in self.pubs.iter_mut().flatten() {
            while let Ok(e) = p.rx.try_recv() {
                if let Event::PublicationReplaced { publication } = *e {
                    if publication == p.publication {
                        p.current = false;
                    }
                }
            }
        }
    }

    /// The hub holds exactly what the model says, and no timer outlives its owner.
    fn check_state(&self) -> Result<(), String> {
        let active: Vec<&Viewer> = self.viewers.iter().flatten().filter(|v| v.active).collect();
        let publishing = self.pubs.iter().flatten().any(|p| p.current);
        let Some(stream) = self.hub.stream(STREAM) else {
            if !active.is_empty() || publishing {
                return Err("the stream is gone while it has a publisher or subscribers".into());
            }
            if self.timers.pending() != 0 {
                return Err(format!(
                    "{} timers left with no stream",
                    self.timers.pending()
                ));
            }
            return Ok(());
        };
        let st = stream.stats();
        let formats: BTreeSet<String> = active
            .iter()
            .map(|v| match v.fmt {
                // Raw subscribers of either frontend share nothing: the raw format is per
                // frontend too.
                Fmt::Raw => format!("raw:{}", v.peer.frontend.plugin),
                f => f.name(),
            })
            .collect();
        let expect = (publishing, active.len(), formats.len());
        let got = (st.publishing, st.subscribers, st.formats);
        if expect != got {
            return Err(format!(
                "hub state (publishing, subscribers, formats) {got:?}, model {expect:?}"
            ));
        }
        if st.grace_timer && st.publishing {
            return Err("a grace timer runs while a publisher is live".into());
        }
        let timers = st.grace_timer as usize + st.wait_timers;
        if self.timers.pending() != timers {
            return Err(format!(
                "{} timers pending, {} owned by the stream",
                self.timers.pending(),
                timers
            ));
        }
        Ok(())
    }

    /// Everyone leaves; after the longest grace period nothing is left of the stream.
    fn finish(&mut self) -> Result<(), String> {
        for i in 0..VIEWERS {
            self.read(i)?;
        }
        for who in 0..PUBLISHERS {
            self.apply(&Op::Unpublish { who })?;
        }
        for viewer in 0..VIEWERS {
            self.apply(&Op::Unsubscribe { viewer })?;
        }
        self.timers.advance(10_000);
        if self.hub.stream_count() != 0 || self.timers.pending() != 0 {
            return Err(format!(
                "left behind: {} streams, {} timers",
                self.hub.stream_count(),
                self.timers.pending()
            ));
        }
        Ok(())
    }
}

fn run(media: bool, gop_bytes: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut w = World::new(media, gop_bytes);
    for (i, op) in ops.iter().enumerate() {
        w.apply(op)
            .map_err(|e| TestCaseError::fail(format!("step {i} {op:?}: {e}")))?;
    }
    w.finish().map_err(TestCaseError::fail)?;
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn media_histories(
        gop_bytes in prop::sample::select(vec![16u64 << 20, 6_000]),
        ops in prop::collection::vec(op_strategy(true), 1..80),
    ) {
        run(true, gop_bytes, &ops)?;
    }

    #[test]
    fn raw_histories(ops in prop::collection::vec(op_strategy(false), 1..60)) {
        run(false, 16 << 20, &ops)?;
    }
}

/// The history of issue 10: a player plays, leaves, and a second player of the same format
/// joins. Before the fix the second one got bare payloads with no chunk header.
#[test]
fn second_rtmp_player_after_the_first_left() {
    let fmt = Fmt::Rtmp {
        chunk: 4096,
        msid: 1,
    };
    let spec = ViewerSpec {
        fmt,
        audio: true,
        video: true,
        skip: false,
        queue: 0,
        cache: true,
        wait_ms: 0,
        password: None,
    };
    let ops = [
        Op::Publish {
            who: 0,
            reject: false,
            grace_ms: 0,
            password: false,
        },
        Op::Send { who: 0, n: 10 },
        Op::Subscribe {
            viewer: 0,
            spec: spec.clone(),
            same_conn: false,
        },
        Op::Send { who: 0, n: 10 },
        Op::Read { viewer: 0 },
        Op::Unsubscribe { viewer: 0 },
        Op::Send { who: 0, n: 10 },
        Op::Subscribe {
            viewer: 1,
            spec,
            same_conn: false,
        },
        Op::Send { who: 0, n: 10 },
        Op::ReadAll,
    ];
    let mut w = World::new(true, 16 << 20);
    for op in &ops {
        w.apply(op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
    let v = w.viewers[1].as_ref().expect("viewer 1");
    assert!(
        v.validator.frames >= 10,
        "frames decoded: {}",
        v.validator.frames
    );
    w.finish().expect("finish");
}
