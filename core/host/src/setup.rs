//! Loading a configuration: host.toml, main.mods and every plugin with its settings. Used at
//! start-up and again on SIGHUP, where a configuration with any problem is refused whole.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::host_api::HostServices;

use crate::{
    config::HostConfig,
    frontends::{Frontend, Registry},
    loader, mods,
    server::ListenSpec,
    tls::TlsSettings,
};

/// Where the configuration is.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub mods_path: PathBuf,
    pub mods_dir: PathBuf,
    pub plugin_dir: PathBuf,
    /// `--listen NAME=ADDR` from the command line; they win over host.toml.
    pub cli_listen: Vec<String>,
}

impl Paths {
    pub fn host_toml(&self) -> PathBuf {
        self.mods_dir.join("host.toml")
    }
}

/// A loaded configuration.
pub struct Loaded {
    pub cfg: HostConfig,
    pub registry: Registry,
    /// The listeners: each frontend's plain one, then the TLS ones host.toml asks for.
    pub listen: Vec<ListenSpec>,
}

/// Loads everything, collecting every problem rather than stopping at the first.
pub fn load(paths: &Paths, services: &HostServices) -> Result<Loaded, Vec<String>> {
    let host_api = services.boxed();
    let mut errors = Vec::new();
    let cfg = match HostConfig::load(&paths.host_toml()) {
        Ok(c) => c,
        Err(e) => {
            errors.push(e.to_string());
            HostConfig::default()
        }
    };
    let names = match mods::read(&paths.mods_path) {
        Ok(n) => n,
        Err(e) => {
            errors.push(e.to_string());
            return Err(errors);
        }
    };
    let mut registry = Registry::default();
    for name in &names {
        let settings_path = paths.mods_dir.join(format!("{name}.toml"));
        let settings = match std::fs::read_to_string(&settings_path) {
            Ok(text) => Some((text, settings_path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                errors.push(format!("cannot read {}: {e}", settings_path.display()));
                continue;
            }
        };
        match loader::load(
            name,
            &paths.plugin_dir,
            services,
            &host_api,
            &paths.root,
            settings,
        ) {
            Ok(p) => {
                tracing::info!(plugin = %p.name, version = %p.descriptor.version, file = %p.file.display(), "loaded");
                registry.add(p);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let mut listen = listen_addresses(&cfg, &paths.cli_listen, &registry, &mut errors);
    listen.extend(tls_listeners(&cfg, &paths.root, &registry, &mut errors));
    if errors.is_empty() {
        Ok(Loaded {
            cfg,
            registry,
            listen,
        })
    } else {
        Err(errors)
    }
}

/// Picks each frontend's address: `--listen`, then host.toml's `[listen]`, then its default.
fn listen_addresses(
    cfg: &HostConfig,
    cli: &[String],
    registry: &Registry,
    errors: &mut Vec<String>,
) -> Vec<ListenSpec> {
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
        if let Err(what) = find_frontend(registry, name) {
            errors.push(format!("listen address for {name:?}: {what}"));
        }
    }
    registry
        .frontends
        .iter()
        .map(|f| {
            // By plugin name only where no frontend has that protocol: `--listen http=...`
            // is the http plugin's "http" listener, not its "api" one too.
            let by_plugin = || {
                let taken = registry.frontends.iter().any(|g| g.protocol == f.plugin);
                (!taken).then(|| chosen.get(&f.plugin)).flatten()
            };
            let addr = chosen
                .get(&f.protocol)
                .or_else(by_plugin)
                .cloned()
                .unwrap_or_else(|| f.default_listen.clone());
            ListenSpec {
                frontend: f.clone(),
                addr,
                tls: None,
            }
        })
        .collect()
}

/// The frontend a `[listen]` or `[tls.NAME]` key names (by protocol or plugin name), or why
/// there is none.
fn find_frontend<'a>(registry: &'a Registry, name: &str) -> Result<&'a Arc<Frontend>, String> {
    registry
        .frontends
        .iter()
        .find(|f| f.protocol == name)
        .or_else(|| registry.frontends.iter().find(|f| f.plugin == name))
        .ok_or_else(|| match registry.rows.iter().find(|r| r.name == name) {
            Some(r) => format!("plugin {name:?} is a {}, not a protocol frontend", r.kinds),
            None => format!("no loaded protocol frontend is called {name:?}"),
        })
}

/// host.toml's `[tls.NAME]` listeners, their certificates and keys loaded (relative to `root`).
fn tls_listeners(
    cfg: &HostConfig,
    root: &Path,
    registry: &Registry,
    errors: &mut Vec<String>,
) -> Vec<ListenSpec> {
    let mut specs: Vec<ListenSpec> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    for (name, t) in &cfg.tls {
        let frontend = match find_frontend(registry, name) {
            Ok(f) => f,
            Err(what) => {
                errors.push(format!("[tls.{name}]: {what}"));
                continue;
            }
        };
        if let Some(i) = specs
            .iter()
            .position(|s| s.frontend.protocol == frontend.protocol)
        {
            errors.push(format!(
                "[tls.{name}] and [tls.{}] both ask for a TLS listener for {}",
                keys[i], frontend.protocol
            ));
            continue;
        }
        match TlsSettings::load(root, t) {
            Ok(settings) => {
                specs.push(ListenSpec {
                    frontend: frontend.clone(),
                    addr: t.listen.clone(),
                    tls: Some(Arc::new(settings)),
                });
                keys.push(name);
            }
            Err(e) => errors.push(format!("[tls.{name}]: {e}")),
        }
    }
    specs
}

/// `--root`'s default and the plugin directory's default.
pub fn default_plugin_dir() -> std::io::Result<PathBuf> {
    Ok(std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default())
}
