//! `test-app`: a minimal app handler for tests (`mods/test-app.toml`).
//!
//! It serves the apps in `apps` (default `["*"]`). A publish is allowed when the host's
//! authenticators allow the user named like the app with the `user_password=` or `token=` of
//! the stream name's query; everything else is accepted. With `greet = true` an accepted connect
//! is followed by the command `onTestGreeting("hello", {"app": APP})`. With `flood = N` a
//! connect to the app `flood` first sends the client N commands with `host.call_client`, as
//! fast as it can (a plugin gone wrong), and logs how many the host refused.

use abi_stable::std_types::RVec;
use fstream_abi::{
    kinds,
    sdk::{app_handler_box, HandleApp},
    AppCall, AppDecision, AuthAction, AuthAction_NE, AuthOutcome, AuthRequest, ClientCommand,
    Credential, Credential_NE, HostApiBox, InitContext, PluginError, PluginInstance, PluginObject,
};
use serde::Deserialize;

fstream_abi::export_plugin! { name: "test-app", kinds: kinds::APP_HANDLER, init: init }

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    apps: Vec<String>,
    greet: bool,
    flood: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            apps: vec!["*".into()],
            greet: false,
            flood: 0,
        }
    }
}

fn init(host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings: Settings =
        toml::from_str(&ctx.settings).map_err(|e| PluginError::new(e.message()))?;
    let app = app_handler_box(TestApp {
        host: host.clone(),
        settings,
    });
    Ok(PluginInstance::empty().with(PluginObject::AppHandler(app)))
}

struct TestApp {
    host: HostApiBox,
    settings: Settings,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

impl HandleApp for TestApp {
    fn apps(&self) -> Vec<String> {
        self.settings.apps.clone()
    }

    fn call(&self, call: &AppCall) -> Result<AppDecision, PluginError> {
        match call {
            AppCall::Connect(c) => {
                tracing::info!(app = %c.app, args = %c.args_json, "test-app: connect");
                if c.app.as_str() == "flood" && self.settings.flood > 0 {
                    let refused = (0..self.settings.flood)
                        .filter(|i| {
                            !self.host.call_client(
                                c.caller.connection,
                                ClientCommand {
                                    name: "onFlood".into(),
                                    args_json: format!("[{i}]").into(),
                                },
                            )
                        })
                        .count();
                    tracing::info!(refused, "test-app: flood sent");
                }
                let mut d = AppDecision::accept();
                if self.settings.greet {
                    d.commands.push(ClientCommand {
                        name: "onTestGreeting".into(),
                        args_json: format!(r#"["hello", {{"app": "{}"}}]"#, c.app).into(),
                    });
                }
                Ok(d)
            }
            AppCall::Publish(p) => {
                let credential = if let Some(pw) = param(&p.query, "user_password") {
                    Credential::Password(pw.into())
                } else if let Some(t) = param(&p.query, "token") {
                    Credential::Token(t.into())
                } else {
                    Credential::None
                };
                let outcome = self.host.authenticate(&AuthRequest {
                    user: p.app.clone(),
                    action: AuthAction_NE::new(AuthAction::Publish),
                    credential: Credential_NE::new(credential),
                    stream: format!("{}/{}", p.app, p.stream).into(),
                    peer: p.caller.peer.clone(),
                    peer_addr: p.caller.peer_addr,
                    protocol: "rtmp".into(),
                    ext: RVec::new(),
                });
                tracing::info!(app = %p.app, stream = %p.stream, outcome = ?outcome, "test-app: publish");
                // An outcome of a newer host counts as a denial.
                Ok(match outcome.as_enum() {
                    Ok(AuthOutcome::Allowed) => AppDecision::accept(),
                    Ok(AuthOutcome::Denied(why)) => {
                        AppDecision::reject(format!("Publishing refused: {why}"))
                    }
                    _ => AppDecision::reject("Publishing refused"),
                })
            }
            // Play, close and calls of a newer host.
            _ => Ok(AppDecision::accept()),
        }
    }
}
