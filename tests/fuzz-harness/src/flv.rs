//! `flv_tag`: core/media's `FlvDemuxer` and the tag helpers built on it.

use fstream_media::flv::{
    self, DemuxedTag, FlvDemuxer, FlvError, FlvHeader, FlvMuxer, KeyframeIndexer, TagType,
};
use fstream_media::rtmp::RtmpMessage;

use crate::media::AMF_LIMITS;

/// What a demuxer made of a whole input.
#[derive(Debug)]
struct Outcome {
    header: Option<FlvHeader>,
    tags: Vec<DemuxedTag>,
    error: Option<FlvError>,
}

fn demux(mut d: FlvDemuxer, input: &[u8], step: usize) -> Outcome {
    let mut tags = Vec::new();
    for piece in input.chunks(step.max(1)) {
        d.push(piece);
        loop {
            match d.next_tag() {
                Ok(Some(t)) => tags.push(t),
                Ok(None) => break,
                Err(e) => {
                    // A failed demuxer repeats its error.
                    assert_eq!(d.next_tag(), Err(e.clone()));
                    return Outcome {
                        header: d.header().copied(),
                        tags,
                        error: Some(e),
                    };
                }
            }
        }
        // Without an error, all but the start of one tag (and its PreviousTagSize) is consumed.
        assert!(d.buffered() <= input.len());
    }
    Outcome {
        header: d.header().copied(),
        tags,
        error: None,
    }
}

/// Errors must agree too, except that a bad signature is reported from the bytes seen so far.
fn same_error(a: &Option<FlvError>, b: &Option<FlvError>) -> bool {
    match (a, b) {
        (Some(FlvError::BadSignature { found: x }), Some(FlvError::BadSignature { found: y })) => {
            x[0] == y[0]
        }
        _ => a == b,
    }
}

/// The demuxer fed at once and in pieces agrees; every tag re-muxes and demuxes to itself;
/// the tag helpers accept every tag.
/// Reads `input` as the VOD source does: exactly what [`FlvDemuxer::needed`] asks each time,
/// the room given back after every tag.
fn demux_as_asked(mut d: FlvDemuxer, input: &[u8]) -> Outcome {
    let mut reader = std::io::Cursor::new(input);
    let mut tags = Vec::new();
    loop {
        loop {
            match d.next_tag() {
                Ok(Some(t)) => {
                    d.release_spare(64);
                    tags.push(t);
                }
                Ok(None) => break,
                Err(e) => {
                    return Outcome {
                        header: d.header().copied(),
                        tags,
                        error: Some(e),
                    }
                }
            }
        }
        let want = d.needed();
        assert!(want > 0, "a demuxer without an error asks for nothing");
        if d.read_from(&mut reader, want).unwrap_or(0) == 0 {
            return Outcome {
                header: d.header().copied(),
                tags,
                error: None,
            };
        }
    }
}

pub fn flv_tag(data: &[u8]) {
    let (c, input) = crate::control(data);
    let max_tag = if c & 0x80 != 0 { 64 } else { 1 << 20 };
    let start = u64::from(c & 0x0F) * 1000;
    let make = || {
        if c & 0x40 != 0 {
            FlvDemuxer::at_tag(max_tag, start)
        } else {
            FlvDemuxer::new(max_tag)
        }
    };
    let whole = demux(make(), input, input.len());
    let pieces = demux(make(), input, usize::from(c & 0x3F) + 1);
    assert_eq!(whole.header, pieces.header, "whole vs pieces: header");
    assert_eq!(whole.tags, pieces.tags, "whole vs pieces: tags");
    assert!(
        same_error(&whole.error, &pieces.error),
        "whole vs pieces: {:?} vs {:?}",
        whole.error,
        pieces.error
    );
    let asked = demux_as_asked(make(), input);
    assert_eq!(whole.header, asked.header, "whole vs as asked: header");
    assert_eq!(whole.tags, asked.tags, "whole vs as asked: tags");
    assert!(
        same_error(&whole.error, &asked.error),
        "whole vs as asked: {:?} vs {:?}",
        whole.error,
        asked.error
    );

    let mut last_offset = None;
    let mut index = KeyframeIndexer::new();
    for t in &whole.tags {
        assert!(t.tag.data.len() <= max_tag as usize);
        if let Some(prev) = last_offset {
            assert!(t.offset > prev, "tag offsets must grow");
        }
        last_offset = Some(t.offset);
        index.observe(t.offset, &t.tag);
        match t.tag.tag_type {
            TagType::Video => {
                let _ = flv::classify_video(&t.tag.data);
                let _ = flv::is_video_keyframe(&t.tag.data);
                let _ = flv::is_video_sequence_header(&t.tag.data);
            }
            TagType::Audio => {
                let _ = flv::classify_audio(&t.tag.data);
                let _ = flv::is_audio_sequence_header(&t.tag.data);
            }
            TagType::Script => {
                let _ = flv::parse_script_data(&t.tag.data, &AMF_LIMITS);
                let _ = flv::parse_on_metadata(&t.tag.data, &AMF_LIMITS);
            }
        }
        let m = RtmpMessage::from_flv_tag(&t.tag, 4, 1);
        assert_eq!(m.to_flv_tag().as_ref(), Some(&t.tag));
    }
    let entries = index.into_entries();
    if let Some(first) = entries.first() {
        assert!(flv::find_keyframe(&entries, first.timestamp).is_some());
    }

    // Re-mux what was read and read it back.
    let (a, v) = whole
        .header
        .map(|h| (h.has_audio, h.has_video))
        .unwrap_or((true, true));
    let mut muxer = FlvMuxer::new(a, v);
    let mut file = Vec::new();
    let mut offsets = Vec::new();
    for t in &whole.tags {
        let at = muxer
            .write_tag(&mut file, &t.tag)
            .unwrap_or_else(|e| panic!("re-muxing a demuxed tag failed: {e}"));
        offsets.push(at);
    }
    assert_eq!(muxer.bytes_written(), file.len() as u64);
    if whole.tags.is_empty() {
        return;
    }
    let again = demux(FlvDemuxer::new(max_tag), &file, file.len());
    assert_eq!(again.error, None, "re-muxed file does not demux");
    let tags: Vec<_> = again.tags.iter().map(|t| &t.tag).collect();
    let expected: Vec<_> = whole.tags.iter().map(|t| &t.tag).collect();
    assert_eq!(tags, expected, "re-muxed tags differ");
    let got_offsets: Vec<u64> = again.tags.iter().map(|t| t.offset).collect();
    assert_eq!(
        got_offsets, offsets,
        "muxer and demuxer disagree on offsets"
    );
}
