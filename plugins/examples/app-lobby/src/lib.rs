//! `app-lobby`: an example app handler in which guests wait until a moderator lets them in.
//!
//! It shows the three things an app handler can do since interface v2.1, the way rtmplite's
//! `App` did them:
//!
//! * **a decision given later**: a guest's `connect` is answered with [`AppDecision::defer`];
//!   the client waits, and gets `NetConnection.Connect.Success` (or `Rejected`) when a
//!   moderator decides, through [`HostApi::decide`] and the call's ticket;
//! * **calling a client at any time**: each moderator hears of every guest who arrives or
//!   leaves (`waiting`, `left`) through [`HostApi::call_client`], outside any call of theirs;
//! * **a client's own commands**: a moderator's `NetConnection.call("admit", null, id)`,
//!   `refuse`, and `lobby` reach [`HandleApp::command`] and come back as `_result`/`_error`.
//!
//! A client is a moderator when its connect URL carries the key: `rtmp://host/studio?key=...`.
//! Moderators may publish into the app; admitted guests and moderators may play from it.
//! Settings, `mods/app-lobby.toml`:
//!
//! ```toml
//! apps = ["studio"]
//! moderator_key = "change-me"
//! wait_ms = 20000      # a guest not admitted by then is refused
//! max_waiting = 100    # more guests than this at once are refused at once
//! ```
//!
//! The host bounds every wait too: `app_defer_timeout_ms` in `host.toml` (30 s) rejects a
//! guest nobody decided about, whatever the handler does.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use fstream_abi::{
    kinds,
    names::validate_part,
    sdk::{app_handler_box, HandleApp},
    AppCall, AppDecision, Caller, ClientCommand, CommandCall, CommandReply, HostApiBox,
    InitContext, PluginError, PluginInstance, PluginObject,
};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use thiserror::Error;

fstream_abi::export_plugin! {
    name: "app-lobby",
    kinds: kinds::APP_HANDLER,
    init: init,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    apps: Vec<String>,
    /// A connect URL with `?key=` this value makes a moderator.
    moderator_key: String,
    #[serde(default = "default_wait_ms")]
    wait_ms: u64,
    #[serde(default = "default_max_waiting")]
    max_waiting: usize,
}

fn default_wait_ms() -> u64 {
    20_000
}

fn default_max_waiting() -> usize {
    100
}

#[derive(Debug, Error)]
enum SettingsError {
    #[error("{0}")]
    Toml(String),
    #[error("apps: list at least one app")]
    NoApps,
    #[error("apps: {0:?} is not a valid app name")]
    BadApp(String),
    #[error("moderator_key: must not be empty")]
    NoKey,
    #[error("max_waiting: must be at least 1")]
    NoRoom,
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
        if s.moderator_key.is_empty() {
            return Err(SettingsError::NoKey);
        }
        if s.max_waiting == 0 {
            return Err(SettingsError::NoRoom);
        }
        Ok(s)
    }
}

/// Deferred answers and calls to clients go through the host, so keep its API.
fn init(host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings = Settings::parse(&ctx.settings).map_err(|e| PluginError::new(e.to_string()))?;
    tracing::info!(apps = ?settings.apps, wait_ms = settings.wait_ms, "app-lobby ready");
    let lobby = Lobby::new(settings, host.clone());
    Ok(PluginInstance::empty().with(PluginObject::AppHandler(app_handler_box(lobby))))
}

/// A guest whose connect awaits a moderator.
struct Guest {
    ticket: u64,
    peer: String,
    since: Instant,
}

#[derive(Default)]
struct State {
    moderators: BTreeSet<u64>,
    /// By connection id.
    waiting: BTreeMap<u64, Guest>,
    admitted: BTreeSet<u64>,
}

struct Lobby {
    settings: Settings,
    host: HostApiBox,
    /// The host calls a handler from several threads at once.
    state: Mutex<State>,
}

/// What to do once the state's lock is released: the host's calls never wait on it, but a
/// handler that holds no lock while calling out is easier to reason about.
#[derive(Default)]
struct Effects {
    decide: Vec<(u64, AppDecision)>,
    tell: Vec<(u64, ClientCommand)>,
}

fn command(name: &str, args: Value) -> ClientCommand {
    ClientCommand {
        name: name.into(),
        args_json: args.to_string().into(),
    }
}

fn guest_json(id: u64, g: &Guest) -> Value {
    json!({ "id": id, "peer": g.peer, "waited_ms": g.since.elapsed().as_millis() as u64 })
}

impl Lobby {
    fn new(settings: Settings, host: HostApiBox) -> Self {
        Self {
            settings,
            host,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change below is a single insert or remove: a panic cannot leave it half done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, fx: Effects) {
        for (ticket, decision) in fx.decide {
            // False: the guest left or the host's own timeout answered first.
            let _ = self.host.decide(ticket, decision);
        }
        for (connection, c) in fx.tell {
            let _ = self.host.call_client(connection, c);
        }
    }

    fn is_moderator_key(&self, tc_url: &str) -> bool {
        let query = tc_url.split_once('?').map(|(_, q)| q).unwrap_or("");
        query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("key="))
            .any(|k| bool::from(k.as_bytes().ct_eq(self.settings.moderator_key.as_bytes())))
    }

    /// Tells every moderator.
    fn tell_moderators(st: &State, fx: &mut Effects, c: ClientCommand) {
        for &m in &st.moderators {
            fx.tell.push((m, c.clone()));
        }
    }

    /// Guests who waited too long are refused (and the moderators told).
    fn expire(&self, st: &mut State, fx: &mut Effects) {
        let limit = Duration::from_millis(self.settings.wait_ms);
        let late: Vec<u64> = st
            .waiting
            .iter()
            .filter(|(_, g)| g.since.elapsed() >= limit)
            .map(|(&id, _)| id)
            .collect();
        for id in late {
            if let Some(g) = st.waiting.remove(&id) {
                let why = "No moderator admitted you in time";
                fx.decide.push((g.ticket, AppDecision::reject(why)));
                Self::tell_moderators(st, fx, command("left", json!([{ "id": id }])));
            }
        }
    }

    fn connect(&self, tc_url: &str, caller: &Caller, ticket: Option<u64>) -> AppDecision {
        let mut fx = Effects::default();
        let decision = {
            let mut st = self.state();
            self.expire(&mut st, &mut fx);
            let id = caller.connection;
            if self.is_moderator_key(tc_url) {
                st.moderators.insert(id);
                let guests: Vec<Value> =
                    st.waiting.iter().map(|(&i, g)| guest_json(i, g)).collect();
                tracing::info!(connection = id, peer = %caller.peer, "a moderator joined");
                AppDecision::accept().with_command(command("lobby", json!([guests])))
            } else if let Some(ticket) = ticket {
                if st.waiting.len() >= self.settings.max_waiting {
                    AppDecision::reject("The lobby is full; try again later")
                } else {
                    let guest = Guest {
                        ticket,
                        peer: caller.peer.to_string(),
                        since: Instant::now(),
                    };
                    let note = command("waiting", json!([guest_json(id, &guest)]));
                    st.waiting.insert(id, guest);
                    Self::tell_moderators(&st, &mut fx, note);
                    tracing::info!(connection = id, peer = %caller.peer, "a guest waits");
                    AppDecision::defer()
                }
            } else {
                // A host before v2.1 gives no ticket: nobody could let the guest in later.
                AppDecision::reject("This server cannot hold a connection in a lobby")
            }
        };
        self.run(fx);
        decision
    }

    fn close(&self, caller: &Caller) {
        let mut fx = Effects::default();
        {
            let mut st = self.state();
            let id = caller.connection;
            st.moderators.remove(&id);
            st.admitted.remove(&id);
            if st.waiting.remove(&id).is_some() {
                tracing::info!(connection = id, "a guest left the lobby");
                Self::tell_moderators(&st, &mut fx, command("left", json!([{ "id": id }])));
            }
        }
        self.run(fx);
    }

    /// `admit(id)` / `refuse(id, reason)`, from a moderator.
    fn decide(&self, id: u64, admit: bool, reason: Option<&str>) -> CommandReply {
        let guest = self.state().waiting.remove(&id);
        let Some(guest) = guest else {
            return error(format!("No guest {id} is waiting"));
        };
        let decision = if admit {
            AppDecision::accept().with_command(command("admitted", json!(["Welcome"])))
        } else {
            AppDecision::reject(reason.unwrap_or("Refused by the moderator"))
        };
        // Admitted before the answer goes out, so the guest's first play finds it so.
        if admit {
            self.state().admitted.insert(id);
        }
        if self.host.decide(guest.ticket, decision) {
            tracing::info!(connection = id, admit, "a moderator decided");
            CommandReply::Result("true".into())
        } else {
            self.state().admitted.remove(&id);
            error(format!("Guest {id} is gone"))
        }
    }
}

fn error(text: String) -> CommandReply {
    CommandReply::Error(Value::String(text).to_string().into())
}

impl HandleApp for Lobby {
    fn apps(&self) -> Vec<String> {
        self.settings.apps.clone()
    }

    fn call(&self, call: &AppCall) -> Result<AppDecision, PluginError> {
        let ticket = call.ticket();
        Ok(match call {
            AppCall::Connect(c) => self.connect(&c.tc_url, &c.caller, ticket),
            AppCall::Publish(p) => {
                if self.state().moderators.contains(&p.caller.connection) {
                    AppDecision::accept()
                } else {
                    AppDecision::reject("Only a moderator may publish here")
                }
            }
            AppCall::Play(p) => {
                let st = self.state();
                let id = p.caller.connection;
                if st.moderators.contains(&id) || st.admitted.contains(&id) {
                    AppDecision::accept()
                } else {
                    AppDecision::reject("You have not been admitted")
                }
            }
            AppCall::Close(c) => {
                self.close(&c.caller);
                AppDecision::accept()
            }
            _ => AppDecision::accept(),
        })
    }

    fn command(&self, call: &CommandCall) -> Result<CommandReply, PluginError> {
        let name = call.name.as_str();
        if !matches!(name, "admit" | "refuse" | "lobby") {
            return Ok(CommandReply::NotHandled);
        }
        if !self.state().moderators.contains(&call.caller.connection) {
            return Ok(error("Only a moderator may do that".into()));
        }
        let args: Value = serde_json::from_str(&call.args_json).unwrap_or(Value::Null);
        let id = args.get(0).and_then(Value::as_f64).filter(|n| *n >= 0.0);
        Ok(match (name, id) {
            ("lobby", _) => {
                let mut fx = Effects::default();
                let guests = {
                    let mut st = self.state();
                    self.expire(&mut st, &mut fx);
                    st.waiting
                        .iter()
                        .map(|(&i, g)| guest_json(i, g))
                        .collect::<Vec<_>>()
                };
                self.run(fx);
                CommandReply::Result(Value::Array(guests).to_string().into())
            }
            (_, None) => error(format!("{name}: the first argument is a guest's id")),
            ("admit", Some(id)) => self.decide(id as u64, true, None),
            (_, Some(id)) => {
                let reason = args.get(1).and_then(Value::as_str);
                self.decide(id as u64, false, reason)
            }
        })
    }
}

#[cfg(test)]
mod tests;
