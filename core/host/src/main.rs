//! `fstream-host`: a live media streaming server whose every feature is a plugin.
//!
//! This binary owns all I/O (sockets, timers, threads, the tokio runtime). It reads
//! `mods/main.mods`, loads each plugin through the stable ABI (`fstream-abi`), and runs the
//! stream hub that connects publishers to subscribers. See ARCHITECTURE.md for the map.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use fstream_host::{
    auth::AuthChain,
    config::HostConfig,
    frontends::{self, AppRoutes, Registry},
    host_api::HostServices,
    hub::Hub,
    loader, mods,
    server::{self, HostCtx},
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
    let host_toml = mods_dir.join("host.toml");
    let cfg = HostConfig::load(&host_toml);
    init_logging(cfg.as_ref().map(|c| c.log.as_str()).unwrap_or("info"));
    let cfg = cfg?;
    let plugin_dir = match &cli.plugin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .context("cannot find this executable's directory")?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };

    let names = mods::read(&mods_path)?;
    let services = HostServices::new();
    let host_api = services.boxed();
    let mut registry = Registry::default();
    let mut errors = Vec::new();
    for name in &names {
        let settings_path = mods_dir.join(format!("{name}.toml"));
        let settings = match std::fs::read_to_string(&settings_path) {
            Ok(text) => Some((text, settings_path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                errors.push(format!("cannot read {}: {e}", settings_path.display()));
                continue;
            }
        };
        match loader::load(name, &plugin_dir, &host_api, &root, settings) {
            Ok(p) => {
                tracing::info!(plugin = %p.name, version = %p.descriptor.version, file = %p.file.display(), "loaded");
                registry.add(p);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let listen = listen_addresses(&cfg, &cli.listen, &registry, &mut errors);
    if !errors.is_empty() {
        for e in &errors {
            tracing::error!("{e}");
        }
        anyhow::bail!(
            "{} problem(s) loading {}; not starting:\n  {}",
            errors.len(),
            mods_path.display(),
            errors.join("\n  ")
        );
    }
    if registry.authenticators.is_empty() {
        tracing::warn!("no authenticator is loaded: every publish will be refused");
    }

    if cli.check {
        print_check(&registry, &listen);
        return Ok(());
    }

    let _ = services.auth.set(AuthChain::new(
        std::mem::take(&mut registry.authenticators),
        Duration::from_millis(cfg.token_ttl_ms),
    ));
    let hub = Hub::new(cfg.hub.clone(), std::mem::take(&mut registry.sinks));
    let apps = AppRoutes(std::mem::take(&mut registry.app_handlers));
    let grace = Duration::from_millis(cfg.shutdown_grace_ms);
    let sources = std::mem::take(&mut registry.sources)
        .into_iter()
        .map(|(plugin, app, factory)| {
            Arc::new(SourceEntry {
                plugin,
                app,
                factory,
            })
        })
        .collect();
    let ctx = HostCtx::new(cfg, hub.clone(), services, apps, sources);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fstream-io")
        .build()?;
    rt.block_on(async {
        // Handlers first, so a signal that arrives as soon as we listen is not fatal.
        let signals = Signals::install()?;
        tokio::spawn(ctx.flusher.clone().run());
        let mut loops = Vec::new();
        for (frontend, addr) in &listen {
            let listener = server::bind(frontend, addr).await?;
            loops.push(tokio::spawn(server::accept_loop(
                ctx.clone(),
                frontend.clone(),
                listener,
            )));
        }
        if loops.is_empty() {
            tracing::warn!("no protocol frontend is loaded: nothing to listen on");
        }
        signals.wait().await;
        tracing::info!("shutting down");
        let _ = ctx.shutdown.send(true);
        for l in loops {
            let _ = l.await;
        }
        let hub = hub.clone();
        let _ = tokio::task::spawn_blocking(move || hub.shutdown(grace)).await;
        anyhow::Ok(())
    })?;
    rt.shutdown_timeout(Duration::from_millis(500));
    tracing::info!("stopped");
    Ok(())
}

/// Picks each frontend's address: `--listen`, then host.toml's `[listen]`, then its default.
fn listen_addresses(
    cfg: &HostConfig,
    cli: &[String],
    registry: &Registry,
    errors: &mut Vec<String>,
) -> Vec<(Arc<frontends::Frontend>, String)> {
    let mut chosen: BTreeMap<String, String> = cfg.listen.clone();
    for item in cli {
        match item.split_once('=') {
            Some((name, addr)) => {
                chosen.insert(name.to_string(), addr.to_string());
            }
            None => errors.push(format!("--listen {item:?}: expected NAME=ADDR")),
        }
    }
    for name in chosen.keys() {
        if !registry
            .frontends
            .iter()
            .any(|f| &f.protocol == name || &f.plugin == name)
        {
            let what = match registry.rows.iter().find(|r| &r.name == name) {
                Some(r) => format!("plugin {name:?} is a {}, not a protocol frontend", r.kinds),
                None => format!("no loaded protocol frontend is called {name:?}"),
            };
            errors.push(format!("listen address for {name:?}: {what}"));
        }
    }
    registry
        .frontends
        .iter()
        .map(|f| {
            let addr = chosen
                .get(&f.protocol)
                .or_else(|| chosen.get(&f.plugin))
                .cloned()
                .unwrap_or_else(|| f.default_listen.clone());
            (f.clone(), addr)
        })
        .collect()
}

fn print_check(registry: &Registry, listen: &[(Arc<frontends::Frontend>, String)]) {
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
            format!("v{}", r.interface),
            r.file.display()
        );
    }
    for (f, addr) in listen {
        println!("listen {} {}", f.protocol, addr);
    }
    println!("ok: {} plugin(s)", registry.rows.len());
}

/// SIGINT and SIGTERM, both meaning "stop".
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}
