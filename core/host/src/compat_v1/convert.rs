//! Values between interface v1 and v2.
//!
//! `to_v1` functions carry what the host says to a v1 plugin; a v2 value that v1 has no word
//! for gives `None` (the caller skips it or answers for the plugin). `from_v1` functions carry
//! what a v1 plugin says to the host; every v1 value has a v2 equivalent.

use abi_stable::std_types::{RString, RVec};
use fstream_abi::{v1, v2};

/// A v2 non-exhaustive value as this build's enum, or `None` when it is newer.
fn known<E, S, I>(value: &abi_stable::nonexhaustive_enum::NonExhaustive<E, S, I>) -> Option<&E>
where
    E: abi_stable::nonexhaustive_enum::GetEnumInfo,
{
    value.as_enum().ok()
}

// --- host to plugin ---------------------------------------------------------------------------

pub fn auth_request_to_v1(r: &v2::AuthRequest) -> Option<v1::AuthRequest> {
    let action = match known(&r.action)? {
        v2::AuthAction::Publish => v1::AuthAction::Publish,
        v2::AuthAction::Play => v1::AuthAction::Play,
        v2::AuthAction::Token => v1::AuthAction::Token,
        v2::AuthAction::Connect => v1::AuthAction::Connect,
        _ => return None,
    };
    let credential = match known(&r.credential)? {
        v2::Credential::None => v1::Credential::None,
        v2::Credential::Password(p) => v1::Credential::Password(p.clone()),
        v2::Credential::Token(t) => v1::Credential::Token(t.clone()),
        _ => return None,
    };
    Some(v1::AuthRequest {
        user: r.user.clone(),
        action,
        credential,
        stream: r.stream.clone(),
        peer: r.peer.clone(),
        protocol: r.protocol.clone(),
    })
}

pub fn auth_outcome_to_v1(o: &v2::AuthOutcome_NE) -> v1::AuthOutcome {
    match known(o) {
        Some(v2::AuthOutcome::Allowed) => v1::AuthOutcome::Allowed,
        Some(v2::AuthOutcome::Denied(why)) => v1::AuthOutcome::Denied(why.clone()),
        _ => v1::AuthOutcome::Denied("refused".into()),
    }
}

pub fn conn_info_to_v1(c: &v2::ConnInfo) -> v1::ConnInfo {
    v1::ConnInfo {
        id: c.id,
        peer: c.peer.clone(),
        local: c.local.clone(),
    }
}

fn caller_peer(c: &v2::Caller) -> RString {
    c.peer.clone()
}

pub fn app_call_to_v1(call: &v2::AppCall_NE) -> Option<v1::AppCall> {
    Some(match known(call)? {
        v2::AppCall::Connect(c) => v1::AppCall::Connect(v1::ConnectCall {
            app: c.app.clone(),
            tc_url: c.tc_url.clone(),
            args_json: c.args_json.clone(),
            peer: caller_peer(&c.caller),
        }),
        v2::AppCall::Publish(c) => v1::AppCall::Publish(v1::PublishCall {
            app: c.app.clone(),
            stream: c.stream.clone(),
            kind: c.kind.clone(),
            query: c.query.clone(),
            peer: caller_peer(&c.caller),
        }),
        v2::AppCall::Play(c) => v1::AppCall::Play(v1::PlayCall {
            app: c.app.clone(),
            stream: c.stream.clone(),
            query: c.query.clone(),
            peer: caller_peer(&c.caller),
        }),
        v2::AppCall::Close(c) => v1::AppCall::Close(v1::CloseCall {
            app: c.app.clone(),
            peer: caller_peer(&c.caller),
        }),
        _ => return None,
    })
}

fn app_verdict_to_v1(v: &v2::AppVerdict_NE) -> v1::AppVerdict {
    match known(v) {
        Some(v2::AppVerdict::Accept) => v1::AppVerdict::Accept,
        Some(v2::AppVerdict::Redirect(s)) => v1::AppVerdict::Redirect(s.clone()),
        Some(v2::AppVerdict::Reject(why)) => v1::AppVerdict::Reject(why.clone()),
        _ => v1::AppVerdict::Reject("refused".into()),
    }
}

fn app_decision_to_v1(d: &v2::AppDecision) -> v1::AppDecision {
    v1::AppDecision {
        verdict: app_verdict_to_v1(&d.verdict),
        commands: d.commands.iter().map(command_to_v1).collect(),
    }
}

fn command_to_v1(c: &v2::ClientCommand) -> v1::ClientCommand {
    v1::ClientCommand {
        name: c.name.clone(),
        args_json: c.args_json.clone(),
    }
}

fn publish_outcome_to_v1(o: &v2::PublishOutcome_NE) -> v1::PublishOutcome {
    match known(o) {
        Some(v2::PublishOutcome::Started) => v1::PublishOutcome::Started,
        Some(v2::PublishOutcome::Busy) => v1::PublishOutcome::Busy,
        Some(v2::PublishOutcome::Refused(why)) => v1::PublishOutcome::Refused(why.clone()),
        _ => v1::PublishOutcome::Refused("refused".into()),
    }
}

fn status_to_v1(s: &v2::SubscriptionStatus_NE) -> Option<v1::SubscriptionStatus> {
    use v1::SubscriptionStatus as S1;
    use v2::SubscriptionStatus as S2;
    Some(match known(s)? {
        S2::Waiting => S1::Waiting,
        S2::PublisherStarted { media } => S1::PublisherStarted { media: *media },
        S2::PublisherLeft => S1::PublisherLeft,
        S2::Ended => S1::Ended,
        S2::NotFound => S1::NotFound,
        S2::Forbidden => S1::Forbidden,
        S2::TooSlow => S1::TooSlow,
        S2::SourceOpened { duration_ms } => S1::SourceOpened {
            duration_ms: *duration_ms,
        },
        S2::Seeked { position_ms } => S1::Seeked {
            position_ms: *position_ms,
        },
        _ => return None,
    })
}

pub fn event_to_v1(e: v2::Event) -> Option<v1::Event> {
    use v1::Event as E1;
    use v2::Event as E2;
    Some(match e {
        E2::AuthResult { request, outcome } => E1::AuthResult {
            request,
            outcome: auth_outcome_to_v1(&outcome),
        },
        E2::TokenResult { request, token } => E1::TokenResult { request, token },
        E2::AppResult { request, decision } => E1::AppResult {
            request,
            decision: app_decision_to_v1(&decision),
        },
        E2::PublishResult {
            publication,
            outcome,
        } => E1::PublishResult {
            publication,
            outcome: publish_outcome_to_v1(&outcome),
        },
        E2::PublicationReplaced { publication } => E1::PublicationReplaced { publication },
        E2::Subscription {
            subscription,
            status,
        } => E1::Subscription {
            subscription,
            status: status_to_v1(&status)?,
        },
        E2::Shutdown => E1::Shutdown,
        _ => return None,
    })
}

pub fn stream_start_to_v1(s: &v2::StreamStart) -> v1::StreamStart {
    v1::StreamStart {
        stream: s.stream.clone(),
        app: s.app.clone(),
        name: s.name.clone(),
        record: s.record,
        query: s.query.clone(),
        protocol: s.protocol.clone(),
        unix_ms: s.unix_ms,
    }
}

pub fn source_open_to_v1(s: &v2::SourceOpen) -> v1::SourceOpen {
    v1::SourceOpen {
        app: s.app.clone(),
        name: s.name.clone(),
        peer: s.peer.clone(),
    }
}

// --- plugin to host ---------------------------------------------------------------------------

pub fn auth_request_from_v1(r: &v1::AuthRequest) -> v2::AuthRequest {
    let action = match r.action {
        v1::AuthAction::Publish => v2::AuthAction::Publish,
        v1::AuthAction::Play => v2::AuthAction::Play,
        v1::AuthAction::Token => v2::AuthAction::Token,
        v1::AuthAction::Connect => v2::AuthAction::Connect,
    };
    let credential = match &r.credential {
        v1::Credential::None => v2::Credential::None,
        v1::Credential::Password(p) => v2::Credential::Password(p.clone()),
        v1::Credential::Token(t) => v2::Credential::Token(t.clone()),
    };
    v2::AuthRequest {
        user: r.user.clone(),
        action: v2::AuthAction_NE::new(action),
        credential: v2::Credential_NE::new(credential),
        stream: r.stream.clone(),
        peer: r.peer.clone(),
        peer_addr: v2::NetAddr::parse_or_unspecified(&r.peer),
        protocol: r.protocol.clone(),
        ext: RVec::new(),
    }
}

pub fn auth_verdict_from_v1(v: v1::AuthVerdict) -> v2::AuthVerdict_NE {
    v2::AuthVerdict_NE::new(match v {
        v1::AuthVerdict::Allow => v2::AuthVerdict::Allow,
        v1::AuthVerdict::Deny(why) => v2::AuthVerdict::Deny(why),
        v1::AuthVerdict::Abstain => v2::AuthVerdict::Abstain,
    })
}

/// The v2 call a v1 session's `CallApp` stands for. v1 calls carry the peer as text only;
/// the connection's id and address come from the host's own record of the connection.
fn app_call_from_v1(call: v1::AppCall, caller: &v2::Caller) -> v2::AppCall_NE {
    v2::AppCall_NE::new(match call {
        v1::AppCall::Connect(c) => v2::AppCall::Connect(v2::ConnectCall {
            app: c.app,
            tc_url: c.tc_url,
            args_json: c.args_json,
            caller: caller.clone(),
            ext: RVec::new(),
        }),
        v1::AppCall::Publish(c) => v2::AppCall::Publish(v2::PublishCall {
            app: c.app,
            stream: c.stream,
            kind: c.kind,
            query: c.query,
            caller: caller.clone(),
            ext: RVec::new(),
        }),
        v1::AppCall::Play(c) => v2::AppCall::Play(v2::PlayCall {
            app: c.app,
            stream: c.stream,
            query: c.query,
            caller: caller.clone(),
            ext: RVec::new(),
        }),
        v1::AppCall::Close(c) => v2::AppCall::Close(v2::CloseCall {
            app: c.app,
            caller: caller.clone(),
            ext: RVec::new(),
        }),
    })
}

pub fn app_decision_from_v1(d: v1::AppDecision) -> v2::AppDecision {
    let verdict = match d.verdict {
        v1::AppVerdict::Accept => v2::AppVerdict::Accept,
        v1::AppVerdict::Reject(why) => v2::AppVerdict::Reject(why),
        v1::AppVerdict::Redirect(s) => v2::AppVerdict::Redirect(s),
    };
    let mut out = v2::AppDecision::new(verdict);
    out.commands = d
        .commands
        .into_iter()
        .map(|c| v2::ClientCommand {
            name: c.name,
            args_json: c.args_json,
        })
        .collect();
    out
}

fn control_from_v1(c: v1::SubscriptionControl) -> v2::SubscriptionControl_NE {
    use v1::SubscriptionControl as C1;
    use v2::SubscriptionControl as C2;
    v2::SubscriptionControl_NE::new(match c {
        C1::Pause(p) => C2::Pause(p),
        C1::Seek(ms) => C2::Seek(ms),
        C1::BufferLength(ms) => C2::BufferLength(ms),
        C1::ReceiveAudio(on) => C2::ReceiveAudio(on),
        C1::ReceiveVideo(on) => C2::ReceiveVideo(on),
    })
}

/// A v1 session's action as the v2 action the host carries out.
pub fn action_from_v1(a: v1::Action, caller: &v2::Caller) -> v2::Action {
    use v1::Action as A1;
    use v2::Action as A2;
    match a {
        A1::Write(p) => A2::Write(p),
        A1::Close(mode) => A2::Close(mode),
        A1::SetTimer(ms) => A2::SetTimer(ms),
        A1::Authenticate { request, auth } => A2::Authenticate {
            request,
            auth: auth_request_from_v1(&auth),
        },
        A1::IssueToken { request, auth } => A2::IssueToken {
            request,
            auth: auth_request_from_v1(&auth),
        },
        A1::CallApp { request, call } => A2::CallApp {
            request,
            call: app_call_from_v1(call, caller),
        },
        A1::Publish {
            publication,
            stream,
            options: o,
        } => A2::Publish {
            publication,
            stream,
            options: v2::PublishOptions {
                channel_password: o.channel_password,
                conflict: o.conflict,
                grace_ms: o.grace_ms,
                record: o.record,
                query: o.query,
                ext: RVec::new(),
            },
        },
        A1::Packet {
            publication,
            packet,
        } => A2::Packet {
            publication,
            packet,
        },
        A1::Unpublish { publication } => A2::Unpublish { publication },
        A1::Subscribe {
            subscription,
            stream,
            options: o,
        } => A2::Subscribe {
            subscription,
            stream,
            options: v2::SubscribeOptions {
                format: o.format,
                channel_password: o.channel_password,
                wait_ms: o.wait_ms,
                overflow: o.overflow,
                max_queue_bytes: o.max_queue_bytes,
                join_with_cache: o.join_with_cache,
                audio: o.audio,
                video: o.video,
                start_ms: o.start_ms,
                ext: RVec::new(),
            },
        },
        A1::Unsubscribe { subscription } => A2::Unsubscribe { subscription },
        A1::Control {
            subscription,
            control,
        } => A2::Control {
            subscription,
            control: control_from_v1(control),
        },
    }
}

pub fn source_error_from_v1(e: v1::SourceError) -> v2::SourceError_NE {
    v2::SourceError_NE::new(match e {
        v1::SourceError::NotFound(why) => v2::SourceError::NotFound(why),
        v1::SourceError::Failed(e) => v2::SourceError::Failed(e),
    })
}
