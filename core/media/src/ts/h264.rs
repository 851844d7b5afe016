//! H.264 as FLV carries it (AVCC: a decoder configuration record, then NAL units with length
//! prefixes) into Annex B as MPEG-TS carries it (start codes, an access unit delimiter, and the
//! parameter sets before every keyframe).

const START: [u8; 4] = [0, 0, 0, 1];
/// An access unit delimiter (primary_pic_type 7: any slice type).
const AUD: [u8; 2] = [0x09, 0xF0];
const NAL_AUD: u8 = 9;

/// The parameter sets and NAL length size of an AVCDecoderConfigurationRecord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    pub length_size: usize,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

impl AvcConfig {
    /// Parses a record; `None` if it is malformed.
    pub fn parse(rec: &[u8]) -> Option<Self> {
        let mut r = rec.get(5..)?;
        let length_size = usize::from(rec.get(4)? & 0x03) + 1;
        let sets = |r: &mut &[u8], count: usize| -> Option<Vec<Vec<u8>>> {
            let mut v = Vec::new();
            for _ in 0..count {
                let len = usize::from(u16::from_be_bytes([*r.first()?, *r.get(1)?]));
                v.push(r.get(2..2 + len)?.to_vec());
                *r = r.get(2 + len..)?;
            }
            Some(v)
        };
        let nsps = usize::from(*r.first()? & 0x1F);
        r = r.get(1..)?;
        let sps = sets(&mut r, nsps)?;
        let npps = usize::from(*r.first()?);
        r = r.get(1..)?;
        let pps = sets(&mut r, npps)?;
        Some(Self {
            length_size,
            sps,
            pps,
        })
    }
}

/// One access unit (the NAL units of one FLV video tag) as Annex B; the parameter sets go first
/// when `keyframe`. `None` if a length prefix runs past the data.
pub fn to_annex_b(config: &AvcConfig, mut nalus: &[u8], keyframe: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(nalus.len() + 64);
    out.extend_from_slice(&START);
    out.extend_from_slice(&AUD);
    if keyframe {
        for ps in config.sps.iter().chain(&config.pps) {
            out.extend_from_slice(&START);
            out.extend_from_slice(ps);
        }
    }
    let n = config.length_size;
    while !nalus.is_empty() {
        let len = nalus
            .get(..n)?
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let nal = nalus.get(n..n + len)?;
        nalus = nalus.get(n + len..)?;
        if nal.first().is_some_and(|h| h & 0x1F == NAL_AUD) {
            continue;
        }
        out.extend_from_slice(&START);
        out.extend_from_slice(nal);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_and_an_access_unit() {
        let rec = [
            1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 9,
        ];
        let c = AvcConfig::parse(&rec).unwrap();
        assert_eq!(c.length_size, 4);
        assert_eq!(c.sps, vec![vec![0x67, 1, 2]]);
        assert_eq!(c.pps, vec![vec![0x68, 9]]);
        let au = [
            0, 0, 0, 2, 0x65, 7, 0, 0, 0, 2, 0x09, 0x10, 0, 0, 0, 1, 0x41,
        ];
        let b = to_annex_b(&c, &au, true).unwrap();
        assert_eq!(
            b,
            [
                0, 0, 0, 1, 9, 0xF0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 9, 0, 0, 0, 1, 0x65,
                7, 0, 0, 0, 1, 0x41
            ]
        );
        assert!(to_annex_b(&c, &[0, 0, 0, 9, 1], false).is_none());
        assert!(AvcConfig::parse(&rec[..9]).is_none());
    }
}
