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
    config::HostConfig,
    conn,
    frontends::{AppRoutes, Frontend},
    host_api::HostServices,
    hub::Hub,
    outq::Flusher,
    source_player::SourceEntry,
};

/// The part of the configuration a reload replaces.
pub struct Live {
    pub cfg: HostConfig,
    pub apps: AppRoutes,
    /// Source plugins by the app they serve.
    pub sources: Vec<Arc<SourceEntry>>,
}

pub struct HostCtx {
    pub hub: Arc<Hub>,
    pub services: HostServices,
    live: RwLock<Arc<Live>>,
    pub shutdown: watch::Sender<bool>,
    /// Times the gathered writes of every connection.
    pub flusher: Arc<Flusher>,
    /// The running listeners by protocol.
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
    /// The frontend new connections get; replaced on reload.
    frontend: Arc<RwLock<Arc<Frontend>>>,
    stop: watch::Sender<bool>,
}

impl HostCtx {
    pub fn new(hub: Arc<Hub>, services: HostServices, live: Live) -> Arc<Self> {
        let (shutdown, _) = watch::channel(false);
        let flusher = Flusher::new(std::time::Duration::from_millis(hub.cfg.gather_ms));
        Arc::new(Self {
            hub,
            services,
            live: RwLock::new(Arc::new(live)),
            shutdown,
            flusher,
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

    /// Makes the running listeners match `wanted` (protocol, frontend, address): binds the new
    /// ones first (failing without changing anything if one cannot be bound), then swaps the
    /// frontends of those that stay, starts the new and stops those no longer wanted.
    pub async fn apply_listeners(
        self: &Arc<Self>,
        wanted: &[(Arc<Frontend>, String)],
    ) -> anyhow::Result<()> {
        let mut bound = Vec::new();
        {
            let running: Vec<(String, String)> = self
                .listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(p, l)| (p.clone(), l.addr.clone()))
                .collect();
            for (frontend, addr) in wanted {
                let same = running
                    .iter()
                    .any(|(p, a)| p == &frontend.protocol && a == addr);
                if !same {
                    bound.push((frontend.clone(), addr.clone(), bind(frontend, addr).await?));
                }
            }
        }
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        // Stop what is no longer wanted (or moves to another address).
        listeners.retain(|protocol, l| {
            let keep = wanted
                .iter()
                .any(|(f, a)| &f.protocol == protocol && a == &l.addr);
            if !keep {
                tracing::info!(protocol = %protocol, addr = %l.addr, "listener stopped");
                let _ = l.stop.send(true);
            }
            keep
        });
        for (frontend, _) in wanted {
            if let Some(l) = listeners.get(&frontend.protocol) {
                *l.frontend.write().unwrap_or_else(|p| p.into_inner()) = frontend.clone();
            }
        }
        for (frontend, addr, listener) in bound {
            let (stop, stop_rx) = watch::channel(false);
            let current = Arc::new(RwLock::new(frontend.clone()));
            tokio::spawn(accept_loop(
                self.clone(),
                current.clone(),
                listener,
                stop_rx,
            ));
            listeners.insert(
                frontend.protocol.clone(),
                Listener {
                    addr,
                    frontend: current,
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

/// Binds a frontend's listener and logs the address actually bound (port 0 picks one).
pub async fn bind(frontend: &Frontend, addr: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for {} on {addr}: {e}", frontend.protocol))?;
    let bound: SocketAddr = listener.local_addr()?;
    tracing::info!(protocol = %frontend.protocol, plugin = %frontend.plugin, addr = %bound, "listening");
    Ok(listener)
}

/// Accepts connections until shutdown or until this listener is stopped.
async fn accept_loop(
    ctx: Arc<HostCtx>,
    frontend: Arc<RwLock<Arc<Frontend>>>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let mut shutdown = ctx.shutdown.subscribe();
    let protocol = frontend
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .protocol
        .clone();
    let span = tracing::info_span!("listener", proto = %protocol);
    async move {
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((sock, peer)) => match ctx.admit(peer.ip()) {
                        Ok(slot) => {
                            let id = ctx.next_conn.fetch_add(1, Ordering::Relaxed);
                            let f = frontend.read().unwrap_or_else(|p| p.into_inner()).clone();
                            tokio::spawn(conn::serve(ctx.clone(), f, sock, peer, id, slot));
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
