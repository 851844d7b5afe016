//! The loaded plugins, sorted by kind.

use std::path::PathBuf;
use std::sync::Arc;

use fstream_abi::{
    kinds, AppHandlerBox, AuthenticatorBox, FrontendFactoryBox, InterfaceVersion, PluginObject,
    SinkFactoryBox, SourceFactoryBox,
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
