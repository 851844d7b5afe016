//! A byte-level RTMP client for tests, written with `fstream-media`'s codecs: the handshake,
//! chunking, commands, and the few NetConnection/NetStream calls tests need. It checks what the
//! server sends (every chunk must parse) and lets a test say every byte it sends.

use std::{
    collections::VecDeque,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use fstream_media::{
    amf0::{self, Amf0Value},
    flv::{classify_video, FlvDemuxer, VideoPacket},
    rtmp::{
        chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, RtmpMessage},
        handshake::{ClientHandshake, HandshakeStatus},
        message::{msg_type, Command as RtmpCommand, CommandEncoding, ControlMessage},
    },
    AmfLimits,
};

pub struct RtmpClient {
    pub sock: TcpStream,
    pub enc: ChunkEncoder,
    pub dec: ChunkDecoder,
    got: VecDeque<RtmpMessage>,
    eof: bool,
}

/// An onStatus / _error info object: (level, code, description).
pub type Info = (String, String, String);

pub fn info_of(cmd: &RtmpCommand) -> Info {
    let a = cmd.args.first().cloned().unwrap_or(Amf0Value::Null);
    let f = |k| a.get_str(k).unwrap_or("").to_string();
    (f("level"), f("code"), f("description"))
}

impl RtmpClient {
    /// Connects and completes a simple handshake (as OBS does).
    pub fn new(addr: SocketAddr) -> Self {
        let mut sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.set_nodelay(true).unwrap();
        let mut hs = ClientHandshake::new(0, &mut rand::thread_rng());
        sock.write_all(&hs.c0c1()).unwrap();
        let mut c2 = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = sock.read(&mut buf).expect("handshake reply");
            assert!(n > 0, "closed during the handshake");
            if hs.feed(&buf[..n], &mut c2).unwrap() == HandshakeStatus::Complete {
                break;
            }
        }
        sock.write_all(&c2).unwrap();
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        dec.push(&hs.take_leftover());
        RtmpClient {
            sock,
            enc: ChunkEncoder::default(),
            dec,
            got: VecDeque::new(),
            eof: false,
        }
    }

    pub fn send(&mut self, m: &RtmpMessage) {
        let b = self.enc.encode_message(m.csid, m).unwrap();
        self.sock.write_all(&b).unwrap();
    }

    pub fn set_chunk_size(&mut self, n: u32) {
        self.send(&ControlMessage::SetChunkSize(n).to_message());
        self.enc.set_chunk_size(n).unwrap();
    }

    pub fn command(
        &mut self,
        msid: u32,
        name: &str,
        txn: f64,
        obj: Amf0Value,
        args: Vec<Amf0Value>,
    ) {
        let csid = if msid == 0 { 3 } else { 8 };
        let m = RtmpCommand::new(name, txn, obj, args)
            .to_message(CommandEncoding::Amf0, csid, msid)
            .unwrap();
        self.send(&m);
    }

    /// The next message from the server; `None` at EOF.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<RtmpMessage> {
        self.message_by(None)
    }

    /// The next message, waiting until `deadline` at most (`None`: the socket's 10 s read
    /// timeout fails the test); `None` at EOF or at the deadline. Every chunk must parse.
    fn message_by(&mut self, deadline: Option<std::time::Instant>) -> Option<RtmpMessage> {
        let mut buf = [0u8; 65536];
        loop {
            if let Some(m) = self.got.pop_front() {
                return Some(m);
            }
            while let Some(m) = self.dec.next_message().expect("server chunks") {
                if let Ok(ControlMessage::SetChunkSize(n)) =
                    ControlMessage::parse(m.type_id, &m.payload)
                {
                    self.dec.set_chunk_size(n).unwrap();
                }
                self.got.push_back(m);
            }
            if !self.got.is_empty() {
                continue;
            }
            if self.eof {
                return None;
            }
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return None;
                }
                self.sock.set_read_timeout(Some(left)).unwrap();
            }
            let r = self.sock.read(&mut buf);
            if deadline.is_some() {
                self.sock
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
            }
            match r {
                Ok(0) => self.eof = true,
                Ok(n) => self.dec.push(&buf[..n]),
                Err(e)
                    if deadline.is_some()
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => self.eof = true,
                Err(e) => panic!("reading from the server: {e}"),
            }
        }
    }

    /// The next command the server sends within `within`, or `None` if it sends none (or
    /// closes) by then.
    pub fn command_within(&mut self, within: Duration) -> Option<RtmpCommand> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let m = self.message_by(Some(deadline))?;
            if matches!(m.type_id, msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3) {
                return Some(
                    RtmpCommand::parse(m.type_id, &m.payload, &AmfLimits::default()).unwrap(),
                );
            }
        }
    }

    /// Whether the server closed the connection (seen by a read).
    pub fn closed(&self) -> bool {
        self.eof
    }

    /// The next command message, skipping everything else.
    pub fn next_command(&mut self) -> RtmpCommand {
        loop {
            let m = self.next().expect("a command before EOF");
            if matches!(m.type_id, msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3) {
                return RtmpCommand::parse(m.type_id, &m.payload, &AmfLimits::default()).unwrap();
            }
        }
    }

    /// The next command named `name`.
    pub fn expect(&mut self, name: &str) -> RtmpCommand {
        loop {
            let c = self.next_command();
            if c.name == name {
                return c;
            }
        }
    }

    /// connect to `app`; returns the `_result`/`_error` answer.
    pub fn connect(&mut self, app: &str) -> RtmpCommand {
        self.send_connect(app);
        self.connect_answer()
    }

    /// Sends `connect` to `app` (which may carry a query: `studio?key=x`) without waiting.
    pub fn send_connect(&mut self, app: &str) {
        let url = format!("rtmp://{}/{app}", self.sock.peer_addr().unwrap());
        let obj = Amf0Value::object([
            ("app", Amf0Value::from(app)),
            ("type", Amf0Value::from("nonprivate")),
            (
                "flashVer",
                Amf0Value::from("FMLE/3.0 (compatible; FMSc/1.0)"),
            ),
            ("swfUrl", Amf0Value::from(url.as_str())),
            ("tcUrl", Amf0Value::from(url.as_str())),
        ]);
        self.command(0, "connect", 1.0, obj, vec![]);
    }

    /// The answer to `connect` (`_result` or `_error`, transaction 1).
    pub fn connect_answer(&mut self) -> RtmpCommand {
        loop {
            let c = self.next_command();
            if c.transaction_id == 1.0 && (c.name == "_result" || c.name == "_error") {
                return c;
            }
        }
    }

    /// createStream; returns the stream id.
    pub fn create_stream(&mut self, txn: f64) -> u32 {
        self.command(0, "createStream", txn, Amf0Value::Null, vec![]);
        loop {
            let c = self.expect("_result");
            if c.transaction_id == txn {
                return c.args[0].as_f64().unwrap() as u32;
            }
        }
    }

    /// publish `key` on `msid`; returns the first onStatus.
    pub fn publish(&mut self, msid: u32, key: &str) -> Info {
        let args = vec![Amf0Value::from(key), Amf0Value::from("live")];
        self.command(msid, "publish", 5.0, Amf0Value::Null, args);
        info_of(&self.expect("onStatus"))
    }
}

impl RtmpClient {
    /// publish `key` on `msid` with the publish type `kind` (`live`, `record`, `append`: what
    /// FMLE sends and ffmpeg cannot); returns the first onStatus and those the server sends
    /// within `more` after it (`NetStream.Record.NoAccess` follows `Publish.Start` at once).
    pub fn publish_typed(&mut self, msid: u32, key: &str, kind: &str, more: Duration) -> Vec<Info> {
        let args = vec![Amf0Value::from(key), Amf0Value::from(kind)];
        self.command(msid, "publish", 5.0, Amf0Value::Null, args);
        let mut got = vec![info_of(&self.expect("onStatus"))];
        while let Some(c) = self.command_within(more) {
            if c.name == "onStatus" {
                got.push(info_of(&c));
            }
        }
        got
    }
}

/// Sends the tags of an FLV file as an RTMP publisher would (metadata as `@setDataFrame`);
/// returns the number of video frames sent.
pub fn send_flv_tags(client: &mut RtmpClient, msid: u32, flv: &[u8]) -> usize {
    send_tags(client, msid, flv, None)
}

/// [`send_flv_tags`] at the pace of the tags' timestamps, as a live encoder sends them.
pub fn send_flv_tags_paced(client: &mut RtmpClient, msid: u32, flv: &[u8]) -> usize {
    send_tags(client, msid, flv, Some(std::time::Instant::now()))
}

fn send_tags(
    client: &mut RtmpClient,
    msid: u32,
    flv: &[u8],
    paced_from: Option<std::time::Instant>,
) -> usize {
    let mut d = FlvDemuxer::new(16 << 20);
    d.push(flv);
    let mut video = 0;
    while let Some(t) = d.next_tag().unwrap() {
        let tag = t.tag;
        if let Some(start) = paced_from {
            let due = start + Duration::from_millis(u64::from(tag.timestamp));
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let (csid, payload) = match tag.tag_type as u8 {
            msg_type::DATA_AMF0 => {
                let mut p = amf0::to_vec(&Amf0Value::from("@setDataFrame")).unwrap();
                p.extend_from_slice(&tag.data);
                (4, p)
            }
            msg_type::AUDIO => (4, tag.data.to_vec()),
            _ => {
                if classify_video(&tag.data).is_some_and(|i| i.packet == VideoPacket::CodedFrame) {
                    video += 1;
                }
                (6, tag.data.to_vec())
            }
        };
        let m = RtmpMessage::new(csid, tag.timestamp, tag.tag_type as u8, msid, payload);
        client.send(&m);
    }
    video
}
