//! `mods/fstream.toml`: the plugin's settings. Every key is optional; an unknown key is an error.

use fstream_abi::PublishConflict;
use serde::Deserialize;

/// The most a broadcaster may ask for as `bufsize` (the protocol's own cap).
pub const BUFSIZE_CAP: u64 = fstream_wire::MAX_BUFSIZE;

/// What happens when a second broadcaster arrives for a live user and channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecondBroadcaster {
    /// The newcomer takes over; watchers continue with its bytes.
    Replace,
    /// The newcomer is refused.
    Reject,
}

impl SecondBroadcaster {
    pub fn conflict(self) -> PublishConflict {
        match self {
            SecondBroadcaster::Replace => PublishConflict::Replace,
            SecondBroadcaster::Reject => PublishConflict::Reject,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where to listen unless `host.toml` or `--listen` says otherwise.
    pub listen: String,
    /// The longest prelude (bytes before the length) accepted.
    pub max_prelude_bytes: usize,
    /// The longest action string accepted (the LENGTH field's upper bound).
    pub max_action_bytes: u32,
    /// The whole preamble must arrive within this time after connecting.
    pub preamble_timeout_ms: u64,
    /// How long a watcher waits for a broadcaster that is not there yet.
    pub watch_wait_ms: u32,
    /// `replace` or `reject` a second broadcaster of a live user and channel.
    pub second_broadcaster: SecondBroadcaster,
    /// How long watchers stay attached after the broadcaster leaves.
    pub grace_ms: u32,
    /// Bytes a broadcaster may send before its publication has started (authentication).
    pub max_pending_bytes: usize,
    /// A watcher's queue bound in bytes; 0 takes the host's `hub.queue_bytes`.
    pub watcher_queue_bytes: u64,
    /// The largest `bufsize` a broadcaster may ask for (at most 16 MiB).
    pub max_bufsize: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:61920".into(),
            max_prelude_bytes: fstream_wire::DEFAULT_MAX_PRELUDE,
            max_action_bytes: fstream_wire::DEFAULT_MAX_ACTION_LEN,
            preamble_timeout_ms: 10_000,
            watch_wait_ms: 30_000,
            second_broadcaster: SecondBroadcaster::Replace,
            grace_ms: 5_000,
            max_pending_bytes: 4 * 1024 * 1024,
            watcher_queue_bytes: 0,
            max_bufsize: BUFSIZE_CAP,
        }
    }
}

pub use fstream_abi::sdk::SettingsError;

impl Settings {
    /// Parses and checks the text of `mods/fstream.toml` (empty text gives the defaults).
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let s: Settings = toml::from_str(text)
            .map_err(|e| SettingsError::parse(text, e.span().map(|r| r.start), e.message()))?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), SettingsError> {
        let invalid = |key, value: String, why| Err(SettingsError::Invalid { key, value, why });
        if self.listen.trim().is_empty() {
            return invalid("listen", format!("{:?}", self.listen), "must be HOST:PORT");
        }
        if self.max_prelude_bytes < 2 {
            return invalid(
                "max_prelude_bytes",
                self.max_prelude_bytes.to_string(),
                "must be at least 2 (the bare prelude is \"\\n\\n\")",
            );
        }
        if self.max_action_bytes == 0 {
            return invalid("max_action_bytes", "0".into(), "must be at least 1");
        }
        if self.preamble_timeout_ms == 0 {
            return invalid("preamble_timeout_ms", "0".into(), "must be at least 1");
        }
        if self.max_bufsize > BUFSIZE_CAP {
            return invalid(
                "max_bufsize",
                self.max_bufsize.to_string(),
                "must be at most 16777216 (16 MiB)",
            );
        }
        Ok(())
    }

    pub fn limits(&self) -> fstream_wire::Limits {
        fstream_wire::Limits {
            max_prelude: self.max_prelude_bytes,
            max_action_len: self.max_action_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_the_defaults() {
        let s = Settings::parse("").unwrap();
        assert_eq!(s.listen, "0.0.0.0:61920");
        assert_eq!(s.max_prelude_bytes, 8192);
        assert_eq!(s.max_action_bytes, 4096);
        assert_eq!(s.preamble_timeout_ms, 10_000);
        assert_eq!(s.watch_wait_ms, 30_000);
        assert_eq!(s.second_broadcaster, SecondBroadcaster::Replace);
        assert_eq!(s.grace_ms, 5_000);
        assert_eq!(s.watcher_queue_bytes, 0);
        assert_eq!(s.max_bufsize, 16 * 1024 * 1024);
    }

    #[test]
    fn the_documented_file_lists_every_key_with_its_default() {
        let text = include_str!("../../../mods/fstream.toml");
        let s = Settings::parse(text).unwrap();
        assert_eq!(format!("{s:?}"), format!("{:?}", Settings::default()));
        for key in [
            "listen",
            "max_prelude_bytes",
            "max_action_bytes",
            "preamble_timeout_ms",
            "watch_wait_ms",
            "second_broadcaster",
            "grace_ms",
            "max_pending_bytes",
            "watcher_queue_bytes",
            "max_bufsize",
        ] {
            assert!(
                text.contains(&format!("\n{key} = ")),
                "{key} is not documented"
            );
        }
    }

    #[test]
    fn reads_values() {
        let s = Settings::parse(
            "listen = \"127.0.0.1:5000\"\nsecond_broadcaster = \"reject\"\ngrace_ms = 10\n",
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:5000");
        assert_eq!(s.second_broadcaster.conflict(), PublishConflict::Reject);
        assert_eq!(s.grace_ms, 10);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Settings::parse("grace_ms = 1\nwatch_timeout = 5\n").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("watch_timeout"), "{text}");
        assert!(text.starts_with("line 2:"), "{text}");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Settings::parse("second_broadcaster = \"both\"").is_err());
        assert!(Settings::parse("max_bufsize = 16777217").is_err());
        assert!(Settings::parse("max_action_bytes = 0").is_err());
        assert!(Settings::parse("preamble_timeout_ms = 0").is_err());
        assert!(Settings::parse("grace_ms = -1").is_err());
    }
}
