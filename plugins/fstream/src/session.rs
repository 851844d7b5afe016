//! One fstream connection: the preamble, then the role its action asks for.
//!
//! Any refusal (bad preamble, bad action, denied authentication, ...) closes the connection at
//! once without sending a byte, and is logged; the host's span adds the peer address.

use std::sync::Arc;

use fstream_abi::{sdk::SessionLogic, CloseMode, Event, Outbox, PluginError};
use fstream_wire::{PreambleParser, Request};

use crate::{
    broadcast::{Broadcast, BroadcastRequest},
    error::Refusal,
    settings::Settings,
    token::TokenRequest,
    watch::Watch,
};

enum Phase {
    Preamble(PreambleParser),
    /// Boxed: by far the largest phase.
    Broadcast(Box<Broadcast>),
    Watch(Watch),
    Token(TokenRequest),
    Closed,
}

pub struct FstreamSession {
    settings: Arc<Settings>,
    phase: Phase,
    /// When the preamble must be complete (`now_ms` time).
    deadline: u64,
}

impl FstreamSession {
    pub fn new(settings: Arc<Settings>) -> Self {
        let parser = PreambleParser::new(settings.limits());
        Self {
            settings,
            phase: Phase::Preamble(parser),
            deadline: 0,
        }
    }

    /// Closes for `why`: ends what the role started, logs, and drops the connection without
    /// another byte.
    fn refuse(&mut self, why: Refusal, out: &mut Outbox) {
        match &mut self.phase {
            Phase::Broadcast(b) => b.abort(out),
            Phase::Watch(w) => w.abort(out),
            _ => {}
        }
        let action = self.action_name();
        tracing::info!(action, reason = %why, "closing the connection");
        self.phase = Phase::Closed;
        out.close(CloseMode::Now);
    }

    fn action_name(&self) -> &'static str {
        match self.phase {
            Phase::Preamble(_) => "none",
            Phase::Broadcast(_) => "broadcast",
            Phase::Watch(_) => "watch",
            Phase::Token(_) => "token",
            Phase::Closed => "closed",
        }
    }

    fn on_bytes(&mut self, data: &[u8], out: &mut Outbox) -> Result<(), Refusal> {
        match &mut self.phase {
            Phase::Preamble(parser) => {
                let Some(preamble) = parser.push(data)? else {
                    return Ok(());
                };
                self.begin(&preamble.action, out)?;
                if !preamble.leftover.is_empty() {
                    return self.on_bytes(&preamble.leftover, out);
                }
                Ok(())
            }
            Phase::Broadcast(b) => b.bytes(data, out),
            // A watcher or token requester has nothing to say after its preamble.
            Phase::Watch(_) | Phase::Token(_) => {
                tracing::trace!(bytes = data.len(), "ignored bytes from the client");
                Ok(())
            }
            Phase::Closed => Ok(()),
        }
    }

    /// The preamble is complete: start what the action asks for.
    fn begin(&mut self, action: &str, out: &mut Outbox) -> Result<(), Refusal> {
        let parsed = Request::parse(action)?;
        if !parsed.unknown_keys.is_empty() {
            tracing::debug!(keys = %parsed.unknown_keys.join(","), "ignored unknown keys");
        }
        tracing::debug!(request = ?parsed.request, "request");
        self.phase = match parsed.request {
            Request::Broadcast {
                user,
                user_password,
                token,
                channel,
                channel_password,
                bufsize,
            } => {
                let req = BroadcastRequest {
                    user,
                    user_password,
                    token,
                    channel,
                    channel_password,
                    bufsize,
                };
                Phase::Broadcast(Box::new(Broadcast::start(req, &self.settings, out)?))
            }
            Request::Watch {
                user,
                channel,
                channel_password,
            } => Phase::Watch(Watch::start(
                &user,
                &channel,
                channel_password,
                &self.settings,
                out,
            )?),
            Request::Token {
                user,
                user_password,
            } => Phase::Token(TokenRequest::start(user, user_password, out)?),
        };
        Ok(())
    }

    fn on_event(&mut self, event: Event, out: &mut Outbox) -> Result<(), Refusal> {
        match &mut self.phase {
            Phase::Broadcast(b) => b.event(event, out),
            Phase::Watch(w) => w.event(event, out),
            Phase::Token(t) => t.event(event, out),
            Phase::Preamble(_) => {
                if matches!(event, Event::Shutdown) {
                    self.phase = Phase::Closed;
                    out.close(CloseMode::Now);
                }
                Ok(())
            }
            Phase::Closed => Ok(()),
        }
    }
}

impl SessionLogic for FstreamSession {
    fn start(&mut self, now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        let timeout = self.settings.preamble_timeout_ms;
        self.deadline = now_ms.saturating_add(timeout);
        out.push(fstream_abi::Action::SetTimer(timeout));
        Ok(())
    }

    fn bytes(&mut self, data: &[u8], _now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        if let Err(why) = self.on_bytes(data, out) {
            self.refuse(why, out);
        }
        Ok(())
    }

    fn event(&mut self, event: Event, _now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        if let Err(why) = self.on_event(event, out) {
            self.refuse(why, out);
        }
        Ok(())
    }

    fn timer(&mut self, now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        if let Phase::Preamble(_) = self.phase {
            if now_ms >= self.deadline {
                let timeout = self.settings.preamble_timeout_ms;
                self.refuse(Refusal::PreambleTimeout(timeout), out);
            } else {
                out.push(fstream_abi::Action::SetTimer(self.deadline - now_ms));
            }
        }
        Ok(())
    }

    fn closed(&mut self, _now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        match &mut self.phase {
            Phase::Preamble(parser) => {
                match parser.end_of_input() {
                    Err(e) => tracing::info!(reason = %e, "the client left during the preamble"),
                    Ok(()) => tracing::debug!("the client left without a request"),
                }
                self.phase = Phase::Closed;
                out.close(CloseMode::Now);
            }
            Phase::Broadcast(b) => b.closed(out),
            Phase::Watch(w) => w.closed(out),
            // Still answer a client that half-closed after its request.
            Phase::Token(_) => {}
            Phase::Closed => {}
        }
        Ok(())
    }
}
