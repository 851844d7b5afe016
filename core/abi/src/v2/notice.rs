//! Since v2.3: notices of what happens on the server (a publication started or ended, a
//! viewer came or left, a recording was finished), for observers: plugins that tell other
//! systems (an HTTP backend, a message queue) without being on any media path.
//!
//! The host sends each notice to every observer on a thread of that observer's own, through a
//! bounded queue: an observer may block (retry a call with backoff) and never delays media or
//! another observer. When its queue is full the host drops the notice and counts it.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RString},
    StableAbi,
};

use super::{Caller, Extensions, PluginError};

/// What happened.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 2], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum NoticeKind {
    /// A publisher's stream was accepted (it may publish now).
    PublishStart,
    /// That publisher stopped or left.
    PublishEnd,
    /// A viewer began to play a stream.
    PlayStart,
    /// That viewer stopped or left.
    PlayEnd,
    /// A recorder finished a file (`path`).
    RecordDone,
}

impl NoticeKind {
    /// The name backends see (`publish`, `publish_done`, `play`, `play_done`, `record_done`:
    /// nginx-rtmp's and SRS's words).
    pub fn name(self) -> &'static str {
        match self {
            NoticeKind::PublishStart => "publish",
            NoticeKind::PublishEnd => "publish_done",
            NoticeKind::PlayStart => "play",
            NoticeKind::PlayEnd => "play_done",
            NoticeKind::RecordDone => "record_done",
        }
    }
}

/// One notice.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct Notice {
    pub kind: NoticeKind_NE,
    /// The protocol of the connection (`rtmp`, `fstream`, `http`), or of the publisher for
    /// `RecordDone`.
    pub protocol: RString,
    pub app: RString,
    pub name: RString,
    /// The user name the client gave, empty when none.
    pub user: RString,
    /// The client's query string (`?a=b` without the `?`) with credentials redacted.
    pub query: RString,
    /// The connection (zero for `RecordDone`, which is about a file).
    pub caller: Caller,
    /// For `RecordDone`: the file, relative to the server root when under it.
    pub path: RString,
    /// For the `..End` kinds and `RecordDone`: bytes the connection carried (in for a
    /// publisher, out for a viewer; the file's size).
    pub bytes: u64,
    /// For the `..End` kinds and `RecordDone`: how long it lasted, in milliseconds.
    pub duration_ms: u64,
    /// Wall-clock time of the event, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    pub ext: Extensions,
}

impl Notice {
    /// The kind, if this build knows it.
    pub fn kind(&self) -> Option<NoticeKind> {
        self.kind.as_enum().ok().copied()
    }
}

/// The observer kind. `notice` runs on a host thread of its own; it may block.
#[sabi_trait]
pub trait Observer: Send + Sync {
    #[sabi(last_prefix_field)]
    fn notice(&self, notice: &Notice) -> RResult<(), PluginError>;
}

pub type ObserverBox = Observer_TO<'static, RBox<()>>;
