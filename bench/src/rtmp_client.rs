//! A small async RTMP client: enough to play and to publish like ffmpeg does. Every byte it
//! receives after the handshake goes through [`RtmpCheck`], so a stream that does not parse is
//! an error carrying [`Corrupt`].

use std::collections::VecDeque;

use anyhow::{anyhow, bail, Context};
use fstream_media::{
    amf0::Amf0Value,
    rtmp::{
        chunk::ChunkEncoder,
        handshake::{ClientHandshake, HandshakeStatus},
        message::{Command, CommandEncoding, ControlMessage, UserControlEvent},
        RtmpMessage,
    },
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::check::{hex, Corrupt, Item, RtmpCheck};

const READ_BUF: usize = 64 * 1024;

pub struct RtmpConn {
    sock: TcpStream,
    check: RtmpCheck,
    enc: ChunkEncoder,
    buf: Vec<u8>,
    /// Stream offset of the last read and its length, to show the bytes where a check failed.
    last_read: (u64, usize),
    /// Commands and media that arrived while waiting for something else.
    queued: VecDeque<Item>,
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
        let mut check = RtmpCheck::new();
        let leftover = hs.take_leftover();
        check.push(&leftover);
        // Kept for error context only, and only when it fits (it always does: it is the tail
        // of one read).
        let kept = match buf.get_mut(..leftover.len()) {
            Some(b) => {
                b.copy_from_slice(&leftover);
                leftover.len()
            }
            None => 0,
        };
        let mut conn = RtmpConn {
            sock,
            check,
            enc: ChunkEncoder::default(),
            buf,
            last_read: (0, kept),
            queued: VecDeque::new(),
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

    /// Bytes received up to the end of the last complete (and valid) message.
    pub fn validated(&self) -> u64 {
        self.check.validated()
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

    /// Adds the received bytes at the failure, when they are in the last read.
    fn with_bytes(&self, mut e: Corrupt) -> Corrupt {
        let (start, len) = self.last_read;
        if let Some(i) = e.at.checked_sub(start).filter(|&i| i < len as u64) {
            let at = &self.buf[i as usize..len];
            e.what.push_str(&format!(" (bytes there: {})", hex(at, 16)));
        }
        e
    }

    /// The next checked message that is not protocol control (which is handled here).
    pub async fn next_message(&mut self) -> anyhow::Result<Item> {
        if let Some(m) = self.queued.pop_front() {
            return Ok(m);
        }
        loop {
            match self.check.next() {
                Ok(Some(Item::Control(c))) => self.handle_control(c).await?,
                Ok(Some(item)) => return Ok(item),
                Ok(None) => {
                    let n = self.sock.read(&mut self.buf).await?;
                    if n == 0 {
                        bail!("server closed the connection");
                    }
                    self.last_read = (self.check.received(), n);
                    self.check.push(&self.buf[..n]);
                    let received = self.check.received();
                    if received - self.acked >= self.window {
                        self.acked = received;
                        let ack = ControlMessage::Acknowledgement(received as u32);
                        self.send(&ack.to_message()).await?;
                    }
                }
                Err(e) => return Err(self.with_bytes(e).into()),
            }
        }
    }

    /// Answers what a client must (Set Chunk Size and Abort were applied by the check).
    async fn handle_control(&mut self, c: ControlMessage) -> anyhow::Result<()> {
        match c {
            ControlMessage::WindowAckSize(n) => self.window = n.max(1) as u64,
            ControlMessage::UserControl(UserControlEvent::PingRequest(t)) => {
                let pong = ControlMessage::UserControl(UserControlEvent::PingResponse(t));
                self.send(&pong.to_message()).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Waits for `_result`/`_error` of a transaction, queueing anything else.
    async fn wait_result(&mut self, txn: f64) -> anyhow::Result<Command> {
        let mut other = VecDeque::new();
        let found = loop {
            match self.next_message().await? {
                Item::Command { command: c, .. }
                    if (c.name == "_result" || c.name == "_error") && c.transaction_id == txn =>
                {
                    break c
                }
                item => other.push_back(item),
            }
        };
        other.append(&mut self.queued);
        self.queued = other;
        Ok(found)
    }

    /// Waits for an `onStatus` and returns its code.
    pub async fn wait_status(&mut self) -> anyhow::Result<String> {
        loop {
            if let Item::Command { command: c, .. } = self.next_message().await? {
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
