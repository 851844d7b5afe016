//! Playing: the `play` command and the app handler's answer, the subscription's status changes
//! as NetStream statuses, and the player's controls (`pause`, `seek`, `receiveAudio`,
//! `receiveVideo`, SetBufferLength).
//!
//! An accepted play first subscribes a probe (a format without bytes) and waits for its first
//! status: a missing stream (no such recorded file, a finite wait that ran out), a raw fstream
//! broadcast or a wrong channel password gets `Play.StreamNotFound`/`Play.Failed` alone, as
//! rtmplite and nginx-rtmp answer, so a client can tell "not found" from "empty". Otherwise the
//! player is told `Play.Reset`/`Play.Start` before the real subscription, so they precede the
//! media, and waits for a publisher as long as `play_wait_ms` says (forever by default, like
//! nginx-rtmp). When the publisher leaves it gets StreamEOF and `UnpublishNotify`; when one
//! starts after it waited, StreamBegin and `PublishNotify`. Once a live stream is over (the grace
//! period passed) the player stays subscribed for the next publisher (`on_stream_end = "wait"`)
//! or gets StreamEOF and `Play.Stop` (`"stop"`); a recorded source that reaches its end always
//! stops.

use abi_stable::std_types::RVec;
use fstream_abi::{
    Action, AppCall, AppDecision, Outbox, OverflowPolicy, PlayCall, SubscribeOptions,
    SubscriptionControl, SubscriptionStatus, SubscriptionStatus_NE,
};
use fstream_media::{
    amf0::Amf0Value,
    rtmp::message::{Command, UserControlEvent},
};

use crate::{
    chunkio::CSID_STREAM,
    commands::{send_status, status},
    encoder::{format_name, PROBE_FORMAT},
    error::Violation,
    names::{decided_stream, join_queries, parse_name, query_param},
    session::RtmpSession,
    settings::StreamEnd,
    state::{Conn, Pending, Playing, Probe, Role, Wait},
};

impl RtmpSession {
    /// `play(name?query, start, duration, reset)` on a stream from `createStream`.
    pub(crate) fn cmd_play(
        &mut self,
        msid: u32,
        cmd: &Command,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        let arg = cmd.arg(0).and_then(Amf0Value::as_str).unwrap_or("");
        // Flash Media Server's explicit FLV prefix names the same stream.
        let arg = arg.strip_prefix("flv:").unwrap_or(arg);
        // -2: live or recorded, -1: live only, >= 0: recorded from there (ms). ffmpeg sends
        // -2000 and rtmpdump -1000 or 0 for live streams: all play the live stream if there is
        // one; only an app that serves recordings looks at the position.
        let start = cmd.arg(1).and_then(Amf0Value::as_f64).unwrap_or(-2.0);
        let reset = cmd.arg(3).and_then(Amf0Value::as_bool).unwrap_or(true);
        let shown = arg.split('?').next().unwrap_or("");
        match self.streams.get(&msid).map(|ns| &ns.role) {
            None => {
                let why = "Play needs a stream from createStream.";
                return self.play_refused(msid, shown, "NetStream.Play.Failed", why);
            }
            Some(Role::Publishing(_)) => {
                let why = "The stream is publishing.";
                return self.play_refused(msid, shown, "NetStream.Play.Failed", why);
            }
            Some(Role::Playing(_)) => self.end_role(msid, false, out),
            Some(Role::Idle) => {}
        }
        let name = match parse_name(arg) {
            Ok(n) => n,
            Err(e) => {
                let why = format!("Bad stream name: {e}.");
                return self.play_refused(msid, shown, "NetStream.Play.StreamNotFound", &why);
            }
        };
        let Conn::Connected(c) = &self.conn else {
            return Ok(());
        };
        let query = join_queries(&name.query, &c.app_query);
        let call = AppCall::Play(PlayCall {
            app: c.app.clone().into(),
            stream: name.name.clone().into(),
            query: query.clone().into(),
            caller: self.caller.clone(),
            ext: RVec::new(),
        });
        tracing::debug!(app = %c.app, name = %name.name, start, "play");
        let request = self.request_id();
        self.wait = Some(Wait::App {
            request,
            call: Pending::Play {
                msid,
                name: name.name,
                query,
                start,
                reset,
            },
        });
        self.call_app(out, request, call);
        Ok(())
    }

    fn play_refused(
        &mut self,
        msid: u32,
        name: &str,
        code: &str,
        why: &str,
    ) -> Result<(), Violation> {
        tracing::info!(name, code, reason = why, "play refused");
        send_status(&mut self.output, msid, status("error", code, why, name))?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn play_decided(
        &mut self,
        msid: u32,
        name: String,
        query: String,
        start: f64,
        reset: bool,
        decision: AppDecision,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        let Conn::Connected(c) = &self.conn else {
            return Ok(());
        };
        let stream = match decided_stream(&c.app, &name, decision.verdict()) {
            Ok(s) => s,
            Err(why) => {
                self.play_refused(msid, &name, "NetStream.Play.Failed", &why)?;
                return self.send_client_commands(&decision.commands);
            }
        };
        let Some(ns) = self.streams.get(&msid) else {
            return Ok(());
        };
        let options = SubscribeOptions {
            format: format_name(self.output.chunk_size(), msid).into(),
            channel_password: query_param(&query, "channel_password")
                .map(Into::into)
                .into(),
            wait_ms: self.settings.play_wait_ms,
            overflow: OverflowPolicy::SkipToKeyframe,
            max_queue_bytes: self.settings.player_queue_bytes,
            join_with_cache: true,
            audio: ns.receive_audio,
            video: ns.receive_video,
            start_ms: if start >= 0.0 { start as u64 } else { 0 },
            ext: RVec::new(),
        };
        // First a probe: a subscription whose format makes no bytes. Its first status says
        // whether there is anything to play, before the player hears a word (see `probe_answered`).
        let subscription = self.handle();
        let probe_options = SubscribeOptions {
            format: PROBE_FORMAT.into(),
            join_with_cache: false,
            audio: false,
            video: false,
            start_ms: 0,
            ..options.clone()
        };
        tracing::debug!(stream = %stream, "play: asking the hub how the stream stands");
        self.wait = Some(Wait::Probe(Probe {
            subscription,
            msid,
            stream: stream.clone(),
            name,
            options,
            reset,
            commands: decision.commands,
        }));
        self.act(
            out,
            Action::Subscribe {
                subscription,
                stream: stream.into(),
                options: probe_options,
            },
        );
        Ok(())
    }

    /// The probe's first status. A stream that waits for a publisher, is live with media, or is
    /// a recorded source that opened, is played: `Play.Start` and the real subscription. A
    /// missing stream, a raw byte stream or a wrong channel password gets its refusal alone, so
    /// a client can tell "not found" from "empty".
    fn probe_answered(
        &mut self,
        probe: Probe,
        st: SubscriptionStatus_NE,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        self.act(
            out,
            Action::Unsubscribe {
                subscription: probe.subscription,
            },
        );
        let name = probe.name.clone();
        let refusal = match st.as_enum() {
            Ok(SubscriptionStatus::NotFound) => Some((
                "NetStream.Play.StreamNotFound",
                format!("No stream {name}."),
            )),
            Ok(SubscriptionStatus::PublisherStarted { media: false }) => Some((
                "NetStream.Play.StreamNotFound",
                format!("{name} is not a media stream."),
            )),
            Ok(SubscriptionStatus::Forbidden) => Some((
                "NetStream.Play.Failed",
                format!("Wrong or missing channel password for {name}."),
            )),
            Ok(SubscriptionStatus::TooSlow) => Some((
                "NetStream.Play.Failed",
                format!("{name} could not be joined."),
            )),
            // Waiting, a publisher with media (or one that already left), a recorded source
            // that opened: there is something to play, or to wait for. A status of a newer
            // host is no refusal either (the real subscription ignores it).
            _ => None,
        };
        match refusal {
            Some((code, why)) => {
                self.play_refused(probe.msid, &name, code, &why)?;
                self.send_client_commands(&probe.commands)
            }
            None => self.start_playing(probe, out),
        }
    }

    /// Tells the player that playing starts, then subscribes for real.
    fn start_playing(&mut self, probe: Probe, out: &mut Outbox) -> Result<(), Violation> {
        let Probe {
            msid,
            stream,
            name,
            options,
            reset,
            commands,
            ..
        } = probe;
        let Some(ns) = self.streams.get(&msid) else {
            return Ok(());
        };
        let buffer_ms = ns.buffer_ms;

        // Everything the player must see before media, written before the subscription so the
        // hub's first bytes (metadata, sequence headers, the cached GOP) come after it.
        self.output
            .user_control(UserControlEvent::StreamBegin(msid))?;
        if reset {
            let st = status(
                "status",
                "NetStream.Play.Reset",
                format!("Playing and resetting {name}."),
                &name,
            );
            send_status(&mut self.output, msid, st)?;
        }
        let st = status(
            "status",
            "NetStream.Play.Start",
            format!("Started playing {name}."),
            &name,
        );
        send_status(&mut self.output, msid, st)?;
        self.output.data(
            CSID_STREAM,
            msid,
            &[
                Amf0Value::from("|RtmpSampleAccess"),
                Amf0Value::Boolean(true),
                Amf0Value::Boolean(true),
            ],
        )?;
        self.send_client_commands(&commands)?;

        let subscription = self.handle();
        tracing::info!(stream = %stream, "playing");
        if let Some(ns) = self.streams.get_mut(&msid) {
            ns.role = Role::Playing(Playing {
                subscription,
                stream: stream.clone(),
                name,
                options: options.clone(),
                notify_on_start: false,
                live: false,
                recorded: false,
            });
        }
        self.act(
            out,
            Action::Subscribe {
                subscription,
                stream: stream.into(),
                options,
            },
        );
        if let Some(ms) = buffer_ms {
            self.control(out, subscription, SubscriptionControl::BufferLength(ms));
        }
        Ok(())
    }

    /// The playing stream with this subscription: (message stream id, its state).
    fn playing_mut(&mut self, subscription: u32) -> Option<(u32, &mut Playing)> {
        self.streams
            .iter_mut()
            .find_map(|(id, ns)| match &mut ns.role {
                Role::Playing(p) if p.subscription == subscription => Some((*id, p)),
                _ => None,
            })
    }

    fn stop_playing(&mut self, msid: u32) {
        if let Some(ns) = self.streams.get_mut(&msid) {
            ns.role = Role::Idle;
        }
    }

    pub(crate) fn on_subscription(
        &mut self,
        subscription: u32,
        st: SubscriptionStatus_NE,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        if matches!(&self.wait, Some(Wait::Probe(p)) if p.subscription == subscription) {
            if let Some(Wait::Probe(probe)) = self.wait.take() {
                return self.probe_answered(probe, st, out);
            }
        }
        let on_end = self.settings.on_stream_end;
        let Some((msid, p)) = self.playing_mut(subscription) else {
            tracing::debug!(subscription, status = ?st, "ignored a stale subscription status");
            return Ok(());
        };
        let name = p.name.clone();
        tracing::debug!(stream = %p.stream, status = ?st, "subscription");
        match st.as_enum() {
            Ok(SubscriptionStatus::Waiting) => p.notify_on_start = true,
            Ok(SubscriptionStatus::PublisherStarted { media: true }) => {
                // Either the player waited (none yet, or the last one left), or a new publisher
                // took over from a live one: both are news to the player.
                let taken_over = std::mem::replace(&mut p.live, true);
                if std::mem::take(&mut p.notify_on_start) || taken_over {
                    self.output
                        .user_control(UserControlEvent::StreamBegin(msid))?;
                    let st = status(
                        "status",
                        "NetStream.Play.PublishNotify",
                        format!("{name} is now published."),
                        &name,
                    );
                    send_status(&mut self.output, msid, st)?;
                }
            }
            Ok(SubscriptionStatus::PublisherStarted { media: false }) => {
                // A raw fstream broadcast (MPEG-TS, Annex B, ...): nothing RTMP can carry.
                self.stop_playing(msid);
                self.act(out, Action::Unsubscribe { subscription });
                let why = format!("{name} is not a media stream.");
                self.play_refused(msid, &name, "NetStream.Play.StreamNotFound", &why)?;
            }
            Ok(SubscriptionStatus::PublisherLeft) => {
                p.notify_on_start = true;
                p.live = false;
                self.output
                    .user_control(UserControlEvent::StreamEof(msid))?;
                let st = status(
                    "status",
                    "NetStream.Play.UnpublishNotify",
                    format!("{name} is now unpublished."),
                    &name,
                );
                send_status(&mut self.output, msid, st)?;
            }
            Ok(SubscriptionStatus::Ended) if !p.recorded && on_end == StreamEnd::Wait => {
                // Stay for the next publisher, as nginx-rtmp players do.
                p.notify_on_start = true;
                let stream = p.stream.clone();
                let options = p.options.clone();
                let new = self.handle();
                if let Some((_, p)) = self.playing_mut(subscription) {
                    p.subscription = new;
                }
                self.act(
                    out,
                    Action::Subscribe {
                        subscription: new,
                        stream: stream.into(),
                        options,
                    },
                );
            }
            Ok(SubscriptionStatus::Ended | SubscriptionStatus::TooSlow) => {
                self.stop_playing(msid);
                self.output
                    .user_control(UserControlEvent::StreamEof(msid))?;
                let st = status(
                    "status",
                    "NetStream.Play.Stop",
                    format!("Stopped playing {name}."),
                    &name,
                );
                send_status(&mut self.output, msid, st)?;
            }
            Ok(SubscriptionStatus::NotFound) => {
                self.stop_playing(msid);
                let why = format!("No stream {name}.");
                self.play_refused(msid, &name, "NetStream.Play.StreamNotFound", &why)?;
            }
            Ok(SubscriptionStatus::Forbidden) => {
                self.stop_playing(msid);
                let why = format!("Wrong or missing channel password for {name}.");
                self.play_refused(msid, &name, "NetStream.Play.Failed", &why)?;
            }
            Ok(SubscriptionStatus::SourceOpened { duration_ms }) => {
                p.recorded = true;
                tracing::debug!(duration_ms, "recorded source opened");
            }
            Ok(SubscriptionStatus::Seeked { position_ms }) => {
                let st = status(
                    "status",
                    "NetStream.Seek.Notify",
                    format!("Seeking {position_ms} (stream ID: {msid})."),
                    &name,
                );
                send_status(&mut self.output, msid, st)?;
                let st = status(
                    "status",
                    "NetStream.Play.Start",
                    format!("Started playing {name}."),
                    &name,
                );
                send_status(&mut self.output, msid, st)?;
            }
            // A status of a newer host (logged above): nothing to tell the player.
            _ => {}
        }
        Ok(())
    }

    /// The subscription playing on `msid`, if any.
    fn subscription_on(&self, msid: u32) -> Option<&Playing> {
        match &self.streams.get(&msid)?.role {
            Role::Playing(p) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn cmd_pause(
        &mut self,
        msid: u32,
        cmd: &Command,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        let pause = cmd.arg(0).and_then(Amf0Value::as_bool).unwrap_or(true);
        let Some(p) = self.subscription_on(msid) else {
            return Ok(());
        };
        let (subscription, name) = (p.subscription, p.name.clone());
        self.control(out, subscription, SubscriptionControl::Pause(pause));
        let (code, what) = if pause {
            ("NetStream.Pause.Notify", "Paused")
        } else {
            ("NetStream.Unpause.Notify", "Unpaused")
        };
        let st = status("status", code, format!("{what} {name}."), &name);
        send_status(&mut self.output, msid, st)?;
        Ok(())
    }

    pub(crate) fn cmd_seek(
        &mut self,
        msid: u32,
        cmd: &Command,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        let ms = cmd
            .arg(0)
            .and_then(Amf0Value::as_f64)
            .unwrap_or(0.0)
            .max(0.0) as u64;
        let Some(p) = self.subscription_on(msid) else {
            return Ok(());
        };
        let (subscription, name) = (p.subscription, p.name.clone());
        // A recorded source also reports a (virtual) publisher; only a live one cannot seek.
        if p.live && !p.recorded {
            let st = status(
                "error",
                "NetStream.Seek.Failed",
                "A live stream cannot seek.",
                &name,
            );
            send_status(&mut self.output, msid, st)?;
            return Ok(());
        }
        // A recorded source answers with Seeked (then Seek.Notify is sent).
        self.control(out, subscription, SubscriptionControl::Seek(ms));
        Ok(())
    }

    pub(crate) fn cmd_receive(&mut self, msid: u32, audio: bool, on: bool, out: &mut Outbox) {
        let Some(ns) = self.streams.get_mut(&msid) else {
            return;
        };
        if audio {
            ns.receive_audio = on;
        } else {
            ns.receive_video = on;
        }
        if let Role::Playing(p) = &mut ns.role {
            if audio {
                p.options.audio = on;
            } else {
                p.options.video = on;
            }
            let subscription = p.subscription;
            let control = if audio {
                SubscriptionControl::ReceiveAudio(on)
            } else {
                SubscriptionControl::ReceiveVideo(on)
            };
            self.control(out, subscription, control);
        }
    }

    pub(crate) fn set_buffer_length(&mut self, msid: u32, buffer_ms: u32, out: &mut Outbox) {
        let Some(ns) = self.streams.get_mut(&msid) else {
            return;
        };
        ns.buffer_ms = Some(buffer_ms);
        if let Role::Playing(p) = &ns.role {
            let subscription = p.subscription;
            self.control(
                out,
                subscription,
                SubscriptionControl::BufferLength(buffer_ms),
            );
        }
    }
}
