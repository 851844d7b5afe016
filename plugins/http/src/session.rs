//! One HTTP connection: requests read with their bounds, answered in order. A request for a
//! live stream is answered in two steps: a probe subscription (format `http-probe`, no bytes)
//! tells whether there is anything to play, so the client gets 404 or 403 rather than an empty
//! 200; then the head of the chunked FLV body is written and the real subscription made, after
//! which the hub queues the shared chunks on the connection itself.

use std::sync::Arc;

use abi_stable::std_types::{RString, RVec};
use fstream_abi::{
    sdk::SessionLogic, Action, Caller, CloseMode, Event, HttpCall, HttpHeader, HttpReply, NetAddr,
    Outbox, OverflowPolicy, PluginError, SubscribeOptions, SubscriptionStatus,
};

use crate::{
    encoder::{FLV_FORMAT, PROBE_FORMAT},
    error::HttpError,
    hls::{
        playlist::media_playlist,
        store::{lock, MediaName, Store},
    },
    request::{self, Method, Parsed, Request},
    response,
    route::{route, Route},
    settings::Settings,
};

enum State {
    /// Reading the next request.
    Reading,
    /// Waiting for the probe's first status.
    Probing {
        subscription: u32,
        stream: String,
        channel_password: Option<String>,
        head_only: bool,
        keep_alive: bool,
    },
    /// The body is the live stream until it ends.
    Streaming { subscription: u32, stream: String },
    /// A blocking playlist reload, or the part a preload hint named, until it exists.
    Held {
        ask: HlsAsk,
        keep_alive: bool,
        head_only: bool,
        until_ms: u64,
    },
    /// A request an HTTP handler answers, until the host brings its reply.
    Calling {
        request: u64,
        keep_alive: bool,
        head_only: bool,
    },
    /// An answer that closes the connection was sent.
    Done,
}

/// Where a session learns the path prefixes of the HTTP handlers (the host's list, asked per
/// request: a reload changes it).
pub type Prefixes = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// An HLS request.
#[derive(Debug, Clone)]
enum HlsAsk {
    /// The playlist; with a blocking reload, once segment `msn` (its part, if given) exists.
    Playlist(String, Option<(u64, Option<usize>)>),
    /// A segment or a part by name.
    Media(String, String),
}

/// How often a held request looks again, and how long it is held at most.
const HOLD_POLL_MS: u64 = 20;

pub struct HttpSession {
    settings: Arc<Settings>,
    hls: Arc<Store>,
    buf: Vec<u8>,
    state: State,
    requests: u32,
    next_subscription: u32,
    /// The time of the current call.
    now_ms: u64,
    prefixes: Option<Prefixes>,
    /// The control listener's sessions: only the handlers' paths exist.
    handlers_only: bool,
    next_call: u64,
}

impl HttpSession {
    pub fn new(settings: Arc<Settings>, hls: Arc<Store>) -> Self {
        Self {
            settings,
            hls,
            buf: Vec::new(),
            state: State::Reading,
            requests: 0,
            next_subscription: 0,
            now_ms: 0,
            prefixes: None,
            handlers_only: false,
            next_call: 0,
        }
    }

    /// Passes requests under the HTTP handlers' prefixes on to the host.
    pub fn with_handlers(mut self, prefixes: Prefixes) -> Self {
        self.prefixes = Some(prefixes);
        self
    }

    /// Serves the handlers' paths and nothing else (no streams, no pages): the control
    /// listener.
    pub fn handlers_only(mut self) -> Self {
        self.handlers_only = true;
        self
    }

    /// Whether an HTTP handler serves `target`'s path.
    fn for_handler(&self, target: &str) -> bool {
        let Some(prefixes) = &self.prefixes else {
            return false;
        };
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        prefixes().iter().any(|p| fstream_abi::path_under(path, p))
    }

    /// Hands a request to the host for its HTTP handler (after the same path checks as ours).
    fn call_handler(&mut self, req: Request, out: &mut Outbox) {
        let keep = req.keep_alive;
        let head_only = req.method == Method::Head;
        if let Err(e) = crate::route::check_path(&req.target) {
            return self.fail(e, keep, head_only, out);
        }
        let (path, query) = req
            .target
            .split_once('?')
            .map_or((req.target.as_str(), ""), |(p, q)| (p, q));
        self.next_call += 1;
        let request = self.next_call;
        tracing::debug!(path, method = req.method.as_str(), "http: to a handler");
        out.push(Action::CallHttp {
            request,
            call: HttpCall {
                method: req.method.as_str().into(),
                path: path.into(),
                query: query.into(),
                headers: req
                    .headers
                    .iter()
                    .map(|(n, v)| HttpHeader::new(n, v))
                    .collect(),
                body: req.body.clone().into(),
                listener: RString::new(),
                caller: Caller {
                    connection: 0,
                    peer: RString::new(),
                    peer_addr: NetAddr::UNSPECIFIED,
                },
                ext: RVec::new(),
            },
        });
        self.state = State::Calling {
            request,
            keep_alive: keep,
            head_only,
        };
    }

    /// The host brought a handler's reply.
    fn handler_answered(&mut self, request: u64, reply: HttpReply, out: &mut Outbox) {
        let State::Calling {
            request: r,
            keep_alive,
            head_only,
        } = self.state
        else {
            return;
        };
        if r != request {
            return;
        }
        let keep = keep_alive && self.may_continue();
        let (head, has_body) = response::handler_head(&reply, keep, &self.settings.cors_origin);
        tracing::info!(status = reply.status, "http: a handler answered");
        out.write(&head);
        if has_body && !head_only {
            out.write_payload(reply.body);
        }
        self.after_answer(keep, out);
        self.process(out);
    }

    fn arm_idle(&self, out: &mut Outbox) {
        out.push(Action::SetTimer(self.settings.idle_timeout_ms));
    }

    /// Answers an error; closes unless the client keeps the connection (`keep_alive` is false
    /// for a request that could not be read to its end).
    fn fail(&mut self, e: HttpError, keep_alive: bool, head_only: bool, out: &mut Outbox) {
        let keep = keep_alive && self.may_continue();
        let (code, _) = e.status();
        tracing::info!(status = code, reason = %e, "request refused");
        out.write(&response::error(
            &e,
            keep,
            &self.settings.cors_origin,
            head_only,
        ));
        self.after_answer(keep, out);
    }

    fn may_continue(&self) -> bool {
        self.requests < self.settings.max_requests_per_connection
    }

    /// After a complete answer: read the next request, or close once it is written.
    fn after_answer(&mut self, keep: bool, out: &mut Outbox) {
        if keep {
            self.state = State::Reading;
            self.arm_idle(out);
        } else {
            self.state = State::Done;
            self.buf = Vec::new();
            out.close(CloseMode::AfterFlush);
        }
    }

    /// Handles every complete request buffered, in order, until one needs the host.
    fn process(&mut self, out: &mut Outbox) {
        while matches!(self.state, State::Reading) && !self.buf.is_empty() {
            let req = match request::parse(&self.buf, &self.settings) {
                Ok(Parsed::Partial) => return,
                Ok(Parsed::Complete(r)) => r,
                Err(e) => {
                    self.buf.clear();
                    return self.fail(e, false, false, out);
                }
            };
            let whole = req.head_len as u64 + req.content_length;
            if (self.buf.len() as u64) < whole {
                return;
            }
            let mut req = req;
            let body: Vec<u8> = self
                .buf
                .drain(..whole as usize)
                .skip(req.head_len)
                .collect();
            self.requests += 1;
            if req.method != Method::Options && self.for_handler(&req.target) {
                req.body = body;
                self.call_handler(req, out);
                continue;
            }
            if self.handlers_only && req.method != Method::Options {
                let (keep, head_only) = (req.keep_alive, req.method == Method::Head);
                self.fail(HttpError::NotFound, keep, head_only, out);
                continue;
            }
            // The body (if any) is dropped: none of our own paths takes one.
            self.handle(req, out);
        }
    }

    fn handle(&mut self, req: Request, out: &mut Outbox) {
        let keep = req.keep_alive;
        let head_only = req.method == Method::Head;
        match &req.method {
            Method::Options => {
                let keep = keep && self.may_continue();
                out.write(&response::preflight(keep, &self.settings.cors_origin));
                return self.after_answer(keep, out);
            }
            Method::Other(m) => {
                return self.fail(HttpError::MethodNotAllowed(m.clone()), keep, false, out)
            }
            Method::Get | Method::Head => {}
        }
        match route(&req.target) {
            Err(e) => self.fail(e, keep, head_only, out),
            Ok(route @ (Route::Index | Route::Watch { .. })) => {
                let page = match route {
                    Route::Watch { stream } => crate::pages::watch_page(
                        &stream,
                        self.settings.watch_report_ms,
                        self.settings.hls_part_ms > 0,
                    ),
                    _ => crate::pages::index_page(&self.hls.live()),
                };
                self.answer(
                    "text/html; charset=utf-8",
                    "no-cache",
                    page.as_bytes(),
                    keep,
                    head_only,
                    out,
                );
            }
            Ok(Route::Asset(a)) => {
                // Versioned names: a cache may keep them for ever.
                self.answer(
                    a.content_type,
                    "public, max-age=31536000, immutable",
                    a.bytes,
                    keep,
                    head_only,
                    out,
                );
            }
            Ok(Route::Report { query }) => {
                if self.settings.watch_report_ms == 0 {
                    return self.fail(HttpError::NotFound, keep, head_only, out);
                }
                let field = |k| crate::route::query_param(&query, k).unwrap_or_default();
                let (stream, player, t) = (field("stream"), field("player"), field("t"));
                // Only what parses goes into the log.
                let t: f64 = t.parse().unwrap_or(-1.0);
                if fstream_abi::names::split_stream(&stream).is_ok()
                    && matches!(player.as_str(), "hls" | "flv")
                {
                    tracing::info!(stream = %stream, player = %player, t, "watch page report");
                }
                let keep = keep && self.may_continue();
                out.write(&response::text(
                    204,
                    "No Content",
                    "",
                    &[],
                    keep,
                    &self.settings.cors_origin,
                    true,
                ));
                self.after_answer(keep, out);
            }
            Ok(Route::Playlist { stream, msn, part }) => {
                let want = msn.map(|m| (m, part));
                self.hls_request(HlsAsk::Playlist(stream, want), keep, head_only, out);
            }
            Ok(Route::Segment { stream, name }) => {
                self.hls_request(HlsAsk::Media(stream, name), keep, head_only, out);
            }
            Ok(Route::Flv {
                stream,
                channel_password,
            }) => {
                self.next_subscription += 1;
                let subscription = self.next_subscription;
                tracing::debug!(stream = %stream, "http-flv: asking the hub how the stream stands");
                out.push(Action::Subscribe {
                    subscription,
                    stream: stream.clone().into(),
                    options: self.options(PROBE_FORMAT, channel_password.clone(), false),
                });
                self.state = State::Probing {
                    subscription,
                    stream,
                    channel_password,
                    head_only,
                    keep_alive: keep,
                };
            }
        }
    }

    /// The part target advertised (0: plain HLS).
    fn part_target_ms(&self) -> u32 {
        match self.settings.hls_part_ms {
            0 => 0,
            ms => ms + 100,
        }
    }

    /// Answers an HLS request now, holds it (a blocking reload, a hinted part), or refuses it.
    fn hls_request(&mut self, ask: HlsAsk, keep: bool, head_only: bool, out: &mut Outbox) {
        let stream = match &ask {
            HlsAsk::Playlist(s, _) | HlsAsk::Media(s, _) => s.clone(),
        };
        let Some(segs) = self.hls.get(&stream).filter(|_| self.settings.hls) else {
            return self.fail(HttpError::NotFound, keep, head_only, out);
        };
        let g = lock(&segs);
        // Held requests wait at most three target durations (what a player's reload would).
        let hold_ms = 3 * u64::from(self.settings.hls_segment_ms.max(1000));
        match &ask {
            HlsAsk::Playlist(_, want) => {
                if let Some((msn, part)) = *want {
                    if msn > g.next_seq + 2 {
                        drop(g);
                        return self.fail(
                            HttpError::BadRequest("_HLS_msn is too far ahead".into()),
                            keep,
                            head_only,
                            out,
                        );
                    }
                    if !g.has(msn, part) && g.live {
                        drop(g);
                        return self.hold(ask, keep, head_only, hold_ms, out);
                    }
                }
                let text = media_playlist(&g, self.part_target_ms());
                drop(g);
                match text {
                    None => self.fail(HttpError::NotFound, keep, head_only, out),
                    Some(text) => {
                        tracing::debug!(stream = %stream, "hls: served the playlist");
                        // Short-lived: a cache serves it for a second, then asks again.
                        self.answer(
                            "application/vnd.apple.mpegurl",
                            "max-age=1",
                            text.as_bytes(),
                            keep,
                            head_only,
                            out,
                        );
                    }
                }
            }
            HlsAsk::Media(_, name) => {
                if let Some((data, content_type)) = g.find(name) {
                    drop(g);
                    tracing::debug!(stream = %stream, segment = %name, "hls: served a segment");
                    let keep = keep && self.may_continue();
                    // A name is never reused: it may be cached for ever.
                    out.write(&response::body_head(
                        content_type,
                        data.len(),
                        "public, max-age=31536000, immutable",
                        keep,
                        &self.settings.cors_origin,
                    ));
                    if !head_only {
                        // The stored bytes themselves, shared by every request.
                        out.write_payload(data);
                    }
                    return self.after_answer(keep, out);
                }
                // The part a preload hint names (the next of the open segment, or the first
                // of the next) is held until it is cut.
                let hinted = match g.parse_name(name) {
                    Some(MediaName::Part { seq, part: p, .. }) => {
                        g.live
                            && ((seq == g.next_seq && p <= g.open_parts.len())
                                || (seq == g.next_seq + 1 && p == 0))
                    }
                    _ => false,
                };
                drop(g);
                if hinted {
                    let hold = 3 * u64::from(self.part_target_ms().max(100));
                    self.hold(ask, keep, head_only, hold.max(hold_ms), out)
                } else {
                    self.fail(HttpError::NotFound, keep, head_only, out)
                }
            }
        }
    }

    fn hold(
        &mut self,
        ask: HlsAsk,
        keep_alive: bool,
        head_only: bool,
        for_ms: u64,
        out: &mut Outbox,
    ) {
        self.state = State::Held {
            ask,
            keep_alive,
            head_only,
            until_ms: self.now_ms + for_ms,
        };
        out.push(Action::SetTimer(HOLD_POLL_MS));
    }

    /// A held request looks again: answered once it can be, or when its time is up (the
    /// playlist as it is, or 404 for a part that never came).
    fn poll_held(&mut self, out: &mut Outbox) {
        let State::Held {
            ask,
            keep_alive,
            head_only,
            until_ms,
        } = std::mem::replace(&mut self.state, State::Reading)
        else {
            return;
        };
        let ready = match &ask {
            HlsAsk::Playlist(stream, Some((msn, part))) => self.hls.get(stream).is_none_or(|s| {
                let g = lock(&s);
                g.has(*msn, *part) || !g.live
            }),
            HlsAsk::Playlist(_, None) => true,
            HlsAsk::Media(stream, name) => self.hls.get(stream).is_none_or(|s| {
                let g = lock(&s);
                g.find(name).is_some() || !g.live
            }),
        };
        if ready {
            self.hls_request(ask, keep_alive, head_only, out);
            self.process(out);
        } else if self.now_ms >= until_ms {
            match ask {
                // Time is up: the playlist as it stands, or no such part.
                HlsAsk::Playlist(s, _) => {
                    self.hls_request(HlsAsk::Playlist(s, None), keep_alive, head_only, out)
                }
                HlsAsk::Media(..) => self.fail(HttpError::NotFound, keep_alive, head_only, out),
            }
            self.process(out);
        } else {
            self.state = State::Held {
                ask,
                keep_alive,
                head_only,
                until_ms,
            };
            out.push(Action::SetTimer(HOLD_POLL_MS));
        }
    }

    /// A complete 200 answer with `body`.
    fn answer(
        &mut self,
        content_type: &str,
        cache_control: &str,
        body: &[u8],
        keep: bool,
        head_only: bool,
        out: &mut Outbox,
    ) {
        let keep = keep && self.may_continue();
        out.write(&response::body_head(
            content_type,
            body.len(),
            cache_control,
            keep,
            &self.settings.cors_origin,
        ));
        if !head_only {
            out.write(body);
        }
        self.after_answer(keep, out);
    }

    fn options(
        &self,
        format: &str,
        channel_password: Option<String>,
        media: bool,
    ) -> SubscribeOptions {
        SubscribeOptions {
            format: format.into(),
            channel_password: channel_password.map(Into::into).into(),
            wait_ms: 0,
            overflow: OverflowPolicy::SkipToKeyframe,
            max_queue_bytes: self.settings.viewer_queue_bytes,
            join_with_cache: media,
            audio: media,
            video: media,
            start_ms: 0,
            ext: RVec::new(),
        }
    }

    fn probe_answered(&mut self, status: Option<SubscriptionStatus>, out: &mut Outbox) {
        let State::Probing {
            subscription,
            stream,
            channel_password,
            head_only,
            keep_alive,
        } = std::mem::replace(&mut self.state, State::Reading)
        else {
            return;
        };
        out.push(Action::Unsubscribe { subscription });
        let refusal = match status {
            Some(SubscriptionStatus::NotFound) => Some(HttpError::NotFound),
            Some(SubscriptionStatus::PublisherStarted { media: false }) => {
                Some(HttpError::NotFound)
            }
            Some(SubscriptionStatus::Forbidden) => Some(HttpError::Forbidden),
            Some(SubscriptionStatus::TooSlow) => Some(HttpError::Unavailable),
            // A publisher with media, one that just left (grace), a recorded source that
            // opened, or a status of a newer host: there is something to play.
            _ => None,
        };
        if let Some(e) = refusal {
            return self.fail(e, keep_alive, head_only, out);
        }
        if head_only {
            let keep = keep_alive && self.may_continue();
            out.write(&response::flv_head(keep, &self.settings.cors_origin));
            return self.after_answer(keep, out);
        }
        // The stream is the rest of this connection.
        out.write(&response::flv_head(false, &self.settings.cors_origin));
        self.next_subscription += 1;
        let subscription = self.next_subscription;
        tracing::info!(stream = %stream, "http-flv: playing");
        out.push(Action::Subscribe {
            subscription,
            stream: stream.clone().into(),
            options: self.options(FLV_FORMAT, channel_password, true),
        });
        self.buf = Vec::new();
        self.state = State::Streaming {
            subscription,
            stream,
        };
    }

    /// Ends a stream's body and the connection.
    fn end_stream(&mut self, out: &mut Outbox, mode: CloseMode) {
        if let State::Streaming { subscription, .. } = self.state {
            out.push(Action::Unsubscribe { subscription });
            if mode == CloseMode::AfterFlush {
                out.write(response::LAST_CHUNK);
            }
        }
        self.state = State::Done;
        out.close(mode);
    }
}

impl SessionLogic for HttpSession {
    fn start(&mut self, now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        self.now_ms = now_ms;
        self.arm_idle(out);
        Ok(())
    }

    fn bytes(&mut self, data: &[u8], now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        self.now_ms = now_ms;
        match self.state {
            // A client has nothing to say while its stream plays, or once it was answered for
            // the last time: what it sends is dropped, not kept.
            State::Streaming { .. } | State::Done => return Ok(()),
            State::Reading | State::Probing { .. } | State::Held { .. } | State::Calling { .. } => {
            }
        }
        // Pipelined requests wait while a probe runs; their bytes are bounded like one head
        // and body.
        let bound = self.settings.max_head_bytes as u64 + self.settings.max_body_bytes + 1;
        let room = bound.saturating_sub(self.buf.len() as u64) as usize;
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
        if matches!(self.state, State::Reading) {
            self.process(out);
        } else if self.buf.len() as u64 >= bound {
            // Too much piled up behind a request still waiting for its answer.
            self.buf.clear();
        }
        Ok(())
    }

    fn event(&mut self, event: Event, now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        self.now_ms = now_ms;
        match event {
            Event::Subscription {
                subscription,
                status,
            } => {
                let status = status.as_enum().ok().cloned();
                match &self.state {
                    State::Probing {
                        subscription: s, ..
                    } if *s == subscription => {
                        self.probe_answered(status, out);
                        self.process(out);
                    }
                    State::Streaming {
                        subscription: s,
                        stream,
                    } if *s == subscription => match status {
                        Some(SubscriptionStatus::Ended)
                        | Some(SubscriptionStatus::NotFound)
                        | Some(SubscriptionStatus::Forbidden) => {
                            tracing::debug!(stream = %stream, "http-flv: the stream ended");
                            self.end_stream(out, CloseMode::AfterFlush);
                        }
                        Some(SubscriptionStatus::TooSlow) => {
                            tracing::info!(stream = %stream, "http-flv viewer too slow; closed");
                            self.end_stream(out, CloseMode::Now);
                        }
                        _ => {}
                    },
                    // A probe's later statuses, or the stale statuses of a subscription
                    // already ended.
                    _ => {}
                }
            }
            Event::HttpResult { request, reply } => self.handler_answered(request, reply, out),
            Event::Shutdown => match self.state {
                State::Streaming { .. } => self.end_stream(out, CloseMode::AfterFlush),
                State::Done => {}
                _ => {
                    self.state = State::Done;
                    out.close(CloseMode::AfterFlush);
                }
            },
            _ => {}
        }
        Ok(())
    }

    fn timer(&mut self, now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        self.now_ms = now_ms;
        if let State::Held { .. } = self.state {
            self.poll_held(out);
            return Ok(());
        }
        if let State::Reading = self.state {
            if self.buf.is_empty() {
                // Idle between requests (or before the first): close quietly.
                self.state = State::Done;
                out.close(CloseMode::AfterFlush);
            } else {
                self.buf.clear();
                self.fail(HttpError::Timeout, false, false, out);
            }
        }
        Ok(())
    }

    fn closed(&mut self, _now_ms: u64, out: &mut Outbox) -> Result<(), PluginError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Streaming { subscription, .. } | State::Probing { subscription, .. } => {
                out.push(Action::Unsubscribe { subscription });
            }
            _ => {}
        }
        out.close(CloseMode::Now);
        Ok(())
    }
}
