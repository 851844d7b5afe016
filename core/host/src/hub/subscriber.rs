//! One subscriber of a stream: what it asked for, where it is in the stream, and how bytes
//! reach its queue (the join burst, live packets, its overflow policy).

use std::sync::Arc;

use fstream_abi::{
    MediaKind, MediaPacket, OverflowPolicy, Payload, SubscribeOptions, SubscriptionStatus,
};

use super::{formats::Format, join_cache::JoinCache, status, timers::Timer, EventTx};
use crate::outq::Outq;

/// A subscriber's key in its stream: (connection, the session's subscription number).
pub(super) type SubKey = (u64, u32);

pub(super) struct Subscriber {
    pub conn_id: u64,
    pub subscription: u32,
    pub out: Arc<Outq>,
    pub events: EventTx,
    /// Its slot in the stream's formats.
    pub format: usize,
    /// Its connection's protocol (`rtmp`, `http`), for the stats API.
    pub protocol: String,
    pub options: SubscribeOptions,
    /// Its queue bound in bytes.
    pub limit: usize,
    /// The format's preamble was sent, for a stream of this kind (media or raw).
    pub preamble_sent: Option<bool>,
    /// Joined the current publication (got its start, cache and live packets).
    pub joined: bool,
    /// Skipping video until the next keyframe.
    pub wait_key: bool,
    /// Has seen a publisher since it subscribed (else it is waiting for one).
    pub had_publisher: bool,
    /// Paused by its player: nothing is delivered until it resumes (at a keyframe).
    pub paused: bool,
    /// Its wait for a publisher (dropped, and so cancelled, once one comes or it leaves).
    pub wait_timer: Option<Timer>,
}

/// A subscriber is over its queue bound and its policy is to be disconnected.
#[derive(Debug)]
pub(super) struct TooSlow;

impl Subscriber {
    pub fn key(&self) -> SubKey {
        (self.conn_id, self.subscription)
    }

    fn wants_kind(&self, pkt: &MediaPacket) -> bool {
        match pkt.kind {
            MediaKind::Audio => self.options.audio || pkt.is_sequence_header(),
            MediaKind::Video => self.options.video || pkt.is_sequence_header(),
            _ => true,
        }
    }

    /// Whether a live packet goes to this subscriber (and, for the keyframe it was waiting for,
    /// that it waits no more).
    pub fn wants(&mut self, pkt: &MediaPacket) -> bool {
        if !self.joined || !self.wants_kind(pkt) {
            return false;
        }
        if self.paused {
            // Headers still go, so the stream can be decoded again when it resumes (a new
            // publisher may have changed them meanwhile).
            return pkt.is_sequence_header() || pkt.is_metadata();
        }
        if pkt.kind == MediaKind::Video && !pkt.is_sequence_header() && self.wait_key {
            if !pkt.is_keyframe() {
                return false;
            }
            self.wait_key = false;
        }
        true
    }

    /// Sends what the subscriber needs to start: the format's preamble, then for media the
    /// metadata, sequence headers and (if wanted, and if it fits the queue bound) the cached
    /// group of pictures, all already encoded by the format and shared.
    pub fn join(
        &mut self,
        f: &mut Format,
        cache: &JoinCache<MediaPacket>,
        media: bool,
        use_gop_cache: bool,
    ) -> Result<(), TooSlow> {
        self.joined = true;
        // Once per subscriber, and again if a new publisher changes the stream's kind (a raw
        // broadcast replaced by an FLV one).
        if self.preamble_sent != Some(media) {
            self.preamble_sent = Some(media);
            if let Some(p) = f.preamble(media) {
                self.push_essential(p)?;
            }
        }
        if !media {
            return Ok(());
        }
        for (pkt, bytes) in cache.headers().zip(f.cache.headers()) {
            if let (true, Some(b)) = (self.wants_kind(pkt), bytes) {
                self.push_essential(b.clone())?;
            }
        }
        let gop: Vec<&Payload> = cache
            .gop
            .iter()
            .zip(&f.cache.gop)
            .filter(|(pkt, _)| self.wants_kind(pkt))
            .filter_map(|(_, b)| b.as_ref())
            .collect();
        let gop_bytes: usize = gop.iter().map(|b| b.len()).sum();
        let fits = self.out.queued_bytes() + gop_bytes <= self.limit;
        let use_gop = use_gop_cache && self.options.join_with_cache && !gop.is_empty() && fits;
        self.wait_key = !use_gop;
        if use_gop {
            for b in gop {
                if self.out.push_media(b.clone(), self.limit, true).is_err() {
                    // Only part of the group fits after all: what was queued is a valid start;
                    // video resumes at the next keyframe.
                    self.wait_key = true;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Headers and preambles always go in (they are small and rare), whatever the bound.
    fn push_essential(&mut self, b: Payload) -> Result<(), TooSlow> {
        self.out
            .push_essential(b, usize::MAX, true)
            .map(|_| ())
            .map_err(|_| TooSlow)
    }

    /// Queues a live packet's bytes, applying the overflow policy. `Ok(true)`: flush the queue
    /// once no lock is held.
    pub fn deliver(
        &mut self,
        pkt: &MediaPacket,
        bytes: &Payload,
        stream: &str,
    ) -> Result<bool, TooSlow> {
        if self.out.is_ended() {
            return Err(TooSlow);
        }
        let essential = pkt.is_sequence_header() || pkt.is_metadata();
        let push = |out: &Outq| {
            if essential {
                out.push_essential(bytes.clone(), usize::MAX, false)
            } else {
                out.push_media(bytes.clone(), self.limit, false)
            }
        };
        match push(&self.out) {
            Ok(flush) => Ok(flush),
            Err(_) => self.overflowed(pkt, bytes, stream),
        }
    }

    /// Over its queue bound: disconnected or skipped ahead, as it subscribed.
    fn overflowed(
        &mut self,
        pkt: &MediaPacket,
        bytes: &Payload,
        stream: &str,
    ) -> Result<bool, TooSlow> {
        crate::stats::Counters::add(&crate::stats::COUNTERS.queue_overflows);
        match self.options.overflow {
            OverflowPolicy::Disconnect => {
                crate::stats::Counters::add(&crate::stats::COUNTERS.dropped_viewers);
                tracing::warn!(
                    stream,
                    conn = self.conn_id,
                    "viewer too slow for its queue; disconnecting it"
                );
                status(&self.events, self.subscription, SubscriptionStatus::TooSlow);
                self.out.abort();
                Err(TooSlow)
            }
            OverflowPolicy::SkipToKeyframe => {
                let n = self.out.drop_media();
                tracing::debug!(
                    stream,
                    conn = self.conn_id,
                    dropped_bytes = n,
                    "viewer too slow; skipping to the next keyframe"
                );
                // A keyframe (or any packet of a raw stream) starts the stream again.
                let restart =
                    pkt.kind == MediaKind::Raw || pkt.kind == MediaKind::Video && pkt.is_keyframe();
                self.wait_key = !restart;
                if restart
                    && self
                        .out
                        .push_media(bytes.clone(), self.limit, false)
                        .is_err()
                {
                    self.wait_key = true;
                }
                Ok(false)
            }
        }
    }
}
