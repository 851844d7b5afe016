//! `mods/auth-http.toml`: where the backend is and how to ask it, and where notifications go
//! (`[notify]`). Only `url` is required (or, for notifications alone, `[notify]` with
//! `actions = []`); an unknown key is an error that names it.

use std::collections::BTreeMap;

use fstream_abi::{sdk::SettingsError, AuthAction, NoticeKind};
use serde::Deserialize;

/// The host's own limit on an authentication (`auth_timeout_ms` in host.toml, 5 s by default).
/// The default timeout stays under it, so a slow backend meets this plugin's failure policy
/// rather than the host's blanket refusal.
pub const DEFAULT_TIMEOUT_MS: u64 = 3_000;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The backend, `http://HOST[:PORT]/PATH` or `https://...`.
    pub url: String,
    /// The body sent: `json` (MediaMTX, SRS) or `nginx` (nginx-rtmp's `on_publish` form).
    pub style: Style,
    /// How long one call may take, connecting included.
    pub timeout_ms: u64,
    /// Calls in flight at once, at most; past it a request gets `on_error` at once.
    pub max_concurrent: usize,
    /// The answer when the backend cannot give one (not 2xx, 401 or 403; a timeout; no
    /// connection; too many calls in flight).
    pub on_error: OnError,
    /// How long an allow or deny is reused for an identical request (0: never).
    pub cache_ms: u64,
    /// Answers kept in the cache, at most.
    pub cache_entries: usize,
    /// The actions the backend is asked about; others are left to the next authenticator.
    pub actions: Vec<ActionName>,
    /// When set, every call carries `X-Fstream-Signature: sha256=HEX`, the HMAC-SHA256 of the
    /// body with this key.
    pub hmac_secret: Option<String>,
    /// Extra headers sent with every call (`Authorization = "Bearer ..."`).
    pub headers: BTreeMap<String, String>,
    /// Notifications of publications, plays and recordings; off when absent.
    pub notify: Option<NotifySettings>,
}

/// `[notify]`: where each kind of notice goes, and how hard to try.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// Every kind of notice goes here unless its own key below names another URL.
    pub url: String,
    /// Per kind (nginx-rtmp's names): the URL for that kind; empty means `url`.
    pub on_publish: String,
    pub on_publish_done: String,
    pub on_play: String,
    pub on_play_done: String,
    pub on_record_done: String,
    /// The kinds sent (`publish`, `publish_done`, `play`, `play_done`, `record_done`).
    pub events: Vec<EventName>,
    /// How long one attempt may take, connecting included.
    pub timeout_ms: u64,
    /// Attempts per notice, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry; each further retry waits twice as long...
    pub retry_ms: u64,
    /// ...but never longer than this.
    pub max_retry_ms: u64,
    /// A notice this old (since its event) is not retried any more: after a long outage the
    /// backlog is tried once each, not with the whole backoff.
    pub max_age_ms: u64,
}

/// A kind of notice as written in `events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    Publish,
    PublishDone,
    Play,
    PlayDone,
    RecordDone,
}

impl EventName {
    pub const ALL: [EventName; 5] = [
        Self::Publish,
        Self::PublishDone,
        Self::Play,
        Self::PlayDone,
        Self::RecordDone,
    ];

    pub fn of(kind: NoticeKind) -> Option<Self> {
        match kind {
            NoticeKind::PublishStart => Some(Self::Publish),
            NoticeKind::PublishEnd => Some(Self::PublishDone),
            NoticeKind::PlayStart => Some(Self::Play),
            NoticeKind::PlayEnd => Some(Self::PlayDone),
            NoticeKind::RecordDone => Some(Self::RecordDone),
            _ => None,
        }
    }

    /// The word the backend sees (`"action"` in JSON, `call=` in the nginx form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::PublishDone => "publish_done",
            Self::Play => "play",
            Self::PlayDone => "play_done",
            Self::RecordDone => "record_done",
        }
    }
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            on_publish: String::new(),
            on_publish_done: String::new(),
            on_play: String::new(),
            on_play_done: String::new(),
            on_record_done: String::new(),
            events: EventName::ALL.to_vec(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_attempts: 5,
            retry_ms: 500,
            max_retry_ms: 10_000,
            max_age_ms: 120_000,
        }
    }
}

/// The most attempts a notice may be given.
pub const MAX_ATTEMPTS: u32 = 20;
/// The longest wait between two attempts, and the longest attempt, that may be set (10 min).
pub const MAX_WAIT_MS: u64 = 600_000;

impl NotifySettings {
    /// Where a notice of this kind goes, or `None` when it is not sent.
    pub fn url_for(&self, event: EventName) -> Option<&str> {
        if !self.events.contains(&event) {
            return None;
        }
        let own = match event {
            EventName::Publish => &self.on_publish,
            EventName::PublishDone => &self.on_publish_done,
            EventName::Play => &self.on_play,
            EventName::PlayDone => &self.on_play_done,
            EventName::RecordDone => &self.on_record_done,
        };
        [own, &self.url]
            .into_iter()
            .find(|u| !u.is_empty())
            .map(String::as_str)
    }

    /// The kinds that are sent somewhere.
    pub fn events(&self) -> Vec<&'static str> {
        EventName::ALL
            .into_iter()
            .filter(|e| self.url_for(*e).is_some())
            .map(EventName::as_str)
            .collect()
    }

    /// The wait before attempt `attempt + 1` (after `attempt` failures, 1 or more).
    pub fn backoff(&self, attempt: u32) -> std::time::Duration {
        let factor = 1u64
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u64::MAX);
        std::time::Duration::from_millis(
            self.retry_ms.saturating_mul(factor).min(self.max_retry_ms),
        )
    }

    fn check(&self) -> Result<(), SettingsError> {
        let invalid = |key, value: &dyn std::fmt::Display, why| SettingsError::Invalid {
            key,
            value: value.to_string(),
            why,
        };
        for (key, url) in [
            ("notify.url", &self.url),
            ("notify.on_publish", &self.on_publish),
            ("notify.on_publish_done", &self.on_publish_done),
            ("notify.on_play", &self.on_play),
            ("notify.on_play_done", &self.on_play_done),
            ("notify.on_record_done", &self.on_record_done),
        ] {
            if !url.is_empty() && !is_http_url(url) {
                return Err(invalid(
                    key,
                    &format!("{url:?}"),
                    "must start with http:// or https://",
                ));
            }
        }
        if self.events().is_empty() {
            return Err(invalid(
                "notify",
                &"[notify]",
                "sends nothing: set url (or on_publish, ...) and keep events non-empty",
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_WAIT_MS {
            return Err(invalid(
                "notify.timeout_ms",
                &self.timeout_ms,
                "must be from 1 to 600000",
            ));
        }
        if self.max_attempts == 0 || self.max_attempts > MAX_ATTEMPTS {
            return Err(invalid(
                "notify.max_attempts",
                &self.max_attempts,
                "must be from 1 to 20",
            ));
        }
        if self.retry_ms == 0 {
            return Err(invalid("notify.retry_ms", &0, "must be at least 1"));
        }
        if self.max_retry_ms < self.retry_ms || self.max_retry_ms > MAX_WAIT_MS {
            return Err(invalid(
                "notify.max_retry_ms",
                &self.max_retry_ms,
                "must be at least retry_ms and at most 600000",
            ));
        }
        Ok(())
    }
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    Json,
    Nginx,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    Deny,
    Allow,
}

/// An action as written in `actions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionName {
    Publish,
    Play,
    Token,
    Connect,
}

impl ActionName {
    pub const ALL: [ActionName; 4] = [Self::Publish, Self::Play, Self::Token, Self::Connect];

    pub fn of(action: AuthAction) -> Option<Self> {
        match action {
            AuthAction::Publish => Some(Self::Publish),
            AuthAction::Play => Some(Self::Play),
            AuthAction::Token => Some(Self::Token),
            AuthAction::Connect => Some(Self::Connect),
            _ => None,
        }
    }

    /// The word the backend sees (`"action"` in JSON, `call=` in the nginx form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Play => "play",
            Self::Token => "token",
            Self::Connect => "connect",
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            url: String::new(),
            style: Style::Json,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_concurrent: 32,
            on_error: OnError::Deny,
            cache_ms: 0,
            cache_entries: 1024,
            actions: ActionName::ALL.to_vec(),
            hmac_secret: None,
            headers: BTreeMap::new(),
            notify: None,
        }
    }
}

impl Settings {
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let s: Settings = toml::from_str(text)
            .map_err(|e| SettingsError::parse(text, e.span().map(|r| r.start), e.message()))?;
        let invalid = |key, value: &dyn std::fmt::Display, why| SettingsError::Invalid {
            key,
            value: value.to_string(),
            why,
        };
        // Notifications alone need no authentication backend.
        let notify_only = s.notify.is_some() && s.actions.is_empty();
        if s.url.is_empty() && !notify_only {
            return Err(SettingsError::parse(
                text,
                None,
                "url is required (url = \"http://127.0.0.1:8000/auth\")",
            ));
        }
        if !s.url.is_empty() && !is_http_url(&s.url) {
            return Err(invalid(
                "url",
                &format!("{:?}", s.url),
                "must start with http:// or https://",
            ));
        }
        if s.timeout_ms == 0 {
            return Err(invalid("timeout_ms", &0, "must be at least 1"));
        }
        if s.max_concurrent == 0 {
            return Err(invalid("max_concurrent", &0, "must be at least 1"));
        }
        if s.cache_ms > 0 && s.cache_entries == 0 {
            return Err(invalid(
                "cache_entries",
                &0,
                "must be at least 1 when cache_ms is set",
            ));
        }
        if matches!(&s.hmac_secret, Some(k) if k.is_empty()) {
            return Err(invalid(
                "hmac_secret",
                &"\"\"",
                "an empty key signs nothing; leave it out instead",
            ));
        }
        for (name, value) in &s.headers {
            if !valid_header_name(name) {
                return Err(invalid(
                    "headers",
                    &format!("{name:?}"),
                    "not a header name (letters, digits and !#$%&'*+-.^_`|~)",
                ));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(invalid(
                    "headers",
                    &format!("{name:?}"),
                    "a header value may not hold CR, LF or NUL",
                ));
            }
        }
        if let Some(n) = &s.notify {
            n.check()?;
        }
        Ok(s)
    }

    /// Whether the backend is asked about `action`.
    pub fn asks(&self, action: ActionName) -> bool {
        self.actions.contains(&action)
    }
}

/// An HTTP token (RFC 9110 section 5.6.2).
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_alone_is_a_whole_configuration_with_the_documented_defaults() {
        let s = Settings::parse("url = \"http://127.0.0.1:9/auth\"\n").unwrap();
        assert_eq!(
            s,
            Settings {
                url: "http://127.0.0.1:9/auth".into(),
                ..Settings::default()
            }
        );
        assert_eq!(s.style, Style::Json);
        assert_eq!(s.timeout_ms, 3_000);
        assert_eq!(s.on_error, OnError::Deny);
        assert_eq!(s.cache_ms, 0);
        assert!(ActionName::ALL.iter().all(|a| s.asks(*a)));
    }

    #[test]
    fn the_default_timeout_is_below_the_hosts() {
        let host: toml::Table = toml::from_str(include_str!("../../../mods/host.toml")).unwrap();
        let host_ms = host["auth_timeout_ms"].as_integer().unwrap();
        assert!(i64::try_from(DEFAULT_TIMEOUT_MS).unwrap() < host_ms);
    }

    #[test]
    fn every_key_parses() {
        let s = Settings::parse(
            "url = \"https://auth.example/check\"\nstyle = \"nginx\"\ntimeout_ms = 500\n\
             max_concurrent = 4\non_error = \"allow\"\ncache_ms = 1000\ncache_entries = 10\n\
             actions = [\"publish\", \"token\"]\nhmac_secret = \"k\"\n\
             [headers]\nAuthorization = \"Bearer x\"\n",
        )
        .unwrap();
        assert_eq!(s.style, Style::Nginx);
        assert_eq!(s.timeout_ms, 500);
        assert_eq!(s.max_concurrent, 4);
        assert_eq!(s.on_error, OnError::Allow);
        assert_eq!((s.cache_ms, s.cache_entries), (1000, 10));
        assert!(s.asks(ActionName::Publish) && s.asks(ActionName::Token));
        assert!(!s.asks(ActionName::Play) && !s.asks(ActionName::Connect));
        assert_eq!(s.hmac_secret.as_deref(), Some("k"));
        assert_eq!(s.headers["Authorization"], "Bearer x");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_that_name_them() {
        let e = Settings::parse("url = \"http://a/\"\ntimeout = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timeout") && e.contains("line 2"), "{e}");
        let e = Settings::parse("").unwrap_err().to_string();
        assert!(e.contains("url is required"), "{e}");
        let e = Settings::parse("url = \"ftp://a/\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("url = "), "{e}");
        let e = Settings::parse("url = \"http://a/\"\nstyle = \"xml\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("json") && e.contains("nginx"), "{e}");
        let e = Settings::parse("url = \"http://a/\"\nactions = [\"watch\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("publish"), "{e}");
        let e = Settings::parse("url = \"http://a/\"\non_error = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("deny"), "{e}");
        for bad in [
            "timeout_ms = 0",
            "max_concurrent = 0",
            "hmac_secret = \"\"",
            "cache_ms = 5\ncache_entries = 0",
            "[headers]\n\"a b\" = \"x\"",
            "[headers]\nX = \"a\\r\\nInjected: 1\"",
        ] {
            let text = format!("url = \"http://a/\"\n{bad}\n");
            assert!(Settings::parse(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn notify_parses_with_its_defaults_and_checks_its_values() {
        let s = Settings::parse("url = \"http://a/\"\n[notify]\nurl = \"http://e/\"\n").unwrap();
        let n = s.notify.unwrap();
        assert_eq!(
            n,
            NotifySettings {
                url: "http://e/".into(),
                ..NotifySettings::default()
            }
        );
        assert_eq!(
            n.events(),
            [
                "publish",
                "publish_done",
                "play",
                "play_done",
                "record_done"
            ]
        );
        assert_eq!(n.url_for(EventName::PlayDone), Some("http://e/"));
        // Notifications alone: no url, no actions.
        let s = Settings::parse("actions = []\n[notify]\non_publish = \"http://e/p\"\n").unwrap();
        assert_eq!(s.notify.unwrap().events(), ["publish"]);
        for bad in [
            "[notify]\n",
            "[notify]\nurl = \"ftp://e/\"",
            "[notify]\nurl = \"http://e/\"\nevents = []",
            "[notify]\nurl = \"http://e/\"\nmax_attempts = 0",
            "[notify]\nurl = \"http://e/\"\nmax_attempts = 21",
            "[notify]\nurl = \"http://e/\"\nretry_ms = 0",
            "[notify]\nurl = \"http://e/\"\nretry_ms = 100\nmax_retry_ms = 50",
            "[notify]\nurl = \"http://e/\"\ntimeout_ms = 0",
            "[notify]\nurl = \"http://e/\"\ntimeout_ms = 600001",
            "[notify]\nurl = \"http://e/\"\nmax_retry_ms = 600001",
            "[notify]\nurl = \"http://e/\"\nevents = [\"publish_start\"]",
            "[notify]\nurl = \"http://e/\"\nretries = 3",
        ] {
            let text = format!("url = \"http://a/\"\n{bad}\n");
            assert!(Settings::parse(&text).is_err(), "{bad}");
        }
        // Without [notify], or with actions asked, url stays required.
        assert!(Settings::parse("actions = []\n").is_err());
        assert!(Settings::parse("[notify]\nurl = \"http://e/\"\n").is_err());
        let e =
            Settings::parse("url = \"http://a/\"\n[notify]\nurl = \"http://e/\"\nretries = 3\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("retries"), "{e}");
    }

    #[test]
    fn the_stock_file_parses_to_the_defaults_but_its_url() {
        let text = include_str!("../../../mods/auth-http.toml");
        let s = Settings::parse(text).unwrap();
        assert_eq!(
            s,
            Settings {
                url: s.url.clone(),
                ..Settings::default()
            }
        );
    }
}
