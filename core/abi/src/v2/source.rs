//! Sources: streams produced on demand (e.g. VOD from FLV files).

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RString},
    StableAbi,
};

use super::{Extensions, MediaPacket, NetAddr, PluginError};

/// A request to open a recorded stream.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct SourceOpen {
    pub app: RString,
    /// The name as the player gave it (validated as a name part by the host).
    pub name: RString,
    pub peer: RString,
    pub peer_addr: NetAddr,
    pub ext: Extensions,
}

#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum SourceError {
    NotFound(RString),
    Failed(PluginError),
}

/// One player's reader. Runs on host-managed blocking threads; the host paces it by timestamps.
#[sabi_trait]
pub trait Source: Send {
    /// The duration in milliseconds, 0 if unknown.
    fn duration_ms(&self) -> u64;
    /// The next packet, or none at the end.
    fn next_packet(&mut self) -> RResult<ROption<MediaPacket>, PluginError>;
    /// Moves to the keyframe at or before `position_ms`; returns where it landed. Packets sent
    /// again after a seek (metadata, sequence headers) must carry the keyframe's timestamp: the
    /// host paces from the first packet it reads after the seek.
    #[sabi(last_prefix_field)]
    fn seek(&mut self, position_ms: u64) -> RResult<u64, PluginError>;
}

pub type SourceBox = Source_TO<'static, RBox<()>>;

/// The source kind.
#[sabi_trait]
pub trait SourceFactory: Send + Sync {
    /// The app whose streams this source serves (e.g. `vod`).
    fn app(&self) -> RString;
    #[sabi(last_prefix_field)]
    fn open(&self, request: &SourceOpen) -> RResult<SourceBox, SourceError_NE>;
}

pub type SourceFactoryBox = SourceFactory_TO<'static, RBox<()>>;
