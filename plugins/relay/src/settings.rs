//! The relay's settings (`mods/relay.toml` once the host loads the plugin; documented in
//! `plugins/relay/relay.example.toml`, which a test keeps valid): push rules as
//! nginx-rtmp's `push` and SRS's forward users write them, plus reconnect timing and the
//! per-destination queue bound.
//!
//! ```toml
//! retry_ms = 1000          # first reconnect delay; doubles per failure...
//! max_retry_ms = 30000     # ...up to this (also the delay after a refusal)
//! queue_bytes = 4194304    # bytes a destination may have waiting before frames are dropped
//! stall_ms = 15000         # a destination that takes nothing for this long is reconnected
//!
//! [[push]]
//! streams = ["live/*", "fier/cam"]
//! to = ["rtmp://a.example/app/{name}", "rtmps://b.example/live/{app}-{name}?key=SECRET"]
//! ```
//!
//! `{app}`, `{name}` and `{stream}` (`APP/NAME`) are replaced by the live stream's name parts
//! (validated names: letters, digits, `_ - .`, so nothing needs escaping). Every error names the
//! key it is about (`push[1].to[0]`), and never shows a credential: URLs in errors and logs go
//! through [`UrlTemplate`]'s redacting `Display`.

use serde::Deserialize;

use crate::matching::Pattern;
use crate::redact;

/// Push rules, at most.
pub const MAX_RULES: usize = 64;
/// Patterns in one rule's `streams`, at most.
pub const MAX_PATTERNS: usize = 64;
/// Destination URLs over all rules, at most: also the most pushes one stream can start.
pub const MAX_DESTINATIONS: usize = 64;
/// The longest destination URL (template) accepted.
pub const MAX_URL_LEN: usize = 2048;

/// `retry_ms`: the default and the range accepted. Under 100 ms a dead destination would be
/// hammered; over a minute a short outage loses too much.
pub const DEFAULT_RETRY_MS: u64 = 1_000;
pub const RETRY_MS_RANGE: (u64, u64) = (100, 60_000);
/// `max_retry_ms`: the default and the most accepted (at least `retry_ms`).
pub const DEFAULT_MAX_RETRY_MS: u64 = 30_000;
pub const MAX_RETRY_MS_LIMIT: u64 = 600_000;
/// `queue_bytes`: the default (a few seconds of a 5 Mbit/s stream) and the range accepted (at
/// least a keyframe of a small stream; at most what a host can afford per destination).
pub const DEFAULT_QUEUE_BYTES: usize = 4 * 1024 * 1024;
pub const QUEUE_BYTES_RANGE: (usize, usize) = (64 * 1024, 256 * 1024 * 1024);
/// `stall_ms`: the default and the range accepted. TCP alone takes minutes to notice a
/// destination gone silent; a live stream cannot wait that long.
pub const DEFAULT_STALL_MS: u64 = 15_000;
pub const STALL_MS_RANGE: (u64, u64) = (1_000, 300_000);

/// The settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub push: Vec<PushRule>,
    pub retry_ms: u64,
    pub max_retry_ms: u64,
    pub queue_bytes: usize,
    pub stall_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            push: Vec::new(),
            retry_ms: DEFAULT_RETRY_MS,
            max_retry_ms: DEFAULT_MAX_RETRY_MS,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            stall_ms: DEFAULT_STALL_MS,
        }
    }
}

/// One `[[push]]` table: the streams it applies to and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRule {
    pub streams: Vec<Pattern>,
    pub to: Vec<UrlTemplate>,
}

/// A settings file the relay cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// TOML syntax, a wrong type, an unknown or missing key (toml's message names it).
    #[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Parse {
        line: Option<usize>,
        message: String,
    },
    /// A value of the right type that cannot be used. `value` is shown as given, except URLs,
    /// which are redacted.
    #[error("{key} = {value}: {why}")]
    Invalid {
        key: String,
        value: String,
        why: String,
    },
}

impl SettingsError {
    fn invalid(key: impl Into<String>, value: impl Into<String>, why: impl Into<String>) -> Self {
        SettingsError::Invalid {
            key: key.into(),
            value: value.into(),
            why: why.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default)]
    push: Vec<RawPush>,
    retry_ms: Option<u64>,
    max_retry_ms: Option<u64>,
    queue_bytes: Option<usize>,
    stall_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPush {
    streams: Vec<String>,
    to: Vec<String>,
}

impl Settings {
    /// Parses and validates the settings text. An empty text is no push at all.
    pub fn parse(text: &str) -> Result<Settings, SettingsError> {
        let raw: RawSettings = toml::from_str(text).map_err(|e| SettingsError::Parse {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_string(),
        })?;
        let retry_ms = raw.retry_ms.unwrap_or(DEFAULT_RETRY_MS);
        let (lo, hi) = RETRY_MS_RANGE;
        if !(lo..=hi).contains(&retry_ms) {
            let why = format!("must be from {lo} to {hi}");
            return Err(SettingsError::invalid(
                "retry_ms",
                retry_ms.to_string(),
                why,
            ));
        }
        let max_retry_ms = raw
            .max_retry_ms
            .unwrap_or(DEFAULT_MAX_RETRY_MS.max(retry_ms));
        if !(retry_ms..=MAX_RETRY_MS_LIMIT).contains(&max_retry_ms) {
            let why = format!("must be from retry_ms ({retry_ms}) to {MAX_RETRY_MS_LIMIT}");
            return Err(SettingsError::invalid(
                "max_retry_ms",
                max_retry_ms.to_string(),
                why,
            ));
        }
        let queue_bytes = raw.queue_bytes.unwrap_or(DEFAULT_QUEUE_BYTES);
        let (lo, hi) = QUEUE_BYTES_RANGE;
        if !(lo..=hi).contains(&queue_bytes) {
            let why = format!("must be from {lo} to {hi}");
            return Err(SettingsError::invalid(
                "queue_bytes",
                queue_bytes.to_string(),
                why,
            ));
        }
        let stall_ms = raw.stall_ms.unwrap_or(DEFAULT_STALL_MS);
        let (lo, hi) = STALL_MS_RANGE;
        if !(lo..=hi).contains(&stall_ms) {
            let why = format!("must be from {lo} to {hi}");
            return Err(SettingsError::invalid(
                "stall_ms",
                stall_ms.to_string(),
                why,
            ));
        }
        if raw.push.len() > MAX_RULES {
            let why = format!("at most {MAX_RULES} [[push]] tables");
            return Err(SettingsError::invalid(
                "push",
                raw.push.len().to_string(),
                why,
            ));
        }
        let mut push = Vec::with_capacity(raw.push.len());
        let mut destinations = 0;
        for (i, rule) in raw.push.into_iter().enumerate() {
            if rule.streams.is_empty() {
                let why = "names no stream (e.g. [\"live/*\"])";
                return Err(SettingsError::invalid(
                    format!("push[{i}].streams"),
                    "[]",
                    why,
                ));
            }
            if rule.streams.len() > MAX_PATTERNS {
                let why = format!("at most {MAX_PATTERNS} patterns");
                return Err(SettingsError::invalid(
                    format!("push[{i}].streams"),
                    rule.streams.len().to_string(),
                    why,
                ));
            }
            if rule.to.is_empty() {
                let why = "names no destination (e.g. [\"rtmp://host/app/{name}\"])";
                return Err(SettingsError::invalid(format!("push[{i}].to"), "[]", why));
            }
            let mut streams = Vec::with_capacity(rule.streams.len());
            for (j, s) in rule.streams.iter().enumerate() {
                let p = Pattern::parse(s).map_err(|why| {
                    SettingsError::invalid(format!("push[{i}].streams[{j}]"), format!("{s:?}"), why)
                })?;
                if !streams.contains(&p) {
                    streams.push(p);
                }
            }
            let mut to: Vec<UrlTemplate> = Vec::with_capacity(rule.to.len());
            for (j, url) in rule.to.iter().enumerate() {
                let t = UrlTemplate::parse(url).map_err(|why| {
                    SettingsError::invalid(
                        format!("push[{i}].to[{j}]"),
                        redact::url_hiding_name(url),
                        why,
                    )
                })?;
                if !to.iter().any(|u| u.text == t.text) {
                    to.push(t);
                }
            }
            destinations += to.len();
            if destinations > MAX_DESTINATIONS {
                let why = format!("more than {MAX_DESTINATIONS} destinations in all");
                return Err(SettingsError::invalid(
                    format!("push[{i}].to"),
                    destinations.to_string(),
                    why,
                ));
            }
            push.push(PushRule { streams, to });
        }
        Ok(Settings {
            push,
            retry_ms,
            max_retry_ms,
            queue_bytes,
            stall_ms,
        })
    }
}

/// 1-based line of byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        + 1
}

/// One piece of a destination URL template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    App,
    Name,
    Stream,
}

/// A destination URL with `{app}`, `{name}`, `{stream}` placeholders, checked to give a usable
/// `rtmp://` or `rtmps://` URL for any stream. `Display` redacts it as [`redact::url`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    text: String,
    pieces: Vec<Piece>,
    /// The stream name (before its query) has no placeholder: it may well be a platform's
    /// stream key (`rtmp://a.rtmp.youtube.com/live2/KEY`), so logs do not show it.
    literal_name: bool,
}

impl std::fmt::Debug for UrlTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UrlTemplate")
            .field(&redact::url(&self.text))
            .finish()
    }
}

impl std::fmt::Display for UrlTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.literal_name {
            f.write_str(&redact::url_hiding_name(&self.text))
        } else {
            f.write_str(&redact::url(&self.text))
        }
    }
}

impl UrlTemplate {
    /// Checks the placeholders and the URL they make (with sample names in them). The error
    /// says why, never repeating the URL (the caller shows it redacted).
    pub fn parse(text: &str) -> Result<UrlTemplate, String> {
        if text.len() > MAX_URL_LEN {
            return Err(format!("longer than {MAX_URL_LEN} bytes"));
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            let (before, from) = rest.split_at(open);
            if !before.is_empty() {
                pieces.push(Piece::Text(before.to_string()));
            }
            if from.starts_with('}') {
                return Err("a '}' without its '{'".into());
            }
            let close = from.find('}').ok_or("a '{' without its '}'")?;
            let piece = match from.get(1..close).unwrap_or_default() {
                "app" => Piece::App,
                "name" => Piece::Name,
                "stream" => Piece::Stream,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}} (there are {{app}}, {{name}}, {{stream}})"
                    ))
                }
            };
            pieces.push(piece);
            rest = from.get(close + 1..).unwrap_or_default();
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        let mut t = UrlTemplate {
            text: text.to_string(),
            pieces,
            literal_name: false,
        };
        // The scheme and the host are literal: a placeholder there would send a stream to a
        // server its publisher names.
        let authority_end = text
            .find("://")
            .map(|i| i + 3)
            .and_then(|start| {
                text.get(start..)
                    .map(|a| start + a.find('/').unwrap_or(a.len()))
            })
            .unwrap_or(text.len());
        if text.get(..authority_end).is_some_and(|a| a.contains('{')) {
            return Err("placeholders may only stand in the path and the query".into());
        }
        Destination::from_url(&t.render("app", "name"))?;
        // Where do placeholders end up? Render them as a marker and look.
        let marked = t.render("\u{1}", "\u{1}");
        t.literal_name = match fstream_rtmp_client::Target::parse_url(&marked) {
            Ok((_, target)) => !target
                .stream
                .split('?')
                .next()
                .is_some_and(|name| name.contains('\u{1}')),
            Err(_) => true,
        };
        Ok(t)
    }

    /// The destination for stream `app/name`.
    pub fn resolve(&self, app: &str, name: &str) -> Result<Destination, String> {
        let mut d = Destination::from_url(&self.render(app, name))?;
        if self.literal_name {
            d.shown = redact::url_hiding_name(&d.url);
            d.name_is_secret = true;
        }
        Ok(d)
    }

    /// The URL for stream `app/name`.
    pub fn render(&self, app: &str, name: &str) -> String {
        let mut s = String::with_capacity(self.text.len() + 2 * app.len() + 2 * name.len());
        for p in &self.pieces {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::App => s.push_str(app),
                Piece::Name => s.push_str(name),
                Piece::Stream => {
                    s.push_str(app);
                    s.push('/');
                    s.push_str(name);
                }
            }
        }
        s
    }
}

/// A resolved destination: where to connect, whether over TLS, and what to publish. `Display`
/// and `Debug` show it redacted (no query values, no literal stream key).
#[derive(Clone, PartialEq, Eq)]
pub struct Destination {
    /// `HOST:PORT` to connect to.
    pub addr: String,
    /// `rtmps://`: the host wraps the connection in TLS (server name: the host part of `addr`).
    pub tls: bool,
    /// The app, tcUrl and stream name (query included) the RTMP client publishes.
    pub target: fstream_rtmp_client::Target,
    url: String,
    shown: String,
    /// The stream name is hidden in logs too (a literal name in the settings).
    name_is_secret: bool,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .field("url", &self.shown)
            .finish()
    }
}

impl Destination {
    /// Parses a complete `rtmp://` or `rtmps://` URL. Credentials in a user part are refused
    /// (RTMP has no place for them; servers read them from the stream name's query).
    pub fn from_url(url: &str) -> Result<Destination, String> {
        let scheme = url.split_once("://").map(|(s, _)| s);
        let tls = match scheme {
            Some("rtmp") => false,
            Some("rtmps") => true,
            Some(other) => {
                return Err(format!(
                    "the scheme {other}:// cannot be pushed to (rtmp:// or rtmps://)"
                ))
            }
            None => return Err("not a URL (rtmp://HOST[:PORT]/APP/STREAM)".into()),
        };
        let authority = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .unwrap_or_default();
        if authority.contains('@') {
            return Err(
                "credentials before the host are not supported: put them in the query".into(),
            );
        }
        let (addr, target) =
            fstream_rtmp_client::Target::parse_url(url).map_err(|e| e.to_string())?;
        if addr.contains(['?', '#', ' ']) {
            return Err("the host part is not HOST[:PORT]".into());
        }
        // parse_url added the default port if there was none: there is one now.
        let port = addr.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
        if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
            return Err("the port is not a number from 1 to 65535".into());
        }
        Ok(Destination {
            addr,
            tls,
            target,
            url: url.to_string(),
            shown: redact::url(url),
            name_is_secret: false,
        })
    }

    /// The host part of `addr` (no port, no brackets): the TLS server name.
    pub fn server_name(&self) -> &str {
        let host = match self.addr.rsplit_once(':') {
            Some((h, port)) if !port.contains(']') => h,
            _ => self.addr.as_str(),
        };
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// `text` (a server's words, an error) with this destination's secrets hidden: its
    /// query, and its stream name when that is hidden too. A server may quote the name it
    /// refused, query and all.
    pub fn scrub(&self, text: &str) -> String {
        let stream = self.target.stream.as_str();
        let (name, query) = stream.split_once('?').unwrap_or((stream, ""));
        let mut out = text.to_string();
        let mut secrets = vec![query];
        if self.name_is_secret {
            secrets.push(name);
        }
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            out = out.replace(secret, redact::HIDDEN);
        }
        out
    }

    /// The full URL, credentials included: for the connection, never for a log.
    pub fn secret_url(&self) -> &str {
        &self.url
    }
}
