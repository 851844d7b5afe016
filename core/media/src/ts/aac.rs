//! AAC as FLV carries it (an AudioSpecificConfig, then raw frames) into ADTS frames.

/// What an ADTS header needs from the AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type (2 = AAC LC).
    pub object_type: u8,
    pub frequency_index: u8,
    pub channels: u8,
}

impl AacConfig {
    /// Parses the first two bytes of an AudioSpecificConfig; `None` if too short or if it uses
    /// an escape ADTS cannot express.
    pub fn parse(asc: &[u8]) -> Option<Self> {
        let (a, b) = (*asc.first()?, *asc.get(1)?);
        let object_type = a >> 3;
        let frequency_index = ((a & 0x07) << 1) | (b >> 7);
        let channels = (b >> 3) & 0x0F;
        if object_type == 0 || object_type > 4 || frequency_index > 12 {
            return None;
        }
        Some(Self {
            object_type,
            frequency_index,
            channels,
        })
    }

    /// The sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        const RATES: [u32; 13] = [
            96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
        ];
        RATES
            .get(usize::from(self.frequency_index))
            .copied()
            .unwrap_or(7350)
    }
}

/// A raw AAC frame with its 7-byte ADTS header.
pub fn adts(config: &AacConfig, frame: &[u8]) -> Vec<u8> {
    let len = frame.len() + 7;
    let profile = config.object_type - 1;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[
        0xFF,
        0xF1, // MPEG-4, layer 0, no CRC
        (profile << 6) | (config.frequency_index << 2) | ((config.channels >> 2) & 1),
        ((config.channels & 3) << 6) | ((len >> 11) as u8 & 0x03),
        (len >> 3) as u8,
        (((len & 7) as u8) << 5) | 0x1F,
        0xFC,
    ]);
    out.extend_from_slice(frame);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_44100_stereo() {
        let c = AacConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!((c.object_type, c.frequency_index, c.channels), (2, 4, 2));
        assert_eq!(c.sample_rate(), 44100);
        let f = adts(&c, &[1, 2, 3]);
        assert_eq!(&f[..7], &[0xFF, 0xF1, 0x50, 0x80, 0x01, 0x5F, 0xFC]);
        assert!(AacConfig::parse(&[0x12]).is_none());
    }
}
