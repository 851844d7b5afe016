//! The authentication chain and the token store.
//!
//! Authenticators are asked in `main.mods` order; the first `Allow` or `Deny` wins and when all
//! abstain the answer is "denied". Tokens are the host's: one per user, single use (spent by a
//! successful publish), 128 random bits from the OS, expiring after `token_ttl_ms`. A token
//! carries the right to record (`Extension::MayRecord`) that the password it was issued for
//! was granted, and nothing else.
//! Everything here may block (authenticators may ask a database), so callers run it on blocking
//! threads; see `conn.rs`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use fstream_abi::{
    names::validate_part, var, AuthAction, AuthOutcome, AuthRequest, AuthVerdict, AuthenticatorBox,
    Credential, Extension, Extension_NE, Extensions,
};
use rand::RngCore;
use std::sync::atomic::{AtomicU64, Ordering};
use subtle::ConstantTimeEq;

use crate::{
    auth_guard::{AuthGuard, GuardRule},
    call_gate::{GateError, SyncSlots},
};

/// The authenticators of the current configuration (replaced whole on reload) and the tokens,
/// which outlive reloads.
pub struct AuthChain {
    authenticators: RwLock<Arc<Vec<(String, AuthenticatorBox)>>>,
    tokens: TokenStore,
    guard: AuthGuard,
    /// Authenticator calls at once (each may hash a password), and how long one may wait.
    slots: RwLock<(Arc<SyncSlots>, Duration)>,
    /// Answers given, for the metrics.
    pub counters: AuthCounters,
}

/// How authentications ended, since start: `errors` counts authenticator failures (a panic,
/// an error), each of which also ends in the next authenticator's answer or a denial.
#[derive(Default)]
pub struct AuthCounters {
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    pub errors: AtomicU64,
}

impl AuthCounters {
    fn count(&self, outcome: &AuthOutcome) {
        match outcome {
            AuthOutcome::Allowed => &self.allowed,
            _ => &self.denied,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

impl AuthChain {
    pub fn new(authenticators: Vec<(String, AuthenticatorBox)>, token_ttl: Duration) -> Self {
        Self {
            authenticators: RwLock::new(Arc::new(authenticators)),
            tokens: TokenStore::new(token_ttl),
            guard: AuthGuard::default(),
            slots: RwLock::new((
                Arc::new(SyncSlots::new("authentication", default_concurrency(), 256)),
                Duration::from_secs(5),
            )),
            counters: AuthCounters::default(),
        }
    }

    /// At most `concurrency` authenticator calls at once (0: one per core), `queue` more
    /// waiting up to `wait`; past that an authentication is refused as "busy".
    pub fn set_concurrency(&self, concurrency: usize, queue: usize, wait: Duration) {
        let n = if concurrency == 0 {
            default_concurrency()
        } else {
            concurrency
        };
        *self.slots.write().unwrap_or_else(|p| p.into_inner()) =
            (Arc::new(SyncSlots::new("authentication", n, queue)), wait);
    }

    /// Sets the failed-login guard's rule (see [`crate::auth_guard`]).
    pub fn set_failure_limit(&self, rule: GuardRule) {
        self.guard.set_rule(rule);
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

    /// Answers a request; blocks while authenticators work (or wait for a free slot).
    pub fn check(&self, req: &AuthRequest) -> AuthOutcome {
        self.check_granted(req).0
    }

    /// [`Self::check`] with the grants of the authenticator that allowed (a rename, the
    /// right to record: `AuthVerdict::AllowWith`, since v2.3).
    pub fn check_granted(&self, req: &AuthRequest) -> (AuthOutcome, Extensions) {
        let ip = req
            .peer
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .ok();
        let attempt = match self.guard.begin(ip) {
            Ok(a) => a,
            Err(why) => {
                tracing::warn!(user = %req.user, peer = %req.peer, reason = why, "authentication refused");
                return (AuthOutcome::Denied(why.into()), Extensions::new());
            }
        };
        let ((outcome, grants), counts) = match self.decide(req) {
            Decision::Answer(o, g) => ((o, g), true),
            // The server was too busy to ask: not the client's failure.
            Decision::Busy(e) => (
                (
                    AuthOutcome::Denied(format!("server busy: {e}").into()),
                    Extensions::new(),
                ),
                false,
            ),
        };
        self.guard
            .end(attempt, counts && matches!(outcome, AuthOutcome::Denied(_)));
        match &outcome {
            AuthOutcome::Allowed => tracing::info!(
                user = %req.user, action = ?req.action, peer = %req.peer, "authenticated"
            ),
            AuthOutcome::Denied(why) => tracing::warn!(
                user = %req.user, action = ?req.action, peer = %req.peer, reason = %why,
                "authentication denied"
            ),
            _ => {}
        }
        self.counters.count(&outcome);
        (outcome, grants)
    }

    fn decide(&self, req: &AuthRequest) -> Decision {
        if let Err(e) = validate_part(&req.user) {
            return Decision::Answer(
                AuthOutcome::Denied(format!("invalid user name: {e}").into()),
                Extensions::new(),
            );
        }
        if let Some(Credential::Token(token)) = req.credential() {
            let (outcome, grants) =
                self.tokens
                    .check(&req.user, token, req.action() == Some(AuthAction::Publish));
            return Decision::Answer(outcome, grants);
        }
        let (slots, wait) = self.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
        let decision = match slots.enter(wait) {
            Ok(_slot) => {
                let (outcome, grants) = self.ask_authenticators(req);
                Decision::Answer(outcome, grants)
            }
            Err(e) => Decision::Busy(e),
        };
        decision
    }

    fn ask_authenticators(&self, req: &AuthRequest) -> (AuthOutcome, Extensions) {
        let deny = |why: String| (AuthOutcome::Denied(why.into()), Extensions::new());
        let authenticators = self
            .authenticators
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (name, auth) in authenticators.iter() {
            match auth.authenticate(req).into_result().map(|v| v.into_enum()) {
                Ok(Ok(AuthVerdict::Allow)) => return (AuthOutcome::Allowed, Extensions::new()),
                Ok(Ok(AuthVerdict::AllowWith(grants))) => return (AuthOutcome::Allowed, grants),
                Ok(Ok(AuthVerdict::Deny(why))) => return deny(format!("{name}: {why}")),
                Ok(Ok(AuthVerdict::Abstain)) => {}
                // A verdict this host does not know (it cannot come from a plugin it loaded):
                // a refusal, not a pass.
                Ok(Ok(_) | Err(_)) => return deny(format!("{name}: unknown verdict")),
                Err(e) => {
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(plugin = %name, error = %e, "authenticator failed; asking the next one")
                }
            }
        }
        deny("no authenticator knows this user".into())
    }

    /// Checks the password in `req` (its credential must be a password), then issues a token.
    pub fn issue_token(&self, req: &AuthRequest) -> Result<String, String> {
        if !matches!(req.credential(), Some(Credential::Password(_))) {
            return Err("a token needs user_password".into());
        }
        match self.check_granted(req) {
            (AuthOutcome::Allowed, grants) => Ok(self.tokens.issue(&req.user, carried(&grants))),
            (AuthOutcome::Denied(why), _) => Err(why.into()),
            _ => Err("refused".into()),
        }
    }
}

/// The grants a token keeps of its password's: the right to record. (A rename answered a
/// token request, not the publish the token is for.)
fn carried(grants: &Extensions) -> Extensions {
    grants
        .iter()
        .filter(|g| matches!(g.as_enum(), Ok(Extension::MayRecord(_))))
        .cloned()
        .collect()
}

/// Names the connection a session's request comes from, as `Var { "conn_id" }` in its `ext`
/// (for authenticators that pass it on, as `auth-http` does), unless the session named one.
pub fn add_conn_id(req: &mut AuthRequest, conn_id: u64) {
    if var(&req.ext, "conn_id").is_none() {
        req.ext.push(Extension_NE::new(Extension::Var {
            name: "conn_id".into(),
            value: conn_id.to_string().into(),
        }));
    }
}

enum Decision {
    Answer(AuthOutcome, Extensions),
    Busy(GateError),
}

/// One authenticator call per core by default: an argon2 check keeps a core busy anyway, and
/// its memory (19 MiB with the default parameters) is then bounded by the core count.
fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Issued tokens: user -> (token, expiry, grants).
struct TokenStore {
    ttl: Mutex<Duration>,
    tokens: Mutex<HashMap<String, (String, Instant, Extensions)>>,
}

impl TokenStore {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl: Mutex::new(ttl),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// A new token for `user`; it cancels the user's previous one.
    fn issue(&self, user: &str, grants: Extensions) -> String {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, expiry, _)| *expiry > now);
        let ttl = *self.ttl.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(user.to_string(), (token.clone(), now + ttl, grants));
        token
    }

    /// The outcome, with the token's grants when it is allowed.
    fn check(&self, user: &str, token: &str, spend: bool) -> (AuthOutcome, Extensions) {
        let deny = |why: &str| (AuthOutcome::Denied(why.into()), Extensions::new());
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let Some((expected, expiry, grants)) = map.get(user) else {
            return deny("no token issued for this user (or already used)");
        };
        if *expiry <= Instant::now() {
            map.remove(user);
            return deny("token expired");
        }
        if !bool::from(expected.as_bytes().ct_eq(token.as_bytes())) {
            return deny("wrong token");
        }
        let grants = grants.clone();
        if spend {
            map.remove(user);
        }
        (AuthOutcome::Allowed, grants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstream_abi::sdk::{authenticator_box, Authenticate};
    use fstream_abi::{AuthAction_NE, Credential_NE, NetAddr, PluginError};

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
            action: AuthAction_NE::new(AuthAction::Publish),
            credential: Credential_NE::new(cred),
            stream: "".into(),
            peer: "127.0.0.1:1".into(),
            peer_addr: NetAddr::parse_or_unspecified("127.0.0.1:1"),
            protocol: "test".into(),
            ext: Default::default(),
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
        c.set_failure_limit(GuardRule {
            allowed: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_millis(200),
            ..GuardRule::default()
        });
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

    /// An authenticator that takes a while and counts how many run at once.
    struct Slow {
        running: Arc<std::sync::atomic::AtomicUsize>,
        most: Arc<std::sync::atomic::AtomicUsize>,
    }
    impl Authenticate for Slow {
        fn authenticate(&self, _: &AuthRequest) -> Result<AuthVerdict, PluginError> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.running.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(now, SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            self.running.fetch_sub(1, SeqCst);
            Ok(AuthVerdict::Deny("wrong password".into()))
        }
    }

    #[test]
    fn authenticator_calls_are_bounded_and_the_rest_refused_as_busy() {
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = Arc::new(AuthChain::new(
            vec![(
                "slow".into(),
                authenticator_box(Slow {
                    running: Arc::default(),
                    most: most.clone(),
                }),
            )],
            Duration::from_secs(1),
        ));
        c.set_concurrency(2, 4, Duration::from_secs(5));
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let c = c.clone();
                std::thread::spawn(move || c.check(&from_peer("amy", &format!("10.0.{i}.1:5"))))
            })
            .collect();
        let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let busy = outcomes
            .iter()
            .filter(|o| matches!(o, AuthOutcome::Denied(w) if w.contains("busy")))
            .count();
        assert!(outcomes.iter().all(|o| !o.is_allowed()));
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(busy >= 20 - 2 - 4, "{busy} refused as busy");
    }

    #[test]
    fn a_sessions_request_names_its_connection_once() {
        let mut r = req("amy", Credential::None);
        add_conn_id(&mut r, 17);
        add_conn_id(&mut r, 18);
        assert_eq!(var(&r.ext, "conn_id"), Some("17"));
        assert_eq!(r.ext.len(), 1);
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

    /// A token keeps the right to record its password was granted (and no rename).
    #[test]
    fn tokens_carry_the_right_to_record() {
        let grants = |g: Vec<Extension>| {
            AuthVerdict::AllowWith(g.into_iter().map(Extension_NE::new).collect())
        };
        let c = AuthChain::new(
            vec![
                (
                    "rec".into(),
                    authenticator_box(Fixed(
                        "ann",
                        grants(vec![
                            Extension::Rename("elsewhere".into()),
                            Extension::MayRecord(true),
                        ]),
                    )),
                ),
                (
                    "plain".into(),
                    authenticator_box(Fixed("amy", AuthVerdict::Allow)),
                ),
            ],
            Duration::from_secs(60),
        );
        let token = |user| {
            c.issue_token(&req(user, Credential::Password("x".into())))
                .unwrap()
        };
        let t = token("ann");
        let (outcome, g) = c.check_granted(&req("ann", Credential::Token(t.into())));
        assert!(outcome.is_allowed());
        assert_eq!(fstream_abi::may_record(&g), Some(true));
        assert_eq!(fstream_abi::rename(&g), None);
        let t = token("amy");
        let (outcome, g) = c.check_granted(&req("amy", Credential::Token(t.clone().into())));
        assert!(outcome.is_allowed());
        assert!(g.is_empty());
        // Spent: refused, nothing granted.
        let (outcome, g) = c.check_granted(&req("amy", Credential::Token(t.into())));
        assert!(!outcome.is_allowed() && g.is_empty());
    }
}
