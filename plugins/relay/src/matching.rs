//! Which destinations a live stream goes to: each `[[push]]` rule whose `streams` has a
//! pattern matching `APP/NAME` contributes its `to` URLs, each destination once.
//!
//! A pattern is `APP/NAME`, each part a name or a glob in which `*` stands for any run of
//! name characters, never crossing the `/`: `live/*`, `*/cam`, `fier/cam-*`, `*/*`.

use fstream_abi::names::{split_stream, validate_part, NameError};

use crate::settings::{Destination, Settings};

/// Checks one part of a pattern (`live`, `cam-*`): a name, or name characters around `*`s.
fn check_part(part: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err("an empty part (patterns are APP/NAME)".into());
    }
    if part.contains("**") {
        return Err("'**': one '*' already matches any run within a part".into());
    }
    if !part.contains('*') {
        return validate_part(part).map_err(|e| e.to_string());
    }
    match part
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*')))
    {
        Some(c) => Err(format!("character {c:?} not allowed in a name")),
        None => Ok(()),
    }
}

/// A stream pattern of a push rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let (app, name) = text
            .split_once('/')
            .ok_or("not APP/NAME (e.g. \"live/*\" or \"fier/cam\")")?;
        if name.contains('/') {
            return Err("more than one '/' (patterns are APP/NAME)".into());
        }
        check_part(app).map_err(|e| format!("the app: {e}"))?;
        check_part(name).map_err(|e| format!("the name: {e}"))?;
        Ok(Pattern {
            text: text.to_string(),
        })
    }

    /// Whether stream `app/name` (already validated) is one of this pattern's.
    pub fn matches(&self, app: &str, name: &str) -> bool {
        fstream_abi::glob::matches(&self.text, &format!("{app}/{name}"))
    }
}

/// Why a stream's destinations could not all be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    #[error("stream name: {0}")]
    BadStream(#[from] NameError),
}

impl Settings {
    /// The destinations of stream `APP/NAME`, in the order of the rules and their `to` lists,
    /// each once (two rules naming the same URL push once). A URL that this stream's name
    /// makes unusable is left out and reported beside the others, redacted.
    pub fn destinations(
        &self,
        stream: &str,
    ) -> Result<(Vec<Destination>, Vec<String>), RouteError> {
        let (app, name) = split_stream(stream)?;
        let mut found: Vec<Destination> = Vec::new();
        let mut unusable = Vec::new();
        for rule in &self.push {
            if !rule.streams.iter().any(|p| p.matches(app, name)) {
                continue;
            }
            for t in &rule.to {
                match t.resolve(app, name) {
                    Ok(d) if found.iter().any(|f| f.secret_url() == d.secret_url()) => {}
                    Ok(d) => found.push(d),
                    Err(why) => unusable.push(format!("{t}: {why}")),
                }
            }
        }
        Ok((found, unusable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn globs_stay_within_their_part() {
        assert!(p("live/*").matches("live", "cam"));
        assert!(!p("live/*").matches("lives", "cam"));
        assert!(p("*/*").matches("a", "b"));
        assert!(p("fier/cam").matches("fier", "cam"));
        assert!(!p("fier/cam").matches("fier", "cam2"));
        assert!(p("fier/cam-*").matches("fier", "cam-1"));
        assert!(p("fier/cam-*").matches("fier", "cam-"));
        assert!(!p("fier/cam-*").matches("fier", "cam"));
        assert!(p("*/a*b*c").matches("x", "abc"));
        assert!(p("*/a*b*c").matches("x", "a-b-b-c"));
        assert!(!p("*/a*b*c").matches("x", "acb"));
        assert!(p("*/*.hd").matches("x", "cam.hd"));
        assert!(!p("*/ab*ba").matches("x", "aba"), "pieces do not overlap");
        for bad in [
            "live", "live/", "/cam", "a/b/c", "li ve/*", "a/**", "../x", "a/.x",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }
}
