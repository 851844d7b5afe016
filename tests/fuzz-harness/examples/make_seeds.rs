//! Writes the seed inputs of every fuzz target to `fuzz/seeds/TARGET/`: small valid inputs the
//! fuzzer mutates from (`fuzz/run.sh` copies them into its corpus). Each input starts with the
//! control byte the target reads first (piece size, limits).
//!
//! `cargo run -p fuzz-harness --example make_seeds`

use std::path::Path;

use fstream_media::amf0::Amf0Value;
use fstream_media::amf3::{self, Amf3Object, Amf3Value};
use fstream_media::flv::{self, TagType};
use fstream_media::rtmp::chunk::encode_message;
use fstream_media::rtmp::handshake::HANDSHAKE_SIZE;
use fstream_media::rtmp::message::{Command, CommandEncoding, ControlMessage};
use fstream_media::rtmp::RtmpMessage;
use fstream_wire::{encode_preamble, Prelude};

fn with_control(c: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![c];
    v.extend_from_slice(body);
    v
}

fn connect() -> Command {
    Command::new(
        "connect",
        1.0,
        Amf0Value::object([
            ("app", Amf0Value::from("alice")),
            ("tcUrl", Amf0Value::from("rtmp://localhost/alice")),
            ("objectEncoding", Amf0Value::Number(0.0)),
        ]),
        vec![],
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = repo.join("fuzz/seeds");
    let mut seeds: Vec<(&str, &str, Vec<u8>)> = Vec::new();

    // fstream_preamble
    for (n, action, prelude) in [
        ("watch", "watch,user=fier,channel=default", Prelude::Blank),
        (
            "broadcast",
            "broadcast,user=fier,user-password=123,channel=cam,bufsize=4096",
            Prelude::None,
        ),
        (
            "token-http",
            "token,user=fier,user_password=123",
            Prelude::Http {
                host: "example".into(),
            },
        ),
    ] {
        let mut frame = encode_preamble(action, prelude);
        frame.extend_from_slice(b"FLV\x01");
        seeds.push(("fstream_preamble", n, with_control(3, &frame)));
    }
    seeds.push((
        "fstream_preamble",
        "small-limits",
        with_control(0x88, &encode_preamble("watch,user=a", Prelude::Blank)),
    ));

    // rtmp_handshake: C0 C1 C2 then the first chunk bytes.
    let mut hs = vec![3u8];
    hs.extend((0..HANDSHAKE_SIZE).map(|i| if (4..8).contains(&i) { 0 } else { i as u8 }));
    hs.extend(std::iter::repeat_n(0xC2, HANDSHAKE_SIZE));
    hs.extend_from_slice(&[3, 0, 0, 0]);
    seeds.push(("rtmp_handshake", "simple", with_control(0x10, &hs)));
    let mut digest = hs.clone();
    digest[5..9].copy_from_slice(&[9, 0, 124, 2]);
    seeds.push(("rtmp_handshake", "digest0", with_control(0x11, &digest)));
    seeds.push(("rtmp_handshake", "digest1", with_control(0x92, &digest)));

    // rtmp_chunk: a publisher's first messages.
    let mut stream = Vec::new();
    let msgs = [
        ControlMessage::SetChunkSize(4096).to_message(),
        RtmpMessage::new(3, 0, 20, 0, connect().encode(CommandEncoding::Amf0)?),
        RtmpMessage::new(3, 0, 17, 0, {
            let mut p = vec![0];
            p.extend(
                Command::new("publish", 5.0, Amf0Value::Null, vec!["cam".into()])
                    .encode(CommandEncoding::Amf0)?,
            );
            p
        }),
        RtmpMessage::new(4, 40, 9, 1, vec![0x17, 0, 0, 0, 0, 1, 2, 3]),
        RtmpMessage::new(5, 0x0100_0000, 8, 1, vec![0xAF, 1, 0x21]),
        RtmpMessage::new(320, 7, 18, 1, vec![2, 0, 1, b'x']),
    ];
    let mut size = 128;
    for m in &msgs {
        stream.extend(encode_message(size, m.csid, m)?);
        if let Ok(ControlMessage::SetChunkSize(n)) = ControlMessage::parse(m.type_id, &m.payload) {
            size = n;
        }
    }
    seeds.push(("rtmp_chunk", "publish", with_control(0x0F, &stream)));
    seeds.push(("rtmp_chunk", "publish-bytewise", with_control(0, &stream)));

    // amf0 / amf3
    seeds.push(("amf0", "connect", connect().encode(CommandEncoding::Amf0)?));
    seeds.push((
        "amf0",
        "on-metadata",
        flv::build_on_metadata(&[
            ("duration".into(), Amf0Value::Number(12.5)),
            ("filesize".into(), Amf0Value::Number(1e6)),
            ("encoder".into(), Amf0Value::from("Lavf")),
        ])?,
    ));
    let a3 = Amf3Value::Object(Amf3Object::anonymous([
        ("app", Amf3Value::from("alice")),
        ("again", Amf3Value::from("alice")),
        ("n", Amf3Value::Integer(-5)),
        ("d", Amf3Value::Double(0.5)),
    ]));
    seeds.push(("amf3", "object", amf3::to_vec(&a3)?));
    seeds.push(("amf3", "connect", connect().encode(CommandEncoding::Amf3)?));

    // flv_tag
    let mut file = Vec::new();
    flv::write_file_header(&mut file, true, true);
    flv::write_tag(
        &mut file,
        TagType::Script,
        0,
        &flv::build_on_metadata(&[("duration".into(), Amf0Value::Number(1.0))])?,
    )?;
    flv::write_tag(&mut file, TagType::Video, 0, &[0x17, 0, 0, 0, 0, 1, 0x64])?;
    flv::write_tag(&mut file, TagType::Audio, 0, &[0xAF, 0, 0x12, 0x10])?;
    flv::write_tag(&mut file, TagType::Video, 40, &[0x27, 1, 0, 0, 0, 9])?;
    flv::write_tag(&mut file, TagType::Audio, 0x0100_0005, &[0xAF, 1, 0x21])?;
    seeds.push(("flv_tag", "file", with_control(0x07, &file)));
    seeds.push(("flv_tag", "file-small-limit", with_control(0x81, &file)));
    seeds.push((
        "flv_tag",
        "at-tag",
        with_control(0x45, file.get(13..).unwrap_or_default()),
    ));

    // rtmp_session / fstream_session: scripts of client bytes and host events.
    for (name, bytes) in fuzz_harness::session::rtmp::seeds() {
        seeds.push(("rtmp_session", name, bytes));
    }
    for (name, bytes) in fuzz_harness::session::rtmp_client::seeds() {
        seeds.push(("rtmp_client_session", name, bytes));
    }
    for (name, bytes) in fuzz_harness::session::fstream::seeds() {
        seeds.push(("fstream_session", name, bytes));
    }

    // mods_file / host_toml
    seeds.push((
        "mods_file",
        "main",
        std::fs::read(repo.join("mods/main.mods"))?,
    ));
    seeds.push((
        "mods_file",
        "comments",
        b"# c\n  auth-ini  # first\n\nrtmp\r\nrtmp-app\n".to_vec(),
    ));
    seeds.push((
        "host_toml",
        "shipped",
        std::fs::read(repo.join("mods/host.toml"))?,
    ));
    seeds.push((
        "host_toml",
        "listen",
        b"log = \"debug\"\n[listen]\nfstream = \"127.0.0.1:0\"\n[hub]\ngather_ms = 0\n".to_vec(),
    ));

    for (target, name, bytes) in seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), &bytes)?;
        println!("{target}/{name}: {} bytes", bytes.len());
    }
    Ok(())
}
