//! `mods/http.toml`: the HTTP frontend's settings. Every key is optional; an unknown key is an
//! error that names it.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where to listen unless `host.toml` or `--listen http=ADDR` says otherwise.
    pub listen: String,
    /// Where the control listener (protocol `api`) listens unless `host.toml` or
    /// `--listen api=ADDR` says otherwise; empty: no control listener. It serves the HTTP
    /// handlers' paths only (the `control-api` plugin's API, metrics and dashboard), never
    /// streams.
    pub api_listen: String,
    /// The request line and headers together, at most (past it: 431, or 414 for the line).
    pub max_head_bytes: usize,
    /// Headers in one request, at most (past it: 431).
    pub max_headers: usize,
    /// A request body, at most (the server takes none; a larger one gets 413).
    pub max_body_bytes: u64,
    /// A connection with no complete request for this long is closed (a new connection, or
    /// one kept alive between requests).
    pub idle_timeout_ms: u64,
    /// Requests on one kept-alive connection, at most; the last answer says `Connection: close`.
    pub max_requests_per_connection: u32,
    /// An HTTP-FLV viewer's queue bound in bytes; 0 takes the host's `hub.queue_bytes`.
    pub viewer_queue_bytes: u64,
    /// `Access-Control-Allow-Origin` on every answer (empty: no CORS headers).
    pub cors_origin: String,
    /// Watch pages report what they play to `/_report` this often, and the server logs each
    /// report (0: no reports; the endpoint then answers 404).
    pub watch_report_ms: u64,
    /// HLS for every live stream (`/APP/STREAM/index.m3u8`).
    pub hls: bool,
    /// A segment is cut at the first keyframe after this much stream time.
    pub hls_segment_ms: u32,
    /// Segments kept per stream (the playlist's window).
    pub hls_window: usize,
    /// The segment format; HEVC and AV1 are fMP4 whatever it says.
    pub hls_format: HlsFormat,
    /// Low-Latency HLS: partial segments are cut every this much stream time (at the first
    /// frame after it), announced as `PART-TARGET` = this + 100 ms, and playlist reloads may
    /// block (`_HLS_msn`, `_HLS_part`). 0: plain HLS.
    pub hls_part_ms: u32,
    /// Streams with HLS at once (ended ones are dropped first; past it new streams get none).
    pub hls_max_streams: usize,
    /// A segment larger than this is cut, and the next starts at a keyframe.
    pub hls_max_segment_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HlsFormat {
    /// MPEG-TS segments (H.264 and AAC).
    Mpegts,
    /// Fragmented MP4 (CMAF) segments.
    Fmp4,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            api_listen: "127.0.0.1:9997".into(),
            max_head_bytes: 8 * 1024,
            max_headers: 64,
            max_body_bytes: 16 * 1024,
            idle_timeout_ms: 15_000,
            max_requests_per_connection: 1_000,
            viewer_queue_bytes: 0,
            cors_origin: "*".into(),
            watch_report_ms: 0,
            hls: true,
            hls_segment_ms: 2_000,
            hls_window: 6,
            hls_format: HlsFormat::Mpegts,
            hls_part_ms: 200,
            hls_max_streams: 256,
            hls_max_segment_bytes: 32 << 20,
        }
    }
}

impl Settings {
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let s = Settings::parse("").unwrap();
        assert_eq!(s.listen, "0.0.0.0:8080");
        let e = Settings::parse("max_head = 1\n").unwrap_err().to_string();
        assert!(e.contains("max_head"), "{e}");
        let s = Settings::parse("hls_format = \"fmp4\"\n").unwrap();
        assert_eq!(s.hls_format, HlsFormat::Fmp4);
        let e = Settings::parse("hls_format = \"mp4\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mpegts"), "{e}");
    }

    #[test]
    fn the_stock_file_says_the_defaults() {
        let text = include_str!("../../../mods/http.toml");
        let s = Settings::parse(text).unwrap();
        assert_eq!(format!("{s:?}"), format!("{:?}", Settings::default()));
    }
}
