//! One connection: the task that feeds its session and carries out the session's actions.
//!
//! The task owns the read half of the socket; the write half belongs to the connection's
//! [`Outq`] writer. Slow work (authentication, app handlers) runs on blocking threads with a
//! timeout and comes back as an event, so no other connection waits for it.
//!
//! On a TLS listener the handshake comes first ([`tls::accept`]); the session is created only
//! once it completes, and sees the same plaintext bytes a plain connection would give it.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use abi_stable::std_types::{RResult, RSlice};
use fstream_abi::{
    names, AppCall, AppCall_NE, AppDecision, AppVerdict, AuthOutcome, AuthOutcome_NE, Caller,
    CloseMode, CommandCall, CommandReply, CommandReply_NE, ConnInfo, Event, Event_NE, Extension,
    Extension_NE, HttpCall, HttpReply, NetAddr, Notice, NoticeKind, NoticeKind_NE, Outbox,
    PluginError, PublishOutcome, PublishOutcome_NE, SessionBox,
};
use tokio::{
    net::TcpStream,
    sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender},
    time::Instant,
};
use tracing::Instrument;

use crate::{
    call_gate::{CallGate, GateError},
    frontends::Frontend,
    hub::{bounded_events, EventRx, EventTx, Peer, Stream},
    not_recorded::NotRecorded,
    outq::{self, Outq},
    renames::{self, Renames},
    server::{ConnSlot, HostCtx},
    source_player::{self, SourcePlayer},
    stats::{SessionEntry, COUNTERS},
    tls::{self, HandshakeError, ReadSide, TlsSettings, Transport},
};

/// The most bytes read from a client, and kept for its session, while its app handler holds a
/// call (a deferred decision).
const HELD_MAX: usize = 64 * 1024;

/// Bytes read from a socket at a time.
const READ_BUF: usize = 64 * 1024;

thread_local! {
    /// The read buffer of the connections served by this thread.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; READ_BUF]);
}

/// Serves one accepted connection; `tls` for a TLS listener's. The slot is held until the end,
/// the TLS handshake included.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    ctx: Arc<HostCtx>,
    frontend: Arc<Frontend>,
    tls: Option<Arc<TlsSettings>>,
    sock: TcpStream,
    peer: SocketAddr,
    id: u64,
    _slot: ConnSlot,
) {
    let span =
        tracing::info_span!("conn", id, %peer, proto = %frontend.protocol, tls = tls.is_some());
    async move {
        let _ = sock.set_nodelay(true);
        let transport = match tls {
            None => Transport::Plain(sock),
            Some(settings) => match tls::accept(sock, &settings).await {
                Ok(t) => t,
                Err(HandshakeError::Closed) => {
                    tracing::info!("TLS handshake failed: the peer closed the connection");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS handshake failed; connection closed");
                    return;
                }
            },
        };
        run(ctx, frontend, transport, peer, id).await
    }
    .instrument(span)
    .await
}

async fn run(
    ctx: Arc<HostCtx>,
    frontend: Arc<Frontend>,
    transport: Transport,
    peer: SocketAddr,
    id: u64,
) {
    let local = transport.tcp().local_addr().ok();
    let info = ConnInfo {
        id,
        peer: peer.to_string().into(),
        local: local.map(|a| a.to_string()).unwrap_or_default().into(),
        peer_addr: NetAddr::from(peer),
        local_addr: local.map(NetAddr::from).unwrap_or(NetAddr::UNSPECIFIED),
        ext: Default::default(),
    };
    let session = match frontend.factory.new_session(&info).into_result() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(plugin = %frontend.plugin, error = %e, "cannot create a session");
            return;
        }
    };
    let (mut rd, wr) = transport.split();
    let hub_cfg = &ctx.hub.cfg;
    let out = Outq::new(
        wr,
        Duration::from_millis(hub_cfg.gather_ms),
        hub_cfg.gather_bytes as usize,
        Duration::from_millis(ctx.live().cfg.limits.write_stall_ms),
        ctx.flushers.for_conn(id),
    );
    out.set_control_limit(ctx.live().cfg.limits.max_control_queue_bytes);
    tokio::spawn(outq::run_writer(out.clone()).in_current_span());
    let entry = ctx
        .services
        .sessions
        .open(id, &frontend.protocol, &peer.to_string(), out.clone());
    let (events, mut events_rx) = bounded_events(ctx.live().cfg.limits.max_queued_events);
    let (deferrals, mut deferrals_rx) = unbounded_channel();
    let mut conn = Conn {
        peer: Peer {
            conn_id: id,
            out: out.clone(),
            events,
            frontend: frontend.clone(),
        },
        peer_text: peer.to_string(),
        peer_addr: NetAddr::from(peer),
        ctx: ctx.clone(),
        session,
        publications: HashMap::new(),
        subscriptions: HashMap::new(),
        players: HashMap::new(),
        awaiting: 0,
        deferred: HashSet::new(),
        deferrals,
        held: Vec::new(),
        last_read: Instant::now(),
        timer: None,
        reading: true,
        done: false,
        started: Instant::now(),
        entry,
        since: HashMap::new(),
        renames: Arc::default(),
        not_recorded: Arc::default(),
    };
    ctx.services
        .clients
        .register(id, conn.peer.events.clone(), frontend.takes_commands);
    tracing::debug!("connected");
    conn.call(|s, now, ob| s.start(now, ob));
    conn.event_loop(&mut rd, &mut events_rx, &mut deferrals_rx)
        .await;
    conn.cleanup();
    ctx.services.clients.forget(id);
    ctx.services.sessions.close(id);
    tracing::debug!("disconnected");
}

struct Conn {
    peer: Peer,
    /// The peer's `IP:PORT`, and as a value.
    peer_text: String,
    peer_addr: NetAddr,
    ctx: Arc<HostCtx>,
    session: SessionBox,
    publications: HashMap<u32, Arc<Stream>>,
    subscriptions: HashMap<u32, Arc<Stream>>,
    /// Subscriptions served by a source plugin (recorded streams), one thread each.
    players: HashMap<u32, SourcePlayer>,
    /// Answers (auth, token, app) requested and not yet delivered; reading pauses meanwhile.
    awaiting: usize,
    /// App calls (by request) whose handler answers later: meanwhile the host watches for the
    /// peer's close, so a client that gives up waiting is noticed.
    deferred: HashSet<u64>,
    /// Where a blocking app call says it was deferred: (request, ticket).
    deferrals: UnboundedSender<(u64, u64)>,
    /// Bytes read while a call was held, for the session once it is answered (at most
    /// [`HELD_MAX`]; past that the kernel holds the rest and the close goes unseen).
    held: Vec<u8>,
    /// When the peer last sent bytes.
    last_read: Instant,
    timer: Option<Instant>,
    reading: bool,
    done: bool,
    started: Instant,
    /// This connection in the stats API.
    entry: Arc<SessionEntry>,
    /// When each publication (`Role::Publish`) and subscription began, and its stream, for
    /// the end notices.
    since: HashMap<(Role, u32), (String, std::time::Instant)>,
    /// Stream names the authenticators renamed, used by this connection's publishes and
    /// subscriptions of those names.
    renames: Arc<Renames>,
    /// Publishes an app handler accepted without the recording they asked for
    /// (`MayRecord(false)`), by the names they may go live under: the host publishes them
    /// live whatever the frontend says (a frontend built before v2.3 does not read the grant).
    not_recorded: Arc<NotRecorded>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Publish,
    Play,
}

impl Conn {
    async fn event_loop(
        &mut self,
        rd: &mut ReadSide,
        events: &mut EventRx,
        deferrals: &mut UnboundedReceiver<(u64, u64)>,
    ) {
        let mut ended = self.peer.out.ended();
        let mut shutdown = self.ctx.shutdown.subscribe();
        let mut shutdown_sent = false;
        let idle_ms = self.ctx.live().cfg.limits.publisher_idle_ms;
        while !self.done {
            let timer = self.timer;
            // A publisher that sends nothing for `publisher_idle_ms` is gone (its network may
            // have vanished without a FIN): close it so its viewers are told.
            let idle_deadline = (idle_ms > 0 && !self.publications.is_empty())
                .then(|| self.last_read + Duration::from_millis(idle_ms));
            if !self.held.is_empty() && self.awaiting == 0 {
                let held = std::mem::take(&mut self.held);
                tracing::trace!(
                    bytes = held.len(),
                    "the session gets what came while a call was held"
                );
                self.call(|s, now, ob| s.bytes(RSlice::from_slice(&held), now, ob));
                continue;
            }
            let watch_close =
                self.reading && !self.deferred.is_empty() && self.held.len() < HELD_MAX;
            tokio::select! {
                // While an answer from an authenticator or app handler is awaited, the peer's
                // bytes wait in the kernel (TCP backpressure) rather than in the session.
                r = rd.readable(), if self.reading && self.awaiting == 0 => match r {
                    Ok(()) => self.read_available(rd),
                    Err(_) => {
                        self.reading = false;
                        self.call(|s, now, ob| s.closed(now, ob));
                    }
                },
                // A client whose call is held by its app handler may give up; its bytes stay
                // unread, but its close is seen.
                r = rd.readable(), if watch_close => match r {
                    Ok(()) => self.hold_available(rd),
                    Err(_) => self.peer_left(),
                },
                Some((request, ticket)) = deferrals.recv() => {
                    // Not answered in the meantime: watch for the client's close until it is.
                    if self.ctx.services.clients.is_pending(ticket) {
                        self.deferred.insert(request);
                    }
                    tracing::trace!(request, ticket, watching = !self.deferred.is_empty(), "an app call is held");
                }
                Some(ev) = events.recv() => {
                    if events.overflowed() {
                        tracing::warn!(
                            limit = self.ctx.live().cfg.limits.max_queued_events,
                            "too many events queued for this connection; closing it"
                        );
                        self.peer.out.abort();
                        break;
                    }
                    let ev = *ev;
                    if matches!(ev, Event::AuthResult { .. } | Event::TokenResult { .. } | Event::AppResult { .. } | Event::CommandResult { .. } | Event::HttpResult { .. }) {
                        self.awaiting = self.awaiting.saturating_sub(1);
                    }
                    if let Event::AppResult { request, .. } = &ev {
                        self.deferred.remove(request);
                    }
                    self.call(|s, now, ob| s.event(Event_NE::new(ev), now, ob));
                }
                _ = sleep_until_opt(timer) => {
                    self.timer = None;
                    self.call(|s, now, ob| s.timer(now, ob));
                }
                _ = sleep_until_opt(idle_deadline) => {
                    if self.last_read.elapsed() >= Duration::from_millis(idle_ms) {
                        tracing::warn!(idle_ms, "publisher sent nothing for too long; closing it");
                        self.peer.out.abort();
                        break;
                    }
                }
                _ = ended.changed() => break,
                _ = shutdown.changed(), if !shutdown_sent => {
                    shutdown_sent = true;
                    self.call(|s, now, ob| s.event(Event_NE::new(Event::Shutdown), now, ob));
                }
            }
        }
    }

    /// Reads what the socket has into this thread's scratch buffer and hands it to the session.
    /// A buffer per thread, not per connection: most connections (viewers) send almost nothing,
    /// and a 64 KiB buffer each would dominate their memory. On TLS, the buffer gets the
    /// decrypted bytes.
    fn read_available(&mut self, rd: &ReadSide) {
        SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            match rd.try_read(&mut buf) {
                Ok(0) => {
                    self.reading = false;
                    self.call(|s, now, ob| s.closed(now, ob));
                }
                Ok(n) => {
                    self.last_read = Instant::now();
                    self.entry.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    let data = &buf[..n];
                    self.call(|s, now, ob| s.bytes(RSlice::from_slice(data), now, ob));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.reading = false;
                    self.call(|s, now, ob| s.closed(now, ob));
                    if rd.is_tls() && e.kind() == std::io::ErrorKind::InvalidData {
                        // A TLS error (logged by the read): nothing more can be decrypted or
                        // sealed; send rustls's alert and end.
                        self.peer.out.close_after_flush();
                    }
                }
            }
        });
        if rd.take_flush_wanted() {
            self.peer.out.flush(true);
        }
    }

    /// While an app handler holds a call: reads what the client sends into `held` (bounded),
    /// so that its leaving is seen.
    fn hold_available(&mut self, rd: &ReadSide) {
        SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            let room = HELD_MAX.saturating_sub(self.held.len()).min(buf.len());
            match rd.try_read(&mut buf[..room]) {
                Ok(0) => self.peer_left(),
                Ok(n) => {
                    self.last_read = Instant::now();
                    self.entry.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    self.held.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.peer_left(),
            }
        });
        if rd.take_flush_wanted() {
            self.peer.out.flush(true);
        }
    }

    /// The client closed (or broke) the connection while a call of its was held: what it sent
    /// meanwhile is moot.
    fn peer_left(&mut self) {
        tracing::debug!("the client left while its app handler held its call");
        self.held.clear();
        self.reading = false;
        self.call(|s, now, ob| s.closed(now, ob));
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Calls the session and carries out what it asked for. A failed or panicking call closes
    /// the connection; nothing else is affected.
    fn call(
        &mut self,
        f: impl FnOnce(&mut SessionBox, u64, &mut Outbox) -> RResult<(), PluginError>,
    ) {
        if self.done {
            return;
        }
        let mut ob = Outbox::new();
        let now = self.now_ms();
        let r = f(&mut self.session, now, &mut ob);
        self.apply(ob);
        if let RResult::RErr(e) = r {
            let plugin = &self.peer.frontend.plugin;
            if e.panicked {
                COUNTERS.plugin_panic();
                tracing::error!(plugin = %plugin, error = %e.message, "session panicked; closing this connection");
            } else {
                tracing::warn!(plugin = %plugin, error = %e.message, "session failed; closing this connection");
            }
            self.peer.out.abort();
            self.done = true;
        }
    }

    fn apply(&mut self, ob: Outbox) {
        use fstream_abi::Action::*;
        for action in ob.actions {
            if self.done {
                return;
            }
            // A plugin never sends what its host does not know (it would not have loaded).
            let Ok(action) = action.into_enum() else {
                tracing::warn!(plugin = %self.peer.frontend.plugin, "skipped an action this host does not know");
                continue;
            };
            match action {
                Write(p) => self.peer.out.push_control(p),
                Close(CloseMode::Now) => {
                    self.peer.out.abort();
                    self.done = true;
                }
                Close(CloseMode::AfterFlush) => {
                    self.peer.out.close_after_flush();
                    self.reading = false;
                }
                // A delay too large for the clock means "never".
                SetTimer(ms) => self.timer = Instant::now().checked_add(Duration::from_millis(ms)),
                Authenticate { request, mut auth } => {
                    self.awaiting += 1;
                    if !auth.user.is_empty() {
                        self.entry.detail().user = auth.user.to_string();
                    }
                    auth.peer = self.peer_text.clone().into();
                    auth.peer_addr = self.peer_addr;
                    auth.protocol = self.peer.frontend.protocol.clone().into();
                    crate::auth::add_conn_id(&mut auth, self.peer.conn_id);
                    let services = self.ctx.services.clone();
                    let live = self.ctx.live();
                    let renames = self.renames.clone();
                    self.blocking(
                        live.auth_gate.clone(),
                        live.cfg.auth_timeout_ms,
                        move || {
                            let (outcome, grants) = services.auth.check_granted(&auth);
                            let outcome = keep_rename(&renames, &auth, outcome, &grants);
                            Some(Event::AuthResult {
                                request,
                                outcome: AuthOutcome_NE::new(outcome),
                            })
                        },
                        move |e| {
                            Some(Event::AuthResult {
                                request,
                                outcome: AuthOutcome_NE::new(AuthOutcome::Denied(
                                    e.to_string().into(),
                                )),
                            })
                        },
                    );
                }
                IssueToken { request, mut auth } => {
                    self.awaiting += 1;
                    auth.peer = self.peer_text.clone().into();
                    auth.peer_addr = self.peer_addr;
                    auth.protocol = self.peer.frontend.protocol.clone().into();
                    crate::auth::add_conn_id(&mut auth, self.peer.conn_id);
                    let services = self.ctx.services.clone();
                    let live = self.ctx.live();
                    self.blocking(
                        live.auth_gate.clone(),
                        live.cfg.auth_timeout_ms,
                        move || {
                            let token = services.auth.issue_token(&auth);
                            Some(Event::TokenResult {
                                request,
                                token: token.map(Into::into).map_err(Into::into).into(),
                            })
                        },
                        move |e| {
                            Some(Event::TokenResult {
                                request,
                                token: RResult::RErr(e.to_string().into()),
                            })
                        },
                    );
                }
                CallApp { request, call } => {
                    self.awaiting += 1;
                    self.call_app(request, call);
                }
                Publish {
                    publication,
                    stream,
                    options,
                } => {
                    let outcome = self.publish(publication, &stream, options);
                    self.peer.events.send(Event::PublishResult {
                        publication,
                        outcome: PublishOutcome_NE::new(outcome),
                    });
                }
                Packet {
                    publication,
                    packet,
                } => {
                    if let Some(s) = self.publications.get(&publication) {
                        self.ctx
                            .hub
                            .packet(s, self.peer.conn_id, publication, packet);
                    }
                }
                Unpublish { publication } => {
                    if let Some(s) = self.publications.remove(&publication) {
                        self.ctx.hub.unpublish(&s, self.peer.conn_id, publication);
                        self.ended(Role::Publish, publication);
                    }
                }
                Subscribe {
                    subscription,
                    stream,
                    options,
                } => {
                    self.unsubscribe(subscription);
                    self.subscribe(subscription, &stream, options);
                }
                Unsubscribe { subscription } => self.unsubscribe(subscription),
                Control {
                    subscription,
                    control,
                } => {
                    let Ok(control) = control.into_enum() else {
                        continue;
                    };
                    if let Some(s) = self.subscriptions.get(&subscription) {
                        self.ctx
                            .hub
                            .control(s, self.peer.conn_id, subscription, control);
                    } else if let Some(p) = self.players.get(&subscription) {
                        p.control(control);
                    }
                }
                CallCommand { request, mut call } => {
                    self.awaiting += 1;
                    call.caller = self.caller();
                    self.call_command(request, call);
                }
                CallHttp { request, mut call } => {
                    self.awaiting += 1;
                    call.caller = self.caller();
                    call.listener = self.peer.frontend.protocol.clone().into();
                    self.call_http(request, call);
                }
                _ => {
                    tracing::warn!(plugin = %self.peer.frontend.plugin, "skipped an action this host does not know")
                }
            }
        }
    }

    fn subscribe(
        &mut self,
        subscription: u32,
        stream: &str,
        options: fstream_abi::SubscribeOptions,
    ) {
        let renamed = self.renames.get(renames::For::Play, stream);
        // A subscription that wants neither audio nor video is a frontend's probe of how the
        // stream stands (RTMP and HTTP send one before the real play): no viewer, no notice.
        let media = options.audio || options.video;
        if let (Some(to), true) = (&renamed, media) {
            tracing::info!(from = stream, to = %to, "playing under the name the authenticator gave");
        }
        let stream = renamed.as_deref().unwrap_or(stream);
        let (app, name) = match names::split_stream(stream) {
            Ok(parts) => parts,
            Err(e) => {
                tracing::warn!(stream, error = %e, "refused a subscription to a bad stream name");
                crate::hub::status(
                    &self.peer.events,
                    subscription,
                    fstream_abi::SubscriptionStatus::NotFound,
                );
                return;
            }
        };
        if let Some(source) = self.ctx.source_for(app) {
            let open = fstream_abi::SourceOpen {
                app: app.into(),
                name: name.into(),
                peer: self.peer_text.clone().into(),
                peer_addr: self.peer_addr,
                ext: Default::default(),
            };
            let limit = match options.max_queue_bytes {
                0 => self.ctx.hub.cfg.queue_bytes as usize,
                n => n as usize,
            };
            let player = source_player::start(
                source,
                open,
                &self.peer,
                subscription,
                options,
                limit,
                &self.ctx.read_pool,
            );
            self.players.insert(subscription, player);
            if media {
                self.began(Role::Play, subscription, stream, "");
            }
            return;
        }
        if let Some(s) = self
            .ctx
            .hub
            .subscribe(&self.peer, subscription, stream, options)
        {
            self.subscriptions.insert(subscription, s);
            if media {
                self.began(Role::Play, subscription, stream, "");
            }
        }
    }

    fn unsubscribe(&mut self, subscription: u32) {
        if let Some(s) = self.subscriptions.remove(&subscription) {
            self.ctx
                .hub
                .unsubscribe(&s, self.peer.conn_id, subscription);
        }
        // Dropping a player's handle stops its thread.
        self.players.remove(&subscription);
        self.ended(Role::Play, subscription);
    }

    /// A publication or subscription began: the stats API shows it, observers hear of it.
    fn began(&mut self, role: Role, id: u32, stream: &str, query: &str) {
        {
            let mut d = self.entry.detail();
            let list = match role {
                Role::Publish => &mut d.publishing,
                Role::Play => &mut d.playing,
            };
            list.push(stream.to_string());
            if !query.is_empty() {
                d.query = fstream_abi::query::redacted(query);
            }
        }
        self.since
            .insert((role, id), (stream.to_string(), std::time::Instant::now()));
        let kind = match role {
            Role::Publish => NoticeKind::PublishStart,
            Role::Play => NoticeKind::PlayStart,
        };
        self.notice(kind, stream, 0, 0);
    }

    /// The end of what [`Self::began`] started (nothing when it never began).
    fn ended(&mut self, role: Role, id: u32) {
        let Some((stream, at)) = self.since.remove(&(role, id)) else {
            return;
        };
        {
            let mut d = self.entry.detail();
            let list = match role {
                Role::Publish => &mut d.publishing,
                Role::Play => &mut d.playing,
            };
            if let Some(i) = list.iter().position(|s| *s == stream) {
                list.remove(i);
            }
        }
        let (kind, bytes) = match role {
            Role::Publish => (
                NoticeKind::PublishEnd,
                self.entry.bytes_in.load(Ordering::Relaxed),
            ),
            Role::Play => (NoticeKind::PlayEnd, self.entry.bytes_out()),
        };
        self.notice(kind, &stream, bytes, at.elapsed().as_millis() as u64);
    }

    fn notice(&self, kind: NoticeKind, stream: &str, bytes: u64, duration_ms: u64) {
        let notices = &self.ctx.services.notices;
        if !notices.any() {
            return;
        }
        let (app, name) = stream.split_once('/').unwrap_or((stream, ""));
        let d = self.entry.detail().clone();
        notices.send(Notice {
            kind: NoticeKind_NE::new(kind),
            protocol: self.peer.frontend.protocol.clone().into(),
            app: app.into(),
            name: name.into(),
            user: d.user.into(),
            query: d.query.into(),
            caller: self.caller(),
            path: Default::default(),
            bytes,
            duration_ms,
            unix_ms: 0,
            ext: Default::default(),
        });
    }

    fn publish(
        &mut self,
        publication: u32,
        stream: &str,
        mut options: fstream_abi::PublishOptions,
    ) -> PublishOutcome {
        if options.record != fstream_abi::RecordMode::Live && self.not_recorded.take(stream) {
            tracing::info!(
                stream,
                "the app handler refused the recording; publishing live"
            );
            options.record = fstream_abi::RecordMode::Live;
        }
        let renamed = self.renames.get(renames::For::Publish, stream);
        if let Some(to) = &renamed {
            tracing::info!(from = stream, to = %to, "publishing under the name the authenticator gave");
        }
        let stream = renamed.as_deref().unwrap_or(stream);
        let app = match names::split_stream(stream) {
            Ok((app, _)) => app,
            Err(e) => return PublishOutcome::Refused(format!("bad stream name: {e}").into()),
        };
        if self.ctx.source_for(app).is_some() {
            return PublishOutcome::Refused(
                format!("the app {app} serves recorded streams").into(),
            );
        }
        if let Some(old) = self.publications.remove(&publication) {
            self.ctx.hub.unpublish(&old, self.peer.conn_id, publication);
            self.ended(Role::Publish, publication);
        }
        let max = self.ctx.live().cfg.limits.max_streams_per_user;
        if max > 0 && self.ctx.hub.publishing_count(app) >= max {
            tracing::warn!(user = app, max, "publish refused: max_streams_per_user");
            return PublishOutcome::Refused(
                format!("{app} already publishes {max} streams").into(),
            );
        }
        let protocol = self.peer.frontend.protocol.clone();
        let query = options.query.to_string();
        let (outcome, s) =
            self.ctx
                .hub
                .publish(&self.peer, publication, stream, &protocol, options);
        if let Some(s) = s {
            self.publications.insert(publication, s);
            self.began(Role::Publish, publication, stream, &query);
        }
        outcome
    }

    /// Who this connection is, as app handlers are told (whatever the session claimed).
    fn caller(&self) -> Caller {
        Caller {
            connection: self.peer.conn_id,
            peer: self.peer_text.clone().into(),
            peer_addr: self.peer_addr,
        }
    }

    fn call_app(&mut self, request: u64, mut call: AppCall_NE) {
        let caller = self.caller();
        let clients = self.ctx.services.clients.clone();
        let publish = match call.as_enum() {
            Ok(AppCall::Publish(p)) => Some((p.app.to_string(), p.stream.to_string())),
            _ => None,
        };
        let (app, ticket) = match call.as_enum_mut() {
            Ok(c) => {
                set_caller(c, caller);
                // Connect, publish and play may be answered later: the handler gets a ticket.
                let ticket = (!matches!(c, AppCall::Close(_)))
                    .then(|| clients.open(self.peer.conn_id, request, self.peer.events.clone()));
                if let Some(t) = ticket {
                    c.ext_mut().push(Extension_NE::new(Extension::Ticket(t)));
                }
                (c.app().to_string(), ticket)
            }
            Err(_) => {
                self.peer.events.send(Event::AppResult {
                    request,
                    decision: AppDecision::reject("Unknown call"),
                });
                return;
            }
        };
        // Whoever answers first takes the ticket; without one (close) the answer is ours.
        let answer = {
            let clients = clients.clone();
            let not_recorded = self.not_recorded.clone();
            move |decision: AppDecision| {
                let ours = ticket.is_none_or(|t| clients.take(t));
                if let (true, Some((app, stream))) = (ours, &publish) {
                    not_recorded.decided(app, stream, &decision);
                }
                ours.then_some(Event::AppResult { request, decision })
            }
        };
        let live = self.ctx.live();
        if live.apps.route(&app).is_none() {
            if let Some(ev) = answer(AppDecision::reject(format!("Application not found: {app}"))) {
                self.peer.events.send(ev);
            }
            return;
        }
        let defer_timeout = Duration::from_millis(live.cfg.app_defer_timeout_ms);
        let on_fail = answer.clone();
        let deferrals = self.deferrals.clone();
        self.blocking(
            live.app_gate.clone(),
            live.cfg.app_timeout_ms,
            move || {
                let decision = match live.apps.route(&app) {
                    Some((plugin, handler)) => match handler.call(&call).into_result() {
                        Ok(d) => d,
                        Err(e) => {
                            if e.panicked {
                                COUNTERS.plugin_panic();
                            }
                            tracing::error!(plugin, error = %e, "app handler failed");
                            AppDecision::reject("Internal error in the app handler")
                        }
                    },
                    None => AppDecision::reject(format!("Application not found: {app}")),
                };
                match (decision.verdict(), ticket) {
                    (Some(AppVerdict::Defer), Some(t)) => {
                        tracing::debug!(ticket = t, "the app handler will answer later");
                        clients.expire_after(t, defer_timeout);
                        let _ = deferrals.send((request, t));
                        None
                    }
                    // A close has nothing to wait for.
                    (Some(AppVerdict::Defer), None) => answer(AppDecision::accept()),
                    _ => answer(decision),
                }
            },
            move |e| {
                on_fail(AppDecision::reject(match e {
                    GateError::Busy(_) => "Server busy; try again",
                    _ => "The app handler timed out",
                }))
            },
        );
    }

    /// An HTTP request for the handler whose prefix covers its path; the host answers 404 when
    /// none does, 500 when it fails, 503 when too many calls wait, 504 when it is too slow.
    fn call_http(&mut self, request: u64, call: HttpCall) {
        let live = self.ctx.live();
        let answer = move |reply: HttpReply| Some(Event::HttpResult { request, reply });
        if live.http.route(&call.path).is_none() {
            if let Some(ev) = answer(HttpReply::text(404, "Not Found")) {
                self.peer.events.send(ev);
            }
            return;
        }
        self.blocking(
            live.http_gate.clone(),
            live.cfg.app_timeout_ms,
            move || {
                let reply = match live.http.route(&call.path) {
                    Some((plugin, handler)) => match handler.handle(&call).into_result() {
                        Ok(r) => r,
                        Err(e) => {
                            if e.panicked {
                                COUNTERS.plugin_panic();
                            }
                            tracing::error!(plugin, path = %call.path, panicked = e.panicked,
                                error = %e, "http handler failed");
                            HttpReply::text(500, "Internal error in the handler")
                        }
                    },
                    None => HttpReply::text(404, "Not Found"),
                };
                answer(reply)
            },
            move |e| {
                answer(match e {
                    GateError::Busy(_) => HttpReply::text(503, "Server busy; try again"),
                    _ => HttpReply::text(504, "The handler timed out"),
                })
            },
        );
    }

    /// A client's own command, for the app handler of its app; no handler means "not handled".
    fn call_command(&mut self, request: u64, call: CommandCall) {
        let live = self.ctx.live();
        let reply = move |r: CommandReply| Event::CommandResult {
            request,
            reply: CommandReply_NE::new(r),
        };
        if live.apps.route(&call.app).is_none() {
            self.peer.events.send(reply(CommandReply::NotHandled));
            return;
        }
        self.blocking(
            live.app_gate.clone(),
            live.cfg.app_timeout_ms,
            move || {
                Some(match live.apps.route(&call.app) {
                    Some((plugin, handler)) => match handler.command(&call).into_result() {
                        Ok(r) => Event::CommandResult { request, reply: r },
                        Err(e) => {
                            tracing::error!(plugin, command = %call.name, error = %e, "app handler failed");
                            reply(CommandReply::Error(
                                "\"Internal error in the app handler\"".into(),
                            ))
                        }
                    },
                    None => reply(CommandReply::NotHandled),
                })
            },
            move |e| {
                let why = match e {
                    GateError::Busy(_) => "\"Server busy; try again\"",
                    _ => "\"The app handler timed out\"",
                };
                Some(reply(CommandReply::Error(why.into())))
            },
        );
    }

    /// Runs `work` on a blocking thread through `gate` (bounded concurrency and queue); its
    /// event, or `on_fail`'s when the gate refused, the call timed out or failed, comes back to
    /// the session. `None` means the answer comes another way (a deferred app decision).
    fn blocking(
        &self,
        gate: Arc<CallGate>,
        timeout_ms: u64,
        work: impl FnOnce() -> Option<Event> + Send + 'static,
        on_fail: impl FnOnce(GateError) -> Option<Event> + Send + 'static,
    ) {
        let tx: EventTx = self.peer.events.clone();
        let span = tracing::Span::current();
        tokio::spawn(async move {
            let r = gate
                .run(Duration::from_millis(timeout_ms), move || {
                    span.in_scope(work)
                })
                .await;
            let ev = match r {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(timeout_ms, error = %e, "a blocking plugin call gave no answer");
                    on_fail(e)
                }
            };
            if let Some(ev) = ev {
                tx.send(ev);
            }
        });
    }

    fn cleanup(&mut self) {
        for (publication, s) in std::mem::take(&mut self.publications) {
            self.ctx.hub.unpublish(&s, self.peer.conn_id, publication);
            self.ended(Role::Publish, publication);
        }
        for (subscription, s) in std::mem::take(&mut self.subscriptions) {
            self.ctx
                .hub
                .unsubscribe(&s, self.peer.conn_id, subscription);
            self.ended(Role::Play, subscription);
        }
        for subscription in std::mem::take(&mut self.players).into_keys() {
            self.ended(Role::Play, subscription);
        }
        if self.reading {
            // The connection ends for another reason than the peer's EOF: tell the session.
            self.reading = false;
            let mut ob = Outbox::new();
            let now = self.now_ms();
            let _ = self.session.closed(now, &mut ob);
            // Only app calls still matter (e.g. an app handler's close hook).
            for a in ob.take_known() {
                if let fstream_abi::Action::CallApp { request, call } = a {
                    self.call_app(request, call);
                }
            }
        }
        if !self.peer.out.is_ended() {
            self.peer.out.close_after_flush();
        }
    }
}

fn set_caller(call: &mut AppCall, caller: Caller) {
    match call {
        AppCall::Connect(c) => c.caller = caller,
        AppCall::Publish(c) => c.caller = caller,
        AppCall::Play(c) => c.caller = caller,
        AppCall::Close(c) => c.caller = caller,
        _ => {}
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Keeps the rename an allowing authenticator granted for a publish or play, so that the
/// session's next publish or subscribe of that stream uses the new name. A rename that is no
/// valid stream name turns the answer into a denial.
fn keep_rename(
    renames: &Renames,
    auth: &fstream_abi::AuthRequest,
    outcome: AuthOutcome,
    grants: &fstream_abi::Extensions,
) -> AuthOutcome {
    let action = match auth.action() {
        Some(fstream_abi::AuthAction::Publish) => renames::For::Publish,
        Some(fstream_abi::AuthAction::Play) => renames::For::Play,
        _ => return outcome,
    };
    if !outcome.is_allowed() {
        return outcome;
    }
    match renames.grant(action, &auth.stream, grants) {
        Ok(Some(to)) => {
            tracing::info!(stream = %auth.stream, to = %to, "the authenticator renamed the stream");
            outcome
        }
        Ok(None) => outcome,
        Err(e) => {
            tracing::warn!(stream = %auth.stream, error = %e,
                "the authenticator renamed the stream to an invalid name; refused");
            AuthOutcome::Denied(format!("invalid rename: {e}").into())
        }
    }
}
