//! Loading plugins: find the file, check the interface, initialise with its settings.
//!
//! Each `main.mods` name `NAME` is the file `libNAME.so` (dashes become underscores, as cargo
//! names a `cdylib`) in the plugin directory. The library header says which interface the
//! plugin was built against (its root module's version strings: `1.0.0` for v1, `2.N.0` for
//! v2.N), before any layout is trusted:
//!
//! * v1: abi_stable checks the layout against the frozen v1 types; the objects are wrapped in
//!   v2 adapters ([`crate::compat_v1`]).
//! * v2.N with N up to this host's minor: the layout is checked with the *plugin's* types as
//!   the reference, so whatever v2.(N+1..) added after the plugin was built (methods at the end
//!   of a vtable, variants at the end of a non-exhaustive enum) is allowed, and anything else
//!   (a removal, a reordering, a changed field) is refused.
//! * anything newer, or not a plugin, is refused in one line naming the file and the versions.
//!
//! abi_stable's full layout report goes to the debug log.

use std::path::{Path, PathBuf};

use abi_stable::{
    abi_stability::abi_checking::{check_layout_compatibility_with_globals, CheckingGlobals},
    library::{lib_header_from_path, LibHeader, LibraryError},
    std_types::RBoxError,
    StableAbi,
};
use fstream_abi::{
    kinds, v1, HostApiBox, InitContext, InterfaceVersion, PluginDescriptor, PluginInstance,
    PluginModV2_Ref, INTERFACE,
};

use crate::{compat_v1, host_api::HostServices};

/// A loaded, initialised plugin.
pub struct LoadedPlugin {
    pub name: String,
    pub file: PathBuf,
    pub descriptor: PluginDescriptor,
    /// The interface version it was built against (v1.0 for a v1 plugin).
    pub interface: InterfaceVersion,
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
        "plugin {name:?}: {file} is incompatible: interface {expected} expected, found {found}{detail}"
    )]
    Incompatible {
        name: String,
        file: String,
        expected: String,
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

/// An opened plugin whose interface has been checked.
pub enum Module {
    V1(v1::PluginModV1_Ref),
    V2(PluginModV2_Ref),
}

impl Module {
    pub fn descriptor(&self) -> PluginDescriptor {
        match self {
            Module::V1(m) => compat_v1::descriptor((m.describe())()),
            Module::V2(m) => (m.describe())(),
        }
    }
}

/// What this host loads, for messages.
fn accepted() -> String {
    format!("v1 or v2.0 to {INTERFACE}")
}

/// Opens a plugin file and checks its interface, without initialising it.
pub fn open(name: &str, file: &Path) -> Result<Module, LoadError> {
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
    let incompatible = |found: String, detail: String| LoadError::Incompatible {
        name: name.into(),
        file: fname.clone(),
        expected: accepted(),
        found,
        detail,
    };
    let version = header
        .version_strings()
        .parsed()
        .map_err(|e| incompatible("an unreadable interface version".into(), format!(": {e}")))?;
    match (version.major, version.minor) {
        (1, _) => header
            .init_root_module::<v1::PluginModV1_Ref>()
            .map(Module::V1)
            .map_err(|e| {
                let (found, detail) = describe_error(name, &fname, "v1", &e);
                incompatible(found, detail)
            }),
        (2, minor) if minor <= u32::from(INTERFACE.minor) => {
            open_v2(header, name, &fname).map_err(|e| {
                let (found, detail) = describe_error(name, &fname, &format!("v2.{minor}"), &e);
                incompatible(found, detail)
            })
        }
        (2, minor) => Err(incompatible(
            format!("interface v2.{minor}"),
            " (built for a newer host: upgrade fstream-host or rebuild the plugin)".into(),
        )),
        (major, _) => Err(incompatible(format!("interface v{major}"), String::new())),
    }
}

/// Checks a v2 plugin's layout with its own types as the reference (see the module's doc).
fn open_v2(header: &'static LibHeader, name: &str, file: &str) -> Result<Module, LibraryError> {
    let host_layout = <PluginModV2_Ref as StableAbi>::LAYOUT;
    match header.layout() {
        // Each plugin is checked against the host alone, with checking state of its own.
        // abi_stable's process-wide state merges what it has seen of each non-exhaustive enum
        // and prefix type across *all* checks, keyed by a type id that builds of the same
        // interface crate share: after a v2.0 plugin, a v2.1 one was refused for having the
        // variants v2.1 added ("too many variants", found by
        // `plugins_of_v2_0_and_today_work_together_each_way`). Plugins talk only to the host,
        // which is never older than any of them, so the pairwise check is the whole promise.
        Some(plugin_layout) => check_layout_compatibility_with_globals(
            plugin_layout,
            host_layout,
            &CheckingGlobals::new(),
        )
        .map_err(|e| LibraryError::AbiInstability(RBoxError::new(e)))?,
        None => {
            tracing::warn!(
                plugin = name,
                file,
                "the plugin's layout is not recorded; loading it unchecked"
            )
        }
    }
    // SAFETY: the layout was checked above (everything the plugin knows matches the host's
    // types; what it does not know is read through prefix and non-exhaustive accessors).
    unsafe { header.unchecked_layout::<PluginModV2_Ref>() }
        .map(Module::V2)
        .map_err(|e| e.into_library_error::<PluginModV2_Ref>())
}

/// The "found ..." part and the detail of a refusal, logging abi_stable's full report.
fn describe_error(name: &str, file: &str, claimed: &str, e: &LibraryError) -> (String, String) {
    let full = e.to_string();
    tracing::debug!(plugin = name, file, "abi_stable says:\n{full}");
    match e {
        LibraryError::AbiInstability(_) => (
            format!("a different {claimed} layout"),
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
            format!("interface {claimed}, which failed to open"),
            format!(": {}", first_line(&other.to_string())),
        ),
    }
}

/// Loads and initialises one plugin.
pub fn load(
    name: &str,
    dir: &Path,
    services: &HostServices,
    host: &HostApiBox,
    root: &Path,
    settings: Option<(String, PathBuf)>,
) -> Result<LoadedPlugin, LoadError> {
    let file = plugin_file(dir, name);
    let fname = file.display().to_string();
    let module = open(name, &file)?;
    let descriptor = module.descriptor();
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
        host_interface: INTERFACE,
        ext: Default::default(),
    };
    let instance = match &module {
        Module::V2(m) => (m.init())(host.clone(), ctx).into_result(),
        Module::V1(m) => (m.init())(compat_v1::host_api(services), compat_v1::init_context(&ctx))
            .into_result()
            .map(compat_v1::instance),
    }
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
        interface: descriptor.interface,
        descriptor,
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
