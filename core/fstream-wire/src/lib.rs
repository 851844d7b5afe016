//! The fstream protocol's client-to-server preamble, without any I/O.
//!
//! An fstream connection starts with one preamble sent by the client (see `shared/spec/fstream.md`):
//!
//! ```text
//! PRELUDE  "\n\n", HTTP-style headers ending in a blank line, or nothing (first byte 0x00)
//! LENGTH   u32 big-endian, the byte length of ACTION (1..=4096 by default)
//! NUL      one 0x00 byte
//! ACTION   LENGTH bytes of UTF-8, e.g. "watch,user=fier,channel=default"
//! ```
//!
//! This crate has three parts:
//! - [`PreambleParser`]: an incremental parser fed with whatever byte chunks the socket delivers. It
//!   returns the action text plus the bytes that followed it in the same chunk (a broadcaster's stream
//!   often arrives in the same read as its preamble).
//! - [`Action`] and [`Request`]: the `ACTION[,key=value]*` grammar and its typed meaning.
//! - [`encode_preamble`]: the client side, producing the bytes a stock client sends.
//!
//! What it does not do: sockets, timeouts (the 10 s preamble deadline is the caller's), clocks,
//! authentication or logging. It never panics on peer input.

mod action;
mod preamble;

pub use action::{Action, ActionError, Parsed, Request, MAX_BUFSIZE};
pub use preamble::{
    encode_preamble, Limits, Preamble, PreambleParser, Prelude, PreludeKind, WireError,
    DEFAULT_MAX_ACTION_LEN, DEFAULT_MAX_PRELUDE,
};
