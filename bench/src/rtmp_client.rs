//! A small async RTMP client: enough to play and to publish like ffmpeg does.

use std::collections::VecDeque;

use anyhow::{anyhow, bail, Context};
use fstream_media::{
    amf0::Amf0Value,
    rtmp::{
        chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits},
        handshake::{ClientHandshake, HandshakeStatus},
        message::{msg_type, Command, CommandEncoding, ControlMessage, UserControlEvent},
        RtmpMessage,
    },
    AmfLimits,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const READ_BUF: usize = 64 * 1024;

pub struct RtmpConn {
    sock: TcpStream,
    dec: ChunkDecoder,
    enc: ChunkEncoder,
    buf: Vec<u8>,
    /// Commands and media that arrived while waiting for something else.
    queued: VecDeque<RtmpMessage>,
    /// Bytes read from the socket so far.
    pub bytes_in: u64,
    acked: u64,
    window: u64,
    next_txn: f64,
}

impl RtmpConn {
    /// Connects, shakes hands and sends `connect(app)`; returns once it is accepted.
    pub async fn connect(addr: &str, app: &str) -> anyhow::Result<Self> {
        let mut sock = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        sock.set_nodelay(true)?;
        let mut hs = ClientHandshake::new(0, &mut rand::thread_rng());
        sock.write_all(&hs.c0c1()).await?;
        let mut buf = vec![0u8; READ_BUF];
        let mut c2 = Vec::new();
        loop {
            let n = sock.read(&mut buf).await?;
            if n == 0 {
                bail!("server closed during the handshake");
            }
            match hs
                .feed(&buf[..n], &mut c2)
                .map_err(|e| anyhow!("handshake: {e}"))?
            {
                HandshakeStatus::Complete => break,
                HandshakeStatus::NeedMore => {}
            }
        }
        sock.write_all(&c2).await?;
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        dec.push(&hs.take_leftover());
        let mut conn = RtmpConn {
            sock,
            dec,
            enc: ChunkEncoder::default(),
            buf,
            queued: VecDeque::new(),
            bytes_in: 0,
            acked: 0,
            window: 2_500_000,
            next_txn: 2.0,
        };
        let tc_url = format!("rtmp://{addr}/{app}");
        let obj = Amf0Value::object([
            ("app", app.into()),
            ("flashVer", "FMLE/3.0 (compatible; fstream-bench)".into()),
            ("tcUrl", tc_url.as_str().into()),
            ("fpad", false.into()),
            ("capabilities", 15.0.into()),
            ("audioCodecs", 4071.0.into()),
            ("videoCodecs", 252.0.into()),
            ("videoFunction", 1.0.into()),
            ("objectEncoding", 0.0.into()),
        ]);
        conn.command(0, Command::new("connect", 1.0, obj, vec![]))
            .await?;
        let reply = conn.wait_result(1.0).await?;
        if reply.name != "_result" {
            bail!("connect refused: {:?}", reply.args);
        }
        conn.control(ControlMessage::WindowAckSize(2_500_000))
            .await?;
        Ok(conn)
    }

    pub async fn command(&mut self, stream_id: u32, cmd: Command) -> anyhow::Result<()> {
        let csid = if stream_id == 0 { 3 } else { 8 };
        let msg = cmd.to_message(CommandEncoding::Amf0, csid, stream_id)?;
        self.send(&msg).await
    }

    pub async fn control(&mut self, c: ControlMessage) -> anyhow::Result<()> {
        if let ControlMessage::SetChunkSize(n) = c {
            self.enc.set_chunk_size(n)?;
        }
        self.send(&c.to_message()).await
    }

    pub async fn send(&mut self, msg: &RtmpMessage) -> anyhow::Result<()> {
        let bytes = self.enc.encode_message(msg.csid, msg)?;
        self.sock.write_all(&bytes).await?;
        Ok(())
    }

    /// The next message that is not protocol control (which is handled here).
    pub async fn next_message(&mut self) -> anyhow::Result<RtmpMessage> {
        if let Some(m) = self.queued.pop_front() {
            return Ok(m);
        }
        loop {
            while let Some(m) = self.dec.next_message()? {
                if let Some(m) = self.handle_control(m).await? {
                    return Ok(m);
                }
            }
            let n = self.sock.read(&mut self.buf).await?;
            if n == 0 {
                bail!("server closed the connection");
            }
            self.bytes_in += n as u64;
            self.dec.push(&self.buf[..n]);
            if self.bytes_in - self.acked >= self.window {
                self.acked = self.bytes_in;
                let ack = ControlMessage::Acknowledgement(self.bytes_in as u32);
                self.send(&ack.to_message()).await?;
            }
        }
    }

    async fn handle_control(&mut self, m: RtmpMessage) -> anyhow::Result<Option<RtmpMessage>> {
        if !fstream_media::rtmp::message::is_protocol_control(m.type_id) {
            return Ok(Some(m));
        }
        match ControlMessage::parse(m.type_id, &m.payload)? {
            ControlMessage::SetChunkSize(n) => self.dec.set_chunk_size(n)?,
            ControlMessage::WindowAckSize(n) => self.window = n.max(1) as u64,
            ControlMessage::UserControl(UserControlEvent::PingRequest(t)) => {
                let pong = ControlMessage::UserControl(UserControlEvent::PingResponse(t));
                self.send(&pong.to_message()).await?;
            }
            _ => {}
        }
        Ok(None)
    }

    /// Waits for `_result`/`_error` of a transaction, queueing anything else.
    async fn wait_result(&mut self, txn: f64) -> anyhow::Result<Command> {
        let mut other = VecDeque::new();
        let found = loop {
            let m = self.next_message().await?;
            if matches!(m.type_id, msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3) {
                let c = Command::parse(m.type_id, &m.payload, &AmfLimits::default())?;
                if (c.name == "_result" || c.name == "_error") && c.transaction_id == txn {
                    break c;
                }
            }
            other.push_back(m);
        };
        other.append(&mut self.queued);
        self.queued = other;
        Ok(found)
    }

    /// Waits for an `onStatus` and returns its code.
    pub async fn wait_status(&mut self) -> anyhow::Result<String> {
        loop {
            let m = self.next_message().await?;
            if matches!(m.type_id, msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3) {
                let c = Command::parse(m.type_id, &m.payload, &AmfLimits::default())?;
                if c.name == "onStatus" {
                    let code = c
                        .arg(0)
                        .and_then(|i| i.get_str("code"))
                        .unwrap_or("")
                        .to_string();
                    return Ok(code);
                }
            }
        }
    }

    pub async fn create_stream(&mut self) -> anyhow::Result<u32> {
        let txn = self.next_txn;
        self.next_txn += 1.0;
        self.command(
            0,
            Command::new("createStream", txn, Amf0Value::Null, vec![]),
        )
        .await?;
        let r = self.wait_result(txn).await?;
        r.arg(0)
            .and_then(|v| v.as_f64())
            .map(|v| v as u32)
            .ok_or_else(|| anyhow!("createStream: no stream id"))
    }

    /// Starts playing `name` on a new stream (as ffmpeg: start -2000, buffer 3 s).
    pub async fn play(&mut self, name: &str) -> anyhow::Result<u32> {
        let id = self.create_stream().await?;
        let play = Command::new(
            "play",
            0.0,
            Amf0Value::Null,
            vec![name.into(), (-2000.0).into()],
        );
        self.command(id, play).await?;
        let buffer = ControlMessage::UserControl(UserControlEvent::SetBufferLength {
            stream_id: id,
            buffer_ms: 3000,
        });
        self.control(buffer).await?;
        Ok(id)
    }

    /// Publishes `name` (OBS's sequence); returns the message stream id once it started.
    pub async fn publish(&mut self, name: &str) -> anyhow::Result<u32> {
        let base = name.split('?').next().unwrap_or(name);
        for cmd in ["releaseStream", "FCPublish"] {
            let txn = self.next_txn;
            self.next_txn += 1.0;
            self.command(
                0,
                Command::new(cmd, txn, Amf0Value::Null, vec![base.into()]),
            )
            .await?;
        }
        let id = self.create_stream().await?;
        let publish = Command::new(
            "publish",
            0.0,
            Amf0Value::Null,
            vec![name.into(), "live".into()],
        );
        self.command(id, publish).await?;
        loop {
            let code = self.wait_status().await?;
            match code.as_str() {
                "NetStream.Publish.Start" => return Ok(id),
                c if c.contains("Publish") => bail!("publish refused: {c}"),
                _ => {}
            }
        }
    }
}
