//! Validation of names that come from the network.
//!
//! Every user, app and stream name passes through here before any plugin can build a file path
//! from it (`../shared/spec/streams.md`): 1 to 128 characters of ASCII letters, digits, `_`, `-`
//! and `.`, never starting with `.` (which also rules out `.` and `..`).

/// The longest name part accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Why a name part was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    LeadingDot,
    BadCharacter(char),
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameError::Empty => f.write_str("empty name"),
            NameError::TooLong => write!(f, "name longer than {MAX_NAME_LEN} characters"),
            NameError::LeadingDot => f.write_str("name starts with '.'"),
            NameError::BadCharacter(c) => write!(f, "character {c:?} not allowed in a name"),
        }
    }
}

impl std::error::Error for NameError {}

/// Checks one part of a stream name (a user, an app, a channel, a file name without extension).
pub fn validate_part(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    if name.starts_with('.') {
        return Err(NameError::LeadingDot);
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        Some(c) => Err(NameError::BadCharacter(c)),
        None => Ok(()),
    }
}

/// Splits and checks a full stream name `APP/NAME`.
pub fn split_stream(stream: &str) -> Result<(&str, &str), NameError> {
    let (app, name) = stream.split_once('/').ok_or(NameError::Empty)?;
    validate_part(app)?;
    validate_part(name)?;
    Ok((app, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for n in [
            "fier",
            "default",
            "cam-1",
            "a.b",
            "A_Z_09",
            &"x".repeat(128),
        ] {
            assert_eq!(validate_part(n), Ok(()), "{n}");
        }
    }

    #[test]
    fn refuses_names_that_could_escape_a_directory() {
        assert_eq!(validate_part(""), Err(NameError::Empty));
        assert_eq!(validate_part("."), Err(NameError::LeadingDot));
        assert_eq!(validate_part(".."), Err(NameError::LeadingDot));
        assert_eq!(validate_part("../x"), Err(NameError::LeadingDot));
        assert_eq!(validate_part(".hidden"), Err(NameError::LeadingDot));
        assert_eq!(validate_part("a/b"), Err(NameError::BadCharacter('/')));
        assert_eq!(validate_part("/etc"), Err(NameError::BadCharacter('/')));
        assert_eq!(validate_part("a\\b"), Err(NameError::BadCharacter('\\')));
        assert_eq!(validate_part("a\0b"), Err(NameError::BadCharacter('\0')));
        assert_eq!(
            validate_part("caf\u{e9}"),
            Err(NameError::BadCharacter('\u{e9}'))
        );
        assert_eq!(validate_part("a%2fb"), Err(NameError::BadCharacter('%')));
        assert_eq!(validate_part(&"x".repeat(129)), Err(NameError::TooLong));
    }

    #[test]
    fn splits_stream_names() {
        assert_eq!(split_stream("alice/cam"), Ok(("alice", "cam")));
        assert!(split_stream("alice").is_err());
        assert!(split_stream("alice/cam/x").is_err());
        assert!(split_stream("alice/..").is_err());
    }
}
