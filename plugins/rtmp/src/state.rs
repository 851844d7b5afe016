//! The state of one connection's NetConnection and NetStreams, and what it waits for.

use abi_stable::std_types::RVec;
use fstream_abi::{ClientCommand, RecordMode, SubscribeOptions};

/// The NetConnection's state.
pub(crate) enum Conn {
    /// No `connect` yet.
    New,
    /// `connect` is with the app handler.
    Connecting,
    Connected(Connected),
    /// Refused, or over: the app handler was told (or never needed to be).
    Done,
}

pub(crate) struct Connected {
    pub app: String,
    /// The query string of the connect's app (`rtmp://host/app?token=x/...`), undecoded.
    pub app_query: String,
}

/// A stream made by `createStream`.
pub(crate) struct NetStream {
    pub role: Role,
    pub receive_audio: bool,
    pub receive_video: bool,
    /// The client's buffer length (User Control SetBufferLength), for recorded sources.
    pub buffer_ms: Option<u32>,
}

impl Default for NetStream {
    fn default() -> Self {
        Self {
            role: Role::Idle,
            receive_audio: true,
            receive_video: true,
            buffer_ms: None,
        }
    }
}

pub(crate) enum Role {
    Idle,
    Publishing(Publishing),
    Playing(Playing),
}

pub(crate) struct Publishing {
    pub publication: u32,
    /// `APP/NAME`.
    pub stream: String,
    /// The name the client used (for status descriptions).
    pub name: String,
    /// The hub accepted it; media flows.
    pub started: bool,
}

pub(crate) struct Playing {
    pub subscription: u32,
    pub stream: String,
    pub name: String,
    pub options: SubscribeOptions,
    /// The player saw no publisher (yet, or any more): tell it when one starts.
    pub notify_on_start: bool,
    /// A publisher is live.
    pub live: bool,
    /// A recorded source (VOD) is playing.
    pub recorded: bool,
}

/// What the session waits for before decoding more.
pub(crate) enum Wait {
    App {
        request: u64,
        call: Pending,
    },
    PublishResult {
        publication: u32,
        msid: u32,
        commands: RVec<ClientCommand>,
        /// The client asked for a recording the app handler did not allow: once publishing,
        /// it is told `NetStream.Record.NoAccess`.
        record_refused: bool,
    },
    /// A play the app handler accepted, waiting for the first status of its probe.
    Probe(Probe),
    /// A client's own command, with the app handler.
    Command {
        request: u64,
        txn: f64,
        name: String,
    },
}

impl Wait {
    pub fn what(&self) -> &'static str {
        match self {
            Wait::App { .. } => "the app handler",
            Wait::PublishResult { .. } => "the hub",
            Wait::Probe(_) => "the stream's first status",
            Wait::Command { .. } => "the app handler's answer to a command",
        }
    }
}

/// An accepted play before the player is told anything. Its probe subscription (format
/// [`crate::encoder::PROBE_FORMAT`], which makes no bytes) learns whether the stream exists:
/// only then does the player get `Play.Start` and the real subscription, or a refusal alone.
pub(crate) struct Probe {
    /// The probe's subscription id.
    pub subscription: u32,
    pub msid: u32,
    /// `APP/NAME`.
    pub stream: String,
    /// The name the client used.
    pub name: String,
    /// The options of the real subscription.
    pub options: SubscribeOptions,
    /// Send `Play.Reset` before `Play.Start`.
    pub reset: bool,
    /// The app handler's commands for the client, sent after the play's answer.
    pub commands: RVec<ClientCommand>,
}

/// A command that is with the app handler.
pub(crate) enum Pending {
    Connect {
        txn: f64,
        app: String,
        app_query: String,
        object_encoding: f64,
    },
    Publish {
        msid: u32,
        name: String,
        query: String,
        record: RecordMode,
    },
    Play {
        msid: u32,
        name: String,
        query: String,
        start: f64,
        reset: bool,
    },
}
