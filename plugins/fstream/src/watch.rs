//! The `watch` action: subscribe to `USER/CHANNEL` in the `fstream` format. The hub queues the
//! stream's bytes on the connection itself; this session only follows the subscription's state.

use abi_stable::std_types::RVec;
use fstream_abi::{
    Action, CloseMode, Event, Outbox, OverflowPolicy, SubscribeOptions, SubscriptionStatus,
};

use crate::{
    encoder::FORMAT,
    error::{check_name, Refusal},
    settings::Settings,
};

const SUBSCRIPTION: u32 = 1;

pub struct Watch {
    stream: String,
    over: bool,
}

impl Watch {
    pub fn start(
        user: &str,
        channel: &str,
        channel_password: Option<String>,
        settings: &Settings,
        out: &mut Outbox,
    ) -> Result<Self, Refusal> {
        check_name("user", user)?;
        check_name("channel", channel)?;
        let stream = format!("{user}/{channel}");
        tracing::debug!(stream = %stream, "watch: subscribing");
        out.push(Action::Subscribe {
            subscription: SUBSCRIPTION,
            stream: stream.clone().into(),
            options: SubscribeOptions {
                format: FORMAT.into(),
                channel_password: channel_password.map(Into::into).into(),
                wait_ms: settings.watch_wait_ms,
                overflow: OverflowPolicy::Disconnect,
                max_queue_bytes: settings.watcher_queue_bytes,
                join_with_cache: true,
                audio: true,
                video: true,
                start_ms: 0,
                ext: RVec::new(),
            },
        });
        Ok(Self {
            stream,
            over: false,
        })
    }

    pub fn event(&mut self, event: Event, out: &mut Outbox) -> Result<(), Refusal> {
        if self.over {
            return Ok(());
        }
        match event {
            Event::Subscription {
                subscription: SUBSCRIPTION,
                status,
            } => match status.as_enum() {
                Ok(SubscriptionStatus::NotFound) => Err(Refusal::Watch("no broadcast in time")),
                Ok(SubscriptionStatus::Forbidden) => Err(Refusal::Watch("wrong channel password")),
                Ok(SubscriptionStatus::TooSlow) => {
                    // Bytes were sent already, so this is no refusal; the hub dropped it.
                    tracing::info!(stream = %self.stream, "watcher too slow for its queue; closed");
                    self.over = true;
                    out.close(CloseMode::Now);
                    Ok(())
                }
                Ok(SubscriptionStatus::Ended) => {
                    tracing::debug!(stream = %self.stream, "the stream ended");
                    self.over = true;
                    out.close(CloseMode::AfterFlush);
                    Ok(())
                }
                Ok(SubscriptionStatus::Waiting) => {
                    tracing::debug!(stream = %self.stream, "watcher waiting for a broadcaster");
                    Ok(())
                }
                // Also a status of a newer host: nothing to do.
                _ => {
                    tracing::debug!(stream = %self.stream, status = ?status, "subscription status");
                    Ok(())
                }
            },
            Event::Shutdown => {
                self.over = true;
                out.close(CloseMode::AfterFlush);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The watcher's EOF: it is gone.
    pub fn closed(&mut self, out: &mut Outbox) {
        if !self.over {
            self.over = true;
            out.push(Action::Unsubscribe {
                subscription: SUBSCRIPTION,
            });
            out.close(CloseMode::Now);
        }
    }

    pub fn abort(&mut self, out: &mut Outbox) {
        if !self.over {
            self.over = true;
            out.push(Action::Unsubscribe {
                subscription: SUBSCRIPTION,
            });
        }
    }
}
