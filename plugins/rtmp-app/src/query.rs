//! The query string of an RTMP stream name: `cam?user_password=s3cret&token=...`.
//!
//! Items are separated by `&`; each is `key=value` (an item without `=` is a key with an empty
//! value). Keys and values are percent-decoded (`%3D` is `=`); a `%` not followed by two hex
//! digits stays as it is, and `+` stays `+` (a password may contain one). Keys are normalised as
//! in the fstream action string: `-` becomes `_`, so `user-password` and `user_password` are one
//! key. The first occurrence of a key wins: the RTMP frontend passes the stream name's query
//! followed by the connect app's (`rtmp://host/alice?token=...`), and the stream name's values
//! take precedence.

use std::collections::BTreeMap;

use fstream_abi::Credential;
use thiserror::Error;

/// The longest key kept in an error, so errors stay one short line.
const MAX_KEY_IN_ERROR: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// A key or value decoded to bytes that are not UTF-8. The value itself is never shown (it
    /// may be a password).
    #[error("the value of {key:?} is not UTF-8 once percent-decoded")]
    NotUtf8 { key: String },
}

/// A decoded query string.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Query {
    args: BTreeMap<String, String>,
}

impl std::fmt::Debug for Query {
    /// Lists the keys only: values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.args.keys()).finish()
    }
}

impl Query {
    /// Parses an undecoded query string (the part after `?`, without the `?`).
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let mut args = BTreeMap::new();
        for item in text.split('&').filter(|i| !i.is_empty()) {
            let (raw_key, raw_value) = item.split_once('=').unwrap_or((item, ""));
            let key =
                String::from_utf8(percent_decode(raw_key)).map_err(|_| QueryError::NotUtf8 {
                    key: raw_key.chars().take(MAX_KEY_IN_ERROR).collect(),
                })?;
            let key = normalise_key(&key);
            let value =
                String::from_utf8(percent_decode(raw_value)).map_err(|_| QueryError::NotUtf8 {
                    key: key.chars().take(MAX_KEY_IN_ERROR).collect(),
                })?;
            args.entry(key).or_insert(value);
        }
        Ok(Query { args })
    }

    /// The value of `key` (normalised first, so `user-password` finds `user_password`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.args.get(&normalise_key(key)).map(String::as_str)
    }

    /// The credential to publish with: a password when one is given (as fstream does when both
    /// are present), else a token, else none.
    pub fn credential(&self) -> Credential {
        match (self.get("user_password"), self.get("token")) {
            (Some(p), _) => Credential::Password(p.into()),
            (None, Some(t)) => Credential::Token(t.into()),
            (None, None) => Credential::None,
        }
    }
}

pub use fstream_abi::query::{normalise_key, percent_decode, redacted};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_keeps_malformed_ones() {
        assert_eq!(percent_decode("a%3Db%3d"), b"a=b=");
        assert_eq!(percent_decode("100%"), b"100%");
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
        assert_eq!(percent_decode("a+b"), b"a+b");
        assert_eq!(percent_decode("%C3%A9"), "\u{e9}".as_bytes());
        assert_eq!(percent_decode(""), b"");
    }

    #[test]
    fn parses_items_normalises_keys_and_keeps_the_first_occurrence() {
        let q = Query::parse("user-password=p%26w&user_password=later&&flag&token=t").unwrap();
        assert_eq!(q.get("user_password"), Some("p&w"));
        assert_eq!(q.get("user-password"), Some("p&w"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("token"), Some("t"));
        assert_eq!(q.get("channel_password"), None);
        // Encoded keys are normalised after decoding.
        let q = Query::parse("user%2Dpassword=x").unwrap();
        assert_eq!(q.get("user_password"), Some("x"));
    }

    #[test]
    fn password_wins_over_token_like_fstream() {
        let c = |s: &str| Query::parse(s).unwrap().credential();
        assert_eq!(
            c("token=t&user_password=p"),
            Credential::Password("p".into())
        );
        assert_eq!(c("token=t%2Bu"), Credential::Token("t+u".into()));
        assert_eq!(c(""), Credential::None);
        assert_eq!(c("channel_password=x"), Credential::None);
    }

    #[test]
    fn refuses_non_utf8_without_showing_the_value() {
        let e = Query::parse("user_password=%FF%FE").unwrap_err();
        assert_eq!(
            e,
            QueryError::NotUtf8 {
                key: "user_password".into()
            }
        );
        assert!(!e.to_string().contains("FF"));
        assert!(Query::parse("%FF=1").is_err());
    }

    #[test]
    fn redacted_drops_credentials_however_their_keys_are_spelt() {
        assert_eq!(
            redacted("room=1&user_password=x&user-password=y&user%5Fpassword=z&Token=t&password&channel_password=c&a=%26b"),
            "room=1&a=%26b"
        );
        assert_eq!(redacted(""), "");
        assert_eq!(redacted("token=t"), "");
    }

    #[test]
    fn debug_output_hides_values() {
        let q = Query::parse("user_password=s3cret").unwrap();
        let shown = format!("{q:?}");
        assert!(shown.contains("user_password"));
        assert!(!shown.contains("s3cret"));
    }
}
