//! What a late joiner gets first: the metadata, the sequence headers and the packets since the
//! last video keyframe.
//!
//! The stream keeps one cache of packets; every format in use keeps one of the same packets in
//! its encoded form, so a joiner's burst is bytes already made, shared with every other joiner
//! of that format (nothing is encoded per joiner). Both are updated with the same packets by the
//! same rules, so entry `i` of one is entry `i` of the other.

use fstream_abi::{MediaKind, MediaPacket};

#[derive(Debug, Clone)]
pub(super) struct JoinCache<T> {
    pub metadata: Option<T>,
    pub video_header: Option<T>,
    pub audio_header: Option<T>,
    /// Packets since the last video keyframe, the keyframe first.
    pub gop: Vec<T>,
    /// Bytes of the packets (unencoded) in `gop`: the same in every copy.
    gop_bytes: usize,
}

impl<T> Default for JoinCache<T> {
    fn default() -> Self {
        Self {
            metadata: None,
            video_header: None,
            audio_header: None,
            gop: Vec::new(),
            gop_bytes: 0,
        }
    }
}

/// The GOP part of the cache's rules.
#[derive(Debug, Clone, Copy)]
pub(super) struct GopPolicy {
    pub enabled: bool,
    pub max_bytes: usize,
}

impl<T> JoinCache<T> {
    /// Applies `pkt` (a media packet) to the cache; `item` makes what this copy keeps of it.
    pub fn update(&mut self, pkt: &MediaPacket, policy: GopPolicy, item: impl FnOnce() -> T) {
        if pkt.is_metadata() {
            self.metadata = Some(item());
            return;
        }
        if pkt.is_sequence_header() {
            match pkt.kind {
                MediaKind::Video => self.video_header = Some(item()),
                MediaKind::Audio => self.audio_header = Some(item()),
                _ => {}
            }
            return;
        }
        if !policy.enabled {
            return;
        }
        let key = pkt.kind == MediaKind::Video && pkt.is_keyframe();
        if key {
            self.gop.clear();
            self.gop_bytes = 0;
        }
        if self.gop.is_empty() && !key {
            // A GOP starts on a keyframe.
            return;
        }
        if self.gop_bytes + pkt.len() > policy.max_bytes {
            // Too long a GOP to cache whole: late joiners wait for the next keyframe instead.
            self.gop.clear();
            self.gop_bytes = 0;
            return;
        }
        self.gop_bytes += pkt.len();
        self.gop.push(item());
    }

    /// The headers, in the order a joiner gets them.
    pub fn headers(&self) -> impl Iterator<Item = &T> {
        [&self.metadata, &self.video_header, &self.audio_header]
            .into_iter()
            .flatten()
    }

    /// This cache with every entry mapped (the encoded copy for a format that starts now).
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> JoinCache<U> {
        JoinCache {
            metadata: self.metadata.as_ref().map(&mut f),
            video_header: self.video_header.as_ref().map(&mut f),
            audio_header: self.audio_header.as_ref().map(&mut f),
            gop: self.gop.iter().map(&mut f).collect(),
            gop_bytes: self.gop_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstream_abi::{flags, payload_from};

    fn pkt(kind: MediaKind, fl: u8, len: usize) -> MediaPacket {
        MediaPacket::new(kind, fl, 0, payload_from(&vec![0u8; len]))
    }

    #[test]
    fn gop_starts_at_a_keyframe_and_is_bounded() {
        let p = GopPolicy {
            enabled: true,
            max_bytes: 100,
        };
        let mut c: JoinCache<usize> = JoinCache::default();
        let mut n = 0;
        let mut add = |c: &mut JoinCache<usize>, pkt: &MediaPacket| {
            n += 1;
            c.update(pkt, p, || n);
        };
        add(&mut c, &pkt(MediaKind::Video, 0, 10));
        assert!(c.gop.is_empty(), "no keyframe yet");
        add(&mut c, &pkt(MediaKind::Video, flags::SEQUENCE_HEADER, 5));
        add(&mut c, &pkt(MediaKind::Video, flags::KEYFRAME, 40));
        add(&mut c, &pkt(MediaKind::Audio, 0, 40));
        assert_eq!(c.gop, vec![3, 4]);
        assert_eq!(c.headers().copied().collect::<Vec<_>>(), vec![2]);
        add(&mut c, &pkt(MediaKind::Video, 0, 40));
        assert!(c.gop.is_empty(), "over the bound: dropped whole");
        add(&mut c, &pkt(MediaKind::Video, flags::KEYFRAME, 40));
        assert_eq!(c.gop, vec![6]);
        let m = c.map(|x| x * 10);
        assert_eq!(m.gop, vec![60]);
        assert_eq!(m.video_header, Some(20));
    }
}
