//! A picture's width and height, read from the codec's own configuration (an H.264 or HEVC
//! sequence parameter set, an AV1 sequence header), for the sample entry and track header of
//! an init segment. `None` when the data is damaged or uses what this reader does not know.

use super::bits::Bits;

/// Width and height of an H.264 SPS NAL unit (with its one-byte header).
pub fn h264_sps(nal: &[u8]) -> Option<(u32, u32)> {
    let mut b = Bits::rbsp(nal.get(1..)?);
    let profile = b.bits(8)?;
    b.skip(16)?; // constraint flags, level
    b.ue()?; // seq_parameter_set_id
    let mut chroma = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma = b.ue()?;
        if chroma == 3 {
            b.bit()?; // separate_colour_plane_flag
        }
        b.ue()?; // bit_depth_luma_minus8
        b.ue()?; // bit_depth_chroma_minus8
        b.bit()?; // qpprime_y_zero_transform_bypass_flag
        if b.bit()? == 1 {
            let lists = if chroma == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + b.se()? + 256).rem_euclid(256);
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    b.ue()?; // log2_max_frame_num_minus4
    match b.ue()? {
        0 => {
            b.ue()?;
        }
        1 => {
            b.bit()?;
            b.se()?;
            b.se()?;
            let n = b.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                b.se()?;
            }
        }
        _ => {}
    }
    b.ue()?; // max_num_ref_frames
    b.bit()?; // gaps_in_frame_num_value_allowed_flag
    let w_mbs = b.ue()?.checked_add(1)?;
    let h_units = b.ue()?.checked_add(1)?;
    let frame_mbs_only = b.bit()?;
    if frame_mbs_only == 0 {
        b.bit()?; // mb_adaptive_frame_field_flag
    }
    b.bit()?; // direct_8x8_inference_flag
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if b.bit()? == 1 {
        (cl, cr, ct, cb) = (b.ue()?, b.ue()?, b.ue()?, b.ue()?);
    }
    let (sub_w, sub_h) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let field = 2 - frame_mbs_only;
    let width = w_mbs
        .checked_mul(16)?
        .checked_sub((cl + cr).checked_mul(sub_w)?)?;
    let height = h_units
        .checked_mul(16 * field)?
        .checked_sub((ct + cb).checked_mul(sub_h * field)?)?;
    Some((width, height))
}

/// Width and height of an HEVC SPS NAL unit (with its two-byte header).
pub fn hevc_sps(nal: &[u8]) -> Option<(u32, u32)> {
    let mut b = Bits::rbsp(nal.get(2..)?);
    b.skip(4)?; // sps_video_parameter_set_id
    let sub_layers = b.bits(3)?; // sps_max_sub_layers_minus1
    b.skip(1)?; // sps_temporal_id_nesting_flag
                // profile_tier_level(1, sub_layers)
    b.skip(88 + 8)?;
    let mut present = Vec::new();
    for _ in 0..sub_layers {
        present.push((b.bit()?, b.bit()?));
    }
    if sub_layers > 0 {
        b.skip(2 * (8 - sub_layers as usize))?;
    }
    for (profile, level) in present {
        if profile == 1 {
            b.skip(88)?;
        }
        if level == 1 {
            b.skip(8)?;
        }
    }
    b.ue()?; // sps_seq_parameter_set_id
    let chroma = b.ue()?;
    if chroma == 3 {
        b.bit()?;
    }
    let width = b.ue()?;
    let height = b.ue()?;
    if b.bit()? == 1 {
        let (l, r, t, bo) = (b.ue()?, b.ue()?, b.ue()?, b.ue()?);
        let (sub_w, sub_h) = match chroma {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        return Some((
            width.checked_sub((l + r).checked_mul(sub_w)?)?,
            height.checked_sub((t + bo).checked_mul(sub_h)?)?,
        ));
    }
    Some((width, height))
}

/// The SPS NAL units of an HEVCDecoderConfigurationRecord.
pub fn hevc_record_sps(rec: &[u8]) -> Option<(u32, u32)> {
    let arrays = *rec.get(22)?;
    let mut r = rec.get(23..)?;
    for _ in 0..arrays {
        let nal_type = r.first()? & 0x3F;
        let count = u16::from_be_bytes([*r.get(1)?, *r.get(2)?]);
        r = r.get(3..)?;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([*r.first()?, *r.get(1)?]));
            let nal = r.get(2..2 + len)?;
            if nal_type == 33 {
                return hevc_sps(nal);
            }
            r = r.get(2 + len..)?;
        }
    }
    None
}

/// AV1 open bitstream units: (type, the whole unit, its payload).
pub fn obus(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8], &[u8])> {
    std::iter::from_fn(move || {
        let header = *data.first()?;
        let kind = (header >> 3) & 0x0F;
        let mut at = if header & 0x04 != 0 { 2 } else { 1 };
        let size = if header & 0x02 != 0 {
            let mut v: u64 = 0;
            for i in 0..8 {
                let byte = *data.get(at)?;
                at += 1;
                v |= u64::from(byte & 0x7F) << (7 * i);
                if byte & 0x80 == 0 {
                    break;
                }
            }
            usize::try_from(v).ok()?
        } else {
            data.len().checked_sub(at)?
        };
        let end = at.checked_add(size)?;
        let whole = data.get(..end)?;
        let payload = data.get(at..end)?;
        data = data.get(end..)?;
        Some((kind, whole, payload))
    })
}

pub const OBU_SEQUENCE_HEADER: u8 = 1;
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;

/// Maximum width and height of an AV1 sequence header OBU's payload.
pub fn av1_sequence_header(payload: &[u8]) -> Option<(u32, u32)> {
    let mut b = Bits::new(payload);
    b.skip(3)?; // seq_profile
    b.skip(1)?; // still_picture
    let reduced = b.bit()?;
    if reduced == 1 {
        b.skip(5)?;
    } else {
        let mut decoder_model = 0;
        let mut delay_len = 0;
        if b.bit()? == 1 {
            // timing_info
            b.skip(64)?;
            if b.bit()? == 1 {
                // num_ticks_per_picture_minus_1: uvlc
                let mut zeros = 0;
                while b.bit()? == 0 {
                    zeros += 1;
                    if zeros >= 32 {
                        return None;
                    }
                }
                b.skip(zeros)?;
            }
            decoder_model = b.bit()?;
            if decoder_model == 1 {
                delay_len = b.bits(5)? as usize + 1;
                b.skip(32 + 5 + 5)?;
            }
        }
        let display_delay = b.bit()?;
        let points = b.bits(5)? + 1;
        for _ in 0..points {
            b.skip(12)?; // operating_point_idc
            if b.bits(5)? > 7 {
                b.skip(1)?; // seq_tier
            }
            if decoder_model == 1 && b.bit()? == 1 {
                b.skip(2 * delay_len + 1)?;
            }
            if display_delay == 1 && b.bit()? == 1 {
                b.skip(4)?;
            }
        }
    }
    let wbits = b.bits(4)? + 1;
    let hbits = b.bits(4)? + 1;
    let w = b.bits(wbits)?.checked_add(1)?;
    let h = b.bits(hbits)?.checked_add(1)?;
    Some((w, h))
}

/// Width and height from an AV1CodecConfigurationRecord's sequence header.
pub fn av1_record(rec: &[u8]) -> Option<(u32, u32)> {
    obus(rec.get(4..)?)
        .find(|(kind, _, _)| *kind == OBU_SEQUENCE_HEADER)
        .and_then(|(_, _, payload)| av1_sequence_header(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Parameter sets as libx264, libx265 and libsvtav1 wrote them for ffmpeg's testsrc.
    #[test]
    fn h264_sps_with_cropping_and_in_4_4_4() {
        let sps = hex("6764000cacd941419f9f011000000300100000030320f1429960");
        assert_eq!(h264_sps(&sps), Some((320, 180)));
        let sps444 = hex("67f4000d919b28283f6022000003000200000300641e28532c");
        assert_eq!(h264_sps(&sps444), Some((320, 240)));
        assert_eq!(h264_sps(&sps[..6]), None);
    }

    #[test]
    fn hevc_sps_with_cropping() {
        let sps = hex(concat!(
            "42010101600000030090000003000003003ca00a080b9f796566924caf01",
            "6808000003000800000300c840"
        ));
        assert_eq!(hevc_sps(&sps), Some((320, 180)));
        let sps240 = hex(concat!(
            "4201010408000003009e0800000300003c90014101e2cb2b349265780b70",
            "20200040000003004000000642"
        ));
        assert_eq!(hevc_sps(&sps240), Some((320, 240)));
        assert_eq!(hevc_sps(&sps240[..12]), None);
    }

    #[test]
    fn av1_sequence_headers() {
        assert_eq!(
            av1_sequence_header(&hex("0200000d6627fb38d5f30080")),
            Some((640, 360))
        );
        assert_eq!(
            av1_sequence_header(&hex("0200000561e7fde357cc02")),
            Some((320, 240))
        );
        let mut rec = hex("81000c00");
        rec.extend(hex("0a0b0200000561e7fde357cc02"));
        assert_eq!(av1_record(&rec), Some((320, 240)));
    }

    #[test]
    fn obus_walk_and_stop_at_damage() {
        // A temporal delimiter (size 0), then a padding OBU of two bytes.
        let data = [0x12, 0x00, 0x7A, 0x02, 0xAA, 0xBB];
        let v: Vec<_> = obus(&data).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].0, OBU_TEMPORAL_DELIMITER);
        assert_eq!(v[1].2, &[0xAA, 0xBB]);
        assert_eq!(obus(&[0x7A, 0x09, 1]).count(), 0);
    }
}
