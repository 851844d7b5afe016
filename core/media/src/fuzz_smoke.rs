//! Deterministic smoke fuzzing: random and mutated inputs through every decoder must never
//! panic (debug builds also catch arithmetic overflow). Real fuzz targets can reuse the same
//! entry points.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::amf0::{self, Amf0Value};
use crate::amf3::{self, Amf3Object, Amf3Value};
use crate::flv::{self, FlvDemuxer, TagType};
use crate::rtmp::chunk::{encode_message, ChunkDecoder, ChunkLimits};
use crate::rtmp::handshake::{ClientHandshake, ServerHandshake};
use crate::rtmp::message::{parse_data, split_aggregate, Command, CommandEncoding, ControlMessage};
use crate::rtmp::RtmpMessage;
use crate::AmfLimits;

const ROUNDS: usize = 3000;

fn limits() -> AmfLimits {
    AmfLimits {
        max_depth: 16,
        max_nodes: 10_000,
        max_bytes: 1 << 20,
        max_refs: 256,
    }
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let n = rng.gen_range(0..max);
    (0..n).map(|_| rng.gen()).collect()
}

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.gen_range(1..6) {
        match rng.gen_range(0..4) {
            0 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] = rng.gen();
            }
            1 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v.truncate(i);
            }
            2 => {
                let i = rng.gen_range(0..=v.len());
                v.insert(i, rng.gen());
            }
            _ if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            _ => {}
        }
    }
    v
}

fn amf_seeds() -> Vec<Vec<u8>> {
    let c = Command::new(
        "connect",
        1.0,
        Amf0Value::object([
            ("app", Amf0Value::from("live")),
            ("list", Amf0Value::StrictArray(vec![1.0.into(), "x".into()])),
            (
                "a3",
                Amf0Value::Avmplus(Box::new(Amf3Value::Object(Amf3Object::anonymous([
                    ("k", Amf3Value::from("v")),
                    ("k2", Amf3Value::from("v")),
                    ("n", Amf3Value::Integer(-5)),
                ])))),
            ),
        ]),
        vec![Amf0Value::Date {
            millis: 1.0,
            timezone: 0,
        }],
    );
    vec![
        c.encode(CommandEncoding::Amf0).unwrap_or_default(),
        c.encode(CommandEncoding::Amf3).unwrap_or_default(),
        flv::build_on_metadata(&[("duration".into(), Amf0Value::Number(1.0))]).unwrap_or_default(),
    ]
}

#[test]
fn amf_decoders_never_panic() {
    let mut rng = StdRng::seed_from_u64(0xA3F0);
    let seeds = amf_seeds();
    for i in 0..ROUNDS {
        let input = if i % 2 == 0 {
            random_bytes(&mut rng, 64)
        } else {
            mutate(&mut rng, &seeds[i % seeds.len()])
        };
        let _ = amf0::decode(&input, &limits());
        let _ = amf0::decode_all(&input, &limits());
        let _ = amf3::decode(&input, &limits());
        let _ = Command::parse(20, &input, &limits());
        let _ = Command::parse(17, &input, &limits());
        let _ = parse_data(15, &input, &limits());
        let _ = flv::parse_on_metadata(&input, &limits());
        let _ = flv::metadata_number_offset(&input, "duration", &limits());
        for t in 1..=6 {
            let _ = ControlMessage::parse(t, &input);
        }
        let _ = split_aggregate(&RtmpMessage::new(3, 0, 22, 1, input.clone()));
        let _ = flv::classify_video(&input);
        let _ = flv::classify_audio(&input);
    }
}

#[test]
fn flv_demuxer_never_panics() {
    let mut rng = StdRng::seed_from_u64(0xF1F0);
    let mut file = Vec::new();
    flv::write_file_header(&mut file, true, true);
    for (t, ts, d) in [
        (TagType::Script, 0, vec![2, 0, 1, b'x']),
        (TagType::Video, 0, vec![0x17, 0, 1, 2]),
        (TagType::Audio, 5, vec![0xAF, 0]),
        (TagType::Video, 40, vec![0x27, 1, 3]),
    ] {
        let _ = flv::write_tag(&mut file, t, ts, &d);
    }
    for i in 0..ROUNDS {
        let input = if i % 4 == 0 {
            random_bytes(&mut rng, 128)
        } else {
            mutate(&mut rng, &file)
        };
        let mut d = if i % 3 == 0 {
            FlvDemuxer::at_tag(64, 0)
        } else {
            FlvDemuxer::new(64)
        };
        for piece in input.chunks(rng.gen_range(1..20)) {
            d.push(piece);
            while let Ok(Some(_)) = d.next_tag() {}
        }
    }
}

#[test]
fn chunk_decoder_never_panics() {
    let mut rng = StdRng::seed_from_u64(0xC0DE);
    let mut stream = Vec::new();
    for (csid, ts, len) in [
        (3u32, 0u32, 10usize),
        (4, 0x0100_0000, 300),
        (320, 5, 129),
        (64, 7, 0),
    ] {
        let m = RtmpMessage::new(csid, ts, 9, 1, vec![0x5A; len]);
        stream.extend(encode_message(128, csid, &m).unwrap_or_default());
    }
    let lim = ChunkLimits {
        max_chunk_size: 1 << 16,
        max_message_size: 1 << 16,
        max_chunk_streams: 8,
        max_pending_bytes: 1 << 17,
    };
    for i in 0..ROUNDS {
        let input = if i % 4 == 0 {
            random_bytes(&mut rng, 256)
        } else {
            mutate(&mut rng, &stream)
        };
        let mut d = ChunkDecoder::new(lim);
        if i % 5 == 0 {
            let _ = d.set_chunk_size(rng.gen_range(1..300));
        }
        for piece in input.chunks(rng.gen_range(1..40)) {
            d.push(piece);
            while let Ok(Some(m)) = d.next_message() {
                if m.type_id == 1 {
                    if let Ok(ControlMessage::SetChunkSize(n)) =
                        ControlMessage::parse(1, &m.payload)
                    {
                        let _ = d.set_chunk_size(n);
                    }
                }
                if i % 7 == 0 {
                    d.abort(m.csid);
                }
            }
        }
    }
}

#[test]
fn handshakes_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x4A5);
    for _ in 0..200 {
        let mut input = random_bytes(&mut rng, 4000);
        if let Some(b) = input.first_mut() {
            *b = 3;
        }
        let mut s = ServerHandshake::new(0, &mut rng);
        let mut c = ClientHandshake::new(0, &mut rng);
        let mut out = Vec::new();
        for piece in input.chunks(rng.gen_range(1..2000)) {
            let _ = s.feed(piece, &mut out);
            let _ = c.feed(piece, &mut out);
        }
    }
}
