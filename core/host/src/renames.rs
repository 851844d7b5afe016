//! Renames granted by authenticators (since v2.3, [`Extension::Rename`] in an
//! `AuthVerdict::AllowWith`, as `auth-http` gives for nginx-rtmp's 3xx-with-Location).
//!
//! A session asks the host to authenticate a publish or a play of `APP/NAME` and then claims or
//! subscribes to that stream by the name it knows; the session never learns of the rename. So
//! the connection keeps each granted rename, and its publishes (or subscriptions) of that name
//! use the new one, until another authentication of the same action and name says otherwise
//! (a session may subscribe more than once per play: a probe, then the real one). A grant names `NAME` (same app) or `APP/NAME`; it is validated as
//! a stream name before it is kept, and an invalid one refuses the request.

use std::sync::Mutex;

use fstream_abi::{
    names::{split_stream, validate_part, NameError},
    rename, Extensions,
};

/// Renames kept for one connection, at most (the oldest goes first).
pub const MAX_PENDING: usize = 8;

/// Which action a rename is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum For {
    Publish,
    Play,
}

/// One connection's pending renames: (action, the name asked for, the name to use).
#[derive(Default)]
pub struct Renames(Mutex<Vec<(For, String, String)>>);

/// The stream a rename of `asked` to `to` means: `to` itself when it is `APP/NAME`, else `to`
/// in the app of `asked`.
pub fn target(asked: &str, to: &str) -> Result<String, NameError> {
    if to.contains('/') {
        split_stream(to)?;
        return Ok(to.to_string());
    }
    validate_part(to)?;
    let (app, _) = split_stream(asked)?;
    Ok(format!("{app}/{to}"))
}

impl Renames {
    /// Keeps the rename among `grants`, if any, for `action` on `asked`. `Ok(None)`: no rename;
    /// `Err`: a rename that is not a valid stream name.
    pub fn grant(
        &self,
        action: For,
        asked: &str,
        grants: &Extensions,
    ) -> Result<Option<String>, NameError> {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|(a, s, _)| !(*a == action && s == asked));
        let Some(to) = rename(grants) else {
            return Ok(None);
        };
        let to = target(asked, to)?;
        if list.len() >= MAX_PENDING {
            list.remove(0);
        }
        list.push((action, asked.to_string(), to.clone()));
        Ok(Some(to))
    }

    /// The name to use instead of `stream` for `action`, if it was renamed.
    pub fn get(&self, action: For, stream: &str) -> Option<String> {
        let list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        list.iter()
            .find(|(a, s, _)| *a == action && s == stream)
            .map(|(_, _, to)| to.clone())
    }
}

#[cfg(test)]
mod tests {
    use fstream_abi::{Extension, Extension_NE};

    use super::*;

    fn grants(to: &str) -> Extensions {
        vec![Extension_NE::new(Extension::Rename(to.into()))].into()
    }

    #[test]
    fn a_name_stays_in_its_app_and_a_full_name_is_taken_whole() {
        assert_eq!(target("fier/a", "b").unwrap(), "fier/b");
        assert_eq!(target("fier/a", "live/b").unwrap(), "live/b");
        for bad in ["", "../x", ".x", "a/b/c", "a b", "/b", "a/"] {
            assert!(target("fier/a", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_rename_holds_for_its_action_until_the_next_answer_about_it() {
        let r = Renames::default();
        assert_eq!(
            r.grant(For::Publish, "fier/a", &Extensions::new()),
            Ok(None)
        );
        assert_eq!(
            r.grant(For::Publish, "fier/a", &grants("b")),
            Ok(Some("fier/b".into()))
        );
        assert_eq!(r.get(For::Play, "fier/a"), None);
        assert_eq!(r.get(For::Publish, "fier/x"), None);
        // A probe, then the real subscription: both see it.
        assert_eq!(r.get(For::Publish, "fier/a").as_deref(), Some("fier/b"));
        assert_eq!(r.get(For::Publish, "fier/a").as_deref(), Some("fier/b"));
        // A bad rename, or a plain allow, ends the old one.
        assert!(r.grant(For::Publish, "fier/a", &grants("../b")).is_err());
        assert_eq!(r.get(For::Publish, "fier/a"), None);
        r.grant(For::Publish, "fier/a", &grants("b")).unwrap();
        r.grant(For::Publish, "fier/a", &Extensions::new()).unwrap();
        assert_eq!(r.get(For::Publish, "fier/a"), None);
    }

    #[test]
    fn pending_renames_are_bounded() {
        let r = Renames::default();
        for i in 0..(MAX_PENDING + 3) {
            r.grant(For::Play, &format!("fier/s{i}"), &grants("t"))
                .unwrap();
        }
        assert_eq!(r.0.lock().unwrap().len(), MAX_PENDING);
        assert_eq!(r.get(For::Play, "fier/s0"), None);
        assert!(r
            .get(For::Play, &format!("fier/s{}", MAX_PENDING + 2))
            .is_some());
    }
}
