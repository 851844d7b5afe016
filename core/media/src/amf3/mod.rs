//! AMF3 (Action Message Format version 3): value model, decoder and encoder.
//!
//! In RTMP, AMF3 appears inside AMF0 streams after the `avmplus-object` switch marker (0x11), in
//! command messages of type 17 and data messages of type 15. The decoder resolves string, object
//! and trait references into owned values; every clone out of a reference table is charged to the
//! caller's [`AmfLimits`](crate::AmfLimits) budget so references cannot amplify memory use.
//! Cyclic object graphs, externalizable objects, vectors and dictionaries are rejected.

mod decode;
mod encode;
mod value;

pub use decode::decode;
pub(crate) use decode::Amf3Decoder;
pub use encode::{to_vec, Amf3Encoder};
pub use value::{Amf3Array, Amf3Object, Amf3Value};

use crate::limits::BudgetExceeded;
use crate::reader::Eof;

/// AMF3 type markers.
pub mod marker {
    pub const UNDEFINED: u8 = 0x00;
    pub const NULL: u8 = 0x01;
    pub const FALSE: u8 = 0x02;
    pub const TRUE: u8 = 0x03;
    pub const INTEGER: u8 = 0x04;
    pub const DOUBLE: u8 = 0x05;
    pub const STRING: u8 = 0x06;
    pub const XML_DOC: u8 = 0x07;
    pub const DATE: u8 = 0x08;
    pub const ARRAY: u8 = 0x09;
    pub const OBJECT: u8 = 0x0A;
    pub const XML: u8 = 0x0B;
    pub const BYTE_ARRAY: u8 = 0x0C;
    pub const VECTOR_INT: u8 = 0x0D;
    pub const VECTOR_UINT: u8 = 0x0E;
    pub const VECTOR_DOUBLE: u8 = 0x0F;
    pub const VECTOR_OBJECT: u8 = 0x10;
    pub const DICTIONARY: u8 = 0x11;
}

/// Largest integer an AMF3 `integer` (29-bit signed) can hold; larger ones encode as doubles.
pub const INTEGER_MAX: i32 = (1 << 28) - 1;
/// Smallest integer an AMF3 `integer` can hold.
pub const INTEGER_MIN: i32 = -(1 << 28);

/// Errors from AMF3 decoding and encoding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Amf3Error {
    #[error("AMF3 input truncated at byte {offset}: {needed} more bytes needed")]
    Truncated { offset: usize, needed: usize },
    #[error("unknown AMF3 marker 0x{marker:02x} at byte {offset}")]
    UnknownMarker { marker: u8, offset: usize },
    #[error("AMF3 marker 0x{marker:02x} at byte {offset} (vector/dictionary) is not supported")]
    UnsupportedMarker { marker: u8, offset: usize },
    #[error("AMF3 {table} reference {index} at byte {offset} is out of range")]
    BadReference {
        table: &'static str,
        index: usize,
        offset: usize,
    },
    #[error("AMF3 object reference {index} at byte {offset} points to an object still being decoded (cycle)")]
    CyclicReference { index: usize, offset: usize },
    #[error("AMF3 {table} reference table exceeds the limit of {limit} entries")]
    TooManyReferences { table: &'static str, limit: usize },
    #[error("AMF3 externalizable object of class {class_name:?} cannot be decoded")]
    Externalizable { class_name: String },
    #[error("AMF3 nesting deeper than the limit of {limit}")]
    TooDeep { limit: usize },
    #[error("AMF3 input produces more than the limit of {limit} values")]
    TooManyValues { limit: usize },
    #[error("AMF3 input produces more than the limit of {limit} string bytes")]
    TooManyBytes { limit: usize },
    #[error("AMF3 {what} of length {len} is too long to encode")]
    TooLong { what: &'static str, len: usize },
    #[error("AMF3 dynamic member or associative key must not be empty when encoding")]
    EmptyKey,
}

impl From<Eof> for Amf3Error {
    fn from(e: Eof) -> Self {
        Amf3Error::Truncated {
            offset: e.offset,
            needed: e.needed,
        }
    }
}

impl From<BudgetExceeded> for Amf3Error {
    fn from(e: BudgetExceeded) -> Self {
        match e {
            BudgetExceeded::Nodes(limit) => Amf3Error::TooManyValues { limit },
            BudgetExceeded::Bytes(limit) => Amf3Error::TooManyBytes { limit },
        }
    }
}
