//! Listeners and the shared state every connection sees.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
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

pub struct HostCtx {
    pub cfg: HostConfig,
    pub hub: Arc<Hub>,
    pub services: HostServices,
    pub apps: AppRoutes,
    /// Source plugins by the app they serve.
    pub sources: Vec<Arc<SourceEntry>>,
    pub shutdown: watch::Sender<bool>,
    /// Times the gathered writes of every connection.
    pub flusher: Arc<Flusher>,
    next_conn: AtomicU64,
}

impl HostCtx {
    pub fn new(
        cfg: HostConfig,
        hub: Arc<Hub>,
        services: HostServices,
        apps: AppRoutes,
        sources: Vec<Arc<SourceEntry>>,
    ) -> Arc<Self> {
        let (shutdown, _) = watch::channel(false);
        let flusher = Flusher::new(std::time::Duration::from_millis(cfg.hub.gather_ms));
        Arc::new(Self {
            flusher,
            cfg,
            hub,
            services,
            apps,
            sources,
            shutdown,
            next_conn: AtomicU64::new(1),
        })
    }
}

impl HostCtx {
    /// The source plugin serving `app`, if any.
    pub fn source_for(&self, app: &str) -> Option<Arc<SourceEntry>> {
        self.sources.iter().find(|s| s.app == app).cloned()
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

/// Accepts connections until shutdown.
pub async fn accept_loop(ctx: Arc<HostCtx>, frontend: Arc<Frontend>, listener: TcpListener) {
    let mut shutdown = ctx.shutdown.subscribe();
    let span = tracing::info_span!("listener", proto = %frontend.protocol);
    async move {
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((sock, peer)) => {
                        let id = ctx.next_conn.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(conn::serve(ctx.clone(), frontend.clone(), sock, peer, id));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                _ = shutdown.changed() => break,
            }
        }
    }
    .instrument(span)
    .await
}
