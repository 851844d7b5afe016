//! `test-auth`: an authenticator for tests. It allows one user/password, can be slow
//! (`sleep_ms`) and panics for `panic_user`.

use fstream_abi::{
    kinds,
    sdk::{authenticator_box, Authenticate},
    AuthRequest, AuthVerdict, Credential, HostApiBox, InitContext, PluginError, PluginInstance,
    PluginObject,
};
use serde::Deserialize;

fstream_abi::export_plugin! { name: "test-auth", kinds: kinds::AUTHENTICATOR, init: init }

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    user: String,
    password: String,
    sleep_ms: u64,
    panic_user: String,
}

fn init(_: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let s: Settings = toml::from_str(&ctx.settings).map_err(|e| PluginError::new(e.message()))?;
    Ok(PluginInstance::empty().with(PluginObject::Authenticator(authenticator_box(TestAuth(s)))))
}

struct TestAuth(Settings);

impl Authenticate for TestAuth {
    fn authenticate(&self, r: &AuthRequest) -> Result<AuthVerdict, PluginError> {
        tracing::info!(user = %r.user, "test-auth asked");
        if !self.0.panic_user.is_empty() && r.user.as_str() == self.0.panic_user {
            panic!("test-auth was told to panic for {}", r.user);
        }
        std::thread::sleep(std::time::Duration::from_millis(self.0.sleep_ms));
        if r.user.as_str() != self.0.user {
            return Ok(AuthVerdict::Abstain);
        }
        Ok(match r.credential() {
            Some(Credential::Password(p)) if p.as_str() == self.0.password => AuthVerdict::Allow,
            _ => AuthVerdict::Deny("wrong password".into()),
        })
    }
}
