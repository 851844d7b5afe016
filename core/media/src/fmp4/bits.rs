//! A bit reader over a NAL unit's payload (emulation prevention bytes removed) or an AV1 OBU,
//! with the Exp-Golomb codes of H.264 and HEVC. Every read is checked: `None` past the end.

pub struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    /// Plain bytes (an AV1 OBU payload).
    pub fn new(data: &[u8]) -> Self {
        Self {
            data: data.to_vec(),
            pos: 0,
        }
    }

    /// A NAL unit's payload: every `00 00 03` loses its `03`.
    pub fn rbsp(nal: &[u8]) -> Self {
        let mut data = Vec::with_capacity(nal.len());
        let mut zeros = 0;
        for &b in nal {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Self { data, pos: 0 }
    }

    pub fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    /// `n` bits (at most 32), most significant first.
    pub fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v: u32 = 0;
        for _ in 0..n.min(32) {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.pos = self.pos.checked_add(n)?;
        (self.pos <= self.data.len() * 8).then_some(())
    }

    /// ue(v): unsigned Exp-Golomb (at most 31 leading zeros).
    pub fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    /// se(v): signed Exp-Golomb.
    pub fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let mag = k.div_ceil(2) as i32;
        Some(if k % 2 == 1 { mag } else { -mag })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golomb_and_emulation_prevention() {
        // 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3
        let mut b = Bits::new(&[0b1010_0110, 0b0100_0000]);
        assert_eq!(b.ue(), Some(0));
        assert_eq!(b.ue(), Some(1));
        assert_eq!(b.ue(), Some(2));
        assert_eq!(b.ue(), Some(3));
        let mut r = Bits::rbsp(&[0, 0, 3, 1, 0xFF]);
        assert_eq!(r.bits(24), Some(1));
        assert_eq!(r.bits(8), Some(0xFF));
        assert_eq!(r.bit(), None);
        assert_eq!(Bits::new(&[0, 0, 0, 0, 0]).ue(), None);
        let mut s = Bits::new(&[0b0100_1100]);
        assert_eq!((s.se(), s.se()), (Some(1), Some(-1)));
    }
}
