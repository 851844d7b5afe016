//! Loading plugins: find the file, check the interface, initialise with its settings.
//!
//! Each `main.mods` name `NAME` is the file `libNAME.so` (dashes become underscores, as cargo
//! names a `cdylib`) in the plugin directory. The loader knows every interface version it can
//! adapt (only `v1` so far) and tries the newest first. abi_stable checks the layout of all types
//! reachable from the root module; a mismatch is reported in a few lines, with abi_stable's full
//! dump at debug level.

use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};
use fstream_abi::{
    kinds, HostApiBox, InitContext, PluginDescriptor, PluginInstance, PluginModV1_Ref,
    INTERFACE_VERSION,
};

/// A loaded, initialised plugin.
pub struct LoadedPlugin {
    pub name: String,
    pub file: PathBuf,
    pub descriptor: PluginDescriptor,
    /// The interface version it was built against.
    pub interface: u32,
    pub instance: PluginInstance,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin {name:?}: file {file} is missing (is it built? `cargo build --workspace`)")]
    Missing { name: String, file: String },
    #[error("plugin {name:?}: {file} cannot be opened: {reason}")]
    Open {
        name: String,
        file: String,
        reason: String,
    },
    #[error(
        "plugin {name:?}: {file} is not an fstream-host plugin (it exports no plugin root module)"
    )]
    NotAPlugin { name: String, file: String },
    #[error(
        "plugin {name:?}: {file} is incompatible: interface v{expected} expected, found {found}{detail}"
    )]
    Incompatible {
        name: String,
        file: String,
        expected: u32,
        found: String,
        detail: String,
    },
    #[error("plugin {name:?}: {file} contains the plugin {found:?}")]
    WrongName {
        name: String,
        file: String,
        found: String,
    },
    #[error("plugin {name:?} ({file}): {message}")]
    Init {
        name: String,
        file: String,
        message: String,
    },
    #[error(
        "plugin {name:?} ({file}): wrong kind: it declares {declared} but provides {provided}"
    )]
    WrongKind {
        name: String,
        file: String,
        declared: String,
        provided: String,
    },
}

/// The file a plugin name maps to.
pub fn plugin_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    ))
}

fn kind_names(mask: u32) -> String {
    let n = kinds::names(mask);
    if n.is_empty() {
        "nothing".into()
    } else {
        n.join("+")
    }
}

/// Opens a plugin file and checks its interface, without initialising it.
pub fn open(name: &str, file: &Path) -> Result<(PluginModV1_Ref, u32), LoadError> {
    let fname = file.display().to_string();
    if !file.exists() {
        return Err(LoadError::Missing {
            name: name.into(),
            file: fname,
        });
    }
    let header = lib_header_from_path(file).map_err(|e| match e {
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin {
            name: name.into(),
            file: fname.clone(),
        },
        other => LoadError::Open {
            name: name.into(),
            file: fname.clone(),
            reason: first_line(&other.to_string()),
        },
    })?;
    // Newest interface first; when a `v2` exists, a failed v2 check falls back to v1 here and
    // the v1 module is adapted.
    match header.init_root_module::<PluginModV1_Ref>() {
        Ok(m) => Ok((m, INTERFACE_VERSION)),
        Err(e) => {
            let full = e.to_string();
            tracing::debug!(plugin = name, file = %fname, "abi_stable says:\n{full}");
            let (found, detail) = match &e {
                LibraryError::IncompatibleVersionNumber { actual_version, .. } => (
                    format!("interface v{}", actual_version.major),
                    String::new(),
                ),
                LibraryError::AbiInstability(_) => (
                    "a different v1 layout".to_string(),
                    format!("; first difference: {}", first_difference(&full)),
                ),
                LibraryError::InvalidAbiHeader(h) => (
                    format!(
                        "abi_stable {}.{} (this host uses 0.11)",
                        h.abi_major, h.abi_minor
                    ),
                    String::new(),
                ),
                other => (
                    "an unreadable interface".into(),
                    format!(": {}", first_line(&other.to_string())),
                ),
            };
            Err(LoadError::Incompatible {
                name: name.into(),
                file: fname,
                expected: INTERFACE_VERSION,
                found,
                detail,
            })
        }
    }
}

/// Loads and initialises one plugin.
pub fn load(
    name: &str,
    dir: &Path,
    host: &HostApiBox,
    root: &Path,
    settings: Option<(String, PathBuf)>,
) -> Result<LoadedPlugin, LoadError> {
    let file = plugin_file(dir, name);
    let fname = file.display().to_string();
    let (module, interface) = open(name, &file)?;
    let descriptor = (module.describe())();
    if descriptor.name.as_str() != name {
        return Err(LoadError::WrongName {
            name: name.into(),
            file: fname,
            found: descriptor.name.to_string(),
        });
    }
    let (settings_text, settings_path) = settings
        .map(|(t, p)| (t, p.display().to_string()))
        .unwrap_or_default();
    let ctx = InitContext {
        name: name.into(),
        settings: settings_text.into(),
        settings_path: settings_path.clone().into(),
        root: root.display().to_string().into(),
    };
    let instance = (module.init())(host.clone(), ctx)
        .into_result()
        .map_err(|e| LoadError::Init {
            name: name.into(),
            file: fname.clone(),
            message: if settings_path.is_empty() {
                e.to_string()
            } else {
                format!("{settings_path}: {e}")
            },
        })?;
    let provided = instance.kinds();
    if provided != descriptor.kinds || provided == 0 {
        return Err(LoadError::WrongKind {
            name: name.into(),
            file: fname,
            declared: kind_names(descriptor.kinds),
            provided: kind_names(provided),
        });
    }
    Ok(LoadedPlugin {
        name: name.into(),
        file,
        descriptor,
        interface,
        instance,
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// The first `Error:` entry of abi_stable's layout report, with its Expected/Found lines
/// (up to the blank line that ends the entry), on one line.
fn first_difference(report: &str) -> String {
    let mut lines = report
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Error:"));
    let entry: Vec<&str> = lines
        .by_ref()
        .take(8)
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    if entry.is_empty() {
        first_line(report)
    } else {
        entry.join(" ")
    }
}
