//! The action string: `ACTION[,key=value]*`, and its typed meaning.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

/// Largest `bufsize` a broadcaster may ask for (spec: "At most 16 MiB"). The server allocates a
/// chunk of this size per broadcast, so it is capped like every other peer-controlled size.
pub const MAX_BUFSIZE: u64 = 16 * 1024 * 1024;

/// Keys whose values are secrets: [`Action`]'s and [`Request`]'s `Debug` output hides them.
const SECRET_KEYS: [&str; 3] = ["user_password", "channel_password", "token"];

/// Longest excerpt of a bad item kept in an error, so errors stay one short log line.
const MAX_ITEM_IN_ERROR: usize = 64;

/// Why an action string was refused. Every variant means "close the connection without a reply".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The action string was empty, or started with `,`.
    #[error("empty action name")]
    EmptyAction,
    /// An item after the action name had no `=`. `item` is cut to 64 characters.
    #[error("item {index} ({item:?}) has no '='")]
    ItemWithoutEquals { index: usize, item: String },
    /// The action name is not `broadcast`, `watch` or `token`. `name` is cut to 64 characters.
    #[error("unknown action {name:?}")]
    UnknownAction { name: String },
    /// A required key is absent.
    #[error("{action} needs {key}")]
    MissingKey {
        action: &'static str,
        key: &'static str,
    },
    /// `bufsize` is not a decimal number.
    #[error("bufsize {value:?} is not a whole number of bytes")]
    InvalidBufsize { value: String },
    /// `bufsize` is above [`MAX_BUFSIZE`].
    #[error("bufsize {value} exceeds the limit of {limit} bytes")]
    BufsizeTooLarge { value: u64, limit: u64 },
}

/// A syntactically valid action string: a name and its arguments.
///
/// Keys are normalised (`-` becomes `_`, so `user-password` and `user_password` are one key) and
/// the last duplicate wins. No escaping exists: values cannot contain `,`; they may contain `=`.
/// Nothing is trimmed.
#[derive(Clone, PartialEq, Eq)]
pub struct Action {
    name: String,
    args: BTreeMap<String, String>,
}

fn normalise_key(key: &str) -> String {
    key.replace('-', "_")
}

fn excerpt(s: &str) -> String {
    s.chars().take(MAX_ITEM_IN_ERROR).collect()
}

impl Action {
    /// Parses `ACTION[,key=value]*`.
    pub fn parse(text: &str) -> Result<Action, ActionError> {
        let mut items = text.split(',');
        let name = items.next().unwrap_or_default();
        if name.is_empty() {
            return Err(ActionError::EmptyAction);
        }
        let mut args = BTreeMap::new();
        for (i, item) in items.enumerate() {
            let Some((key, value)) = item.split_once('=') else {
                return Err(ActionError::ItemWithoutEquals {
                    index: i + 1,
                    item: excerpt(item),
                });
            };
            args.insert(normalise_key(key), value.to_owned());
        }
        Ok(Action {
            name: name.to_owned(),
            args,
        })
    }

    /// The action name, e.g. `watch`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key` (normalised first, so `user-password` finds `user_password`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.args.get(&normalise_key(key)).map(String::as_str)
    }

    /// All arguments with normalised keys, sorted by key.
    pub fn args(&self) -> impl Iterator<Item = (&str, &str)> {
        self.args.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The canonical text: name, then `,key=value` per argument in key order. Shows secrets.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (k, v) in &self.args {
            write!(f, ",{k}={v}")?;
        }
        Ok(())
    }
}

/// Hides the values of secret keys, so `{:?}` is safe in logs.
impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        map.entry(&"action", &self.name);
        for (k, v) in &self.args {
            if SECRET_KEYS.contains(&k.as_str()) {
                map.entry(k, &"<redacted>");
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

/// What a client asks for, with defaults applied.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// Send a stream. Needs `user` and `user_password` or `token` (both may be present; the
    /// server decides which it checks).
    Broadcast {
        user: String,
        user_password: Option<String>,
        token: Option<String>,
        /// `default` when absent.
        channel: String,
        /// `None` when absent or empty: an empty password and no password are the same.
        channel_password: Option<String>,
        /// 0 (forward every block as it arrives) when absent; at most [`MAX_BUFSIZE`].
        bufsize: u64,
    },
    /// Receive a stream: `user` is whose stream.
    Watch {
        user: String,
        /// `default` when absent.
        channel: String,
        /// `None` when absent or empty.
        channel_password: Option<String>,
    },
    /// Get a single-use broadcast token.
    Token { user: String, user_password: String },
}

/// A [`Request`] plus the keys it did not use, for the caller to log at debug level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub request: Request,
    /// Normalised keys the action does not know, sorted. Values are left out (they may be secrets).
    pub unknown_keys: Vec<String>,
}

impl Request {
    /// Parses an action string straight into a request.
    pub fn parse(text: &str) -> Result<Parsed, ActionError> {
        Self::from_action(&Action::parse(text)?)
    }

    /// Interprets a parsed action.
    pub fn from_action(action: &Action) -> Result<Parsed, ActionError> {
        let (name, known): (&'static str, &[&str]) = match action.name() {
            "broadcast" => (
                "broadcast",
                &[
                    "user",
                    "user_password",
                    "token",
                    "channel",
                    "channel_password",
                    "bufsize",
                ],
            ),
            "watch" => ("watch", &["user", "channel", "channel_password"]),
            "token" => ("token", &["user", "user_password"]),
            other => {
                return Err(ActionError::UnknownAction {
                    name: excerpt(other),
                })
            }
        };
        let get = |key: &str| action.args.get(key).cloned();
        let need =
            |key: &'static str| get(key).ok_or(ActionError::MissingKey { action: name, key });
        let channel = || get("channel").unwrap_or_else(|| "default".to_owned());
        let channel_password = || get("channel_password").filter(|p| !p.is_empty());

        let request = match name {
            "broadcast" => {
                let user = need("user")?;
                let user_password = get("user_password");
                let token = get("token");
                if user_password.is_none() && token.is_none() {
                    return Err(ActionError::MissingKey {
                        action: name,
                        key: "user_password or token",
                    });
                }
                let bufsize = match action.args.get("bufsize") {
                    None => 0,
                    Some(v) => parse_bufsize(v)?,
                };
                Request::Broadcast {
                    user,
                    user_password,
                    token,
                    channel: channel(),
                    channel_password: channel_password(),
                    bufsize,
                }
            }
            "watch" => Request::Watch {
                user: need("user")?,
                channel: channel(),
                channel_password: channel_password(),
            },
            _ => Request::Token {
                user: need("user")?,
                user_password: need("user_password")?,
            },
        };
        let unknown_keys = action
            .args
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        Ok(Parsed {
            request,
            unknown_keys,
        })
    }

    /// The action name: `broadcast`, `watch` or `token`.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Broadcast { .. } => "broadcast",
            Request::Watch { .. } => "watch",
            Request::Token { .. } => "token",
        }
    }

    /// The user the request is about.
    pub fn user(&self) -> &str {
        match self {
            Request::Broadcast { user, .. }
            | Request::Watch { user, .. }
            | Request::Token { user, .. } => user,
        }
    }
}

fn parse_bufsize(v: &str) -> Result<u64, ActionError> {
    let invalid = || ActionError::InvalidBufsize { value: excerpt(v) };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // Digits only: the one failure left is overflow, which is also "too large".
    let value = v.parse::<u64>().unwrap_or(u64::MAX);
    if value > MAX_BUFSIZE {
        return Err(ActionError::BufsizeTooLarge {
            value,
            limit: MAX_BUFSIZE,
        });
    }
    Ok(value)
}

fn redact(v: &Option<String>) -> Option<&'static str> {
    v.as_ref().map(|_| "<redacted>")
}

/// Hides passwords and tokens, so `{:?}` is safe in logs.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Broadcast {
                user,
                user_password,
                token,
                channel,
                channel_password,
                bufsize,
            } => f
                .debug_struct("Broadcast")
                .field("user", user)
                .field("user_password", &redact(user_password))
                .field("token", &redact(token))
                .field("channel", channel)
                .field("channel_password", &redact(channel_password))
                .field("bufsize", bufsize)
                .finish(),
            Request::Watch {
                user,
                channel,
                channel_password,
            } => f
                .debug_struct("Watch")
                .field("user", user)
                .field("channel", channel)
                .field("channel_password", &redact(channel_password))
                .finish(),
            Request::Token { user, .. } => f
                .debug_struct("Token")
                .field("user", user)
                .field("user_password", &"<redacted>")
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Request {
        Request::parse(text).unwrap().request
    }

    #[test]
    fn splits_items_on_comma_and_first_equals() {
        let a = Action::parse("watch,user=fier,channel=a=b,channel_password=").unwrap();
        assert_eq!(a.name(), "watch");
        assert_eq!(a.get("user"), Some("fier"));
        assert_eq!(a.get("channel"), Some("a=b"));
        assert_eq!(a.get("channel_password"), Some(""));
        assert_eq!(a.get("bufsize"), None);
        assert_eq!(Action::parse("token").unwrap().args().count(), 0);
    }

    #[test]
    fn normalises_dash_keys_and_keeps_the_last_duplicate() {
        let a = Action::parse("broadcast,user-password=old,user_password=new,channel-password=1")
            .unwrap();
        assert_eq!(a.get("user_password"), Some("new"));
        assert_eq!(a.get("user-password"), Some("new"));
        assert_eq!(a.get("channel_password"), Some("1"));
        let a = Action::parse("watch,user=a,user=b,user=c").unwrap();
        assert_eq!(a.get("user"), Some("c"));
        assert_eq!(a.to_string(), "watch,user=c");
    }

    #[test]
    fn does_not_trim_or_change_values() {
        let a = Action::parse("watch,user= fier ,channel=x-y").unwrap();
        assert_eq!(a.get("user"), Some(" fier "));
        assert_eq!(a.get("channel"), Some("x-y"));
        assert!(Action::parse(" watch,user=a").is_ok());
        assert!(matches!(
            Request::parse(" watch,user=a"),
            Err(ActionError::UnknownAction { .. })
        ));
    }

    #[test]
    fn rejects_items_without_equals() {
        assert_eq!(
            Action::parse("watch,user=a,oops"),
            Err(ActionError::ItemWithoutEquals {
                index: 2,
                item: "oops".into()
            })
        );
        // Empty items (",," or a trailing comma) have no '=' either.
        assert_eq!(
            Action::parse("watch,,user=a"),
            Err(ActionError::ItemWithoutEquals {
                index: 1,
                item: String::new()
            })
        );
        assert!(matches!(
            Action::parse("watch,user=a,"),
            Err(ActionError::ItemWithoutEquals { index: 2, .. })
        ));
        let long = format!("watch,{}", "x".repeat(500));
        match Action::parse(&long) {
            Err(ActionError::ItemWithoutEquals { item, .. }) => assert_eq!(item.len(), 64),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_empty_action() {
        assert_eq!(Action::parse(""), Err(ActionError::EmptyAction));
        assert_eq!(Action::parse(",user=a"), Err(ActionError::EmptyAction));
    }

    #[test]
    fn parses_broadcast_with_defaults() {
        assert_eq!(
            req("broadcast,user=fier,user_password=123"),
            Request::Broadcast {
                user: "fier".into(),
                user_password: Some("123".into()),
                token: None,
                channel: "default".into(),
                channel_password: None,
                bufsize: 0,
            }
        );
    }

    #[test]
    fn parses_broadcast_from_the_old_readme() {
        // Verbatim from the first README's example (dash keys).
        assert_eq!(
            req(
                "broadcast,user=fier,user-password=123,channel=exampleChannel,channel-password=456"
            ),
            Request::Broadcast {
                user: "fier".into(),
                user_password: Some("123".into()),
                token: None,
                channel: "exampleChannel".into(),
                channel_password: Some("456".into()),
                bufsize: 0,
            }
        );
    }

    #[test]
    fn parses_broadcast_with_token_and_bufsize() {
        assert_eq!(
            req("broadcast,user=a,token=0123456789abcdef0123456789abcdef,bufsize=1880,channel=c"),
            Request::Broadcast {
                user: "a".into(),
                user_password: None,
                token: Some("0123456789abcdef0123456789abcdef".into()),
                channel: "c".into(),
                channel_password: None,
                bufsize: 1880,
            }
        );
    }

    #[test]
    fn bufsize_limits() {
        let with = |v: &str| Request::parse(&format!("broadcast,user=a,token=t,bufsize={v}"));
        match with(&MAX_BUFSIZE.to_string()).unwrap().request {
            Request::Broadcast { bufsize, .. } => assert_eq!(bufsize, MAX_BUFSIZE),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            with(&(MAX_BUFSIZE + 1).to_string()),
            Err(ActionError::BufsizeTooLarge {
                value: MAX_BUFSIZE + 1,
                limit: MAX_BUFSIZE
            })
        );
        assert_eq!(
            with("99999999999999999999999"),
            Err(ActionError::BufsizeTooLarge {
                value: u64::MAX,
                limit: MAX_BUFSIZE
            })
        );
        for bad in ["", "-1", "+5", " 5", "5k", "0x10", "1.5"] {
            assert_eq!(
                with(bad),
                Err(ActionError::InvalidBufsize { value: bad.into() }),
                "{bad:?}"
            );
        }
        assert!(matches!(
            with("0").unwrap().request,
            Request::Broadcast { bufsize: 0, .. }
        ));
    }

    #[test]
    fn broadcast_requires_user_and_a_credential() {
        assert_eq!(
            Request::parse("broadcast,user_password=x"),
            Err(ActionError::MissingKey {
                action: "broadcast",
                key: "user"
            })
        );
        assert_eq!(
            Request::parse("broadcast,user=a,channel=c"),
            Err(ActionError::MissingKey {
                action: "broadcast",
                key: "user_password or token"
            })
        );
    }

    #[test]
    fn parses_watch() {
        assert_eq!(
            req("watch,user=fier,channel=exampleChannel,channel-password=123"),
            Request::Watch {
                user: "fier".into(),
                channel: "exampleChannel".into(),
                channel_password: Some("123".into()),
            }
        );
        assert_eq!(
            req("watch,user=fier,channel_password="),
            Request::Watch {
                user: "fier".into(),
                channel: "default".into(),
                channel_password: None
            }
        );
        assert_eq!(
            Request::parse("watch,channel=c"),
            Err(ActionError::MissingKey {
                action: "watch",
                key: "user"
            })
        );
    }

    #[test]
    fn parses_token() {
        assert_eq!(
            req("token,user=fier,user-password=123"),
            Request::Token {
                user: "fier".into(),
                user_password: "123".into()
            }
        );
        assert_eq!(
            Request::parse("token,user=fier"),
            Err(ActionError::MissingKey {
                action: "token",
                key: "user_password"
            })
        );
        assert_eq!(
            Request::parse("token,user_password=x"),
            Err(ActionError::MissingKey {
                action: "token",
                key: "user"
            })
        );
    }

    #[test]
    fn collects_unknown_keys() {
        // `user_channel` is the newer README's typo for `channel`: unknown, so ignored.
        let p = Request::parse("watch,user=a,user_channel=x,zz=1,token=t,=v").unwrap();
        assert_eq!(p.unknown_keys, ["", "token", "user_channel", "zz"]);
        assert_eq!(p.request.name(), "watch");
        assert_eq!(p.request.user(), "a");
        let p = Request::parse("broadcast,user=a,token=t,bufsize=0").unwrap();
        assert!(p.unknown_keys.is_empty());
    }

    #[test]
    fn rejects_unknown_actions() {
        for name in ["play", "Watch", "BROADCAST", "watch "] {
            assert_eq!(
                Request::parse(&format!("{name},user=a")),
                Err(ActionError::UnknownAction { name: name.into() })
            );
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let text = "broadcast,user=fier,user_password=hunter2,token=tok9,channel_password=cp7";
        let shown = format!("{:?} {:?}", Action::parse(text).unwrap(), req(text));
        for secret in ["hunter2", "tok9", "cp7"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("fier"));
        let shown = format!("{:?}", req("token,user=u,user_password=hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!format!("{:?}", req("watch,user=u,channel_password=cp7")).contains("cp7"));
    }

    #[test]
    fn display_is_canonical_and_reparses() {
        let a = Action::parse("broadcast,user-password=p,user=u,channel=c").unwrap();
        assert_eq!(a.to_string(), "broadcast,channel=c,user=u,user_password=p");
        assert_eq!(Action::parse(&a.to_string()).unwrap(), a);
    }
}
