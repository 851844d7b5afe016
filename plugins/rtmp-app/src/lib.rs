//! `rtmp-app`: the stock RTMP app handler, the policy rtmplite kept in its `App` class.
//!
//! It serves every app (`*`); a more specific handler listed in `main.mods` takes the apps it
//! names. What it decides (`shared/spec/streams.md`):
//!
//! - **connect**: accepted, unless `allowed_apps` is set and does not name the app
//!   ("Application not found: NAME", as rtmplite answers). The app is one name part
//!   (`rtmp://host/alice`; a trailing `/` is ignored); paths such as `live/room1` are refused,
//!   because a stream is always `APP/STREAM`.
//! - **publish**: the user is the app; the credential comes from the stream name's query string
//!   (`cam?user_password=...` or `cam?token=...`; the frontend appends the connect app's query,
//!   whose values count only where the stream name has none) and is checked by the host's
//!   authenticators.
//!   Publishing to `vod_app` is refused: the VOD source serves that app.
//!   A publish of type `record` or `append` (FMS's way of asking the server to record) is
//!   recorded only when the allowing authenticator granted it (`Extension::MayRecord(true)`,
//!   auth-ini's `record = yes`), unless `record_requires_permission = false`. Without the
//!   grant the publish is still accepted, live: the decision carries `MayRecord(false)`, and
//!   the frontend publishes with `RecordMode::Live` (as nginx-rtmp and SRS, which record only
//!   what their configuration says, treat every publish type).
//! - **play**: accepted (a channel password is the hub's to check, not this handler's), unless
//!   `play_auth` is set: then the authenticators are asked as for a publish, and a rename they
//!   grant (auth-http's nginx-style 3xx) is answered as a redirect.
//! - **close**: nothing to do.
//!
//! Settings: `mods/rtmp-app.toml` (see the shipped file).

mod query;
mod settings;

use abi_stable::std_types::RVec;
use fstream_abi::{
    kinds, may_record,
    names::validate_part,
    sdk::{app_handler_box, HandleApp},
    AppCall, AppDecision, AuthAction, AuthAction_NE, AuthOutcome, AuthOutcome_NE, AuthRequest,
    ConnectCall, Credential, Credential_NE, Extension, Extension_NE, HostApiBox, InitContext,
    PlayCall, PluginError, PluginInstance, PluginObject, PublishCall,
};

pub use query::{percent_decode, redacted, Query, QueryError};
pub use settings::{Settings, SettingsError};

fstream_abi::export_plugin! {
    name: "rtmp-app",
    kinds: kinds::APP_HANDLER,
    init: init,
}

/// Longest piece of a client's name quoted back in a reason.
const MAX_QUOTED: usize = 64;

fn init(host: &HostApiBox, ctx: &InitContext) -> Result<PluginInstance, PluginError> {
    let settings = Settings::parse(&ctx.settings).map_err(|e| PluginError::new(e.to_string()))?;
    if !settings.require_publish_auth {
        tracing::warn!("require_publish_auth = false: anyone can publish to any app over RTMP");
    }
    if matches!(&settings.allowed_apps, Some(list) if list.is_empty()) {
        tracing::warn!("allowed_apps is empty: only the VOD app can be used");
    }
    tracing::info!(
        vod_app = %settings.vod_app,
        allowed_apps = ?settings.allowed_apps,
        require_publish_auth = settings.require_publish_auth,
        play_auth = settings.play_auth,
        "rtmp-app ready"
    );
    let handler = app_handler_box(RtmpApp::new(settings, host.clone()));
    Ok(PluginInstance::empty().with(PluginObject::AppHandler(handler)))
}

/// The handler. Cheap to call from several blocking threads at once: it keeps no per-client
/// state.
pub struct RtmpApp {
    settings: Settings,
    host: HostApiBox,
}

impl RtmpApp {
    pub fn new(settings: Settings, host: HostApiBox) -> Self {
        Self { settings, host }
    }

    /// The app's name, or the reason to refuse it (for [`AppDecision::reject`]).
    fn app_name<'a>(&self, app: &'a str) -> Result<&'a str, String> {
        let name = app.strip_suffix('/').unwrap_or(app);
        if name.is_empty() {
            return Err("Missing app path".into());
        }
        if name.contains('/') {
            return Err(format!(
                "Application paths are not supported: {} (use rtmp://HOST/APP with stream name STREAM)",
                quote(name)
            ));
        }
        if validate_part(name).is_err() {
            return Err(format!("Invalid application name: {}", quote(name)));
        }
        if !self.settings.app_allowed(name) {
            return Err(format!("Application not found: {name}"));
        }
        Ok(name)
    }

    fn connect(&self, call: &ConnectCall) -> AppDecision {
        match self.app_name(&call.app) {
            Ok(app) => {
                tracing::debug!(app, peer = %call.caller.peer, "connect accepted");
                AppDecision::accept()
            }
            Err(why) => {
                tracing::info!(app = %quote(&call.app), peer = %call.caller.peer, "connect refused");
                AppDecision::reject(why)
            }
        }
    }

    fn publish(&self, call: &PublishCall) -> AppDecision {
        let app = match self.app_name(&call.app) {
            Ok(app) => app,
            Err(why) => return AppDecision::reject(why),
        };
        if self.settings.is_vod(app) {
            tracing::info!(app, stream = %quote(&call.stream), peer = %call.caller.peer,
                "publish to the VOD app refused");
            return AppDecision::reject(format!(
                "Publishing to '{app}' is not allowed: that application serves recorded files"
            ));
        }
        if validate_part(&call.stream).is_err() {
            return AppDecision::reject(format!("Invalid stream name: {}", quote(&call.stream)));
        }
        let stream = format!("{app}/{}", call.stream);
        if !self.settings.require_publish_auth {
            tracing::debug!(stream = %stream, peer = %call.caller.peer, "publish accepted without authentication");
            return self.accepted(&stream, call, None);
        }
        let credential = match Query::parse(&call.query) {
            Ok(q) => q.credential(),
            Err(e) => {
                tracing::info!(stream = %stream, peer = %call.caller.peer, error = %e, "bad query string");
                return AppDecision::reject(format!("Invalid query string: {e}"));
            }
        };
        let anonymous = credential == Credential::None;
        let request = auth_request(
            AuthAction::Publish,
            app,
            &stream,
            credential,
            &call.caller,
            &call.query,
        );
        // Blocks on the authenticators; the host calls app handlers on blocking threads.
        let answer = self.host.authorize(&request);
        match allowed(&answer.outcome) {
            Ok(()) => {
                let decision = self.accepted(&stream, call, may_record(&answer.grants));
                match fstream_abi::rename(&answer.grants) {
                    // An authenticator renamed the stream (auth-http's nginx-style 3xx): the
                    // frontend publishes under the new name (it validates it, as every
                    // redirect), with what was decided about recording.
                    Some(to) => {
                        tracing::info!(stream = %stream, to = %quote(to), peer = %call.caller.peer,
                            "publish authenticated under another name");
                        let mut redirect = AppDecision::redirect(to);
                        redirect.ext = decision.ext;
                        redirect
                    }
                    None => {
                        tracing::debug!(stream = %stream, peer = %call.caller.peer, "publish authenticated");
                        decision
                    }
                }
            }
            Err(why) => {
                // The reason is for the log (the host logs it too); the client learns only
                // that it failed, so it cannot tell unknown users from wrong passwords.
                tracing::debug!(stream = %stream, peer = %call.caller.peer, reason = %why, "publish denied");
                if anonymous {
                    AppDecision::reject(format!(
                        "Publishing to {stream} needs credentials: add ?user_password=... or ?token=... to the stream name"
                    ))
                } else {
                    AppDecision::reject(format!("Authentication failed for {stream}"))
                }
            }
        }
    }

    /// Accepts an allowed publish; `granted` is what the authenticator said about recording,
    /// if anything. A publish that asks to be recorded without the right to be gets
    /// `MayRecord(false)` in the decision: live, not recorded.
    fn accepted(&self, stream: &str, call: &PublishCall, granted: Option<bool>) -> AppDecision {
        let mut decision = AppDecision::accept();
        if !asks_to_record(&call.kind) {
            return decision;
        }
        if granted.unwrap_or(!self.settings.record_requires_permission) {
            tracing::debug!(stream, kind = %call.kind, "recording allowed");
        } else {
            tracing::warn!(stream, peer = %call.caller.peer, kind = %quote(&call.kind),
                "publish type asks for a recording this user may not make; publishing live, not recording");
            decision
                .ext
                .push(Extension_NE::new(Extension::MayRecord(false)));
        }
        decision
    }

    fn play(&self, call: &PlayCall) -> AppDecision {
        let app = match self.app_name(&call.app) {
            Ok(app) => app,
            Err(why) => return AppDecision::reject(why),
        };
        if validate_part(&call.stream).is_err() {
            return AppDecision::reject(format!("Invalid stream name: {}", quote(&call.stream)));
        }
        if !self.settings.play_auth || self.settings.is_vod(app) {
            tracing::debug!(app, stream = %call.stream, peer = %call.caller.peer, "play accepted");
            return AppDecision::accept();
        }
        let stream = format!("{app}/{}", call.stream);
        let credential = match Query::parse(&call.query) {
            Ok(q) => q.credential(),
            Err(e) => return AppDecision::reject(format!("Invalid query string: {e}")),
        };
        let request = auth_request(
            AuthAction::Play,
            app,
            &stream,
            credential,
            &call.caller,
            &call.query,
        );
        let answer = self.host.authorize(&request);
        match allowed(&answer.outcome) {
            Ok(()) => match fstream_abi::rename(&answer.grants) {
                Some(to) => {
                    tracing::info!(stream = %stream, to = %quote(to), peer = %call.caller.peer,
                        "play authenticated under another name");
                    AppDecision::redirect(to)
                }
                None => AppDecision::accept(),
            },
            Err(why) => {
                tracing::debug!(stream = %stream, peer = %call.caller.peer, reason = %why, "play denied");
                AppDecision::reject(format!("Playing {stream} is not allowed"))
            }
        }
    }
}

impl HandleApp for RtmpApp {
    fn apps(&self) -> Vec<String> {
        vec!["*".into()]
    }

    fn call(&self, call: &AppCall) -> Result<AppDecision, PluginError> {
        Ok(match call {
            AppCall::Connect(c) => self.connect(c),
            AppCall::Publish(p) => self.publish(p),
            AppCall::Play(p) => self.play(p),
            // Close, and calls added after this build: nothing to decide.
            _ => AppDecision::accept(),
        })
    }
}

/// Whether a publish type asks the server to record the stream (FMS's types; the RTMP frontend
/// maps the same names to `RecordMode::Record` / `Append`).
fn asks_to_record(kind: &str) -> bool {
    matches!(kind, "record" | "append" | "appendWithGap")
}

/// The host's answer: allowed, or denied with the reason for the log. An outcome of a newer
/// host than this build knows counts as a denial.
fn allowed(outcome: &AuthOutcome_NE) -> Result<(), &str> {
    match outcome.as_enum() {
        Ok(AuthOutcome::Allowed) => Ok(()),
        Ok(AuthOutcome::Denied(why)) => Err(why.as_str()),
        _ => Err("an authentication outcome this plugin does not know"),
    }
}

/// What the authenticators are asked about an RTMP publish or play of `stream` in `app` (the
/// user is the app, as nginx-rtmp's and the original server's URLs have it).
fn auth_request(
    action: AuthAction,
    app: &str,
    stream: &str,
    credential: Credential,
    caller: &fstream_abi::Caller,
    query: &str,
) -> AuthRequest {
    AuthRequest {
        user: app.into(),
        action: AuthAction_NE::new(action),
        credential: Credential_NE::new(credential),
        stream: stream.into(),
        peer: caller.peer.clone(),
        peer_addr: caller.peer_addr,
        protocol: "rtmp".into(),
        ext: client_vars(query, caller.connection),
    }
}

/// What an authenticator may want beyond the request's fields (`auth-http` sends them to its
/// backend): `query`, the client's query string without its credentials, and `conn_id`.
fn client_vars(query: &str, connection: u64) -> RVec<Extension_NE> {
    let var = |name: &str, value: String| {
        Extension_NE::new(Extension::Var {
            name: name.into(),
            value: value.into(),
        })
    };
    RVec::from(vec![
        var("query", redacted(query)),
        var("conn_id", connection.to_string()),
    ])
}

/// A client-supplied name, cut short and with control characters escaped, for a reason or a log.
fn quote(s: &str) -> String {
    let cut: String = s.chars().take(MAX_QUOTED).collect();
    let mut out: String = cut.escape_debug().collect();
    if s.chars().count() > MAX_QUOTED {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests;
