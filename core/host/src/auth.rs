//! The authentication chain and the token store.
//!
//! Authenticators are asked in `main.mods` order; the first `Allow` or `Deny` wins and when all
//! abstain the answer is "denied". Tokens are the host's: one per user, single use (spent by a
//! successful publish), 128 random bits from the OS, expiring after `token_ttl_ms`.
//! Everything here may block (authenticators may ask a database), so callers run it on blocking
//! threads; see `conn.rs`.

use std::{
    collections::HashMap,
    net::IpAddr,
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
    guard: BruteForceGuard,
}

/// Refuses an IP address for a while after too many failed authentications from it, without
/// asking the authenticators (password guessing gets slow and cheap to refuse).
struct BruteForceGuard {
    /// (failures allowed, window, ban); 0 failures disables the guard.
    rule: Mutex<(u32, Duration, Duration)>,
    /// Whether loopback addresses are subject to the rule.
    loopback: std::sync::atomic::AtomicBool,
    by_ip: Mutex<HashMap<IpAddr, Failures>>,
}

struct Failures {
    count: u32,
    since: Instant,
    banned_until: Option<Instant>,
}

impl BruteForceGuard {
    fn banned(&self, ip: IpAddr) -> bool {
        let map = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip)
            .and_then(|f| f.banned_until)
            .map(|t| t > Instant::now())
            .unwrap_or(false)
    }

    fn failed(&self, ip: IpAddr) {
        let (allowed, window, ban) = *self.rule.lock().unwrap_or_else(|p| p.into_inner());
        if allowed == 0
            || (ip.is_loopback() && !self.loopback.load(std::sync::atomic::Ordering::Relaxed))
        {
            return;
        }
        let now = Instant::now();
        let mut map = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        // Forget old entries so the map stays small.
        if map.len() > 10_000 {
            map.retain(|_, f| f.since + window > now || f.banned_until.is_some_and(|t| t > now));
        }
        let f = map.entry(ip).or_insert(Failures {
            count: 0,
            since: now,
            banned_until: None,
        });
        if f.since + window <= now {
            f.count = 0;
            f.since = now;
        }
        f.count += 1;
        if f.count >= allowed {
            f.banned_until = Some(now + ban);
            f.count = 0;
            f.since = now;
            tracing::warn!(%ip, ban_ms = ban.as_millis() as u64, "too many failed authentications; refusing this address for a while");
        }
    }
}

impl AuthChain {
    pub fn new(authenticators: Vec<(String, AuthenticatorBox)>, token_ttl: Duration) -> Self {
        Self {
            authenticators: RwLock::new(Arc::new(authenticators)),
            tokens: TokenStore::new(token_ttl),
            guard: BruteForceGuard {
                rule: Mutex::new((0, Duration::ZERO, Duration::ZERO)),
                loopback: std::sync::atomic::AtomicBool::new(false),
                by_ip: Mutex::new(HashMap::new()),
            },
        }
    }

    /// Sets the brute-force rule: after `failures` failed authentications from one address
    /// within `window`, refuse it for `ban` (0 failures: no limit).
    pub fn set_failure_limit(
        &self,
        failures: u32,
        window: Duration,
        ban: Duration,
        loopback: bool,
    ) {
        *self.guard.rule.lock().unwrap_or_else(|p| p.into_inner()) = (failures, window, ban);
        self.guard
            .loopback
            .store(loopback, std::sync::atomic::Ordering::Relaxed);
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
        let ip = req
            .peer
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .ok();
        if let Some(ip) = ip {
            if self.guard.banned(ip) {
                tracing::warn!(user = %req.user, peer = %req.peer, "authentication refused: too many failures from this address");
                return AuthOutcome::Denied(
                    "too many failed authentications from this address".into(),
                );
            }
        }
        let outcome = self.decide(req);
        if let (AuthOutcome::Denied(_), Some(ip)) = (&outcome, ip) {
            self.guard.failed(ip);
        }
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

    fn from_peer(user: &str, peer: &str) -> AuthRequest {
        AuthRequest {
            peer: peer.into(),
            ..req(user, Credential::None)
        }
    }

    #[test]
    fn an_address_with_too_many_failures_is_refused_for_a_while() {
        let c = chain(1000);
        c.set_failure_limit(
            3,
            Duration::from_secs(60),
            Duration::from_millis(200),
            false,
        );
        // Loopback is exempt unless asked.
        for _ in 0..5 {
            assert!(!c.check(&from_peer("zed", "127.0.0.1:5")).is_allowed());
        }
        assert!(c.check(&from_peer("amy", "127.0.0.1:5")).is_allowed());
        let from = from_peer;
        for _ in 0..3 {
            assert!(!c.check(&from("zed", "10.0.0.1:5")).is_allowed());
        }
        // Banned now, even for a user that would be allowed; other addresses are not.
        assert!(!c.check(&from("amy", "10.0.0.1:6")).is_allowed());
        assert!(c.check(&from("amy", "10.0.0.2:6")).is_allowed());
        std::thread::sleep(Duration::from_millis(250));
        assert!(c.check(&from("amy", "10.0.0.1:7")).is_allowed());
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
