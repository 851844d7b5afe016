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
    let fmp4 = s.current_init.is_some() || s.segments.iter().any(|seg| seg.init.is_some());
    // EXT-X-MAP outside I-frame playlists needs version 6; fMP4 players expect 7.
    let version = match (fmp4, ll) {
        (true, _) => 7,
        (false, true) => 6,
        (false, false) => 3,
    };
    let mut p = String::new();
    let _ = writeln!(p, "#EXTM3U");
    let _ = writeln!(p, "#EXT-X-VERSION:{version}");
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
    let part_line = |p: &mut String, seq: u64, i: usize, part: &super::store::Part, fmp4| {
        let _ = writeln!(
            p,
            "#EXT-X-PART:DURATION={},URI=\"{}\"{}",
            secs(part.duration_ms),
            s.part_name(seq, i, fmp4),
            if part.independent {
                ",INDEPENDENT=YES"
            } else {
                ""
            }
        );
    };
    // The init segment in force; a segment that needs another is preceded by its EXT-X-MAP.
    let mut map: Option<u64> = None;
    let mut map_line = |p: &mut String, init: Option<u64>| {
        if let Some(id) = init.filter(|&id| map != Some(id)) {
            let _ = writeln!(p, "#EXT-X-MAP:URI=\"{}\"", s.init_name(id));
        }
        map = init;
    };
    for seg in &s.segments {
        if seg.discontinuity {
            let _ = writeln!(p, "#EXT-X-DISCONTINUITY");
        }
        map_line(&mut p, seg.init);
        let fmp4 = seg.init.is_some();
        if ll {
            for (i, part) in seg.parts.iter().enumerate() {
                part_line(&mut p, seg.seq, i, part, fmp4);
            }
        }
        let _ = writeln!(p, "#EXTINF:{},", secs(seg.duration_ms));
        let _ = writeln!(p, "{}", s.segment_name(seg.seq, fmp4));
    }
    if ll && s.live {
        let fmp4 = s.current_init.is_some();
        if s.open {
            if s.restart {
                let _ = writeln!(p, "#EXT-X-DISCONTINUITY");
            }
            map_line(&mut p, s.current_init);
        }
        for (i, part) in s.open_parts.iter().enumerate() {
            part_line(&mut p, s.next_seq, i, part, fmp4);
        }
        let next = if s.open { s.open_parts.len() } else { 0 };
        let _ = writeln!(
            p,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
            s.part_name(s.next_seq, next, fmp4)
        );
    }
    Some(p)
}
