//! Values added to a request or option struct after v2.0.
//!
//! Structs that cross the boundary by value cannot grow: their size is part of the layout. The
//! ones likely to need more (requests, options, connection info) end with an [`Extensions`]
//! list instead. A later v2.x adds a variant to [`Extension`]; a receiver built before it sees
//! an entry it cannot read and skips it, and a sender built before it simply never sends it.

use abi_stable::{std_types::RString, std_types::RVec, StableAbi};

/// One value added after v2.0. Each variant says which struct it belongs in.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 16], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum Extension {
    /// A named value with no meaning to the host (plugin-specific data, as nginx variables).
    Var { name: RString, value: RString },
    /// Since v2.1, in the `ext` of a connect, publish or play call (set by the host): the
    /// ticket for answering it later (see [`super::AppVerdict::Defer`]).
    Ticket(u64),
    /// Since v2.3, in the grants of [`super::AuthVerdict::AllowWith`] and
    /// [`super::AuthAnswer`]: use this stream name instead (`NAME`, or `APP/NAME`), as an
    /// nginx-rtmp `on_publish` answering 3xx with a `Location`.
    Rename(RString),
    /// Since v2.3, in the same grants: whether this user may have the publication recorded
    /// when the client asks for it (RTMP publish type `record` / `append`). Also in the `ext`
    /// of an [`super::AppDecision`] accepting a publish: `MayRecord(false)` tells the frontend
    /// to publish live (`RecordMode::Live`) whatever recording the client asked for.
    MayRecord(bool),
}

/// The list a growable struct ends with.
pub type Extensions = RVec<Extension_NE>;

/// The entries of `ext` this build knows, skipping newer ones.
pub fn known(ext: &Extensions) -> impl Iterator<Item = &Extension> {
    ext.iter().filter_map(|e| e.as_enum().ok())
}

/// The value of the first `Var` called `name`.
pub fn var<'a>(ext: &'a Extensions, name: &str) -> Option<&'a str> {
    known(ext).find_map(|e| match e {
        Extension::Var { name: n, value } if n.as_str() == name => Some(value.as_str()),
        _ => None,
    })
}

/// The call's ticket for a deferred answer, if the host gave one.
pub fn ticket(ext: &Extensions) -> Option<u64> {
    known(ext).find_map(|e| match e {
        Extension::Ticket(t) => Some(*t),
        _ => None,
    })
}

/// The stream name a grant renames to (since v2.3).
pub fn rename(ext: &Extensions) -> Option<&str> {
    known(ext).find_map(|e| match e {
        Extension::Rename(n) => Some(n.as_str()),
        _ => None,
    })
}

/// Whether a grant lets the user record, when it says (since v2.3).
pub fn may_record(ext: &Extensions) -> Option<bool> {
    known(ext).find_map(|e| match e {
        Extension::MayRecord(b) => Some(*b),
        _ => None,
    })
}
