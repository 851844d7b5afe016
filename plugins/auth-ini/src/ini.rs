//! The little of INI that user files need, read like Python's configparser: `key=value` or
//! `key: value`, whitespace trimmed, `#` and `;` comment lines, keys case-insensitive. Only the
//! `[DEFAULT]` section (or keys before any section) is read.

#[derive(Debug, Default, PartialEq, Eq)]
pub struct UserFile {
    pub password: Option<String>,
    pub password_hash: Option<String>,
    /// `record = yes|no` (configparser's booleans: yes/no, true/false, on/off, 1/0): whether
    /// the user may have a publication recorded on request. `Err` holds a value that is none
    /// of those.
    pub record: Option<Result<bool, String>>,
}

pub fn parse(text: &str) -> UserFile {
    let mut user = UserFile::default();
    let mut in_default = true;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_default = section.trim() == "DEFAULT";
            continue;
        }
        if !in_default {
            continue;
        }
        let split = match (line.find('='), line.find(':')) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(at) = split else {
            continue;
        };
        let key = line[..at].trim().to_ascii_lowercase();
        let value = line[at + 1..].trim().to_string();
        match key.as_str() {
            "password" => user.password = Some(value),
            "password_hash" => user.password_hash = Some(value),
            "record" => user.record = Some(boolean(&value).ok_or(value)),
            _ => {}
        }
    }
    user
}

/// A configparser boolean, case-insensitive.
fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_separators_comments_and_sections() {
        let u = parse("# a user\n[DEFAULT]\n  password :  123 \n; note\n[other]\npassword=x\n");
        assert_eq!(u.password.as_deref(), Some("123"));
        let u = parse("password_hash=$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA\n");
        assert_eq!(
            u.password_hash.as_deref(),
            Some("$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA")
        );
        assert_eq!(parse("[DEFAULT]\nnothing\n"), UserFile::default());
    }

    #[test]
    fn reads_the_record_permission() {
        for (text, want) in [
            ("record = yes", Some(Ok(true))),
            ("Record: TRUE", Some(Ok(true))),
            ("record=1", Some(Ok(true))),
            ("record = on", Some(Ok(true))),
            ("record = no", Some(Ok(false))),
            ("record = Off", Some(Ok(false))),
            ("record = 0", Some(Ok(false))),
            ("record = sometimes", Some(Err("sometimes".to_string()))),
            ("record =", Some(Err(String::new()))),
            ("password = x", None),
        ] {
            assert_eq!(
                parse(&format!("[DEFAULT]\n{text}\n")).record,
                want,
                "{text}"
            );
        }
        // Only [DEFAULT] counts, and the last value wins as in configparser.
        assert_eq!(parse("[x]\nrecord = yes\n").record, None);
        assert_eq!(parse("record = yes\nrecord = no\n").record, Some(Ok(false)));
    }
}
