//! Interface version 1.
//!
//! Changes to anything in this module change the layout the host checks at load time; a test
//! (`tests/abi_snapshot.rs`) compares it against `abi-v1.snapshot` so no change is accidental.
//! See `core/abi/CHANGELOG.md` for the rules.

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
