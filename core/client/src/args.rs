//! Building the action string from the command line and `fserv_arg_*` environment variables.

use std::ffi::OsString;

use crate::Fail;

/// Prefix of the environment variables that add `KEY=VALUE` items (newer README).
pub const ENV_PREFIX: &str = "fserv_arg_";

/// Merges environment items into the command line's action.
///
/// The result is `NAME`, then one `,KEY=VALUE` per `fserv_arg_KEY` variable (sorted by name, so the
/// text is deterministic), then the command line's own items. The server keeps the last duplicate,
/// so a key given on the command line wins over the same key from the environment.
pub fn build_action(
    command_line: &str,
    env: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<String, Fail> {
    let (name, rest) = match command_line.split_once(',') {
        Some((name, rest)) => (name, Some(rest)),
        None => (command_line, None),
    };
    let mut items = Vec::new();
    for (key, value) in env {
        let Some(key) = key.to_str().and_then(|k| k.strip_prefix(ENV_PREFIX)) else {
            continue;
        };
        let Some(value) = value.to_str() else {
            return Err(Fail::Usage(format!(
                "environment variable {ENV_PREFIX}{key} is not valid UTF-8"
            )));
        };
        if key.is_empty() {
            return Err(Fail::Usage(format!(
                "environment variable {ENV_PREFIX} has no key after the prefix"
            )));
        }
        if key.contains(',') || value.contains(',') {
            return Err(Fail::Usage(format!(
                "environment variable {ENV_PREFIX}{key} contains ',', which the protocol cannot carry"
            )));
        }
        items.push((key.to_owned(), value.to_owned()));
    }
    items.sort();
    let mut action = name.to_owned();
    for (key, value) in items {
        action.push(',');
        action.push_str(&key);
        action.push('=');
        action.push_str(&value);
    }
    if let Some(rest) = rest {
        action.push(',');
        action.push_str(rest);
    }
    Ok(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn environment_items_come_first_and_sorted() {
        let got = build_action(
            "watch,channel=c",
            env(&[
                ("PATH", "/bin"),
                ("fserv_arg_user", "fier"),
                ("fserv_arg_channel", "env"),
                ("FSERV_ARG_user", "ignored: the prefix is case-sensitive"),
            ]),
        )
        .unwrap();
        assert_eq!(got, "watch,channel=env,user=fier,channel=c");
    }

    #[test]
    fn bare_action_name_takes_everything_from_the_environment() {
        let got = build_action(
            "token",
            env(&[("fserv_arg_user_password", "p"), ("fserv_arg_user", "u")]),
        );
        assert_eq!(got.unwrap(), "token,user=u,user_password=p");
        assert_eq!(
            build_action("watch,user=a", env(&[])).unwrap(),
            "watch,user=a"
        );
    }

    #[test]
    fn rejects_what_the_protocol_cannot_carry() {
        assert!(matches!(
            build_action("watch", env(&[("fserv_arg_user", "a,b")])),
            Err(Fail::Usage(_))
        ));
        assert!(matches!(
            build_action("watch", env(&[("fserv_arg_", "x")])),
            Err(Fail::Usage(_))
        ));
    }
}
