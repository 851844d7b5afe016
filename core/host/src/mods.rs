//! `mods/main.mods`: the plugins to load, one name per line, in load order.
//!
//! `#` starts a comment (whole line or after a name); blank lines are ignored. The order is the
//! load order and, for authenticators, the order in which they are asked.

use std::path::Path;

use fstream_abi::names::validate_part;

#[derive(Debug, thiserror::Error)]
pub enum ModsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: bad plugin name {name:?}: {reason}")]
    BadName {
        path: String,
        line: usize,
        name: String,
        reason: String,
    },
    #[error("{path}:{line}: plugin {name:?} is listed twice")]
    Duplicate {
        path: String,
        line: usize,
        name: String,
    },
}

/// Reads and parses a mods file.
pub fn read(path: &Path) -> Result<Vec<String>, ModsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses the text of a mods file; `path` is only used in messages.
pub fn parse(text: &str, path: &str) -> Result<Vec<String>, ModsError> {
    let mut names: Vec<String> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason: String| ModsError::BadName {
            path: path.to_string(),
            line: i + 1,
            name: line.to_string(),
            reason,
        };
        if line.split_whitespace().count() > 1 {
            return Err(bad("one plugin name per line".into()));
        }
        validate_part(line).map_err(|e| bad(e.to_string()))?;
        if names.iter().any(|n| n == line) {
            return Err(ModsError::Duplicate {
                path: path.to_string(),
                line: i + 1,
                name: line.to_string(),
            });
        }
        names.push(line.to_string());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_in_order_skipping_comments_and_blank_lines() {
        let text = "# stock plugins\n\nauth-ini\n  fstream   # the tcp protocol\n\n#rtmp\nrtmp\n";
        assert_eq!(
            parse(text, "m").unwrap(),
            vec!["auth-ini", "fstream", "rtmp"]
        );
    }

    #[test]
    fn refuses_paths_and_duplicates() {
        assert!(matches!(
            parse("../evil\n", "m"),
            Err(ModsError::BadName { line: 1, .. })
        ));
        assert!(matches!(
            parse("a/b\n", "m"),
            Err(ModsError::BadName { .. })
        ));
        assert!(matches!(
            parse("a b\n", "m"),
            Err(ModsError::BadName { .. })
        ));
        assert!(matches!(
            parse("x\ny\nx\n", "m"),
            Err(ModsError::Duplicate { line: 3, .. })
        ));
    }
}
