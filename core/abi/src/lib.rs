//! The stable plugin interface of fstream-host.
//!
//! Host and plugins are separate builds (the plugins are `cdylib`s loaded at run time), so every
//! type that crosses between them is `#[repr(C)]` and derives [`abi_stable::StableAbi`]; the host
//! checks the layout of everything reachable from the root module when it loads a plugin.
//!
//! * [`v1`] is the first interface version: the root module [`v1::PluginModV1`], the plugin kinds
//!   (authenticator, protocol frontend, app handler, sink, source) and their data types.
//!   Later versions live beside it (`v2`, ...) so a newer host can still load a plugin built
//!   against an older interface.
//! * [`sdk`] is what plugin authors use: idiomatic Rust traits, the [`export_plugin!`] macro, and
//!   adapters that catch panics on the plugin's side of the boundary.
//! * [`log_bridge`] forwards a plugin's `tracing` events to the host's subscriber.
//!
//! Nothing in this crate does I/O or knows about tokio: plugins are state machines and the host
//! owns sockets, timers and threads.
#![allow(non_local_definitions, non_camel_case_types)]

pub mod glob;
pub mod log_bridge;
pub mod names;
pub mod query;
pub mod sdk;
pub mod v1;
pub mod v2;

pub use abi_stable;
pub use v2::*;
