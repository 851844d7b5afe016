//! The loaded plugins, sorted by kind.

use std::path::PathBuf;
use std::sync::Arc;

use fstream_abi::{
    kinds, path_under, valid_prefix, AppHandlerBox, AuthenticatorBox, FrontendFactoryBox,
    HttpHandlerBox, InterfaceVersion, ObserverBox, PluginObject, SinkFactoryBox, SourceFactoryBox,
};

use crate::loader::LoadedPlugin;

/// A protocol frontend plugin.
pub struct Frontend {
    /// The plugin's name in `main.mods`.
    pub plugin: String,
    /// Its protocol name (`fstream`, `rtmp`), used by `--listen` and `host.toml`.
    pub protocol: String,
    pub default_listen: String,
    pub factory: FrontendFactoryBox,
    /// Built with v2.1 or later: its sessions read `Event::ClientCommand`.
    pub takes_commands: bool,
}

/// One line of `--check`'s table.
pub struct PluginRow {
    pub name: String,
    pub kinds: String,
    pub version: String,
    pub interface: InterfaceVersion,
    pub file: PathBuf,
}

#[derive(Default)]
pub struct Registry {
    pub rows: Vec<PluginRow>,
    pub authenticators: Vec<(String, AuthenticatorBox)>,
    pub frontends: Vec<Arc<Frontend>>,
    /// (plugin, apps it serves, handler)
    pub app_handlers: Vec<(String, Vec<String>, AppHandlerBox)>,
    pub sinks: Vec<(String, SinkFactoryBox)>,
    /// (plugin, app, factory)
    pub sources: Vec<(String, String, SourceFactoryBox)>,
    /// (plugin, path prefixes it serves, handler)
    pub http_handlers: Vec<(String, Vec<String>, HttpHandlerBox)>,
    /// (plugin, observer)
    pub observers: Vec<(String, ObserverBox)>,
}

impl Registry {
    pub fn add(&mut self, p: LoadedPlugin) {
        self.rows.push(PluginRow {
            name: p.name.clone(),
            kinds: kinds::names(p.descriptor.kinds).join("+"),
            version: p.descriptor.version.to_string(),
            interface: p.interface,
            file: p.file.clone(),
        });
        for object in p.instance.objects {
            // The loader checked that every object is of a kind this host knows.
            let Ok(object) = object.into_enum() else {
                continue;
            };
            match object {
                PluginObject::Authenticator(a) => self.authenticators.push((p.name.clone(), a)),
                PluginObject::Frontend(f) => self.frontends.push(Arc::new(Frontend {
                    plugin: p.name.clone(),
                    protocol: f.protocol().into(),
                    default_listen: f.default_listen().into(),
                    factory: f,
                    takes_commands: p.interface.major == 2 && p.interface.minor >= 1,
                })),
                PluginObject::AppHandler(h) => {
                    let apps = h.apps().into_iter().map(String::from).collect();
                    self.app_handlers.push((p.name.clone(), apps, h));
                }
                PluginObject::Sink(s) => self.sinks.push((p.name.clone(), s)),
                PluginObject::Source(s) => {
                    let app = s.app().into();
                    self.sources.push((p.name.clone(), app, s));
                }
                PluginObject::HttpHandler(h) => {
                    let mut prefixes = Vec::new();
                    for prefix in h.prefixes().into_iter().map(String::from) {
                        if valid_prefix(&prefix) {
                            prefixes.push(prefix);
                        } else {
                            tracing::warn!(plugin = %p.name, prefix = %prefix.escape_debug(),
                                "an HTTP handler's prefix is not a plain path; ignored");
                        }
                    }
                    self.http_handlers.push((p.name.clone(), prefixes, h));
                }
                PluginObject::Observer(o) => self.observers.push((p.name.clone(), o)),
                _ => {}
            }
        }
    }
}

/// App handlers routed by app name: an exact name first, then `*`.
pub struct AppRoutes(pub Vec<(String, Vec<String>, AppHandlerBox)>);

impl AppRoutes {
    pub fn route(&self, app: &str) -> Option<(&str, &AppHandlerBox)> {
        self.0
            .iter()
            .find(|(_, apps, _)| apps.iter().any(|a| a == app))
            .or_else(|| {
                self.0
                    .iter()
                    .find(|(_, apps, _)| apps.iter().any(|a| a == "*"))
            })
            .map(|(n, _, h)| (n.as_str(), h))
    }
}

/// HTTP handlers routed by path: the longest prefix that covers the path wins; a prefix two
/// plugins claim belongs to the first in `main.mods`.
pub struct HttpRoutes {
    /// (prefix, index into `handlers`), longest prefix first.
    prefixes: Vec<(String, usize)>,
    handlers: Vec<(String, HttpHandlerBox)>,
}

impl HttpRoutes {
    pub fn new(all: Vec<(String, Vec<String>, HttpHandlerBox)>) -> Self {
        let mut prefixes: Vec<(String, usize)> = Vec::new();
        let mut handlers = Vec::new();
        for (i, (plugin, ps, h)) in all.into_iter().enumerate() {
            for p in ps {
                let key = p.trim_end_matches('/').to_string();
                match prefixes.iter().find(|(q, _)| *q == key) {
                    Some((_, owner)) => {
                        let owner: &(String, HttpHandlerBox) = &handlers[*owner];
                        tracing::warn!(plugin = %plugin, prefix = %p, owner = %owner.0,
                            "an HTTP prefix another plugin serves already; ignored");
                    }
                    None => prefixes.push((key, i)),
                }
            }
            handlers.push((plugin, h));
        }
        prefixes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Self { prefixes, handlers }
    }

    pub fn route(&self, path: &str) -> Option<(&str, &HttpHandlerBox)> {
        self.prefixes
            .iter()
            .find(|(p, _)| path_under(path, p))
            .and_then(|(_, i)| self.handlers.get(*i))
            .map(|(n, h)| (n.as_str(), h))
    }

    /// Every prefix served, for the HTTP frontends.
    pub fn prefixes(&self) -> Vec<String> {
        self.prefixes.iter().map(|(p, _)| p.clone()).collect()
    }
}
