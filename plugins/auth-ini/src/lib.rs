//! `auth-ini`: the stock authenticator.
//!
//! A user is a file `users/NAME.ini` (as in the original fstream):
//!
//! ```ini
//! [DEFAULT]
//! password = 123
//! ```
//!
//! or, recommended, `password_hash = $argon2id$...` (create one with `fstream-host user add NAME`).
//! Files are read at each request, so a user added or changed while the host runs takes effect
//! at once. User names are validated before a path is built; passwords compare in constant time.
//! Unknown users are not this plugin's to judge: it abstains, and the next authenticator in
//! `main.mods` is asked.
//!
//! `record = yes` (or `no`) in the file says whether the user may have a publication recorded
//! on request (RTMP publish type `record` / `append`): the verdict is then
//! `AllowWith(MayRecord(..))`, which the stock `rtmp-app` reads (`record_requires_permission`).

mod ini;

use std::path::{Path, PathBuf};

use abi_stable::std_types::RVec;
use argon2::{password_hash::PasswordHash, Argon2, PasswordVerifier};
use fstream_abi::{
    kinds,
    names::validate_part,
    sdk::{authenticator_box, Authenticate},
    AuthRequest, AuthVerdict, Credential, Extension, Extension_NE, HostApiBox, InitContext,
    PluginError, PluginInstance, PluginObject,
};
use serde::Deserialize;
use subtle::ConstantTimeEq;

fstream_abi::export_plugin! {
    name: "auth-ini",
    kinds: kinds::AUTHENTICATOR,
    init: init,
}

/// `mods/auth-ini.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    /// The directory of `NAME.ini` files, relative to the server root.
    users_dir: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            users_dir: "users".into(),
        }
    }
}

fn init(_host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings: Settings =
        toml::from_str(&ctx.settings).map_err(|e| PluginError::new(e.message().to_string()))?;
    let dir = Path::new(ctx.root.as_str()).join(&settings.users_dir);
    if !dir.is_dir() {
        tracing::warn!(dir = %dir.display(), "users directory does not exist (yet)");
    } else {
        warn_about_plaintext(&dir);
    }
    let users = authenticator_box(IniUsers { dir });
    Ok(PluginInstance::empty().with(PluginObject::Authenticator(users)))
}

fn warn_about_plaintext(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut plain: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let name = path.file_stem()?.to_str()?.to_string();
            let text = std::fs::read_to_string(&path).ok()?;
            let user = ini::parse(&text);
            (path.extension()? == "ini" && user.password_hash.is_none() && user.password.is_some())
                .then_some(name)
        })
        .collect();
    plain.sort();
    if !plain.is_empty() {
        tracing::warn!(users = %plain.join(","),
            "plaintext passwords in users/*.ini; prefer password_hash (fstream-host user add NAME)");
    }
}

pub struct IniUsers {
    dir: PathBuf,
}

impl IniUsers {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

impl Authenticate for IniUsers {
    fn authenticate(&self, req: &AuthRequest) -> Result<AuthVerdict, PluginError> {
        // The host validates names too; checking here keeps this plugin safe on its own.
        if let Err(e) = validate_part(&req.user) {
            return Ok(AuthVerdict::Deny(format!("bad user name: {e}").into()));
        }
        let path = self.dir.join(format!("{}.ini", req.user));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuthVerdict::Abstain),
            Err(e) => {
                return Err(PluginError::new(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let user = ini::parse(&text);
        // A credential of a newer host counts as no password.
        let Some(Credential::Password(given)) = req.credential() else {
            return Ok(AuthVerdict::Deny("no password given".into()));
        };
        let ok = if let Some(hash) = &user.password_hash {
            let parsed = PasswordHash::new(hash).map_err(|e| {
                PluginError::new(format!("{}: bad password_hash: {e}", path.display()))
            })?;
            Argon2::default()
                .verify_password(given.as_bytes(), &parsed)
                .is_ok()
        } else if let Some(expected) = &user.password {
            bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        } else {
            return Ok(AuthVerdict::Deny(
                format!("{} has no password", path.display()).into(),
            ));
        };
        Ok(if ok {
            match user.record {
                None => AuthVerdict::Allow,
                Some(Ok(may)) => grant_recording(may),
                Some(Err(value)) => {
                    // A typo must not grant anything: read it as "no", and say so.
                    tracing::warn!(file = %path.display(), value = %value.escape_debug(),
                        "record must be yes or no; taken as no");
                    grant_recording(false)
                }
            }
        } else {
            AuthVerdict::Deny("wrong password".into())
        })
    }
}

/// Allowed, with the user's right to record on request (`Extension::MayRecord`, v2.3).
fn grant_recording(may: bool) -> AuthVerdict {
    AuthVerdict::AllowWith(RVec::from(vec![Extension_NE::new(Extension::MayRecord(
        may,
    ))]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstream_abi::{AuthAction, AuthAction_NE, Credential_NE, NetAddr};

    fn req(user: &str, password: Option<&str>) -> AuthRequest {
        AuthRequest {
            user: user.into(),
            action: AuthAction_NE::new(AuthAction::Publish),
            credential: Credential_NE::new(match password {
                Some(p) => Credential::Password(p.into()),
                None => Credential::None,
            }),
            stream: "".into(),
            peer: "127.0.0.1:9".into(),
            peer_addr: NetAddr::parse_or_unspecified("127.0.0.1:9"),
            protocol: "test".into(),
            ext: RVec::new(),
        }
    }

    fn dir_with(files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "auth-ini-{}-{}",
            std::process::id(),
            files.len() * 1000 + files.iter().map(|f| f.1.len()).sum::<usize>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn checks_plain_and_hashed_passwords() {
        let hash = argon2::password_hash::PasswordHasher::hash_password(
            &Argon2::default(),
            b"s3cret",
            &argon2::password_hash::SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap(),
        )
        .unwrap()
        .to_string();
        let dir = dir_with(&[
            ("fier.ini", "[DEFAULT]\npassword=123\n"),
            ("ann.ini", &format!("[DEFAULT]\npassword_hash = {hash}\n")),
        ]);
        let users = IniUsers::new(dir);
        let v = |u, p| users.authenticate(&req(u, p)).unwrap();
        assert_eq!(v("fier", Some("123")), AuthVerdict::Allow);
        assert!(matches!(v("fier", Some("124")), AuthVerdict::Deny(_)));
        assert!(matches!(v("fier", None), AuthVerdict::Deny(_)));
        assert_eq!(v("ann", Some("s3cret")), AuthVerdict::Allow);
        assert!(matches!(v("ann", Some("123")), AuthVerdict::Deny(_)));
        assert_eq!(v("nobody", Some("123")), AuthVerdict::Abstain);
        // The right to record comes only with a good password.
        let dir = dir_with(&[
            ("rec.ini", "[DEFAULT]\npassword=1\nrecord = yes\n"),
            ("norec.ini", "[DEFAULT]\npassword=2\nrecord = no\n"),
            ("typo.ini", "[DEFAULT]\npassword=3\nrecord = ys\n"),
        ]);
        let users = IniUsers::new(dir);
        let v = |u, p| users.authenticate(&req(u, p)).unwrap();
        let may = |verdict: AuthVerdict| match verdict {
            AuthVerdict::AllowWith(g) => fstream_abi::may_record(&g),
            other => panic!("{other:?}"),
        };
        assert_eq!(may(v("rec", Some("1"))), Some(true));
        assert_eq!(may(v("norec", Some("2"))), Some(false));
        assert_eq!(may(v("typo", Some("3"))), Some(false));
        assert!(matches!(v("rec", Some("2")), AuthVerdict::Deny(_)));
        assert!(matches!(v("rec", None), AuthVerdict::Deny(_)));
        for bad in [
            "../fier",
            "a/b",
            "",
            "/etc/passwd",
            "a\0b",
            &"x".repeat(200),
        ] {
            assert!(
                matches!(v(bad, Some("123")), AuthVerdict::Deny(_)),
                "{bad:?}"
            );
        }
    }
}
