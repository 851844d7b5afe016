//! Client side of the RTMP handshake (for the load generator and tests).

use rand::RngCore;

use super::digest::{imprint_digest, DigestScheme, GENUINE_FP_KEY, GENUINE_FP_KEY_SHORT_LEN};
use super::{HandshakeError, HandshakeStatus, HANDSHAKE_SIZE, RTMP_VERSION};

/// Sans-IO client handshake: send [`ClientHandshake::c0c1`], feed received bytes; once S0+S1+S2
/// are in, C2 (an echo of S1) is written to `out`. S1/S2 are not verified.
#[derive(Debug)]
pub struct ClientHandshake {
    c1: Box<[u8; HANDSHAKE_SIZE]>,
    buf: Vec<u8>,
    done: bool,
    leftover: Vec<u8>,
}

impl ClientHandshake {
    /// A simple-handshake client (zero version in C1).
    pub fn new<R: RngCore + ?Sized>(client_time: u32, rng: &mut R) -> Self {
        let mut c1 = [0u8; HANDSHAKE_SIZE];
        rng.fill_bytes(&mut c1[8..]);
        c1[..4].copy_from_slice(&client_time.to_be_bytes());
        ClientHandshake {
            c1: Box::new(c1),
            buf: Vec::new(),
            done: false,
            leftover: Vec::new(),
        }
    }

    /// A client whose C1 looks like Flash Player 9's (version 9.0.124.2, FP-key digest at
    /// scheme 0), to exercise a server's digest handshake.
    pub fn new_digest<R: RngCore + ?Sized>(client_time: u32, rng: &mut R) -> Self {
        let mut hs = Self::new(client_time, rng);
        let c1: &mut [u8; HANDSHAKE_SIZE] = &mut hs.c1;
        c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
        imprint_digest(
            c1,
            DigestScheme::Scheme0,
            &GENUINE_FP_KEY[..GENUINE_FP_KEY_SHORT_LEN],
        );
        hs
    }

    /// C0 and C1: the first 1537 bytes to send.
    pub fn c0c1(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + HANDSHAKE_SIZE);
        v.push(RTMP_VERSION);
        v.extend_from_slice(&self.c1[..]);
        v
    }

    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// Bytes received after S2 (the server's first chunks).
    pub fn take_leftover(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.leftover)
    }

    /// Consumes server bytes; writes C2 to `out` when S0+S1+S2 are complete.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<HandshakeStatus, HandshakeError> {
        if self.done {
            return Err(HandshakeError::AlreadyComplete);
        }
        if self.buf.is_empty() {
            match input.first() {
                Some(&RTMP_VERSION) | None => {}
                Some(&v) => return Err(HandshakeError::UnsupportedVersion(v)),
            }
        }
        self.buf.extend_from_slice(input);
        let total = 1 + 2 * HANDSHAKE_SIZE;
        let Some(s1) = self.buf.get(1..1 + HANDSHAKE_SIZE) else {
            return Ok(HandshakeStatus::NeedMore);
        };
        if self.buf.len() < total {
            return Ok(HandshakeStatus::NeedMore);
        }
        out.extend_from_slice(s1);
        self.buf.drain(..total);
        self.leftover = std::mem::take(&mut self.buf);
        self.done = true;
        Ok(HandshakeStatus::Complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn echoes_s1_and_rejects_bad_s0() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut c = ClientHandshake::new(42, &mut rng);
        let c0c1 = c.c0c1();
        assert_eq!(c0c1.len(), 1537);
        assert_eq!(&c0c1[1..9], &[0, 0, 0, 42, 0, 0, 0, 0]);
        let mut server = vec![3u8];
        server.extend((0..2 * HANDSHAKE_SIZE).map(|i| i as u8));
        let mut out = Vec::new();
        for b in &server[..server.len() - 1] {
            assert_eq!(c.feed(&[*b], &mut out), Ok(HandshakeStatus::NeedMore));
        }
        assert!(out.is_empty());
        assert_eq!(
            c.feed(&server[server.len() - 1..], &mut out),
            Ok(HandshakeStatus::Complete)
        );
        assert_eq!(&out[..], &server[1..1 + HANDSHAKE_SIZE]);
        assert!(c.is_complete());

        let mut c = ClientHandshake::new(0, &mut rng);
        assert_eq!(
            c.feed(&[6], &mut out),
            Err(HandshakeError::UnsupportedVersion(6))
        );
    }
}
