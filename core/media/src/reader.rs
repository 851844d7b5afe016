//! A bounds-checked big-endian cursor over a byte slice, shared by every decoder.
//!
//! All reads return [`Eof`] instead of panicking, so decoders can turn a short input into their
//! own "truncated" error with `?`.

/// Not enough bytes: `needed` more were required at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Eof {
    pub offset: usize,
    pub needed: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn peek_u8(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Eof> {
        let end = self.pos.checked_add(n).ok_or(Eof {
            offset: self.pos,
            needed: n,
        })?;
        match self.data.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(Eof {
                offset: self.pos,
                needed: n,
            }),
        }
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Eof> {
        let s = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, Eof> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16_be(&mut self) -> Result<u16, Eof> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn i16_be(&mut self) -> Result<i16, Eof> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub fn u24_be(&mut self) -> Result<u32, Eof> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    pub fn u32_be(&mut self) -> Result<u32, Eof> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u32_le(&mut self) -> Result<u32, Eof> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn f64_be(&mut self) -> Result<f64, Eof> {
        Ok(f64::from_be_bytes(self.array()?))
    }
}

/// Writes the low 24 bits of `v` big-endian.
pub(crate) fn put_u24_be(out: &mut Vec<u8>, v: u32) {
    let b = v.to_be_bytes();
    out.extend_from_slice(&[b[1], b[2], b[3]]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_reports_eof() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u24_be(), Ok(0x020304));
        assert_eq!(
            r.u16_be(),
            Err(Eof {
                offset: 4,
                needed: 2
            })
        );
        assert_eq!(r.pos(), 4);
        assert!(r.bytes(usize::MAX).is_err());
        assert_eq!(r.u8(), Ok(5));
        assert!(r.is_empty());
    }
}
