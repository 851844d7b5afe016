//! v2 objects around a v1 plugin's objects. Each wrapper converts the arguments to v1, calls
//! the plugin, and converts its answer back; the host only ever sees v2.

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RSlice, RStr, RString, RVec},
};
use fstream_abi::{v1, v2, MediaPacket, Payload, PluginError};

use super::convert::*;

pub struct Authenticator(pub v1::AuthenticatorBox);

impl v2::Authenticator for Authenticator {
    fn authenticate(&self, request: &v2::AuthRequest) -> RResult<v2::AuthVerdict_NE, PluginError> {
        match auth_request_to_v1(request) {
            // A question v1 cannot ask: this authenticator does not know.
            None => RResult::ROk(v2::AuthVerdict_NE::new(v2::AuthVerdict::Abstain)),
            Some(r) => self.0.authenticate(&r).map(auth_verdict_from_v1),
        }
    }
}

pub struct Frontend(pub v1::FrontendFactoryBox);

impl v2::FrontendFactory for Frontend {
    fn protocol(&self) -> RString {
        self.0.protocol()
    }
    fn default_listen(&self) -> RString {
        self.0.default_listen()
    }
    fn new_session(&self, conn: &v2::ConnInfo) -> RResult<v2::SessionBox, PluginError> {
        let caller = v2::Caller {
            connection: conn.id,
            peer: conn.peer.clone(),
            peer_addr: conn.peer_addr,
        };
        self.0
            .new_session(&conn_info_to_v1(conn))
            .map(|inner| v2::Session_TO::from_value(Session { inner, caller }, TD_Opaque))
    }
    fn encoder(&self, format: RStr<'_>) -> RResult<v2::EncoderBox, PluginError> {
        self.0
            .encoder(format)
            .map(|e| v2::Encoder_TO::from_value(Encoder(e), TD_Opaque))
    }
}

struct Session {
    inner: v1::SessionBox,
    caller: v2::Caller,
}

impl Session {
    /// Runs a v1 call with a v1 outbox and moves what it asked for into the host's.
    fn run(
        &mut self,
        out: &mut v2::Outbox,
        f: impl FnOnce(&mut v1::SessionBox, &mut v1::Outbox) -> RResult<(), PluginError>,
    ) -> RResult<(), PluginError> {
        let mut ob = v1::Outbox::new();
        let r = f(&mut self.inner, &mut ob);
        for a in ob.actions {
            out.push(action_from_v1(a, &self.caller));
        }
        r
    }
}

impl v2::Session for Session {
    fn start(&mut self, now_ms: u64, out: &mut v2::Outbox) -> RResult<(), PluginError> {
        self.run(out, |s, ob| s.start(now_ms, ob))
    }
    fn bytes(
        &mut self,
        data: RSlice<'_, u8>,
        now_ms: u64,
        out: &mut v2::Outbox,
    ) -> RResult<(), PluginError> {
        self.run(out, |s, ob| s.bytes(data, now_ms, ob))
    }
    fn event(
        &mut self,
        event: v2::Event_NE,
        now_ms: u64,
        out: &mut v2::Outbox,
    ) -> RResult<(), PluginError> {
        // Events v1 has no word for are not delivered.
        match event.into_enum().ok().and_then(event_to_v1) {
            Some(e) => self.run(out, |s, ob| s.event(e, now_ms, ob)),
            None => RResult::ROk(()),
        }
    }
    fn timer(&mut self, now_ms: u64, out: &mut v2::Outbox) -> RResult<(), PluginError> {
        self.run(out, |s, ob| s.timer(now_ms, ob))
    }
    fn closed(&mut self, now_ms: u64, out: &mut v2::Outbox) -> RResult<(), PluginError> {
        self.run(out, |s, ob| s.closed(now_ms, ob))
    }
}

struct Encoder(v1::EncoderBox);

impl v2::Encoder for Encoder {
    fn preamble(&mut self, media: bool) -> RResult<ROption<Payload>, PluginError> {
        self.0.preamble(media)
    }
    fn encode(&mut self, packet: &MediaPacket) -> RResult<ROption<Payload>, PluginError> {
        self.0.encode(packet)
    }
}

pub struct AppHandler(pub v1::AppHandlerBox);

impl v2::AppHandler for AppHandler {
    fn apps(&self) -> RVec<RString> {
        self.0.apps()
    }
    fn call(&self, call: &v2::AppCall_NE) -> RResult<v2::AppDecision, PluginError> {
        match app_call_to_v1(call) {
            // A call v1 cannot express: go on as if there were no handler for it.
            None => RResult::ROk(v2::AppDecision::accept()),
            Some(c) => self.0.call(&c).map(app_decision_from_v1),
        }
    }
}

pub struct SinkFactory(pub v1::SinkFactoryBox);

impl v2::SinkFactory for SinkFactory {
    fn open(&self, start: &v2::StreamStart) -> RResult<ROption<v2::SinkBox>, PluginError> {
        self.0
            .open(&stream_start_to_v1(start))
            .map(|o| o.map(|sink| v2::Sink_TO::from_value(Sink(sink), TD_Opaque)))
    }
}

struct Sink(v1::SinkBox);

impl v2::Sink for Sink {
    fn packet(&mut self, packet: &MediaPacket) -> RResult<(), PluginError> {
        self.0.packet(packet)
    }
    fn finish(&mut self) -> RResult<(), PluginError> {
        self.0.finish()
    }
}

pub struct SourceFactory(pub v1::SourceFactoryBox);

impl v2::SourceFactory for SourceFactory {
    fn app(&self) -> RString {
        self.0.app()
    }
    fn open(&self, request: &v2::SourceOpen) -> RResult<v2::SourceBox, v2::SourceError_NE> {
        match self.0.open(&source_open_to_v1(request)) {
            RResult::ROk(s) => RResult::ROk(v2::Source_TO::from_value(Source(s), TD_Opaque)),
            RResult::RErr(e) => RResult::RErr(source_error_from_v1(e)),
        }
    }
}

struct Source(v1::SourceBox);

impl v2::Source for Source {
    fn duration_ms(&self) -> u64 {
        self.0.duration_ms()
    }
    fn next_packet(&mut self) -> RResult<ROption<MediaPacket>, PluginError> {
        self.0.next_packet()
    }
    fn seek(&mut self, position_ms: u64) -> RResult<u64, PluginError> {
        self.0.seek(position_ms)
    }
}
