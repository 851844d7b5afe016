//! The watch pages: `/` lists the live streams, `/APP/STREAM` plays one in the browser with the
//! vendored players (assets/vendor, see VENDORED.md), which `/_player/` serves.

/// A player file: its versioned path name, type and bytes.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

pub const ASSETS: &[Asset] = &[
    Asset {
        name: "hls-1.6.15.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/hls-1.6.15.min.js"),
    },
    Asset {
        name: "mpegts-1.8.0.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/mpegts-1.8.0.js"),
    },
];

/// By name: the bytes are half a megabyte.
impl std::fmt::Debug for Asset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Asset({})", self.name)
    }
}

impl PartialEq for Asset {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Asset {}

pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

const WATCH: &str = include_str!("../assets/watch.html");

/// The page that plays `stream` (a validated `APP/NAME`: letters, digits, `_-.` and one `/`,
/// nothing that needs escaping in HTML or a script string).
///
/// `low_latency`: the server cuts parts. Without them hls.js would sit three segments behind
/// the live edge (`liveSyncDurationCount` 3); the page asks for two, which keeps plain HLS
/// within three segment durations of the publisher (BENCHMARKS.md, "Publish to display").
pub fn watch_page(stream: &str, report_ms: u64, low_latency: bool) -> String {
    let hls = if low_latency {
        "{ lowLatencyMode: true, backBufferLength: 30 }"
    } else {
        "{ lowLatencyMode: true, backBufferLength: 30, liveSyncDurationCount: 2 }"
    };
    WATCH
        .replace("{{STREAM}}", stream)
        .replace("{{REPORT_MS}}", &report_ms.to_string())
        .replace("{{HLS_CONFIG}}", hls)
}

/// The list of live streams (validated names, as above).
pub fn index_page(live: &[String]) -> String {
    let mut items = String::new();
    for s in live {
        items.push_str(&format!(
            "<li><a href=\"/{s}\">{s}</a> (<a href=\"/{s}?player=flv\">HTTP-FLV</a>, \
             <a href=\"/{s}/index.m3u8\">playlist</a>)</li>\n"
        ));
    }
    if live.is_empty() {
        items.push_str("<li>No stream is live.</li>\n");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Live streams - fstream-host</title></head>\n<body><h1>Live streams</h1>\n<ul>\n\
         {items}</ul>\n</body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_name_their_streams_and_players() {
        let w = watch_page("fier/cam", 0, true);
        assert!(w.contains("const stream = \"fier/cam\";"));
        assert!(w.contains("/_player/hls-1.6.15.min.js") && w.contains("/_player/mpegts-1.8.0.js"));
        assert!(!w.contains("{{"));
        assert!(!w.contains("liveSyncDurationCount"));
        let plain = watch_page("fier/cam", 0, false);
        assert!(
            plain.contains("liveSyncDurationCount: 2"),
            "plain HLS sits two segments back"
        );
        for a in ASSETS {
            assert!(w.contains(&format!("/_player/{}", a.name)), "{}", a.name);
            assert!(a.bytes.len() > 100_000);
        }
        let i = index_page(&["fier/cam".into()]);
        assert!(i.contains("<a href=\"/fier/cam\">fier/cam</a>"));
        assert!(index_page(&[]).contains("No stream is live."));
    }
}
