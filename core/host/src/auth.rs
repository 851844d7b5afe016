//! The authentication chain and the token store.
//!
//! Authenticators are asked in `main.mods` order; the first `Allow` or `Deny` wins and when all
//! abstain the answer is "denied". Tokens are the host's: one per user, single use (spent by a
//! successful publish), 128 random bits from the OS, expiring after `token_ttl_ms`.
//! Everything here may block (authenticators may ask a database), so callers run it on blocking
//! threads; see `conn.rs`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use fstream_abi::{
    names::validate_part, AuthAction, AuthOutcome, AuthRequest, AuthVerdict, AuthenticatorBox,
    Credential,
};
use rand::RngCore;
use subtle::ConstantTimeEq;

/// The authenticators of the current configuration (replaced whole on reload) and the tokens,
/// which outlive reloads.
pub struct AuthChain {
    authenticators: RwLock<Arc<Vec<(String, AuthenticatorBox)>>>,
    tokens: TokenStore,
}

impl AuthChain {
    pub fn new(authenticators: Vec<(String, AuthenticatorBox)>, token_ttl: Duration) -> Self {
        Self {
            authenticators: RwLock::new(Arc::new(authenticators)),
            tokens: TokenStore::new(token_ttl),
        }
    }

    /// Installs a new configuration's authenticators and token lifetime (SIGHUP). Requests
    /// already being answered finish with the old ones.
    pub fn replace(&self, authenticators: Vec<(String, AuthenticatorBox)>, token_ttl: Duration) {
        *self
            .authenticators
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(authenticators);
        *self.tokens.ttl.lock().unwrap_or_else(|p| p.into_inner()) = token_ttl;
    }

    pub fn is_empty(&self) -> bool {
        self.authenticators
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Answers a request; blocks while authenticators work.
    pub fn check(&self, req: &AuthRequest) -> AuthOutcome {
        let outcome = self.decide(req);
        match &outcome {
            AuthOutcome::Allowed => tracing::info!(
                user = %req.user, action = ?req.action, peer = %req.peer, "authenticated"
            ),
            AuthOutcome::Denied(why) => tracing::warn!(
                user = %req.user, action = ?req.action, peer = %req.peer, reason = %why,
                "authentication denied"
            ),
        }
        outcome
    }

    fn decide(&self, req: &AuthRequest) -> AuthOutcome {
        if let Err(e) = validate_part(&req.user) {
            return AuthOutcome::Denied(format!("invalid user name: {e}").into());
        }
        if let Credential::Token(token) = &req.credential {
            return self
                .tokens
                .check(&req.user, token, req.action == AuthAction::Publish);
        }
        self.ask_authenticators(req)
    }

    fn ask_authenticators(&self, req: &AuthRequest) -> AuthOutcome {
        let authenticators = self
            .authenticators
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (name, auth) in authenticators.iter() {
            match auth.authenticate(req).into_result() {
                Ok(AuthVerdict::Allow) => return AuthOutcome::Allowed,
                Ok(AuthVerdict::Deny(why)) => {
                    return AuthOutcome::Denied(format!("{name}: {why}").into())
                }
                Ok(AuthVerdict::Abstain) => {}
                Err(e) => {
                    tracing::error!(plugin = %name, error = %e, "authenticator failed; asking the next one")
                }
            }
        }
        AuthOutcome::Denied("no authenticator knows this user".into())
    }

    /// Checks the password in `req` (its credential must be a password), then issues a token.
    pub fn issue_token(&self, req: &AuthRequest) -> Result<String, String> {
        if !matches!(req.credential, Credential::Password(_)) {
            return Err("a token needs user_password".into());
        }
        match self.check(req) {
            AuthOutcome::Allowed => Ok(self.tokens.issue(&req.user)),
            AuthOutcome::Denied(why) => Err(why.into()),
        }
    }
}

/// Issued tokens: user -> (token, expiry).
struct TokenStore {
    ttl: Mutex<Duration>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl TokenStore {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl: Mutex::new(ttl),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// A new token for `user`; it cancels the user's previous one.
    fn issue(&self, user: &str) -> String {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, expiry)| *expiry > now);
        let ttl = *self.ttl.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(user.to_string(), (token.clone(), now + ttl));
        token
    }

    fn check(&self, user: &str, token: &str, spend: bool) -> AuthOutcome {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let Some((expected, expiry)) = map.get(user) else {
            return AuthOutcome::Denied("no token issued for this user (or already used)".into());
        };
        if *expiry <= Instant::now() {
            map.remove(user);
            return AuthOutcome::Denied("token expired".into());
        }
        if !bool::from(expected.as_bytes().ct_eq(token.as_bytes())) {
            return AuthOutcome::Denied("wrong token".into());
        }
        if spend {
            map.remove(user);
        }
        AuthOutcome::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstream_abi::sdk::{authenticator_box, Authenticate};
    use fstream_abi::PluginError;

    struct Fixed(&'static str, AuthVerdict);
    impl Authenticate for Fixed {
        fn authenticate(&self, r: &AuthRequest) -> Result<AuthVerdict, PluginError> {
            if r.user.as_str() == self.0 {
                Ok(self.1.clone())
            } else {
                Ok(AuthVerdict::Abstain)
            }
        }
    }

    fn req(user: &str, cred: Credential) -> AuthRequest {
        AuthRequest {
            user: user.into(),
            action: AuthAction::Publish,
            credential: cred,
            stream: "".into(),
            peer: "127.0.0.1:1".into(),
            protocol: "test".into(),
        }
    }

    fn chain(ttl_ms: u64) -> AuthChain {
        AuthChain::new(
            vec![
                (
                    "a".into(),
                    authenticator_box(Fixed("bob", AuthVerdict::Deny("no".into()))),
                ),
                (
                    "b".into(),
                    authenticator_box(Fixed("bob", AuthVerdict::Allow)),
                ),
                (
                    "c".into(),
                    authenticator_box(Fixed("amy", AuthVerdict::Allow)),
                ),
            ],
            Duration::from_millis(ttl_ms),
        )
    }

    #[test]
    fn first_definite_answer_wins_and_all_abstaining_denies() {
        let c = chain(1000);
        assert!(!c.check(&req("bob", Credential::None)).is_allowed());
        assert!(c.check(&req("amy", Credential::None)).is_allowed());
        assert!(!c.check(&req("zed", Credential::None)).is_allowed());
        assert!(!c.check(&req("../amy", Credential::None)).is_allowed());
    }

    #[test]
    fn tokens_are_single_use_per_user_and_expire() {
        let c = chain(150);
        assert!(c.issue_token(&req("amy", Credential::None)).is_err());
        let t1 = c
            .issue_token(&req("amy", Credential::Password("x".into())))
            .unwrap();
        assert_eq!(t1.len(), 32);
        assert!(t1
            .chars()
            .all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()));
        let t2 = c
            .issue_token(&req("amy", Credential::Password("x".into())))
            .unwrap();
        assert_ne!(t1, t2);
        // The new token cancels the old one.
        assert!(!c
            .check(&req("amy", Credential::Token(t1.clone().into())))
            .is_allowed());
        // Another user's token is refused.
        assert!(!c
            .check(&req("bob", Credential::Token(t2.clone().into())))
            .is_allowed());
        assert!(c
            .check(&req("amy", Credential::Token(t2.clone().into())))
            .is_allowed());
        assert!(!c
            .check(&req("amy", Credential::Token(t2.into())))
            .is_allowed());
        let t3 = c
            .issue_token(&req("amy", Credential::Password("x".into())))
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(!c
            .check(&req("amy", Credential::Token(t3.into())))
            .is_allowed());
    }
}
