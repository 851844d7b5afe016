//! Sinks: consumers of a stream's packets (e.g. the FLV recorder).

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RString},
    StableAbi,
};

use super::{Extensions, MediaPacket, PluginError, RecordMode};

/// A publication that just produced its first media packet.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct StreamStart {
    /// `APP/NAME`.
    pub stream: RString,
    pub app: RString,
    pub name: RString,
    pub record: RecordMode,
    pub query: RString,
    /// The protocol of the publisher.
    pub protocol: RString,
    /// Wall-clock time of the start, in milliseconds since the Unix epoch (for file names).
    pub unix_ms: u64,
    pub ext: Extensions,
}

/// One stream's consumer. Runs on a host-managed thread of its own, fed through a bounded
/// queue, so it may block on disk without delaying anyone. When the queue overflows (a very
/// slow disk) the host drops packets and then skips video until the next keyframe, so what
/// the sink gets stays decodable. After `packet` returns an error the sink is stopped and
/// `finish` is not called.
#[sabi_trait]
pub trait Sink: Send {
    fn packet(&mut self, packet: &MediaPacket) -> RResult<(), PluginError>;
    /// The publication ended (or the host is shutting down): finish the file.
    #[sabi(last_prefix_field)]
    fn finish(&mut self) -> RResult<(), PluginError>;
}

pub type SinkBox = Sink_TO<'static, RBox<()>>;

/// The sink kind: decides per publication whether to consume it.
#[sabi_trait]
pub trait SinkFactory: Send + Sync {
    /// Called on the publisher's packet path with the stream's lock held: decide quickly and
    /// do no I/O here (create files in the sink's first `packet` call, on its own thread).
    #[sabi(last_prefix_field)]
    fn open(&self, start: &StreamStart) -> RResult<ROption<SinkBox>, PluginError>;
}

pub type SinkFactoryBox = SinkFactory_TO<'static, RBox<()>>;
