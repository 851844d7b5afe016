//! Command messages: the dispatch, and the NetConnection commands (`connect`, `createStream`,
//! `deleteStream`, `releaseStream`, `FCPublish`, ...). NetStream commands are in
//! [`crate::publish`] and [`crate::play`].

use abi_stable::std_types::{RString, RVec};
use fstream_abi::{
    AppCall, AppDecision, AppVerdict, ClientCommand, CloseMode, ConnectCall, Outbox,
};
use fstream_media::{
    amf0::Amf0Value,
    rtmp::{
        chunk::RtmpMessage,
        message::{Command, CommandEncoding, ControlMessage, PeerBandwidthLimit, Status},
    },
};
use serde_json::Value;

use crate::{
    amf_json::to_json,
    chunkio::{ChunkOut, CSID_COMMAND, CSID_STREAM},
    error::{EncodeError, Violation},
    names::{parse_app, UNKNOWN_VERDICT},
    session::RtmpSession,
    state::{Conn, Connected, NetStream, Pending, Role, Wait},
};

/// What we tell clients we are (some check for "FMS").
const FMS_VERSION: &str = "FMS/3,5,7,7009";

/// A status info object with the stream name as `details`.
pub(crate) fn status(
    level: &str,
    code: &str,
    description: impl Into<String>,
    details: &str,
) -> Status {
    Status::with_level(level, code, description).with("details", details)
}

/// `onStatus` on a message stream.
pub(crate) fn send_status(w: &mut ChunkOut, msid: u32, st: Status) -> Result<(), EncodeError> {
    w.command(CSID_STREAM, msid, &Command::on_status(&st))
}

fn arg_str(cmd: &Command, i: usize) -> &str {
    cmd.arg(i).and_then(Amf0Value::as_str).unwrap_or("")
}

impl RtmpSession {
    pub(crate) fn on_command(
        &mut self,
        msg: &RtmpMessage,
        _now: u64,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        let cmd = Command::parse(msg.type_id, &msg.payload, Self::amf_limits())?;
        let msid = msg.stream_id;
        tracing::debug!(command = %cmd.name, txn = cmd.transaction_id, msid, "command");
        let connected = matches!(self.conn, Conn::Connected(_));
        match cmd.name.as_str() {
            "connect" => return self.cmd_connect(&cmd, out),
            // Answers to calls of ours (an app handler's commands): nothing to do.
            "_result" | "_error" | "onStatus" => return Ok(()),
            _ if !connected => {
                return self.call_failed(cmd.transaction_id, "Not connected: send connect first.")
            }
            _ => {}
        }
        let txn = cmd.transaction_id;
        match cmd.name.as_str() {
            "createStream" => self.cmd_create_stream(txn)?,
            "deleteStream" => {
                let id = cmd.arg(0).and_then(Amf0Value::as_f64).unwrap_or(0.0);
                if id >= 1.0 && id <= f64::from(u32::MAX) {
                    let id = id as u32;
                    self.end_role(id, true, out);
                    self.streams.remove(&id);
                }
            }
            "closeStream" => self.end_role(msid, true, out),
            "releaseStream" | "FCPublish" | "FCUnpublish" | "FCSubscribe" | "FCUnsubscribe" => {
                let name = arg_str(&cmd, 0).to_string();
                self.cmd_fc(&cmd.name, txn, &name, out)?
            }
            "getStreamLength" => self.result(txn, vec![Amf0Value::Number(0.0)])?,
            "publish" => self.cmd_publish(msid, &cmd, out)?,
            "play" => self.cmd_play(msid, &cmd, out)?,
            "pause" => self.cmd_pause(msid, &cmd, out)?,
            "seek" => self.cmd_seek(msid, &cmd, out)?,
            "receiveAudio" | "receiveVideo" => {
                let on = cmd.arg(0).and_then(Amf0Value::as_bool).unwrap_or(true);
                self.cmd_receive(msid, cmd.name == "receiveAudio", on, out)
            }
            _ => self.cmd_custom(&cmd, out)?,
        }
        Ok(())
    }

    /// `_result` with a null command object.
    pub(crate) fn result(&mut self, txn: f64, args: Vec<Amf0Value>) -> Result<(), Violation> {
        if txn != 0.0 {
            let cmd = Command::result(txn, Amf0Value::Null, args);
            self.output.command(CSID_COMMAND, 0, &cmd)?;
        }
        Ok(())
    }

    /// `_error` NetConnection.Call.Failed; the connection stays.
    pub(crate) fn call_failed(&mut self, txn: f64, description: &str) -> Result<(), Violation> {
        if txn != 0.0 {
            let st = Status::error("NetConnection.Call.Failed", description);
            let cmd = Command::error(txn, Amf0Value::Null, vec![st.to_amf0()]);
            self.output.command(CSID_COMMAND, 0, &cmd)?;
        }
        Ok(())
    }

    fn cmd_connect(&mut self, cmd: &Command, out: &mut Outbox) -> Result<(), Violation> {
        let txn = cmd.transaction_id;
        if !matches!(self.conn, Conn::New) {
            return self.call_failed(txn, "Already connected.");
        }
        let obj = &cmd.command_object;
        let object_encoding = obj.get_f64("objectEncoding").unwrap_or(0.0);
        self.output.encoding = CommandEncoding::from_object_encoding(object_encoding);
        if object_encoding != 0.0 && object_encoding != 3.0 {
            let why = format!("Unsupported objectEncoding {object_encoding}.");
            return self.connect_refused(txn, &why, None, &[], out);
        }
        let raw_app = obj.get_str("app").unwrap_or("");
        let app = match parse_app(raw_app) {
            Ok(a) => a,
            Err(e) => {
                let why = format!("Bad app name {raw_app:?}: {e}.");
                return self.connect_refused(txn, &why, None, &[], out);
            }
        };
        let tc_url = obj.get_str("tcUrl").unwrap_or("").to_string();
        let args: Vec<Value> = std::iter::once(&cmd.command_object)
            .chain(cmd.args.iter())
            .map(to_json)
            .collect();
        tracing::debug!(app = %app.name, tc_url = %tc_url, object_encoding, "connect");
        self.conn = Conn::Connecting;
        let request = self.request_id();
        let call = AppCall::Connect(ConnectCall {
            app: app.name.clone().into(),
            tc_url: tc_url.into(),
            args_json: Value::Array(args).to_string().into(),
            caller: self.caller.clone(),
            ext: RVec::new(),
        });
        self.wait = Some(Wait::App {
            request,
            call: Pending::Connect {
                txn,
                app: app.name,
                app_query: app.query,
                object_encoding,
            },
        });
        self.call_app(out, request, call);
        Ok(())
    }

    pub(crate) fn connect_decided(
        &mut self,
        txn: f64,
        app: String,
        app_query: String,
        object_encoding: f64,
        decision: AppDecision,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        match decision.verdict() {
            Some(AppVerdict::Accept) => {}
            Some(AppVerdict::Reject(why)) => {
                return self.connect_refused(txn, why, None, &decision.commands, out)
            }
            Some(AppVerdict::Redirect(to)) => {
                return self.connect_refused(txn, "Redirected.", Some(to), &decision.commands, out)
            }
            // A verdict of a newer app handler is no permission.
            _ => return self.connect_refused(txn, UNKNOWN_VERDICT, None, &decision.commands, out),
        }
        let s = self.settings.clone();
        self.output
            .control(&ControlMessage::WindowAckSize(s.window_ack_size))?;
        self.output.control(&ControlMessage::SetPeerBandwidth {
            window: s.window_ack_size,
            limit: PeerBandwidthLimit::Dynamic,
        })?;
        self.output
            .control(&ControlMessage::SetChunkSize(s.chunk_size))?;
        self.output
            .set_chunk_size(s.chunk_size)
            .map_err(EncodeError::from)?;
        let props = Amf0Value::object([
            ("fmsVer", Amf0Value::from(FMS_VERSION)),
            ("capabilities", Amf0Value::Number(31.0)),
            ("mode", Amf0Value::Number(1.0)),
        ]);
        let info = Status::status("NetConnection.Connect.Success", "Connection succeeded.")
            .with("objectEncoding", Amf0Value::Number(object_encoding));
        self.output.command(
            CSID_COMMAND,
            0,
            &Command::result(txn, props, vec![info.to_amf0()]),
        )?;
        tracing::info!(app = %app, "connected");
        self.conn = Conn::Connected(Connected { app, app_query });
        self.send_client_commands(&decision.commands)
    }

    /// `_error` NetConnection.Connect.Rejected and the app handler's commands, then the
    /// connection closes once they are sent.
    fn connect_refused(
        &mut self,
        txn: f64,
        why: &str,
        redirect: Option<&RString>,
        commands: &[ClientCommand],
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        let mut st = Status::error("NetConnection.Connect.Rejected", why);
        if let Some(to) = redirect {
            st = st.with(
                "ex",
                Amf0Value::object([
                    ("code", Amf0Value::Number(302.0)),
                    ("redirect", Amf0Value::from(to.as_str())),
                ]),
            );
        }
        let cmd = Command::error(txn, Amf0Value::Null, vec![st.to_amf0()]);
        self.output.command(CSID_COMMAND, 0, &cmd)?;
        self.send_client_commands(commands)?;
        tracing::info!(reason = %why, "connect refused");
        self.conn = Conn::Done;
        self.finish(CloseMode::AfterFlush, out);
        Ok(())
    }

    fn cmd_create_stream(&mut self, txn: f64) -> Result<(), Violation> {
        if self.streams.len() >= self.settings.max_streams as usize {
            return self.call_failed(txn, "Too many streams on this connection.");
        }
        let id = self.next_stream_id;
        self.next_stream_id = self.next_stream_id.wrapping_add(1).max(1);
        self.streams.insert(id, NetStream::default());
        self.result(txn, vec![Amf0Value::Number(f64::from(id))])
    }

    /// `releaseStream`, `FCPublish`, `FCUnpublish` (the Flash Media Live Encoder conventions)
    /// and `FCSubscribe`/`FCUnsubscribe` (sent by rtmpdump `--live`). Each is answered with its
    /// `onFC*` event and a `_result`; FCUnpublish also ends this connection's publication of that
    /// name. Playing itself is `play`'s business.
    fn cmd_fc(
        &mut self,
        name: &str,
        txn: f64,
        stream: &str,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        let (event, code) = match name {
            "FCPublish" => ("onFCPublish", "NetStream.Publish.Start"),
            "FCUnpublish" => ("onFCUnpublish", "NetStream.Unpublish.Success"),
            "FCSubscribe" => ("onFCSubscribe", "NetStream.Play.Start"),
            "FCUnsubscribe" => ("onFCUnsubscribe", "NetStream.Play.Stop"),
            _ => return self.result(txn, vec![Amf0Value::Undefined]),
        };
        if name == "FCUnpublish" {
            let bare = stream.split('?').next().unwrap_or("");
            let ids: Vec<u32> = self
                .streams
                .iter()
                .filter(|(_, ns)| matches!(&ns.role, Role::Publishing(p) if p.name == bare))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                self.end_role(id, true, out);
            }
        }
        let info = Amf0Value::object([
            ("code", Amf0Value::from(code)),
            ("description", Amf0Value::from(stream)),
        ]);
        let cmd = Command::new(event, 0.0, Amf0Value::Null, vec![info]);
        self.output.command(CSID_COMMAND, 0, &cmd)?;
        self.result(txn, vec![Amf0Value::Undefined])
    }
}
