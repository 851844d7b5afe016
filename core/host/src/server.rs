//! Listeners, and the state every connection sees.
//!
//! What a reload (SIGHUP) may change lives in [`Live`], swapped whole: connections read it when
//! they need it, so a connection that started before a reload keeps its session and streams,
//! and new connections get the new plugins and settings.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
};

use tokio::{net::TcpListener, sync::watch};
use tracing::Instrument;

use crate::{
    call_gate::CallGate,
    config::HostConfig,
    conn,
    frontends::{AppRoutes, Frontend, HttpRoutes},
    host_api::HostServices,
    hub::Hub,
    outq::Flushers,
    read_pool::ReadPool,
    source_player::SourceEntry,
    tls::TlsSettings,
};

/// A listener wanted by the configuration: a frontend on an address, over plain TCP or TLS.
#[derive(Clone)]
pub struct ListenSpec {
    pub frontend: Arc<Frontend>,
    pub addr: String,
    /// `Some`: a TLS listener (`[tls.PROTOCOL]` in host.toml).
    pub tls: Option<Arc<TlsSettings>>,
}

impl ListenSpec {
    /// The listener's name in logs and in the running set: the protocol, `+tls` for TLS
    /// (`rtmp`, `rtmp+tls`). A protocol has at most one listener of each kind.
    pub fn name(&self) -> String {
        match self.tls {
            None => self.frontend.protocol.clone(),
            Some(_) => format!("{}+tls", self.frontend.protocol),
        }
    }
}

/// The part of the configuration a reload replaces.
pub struct Live {
    pub cfg: HostConfig,
    /// Bounds on the blocking calls clients cause: authentications, app-handler calls.
    pub auth_gate: Arc<CallGate>,
    pub app_gate: Arc<CallGate>,
    pub apps: AppRoutes,
    /// HTTP handlers by path, and the bound on their calls (the app handlers' numbers, a gate
    /// of its own).
    pub http: HttpRoutes,
    pub http_gate: Arc<CallGate>,
    /// Source plugins by the app they serve.
    pub sources: Vec<Arc<SourceEntry>>,
}

pub struct HostCtx {
    pub hub: Arc<Hub>,
    pub services: HostServices,
    live: RwLock<Arc<Live>>,
    pub shutdown: watch::Sender<bool>,
    /// Time the gathered writes of the connections, a shard each.
    pub flushers: Flushers,
    /// Runs source plugins' blocking calls for the recorded-stream players.
    pub read_pool: Arc<ReadPool>,
    /// The running listeners by name ([`ListenSpec::name`]).
    listeners: Mutex<HashMap<String, Listener>>,
    /// Open connections, in all and per IP address.
    open: Mutex<OpenConns>,
    next_conn: AtomicU64,
}

#[derive(Default)]
struct OpenConns {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A connection's place in the counts; freed when dropped.
pub struct ConnSlot {
    ctx: Arc<HostCtx>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut open = self.ctx.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A running accept loop.
struct Listener {
    addr: String,
    /// The frontend (and TLS settings) new connections get; replaced on reload.
    current: Arc<RwLock<Arc<ListenSpec>>>,
    stop: watch::Sender<bool>,
}

impl HostCtx {
    pub fn new(hub: Arc<Hub>, services: HostServices, live: Live) -> Arc<Self> {
        let (shutdown, _) = watch::channel(false);
        let flushers = Flushers::new(
            std::time::Duration::from_millis(hub.cfg.gather_ms),
            hub.cfg.flush_shards,
        );
        let l = &live.cfg.limits;
        let read_pool = ReadPool::new(
            l.source_read_threads,
            l.source_read_queue,
            l.max_source_players,
        );
        Arc::new(Self {
            read_pool,
            hub,
            services,
            live: RwLock::new(Arc::new(live)),
            shutdown,
            flushers,
            listeners: Mutex::new(HashMap::new()),
            open: Mutex::new(OpenConns::default()),
            next_conn: AtomicU64::new(1),
        })
    }

    pub fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_live(&self, live: Live) {
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(live);
    }

    /// Takes a connection slot for `ip`, or says which limit refuses it.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnSlot, &'static str> {
        let limits = self.live().cfg.limits.clone();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if limits.max_connections > 0 && open.total >= limits.max_connections {
            return Err("max_connections");
        }
        let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
        if limits.max_connections_per_ip > 0 && from_ip >= limits.max_connections_per_ip {
            return Err("max_connections_per_ip");
        }
        open.total += 1;
        *open.per_ip.entry(ip).or_insert(0) += 1;
        Ok(ConnSlot {
            ctx: self.clone(),
            ip,
        })
    }

    /// The source plugin serving `app`, if any.
    pub fn source_for(&self, app: &str) -> Option<Arc<SourceEntry>> {
        self.live().sources.iter().find(|s| s.app == app).cloned()
    }

    /// Makes the running listeners match `wanted` (name, frontend, address, TLS settings):
    /// binds the new ones first (failing without changing anything if one cannot be bound),
    /// then swaps the frontends and TLS settings (new certificates) of those that stay, starts
    /// the new and stops those no longer wanted.
    pub async fn apply_listeners(self: &Arc<Self>, wanted: &[ListenSpec]) -> anyhow::Result<()> {
        let mut bound = Vec::new();
        {
            let running: Vec<(String, String)> = self
                .listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(n, l)| (n.clone(), l.addr.clone()))
                .collect();
            for spec in wanted {
                let name = spec.name();
                let same = running.iter().any(|(n, a)| n == &name && a == &spec.addr);
                if !same {
                    bound.push((spec.clone(), bind(spec).await?));
                }
            }
        }
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        // Stop what is no longer wanted (or moves to another address).
        listeners.retain(|name, l| {
            let keep = wanted.iter().any(|s| &s.name() == name && s.addr == l.addr);
            if !keep {
                tracing::info!(protocol = %name, addr = %l.addr, "listener stopped");
                let _ = l.stop.send(true);
            }
            keep
        });
        for spec in wanted {
            if let Some(l) = listeners.get(&spec.name()) {
                *l.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(spec.clone());
            }
        }
        for (spec, listener) in bound {
            let (stop, stop_rx) = watch::channel(false);
            let name = spec.name();
            let addr = spec.addr.clone();
            let current = Arc::new(RwLock::new(Arc::new(spec)));
            tokio::spawn(accept_loop(
                self.clone(),
                current.clone(),
                listener,
                stop_rx,
            ));
            listeners.insert(
                name,
                Listener {
                    addr,
                    current,
                    stop,
                },
            );
        }
        Ok(())
    }

    /// Stops every listener.
    pub fn stop_listeners(&self) {
        for l in self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            let _ = l.stop.send(true);
        }
    }
}

/// Binds a listener and logs the address actually bound (port 0 picks one).
pub async fn bind(spec: &ListenSpec) -> anyhow::Result<TcpListener> {
    let (name, addr) = (spec.name(), &spec.addr);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for {name} on {addr}: {e}"))?;
    let bound: SocketAddr = listener.local_addr()?;
    match &spec.tls {
        None => {
            tracing::info!(protocol = %name, plugin = %spec.frontend.plugin, addr = %bound, "listening")
        }
        Some(tls) => tracing::info!(
            protocol = %name,
            plugin = %spec.frontend.plugin,
            addr = %bound,
            cert = %tls.cert.display(),
            "listening"
        ),
    }
    Ok(listener)
}

/// Accepts connections until shutdown or until this listener is stopped.
async fn accept_loop(
    ctx: Arc<HostCtx>,
    current: Arc<RwLock<Arc<ListenSpec>>>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let mut shutdown = ctx.shutdown.subscribe();
    let name = current.read().unwrap_or_else(|p| p.into_inner()).name();
    let span = tracing::info_span!("listener", proto = %name);
    async move {
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((sock, peer)) => match ctx.admit(peer.ip()) {
                        Ok(slot) => {
                            let id = ctx.next_conn.fetch_add(1, Ordering::Relaxed);
                            let spec = current.read().unwrap_or_else(|p| p.into_inner()).clone();
                            tokio::spawn(conn::serve(
                                ctx.clone(),
                                spec.frontend.clone(),
                                spec.tls.clone(),
                                sock,
                                peer,
                                id,
                                slot,
                            ));
                        }
                        Err(limit) => {
                            tracing::warn!(%peer, limit, "connection refused: limit reached");
                            drop(sock);
                        }
                    },
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                _ = shutdown.changed() => break,
                _ = stop.changed() => break,
            }
        }
    }
    .instrument(span)
    .await
}
