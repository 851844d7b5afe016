//! Media packets and shared payloads.

use abi_stable::{
    std_types::{RArc, RString, RVec},
    StableAbi,
};

/// Bytes shared between the host and any number of subscribers without copying.
///
/// Cloning a payload bumps a reference count; the bytes are freed by whichever side allocated
/// them, through the `RArc`'s own vtable (plugins are never unloaded, so that is always valid).
pub type Payload = RArc<RVec<u8>>;

/// Makes a payload from a slice, with one copy.
pub fn payload_from(bytes: &[u8]) -> Payload {
    let mut v = RVec::with_capacity(bytes.len());
    // `extend_from_copy_slice` is a memcpy; `extend_from_slice` pushes byte by byte.
    v.extend_from_copy_slice(bytes);
    RArc::new(v)
}

/// Makes a payload from a vector, without copying when the vector was allocated on this side.
pub fn payload_from_vec(bytes: Vec<u8>) -> Payload {
    RArc::new(RVec::from(bytes))
}

/// What a packet carries. The values of audio, video and script match FLV tag types.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Bytes with no media structure (an fstream broadcast of MPEG-TS, H.264 Annex B, ...).
    Raw = 0,
    /// An FLV/RTMP audio tag body.
    Audio = 8,
    /// An FLV/RTMP video tag body.
    Video = 9,
    /// An AMF0 script data body such as `onMetaData`.
    Script = 18,
}

/// Bit flags of [`MediaPacket::flags`].
pub mod flags {
    /// A point where a new subscriber may start: a video keyframe, or any raw packet.
    pub const KEYFRAME: u8 = 1;
    /// A decoder configuration (AVC/HEVC/AV1 sequence header, AAC AudioSpecificConfig).
    pub const SEQUENCE_HEADER: u8 = 2;
    /// Stream metadata (`onMetaData`), kept for late joiners.
    pub const METADATA: u8 = 4;
    /// Can be dropped first under pressure (e.g. disposable inter frames).
    pub const DISPOSABLE: u8 = 8;
}

/// One unit of a stream as the hub sees it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct MediaPacket {
    pub kind: MediaKind,
    /// See [`flags`].
    pub flags: u8,
    /// Milliseconds on the stream's timeline (RTMP/FLV timestamps).
    pub timestamp: u32,
    pub payload: Payload,
}

impl MediaPacket {
    pub fn new(kind: MediaKind, flags: u8, timestamp: u32, payload: Payload) -> Self {
        Self {
            kind,
            flags,
            timestamp,
            payload,
        }
    }
    pub fn raw(payload: Payload) -> Self {
        Self::new(MediaKind::Raw, flags::KEYFRAME, 0, payload)
    }
    pub fn is_keyframe(&self) -> bool {
        self.flags & flags::KEYFRAME != 0
    }
    pub fn is_sequence_header(&self) -> bool {
        self.flags & flags::SEQUENCE_HEADER != 0
    }
    pub fn is_metadata(&self) -> bool {
        self.flags & flags::METADATA != 0
    }
    pub fn len(&self) -> usize {
        self.payload.len()
    }
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }
}

/// What a plugin returns when a call fails.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// The call panicked; the host drops the object it called (session, sink, ...).
    pub panicked: bool,
    pub message: RString,
}

impl PluginError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            panicked: false,
            message: RString::from(message.into()),
        }
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.panicked {
            write!(f, "plugin panicked: {}", self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for PluginError {}
