//! The media playlist of a stream's window (RFC 8216), with Low-Latency HLS's partial segments
//! when they are cut (draft-pantos-hls-rfc8216bis: `EXT-X-PART`, `EXT-X-PRELOAD-HINT`, blocking
//! reload announced in `EXT-X-SERVER-CONTROL`).

use std::fmt::Write;

use super::store::StreamSegments;

/// Seconds with three decimals.
fn secs(ms: u32) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The playlist, or `None` while no segment is complete yet. `part_target_ms`: the advertised
/// part target when parts are cut (Low-Latency HLS), 0 otherwise.
pub fn media_playlist(s: &StreamSegments, part_target_ms: u32) -> Option<String> {
    let first = s.segments.front()?;
    let target = s
        .segments
        .iter()
        .map(|seg| seg.duration_ms.div_ceil(1000))
        .max()
        .unwrap_or(1)
        .max(1);
    let ll = part_target_ms > 0;
    let mut p = String::new();
    let _ = writeln!(p, "#EXTM3U");
    let _ = writeln!(p, "#EXT-X-VERSION:{}", if ll { 6 } else { 3 });
    let _ = writeln!(p, "#EXT-X-TARGETDURATION:{target}");
    if ll {
        // A player stays at least three part targets behind the live edge.
        let _ = writeln!(
            p,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}",
            secs(part_target_ms * 3)
        );
        let _ = writeln!(p, "#EXT-X-PART-INF:PART-TARGET={}", secs(part_target_ms));
    }
    let _ = writeln!(p, "#EXT-X-MEDIA-SEQUENCE:{}", first.seq);
    if s.discontinuity_seq > 0 {
        let _ = writeln!(p, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", s.discontinuity_seq);
    }
    let part_line = |p: &mut String, seq: u64, i: usize, part: &super::store::Part| {
        let _ = writeln!(
            p,
            "#EXT-X-PART:DURATION={},URI=\"{}\"{}",
            secs(part.duration_ms),
            s.part_name(seq, i),
            if part.independent {
                ",INDEPENDENT=YES"
            } else {
                ""
            }
        );
    };
    for seg in &s.segments {
        if seg.discontinuity {
            let _ = writeln!(p, "#EXT-X-DISCONTINUITY");
        }
        if ll {
            for (i, part) in seg.parts.iter().enumerate() {
                part_line(&mut p, seg.seq, i, part);
            }
        }
        let _ = writeln!(p, "#EXTINF:{},", secs(seg.duration_ms));
        let _ = writeln!(p, "{}", s.segment_name(seg.seq));
    }
    if ll && s.live {
        if s.restart && s.open {
            let _ = writeln!(p, "#EXT-X-DISCONTINUITY");
        }
        for (i, part) in s.open_parts.iter().enumerate() {
            part_line(&mut p, s.next_seq, i, part);
        }
        let next = if s.open { s.open_parts.len() } else { 0 };
        let _ = writeln!(
            p,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
            s.part_name(s.next_seq, next)
        );
    }
    Some(p)
}
