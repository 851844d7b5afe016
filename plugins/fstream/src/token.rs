//! The `token` action: the host checks the password and issues a single-use broadcast token,
//! which is sent as one line before the connection closes.

use abi_stable::std_types::RResult;
use fstream_abi::{Action, AuthAction, CloseMode, Credential, Event, Outbox};

use crate::{
    auth_request,
    error::{check_name, Refusal},
};

const TOKEN_REQUEST: u64 = 2;

pub struct TokenRequest {
    user: String,
    done: bool,
}

impl TokenRequest {
    pub fn start(user: String, password: String, out: &mut Outbox) -> Result<Self, Refusal> {
        check_name("user", &user)?;
        out.push(Action::IssueToken {
            request: TOKEN_REQUEST,
            auth: auth_request(
                user.clone(),
                AuthAction::Token,
                Credential::Password(password.into()),
                String::new(),
            ),
        });
        Ok(Self { user, done: false })
    }

    pub fn event(&mut self, event: Event, out: &mut Outbox) -> Result<(), Refusal> {
        match event {
            Event::TokenResult {
                request: TOKEN_REQUEST,
                token,
            } if !self.done => {
                self.done = true;
                match token {
                    RResult::ROk(t) => {
                        tracing::info!(user = %self.user, "token issued");
                        let mut line = Vec::with_capacity(t.len() + 1);
                        line.extend_from_slice(t.as_bytes());
                        line.push(b'\n');
                        out.write_payload(fstream_abi::payload_from_vec(line));
                        out.close(CloseMode::AfterFlush);
                        Ok(())
                    }
                    RResult::RErr(why) => Err(Refusal::NoToken(why.into())),
                }
            }
            Event::Shutdown if !self.done => {
                self.done = true;
                out.close(CloseMode::Now);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
