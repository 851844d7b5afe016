//! `auth-toml`: an example authenticator, written the way a plugin author would write one.
//!
//! Its settings file `mods/auth-toml.toml` holds the users:
//!
//! ```toml
//! [users]
//! alice = "wonderland"
//! bob = "builder"
//! ```
//!
//! List it in `mods/main.mods` before or after `auth-ini`: authenticators are asked in that order,
//! and the first one that knows the user decides. See the README section "Writing your own auth
//! plugin".

use std::collections::BTreeMap;

use fstream_abi::{
    kinds,
    sdk::{authenticator_box, Authenticate},
    AuthRequest, AuthVerdict, Credential, HostApiBox, InitContext, PluginError, PluginInstance,
    PluginObject,
};
use serde::Deserialize;
use subtle::ConstantTimeEq;

// 1. Export the plugin: the name operators write in main.mods, the kinds it provides, and the
//    function that builds it.
fstream_abi::export_plugin! {
    name: "auth-toml",
    kinds: kinds::AUTHENTICATOR,
    init: init,
}

// 2. Settings: a typed struct; `deny_unknown_fields` turns a typo into a clear startup error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    users: BTreeMap<String, String>,
}

// 3. Init: parse the settings the host passes as text, build the objects.
fn init(_host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings: Settings =
        toml::from_str(&ctx.settings).map_err(|e| PluginError::new(e.message()))?;
    tracing::info!(users = settings.users.len(), "auth-toml ready");
    let users = authenticator_box(TomlUsers(settings.users));
    Ok(PluginInstance::empty().with(PluginObject::Authenticator(users)))
}

// 4. The authenticator itself. It may block (the host calls it on a blocking thread), and a
//    panic would only fail this one request.
struct TomlUsers(BTreeMap<String, String>);

impl Authenticate for TomlUsers {
    fn authenticate(&self, request: &AuthRequest) -> Result<AuthVerdict, PluginError> {
        let Some(expected) = self.0.get(request.user.as_str()) else {
            // Not ours: let the next authenticator decide.
            return Ok(AuthVerdict::Abstain);
        };
        // A credential of a newer host counts as no password.
        let Some(Credential::Password(given)) = request.credential() else {
            return Ok(AuthVerdict::Deny("password required".into()));
        };
        if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            Ok(AuthVerdict::Allow)
        } else {
            Ok(AuthVerdict::Deny("wrong password".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::RVec;
    use fstream_abi::{AuthAction, AuthAction_NE, Credential_NE, NetAddr};

    #[test]
    fn knows_its_users_and_abstains_for_others() {
        let s: Settings = toml::from_str("[users]\nalice = \"w\"\n").unwrap();
        let a = TomlUsers(s.users);
        let req = |u: &str, p: &str| AuthRequest {
            user: u.into(),
            action: AuthAction_NE::new(AuthAction::Publish),
            credential: Credential_NE::new(Credential::Password(p.into())),
            stream: "".into(),
            peer: "".into(),
            peer_addr: NetAddr::UNSPECIFIED,
            protocol: "".into(),
            ext: RVec::new(),
        };
        assert_eq!(
            a.authenticate(&req("alice", "w")).unwrap(),
            AuthVerdict::Allow
        );
        assert!(matches!(
            a.authenticate(&req("alice", "x")).unwrap(),
            AuthVerdict::Deny(_)
        ));
        assert_eq!(
            a.authenticate(&req("carol", "w")).unwrap(),
            AuthVerdict::Abstain
        );
        assert!(toml::from_str::<Settings>("user = 1").is_err());
    }
}
