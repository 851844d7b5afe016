//! The little of INI that user files need, read like Python's configparser: `key=value` or
//! `key: value`, whitespace trimmed, `#` and `;` comment lines, keys case-insensitive. Only the
//! `[DEFAULT]` section (or keys before any section) is read.

#[derive(Debug, Default, PartialEq, Eq)]
pub struct UserFile {
    pub password: Option<String>,
    pub password_hash: Option<String>,
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
            _ => {}
        }
    }
    user
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
}
