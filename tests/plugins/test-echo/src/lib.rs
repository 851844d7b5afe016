//! `test-echo`: a line-based protocol frontend for the host's own tests.
//!
//! Commands, one per line:
//! - `PANIC` panics inside the session.
//! - `AUTH USER PASSWORD` asks the authenticators; answers `AUTH allowed` or `AUTH denied`.
//! - `PUB STREAM` publishes `STREAM` (answers `PUB started`/`PUB busy`); then every further
//!   line is published as a raw packet (the line and its newline).
//! - `SUB STREAM [QUEUE_BYTES]` subscribes in the raw format (a small queue makes a slow
//!   reader easy to test); the stream's bytes follow.
//! - anything else is echoed back.
//!
//! It logs at info level with fields, to test the log bridge.

use abi_stable::std_types::RVec;
use fstream_abi::{
    kinds, outcome_allows, payload_from,
    sdk::{encoder_box, frontend_box, session_box, Encode, Frontend, SessionLogic},
    Action, AuthAction, AuthAction_NE, AuthRequest, CloseMode, ConnInfo, Credential, Credential_NE,
    EncoderBox, Event, HostApiBox, InitContext, MediaPacket, NetAddr, Outbox, OverflowPolicy,
    Payload, PluginError, PluginInstance, PluginObject, PublishConflict, PublishOptions,
    PublishOutcome, RecordMode, SessionBox, SubscribeOptions, SubscriptionStatus,
};

fstream_abi::export_plugin! { name: "test-echo", kinds: kinds::FRONTEND, init: init }

fn init(_: &HostApiBox, _: &InitContext) -> Result<PluginInstance, PluginError> {
    Ok(PluginInstance::empty().with(PluginObject::Frontend(frontend_box(Echo))))
}

struct Echo;

impl Frontend for Echo {
    fn protocol(&self) -> String {
        "echo".into()
    }
    fn default_listen(&self) -> String {
        "127.0.0.1:0".into()
    }
    fn new_session(&self, conn: &ConnInfo) -> Result<SessionBox, PluginError> {
        tracing::info!(conn = conn.id, "echo session created");
        Ok(session_box(EchoSession {
            line: Vec::new(),
            publishing: false,
        }))
    }
    fn encoder(&self, format: &str) -> Result<EncoderBox, PluginError> {
        if format == "upper" {
            Ok(encoder_box(Upper))
        } else {
            Err(PluginError::new(format!("no format {format}")))
        }
    }
}

/// A format that upper-cases payloads, to test per-format encoding.
struct Upper;

impl Encode for Upper {
    fn encode(&mut self, p: &MediaPacket) -> Result<Option<Payload>, PluginError> {
        Ok(Some(payload_from(&p.payload.to_ascii_uppercase())))
    }
}

struct EchoSession {
    line: Vec<u8>,
    publishing: bool,
}

impl EchoSession {
    fn command(&mut self, line: &str, out: &mut Outbox) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if self.publishing {
            out.push(Action::Packet {
                publication: 1,
                packet: MediaPacket::raw(payload_from(format!("{line}\n").as_bytes())),
            });
            return;
        }
        match words.as_slice() {
            ["PANIC"] => panic!("test-echo was asked to panic"),
            ["AUTH", user, password] => out.push(Action::Authenticate {
                request: 7,
                auth: AuthRequest {
                    user: (*user).into(),
                    action: AuthAction_NE::new(AuthAction::Publish),
                    credential: Credential_NE::new(Credential::Password((*password).into())),
                    stream: "".into(),
                    peer: "".into(),
                    peer_addr: NetAddr::UNSPECIFIED,
                    protocol: "".into(),
                    ext: RVec::new(),
                },
            }),
            ["PUB", stream] => out.push(Action::Publish {
                publication: 1,
                stream: (*stream).into(),
                options: PublishOptions {
                    channel_password: None.into(),
                    conflict: PublishConflict::Reject,
                    grace_ms: 0,
                    record: RecordMode::Live,
                    query: "".into(),
                    ext: RVec::new(),
                },
            }),
            ["SUB", stream, rest @ ..] => out.push(Action::Subscribe {
                subscription: 1,
                stream: (*stream).into(),
                options: SubscribeOptions {
                    format: rest.get(1).copied().unwrap_or("raw").into(),
                    channel_password: None.into(),
                    wait_ms: 10_000,
                    overflow: OverflowPolicy::Disconnect,
                    max_queue_bytes: rest.first().and_then(|q| q.parse().ok()).unwrap_or(0),
                    join_with_cache: true,
                    audio: true,
                    video: true,
                    start_ms: 0,
                    ext: RVec::new(),
                },
            }),
            _ => out.write(format!("{line}\n").as_bytes()),
        }
    }
}

impl SessionLogic for EchoSession {
    fn bytes(&mut self, data: &[u8], _now: u64, out: &mut Outbox) -> Result<(), PluginError> {
        tracing::info!(bytes = data.len(), "echo got bytes");
        for &b in data {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
                self.command(line.trim_end_matches('\r'), out);
            } else if self.line.len() < 65536 {
                self.line.push(b);
            }
        }
        Ok(())
    }

    fn event(&mut self, event: Event, _now: u64, out: &mut Outbox) -> Result<(), PluginError> {
        match event {
            Event::AuthResult { outcome, .. } => out.write(if outcome_allows(&outcome) {
                b"AUTH allowed\n"
            } else {
                b"AUTH denied\n"
            }),
            Event::PublishResult { outcome, .. } => {
                if outcome.as_enum() == Ok(&PublishOutcome::Started) {
                    self.publishing = true;
                    out.write(b"PUB started\n");
                } else {
                    out.write(b"PUB busy\n");
                }
            }
            Event::Subscription { status, .. } => {
                tracing::info!(status = ?status, "subscription status");
                if matches!(
                    status.as_enum(),
                    Ok(SubscriptionStatus::Ended | SubscriptionStatus::NotFound)
                ) {
                    out.close(CloseMode::AfterFlush);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn closed(&mut self, _now: u64, out: &mut Outbox) -> Result<(), PluginError> {
        if self.publishing {
            out.push(Action::Unpublish { publication: 1 });
        }
        out.close(CloseMode::Now);
        Ok(())
    }
}
