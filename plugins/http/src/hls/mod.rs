//! HLS: every live stream segmented into MPEG-TS in memory, a rolling window of segments and
//! its playlist, served by the HTTP sessions (`/APP/STREAM/index.m3u8` and the segments beside
//! it). A sink of this plugin ([`sink`]) cuts the segments; the [`store`] holds them, shared
//! with the sessions; [`playlist`] writes the playlist.
//!
//! Segments are cut at video keyframes once `hls_segment_ms` has passed (audio-only streams at
//! any frame), kept `hls_window` at a time, and named `EPOCH-SEQ.ts`, where EPOCH is the time
//! the stream was first published: a name is never reused, even across server restarts, so a
//! cache may keep a segment for ever. The media sequence continues across a publisher's
//! restart, which starts a new segment marked `EXT-X-DISCONTINUITY`.

pub mod playlist;
pub mod sink;
pub mod store;
