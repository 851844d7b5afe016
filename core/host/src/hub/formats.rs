//! The formats a stream's subscribers use: one encoder per (frontend, format name) in use, and
//! that format's encoded copy of the join cache.
//!
//! A slot lives exactly as long as its subscribers: the last one to leave frees it, encoder,
//! encoded cache and all. A later subscriber of the same format gets a new slot with a new
//! encoder whose cache is encoded once from the stream's packets.

use std::sync::Arc;

use fstream_abi::{EncoderBox, MediaPacket, Payload, RAW_FORMAT};

use super::join_cache::{GopPolicy, JoinCache};
use crate::frontends::Frontend;

/// How a format turns packets into bytes.
enum Codec {
    /// Payloads pass unchanged (the raw format).
    Raw,
    Encoder(EncoderBox),
}

pub(super) struct Format {
    frontend: Arc<Frontend>,
    name: String,
    codec: Codec,
    users: usize,
    /// The stream's join cache, encoded (`None` where the encoder made nothing of a packet).
    pub cache: JoinCache<Option<Payload>>,
}

impl Format {
    pub fn encode(&mut self, pkt: &MediaPacket) -> Option<Payload> {
        match &mut self.codec {
            Codec::Raw => Some(pkt.payload.clone()),
            Codec::Encoder(enc) => match enc.encode(pkt).into_result() {
                Ok(p) => p.into_option(),
                Err(e) => {
                    tracing::error!(format = %self.name, error = %e, "encoder failed; packet skipped");
                    None
                }
            },
        }
    }

    /// The bytes a subscriber of this format gets first, for a stream of this kind.
    pub fn preamble(&mut self, media: bool) -> Option<Payload> {
        match &mut self.codec {
            Codec::Raw => None,
            Codec::Encoder(enc) => match enc.preamble(media).into_result() {
                Ok(p) => p.into_option(),
                Err(e) => {
                    tracing::error!(format = %self.name, error = %e, "encoder preamble failed");
                    None
                }
            },
        }
    }
}

/// Slots by index; a subscriber holds the index of its slot. Vacant slots are reused.
#[derive(Default)]
pub(super) struct Formats {
    slots: Vec<Option<Format>>,
}

impl Formats {
    /// A slot for `name` of `frontend`: the one in use, or a new one whose cache is encoded from
    /// `cache` now.
    pub fn acquire(
        &mut self,
        frontend: &Arc<Frontend>,
        name: &str,
        cache: &JoinCache<MediaPacket>,
    ) -> Result<usize, String> {
        if let Some(i) = self.slots.iter().position(|s| {
            s.as_ref()
                .is_some_and(|f| Arc::ptr_eq(&f.frontend, frontend) && f.name == name)
        }) {
            if let Some(f) = self.slots[i].as_mut() {
                f.users += 1;
            }
            return Ok(i);
        }
        let codec = if name == RAW_FORMAT {
            Codec::Raw
        } else {
            Codec::Encoder(
                frontend
                    .factory
                    .encoder(name.into())
                    .into_result()
                    .map_err(|e| e.to_string())?,
            )
        };
        let mut f = Format {
            frontend: frontend.clone(),
            name: name.to_string(),
            codec,
            users: 1,
            cache: JoinCache::default(),
        };
        f.cache = cache.map(|p| f.encode(p));
        match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                self.slots[i] = Some(f);
                Ok(i)
            }
            None => {
                self.slots.push(Some(f));
                Ok(self.slots.len() - 1)
            }
        }
    }

    /// One subscriber of slot `i` left; the last one frees it.
    pub fn release(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i) {
            if let Some(f) = slot {
                f.users = f.users.saturating_sub(1);
                if f.users == 0 {
                    *slot = None;
                }
            }
        }
    }

    /// The slot a subscriber holds (it exists while the subscriber does).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Format> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Encodes `pkt` once for every format in use (by slot index) and, for media, adds it to
    /// each format's encoded cache.
    pub fn encode(&mut self, pkt: &MediaPacket, cache: Option<GopPolicy>) -> Vec<Option<Payload>> {
        self.slots
            .iter_mut()
            .map(|slot| {
                let f = slot.as_mut()?;
                let bytes = f.encode(pkt);
                if let Some(policy) = cache {
                    f.cache.update(pkt, policy, || bytes.clone());
                }
                bytes
            })
            .collect()
    }

    /// A new publication starts (or one ended): every encoded cache starts empty.
    pub fn clear_caches(&mut self) {
        for f in self.slots.iter_mut().flatten() {
            f.cache = JoinCache::default();
        }
    }
}
