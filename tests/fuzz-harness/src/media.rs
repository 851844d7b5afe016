//! `rtmp_handshake`, `rtmp_chunk`, `amf0`, `amf3`: core/media's RTMP and AMF codecs.

use fstream_media::amf0::{self, Amf0Value};
use fstream_media::amf3;
use fstream_media::flv;
use fstream_media::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, ChunkLimits};
use fstream_media::rtmp::handshake::{
    imprint_digest, ClientHandshake, DigestScheme, HandshakeStatus, ServerHandshake,
    GENUINE_FP_KEY, GENUINE_FP_KEY_SHORT_LEN, HANDSHAKE_SIZE,
};
use fstream_media::rtmp::message::{
    msg_type, parse_data, split_aggregate, Command, CommandEncoding, ControlMessage,
};
use fstream_media::rtmp::RtmpMessage;
use fstream_media::AmfLimits;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Small enough that the fuzzer reaches every limit, large enough for real commands.
pub const AMF_LIMITS: AmfLimits = AmfLimits {
    max_depth: 16,
    max_nodes: 10_000,
    max_bytes: 1 << 20,
    max_refs: 256,
};

// ---------------------------------------------------------------------------------------------
// Handshake

/// The server handshake on arbitrary client bytes (with a valid Flash Player digest imprinted
/// into C1 when the control byte asks, so the digest path is reached), fed in pieces: the reply
/// is S0+S1+S2 and the leftover is exactly what followed C2.
pub fn rtmp_handshake(data: &[u8]) {
    let (c, rest) = crate::control(data);
    let mut input = rest.to_vec();
    if c & 0x03 != 0 && input.len() > HANDSHAKE_SIZE {
        let scheme = if c & 0x01 != 0 {
            DigestScheme::Scheme0
        } else {
            DigestScheme::Scheme1
        };
        if let Some(c1) = input
            .get_mut(1..1 + HANDSHAKE_SIZE)
            .and_then(|s| <&mut [u8; HANDSHAKE_SIZE]>::try_from(s).ok())
        {
            imprint_digest(c1, scheme, &GENUINE_FP_KEY[..GENUINE_FP_KEY_SHORT_LEN]);
        }
    }
    let step = usize::from(c >> 2) * 61 + 1;
    let mut rng = StdRng::seed_from_u64(u64::from(c));

    let mut server = ServerHandshake::new(u32::from(c), &mut rng);
    let mut out = Vec::new();
    let mut fed = 0;
    for piece in input.chunks(step) {
        fed += piece.len();
        match server.feed(piece, &mut out) {
            Ok(HandshakeStatus::NeedMore) => {
                assert!(!server.is_complete());
                if fed > HANDSHAKE_SIZE {
                    assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE, "S0+S1+S2 after C0+C1");
                }
            }
            Ok(HandshakeStatus::Complete) => {
                assert!(server.is_complete());
                assert!(server.kind().is_some());
                assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE);
                let after_c2 = input.get(1 + 2 * HANDSHAKE_SIZE..fed).unwrap_or_default();
                assert_eq!(server.take_leftover(), after_c2);
                break;
            }
            Err(_) => {
                assert!(fed > 0 && input.first() != Some(&3));
                break;
            }
        }
    }

    // The client side on the same bytes as server bytes.
    let mut client = if c & 0x80 != 0 {
        ClientHandshake::new_digest(0, &mut rng)
    } else {
        ClientHandshake::new(0, &mut rng)
    };
    assert_eq!(client.c0c1().len(), 1 + HANDSHAKE_SIZE);
    let mut c2 = Vec::new();
    let mut fed = 0;
    for piece in input.chunks(step) {
        fed += piece.len();
        match client.feed(piece, &mut c2) {
            Ok(HandshakeStatus::NeedMore) => assert!(c2.is_empty()),
            Ok(HandshakeStatus::Complete) => {
                assert_eq!(c2, input.get(1..1 + HANDSHAKE_SIZE).unwrap_or_default());
                let after = input.get(1 + 2 * HANDSHAKE_SIZE..fed).unwrap_or_default();
                assert_eq!(client.take_leftover(), after);
                break;
            }
            Err(_) => break,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chunk stream

const CHUNK_LIMITS: ChunkLimits = ChunkLimits {
    max_chunk_size: 1 << 16,
    max_message_size: 1 << 16,
    max_chunk_streams: 8,
    max_pending_bytes: 1 << 17,
};

/// Decodes a chunk stream fed in `step`-byte pieces, applying Set Chunk Size and Abort as a
/// frontend does. Returns the messages and the error that stopped it, if any.
fn decode_chunks(input: &[u8], step: usize) -> (Vec<RtmpMessage>, Option<ChunkError>) {
    let mut d = ChunkDecoder::new(CHUNK_LIMITS);
    let mut msgs = Vec::new();
    for piece in input.chunks(step.max(1)) {
        d.push(piece);
        loop {
            match d.next_message() {
                Ok(Some(m)) => {
                    match ControlMessage::parse(m.type_id, &m.payload) {
                        Ok(ControlMessage::SetChunkSize(n)) => {
                            if let Err(e) = d.set_chunk_size(n) {
                                return (msgs, Some(e));
                            }
                        }
                        Ok(ControlMessage::Abort(csid)) => d.abort(csid),
                        _ => {}
                    }
                    msgs.push(m);
                }
                Ok(None) => break,
                Err(e) => return (msgs, Some(e)),
            }
        }
    }
    (msgs, None)
}

/// Parses a message's payload the way the RTMP frontend would.
fn parse_message(m: &RtmpMessage, depth: usize) {
    match m.type_id {
        msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
            if let Ok(cmd) = Command::parse(m.type_id, &m.payload, &AMF_LIMITS) {
                command_round_trip(&cmd);
            }
        }
        msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => {
            let _ = parse_data(m.type_id, &m.payload, &AMF_LIMITS);
        }
        msg_type::AUDIO => {
            let _ = flv::classify_audio(&m.payload);
        }
        msg_type::VIDEO => {
            let _ = flv::classify_video(&m.payload);
        }
        msg_type::AGGREGATE if depth == 0 => {
            if let Ok(parts) = split_aggregate(m) {
                for p in &parts {
                    assert!(p.payload.len() <= m.payload.len());
                    parse_message(p, depth + 1);
                }
            }
        }
        t if t <= msg_type::SET_PEER_BANDWIDTH => {
            if let Ok(c) = ControlMessage::parse(t, &m.payload) {
                // A parsed control message re-encodes to something that parses the same.
                let again = ControlMessage::parse(c.type_id(), &c.payload());
                assert_eq!(again.as_ref(), Ok(&c));
            }
        }
        _ => {}
    }
}

/// A parsed command encodes, and the encoding parses to the same command (NaN aside).
fn command_round_trip(cmd: &Command) {
    for enc in [CommandEncoding::Amf0, CommandEncoding::Amf3] {
        let Ok(bytes) = cmd.encode(enc) else { continue };
        let again = Command::parse(enc.type_id(), &bytes, &generous(&AMF_LIMITS))
            .unwrap_or_else(|e| panic!("re-parsing an encoded command failed: {e}"));
        assert_eq!(again.name, cmd.name);
        if let (Ok(a), Ok(b)) = (again.encode(enc), cmd.encode(enc)) {
            assert_eq!(a, b, "command encoding is not a fixed point");
        }
    }
}

/// Limits for re-decoding what we encoded: encoders may spend more nodes or bytes than the
/// compact input did (AMF3 string references are expanded in the value, for instance).
fn generous(l: &AmfLimits) -> AmfLimits {
    AmfLimits {
        max_depth: l.max_depth + 2,
        max_nodes: l.max_nodes * 4,
        max_bytes: l.max_bytes * 4,
        // The encoder writes every object in full (it emits no object references), so a value
        // decoded through many references re-encodes into up to one table entry per node.
        max_refs: l.max_refs.max(l.max_nodes) * 4,
    }
}

/// The chunk decoder fed in pieces agrees with it fed at once; every message re-chunks and
/// decodes back to itself.
pub fn rtmp_chunk(data: &[u8]) {
    let (c, input) = crate::control(data);
    let (whole, whole_err) = decode_chunks(input, input.len());
    let (pieces, pieces_err) = decode_chunks(input, usize::from(c) + 1);
    assert_eq!(whole, pieces, "whole input vs pieces: messages differ");
    assert_eq!(
        whole_err, pieces_err,
        "whole input vs pieces: errors differ"
    );

    let chunk_size = u32::from(c & 0x7F) + 1;
    let Ok(encoder) = ChunkEncoder::new(chunk_size) else {
        panic!("chunk size {chunk_size} refused");
    };
    for m in &whole {
        assert!(m.payload.len() <= CHUNK_LIMITS.max_message_size as usize);
        parse_message(m, 0);
        let bytes = encoder
            .encode_message(m.csid, m)
            .unwrap_or_else(|e| panic!("re-encoding a decoded message failed: {e}"));
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        d.set_chunk_size(chunk_size)
            .unwrap_or_else(|e| panic!("chunk size {chunk_size}: {e}"));
        d.push(&bytes);
        let again = d.next_message();
        assert_eq!(again.as_ref(), Ok(&Some(m.clone())), "re-chunked message");
        assert_eq!(d.next_message(), Ok(None));
        assert_eq!(d.buffered(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// AMF

/// One AMF0 value and a sequence of them, plus everything built on AMF0 (commands, data
/// messages, onMetaData); decoded values re-encode to a fixed point.
pub fn amf0(data: &[u8]) {
    if let Ok((v, used)) = amf0::decode(data, &AMF_LIMITS) {
        assert!(used > 0 && used <= data.len());
        amf0_fixed_point(&v);
        amf0_fixed_point(&v.clone().normalized());
    }
    if let Ok(all) = amf0::decode_all(data, &AMF_LIMITS) {
        assert!(data.is_empty() || !all.is_empty());
        let mut out = Vec::new();
        if amf0::encode_all(&all, &mut out).is_ok() {
            let again = amf0::decode_all(&out, &generous(&AMF_LIMITS))
                .unwrap_or_else(|e| panic!("re-decoding an encoded sequence failed: {e}"));
            assert_eq!(again.len(), all.len());
        }
    }
    if let Ok(cmd) = Command::parse(msg_type::COMMAND_AMF0, data, &AMF_LIMITS) {
        command_round_trip(&cmd);
    }
    let _ = Command::parse(msg_type::COMMAND_AMF3, data, &AMF_LIMITS);
    let _ = parse_data(msg_type::DATA_AMF0, data, &AMF_LIMITS);
    let _ = flv::parse_script_data(data, &AMF_LIMITS);
    let _ = flv::parse_on_metadata(flv::strip_set_data_frame(data), &AMF_LIMITS);
    for key in ["duration", "filesize", ""] {
        if let Ok(Some(at)) = flv::metadata_number_offset(data, key, &AMF_LIMITS) {
            // The offset is that of an 8-byte Number inside the input, after its marker.
            assert!(
                at >= 1 && at + 8 <= data.len(),
                "offset {at} of {}",
                data.len()
            );
            assert_eq!(data.get(at - 1), Some(&amf0::marker::NUMBER));
        }
    }
}

fn amf0_fixed_point(v: &Amf0Value) {
    let Ok(bytes) = amf0::to_vec(v) else { return };
    let (again, used) = amf0::decode(&bytes, &generous(&AMF_LIMITS))
        .unwrap_or_else(|e| panic!("re-decoding an encoded AMF0 value failed: {e}"));
    assert_eq!(used, bytes.len());
    let bytes2 = amf0::to_vec(&again)
        .unwrap_or_else(|e| panic!("re-encoding a re-decoded AMF0 value failed: {e}"));
    assert_eq!(bytes, bytes2, "AMF0 encoding is not a fixed point");
}

/// One AMF3 value (and the AMF0 -> AMF3 switch); decoded values re-encode to a fixed point and
/// convert to AMF0.
pub fn amf3(data: &[u8]) {
    if let Ok((v, used)) = amf3::decode(data, &AMF_LIMITS) {
        assert!(used > 0 && used <= data.len());
        if let Ok(bytes) = amf3::to_vec(&v) {
            let (again, used) = amf3::decode(&bytes, &generous(&AMF_LIMITS))
                .unwrap_or_else(|e| panic!("re-decoding an encoded AMF3 value failed: {e}"));
            assert_eq!(used, bytes.len());
            let bytes2 = amf3::to_vec(&again)
                .unwrap_or_else(|e| panic!("re-encoding a re-decoded AMF3 value failed: {e}"));
            assert_eq!(bytes, bytes2, "AMF3 encoding is not a fixed point");
        }
        amf0_fixed_point(&v.to_amf0());
    }
    // The same bytes after the AMF0 avmplus switch, and as a type-17 command body.
    let mut switched = vec![amf0::marker::AVMPLUS_OBJECT];
    switched.extend_from_slice(data);
    let _ = amf0::decode(&switched, &AMF_LIMITS);
    let _ = Command::parse(msg_type::COMMAND_AMF3, data, &AMF_LIMITS);
    let _ = parse_data(msg_type::DATA_AMF3, data, &AMF_LIMITS);
}

/// `ts_mux`: core/media's `TsMuxer` fed video and audio tag data as a publisher sends it.
/// The script is `[kind][ts_lo][len][bytes...]` steps (kind bit 0: audio, bit 1: a segment's
/// tables first). Checked: no panic; the output is whole 188-byte packets with sync bytes; each
/// PID's continuity counter goes up by one per packet; payload-carrying PES start with a start
/// code.
pub fn ts_mux(data: &[u8]) {
    use fstream_media::ts::{TsMuxer, TS_PACKET_LEN};
    let (c, mut script) = crate::control(data);
    let mut m = TsMuxer::new(c & 1 == 0 || c & 2 != 0, c & 1 != 0 || c & 2 != 0);
    let mut out = Vec::new();
    let mut ts = 0u32;
    while let [kind, step, len, rest @ ..] = script {
        let take = usize::from(*len).min(rest.len());
        let body = &rest[..take];
        script = &rest[take..];
        ts = ts.wrapping_add(u32::from(*step));
        if kind & 2 != 0 {
            m.tables(&mut out);
        }
        if kind & 1 != 0 {
            m.audio(&mut out, body, ts);
        } else {
            m.video(&mut out, body, ts);
        }
    }
    assert_eq!(out.len() % TS_PACKET_LEN, 0, "whole packets");
    let mut cc: std::collections::HashMap<u16, u8> = Default::default();
    for p in out.chunks(TS_PACKET_LEN) {
        assert_eq!(p[0], 0x47, "sync byte");
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let counter = p[3] & 0x0F;
        if let Some(prev) = cc.insert(pid, counter) {
            assert_eq!(counter, (prev + 1) & 0x0F, "continuity of PID {pid:#x}");
        }
        let afc = (p[3] >> 4) & 3;
        let mut at = 4;
        if afc & 2 != 0 {
            at += 1 + usize::from(p[4]);
            assert!(at <= TS_PACKET_LEN, "adaptation field past the packet");
        }
        if p[1] & 0x40 != 0 && pid != 0 && pid != 0x1000 {
            assert_eq!(&p[at..at + 3], &[0, 0, 1], "a PES start code");
        }
    }
}

/// core/media's fMP4 muxer fed a script of tags, like [`ts_mux`]: `[kind, step, len, body...]`
/// repeated, where bit 0 of `kind` picks audio or video, bit 1 ends a fragment first, and bit 2
/// also hands the body to the parameter-set readers. Checked: no panic; the output is whole
/// `moof`+`mdat` pairs in which every run's data offset and sample sizes stay inside its
/// `mdat`; the init segment, whenever there is one, is exactly `ftyp` then `moov`.
pub fn fmp4_mux(data: &[u8]) {
    use fstream_media::fmp4::{
        boxes::{find_box, read_boxes},
        dims, Fmp4Muxer,
    };
    let (c, mut script) = crate::control(data);
    let mut m = Fmp4Muxer::new(c & 1 == 0 || c & 2 != 0, c & 1 != 0 || c & 2 != 0);
    let mut out = Vec::new();
    let mut ts = 0u32;
    let check = |frag: &[u8]| {
        let boxes = read_boxes(frag);
        assert_eq!(
            boxes.iter().map(|b| b.body.len() + 8).sum::<usize>(),
            frag.len(),
            "boxes fill the fragment"
        );
        for pair in boxes.chunks(2) {
            let [moof, mdat] = pair else {
                panic!("a moof without its mdat")
            };
            assert_eq!((&moof.kind, &mdat.kind), (b"moof", b"mdat"));
            let moof_len = moof.body.len() + 8;
            for traf in read_boxes(moof.body).iter().filter(|b| &b.kind == b"traf") {
                let trun = find_box(traf.body, b"trun").expect("a trun");
                let n = u32::from_be_bytes(trun[4..8].try_into().unwrap()) as usize;
                let offset = u32::from_be_bytes(trun[8..12].try_into().unwrap()) as usize;
                let sizes: usize = (0..n)
                    .map(|i| {
                        let at = 12 + i * 16 + 4;
                        u32::from_be_bytes(trun[at..at + 4].try_into().unwrap()) as usize
                    })
                    .sum();
                assert!(n > 0, "an empty run");
                assert!(offset >= moof_len + 8, "data before the mdat's body");
                assert!(
                    offset + sizes <= moof_len + 8 + mdat.body.len(),
                    "a run past its mdat"
                );
            }
        }
    };
    while let [kind, step, len, rest @ ..] = script {
        let take = usize::from(*len).min(rest.len());
        let body = &rest[..take];
        script = &rest[take..];
        ts = ts.wrapping_add(u32::from(*step));
        if kind & 2 != 0 {
            out.clear();
            m.fragment(&mut out, ts);
            check(&out);
        }
        if kind & 4 != 0 {
            let _ = dims::h264_sps(body);
            let _ = dims::hevc_sps(body);
            let _ = dims::hevc_record_sps(body);
            let _ = dims::av1_sequence_header(body);
            let _ = dims::av1_record(body);
        }
        if kind & 1 != 0 {
            m.audio(body, ts);
        } else {
            m.video(body, ts);
        }
        if let Some(init) = m.init_segment() {
            let kinds: Vec<_> = read_boxes(&init).iter().map(|b| b.kind).collect();
            assert_eq!(kinds, [*b"ftyp", *b"moov"]);
        }
    }
    out.clear();
    m.fragment(&mut out, ts.wrapping_add(40));
    check(&out);
}
