//! Writing ISO BMFF boxes: a size, a type, and a body that may hold more boxes. The size is
//! patched in when the body is done, so nested boxes are written in one pass.

/// Writes a box of type `kind` whose body `body` writes; returns nothing, grows `out`.
pub fn write_box(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out);
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&size.to_be_bytes());
    }
}

/// A full box: a box whose body starts with a version byte and 24 bits of flags.
pub fn write_full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    write_box(out, kind, |out| {
        out.push(version);
        out.extend_from_slice(&flags.to_be_bytes()[1..]);
        body(out);
    });
}

pub fn u16be(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn u32be(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn u64be(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The unity matrix of `mvhd` and `tkhd` (16.16 and 2.30 fixed point).
pub fn unity_matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32be(out, v);
    }
}

/// A box read back: its type and body (for tests and checks of what was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxRef<'a> {
    pub kind: [u8; 4],
    pub body: &'a [u8],
}

/// The boxes one after another in `data`; stops at the first that does not fit (32-bit sizes
/// only, which is all this module writes).
pub fn read_boxes(mut data: &[u8]) -> Vec<BoxRef<'_>> {
    let mut v = Vec::new();
    loop {
        let head = data.get(..8).and_then(|h| <[u8; 8]>::try_from(h).ok());
        let Some([s0, s1, s2, s3, k0, k1, k2, k3]) = head else {
            break;
        };
        let size = u32::from_be_bytes([s0, s1, s2, s3]) as usize;
        let (Some(body), Some(rest)) = (data.get(8..size), data.get(size..)) else {
            break;
        };
        v.push(BoxRef {
            kind: [k0, k1, k2, k3],
            body,
        });
        data = rest;
    }
    v
}

/// The first box of type `kind` at the top level of `data`.
pub fn find_box<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    read_boxes(data)
        .into_iter()
        .find(|b| &b.kind == kind)
        .map(|b| b.body)
}
