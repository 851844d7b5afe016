//! The `broadcast` action: authenticate, publish `USER/CHANNEL`, then forward the bytes.
//!
//! Bytes that arrive while the broadcaster is being authenticated wait in a bounded buffer and
//! go out first once the publication has started; an EOF in that time ends the broadcast after
//! they went out.

use abi_stable::std_types::RVec;
use fstream_abi::{
    Action, AuthAction, AuthOutcome, CloseMode, Credential, Event, Outbox, PublishOptions,
    PublishOutcome, RecordMode,
};

use crate::{
    auth_request,
    error::{check_name, Refusal},
    ingest::Ingest,
    settings::Settings,
};

/// The ids this session uses with the host (one request, one publication per connection).
const AUTH_REQUEST: u64 = 1;
const PUBLICATION: u32 = 1;

/// What a broadcaster asked for (from the action string).
pub struct BroadcastRequest {
    pub user: String,
    pub user_password: Option<String>,
    pub token: Option<String>,
    pub channel: String,
    pub channel_password: Option<String>,
    pub bufsize: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Authenticating,
    /// Publish asked for; waiting for its result.
    Claiming,
    Live,
    Over,
}

pub struct Broadcast {
    stream: String,
    options: PublishOptions,
    state: State,
    /// Bytes received before the publication started.
    pending: Vec<u8>,
    max_pending: usize,
    /// The broadcaster's EOF came before the publication started.
    eof: bool,
    ingest: Ingest,
}

impl Broadcast {
    /// Checks the request and asks the host to authenticate it.
    pub fn start(
        req: BroadcastRequest,
        settings: &Settings,
        out: &mut Outbox,
    ) -> Result<Self, Refusal> {
        check_name("user", &req.user)?;
        check_name("channel", &req.channel)?;
        if req.bufsize > settings.max_bufsize {
            return Err(Refusal::Bufsize {
                asked: req.bufsize,
                limit: settings.max_bufsize,
            });
        }
        let stream = format!("{}/{}", req.user, req.channel);
        // A password is checked when both are given; a token is only spent when it is used.
        let credential = match (req.user_password, req.token) {
            (Some(p), _) => Credential::Password(p.into()),
            (None, Some(t)) => Credential::Token(t.into()),
            (None, None) => Credential::None,
        };
        tracing::debug!(stream = %stream, bufsize = req.bufsize, "broadcast: authenticating");
        out.push(Action::Authenticate {
            request: AUTH_REQUEST,
            auth: auth_request(req.user, AuthAction::Publish, credential, stream.clone()),
        });
        Ok(Self {
            stream,
            options: PublishOptions {
                channel_password: req.channel_password.map(Into::into).into(),
                conflict: settings.second_broadcaster.conflict(),
                grace_ms: settings.grace_ms,
                record: RecordMode::Live,
                query: "".into(),
                ext: RVec::new(),
            },
            state: State::Authenticating,
            pending: Vec::new(),
            max_pending: settings.max_pending_bytes,
            eof: false,
            // Bounded by `max_bufsize` above, which is at most 16 MiB.
            ingest: Ingest::new(usize::try_from(req.bufsize).unwrap_or(usize::MAX)),
        })
    }

    /// Bytes from the broadcaster.
    pub fn bytes(&mut self, data: &[u8], out: &mut Outbox) -> Result<(), Refusal> {
        match self.state {
            State::Authenticating | State::Claiming => {
                if self.pending.len() + data.len() > self.max_pending {
                    return Err(Refusal::PendingOverflow(self.max_pending));
                }
                self.pending.extend_from_slice(data);
                Ok(())
            }
            State::Live => self.forward(data, out),
            State::Over => Ok(()),
        }
    }

    fn forward(&mut self, data: &[u8], out: &mut Outbox) -> Result<(), Refusal> {
        let mut emit = |packet| {
            out.push(Action::Packet {
                publication: PUBLICATION,
                packet,
            })
        };
        self.ingest.push(data, &mut emit)?;
        Ok(())
    }

    pub fn event(&mut self, event: Event, out: &mut Outbox) -> Result<(), Refusal> {
        match event {
            Event::AuthResult {
                request: AUTH_REQUEST,
                outcome,
            } if self.state == State::Authenticating => match outcome.as_enum() {
                Ok(AuthOutcome::Allowed) => {
                    self.state = State::Claiming;
                    out.push(Action::Publish {
                        publication: PUBLICATION,
                        stream: self.stream.clone().into(),
                        options: self.options.clone(),
                    });
                    Ok(())
                }
                Ok(AuthOutcome::Denied(why)) => Err(Refusal::Denied(why.to_string())),
                // An outcome of a newer host is no permission.
                _ => Err(Refusal::Denied(format!("unknown outcome {outcome:?}"))),
            },
            Event::PublishResult {
                publication: PUBLICATION,
                outcome,
            } if self.state == State::Claiming => match outcome.as_enum() {
                Ok(PublishOutcome::Started) => {
                    tracing::info!(stream = %self.stream, "broadcast started");
                    self.state = State::Live;
                    let pending = std::mem::take(&mut self.pending);
                    if !pending.is_empty() {
                        self.forward(&pending, out)?;
                    }
                    if self.eof {
                        self.end(out);
                    }
                    Ok(())
                }
                Ok(PublishOutcome::Busy) => Err(Refusal::Busy(self.stream.clone())),
                Ok(PublishOutcome::Refused(why)) => Err(Refusal::PublishRefused(why.to_string())),
                // An outcome of a newer host: the publication did not start.
                _ => Err(Refusal::PublishRefused(format!(
                    "unknown outcome {outcome:?}"
                ))),
            },
            Event::PublicationReplaced {
                publication: PUBLICATION,
            } if self.state == State::Live => {
                tracing::info!(stream = %self.stream,
                    "another broadcaster took the stream over; closing this one");
                self.state = State::Over;
                out.close(CloseMode::Now);
                Ok(())
            }
            Event::Shutdown => {
                self.end(out);
                Ok(())
            }
            other => {
                tracing::trace!(event = ?other, "broadcast: event ignored");
                Ok(())
            }
        }
    }

    /// The broadcaster's EOF.
    pub fn closed(&mut self, out: &mut Outbox) {
        match self.state {
            // Authentication and the publish result are still on their way: what was sent
            // goes out once the publication starts.
            State::Authenticating | State::Claiming => self.eof = true,
            State::Live => self.end(out),
            State::Over => {}
        }
    }

    /// Ends a live broadcast (after its last complete packet) or a pending one, and closes.
    fn end(&mut self, out: &mut Outbox) {
        if self.state == State::Live {
            let mut emit = |packet| {
                out.push(Action::Packet {
                    publication: PUBLICATION,
                    packet,
                })
            };
            self.ingest.finish(&mut emit);
            out.push(Action::Unpublish {
                publication: PUBLICATION,
            });
            tracing::info!(stream = %self.stream, "broadcast ended");
        }
        self.state = State::Over;
        out.close(CloseMode::AfterFlush);
    }

    /// Ends the publication (if any) before the session closes for a refusal.
    pub fn abort(&mut self, out: &mut Outbox) {
        if self.state == State::Live {
            out.push(Action::Unpublish {
                publication: PUBLICATION,
            });
        }
        self.state = State::Over;
    }
}
