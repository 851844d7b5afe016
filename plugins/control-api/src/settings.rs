//! `mods/control-api.toml`. Every key is optional; an unknown key is an error that names it.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// When set, every request needs `Authorization: Bearer TOKEN` (the dashboard asks for
    /// it once). When empty, only loopback peers are served.
    pub token: String,
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
    fn defaults_unknown_keys_and_the_stock_file() {
        assert_eq!(Settings::parse("").unwrap().token, "");
        let e = Settings::parse("tokn = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("tokn"), "{e}");
        let stock = include_str!("../../../mods/control-api.toml");
        assert_eq!(Settings::parse(stock).unwrap().token, "");
    }
}
