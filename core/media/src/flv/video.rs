//! Classification of FLV video tag data / RTMP video message payloads (legacy and Enhanced RTMP).

/// Legacy FLV video codec ids (low nibble of the first byte).
pub mod codec_id {
    pub const SORENSON_H263: u8 = 2;
    pub const SCREEN_VIDEO: u8 = 3;
    pub const VP6: u8 = 4;
    pub const VP6_ALPHA: u8 = 5;
    pub const SCREEN_VIDEO_2: u8 = 6;
    pub const AVC: u8 = 7;
    /// Non-standard HEVC id used by some pre-Enhanced-RTMP servers and encoders; same layout as AVC.
    pub const HEVC_LEGACY: u8 = 12;
}

/// Enhanced RTMP FourCC for HEVC.
pub const FOURCC_HEVC: [u8; 4] = *b"hvc1";
/// Enhanced RTMP FourCC for AV1.
pub const FOURCC_AV1: [u8; 4] = *b"av01";
/// Enhanced RTMP FourCC for VP9.
pub const FOURCC_VP9: [u8; 4] = *b"vp09";

const FRAME_KEY: u8 = 1;
const FRAME_COMMAND: u8 = 5;

/// The codec a video tag declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// A legacy codec id (see [`codec_id`]).
    Legacy(u8),
    /// An Enhanced RTMP FourCC such as [`FOURCC_HEVC`].
    FourCc([u8; 4]),
    /// Enhanced multitrack / ModEx packets, whose codec is not at a fixed position.
    Unknown,
}

/// What the tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPacket {
    /// Decoder configuration (AVC/HEVC sequence header, Enhanced SequenceStart).
    SequenceStart,
    /// Coded frame data.
    CodedFrame,
    SequenceEnd,
    /// Enhanced RTMP metadata packet (e.g. HDR info).
    Metadata,
    /// Video info / command frame (frame type 5).
    Command,
    /// Any other Enhanced packet type (multitrack, ModEx, reserved).
    Other(u8),
}

/// The result of [`classify_video`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTagInfo {
    /// 1 key, 2 inter, 3 disposable inter, 4 generated key, 5 command.
    pub frame_type: u8,
    pub codec: VideoCodec,
    /// Enhanced RTMP (IsExHeader bit set).
    pub enhanced: bool,
    pub packet: VideoPacket,
}

impl VideoTagInfo {
    /// A key frame's coded data: where a player may start decoding.
    pub fn is_keyframe(&self) -> bool {
        self.frame_type == FRAME_KEY && self.packet == VideoPacket::CodedFrame
    }

    /// Decoder configuration that late joiners need before any frame.
    pub fn is_sequence_header(&self) -> bool {
        self.packet == VideoPacket::SequenceStart
    }
}

/// Classifies video tag data; `None` when it is too short to tell.
pub fn classify_video(data: &[u8]) -> Option<VideoTagInfo> {
    let b0 = *data.first()?;
    if b0 & 0x80 != 0 {
        let frame_type = (b0 >> 4) & 0x07;
        let packet_type = b0 & 0x0F;
        // 6 = Multitrack, 7 = ModEx: the FourCC is not right after the first byte.
        let codec = if matches!(packet_type, 6 | 7) {
            VideoCodec::Unknown
        } else {
            let cc: [u8; 4] = data.get(1..5)?.try_into().ok()?;
            VideoCodec::FourCc(cc)
        };
        let packet = match packet_type {
            4 => VideoPacket::Metadata,
            _ if frame_type == FRAME_COMMAND => VideoPacket::Command,
            0 | 5 => VideoPacket::SequenceStart,
            1 | 3 => VideoPacket::CodedFrame,
            2 => VideoPacket::SequenceEnd,
            other => VideoPacket::Other(other),
        };
        return Some(VideoTagInfo {
            frame_type,
            codec,
            enhanced: true,
            packet,
        });
    }
    let frame_type = b0 >> 4;
    let id = b0 & 0x0F;
    let packet = if frame_type == FRAME_COMMAND {
        VideoPacket::Command
    } else if matches!(id, codec_id::AVC | codec_id::HEVC_LEGACY) {
        match *data.get(1)? {
            0 => VideoPacket::SequenceStart,
            1 => VideoPacket::CodedFrame,
            2 => VideoPacket::SequenceEnd,
            other => VideoPacket::Other(other),
        }
    } else {
        VideoPacket::CodedFrame
    };
    Some(VideoTagInfo {
        frame_type,
        codec: VideoCodec::Legacy(id),
        enhanced: false,
        packet,
    })
}

/// True for key frame data (not a sequence header).
pub fn is_video_keyframe(data: &[u8]) -> bool {
    classify_video(data).is_some_and(|i| i.is_keyframe())
}

/// True for AVC/HEVC sequence headers and Enhanced RTMP SequenceStart packets.
pub fn is_video_sequence_header(data: &[u8]) -> bool {
    classify_video(data).is_some_and(|i| i.is_sequence_header())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc() {
        let seq = classify_video(&[0x17, 0x00, 0, 0, 0, 1]).unwrap();
        assert_eq!(seq.codec, VideoCodec::Legacy(codec_id::AVC));
        assert!(seq.is_sequence_header());
        assert!(!seq.is_keyframe());
        assert!(is_video_keyframe(&[0x17, 0x01, 0, 0, 0]));
        assert!(!is_video_keyframe(&[0x27, 0x01, 0, 0, 0]));
        assert!(is_video_sequence_header(&[0x1C, 0x00]));
        assert_eq!(classify_video(&[0x17]), None);
        assert_eq!(classify_video(&[]), None);
        let h263 = classify_video(&[0x12]).unwrap();
        assert!(h263.is_keyframe());
        assert_eq!(
            classify_video(&[0x57, 0x00]).unwrap().packet,
            VideoPacket::Command
        );
    }

    #[test]
    fn enhanced_rtmp() {
        // IsExHeader | key frame (1<<4) | SequenceStart (0), "hvc1"
        let seq = classify_video(&[0x90, b'h', b'v', b'c', b'1', 1, 2]).unwrap();
        assert!(seq.enhanced);
        assert_eq!(seq.codec, VideoCodec::FourCc(FOURCC_HEVC));
        assert!(seq.is_sequence_header());
        // key frame, CodedFrames (1) av01
        assert!(is_video_keyframe(&[0x91, b'a', b'v', b'0', b'1', 0]));
        // key frame, CodedFramesX (3) vp09
        assert!(is_video_keyframe(&[0x93, b'v', b'p', b'0', b'9']));
        // inter frame
        assert!(!is_video_keyframe(&[0xA1, b'h', b'v', b'c', b'1']));
        // truncated FourCC
        assert_eq!(classify_video(&[0x90, b'h', b'v']), None);
        let mt = classify_video(&[0x96, 0]).unwrap();
        assert_eq!(mt.codec, VideoCodec::Unknown);
        assert_eq!(mt.packet, VideoPacket::Other(6));
        assert_eq!(
            classify_video(&[0x94, b'h', b'v', b'c', b'1'])
                .unwrap()
                .packet,
            VideoPacket::Metadata
        );
    }
}
