//! Keyframe index: (timestamp, byte offset) of video key frames, for VOD seeking and for
//! writing `keyframes` metadata.

use super::header::{FlvTag, TagType};
use super::video::classify_video;

/// A video key frame tag at `offset` (of its tag header) with `timestamp` in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeEntry {
    pub timestamp: u32,
    pub offset: u64,
}

/// Incremental keyframe index builder, for scanning a file chunk by chunk.
#[derive(Debug, Clone, Default)]
pub struct KeyframeIndexer {
    entries: Vec<KeyframeEntry>,
}

impl KeyframeIndexer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `tag` if it is a video key frame (sequence headers are not frames and are
    /// skipped). Returns whether it was recorded.
    pub fn observe(&mut self, offset: u64, tag: &FlvTag) -> bool {
        let key = tag.tag_type == TagType::Video
            && classify_video(&tag.data).is_some_and(|i| i.is_keyframe());
        if key {
            self.entries.push(KeyframeEntry {
                timestamp: tag.timestamp,
                offset,
            });
        }
        key
    }

    pub fn entries(&self) -> &[KeyframeEntry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<KeyframeEntry> {
        self.entries
    }
}

/// Lists the video key frames among `(offset, tag)` pairs, in input order.
pub fn keyframe_index<'a>(tags: impl IntoIterator<Item = (u64, &'a FlvTag)>) -> Vec<KeyframeEntry> {
    let mut ix = KeyframeIndexer::new();
    for (offset, tag) in tags {
        ix.observe(offset, tag);
    }
    ix.into_entries()
}

/// The last key frame at or before `timestamp` (the first one if all are later), for seeking.
/// `entries` should be in timestamp order, as scanned from a well-formed file.
pub fn find_keyframe(entries: &[KeyframeEntry], timestamp: u32) -> Option<&KeyframeEntry> {
    let after = entries.partition_point(|e| e.timestamp <= timestamp);
    entries.get(after.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_keyframes_only() {
        let tags = [
            (13, FlvTag::new(TagType::Script, 0, vec![2])),
            (40, FlvTag::new(TagType::Video, 0, vec![0x17, 0, 0, 0, 0])),
            (60, FlvTag::new(TagType::Video, 0, vec![0x17, 1, 0, 0, 0])),
            (90, FlvTag::new(TagType::Audio, 10, vec![0xAF, 1])),
            (99, FlvTag::new(TagType::Video, 40, vec![0x27, 1, 0, 0, 0])),
            (
                120,
                FlvTag::new(TagType::Video, 2000, vec![0x17, 1, 0, 0, 0]),
            ),
            (150, FlvTag::new(TagType::Video, 2040, vec![])),
            (
                160,
                FlvTag::new(TagType::Video, 4000, vec![0x91, b'h', b'v', b'c', b'1']),
            ),
        ];
        let ix = keyframe_index(tags.iter().map(|(o, t)| (*o, t)));
        assert_eq!(
            ix,
            vec![
                KeyframeEntry {
                    timestamp: 0,
                    offset: 60
                },
                KeyframeEntry {
                    timestamp: 2000,
                    offset: 120
                },
                KeyframeEntry {
                    timestamp: 4000,
                    offset: 160
                },
            ]
        );
        assert_eq!(find_keyframe(&ix, 0).map(|e| e.offset), Some(60));
        assert_eq!(find_keyframe(&ix, 1999).map(|e| e.offset), Some(60));
        assert_eq!(find_keyframe(&ix, 2000).map(|e| e.offset), Some(120));
        assert_eq!(find_keyframe(&ix, u32::MAX).map(|e| e.offset), Some(160));
        assert_eq!(find_keyframe(&[], 5), None);
        let later = [KeyframeEntry {
            timestamp: 100,
            offset: 1,
        }];
        assert_eq!(find_keyframe(&later, 5), later.first());
    }
}
