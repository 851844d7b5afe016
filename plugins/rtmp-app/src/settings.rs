//! `mods/rtmp-app.toml`.

use fstream_abi::names::{validate_part, NameError};
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The app served by the VOD source: plays are open, publishing is refused. Empty: none.
    pub vod_app: String,
    /// When set, only these apps (and `vod_app`) are accepted; others get
    /// "Application not found: NAME".
    pub allowed_apps: Option<Vec<String>>,
    /// Publishing needs credentials the authenticators accept. Turn off only on a closed network.
    pub require_publish_auth: bool,
    /// Plays are asked of the authenticators too (credentials from the query, if any; the
    /// user is the app), so a backend may refuse or rename them. Off: plays are open.
    pub play_auth: bool,
    /// A publish of type `record` or `append` is recorded only when the authenticator that
    /// allowed it granted recording (`Extension::MayRecord(true)`; auth-ini: `record = yes`).
    /// Otherwise the stream is published live and not recorded. When false, every publisher may
    /// ask for a recording, except users whose grant says `MayRecord(false)`.
    pub record_requires_permission: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            vod_app: "vod".into(),
            allowed_apps: None,
            require_publish_auth: true,
            play_auth: false,
            record_requires_permission: true,
        }
    }
}

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("{0}")]
    Toml(String),
    #[error("{field}: {name:?} is not a valid app name ({error})")]
    BadName {
        field: &'static str,
        name: String,
        error: NameError,
    },
}

impl Settings {
    /// Parses and checks the settings text (empty text gives the defaults).
    pub fn parse(text: &str) -> Result<Settings, SettingsError> {
        let s: Settings =
            toml::from_str(text).map_err(|e| SettingsError::Toml(e.message().to_string()))?;
        let bad = |field, name: &str, error| SettingsError::BadName {
            field,
            name: name.to_string(),
            error,
        };
        if !s.vod_app.is_empty() {
            validate_part(&s.vod_app).map_err(|e| bad("vod_app", &s.vod_app, e))?;
        }
        for app in s.allowed_apps.iter().flatten() {
            validate_part(app).map_err(|e| bad("allowed_apps", app, e))?;
        }
        Ok(s)
    }

    /// Whether the app may be used at all (connect, publish, play).
    pub fn app_allowed(&self, app: &str) -> bool {
        match &self.allowed_apps {
            None => true,
            Some(list) => self.is_vod(app) || list.iter().any(|a| a == app),
        }
    }

    pub fn is_vod(&self, app: &str) -> bool {
        !self.vod_app.is_empty() && self.vod_app == app
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_the_defaults() {
        assert_eq!(Settings::parse("").unwrap(), Settings::default());
        let d = Settings::default();
        assert_eq!(d.vod_app, "vod");
        assert!(d.require_publish_auth);
        assert!(d.record_requires_permission);
        assert!(d.app_allowed("anything"));
    }

    #[test]
    fn the_shipped_file_parses() {
        let text = include_str!("../../../mods/rtmp-app.toml");
        assert_eq!(Settings::parse(text).unwrap(), Settings::default());
    }

    #[test]
    fn allow_list_keeps_the_vod_app() {
        let s = Settings::parse("allowed_apps = [\"alice\", \"bob\"]").unwrap();
        assert!(s.app_allowed("alice"));
        assert!(s.app_allowed("vod"));
        assert!(!s.app_allowed("carol"));
        let s = Settings::parse("allowed_apps = [\"alice\"]\nvod_app = \"\"").unwrap();
        assert!(!s.app_allowed("vod"));
        assert!(!s.is_vod(""));
    }

    #[test]
    fn refuses_unknown_keys_and_bad_names() {
        let e = Settings::parse("vod-app = \"x\"").unwrap_err().to_string();
        assert!(e.contains("vod-app"), "{e}");
        assert!(Settings::parse("vod_app = \"../x\"").is_err());
        let e = Settings::parse("allowed_apps = [\"a/b\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("allowed_apps") && e.contains("a/b"), "{e}");
        assert!(Settings::parse("require_publish_auth = \"no\"").is_err());
        assert!(Settings::parse("record_requires_permission = 1").is_err());
        let s = Settings::parse("record_requires_permission = false").unwrap();
        assert!(!s.record_requires_permission);
    }
}
