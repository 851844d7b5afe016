//! Interface version 1.
//!
//! Frozen on 2026-11-23: nothing in this module may change its layout, since every plugin
//! built against v1 must keep loading in later hosts. A test (`tests/abi_snapshot.rs`) compares
//! the layout against `abi-v1.snapshot`. New capabilities go in a `v2` module beside this one;
//! see `core/abi/CHANGELOG.md`.

pub mod app;
pub mod auth;
pub mod frontend;
pub mod host;
pub mod media;
pub mod module;
pub mod sink;
pub mod source;

pub use app::*;
pub use auth::*;
pub use frontend::*;
pub use host::*;
pub use media::*;
pub use module::*;
pub use sink::*;
pub use source::*;

/// The interface version this module describes.
pub const INTERFACE_VERSION: u32 = 1;
