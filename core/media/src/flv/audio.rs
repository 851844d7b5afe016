//! Classification of FLV audio tag data / RTMP audio message payloads (legacy and Enhanced RTMP).

/// SoundFormat of AAC.
pub const SOUND_FORMAT_AAC: u8 = 10;
/// SoundFormat value that announces an Enhanced RTMP audio header (FourCC follows).
pub const SOUND_FORMAT_EX_HEADER: u8 = 9;

/// The codec an audio tag declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// A legacy SoundFormat (upper nibble of the first byte).
    Legacy(u8),
    /// An Enhanced RTMP FourCC (`mp4a`, `Opus`, `fLaC`, `ac-3`, ...).
    FourCc([u8; 4]),
    /// Enhanced multitrack / ModEx packets.
    Unknown,
}

/// What the tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPacket {
    /// Decoder configuration (AAC AudioSpecificConfig, Enhanced SequenceStart).
    SequenceStart,
    CodedFrame,
    SequenceEnd,
    /// Other Enhanced packet types (multichannel config, multitrack, ModEx).
    Other(u8),
}

/// The result of [`classify_audio`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTagInfo {
    pub codec: AudioCodec,
    pub enhanced: bool,
    pub packet: AudioPacket,
}

impl AudioTagInfo {
    pub fn is_sequence_header(&self) -> bool {
        self.packet == AudioPacket::SequenceStart
    }
}

/// Classifies audio tag data; `None` when it is too short to tell.
pub fn classify_audio(data: &[u8]) -> Option<AudioTagInfo> {
    let b0 = *data.first()?;
    let format = b0 >> 4;
    if format == SOUND_FORMAT_EX_HEADER {
        let packet_type = b0 & 0x0F;
        let codec = if matches!(packet_type, 5 | 6) {
            AudioCodec::Unknown
        } else {
            let cc: [u8; 4] = data.get(1..5)?.try_into().ok()?;
            AudioCodec::FourCc(cc)
        };
        let packet = match packet_type {
            0 => AudioPacket::SequenceStart,
            1 => AudioPacket::CodedFrame,
            2 => AudioPacket::SequenceEnd,
            other => AudioPacket::Other(other),
        };
        return Some(AudioTagInfo {
            codec,
            enhanced: true,
            packet,
        });
    }
    let packet = if format == SOUND_FORMAT_AAC {
        match *data.get(1)? {
            0 => AudioPacket::SequenceStart,
            _ => AudioPacket::CodedFrame,
        }
    } else {
        AudioPacket::CodedFrame
    };
    Some(AudioTagInfo {
        codec: AudioCodec::Legacy(format),
        enhanced: false,
        packet,
    })
}

/// SoundFormat 10 with AACPacketType 0.
pub fn is_aac_sequence_header(data: &[u8]) -> bool {
    matches!(data, [b0, 0, ..] if b0 >> 4 == SOUND_FORMAT_AAC)
}

/// AAC sequence header or Enhanced audio SequenceStart.
pub fn is_audio_sequence_header(data: &[u8]) -> bool {
    classify_audio(data).is_some_and(|i| i.is_sequence_header())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_and_others() {
        assert!(is_aac_sequence_header(&[0xAF, 0x00, 0x12, 0x10]));
        assert!(!is_aac_sequence_header(&[0xAF, 0x01, 0x21]));
        assert!(!is_aac_sequence_header(&[0xAF]));
        assert!(!is_aac_sequence_header(&[0x2F, 0x00]));
        assert_eq!(
            classify_audio(&[0x2F, 0x00]).unwrap(),
            AudioTagInfo {
                codec: AudioCodec::Legacy(2),
                enhanced: false,
                packet: AudioPacket::CodedFrame
            }
        );
        assert_eq!(classify_audio(&[0xAF]), None);
        assert_eq!(classify_audio(&[]), None);
    }

    #[test]
    fn enhanced_audio() {
        let i = classify_audio(&[0x90, b'O', b'p', b'u', b's', 1]).unwrap();
        assert!(i.enhanced && i.is_sequence_header());
        assert_eq!(i.codec, AudioCodec::FourCc(*b"Opus"));
        assert!(is_audio_sequence_header(&[0x90, b'm', b'p', b'4', b'a']));
        assert!(!is_audio_sequence_header(&[0x91, b'm', b'p', b'4', b'a']));
        assert_eq!(classify_audio(&[0x90, b'm']), None);
        assert_eq!(classify_audio(&[0x95]).unwrap().codec, AudioCodec::Unknown);
    }
}
