//! FLV writing: file header and tags.

use super::header::{
    FlvHeader, FlvTag, TagHeader, TagType, MAX_TAG_DATA_SIZE, PREVIOUS_TAG_SIZE_LEN, TAG_HEADER_LEN,
};
use super::FlvError;

/// Appends the 9-byte file header and PreviousTagSize0.
pub fn write_file_header(out: &mut Vec<u8>, has_audio: bool, has_video: bool) {
    out.extend_from_slice(&FlvHeader::new(has_audio, has_video).encode_with_first_tag_size());
}

/// One tag of a live FLV byte stream (what a viewer of HTTP-FLV or an fstream watch receives),
/// with its PreviousTagSize. Script data (onMetaData) is written at timestamp 0, as in a file:
/// ffmpeg's FLV reader takes a script tag with any other timestamp for a subtitle packet, and a
/// second publisher's metadata arrives mid-stream.
pub fn live_tag(tag_type: TagType, timestamp: u32, data: &[u8]) -> Result<Vec<u8>, FlvError> {
    let timestamp = if tag_type == TagType::Script {
        0
    } else {
        timestamp
    };
    let mut out = Vec::with_capacity(TAG_HEADER_LEN + data.len() + PREVIOUS_TAG_SIZE_LEN);
    write_tag(&mut out, tag_type, timestamp, data)?;
    Ok(out)
}

/// Appends one tag: header, data and its PreviousTagSize. Returns the bytes written.
pub fn write_tag(
    out: &mut Vec<u8>,
    tag_type: TagType,
    timestamp: u32,
    data: &[u8],
) -> Result<usize, FlvError> {
    let data_size = u32::try_from(data.len())
        .ok()
        .filter(|n| *n <= MAX_TAG_DATA_SIZE)
        .ok_or(FlvError::DataTooLong { len: data.len() })?;
    let header = TagHeader {
        tag_type,
        data_size,
        timestamp,
        stream_id: 0,
    }
    .encode()?;
    out.reserve(TAG_HEADER_LEN + data.len() + 4);
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.extend_from_slice(&(TAG_HEADER_LEN as u32 + data_size).to_be_bytes());
    Ok(TAG_HEADER_LEN + data.len() + 4)
}

/// Tracks the write position of an FLV byte stream so callers (the recorder) learn each tag's
/// offset, e.g. to build a keyframe index while writing.
#[derive(Debug, Clone)]
pub struct FlvMuxer {
    has_audio: bool,
    has_video: bool,
    header_written: bool,
    written: u64,
}

impl FlvMuxer {
    /// A muxer for a new stream; the file header is written before the first tag.
    pub fn new(has_audio: bool, has_video: bool) -> Self {
        FlvMuxer {
            has_audio,
            has_video,
            header_written: false,
            written: 0,
        }
    }

    /// A muxer continuing an existing stream of `existing_len` bytes (append mode): no header.
    pub fn resume(existing_len: u64) -> Self {
        FlvMuxer {
            has_audio: true,
            has_video: true,
            header_written: true,
            written: existing_len,
        }
    }

    /// Writes the file header now if it was not written yet.
    pub fn write_header(&mut self, out: &mut Vec<u8>) {
        if !self.header_written {
            write_file_header(out, self.has_audio, self.has_video);
            self.header_written = true;
            self.written += 13;
        }
    }

    /// Writes a tag (after the header if needed) and returns the tag's stream offset.
    pub fn write_tag(&mut self, out: &mut Vec<u8>, tag: &FlvTag) -> Result<u64, FlvError> {
        self.write_header(out);
        let offset = self.written;
        let n = write_tag(out, tag.tag_type, tag.timestamp, &tag.data)?;
        self.written += n as u64;
        Ok(offset)
    }

    /// Total bytes produced so far (including any resumed length).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_bytes_of_a_small_file() {
        let mut out = Vec::new();
        let mut m = FlvMuxer::new(true, false);
        let off = m
            .write_tag(
                &mut out,
                &FlvTag::new(TagType::Audio, 0x0102_0304, vec![0xAF, 0x00]),
            )
            .unwrap();
        assert_eq!(off, 13);
        assert_eq!(
            out,
            vec![
                b'F', b'L', b'V', 1, 4, 0, 0, 0, 9, // header
                0, 0, 0, 0, // PreviousTagSize0
                8, 0, 0, 2, 0x02, 0x03, 0x04, 0x01, 0, 0, 0, // tag header
                0xAF, 0x00, // data
                0, 0, 0, 13, // PreviousTagSize
            ]
        );
        assert_eq!(m.bytes_written(), out.len() as u64);
        let off2 = m
            .write_tag(&mut out, &FlvTag::new(TagType::Audio, 1, vec![]))
            .unwrap();
        assert_eq!(off2, 30);
    }

    #[test]
    fn resume_and_oversize() {
        let mut out = Vec::new();
        let mut m = FlvMuxer::resume(1000);
        assert_eq!(
            m.write_tag(&mut out, &FlvTag::new(TagType::Video, 0, vec![1]))
                .unwrap(),
            1000
        );
        assert_eq!(out.len(), 16);
        let huge = vec![0u8; MAX_TAG_DATA_SIZE as usize + 1];
        assert!(matches!(
            write_tag(&mut out, TagType::Video, 0, &huge),
            Err(FlvError::DataTooLong { .. })
        ));
        assert_eq!(out.len(), 16);
    }
}
