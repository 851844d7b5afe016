//! HMAC-SHA256 digests of the "complex" RTMP handshake and the well-known Adobe keys.
//!
//! A 1536-byte C1/S1 block carries a 32-byte digest at an offset derived from four bytes of the
//! block itself. The digest is HMAC-SHA256 over the block without those 32 bytes.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::HANDSHAKE_SIZE;

/// Length of an HMAC-SHA256 digest.
pub const DIGEST_LEN: usize = 32;

/// "Genuine Adobe Flash Player 001" followed by 32 constant bytes. Clients sign C1 with the
/// first 30 bytes.
pub const GENUINE_FP_KEY: [u8; 62] = *b"Genuine Adobe Flash Player 001\
\xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\
\x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";

/// "Genuine Adobe Flash Media Server 001" followed by the same 32 constant bytes. Servers sign S1
/// with the first 36 bytes and derive the S2 key with all 68.
pub const GENUINE_FMS_KEY: [u8; 68] = *b"Genuine Adobe Flash Media Server 001\
\xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\
\x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";

/// Bytes of [`GENUINE_FP_KEY`] used to sign C1.
pub const GENUINE_FP_KEY_SHORT_LEN: usize = 30;
/// Bytes of [`GENUINE_FMS_KEY`] used to sign S1.
pub const GENUINE_FMS_KEY_SHORT_LEN: usize = 36;

/// Where the digest sits in a C1/S1 block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestScheme {
    /// Offset = (sum of bytes 8..12) % 728 + 12 (Flash Player 9 style).
    Scheme0,
    /// Offset = (sum of bytes 772..776) % 728 + 776 (Flash Player 10 style).
    Scheme1,
}

impl DigestScheme {
    /// Digest offset in `block`; always leaves room for 32 bytes inside the block.
    pub fn digest_offset(self, block: &[u8; HANDSHAKE_SIZE]) -> usize {
        let (base, start) = match self {
            DigestScheme::Scheme0 => (8, 12),
            DigestScheme::Scheme1 => (772, 776),
        };
        let sum: usize = block
            .iter()
            .skip(base)
            .take(4)
            .map(|&b| usize::from(b))
            .sum();
        sum % 728 + start
    }
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return [0; DIGEST_LEN];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The digest `block` should carry for `scheme` under `key` (computed over the other 1504 bytes).
pub fn compute_digest(
    block: &[u8; HANDSHAKE_SIZE],
    scheme: DigestScheme,
    key: &[u8],
) -> [u8; DIGEST_LEN] {
    let off = scheme.digest_offset(block);
    let before = block.get(..off).unwrap_or_default();
    let after = block.get(off + DIGEST_LEN..).unwrap_or_default();
    hmac_sha256(key, &[before, after])
}

/// Writes the digest for `scheme` into `block` and returns it.
pub fn imprint_digest(
    block: &mut [u8; HANDSHAKE_SIZE],
    scheme: DigestScheme,
    key: &[u8],
) -> [u8; DIGEST_LEN] {
    let d = compute_digest(block, scheme, key);
    let off = scheme.digest_offset(block);
    if let Some(dst) = block.get_mut(off..off + DIGEST_LEN) {
        dst.copy_from_slice(&d);
    }
    d
}

/// Looks for a valid digest under `key`, scheme 0 first, and returns the scheme and digest.
pub fn find_digest(
    block: &[u8; HANDSHAKE_SIZE],
    key: &[u8],
) -> Option<(DigestScheme, [u8; DIGEST_LEN])> {
    [DigestScheme::Scheme0, DigestScheme::Scheme1]
        .into_iter()
        .find_map(|scheme| {
            let off = scheme.digest_offset(block);
            let found = block.get(off..off + DIGEST_LEN)?;
            let expected = compute_digest(block, scheme, key);
            (found == expected).then_some((scheme, expected))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_expected_prefixes() {
        assert_eq!(&GENUINE_FP_KEY[..30], b"Genuine Adobe Flash Player 001");
        assert_eq!(
            &GENUINE_FMS_KEY[..36],
            b"Genuine Adobe Flash Media Server 001"
        );
        assert_eq!(GENUINE_FP_KEY[30..], GENUINE_FMS_KEY[36..]);
        assert_eq!(GENUINE_FMS_KEY[67], 0xAE);
    }

    #[test]
    fn hmac_known_vector() {
        // RFC 4231 test case 2.
        let d = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(d[..8], [0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e]);
    }

    #[test]
    fn offsets_stay_in_range() {
        let max = [0xFFu8; HANDSHAKE_SIZE];
        assert_eq!(DigestScheme::Scheme0.digest_offset(&max), 1020 % 728 + 12);
        assert!(DigestScheme::Scheme0.digest_offset(&max) + DIGEST_LEN <= 772);
        assert!(DigestScheme::Scheme1.digest_offset(&max) + DIGEST_LEN <= HANDSHAKE_SIZE);
        let zero = [0u8; HANDSHAKE_SIZE];
        assert_eq!(DigestScheme::Scheme0.digest_offset(&zero), 12);
        assert_eq!(DigestScheme::Scheme1.digest_offset(&zero), 776);
    }

    #[test]
    fn imprinted_digest_validates_and_tampering_breaks_it() {
        let key = &GENUINE_FP_KEY[..GENUINE_FP_KEY_SHORT_LEN];
        for scheme in [DigestScheme::Scheme0, DigestScheme::Scheme1] {
            let mut block = [0u8; HANDSHAKE_SIZE];
            for (i, b) in block.iter_mut().enumerate() {
                *b = (i * 7 + 3) as u8;
            }
            let d = imprint_digest(&mut block, scheme, key);
            assert_eq!(find_digest(&block, key), Some((scheme, d)));
            assert_eq!(find_digest(&block, b"other key"), None);
            block[1535 - 10] ^= 1;
            block[20] ^= 1;
            assert_eq!(find_digest(&block, key), None);
        }
    }
}
