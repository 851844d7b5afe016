//! `fstream-host`: a live media streaming server whose every feature is a plugin.
//!
//! This binary owns all I/O (sockets, timers, threads, the tokio runtime). It reads
//! `mods/main.mods`, loads each plugin through the stable ABI (`fstream-abi`), and runs the
//! stream hub that connects publishers to subscribers. See ARCHITECTURE.md for the map.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use fstream_host::{
    auth_guard::GuardRule,
    call_gate::CallGate,
    config::HostConfig,
    frontends::{AppRoutes, HttpRoutes, Registry},
    host_api::HostServices,
    hub::Hub,
    server::{HostCtx, ListenSpec, Live},
    setup::{self, Paths},
    source_player::SourceEntry,
    users,
};

#[derive(Parser, Debug)]
#[command(
    name = "fstream-host",
    version,
    about = "A live media streaming server built from plugins"
)]
struct Cli {
    /// The server root: holds mods/ and users/ [default: the current directory]
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// The plugin list [default: ROOT/mods/main.mods]; host.toml and plugin settings are read
    /// from the same directory
    #[arg(long)]
    mods: Option<PathBuf>,
    /// Where plugin libraries are [default: the directory of this executable]
    #[arg(long)]
    plugin_dir: Option<PathBuf>,
    /// Listen address of a frontend, e.g. fstream=127.0.0.1:0 (repeatable)
    #[arg(long, value_name = "NAME=ADDR")]
    listen: Vec<String>,
    /// Load and validate everything, print the plugins, and exit
    #[arg(long)]
    check: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage users/NAME.ini files
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user with an argon2-hashed password (read from the terminal, or from stdin)
    Add {
        name: String,
        /// Replace an existing user file
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    map_large_allocations();
    let cli = Cli::parse();
    let root = cli.root.clone().unwrap_or_else(|| PathBuf::from("."));
    if let Some(Command::User {
        action: UserCommand::Add { name, force },
    }) = &cli.command
    {
        return match users::add_user(&root, name, *force) {
            Ok(path) => {
                eprintln!("created {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fstream-host: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    match run(cli, root) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("fstream-host: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn run(cli: Cli, root: PathBuf) -> anyhow::Result<()> {
    let mods_path = cli
        .mods
        .clone()
        .unwrap_or_else(|| root.join("mods").join("main.mods"));
    let mods_dir = mods_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let plugin_dir = match &cli.plugin_dir {
        Some(d) => d.clone(),
        None => setup::default_plugin_dir().context("cannot find this executable's directory")?,
    };
    let paths = Paths {
        root,
        mods_path,
        mods_dir,
        plugin_dir,
        cli_listen: cli.listen.clone(),
    };
    let log_filter = HostConfig::load(&paths.host_toml())
        .map(|c| c.log)
        .unwrap_or_else(|_| "info".into());
    init_logging(&log_filter);

    let services = HostServices::new(Duration::from_millis(HostConfig::default().token_ttl_ms));
    let loaded = setup::load(&paths, &services).map_err(|errors| {
        for e in &errors {
            tracing::error!("{e}");
        }
        anyhow::anyhow!(
            "{} problem(s) loading {}; not starting:\n  {}",
            errors.len(),
            paths.mods_path.display(),
            errors.join("\n  ")
        )
    })?;
    if loaded.registry.authenticators.is_empty() {
        tracing::warn!("no authenticator is loaded: every publish will be refused");
    }
    if cli.check {
        print_check(&loaded.registry, &loaded.listen);
        return Ok(());
    }

    let setup::Loaded {
        mut cfg,
        registry,
        listen,
    } = loaded;
    let workers = resolve_concurrency(cfg.worker_threads);
    if cfg.hub.flush_shards == 0 {
        cfg.hub.flush_shards = workers;
    }
    let grace = Duration::from_millis(cfg.shutdown_grace_ms);
    let hub = Hub::new(cfg.hub.clone(), Vec::new());
    let ctx = HostCtx::new(
        hub.clone(),
        services.clone(),
        live_from(cfg.clone(), Registry::default()),
    );
    install(&ctx, cfg, registry);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .thread_name("fstream-io")
        .build()?;
    rt.block_on(async {
        // Handlers first, so a signal that arrives as soon as we listen is not fatal.
        let mut signals = Signals::install()?;
        ctx.flushers.spawn_all();
        tracing::info!(
            worker_threads = workers,
            flush_shards = ctx.hub.cfg.flush_shards,
            "runtime"
        );
        ctx.apply_listeners(&listen).await?;
        if listen.is_empty() {
            tracing::warn!("no protocol frontend is loaded: nothing to listen on");
        }
        while signals.next().await == Signal::Reload {
            reload(&ctx, &paths, &services).await;
        }
        let busy_ms: Vec<u64> = ctx
            .flushers
            .busy()
            .iter()
            .map(|d| d.as_millis() as u64)
            .collect();
        tracing::info!(
            ?busy_ms,
            "shutting down; time each flusher shard spent writing"
        );
        let _ = ctx.shutdown.send(true);
        ctx.stop_listeners();
        let hub = hub.clone();
        let _ = tokio::task::spawn_blocking(move || hub.shutdown(grace)).await;
        anyhow::Ok(())
    })?;
    rt.shutdown_timeout(Duration::from_millis(500));
    tracing::info!("stopped");
    Ok(())
}

fn live_from(cfg: HostConfig, mut registry: Registry) -> Live {
    let l = &cfg.limits;
    Live {
        auth_gate: CallGate::new(
            "authentication",
            resolve_concurrency(l.auth_concurrency),
            l.auth_queue,
        ),
        app_gate: CallGate::new("app handler", l.app_concurrency, l.app_queue),
        http_gate: CallGate::new("http handler", l.app_concurrency, l.app_queue),
        cfg,
        apps: AppRoutes(std::mem::take(&mut registry.app_handlers)),
        http: HttpRoutes::new(std::mem::take(&mut registry.http_handlers)),
        sources: std::mem::take(&mut registry.sources)
            .into_iter()
            .map(|(plugin, app, factory)| {
                Arc::new(SourceEntry {
                    plugin,
                    app,
                    factory,
                })
            })
            .collect(),
    }
}

/// Puts a loaded configuration's plugins in place (at start-up and on reload).
fn install(ctx: &HostCtx, cfg: HostConfig, mut registry: Registry) {
    ctx.services.auth.replace(
        std::mem::take(&mut registry.authenticators),
        Duration::from_millis(cfg.token_ttl_ms),
    );
    let l = &cfg.limits;
    ctx.services.auth.set_failure_limit(GuardRule {
        allowed: l.auth_failures_per_ip,
        window: Duration::from_millis(l.auth_failure_window_ms),
        ban: Duration::from_millis(l.auth_ban_ms),
        loopback: l.auth_limit_loopback,
        ipv6_prefix: l.auth_ipv6_prefix,
        max_addresses: l.auth_guard_addresses,
    });
    ctx.services.auth.set_concurrency(
        l.auth_concurrency,
        l.auth_queue,
        Duration::from_millis(cfg.auth_timeout_ms),
    );
    ctx.hub.set_frontend_plugins(
        registry
            .frontends
            .iter()
            .map(|f| f.plugin.clone())
            .collect(),
    );
    ctx.hub.set_sinks(std::mem::take(&mut registry.sinks));
    ctx.services
        .notices
        .replace(std::mem::take(&mut registry.observers));
    ctx.services.set_hub(ctx.hub.clone());
    let live = live_from(cfg, registry);
    ctx.services.set_http_prefixes(live.http.prefixes());
    ctx.set_live(live);
}

/// SIGHUP: load the configuration again and install it only if it has no problem. Live
/// streams and connections go on; new connections get the new plugins and settings.
async fn reload(ctx: &Arc<HostCtx>, paths: &Paths, services: &HostServices) {
    tracing::info!("SIGHUP: reloading the configuration");
    let loaded = {
        let (paths, services) = (paths.clone(), services.clone());
        tokio::task::spawn_blocking(move || setup::load(&paths, &services)).await
    };
    let loaded = match loaded {
        Ok(Ok(l)) => l,
        Ok(Err(errors)) => {
            tracing::error!(problems = %errors.join("; "), "reload refused; the running configuration stays");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "reload failed; the running configuration stays");
            return;
        }
    };
    if let Err(e) = ctx.apply_listeners(&loaded.listen).await {
        tracing::error!(error = %e, "reload refused; the running configuration stays");
        return;
    }
    if format!("{:?}", loaded.cfg.hub) != format!("{:?}", ctx.hub.cfg) {
        tracing::warn!("[hub] settings changed; they take effect at the next start");
    }
    install(ctx, loaded.cfg, loaded.registry);
    tracing::info!("configuration reloaded");
}

/// `v1` for a v1 plugin, `v2.N` for a v2 one.
fn interface_label(v: fstream_abi::InterfaceVersion) -> String {
    if v.major == 1 {
        "v1".into()
    } else {
        v.to_string()
    }
}

fn print_check(registry: &Registry, listen: &[ListenSpec]) {
    println!(
        "{:<16} {:<24} {:<10} {:<9} FILE",
        "PLUGIN", "KIND", "VERSION", "INTERFACE"
    );
    for r in &registry.rows {
        println!(
            "{:<16} {:<24} {:<10} {:<9} {}",
            r.name,
            r.kinds,
            r.version,
            interface_label(r.interface),
            r.file.display()
        );
    }
    for spec in listen {
        println!("listen {} {}", spec.name(), spec.addr);
    }
    println!("ok: {} plugin(s)", registry.rows.len());
}

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGINT or SIGTERM.
    Stop,
    /// SIGHUP.
    Reload,
}

struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::Stop,
            _ = self.term.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

/// 0 means one per core.
fn resolve_concurrency(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    }
}

/// Large buffers (an argon2 check's 19 MiB in auth-ini, a big message) get mappings of their
/// own, returned to the OS when freed. Left alone, glibc raises its mmap threshold after the
/// first such free and serves later ones from the heap, where the small allocations of
/// connections made in between keep the freed space from being reused: measured, a flood of
/// 2,000 wrong passwords grew the server by about 19 MiB per check (600 MB), with only two
/// checks ever running at once.
fn map_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
