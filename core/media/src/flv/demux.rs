//! Incremental FLV demuxer: feed arbitrary byte chunks, take complete tags.

use bytes::{Buf, BytesMut};

use super::header::{
    FlvHeader, FlvTag, TagHeader, FLV_HEADER_LEN, PREVIOUS_TAG_SIZE_LEN, TAG_HEADER_LEN,
};
use super::FlvError;

/// A tag and the stream offset of its tag header (what a keyframe index or a seek needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemuxedTag {
    pub offset: u64,
    pub tag: FlvTag,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Header,
    /// Extra header bytes (data offset > 9) still to skip.
    SkipHeader(usize),
    PrevTagSize,
    Tag,
    Failed(FlvError),
}

/// Sans-IO FLV demuxer.
///
/// PreviousTagSize fields are skipped, not checked: writers get them wrong often enough, and tag
/// header validation (type, reserved bits, stream id, size limit) already catches lost sync.
/// After an error the demuxer stays failed and repeats that error.
#[derive(Debug)]
pub struct FlvDemuxer {
    buf: BytesMut,
    state: State,
    max_tag_size: u32,
    /// Stream offset of `buf[0]`.
    offset: u64,
    header: Option<FlvHeader>,
}

impl FlvDemuxer {
    /// A demuxer expecting the FLV file header first. Tags with more than `max_tag_size` data
    /// bytes are an error (the caller's memory bound).
    pub fn new(max_tag_size: u32) -> Self {
        FlvDemuxer {
            buf: BytesMut::new(),
            state: State::Header,
            max_tag_size,
            offset: 0,
            header: None,
        }
    }

    /// A demuxer positioned at a tag header at `start_offset` of a file, e.g. a keyframe found
    /// with the keyframe index when a VOD player seeks.
    pub fn at_tag(max_tag_size: u32, start_offset: u64) -> Self {
        FlvDemuxer {
            buf: BytesMut::new(),
            state: State::Tag,
            max_tag_size,
            offset: start_offset,
            header: None,
        }
    }

    /// Appends input. Call [`FlvDemuxer::next_tag`] until it returns `Ok(None)` before pushing a
    /// lot more, so the buffer stays around one tag.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The file header, once parsed.
    pub fn header(&self) -> Option<&FlvHeader> {
        self.header.as_ref()
    }

    /// Stream offset of the first byte not yet consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes pushed but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Reads at most `max` bytes from `r` straight into the buffer (no buffer of the caller's
    /// in between); returns how many, 0 at the end of `r`.
    pub fn read_from(&mut self, r: &mut impl std::io::Read, max: usize) -> std::io::Result<usize> {
        let len = self.buf.len();
        self.buf.resize(len + max, 0);
        let read = loop {
            let room = self.buf.get_mut(len..).unwrap_or_default();
            match r.read(room) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = *read.as_ref().unwrap_or(&0);
        self.buf.truncate(len + n);
        read
    }

    /// How many more bytes finish what is being parsed (the file header, a PreviousTagSize, a
    /// tag's header or its data) and reach the end of the next tag header after it: a reader
    /// that pushes exactly this much holds no more than one tag. 0 after an error.
    pub fn needed(&self) -> usize {
        let have = self.buf.len();
        let next_head = PREVIOUS_TAG_SIZE_LEN + TAG_HEADER_LEN;
        match &self.state {
            State::Failed(_) => 0,
            State::Header => FLV_HEADER_LEN.saturating_sub(have).max(1),
            State::SkipHeader(left) => left.saturating_sub(have) + next_head,
            State::PrevTagSize => next_head.saturating_sub(have).max(1),
            State::Tag => match self.buf.get(..TAG_HEADER_LEN) {
                None => TAG_HEADER_LEN - have,
                Some(head) => {
                    let size = TagHeader::decode(head, self.offset)
                        .map(|h| h.data_size as usize)
                        .unwrap_or(0);
                    (TAG_HEADER_LEN + size + next_head)
                        .saturating_sub(have)
                        .max(1)
                }
            },
        }
    }

    /// Gives back buffer room past `keep` bytes: a large tag (a keyframe) grows the buffer to
    /// its size, and a reader holding many demuxers (one per VOD player) should not keep that
    /// room after the tag is gone. The bytes not yet consumed are kept.
    pub fn release_spare(&mut self, keep: usize) {
        if self.buf.capacity() > keep {
            self.buf = BytesMut::from(&self.buf[..]);
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.offset = self.offset.saturating_add(n as u64);
    }

    /// The next complete tag, `Ok(None)` when more input is needed.
    pub fn next_tag(&mut self) -> Result<Option<DemuxedTag>, FlvError> {
        loop {
            match self.step() {
                Ok(Step::Tag(t)) => return Ok(Some(t)),
                Ok(Step::Continue) => {}
                Ok(Step::NeedMore) => return Ok(None),
                Err(e) => {
                    self.state = State::Failed(e.clone());
                    return Err(e);
                }
            }
        }
    }

    fn step(&mut self) -> Result<Step, FlvError> {
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            State::Header => {
                let Some(head) = self.buf.get(..FLV_HEADER_LEN) else {
                    // Reject a wrong signature early rather than waiting for 9 bytes.
                    let n = self.buf.len().min(3);
                    if self.buf.get(..n) != b"FLV".get(..n) {
                        let mut found = [0u8; 3];
                        found
                            .iter_mut()
                            .zip(self.buf.iter())
                            .for_each(|(d, s)| *d = *s);
                        return Err(FlvError::BadSignature { found });
                    }
                    return Ok(Step::NeedMore);
                };
                let h = FlvHeader::decode(head, self.max_tag_size)?;
                self.header = Some(h);
                self.consume(FLV_HEADER_LEN);
                self.state =
                    State::SkipHeader((h.data_offset as usize).saturating_sub(FLV_HEADER_LEN));
                Ok(Step::Continue)
            }
            State::SkipHeader(left) => {
                let n = (*left).min(self.buf.len());
                let left = left - n;
                self.consume(n);
                if left > 0 {
                    self.state = State::SkipHeader(left);
                    return Ok(Step::NeedMore);
                }
                self.state = State::PrevTagSize;
                Ok(Step::Continue)
            }
            State::PrevTagSize => {
                if self.buf.len() < PREVIOUS_TAG_SIZE_LEN {
                    return Ok(Step::NeedMore);
                }
                self.consume(PREVIOUS_TAG_SIZE_LEN);
                self.state = State::Tag;
                Ok(Step::Continue)
            }
            State::Tag => {
                let Some(head) = self.buf.get(..TAG_HEADER_LEN) else {
                    // Validate the type byte as soon as it arrives.
                    if let Some(&b) = self.buf.first() {
                        TagHeader::decode(&[b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], self.offset)?;
                    }
                    return Ok(Step::NeedMore);
                };
                let h = TagHeader::decode(head, self.offset)?;
                if h.data_size > self.max_tag_size {
                    return Err(FlvError::TagTooLarge {
                        size: h.data_size,
                        limit: self.max_tag_size,
                        offset: self.offset,
                    });
                }
                let size = h.data_size as usize;
                if self.buf.len() < TAG_HEADER_LEN + size {
                    self.buf.reserve(TAG_HEADER_LEN + size - self.buf.len());
                    return Ok(Step::NeedMore);
                }
                let offset = self.offset;
                self.consume(TAG_HEADER_LEN);
                let data = self.buf.split_to(size).freeze();
                self.offset = self.offset.saturating_add(size as u64);
                self.state = State::PrevTagSize;
                Ok(Step::Tag(DemuxedTag {
                    offset,
                    tag: FlvTag {
                        tag_type: h.tag_type,
                        timestamp: h.timestamp,
                        data,
                    },
                }))
            }
        }
    }
}

enum Step {
    Tag(DemuxedTag),
    Continue,
    NeedMore,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::{write_file_header, write_tag, TagType};

    fn sample_file() -> (Vec<u8>, Vec<FlvTag>) {
        let tags = vec![
            FlvTag::new(TagType::Script, 0, vec![2, 0, 1, b'x']),
            FlvTag::new(TagType::Video, 0, vec![0x17, 0, 0, 0, 0, 1, 2]),
            FlvTag::new(TagType::Audio, 23, vec![0xAF, 1, 9]),
            FlvTag::new(TagType::Video, 0x0100_0000, vec![0x27, 1, 0, 0, 0]),
            FlvTag::new(TagType::Audio, 46, Vec::new()),
        ];
        let mut out = Vec::new();
        write_file_header(&mut out, true, true);
        for t in &tags {
            write_tag(&mut out, t.tag_type, t.timestamp, &t.data).unwrap();
        }
        (out, tags)
    }

    fn drain(d: &mut FlvDemuxer) -> Result<Vec<DemuxedTag>, FlvError> {
        let mut v = Vec::new();
        while let Some(t) = d.next_tag()? {
            v.push(t);
        }
        Ok(v)
    }

    #[test]
    fn whole_file_at_once() {
        let (file, tags) = sample_file();
        let mut d = FlvDemuxer::new(1 << 20);
        d.push(&file);
        let got = drain(&mut d).unwrap();
        assert_eq!(got.iter().map(|t| t.tag.clone()).collect::<Vec<_>>(), tags);
        assert_eq!(got[0].offset, 13);
        assert_eq!(got[1].offset, 13 + 11 + 4 + 4);
        assert_eq!(d.header(), Some(&FlvHeader::new(true, true)));
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.offset(), file.len() as u64);
    }

    #[test]
    fn reads_straight_from_a_reader_and_gives_back_a_large_tags_room() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        let mut tags = vec![FlvTag::new(TagType::Video, 0, vec![0x17, 0, 0, 0, 0, 1])];
        tags.push(FlvTag::new(
            TagType::Video,
            40,
            [&[0x17u8, 1, 0, 0, 0][..], &big].concat(),
        ));
        tags.push(FlvTag::new(TagType::Audio, 41, vec![0xAF, 1, 9]));
        let mut file = Vec::new();
        write_file_header(&mut file, true, true);
        for t in &tags {
            write_tag(&mut file, t.tag_type, t.timestamp, &t.data).unwrap();
        }
        let mut reader = std::io::Cursor::new(file);
        let mut d = FlvDemuxer::new(1 << 20);
        let mut got = Vec::new();
        loop {
            let mut ended = false;
            while let Some(t) = d.next_tag().unwrap() {
                d.release_spare(16 * 1024);
                got.push(t.tag);
            }
            // Whatever a tag needed, the room kept between tags is bounded.
            assert!(d.buffered() > 16 * 1024 || got.len() < 2 || d.buf.capacity() <= 16 * 1024);
            if d.read_from(&mut reader, 8 * 1024).unwrap() == 0 {
                ended = true;
            }
            if ended {
                break;
            }
        }
        assert_eq!(got, tags);
        assert_eq!(d.buffered(), 0);
        assert!(d.buf.capacity() <= 16 * 1024, "{}", d.buf.capacity());

        // Pushing exactly what `needed` asks: never more than one tag and the next header
        // buffered, and a header alone between tags.
        let mut reader = std::io::Cursor::new(reader.into_inner());
        let mut d = FlvDemuxer::new(1 << 20);
        let mut again = Vec::new();
        loop {
            while let Some(t) = d.next_tag().unwrap() {
                d.release_spare(64);
                assert!(
                    d.buffered() <= 15,
                    "{} bytes held between tags",
                    d.buffered()
                );
                again.push(t.tag);
            }
            let want = d.needed();
            assert!(want > 0);
            assert!(d.buffered() + want <= 11 + big.len() + 5 + 15);
            if d.read_from(&mut reader, want).unwrap() == 0 {
                break;
            }
        }
        assert_eq!(again, tags);
    }

    #[test]
    fn byte_by_byte_and_odd_chunks() {
        let (file, tags) = sample_file();
        for chunk in [1usize, 2, 3, 7, 13, 64] {
            let mut d = FlvDemuxer::new(1 << 20);
            let mut got = Vec::new();
            for piece in file.chunks(chunk) {
                d.push(piece);
                got.extend(drain(&mut d).unwrap().into_iter().map(|t| t.tag));
            }
            assert_eq!(got, tags, "chunk size {chunk}");
        }
    }

    #[test]
    fn resumes_at_a_tag_offset() {
        let (file, tags) = sample_file();
        let mut d = FlvDemuxer::new(1 << 20);
        d.push(&file);
        let all = drain(&mut d).unwrap();
        let mut d2 = FlvDemuxer::at_tag(1 << 20, all[2].offset);
        d2.push(&file[all[2].offset as usize..]);
        let rest = drain(&mut d2).unwrap();
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[0].tag, tags[2]);
        assert_eq!(rest[0].offset, all[2].offset);
    }

    #[test]
    fn extended_header_is_skipped() {
        let (file, tags) = sample_file();
        let mut f = file[..9].to_vec();
        f[8] = 12;
        f.extend_from_slice(&[0xEE, 0xEE, 0xEE]);
        f.extend_from_slice(&file[9..]);
        let mut d = FlvDemuxer::new(1 << 20);
        for b in &f {
            d.push(&[*b]);
        }
        let got = drain(&mut d).unwrap();
        assert_eq!(got.len(), tags.len());
        assert_eq!(got[0].offset, 16);
    }

    #[test]
    fn garbage_and_limits() {
        let mut d = FlvDemuxer::new(1 << 20);
        d.push(b"G");
        assert!(matches!(d.next_tag(), Err(FlvError::BadSignature { .. })));
        // stays failed
        d.push(b"LV");
        assert!(d.next_tag().is_err());

        let (file, _) = sample_file();
        let mut d = FlvDemuxer::new(1 << 20);
        let mut bad = file.clone();
        bad[13] = 0x55;
        d.push(&bad[..14]);
        assert!(matches!(
            d.next_tag(),
            Err(FlvError::BadTagType {
                byte: 0x55,
                offset: 13
            })
        ));

        let mut d = FlvDemuxer::new(4);
        d.push(&file);
        assert_eq!(d.next_tag().unwrap().map(|t| t.offset), Some(13));
        assert!(matches!(
            d.next_tag(),
            Err(FlvError::TagTooLarge {
                size: 7,
                limit: 4,
                ..
            })
        ));
    }

    #[test]
    fn truncated_file_just_waits() {
        let (file, _) = sample_file();
        for cut in 0..file.len() {
            let mut d = FlvDemuxer::new(1 << 20);
            d.push(&file[..cut]);
            assert!(drain(&mut d).is_ok());
        }
    }
}
