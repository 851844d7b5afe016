//! `app-rename`: an example app handler, written the way a plugin author would write one.
//!
//! It serves the RTMP apps named in its settings as play-only aliases: `rtmp://host/tv/news`
//! plays whatever stream its table maps `news` to (say `alice/cam`), and each client is greeted
//! after connecting with a `connected` command, as rtmplite apps did with
//! `client.call('connected', ...)`. Its settings file `mods/app-rename.toml`:
//!
//! ```toml
//! apps = ["tv"]
//! greeting = "Welcome to the tv app"
//! [rename]
//! news = "alice/cam"
//! ```
//!
//! List it in `mods/main.mods`: apps it names are routed to it, every other app stays with the
//! handler that serves `*` (the stock `rtmp-app`). See the README section "Writing your own app
//! handler".

use std::collections::BTreeMap;

use fstream_abi::{
    kinds,
    names::{split_stream, validate_part},
    sdk::{app_handler_box, HandleApp},
    AppCall, AppDecision, ClientCommand, CommandCall, CommandReply, HostApiBox, InitContext,
    PluginError, PluginInstance, PluginObject,
};
use serde::Deserialize;
use thiserror::Error;

// 1. Export the plugin: the name operators write in main.mods, the kinds it provides, and the
//    function that builds it.
fstream_abi::export_plugin! {
    name: "app-rename",
    kinds: kinds::APP_HANDLER,
    init: init,
}

// 2. Settings: a typed struct; `deny_unknown_fields` turns a typo into a clear startup error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The apps this handler serves.
    apps: Vec<String>,
    /// Sent to each client after its connect is accepted.
    #[serde(default)]
    greeting: Option<String>,
    /// Stream name in these apps => the `APP/STREAM` it plays.
    #[serde(default)]
    rename: BTreeMap<String, String>,
}

#[derive(Debug, Error)]
enum SettingsError {
    #[error("{0}")]
    Toml(String),
    #[error("apps: list at least one app")]
    NoApps,
    #[error("apps: {0:?} is not a valid app name")]
    BadApp(String),
    #[error("rename: {0:?} is not a valid stream name")]
    BadName(String),
    #[error("rename: {name} = {target:?}: the target must be APP/STREAM")]
    BadTarget { name: String, target: String },
}

impl Settings {
    fn parse(text: &str) -> Result<Settings, SettingsError> {
        let s: Settings =
            toml::from_str(text).map_err(|e| SettingsError::Toml(e.message().to_string()))?;
        if s.apps.is_empty() {
            return Err(SettingsError::NoApps);
        }
        if let Some(bad) = s.apps.iter().find(|a| validate_part(a).is_err()) {
            return Err(SettingsError::BadApp(bad.clone()));
        }
        for (name, target) in &s.rename {
            validate_part(name).map_err(|_| SettingsError::BadName(name.clone()))?;
            split_stream(target).map_err(|_| SettingsError::BadTarget {
                name: name.clone(),
                target: target.clone(),
            })?;
        }
        Ok(s)
    }
}

// 3. Init: parse the settings the host passes as text, build the objects. Keep `host` (clone
//    it) if you need `host.authenticate(...)` later; this handler does not.
fn init(_host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings = Settings::parse(&ctx.settings).map_err(|e| PluginError::new(e.to_string()))?;
    tracing::info!(apps = ?settings.apps, names = settings.rename.len(), "app-rename ready");
    let handler = app_handler_box(Rename(settings));
    Ok(PluginInstance::empty().with(PluginObject::AppHandler(handler)))
}

// 4. The handler itself. The host calls it on blocking threads (so it may block, and may be
//    called from several threads at once); a panic would only fail this one call.
struct Rename(Settings);

impl HandleApp for Rename {
    fn apps(&self) -> Vec<String> {
        self.0.apps.clone()
    }

    fn call(&self, call: &AppCall) -> Result<AppDecision, PluginError> {
        Ok(match call {
            AppCall::Connect(c) => {
                let mut decision = AppDecision::accept();
                if let Some(text) = &self.0.greeting {
                    // Arguments are a JSON array; the RTMP frontend sends them as AMF.
                    let args = serde_json::json!([text, c.app.as_str()]);
                    decision.commands.push(ClientCommand {
                        name: "connected".into(),
                        args_json: args.to_string().into(),
                    });
                }
                decision
            }
            AppCall::Play(p) => match self.0.rename.get(p.stream.as_str()) {
                Some(target) => {
                    tracing::debug!(app = %p.app, stream = %p.stream, target = %target, "play redirected");
                    AppDecision::redirect(target.clone())
                }
                None => AppDecision::reject(format!("Stream not found: {}", short(&p.stream))),
            },
            // Without this, anyone could publish into a stream these names point at.
            AppCall::Publish(p) => {
                AppDecision::reject(format!("Publishing to '{}' is not allowed", short(&p.app)))
            }
            // Close, and calls added after this build: nothing to decide.
            _ => AppDecision::accept(),
        })
    }

    /// `NetConnection.call("lookup", responder, name)`: where a play of `name` goes. The
    /// client gets `{"stream": target}` as the result, or an error string. Other commands are
    /// not ours (the client gets "method not found").
    fn command(&self, call: &CommandCall) -> Result<CommandReply, PluginError> {
        if call.name.as_str() != "lookup" {
            return Ok(CommandReply::NotHandled);
        }
        let args: serde_json::Value =
            serde_json::from_str(&call.args_json).unwrap_or(serde_json::Value::Null);
        let name = args.get(0).and_then(|v| v.as_str()).unwrap_or("");
        Ok(match self.0.rename.get(name) {
            Some(target) => {
                CommandReply::Result(serde_json::json!({ "stream": target }).to_string().into())
            }
            None => CommandReply::Error(
                serde_json::json!(format!("Stream not found: {}", short(name)))
                    .to_string()
                    .into(),
            ),
        })
    }
}

/// A client-supplied name, cut short and with control characters escaped, for a reason.
fn short(s: &str) -> String {
    s.chars()
        .take(64)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::RVec;
    use fstream_abi::{AppVerdict, Caller, ConnectCall, NetAddr, PlayCall, PublishCall};

    fn caller() -> Caller {
        Caller {
            connection: 1,
            peer: "127.0.0.1:1".into(),
            peer_addr: NetAddr::parse_or_unspecified("127.0.0.1:1"),
        }
    }

    fn verdict(h: &Rename, call: &AppCall) -> AppVerdict {
        let decision = h.call(call).unwrap();
        decision
            .verdict()
            .cloned()
            .expect("a verdict this build knows")
    }

    fn handler(text: &str) -> Rename {
        Rename(Settings::parse(text).unwrap())
    }

    fn play(h: &Rename, stream: &str) -> AppVerdict {
        let call = AppCall::Play(PlayCall {
            app: "tv".into(),
            stream: stream.into(),
            query: "".into(),
            caller: caller(),
            ext: RVec::new(),
        });
        verdict(h, &call)
    }

    #[test]
    fn the_shipped_example_settings_parse() {
        let h = handler(include_str!("../app-rename.toml"));
        assert_eq!(h.apps(), ["tv"]);
        assert_eq!(h.0.rename.len(), 2);
    }

    #[test]
    fn plays_are_redirected_by_the_table() {
        let h = handler("apps = [\"tv\"]\n[rename]\nnews = \"alice/cam\"\n");
        assert_eq!(play(&h, "news"), AppVerdict::Redirect("alice/cam".into()));
        assert_eq!(
            play(&h, "other"),
            AppVerdict::Reject("Stream not found: other".into())
        );
    }

    #[test]
    fn connect_greets_the_client() {
        let h = handler("apps = [\"tv\"]\ngreeting = \"hi \\\"there\\\"\"\n");
        let call = AppCall::Connect(ConnectCall {
            app: "tv".into(),
            tc_url: "rtmp://h/tv".into(),
            args_json: "[{}]".into(),
            caller: caller(),
            ext: RVec::new(),
        });
        let d = h.call(&call).unwrap();
        assert_eq!(d.verdict(), Some(&AppVerdict::Accept));
        assert_eq!(d.commands.len(), 1);
        assert_eq!(d.commands[0].name.as_str(), "connected");
        let args: serde_json::Value = serde_json::from_str(&d.commands[0].args_json).unwrap();
        assert_eq!(args, serde_json::json!(["hi \"there\"", "tv"]));

        // No greeting configured: no command.
        let h = handler("apps = [\"tv\"]");
        assert!(h.call(&call).unwrap().commands.is_empty());
    }

    #[test]
    fn publishing_is_refused() {
        let h = handler("apps = [\"tv\"]\n[rename]\nnews = \"alice/cam\"\n");
        let call = AppCall::Publish(PublishCall {
            app: "tv".into(),
            stream: "news".into(),
            kind: "live".into(),
            query: "user_password=x".into(),
            caller: caller(),
            ext: RVec::new(),
        });
        assert!(matches!(verdict(&h, &call), AppVerdict::Reject(_)));
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let err = |t: &str| Settings::parse(t).unwrap_err().to_string();
        assert!(err("").contains("apps"));
        assert!(err("apps = []").contains("at least one"));
        assert!(err("apps = [\"a/b\"]").contains("a/b"));
        assert!(err("apps = [\"tv\"]\ngreet = \"x\"").contains("greet"));
        assert!(err("apps = [\"tv\"]\n[rename]\nnews = \"cam\"").contains("APP/STREAM"));
        assert!(err("apps = [\"tv\"]\n[rename]\nnews = \"a/../b\"").contains("APP/STREAM"));
        assert!(err("apps = [\"tv\"]\n[rename]\n\"..\" = \"a/b\"").contains("\"..\""));
    }
}
