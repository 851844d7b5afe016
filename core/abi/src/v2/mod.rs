//! Interface version 2: the one that grows.
//!
//! v1 was a graph of plain structs and exhaustive enums, so any addition changed the layout of
//! everything above it. v2 is built to take additions without breaking a plugin built against
//! an earlier v2.x (see `core/abi/CHANGELOG.md`, "Adding to the interface"):
//!
//! * the root module [`PluginModV2`] and every plugin kind's vtable (`#[sabi_trait]`) are
//!   prefix types: new functions and methods go at the end, methods with a default body;
//! * what sessions, handlers and the host say to each other ([`Action`], [`Event`],
//!   [`SubscriptionStatus`], [`AppCall`], ...) are non-exhaustive enums (`..._NE`): new
//!   variants go at the end, and a receiver that does not know a variant skips it;
//! * option and request structs carry an [`Extensions`] list for values added later;
//! * plain structs and the v1 types v2 reuses (media packets, log records, errors) never
//!   change.
//!
//! The host loads a plugin built against v2.N into any host with v2.M, M >= N: it checks the
//! plugin's layout against its own with the plugin's side as the reference, so additions the
//! plugin does not know are allowed and anything else is refused.

pub mod app;
pub mod auth;
pub mod extensions;
pub mod frontend;
pub mod host;
pub mod http;
pub mod module;
pub mod net;
pub mod notice;
pub mod sink;
pub mod source;

pub use app::*;
pub use auth::*;
pub use extensions::*;
pub use frontend::*;
pub use host::*;
pub use http::*;
pub use module::*;
pub use net::*;
pub use notice::*;
pub use sink::*;
pub use source::*;

// The parts of v1 that v2 keeps as they are: plain data that has no reason to grow.
pub use crate::v1::{
    flags, payload_from, payload_from_vec, CloseMode, LogLevel, LogRecord, MediaKind, MediaPacket,
    OverflowPolicy, Payload, PluginError, PublishConflict, RecordMode, RAW_FORMAT,
};

/// Bits of [`PluginDescriptor::kinds`]: v1's, and the kinds v2.x added.
pub mod kinds {
    pub use crate::v1::kinds::{APP_HANDLER, AUTHENTICATOR, FRONTEND, SINK, SOURCE};
    /// Since v2.2: [`super::HttpHandler`].
    pub const HTTP_HANDLER: u32 = 32;
    /// Since v2.3: [`super::Observer`].
    pub const OBSERVER: u32 = 64;

    /// Human names of the kinds in `mask`, for messages and `--check`.
    pub fn names(mask: u32) -> Vec<&'static str> {
        let mut v = crate::v1::kinds::names(mask);
        if mask & HTTP_HANDLER != 0 {
            v.push("http-handler");
        }
        if mask & OBSERVER != 0 {
            v.push("observer");
        }
        v
    }
}

/// The interface's major version.
pub const INTERFACE_MAJOR: u16 = 2;
/// The interface's minor version: the number of additions since v2.0. Raise it with each
/// addition and record the addition in `abi-v2.snapshot` (the snapshot test says how).
pub const INTERFACE_MINOR: u16 = 3;
/// This build's interface version.
pub const INTERFACE: InterfaceVersion = InterfaceVersion {
    major: INTERFACE_MAJOR,
    minor: INTERFACE_MINOR,
};
