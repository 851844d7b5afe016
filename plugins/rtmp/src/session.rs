//! One RTMP connection, sans-IO: bytes, host events and timer ticks in; writes and host actions
//! out.
//!
//! Phases: the handshake ([`crate::handshake`]), then chunks ([`crate::chunkio`]) carrying
//! messages. Protocol control messages are handled here; commands in [`crate::commands`]
//! (NetConnection), [`crate::publish`] and [`crate::play`] (NetStream).
//!
//! Every `connect`, `publish` and `play` is decided by the app handler (`Action::CallApp`), a
//! publish also by the hub (`Action::Publish`), and a play by its probe's first status (see
//! [`crate::play`]). While such an answer is outstanding the session
//! stops decoding: what the client sends meanwhile stays buffered (up to `max_pending_bytes`)
//! and is handled in order once the answer is in. Answers are thus in the order of the
//! client's commands, and media never overtakes the publish it belongs to.
//!
//! Any violation (bad handshake, a chunk or message over its limit, a timeout) closes only this
//! connection, with one log line.

use std::{collections::BTreeMap, sync::Arc};

use abi_stable::std_types::RVec;
use fstream_abi::{
    sdk::SessionLogic, Action, AppCall, AppCall_NE, Caller, ClientCommand, CloseCall, CloseMode,
    ConnInfo, Event, Outbox, PluginError, SubscriptionControl, SubscriptionControl_NE,
};
use fstream_media::{
    amf0::Amf0Value,
    rtmp::{
        chunk::RtmpMessage,
        message::{
            is_protocol_control, msg_type, split_aggregate, Command, ControlMessage,
            UserControlEvent,
        },
    },
    AmfLimits,
};

use crate::{
    amf_json::args_from_json,
    chunkio::{ChunkIn, ChunkOut, CSID_COMMAND},
    error::Violation,
    handshake::{HandshakeDriver, Progress},
    settings::Settings,
    state::{Conn, NetStream, Pending, Role, Wait},
};

/// Bounds for decoding commands: generous for any real client, small next to a message.
const COMMAND_AMF_LIMITS: AmfLimits = AmfLimits {
    max_depth: 16,
    max_nodes: 4096,
    max_bytes: 1 << 20,
    max_refs: 1024,
};

pub(crate) enum Phase {
    /// Before [`SessionLogic::start`].
    New,
    Handshake(HandshakeDriver),
    Chunks,
    Closed,
}

pub struct RtmpSession {
    pub(crate) settings: Arc<Settings>,
    /// This connection and its peer, for app calls.
    pub(crate) caller: Caller,
    /// The port the client connected to (ours), for a Flash policy file.
    local_port: Option<u16>,
    pub(crate) phase: Phase,
    pub(crate) input: ChunkIn,
    pub(crate) output: ChunkOut,
    /// When the client last sent anything.
    last_input_ms: u64,
    /// A ping went out since then.
    pinged: bool,
    pub(crate) conn: Conn,
    pub(crate) wait: Option<Wait>,
    next_request: u64,
    next_handle: u32,
    /// By message stream id.
    pub(crate) streams: BTreeMap<u32, NetStream>,
    pub(crate) next_stream_id: u32,
}

impl RtmpSession {
    pub fn new(settings: Arc<Settings>, conn: &ConnInfo) -> Self {
        Self {
            input: ChunkIn::new(settings.chunk_limits()),
            settings,
            caller: Caller {
                connection: conn.id,
                peer: conn.peer.clone(),
                peer_addr: conn.peer_addr,
            },
            local_port: conn
                .local
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse().ok()),
            phase: Phase::New,
            output: ChunkOut::default(),
            last_input_ms: 0,
            pinged: false,
            conn: Conn::New,
            wait: None,
            next_request: 1,
            next_handle: 1,
            streams: BTreeMap::new(),
            next_stream_id: 1,
        }
    }

    pub(crate) fn amf_limits() -> &'static AmfLimits {
        &COMMAND_AMF_LIMITS
    }

    pub(crate) fn request_id(&mut self) -> u64 {
        let r = self.next_request;
        self.next_request += 1;
        r
    }

    /// A publication or subscription id, unique in this connection.
    pub(crate) fn handle(&mut self) -> u32 {
        let h = self.next_handle;
        self.next_handle = self.next_handle.wrapping_add(1).max(1);
        h
    }

    /// Queues a host action after what was written so far, keeping the order of both.
    pub(crate) fn act(&mut self, out: &mut Outbox, action: Action) {
        self.flush(out);
        out.push(action);
    }

    /// Asks the app handler, in order with what was written so far.
    pub(crate) fn call_app(&mut self, out: &mut Outbox, request: u64, call: AppCall) {
        let call = AppCall_NE::new(call);
        self.act(out, Action::CallApp { request, call });
    }

    /// Changes a subscription, in order with what was written so far.
    pub(crate) fn control(
        &mut self,
        out: &mut Outbox,
        subscription: u32,
        control: SubscriptionControl,
    ) {
        let control = SubscriptionControl_NE::new(control);
        self.act(
            out,
            Action::Control {
                subscription,
                control,
            },
        );
    }

    fn flush(&mut self, out: &mut Outbox) {
        if let Some(p) = self.output.take() {
            out.push(Action::Write(p));
        }
    }

    /// Sends the commands an app handler attached to its decision.
    pub(crate) fn send_client_commands(
        &mut self,
        commands: &[ClientCommand],
    ) -> Result<(), Violation> {
        for c in commands {
            match args_from_json(&c.args_json) {
                Ok(args) => {
                    let cmd = Command::new(c.name.as_str(), 0.0, Amf0Value::Null, args);
                    self.output.command(CSID_COMMAND, 0, &cmd)?;
                }
                Err(e) => tracing::warn!(command = %c.name, error = %e,
                    "an app handler's command has arguments that are not JSON; not sent"),
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Input

    fn on_bytes(&mut self, data: &[u8], now: u64, out: &mut Outbox) -> Result<(), Violation> {
        match &mut self.phase {
            Phase::New | Phase::Closed => Ok(()),
            Phase::Handshake(hs) => {
                let mut reply = Vec::new();
                let progress = hs.feed(data, &mut reply)?;
                let kind = hs.kind();
                self.output.raw(&reply);
                match progress {
                    Progress::NeedMore => {
                        self.input.count_handshake(data.len());
                        Ok(())
                    }
                    Progress::PolicyRequest => self.answer_policy_request(out),
                    Progress::Done { leftover } => {
                        self.input
                            .count_handshake(data.len().saturating_sub(leftover.len()));
                        tracing::debug!(kind = ?kind, "handshake complete");
                        self.phase = Phase::Chunks;
                        self.arm_idle_timer(now, out);
                        self.input.push(&leftover);
                        self.pump(now, out)
                    }
                }
            }
            Phase::Chunks => {
                self.input.push(data);
                self.pump(now, out)
            }
        }
    }

    /// Handles what is buffered, unless an answer is outstanding.
    pub(crate) fn pump(&mut self, now: u64, out: &mut Outbox) -> Result<(), Violation> {
        while self.wait.is_none() && matches!(self.phase, Phase::Chunks) {
            match self.input.next_message()? {
                Some(msg) => self.on_message(msg, now, out)?,
                None => break,
            }
        }
        if let Some(w) = &self.wait {
            let buffered = self.input.buffered();
            if buffered > self.settings.max_pending_bytes {
                return Err(Violation::TooMuchPending {
                    buffered,
                    waiting: w.what(),
                    limit: self.settings.max_pending_bytes,
                });
            }
        }
        // A command just handled may have closed the session: then nothing more is sent.
        if matches!(self.phase, Phase::Chunks) {
            if let Some(seq) = self.input.ack_due() {
                self.output.control(&ControlMessage::Acknowledgement(seq))?;
            }
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        msg: RtmpMessage,
        now: u64,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        match msg.type_id {
            t if is_protocol_control(t) => self.on_control(&msg, out),
            msg_type::AUDIO | msg_type::VIDEO | msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => {
                self.on_media(&msg, out);
                Ok(())
            }
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => self.on_command(&msg, now, out),
            msg_type::AGGREGATE => {
                for sub in split_aggregate(&msg)? {
                    if matches!(
                        sub.type_id,
                        msg_type::AUDIO | msg_type::VIDEO | msg_type::DATA_AMF0
                    ) {
                        self.on_media(&sub, out);
                    }
                }
                Ok(())
            }
            other => {
                tracing::trace!(type_id = other, "ignored a message of an unsupported type");
                Ok(())
            }
        }
    }

    fn on_control(&mut self, msg: &RtmpMessage, out: &mut Outbox) -> Result<(), Violation> {
        match ControlMessage::parse(msg.type_id, &msg.payload)? {
            ControlMessage::SetChunkSize(size) => {
                self.input.set_chunk_size(size)?;
                tracing::debug!(size, "the client's chunk size");
            }
            ControlMessage::Abort(csid) => self.input.abort(csid),
            ControlMessage::WindowAckSize(window) => self.input.set_window(window),
            ControlMessage::Acknowledgement(_) | ControlMessage::SetPeerBandwidth { .. } => {}
            ControlMessage::UserControl(e) => match e {
                UserControlEvent::PingRequest(t) => self
                    .output
                    .user_control(UserControlEvent::PingResponse(t))?,
                UserControlEvent::SetBufferLength {
                    stream_id,
                    buffer_ms,
                } => self.set_buffer_length(stream_id, buffer_ms, out),
                other => tracing::trace!(event = ?other, "ignored a user control event"),
            },
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Host events

    fn on_event(&mut self, event: Event, now: u64, out: &mut Outbox) -> Result<(), Violation> {
        if matches!(self.phase, Phase::Closed) {
            return Ok(());
        }
        match event {
            Event::AppResult { request, decision } => match self.wait.take() {
                Some(Wait::App { request: r, call }) if r == request => {
                    self.app_decided(call, decision, out)?
                }
                other => {
                    self.wait = other;
                    tracing::debug!(request, "ignored a stale app handler answer");
                }
            },
            Event::CommandResult { request, reply } => match self.wait.take() {
                Some(Wait::Command {
                    request: r,
                    txn,
                    name,
                }) if r == request => self.command_answered(txn, &name, &reply)?,
                other => {
                    self.wait = other;
                    tracing::debug!(request, "ignored a stale command answer");
                }
            },
            Event::PublishResult {
                publication,
                outcome,
            } => self.on_publish_result(publication, outcome)?,
            Event::PublicationReplaced { publication } => self.on_replaced(publication, out)?,
            Event::Subscription {
                subscription,
                status,
            } => self.on_subscription(subscription, status, out)?,
            Event::Shutdown => {
                tracing::debug!("the host is shutting down");
                self.finish(CloseMode::AfterFlush, out);
            }
            // An app handler's `call_client`: only a client whose connect was accepted can
            // make sense of a command.
            Event::ClientCommand { command } => {
                if matches!(self.conn, Conn::Connected(_)) {
                    self.send_client_commands(std::slice::from_ref(&command))?;
                } else {
                    tracing::debug!(command = %command.name, "dropped a command for a client that is not connected");
                }
            }
            // Authentication and tokens are the app handler's business.
            Event::AuthResult { .. } | Event::TokenResult { .. } => {}
            // Events added to the interface after this code was written.
            _ => {}
        }
        self.pump(now, out)
    }

    fn app_decided(
        &mut self,
        call: Pending,
        decision: fstream_abi::AppDecision,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        match call {
            Pending::Connect {
                txn,
                app,
                app_query,
                object_encoding,
            } => self.connect_decided(txn, app, app_query, object_encoding, decision, out),
            Pending::Publish {
                msid,
                name,
                query,
                record,
            } => self.publish_decided(msid, name, query, record, decision, out),
            Pending::Play {
                msid,
                name,
                query,
                start,
                reset,
            } => self.play_decided(msid, name, query, start, reset, decision, out),
        }
    }

    /// A Flash Player asked for the socket policy instead of a handshake: answer it (if
    /// `policy_file` is on) and close, as the Flash socket policy protocol expects.
    fn answer_policy_request(&mut self, out: &mut Outbox) -> Result<(), Violation> {
        if !self.settings.policy_file {
            return Err(Violation::PolicyRequest);
        }
        let Some(port) = self.local_port else {
            tracing::warn!("a Flash policy file request, but our port is unknown; closing");
            self.finish(CloseMode::Now, out);
            return Ok(());
        };
        tracing::info!(port, "answered a Flash policy file request");
        self.output.raw(&crate::handshake::policy_file(port));
        self.finish(CloseMode::AfterFlush, out);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Timers and the end

    fn arm_idle_timer(&mut self, now: u64, out: &mut Outbox) {
        self.last_input_ms = now;
        self.pinged = false;
        self.act(out, Action::SetTimer(self.settings.idle_timeout_ms / 2));
    }

    fn on_timer(&mut self, now: u64, out: &mut Outbox) -> Result<(), Violation> {
        match &self.phase {
            Phase::New | Phase::Closed => Ok(()),
            Phase::Handshake(hs) => {
                if now >= hs.deadline {
                    return Err(Violation::HandshakeTimeout(
                        self.settings.handshake_timeout_ms,
                    ));
                }
                let left = hs.deadline - now;
                self.act(out, Action::SetTimer(left));
                Ok(())
            }
            Phase::Chunks => {
                let idle = self.settings.idle_timeout_ms;
                let silent = now.saturating_sub(self.last_input_ms);
                if silent >= idle {
                    return Err(Violation::Idle(idle));
                }
                let half = idle / 2;
                if silent >= half && !self.pinged {
                    self.pinged = true;
                    self.output
                        .user_control(UserControlEvent::PingRequest(now as u32))?;
                }
                let next = if self.pinged {
                    idle - silent
                } else {
                    half - silent
                };
                self.act(out, Action::SetTimer(next.max(1)));
                Ok(())
            }
        }
    }

    /// Ends what this connection publishes and plays, tells the app handler, and closes.
    pub(crate) fn finish(&mut self, mode: CloseMode, out: &mut Outbox) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for msid in ids {
            self.end_role(msid, false, out);
        }
        // The app handler hears of the end of a connection it accepted, and of one whose
        // connect it still has to answer (it may be holding it: a deferred decision).
        let told = match self.wait.take() {
            Some(Wait::Probe(p)) => {
                let subscription = p.subscription;
                self.act(out, Action::Unsubscribe { subscription });
                None
            }
            Some(Wait::App {
                call: Pending::Connect { app, .. },
                ..
            }) => Some(app),
            _ => None,
        };
        let app = match std::mem::replace(&mut self.conn, Conn::Done) {
            Conn::Connected(c) => Some(c.app),
            Conn::Connecting => told,
            _ => None,
        };
        if let Some(app) = app {
            let request = self.request_id();
            let call = AppCall::Close(CloseCall {
                app: app.into(),
                caller: self.caller.clone(),
                ext: RVec::new(),
            });
            self.call_app(out, request, call);
        }
        self.phase = Phase::Closed;
        self.act(out, Action::Close(mode));
    }

    /// Stops publishing or playing on `msid`; `tell` sends the client the matching status.
    pub(crate) fn end_role(&mut self, msid: u32, tell: bool, out: &mut Outbox) {
        let Some(ns) = self.streams.get_mut(&msid) else {
            return;
        };
        match std::mem::replace(&mut ns.role, Role::Idle) {
            Role::Idle => {}
            Role::Publishing(p) => {
                tracing::info!(stream = %p.stream, "publishing ended");
                self.act(
                    out,
                    Action::Unpublish {
                        publication: p.publication,
                    },
                );
                if tell && p.started {
                    let st = crate::commands::status(
                        "status",
                        "NetStream.Unpublish.Success",
                        format!("{} is now unpublished.", p.name),
                        &p.name,
                    );
                    if let Err(e) = crate::commands::send_status(&mut self.output, msid, st) {
                        tracing::warn!(error = %e, "cannot encode a status");
                    }
                }
            }
            Role::Playing(p) => {
                tracing::debug!(stream = %p.stream, "playing ended");
                self.act(
                    out,
                    Action::Unsubscribe {
                        subscription: p.subscription,
                    },
                );
            }
        }
    }

    /// Closes for a violation: one log line, and nothing more is sent.
    fn violated(&mut self, why: Violation, out: &mut Outbox) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        tracing::info!(kind = why.kind(), reason = %why, "closing the connection");
        // Whatever we had written is dropped with the connection.
        let _ = self.output.take();
        self.finish(CloseMode::Now, out);
    }

    fn run(
        &mut self,
        out: &mut Outbox,
        f: impl FnOnce(&mut Self, &mut Outbox) -> Result<(), Violation>,
    ) -> Result<(), PluginError> {
        if let Err(why) = f(self, out) {
            self.violated(why, out);
        }
        self.flush(out);
        Ok(())
    }
}

impl SessionLogic for RtmpSession {
    fn start(&mut self, now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        let timeout = self.settings.handshake_timeout_ms;
        self.phase = Phase::Handshake(HandshakeDriver::new(
            now_ms,
            timeout,
            &mut rand::thread_rng(),
        ));
        out.push(Action::SetTimer(timeout));
        Ok(())
    }

    fn bytes(&mut self, data: &[u8], now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        self.last_input_ms = now_ms;
        self.pinged = false;
        self.run(out, |s, out| s.on_bytes(data, now_ms, out))
    }

    fn event(&mut self, event: Event, now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        self.run(out, |s, out| s.on_event(event, now_ms, out))
    }

    fn timer(&mut self, now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        self.run(out, |s, out| s.on_timer(now_ms, out))
    }

    fn closed(&mut self, _now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        if !matches!(self.phase, Phase::Closed) {
            tracing::debug!("the client closed the connection");
        }
        self.finish(CloseMode::Now, out);
        self.flush(out);
        Ok(())
    }
}
