//! Query strings clients give (`cam?user_password=s3cret&token=...`): percent-decoding and
//! the redaction that keeps credentials out of logs, sinks, notices and the stats API.

/// Keys whose values are credentials: [`redacted`] leaves them out.
pub const SECRET_KEYS: [&str; 4] = ["user_password", "password", "token", "channel_password"];

/// The undecoded query string without the items that carry credentials (their keys decoded
/// and normalised as [`Query::parse`] reads them), the rest as the client wrote it: what
/// authenticators may pass on (to a backend, to a log) as the client's own arguments.
pub fn redacted(text: &str) -> String {
    text.split('&')
        .filter(|item| {
            let raw_key = item.split_once('=').map_or(*item, |(k, _)| k);
            let key = normalise_key(&String::from_utf8_lossy(&percent_decode(raw_key)));
            !item.is_empty() && !SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str())
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `-` becomes `_`: `user-password` and `user_password` are one key (as in fstream actions).
pub fn normalise_key(key: &str) -> String {
    key.replace('-', "_")
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes; anything else, malformed escapes included, is copied as it is.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            if let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}
