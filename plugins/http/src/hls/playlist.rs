//! The media playlist of a stream's window (RFC 8216).

use std::fmt::Write;

use super::store::StreamSegments;

/// The playlist, or `None` while no segment is complete yet.
pub fn media_playlist(s: &StreamSegments) -> Option<String> {
    let first = s.segments.front()?;
    let target = s
        .segments
        .iter()
        .map(|seg| seg.duration_ms.div_ceil(1000))
        .max()
        .unwrap_or(1)
        .max(1);
    let mut p = String::new();
    let _ = writeln!(p, "#EXTM3U");
    let _ = writeln!(p, "#EXT-X-VERSION:3");
    let _ = writeln!(p, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(p, "#EXT-X-MEDIA-SEQUENCE:{}", first.seq);
    if s.discontinuity_seq > 0 {
        let _ = writeln!(p, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", s.discontinuity_seq);
    }
    for seg in &s.segments {
        if seg.discontinuity {
            let _ = writeln!(p, "#EXT-X-DISCONTINUITY");
        }
        let _ = writeln!(
            p,
            "#EXTINF:{}.{:03},",
            seg.duration_ms / 1000,
            seg.duration_ms % 1000
        );
        let _ = writeln!(p, "{}", s.segment_name(seg.seq));
    }
    Some(p)
}
