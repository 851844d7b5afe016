//! AMF0 (Action Message Format version 0): value model, decoder and encoder.
//!
//! AMF0 carries RTMP commands (message type 20), data messages (type 18) and FLV script tags.
//! A value may switch to AMF3 with the `avmplus-object` marker (0x11); such values are kept as
//! [`Amf0Value::Avmplus`]. [`Amf0Value::normalized`] gives an AMF0-only view for code that does
//! not care which encoding the peer used.

mod decode;
mod encode;
mod value;

pub use decode::{decode, decode_all};
pub use encode::{encode, encode_all, to_vec};
pub use value::{Amf0Value, Properties};

use crate::amf3::Amf3Error;
pub use crate::limits::AmfLimits;
use crate::limits::BudgetExceeded;
use crate::reader::Eof;

/// AMF0 type markers.
pub mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const MOVIECLIP: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const REFERENCE: u8 = 0x07;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0A;
    pub const DATE: u8 = 0x0B;
    pub const LONG_STRING: u8 = 0x0C;
    pub const UNSUPPORTED: u8 = 0x0D;
    pub const RECORDSET: u8 = 0x0E;
    pub const XML_DOCUMENT: u8 = 0x0F;
    pub const TYPED_OBJECT: u8 = 0x10;
    pub const AVMPLUS_OBJECT: u8 = 0x11;
}

/// Errors from AMF0 decoding and encoding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Amf0Error {
    #[error("AMF0 input truncated at byte {offset}: {needed} more bytes needed")]
    Truncated { offset: usize, needed: usize },
    #[error("unknown AMF0 marker 0x{marker:02x} at byte {offset}")]
    UnknownMarker { marker: u8, offset: usize },
    #[error("reserved AMF0 marker 0x{marker:02x} at byte {offset} is not supported")]
    UnsupportedMarker { marker: u8, offset: usize },
    #[error("unexpected AMF0 object-end marker at byte {offset}")]
    UnexpectedObjectEnd { offset: usize },
    #[error("AMF0 nesting deeper than the limit of {limit}")]
    TooDeep { limit: usize },
    #[error("AMF0 input produces more than the limit of {limit} values")]
    TooManyValues { limit: usize },
    #[error("AMF0 input produces more than the limit of {limit} string bytes")]
    TooManyBytes { limit: usize },
    #[error("in AMF3 value after an AMF0 avmplus switch: {0}")]
    Amf3(#[from] Amf3Error),
    #[error("AMF0 {what} of length {len} is too long to encode")]
    TooLong { what: &'static str, len: usize },
}

impl From<Eof> for Amf0Error {
    fn from(e: Eof) -> Self {
        Amf0Error::Truncated {
            offset: e.offset,
            needed: e.needed,
        }
    }
}

impl From<BudgetExceeded> for Amf0Error {
    fn from(e: BudgetExceeded) -> Self {
        match e {
            BudgetExceeded::Nodes(limit) => Amf0Error::TooManyValues { limit },
            BudgetExceeded::Bytes(limit) => Amf0Error::TooManyBytes { limit },
        }
    }
}
