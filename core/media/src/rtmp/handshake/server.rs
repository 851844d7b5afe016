//! Server side of the RTMP handshake.

use rand::RngCore;

use super::digest::{
    find_digest, hmac_sha256, imprint_digest, DigestScheme, DIGEST_LEN, GENUINE_FMS_KEY,
    GENUINE_FMS_KEY_SHORT_LEN, GENUINE_FP_KEY, GENUINE_FP_KEY_SHORT_LEN,
};
use super::{HandshakeError, HandshakeStatus, HANDSHAKE_SIZE, RTMP_VERSION};

/// Version we put in a digest S1 (any non-zero value tells the client we speak the digest form).
const SERVER_VERSION: [u8; 4] = [4, 5, 0, 1];

/// Which handshake the client got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// Plain: S1 with a zero version, S2 echoes C1.
    Simple,
    /// Digest handshake, answered with the client's scheme.
    Digest(DigestScheme),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitC0C1,
    AwaitC2,
    Done,
}

/// Sans-IO server handshake: feed received bytes, send what it writes to `out`.
///
/// Flow: C0+C1 in -> S0+S1+S2 out -> C2 in (not checked) -> [`HandshakeStatus::Complete`].
/// Bytes after C2 (the client's first chunks, e.g. `connect`) are kept for
/// [`ServerHandshake::take_leftover`].
#[derive(Debug)]
pub struct ServerHandshake {
    state: State,
    buf: Vec<u8>,
    server_time: u32,
    /// Random bytes for S1 (first half) and S2 (second half), drawn up front so the state
    /// machine itself needs no RNG.
    random: Box<[u8; 2 * HANDSHAKE_SIZE]>,
    kind: Option<HandshakeKind>,
    leftover: Vec<u8>,
}

impl ServerHandshake {
    /// `server_time` is S1's time field (ms since any epoch the server likes); `rng` provides the
    /// S1/S2 random bytes (pass a seeded RNG for reproducible tests).
    pub fn new<R: RngCore + ?Sized>(server_time: u32, rng: &mut R) -> Self {
        let mut random = Box::new([0u8; 2 * HANDSHAKE_SIZE]);
        rng.fill_bytes(&mut random[..]);
        ServerHandshake {
            state: State::AwaitC0C1,
            buf: Vec::with_capacity(1 + HANDSHAKE_SIZE),
            server_time,
            random,
            kind: None,
            leftover: Vec::new(),
        }
    }

    /// The handshake kind, once C1 has been processed.
    pub fn kind(&self) -> Option<HandshakeKind> {
        self.kind
    }

    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes received after C2; call once after [`HandshakeStatus::Complete`] and feed them to the
    /// chunk decoder.
    pub fn take_leftover(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.leftover)
    }

    /// Consumes `input`, appending any reply to `out`.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<HandshakeStatus, HandshakeError> {
        if self.state == State::Done {
            return Err(HandshakeError::AlreadyComplete);
        }
        if self.state == State::AwaitC0C1 && self.buf.is_empty() {
            if let Some(&c0) = input.first() {
                check_version(c0)?;
            }
        }
        self.buf.extend_from_slice(input);
        if self.state == State::AwaitC0C1 {
            let Some(c1) = self
                .buf
                .get(1..1 + HANDSHAKE_SIZE)
                .and_then(|s| <[u8; HANDSHAKE_SIZE]>::try_from(s).ok())
            else {
                return Ok(HandshakeStatus::NeedMore);
            };
            self.reply(&c1, out);
            self.buf.drain(..1 + HANDSHAKE_SIZE);
            self.state = State::AwaitC2;
        }
        if self.buf.len() < HANDSHAKE_SIZE {
            return Ok(HandshakeStatus::NeedMore);
        }
        self.buf.drain(..HANDSHAKE_SIZE);
        self.leftover = std::mem::take(&mut self.buf);
        self.state = State::Done;
        Ok(HandshakeStatus::Complete)
    }

    fn reply(&mut self, c1: &[u8; HANDSHAKE_SIZE], out: &mut Vec<u8>) {
        let (s1_random, s2_random) = self.random.split_at(HANDSHAKE_SIZE);
        let mut s1 = [0u8; HANDSHAKE_SIZE];
        s1.copy_from_slice(s1_random);
        s1[..4].copy_from_slice(&self.server_time.to_be_bytes());

        // A zero version in C1 announces the simple handshake; otherwise look for a digest and
        // fall back to the simple reply when there is none.
        let client_digest = if c1[4..8] == [0, 0, 0, 0] {
            None
        } else {
            find_digest(c1, &GENUINE_FP_KEY[..GENUINE_FP_KEY_SHORT_LEN])
        };

        out.reserve(1 + 2 * HANDSHAKE_SIZE);
        out.push(RTMP_VERSION);
        match client_digest {
            None => {
                s1[4..8].copy_from_slice(&[0, 0, 0, 0]);
                out.extend_from_slice(&s1);
                out.extend_from_slice(c1);
                self.kind = Some(HandshakeKind::Simple);
            }
            Some((scheme, digest)) => {
                s1[4..8].copy_from_slice(&SERVER_VERSION);
                imprint_digest(
                    &mut s1,
                    scheme,
                    &GENUINE_FMS_KEY[..GENUINE_FMS_KEY_SHORT_LEN],
                );
                out.extend_from_slice(&s1);
                let body = s2_random
                    .get(..HANDSHAKE_SIZE - DIGEST_LEN)
                    .unwrap_or_default();
                let key = hmac_sha256(&GENUINE_FMS_KEY, &[&digest]);
                let signature = hmac_sha256(&key, &[body]);
                out.extend_from_slice(body);
                out.extend_from_slice(&signature);
                self.kind = Some(HandshakeKind::Digest(scheme));
            }
        }
    }
}

fn check_version(c0: u8) -> Result<(), HandshakeError> {
    match c0 {
        RTMP_VERSION => Ok(()),
        6 | 8 | 9 => Err(HandshakeError::Encrypted(c0)),
        other => Err(HandshakeError::UnsupportedVersion(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::handshake::{compute_digest, ClientHandshake};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn simple_c1() -> [u8; HANDSHAKE_SIZE] {
        let mut c1 = [0u8; HANDSHAKE_SIZE];
        for (i, b) in c1.iter_mut().enumerate().skip(8) {
            *b = (i % 251) as u8;
        }
        c1[..4].copy_from_slice(&[0, 0, 0, 9]);
        c1
    }

    /// A C1 as Flash Player 9 builds it: non-zero version, FP digest at scheme 0.
    fn flash_c1(scheme: DigestScheme) -> ([u8; HANDSHAKE_SIZE], [u8; DIGEST_LEN]) {
        let mut c1 = simple_c1();
        c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
        let d = imprint_digest(&mut c1, scheme, &GENUINE_FP_KEY[..GENUINE_FP_KEY_SHORT_LEN]);
        (c1, d)
    }

    #[test]
    fn simple_handshake_byte_by_byte_with_leftover() {
        let mut hs = ServerHandshake::new(1234, &mut rng());
        let c1 = simple_c1();
        let mut input = vec![3u8];
        input.extend_from_slice(&c1);
        input.extend_from_slice(&[0xC2; HANDSHAKE_SIZE]);
        input.extend_from_slice(b"first chunk");
        let mut out = Vec::new();
        let mut status = HandshakeStatus::NeedMore;
        for b in &input[..input.len() - 11] {
            assert_eq!(status, HandshakeStatus::NeedMore);
            status = hs.feed(&[*b], &mut out).unwrap();
        }
        assert_eq!(status, HandshakeStatus::Complete);
        assert_eq!(hs.kind(), Some(HandshakeKind::Simple));
        assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE);
        assert_eq!(out[0], 3);
        assert_eq!(&out[1..5], &1234u32.to_be_bytes());
        assert_eq!(&out[5..9], &[0, 0, 0, 0]);
        assert_eq!(&out[1 + HANDSHAKE_SIZE..], &c1[..]);
        assert_eq!(hs.take_leftover(), Vec::<u8>::new());
        assert_eq!(
            hs.feed(b"x", &mut out),
            Err(HandshakeError::AlreadyComplete)
        );

        // All at once: the bytes after C2 come back as leftover.
        let mut hs = ServerHandshake::new(0, &mut rng());
        let mut out = Vec::new();
        assert_eq!(hs.feed(&input, &mut out), Ok(HandshakeStatus::Complete));
        assert!(hs.is_complete());
        assert_eq!(hs.take_leftover(), b"first chunk".to_vec());
    }

    #[test]
    fn digest_handshake_for_both_schemes() {
        for scheme in [DigestScheme::Scheme0, DigestScheme::Scheme1] {
            let (c1, client_digest) = flash_c1(scheme);
            let mut hs = ServerHandshake::new(77, &mut rng());
            let mut input = vec![3u8];
            input.extend_from_slice(&c1);
            let mut out = Vec::new();
            assert_eq!(hs.feed(&input, &mut out), Ok(HandshakeStatus::NeedMore));
            assert_eq!(hs.kind(), Some(HandshakeKind::Digest(scheme)));
            let s1: [u8; HANDSHAKE_SIZE] = out[1..1 + HANDSHAKE_SIZE].try_into().unwrap();
            assert_eq!(&s1[4..8], &SERVER_VERSION);
            // Our S1 digest validates with the FMS key at the client's scheme.
            let fms_short = &GENUINE_FMS_KEY[..GENUINE_FMS_KEY_SHORT_LEN];
            let off = scheme.digest_offset(&s1);
            assert_eq!(
                &s1[off..off + DIGEST_LEN],
                &compute_digest(&s1, scheme, fms_short)
            );
            assert_eq!(find_digest(&s1, fms_short).map(|(s, _)| s), Some(scheme));
            // S2 as a Flash client verifies it.
            let s2 = &out[1 + HANDSHAKE_SIZE..];
            let key = hmac_sha256(&GENUINE_FMS_KEY, &[&client_digest]);
            let sig = hmac_sha256(&key, &[&s2[..HANDSHAKE_SIZE - DIGEST_LEN]]);
            assert_eq!(&s2[HANDSHAKE_SIZE - DIGEST_LEN..], &sig);
            assert_eq!(
                hs.feed(&[0u8; HANDSHAKE_SIZE], &mut out),
                Ok(HandshakeStatus::Complete)
            );
        }
    }

    #[test]
    fn invalid_digest_falls_back_to_simple() {
        let (mut c1, _) = flash_c1(DigestScheme::Scheme0);
        c1[100] ^= 0xFF;
        c1[1000] ^= 0xFF;
        let mut hs = ServerHandshake::new(0, &mut rng());
        let mut input = vec![3u8];
        input.extend_from_slice(&c1);
        let mut out = Vec::new();
        hs.feed(&input, &mut out).unwrap();
        assert_eq!(hs.kind(), Some(HandshakeKind::Simple));
        assert_eq!(&out[1 + HANDSHAKE_SIZE..], &c1[..]);
    }

    #[test]
    fn bad_versions_are_refused() {
        let mut out = Vec::new();
        for (c0, err) in [
            (6, HandshakeError::Encrypted(6)),
            (8, HandshakeError::Encrypted(8)),
            (b'<', HandshakeError::UnsupportedVersion(b'<')),
            (0, HandshakeError::UnsupportedVersion(0)),
        ] {
            let mut hs = ServerHandshake::new(0, &mut rng());
            assert_eq!(hs.feed(&[c0, 1, 2], &mut out), Err(err));
        }
        assert!(out.is_empty());
        let mut hs = ServerHandshake::new(0, &mut rng());
        assert_eq!(hs.feed(&[], &mut out), Ok(HandshakeStatus::NeedMore));
    }

    #[test]
    fn client_and_server_complete_each_other() {
        for digest in [false, true] {
            let mut client = if digest {
                ClientHandshake::new_digest(5, &mut rng())
            } else {
                ClientHandshake::new(5, &mut rng())
            };
            let mut server = ServerHandshake::new(9, &mut rng());
            let mut to_client = Vec::new();
            assert_eq!(
                server.feed(&client.c0c1(), &mut to_client),
                Ok(HandshakeStatus::NeedMore)
            );
            let expected = if digest {
                HandshakeKind::Digest(DigestScheme::Scheme0)
            } else {
                HandshakeKind::Simple
            };
            assert_eq!(server.kind(), Some(expected));
            to_client.extend_from_slice(b"hello");
            let mut to_server = Vec::new();
            assert_eq!(
                client.feed(&to_client, &mut to_server),
                Ok(HandshakeStatus::Complete)
            );
            assert_eq!(client.take_leftover(), b"hello".to_vec());
            to_server.extend_from_slice(b"connect");
            let mut none = Vec::new();
            assert_eq!(
                server.feed(&to_server, &mut none),
                Ok(HandshakeStatus::Complete)
            );
            assert!(none.is_empty());
            assert_eq!(server.take_leftover(), b"connect".to_vec());
        }
    }
}
