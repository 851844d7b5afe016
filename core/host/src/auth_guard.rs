//! The failed-login guard: an address that keeps guessing is refused for a while without
//! asking the authenticators.
//!
//! Attempts count when they start, not when they fail, so a thousand guesses sent at once are
//! refused as surely as a thousand in a row: an address may have at most `allowed` attempts
//! failed or still running within the window. IPv6 addresses are grouped by prefix (a /64 is
//! one subscriber's network), IPv4 addresses count one by one. The table is bounded: past
//! `max_addresses` it forgets expired entries, and if none are, new addresses go untracked
//! (still bounded by the authentication concurrency limit) rather than growing it.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The guard's settings; `allowed` 0 disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardRule {
    pub allowed: u32,
    pub window: Duration,
    pub ban: Duration,
    /// Apply the rule to loopback addresses too.
    pub loopback: bool,
    /// IPv6 addresses sharing this many leading bits are one address.
    pub ipv6_prefix: u8,
    pub max_addresses: usize,
}

impl Default for GuardRule {
    fn default() -> Self {
        Self {
            allowed: 0,
            window: Duration::ZERO,
            ban: Duration::ZERO,
            loopback: false,
            ipv6_prefix: 64,
            max_addresses: 100_000,
        }
    }
}

/// An address as the guard counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrKey {
    V4(u32),
    /// The address with the bits past the prefix cleared, and the prefix's length.
    V6(u128, u8),
}

impl AddrKey {
    pub fn of(ip: IpAddr, ipv6_prefix: u8) -> Self {
        match ip {
            IpAddr::V4(a) => AddrKey::V4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => AddrKey::V4(u32::from(v4)),
                None => {
                    let bits = u32::from(ipv6_prefix.min(128));
                    let mask = if bits == 0 {
                        0
                    } else {
                        u128::MAX << (128 - bits)
                    };
                    AddrKey::V6(u128::from(a) & mask, bits as u8)
                }
            },
        }
    }
}

/// As an operator reads it: `192.0.2.7`, or the IPv6 prefix counted (`2001:db8::/64`).
impl std::fmt::Display for AddrKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddrKey::V4(a) => write!(f, "{}", std::net::Ipv4Addr::from(*a)),
            AddrKey::V6(a, bits) => write!(f, "{}/{bits}", std::net::Ipv6Addr::from(*a)),
        }
    }
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    running: u32,
    since: Instant,
    banned_until: Option<Instant>,
}

impl Entry {
    fn expired(&self, now: Instant, window: Duration) -> bool {
        self.running == 0
            && self.since + window <= now
            && self.banned_until.is_none_or(|t| t <= now)
    }
}

/// One attempt under way; hand it back to [`AuthGuard::end`].
#[derive(Debug)]
pub struct Attempt(Option<AddrKey>);

pub struct AuthGuard {
    rule: Mutex<GuardRule>,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    entries: HashMap<AddrKey, Entry>,
    last_prune: Option<Instant>,
}

impl Default for AuthGuard {
    fn default() -> Self {
        Self {
            rule: Mutex::new(GuardRule::default()),
            table: Mutex::new(Table::default()),
        }
    }
}

impl AuthGuard {
    pub fn set_rule(&self, rule: GuardRule) {
        *self.rule.lock().unwrap_or_else(|p| p.into_inner()) = rule;
    }

    fn rule(&self) -> GuardRule {
        *self.rule.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .len()
    }

    /// An attempt from `ip` starts: refused (with the reason) if the address is banned or
    /// already has its allowance of failed and running attempts.
    pub fn begin(&self, ip: Option<IpAddr>) -> Result<Attempt, &'static str> {
        let rule = self.rule();
        let Some(ip) = ip else {
            return Ok(Attempt(None));
        };
        if rule.allowed == 0 || (ip.is_loopback() && !rule.loopback) {
            return Ok(Attempt(None));
        }
        let key = AddrKey::of(ip, rule.ipv6_prefix);
        let now = Instant::now();
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if !t.entries.contains_key(&key) && t.entries.len() >= rule.max_addresses {
            let due = t
                .last_prune
                .is_none_or(|p| now.duration_since(p) >= Duration::from_secs(1));
            if due {
                t.last_prune = Some(now);
                t.entries.retain(|_, e| !e.expired(now, rule.window));
                if t.entries.len() >= rule.max_addresses {
                    // Said at most once a second, like the pruning.
                    tracing::warn!(
                        addresses = t.entries.len(),
                        "the failed-login table is full (auth_guard_addresses): \
                         new addresses are not limited until entries expire"
                    );
                }
            }
            if t.entries.len() >= rule.max_addresses {
                return Ok(Attempt(None));
            }
        }
        let e = t.entries.entry(key).or_insert(Entry {
            failures: 0,
            running: 0,
            since: now,
            banned_until: None,
        });
        if e.banned_until.is_some_and(|b| b > now) {
            return Err("too many failed authentications from this address");
        }
        if e.banned_until.is_some() || e.since + rule.window <= now {
            e.banned_until = None;
            e.failures = 0;
            e.since = now;
        }
        if e.failures + e.running >= rule.allowed {
            return Err("too many authentications at once from this address");
        }
        e.running += 1;
        Ok(Attempt(Some(key)))
    }

    /// The attempt is over; a failure counts towards a ban.
    pub fn end(&self, attempt: Attempt, failed: bool) {
        let Some(key) = attempt.0 else {
            return;
        };
        let rule = self.rule();
        let now = Instant::now();
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = t.entries.get_mut(&key) else {
            return;
        };
        e.running = e.running.saturating_sub(1);
        if !failed && e.failures == 0 && e.running == 0 && e.banned_until.is_none() {
            // Nothing to remember about an address whose attempts all succeeded.
            t.entries.remove(&key);
            return;
        }
        if failed {
            e.failures += 1;
            if e.failures >= rule.allowed && e.banned_until.is_none() {
                e.banned_until = Some(now + rule.ban);
                tracing::warn!(address = %key, ban_ms = rule.ban.as_millis() as u64,
                    "too many failed authentications; refusing this address for a while");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allowed: u32) -> AuthGuard {
        let g = AuthGuard::default();
        g.set_rule(GuardRule {
            allowed,
            window: Duration::from_secs(60),
            ban: Duration::from_millis(150),
            loopback: false,
            ipv6_prefix: 64,
            max_addresses: 3,
        });
        g
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn keys_read_as_addresses_and_prefixes() {
        let k = |s: &str, p| AddrKey::of(s.parse().unwrap(), p).to_string();
        assert_eq!(k("192.0.2.7", 64), "192.0.2.7");
        assert_eq!(k("::ffff:192.0.2.7", 64), "192.0.2.7");
        assert_eq!(k("2001:db8:1:2:3:4:5:6", 64), "2001:db8:1:2::/64");
        assert_eq!(k("2001:db8::", 48), "2001:db8::/48");
    }

    #[test]
    fn parallel_attempts_count_when_they_start() {
        let g = guard(3);
        let a: Vec<_> = (0..3).map(|_| g.begin(ip("10.0.0.1")).unwrap()).collect();
        assert!(g.begin(ip("10.0.0.1")).is_err(), "a fourth at once");
        // Another address is not affected.
        let other = g.begin(ip("10.0.0.2")).unwrap();
        g.end(other, false);
        // Successes free their place; failures keep it and then ban.
        let mut a = a.into_iter();
        g.end(a.next().unwrap(), false);
        let again = g.begin(ip("10.0.0.1")).unwrap();
        for x in a.chain([again]) {
            g.end(x, true);
        }
        assert!(g.begin(ip("10.0.0.1")).is_err(), "banned");
        std::thread::sleep(Duration::from_millis(200));
        assert!(g.begin(ip("10.0.0.1")).is_ok(), "the ban is over");
    }

    #[test]
    fn ipv6_addresses_of_one_prefix_share_a_count() {
        let g = guard(2);
        let a = g.begin(ip("2001:db8:1:2::1")).unwrap();
        let b = g.begin(ip("2001:db8:1:2:ffff::9")).unwrap();
        assert!(g.begin(ip("2001:db8:1:2::77")).is_err());
        assert!(g.begin(ip("2001:db8:1:3::1")).is_ok(), "another /64");
        g.end(a, false);
        g.end(b, false);
        assert_eq!(
            AddrKey::of("::ffff:10.1.2.3".parse().unwrap(), 64),
            AddrKey::V4(0x0a01_0203)
        );
    }

    #[test]
    fn loopback_is_exempt_unless_asked_and_the_table_is_bounded() {
        let g = guard(1);
        for _ in 0..5 {
            let a = g.begin(ip("127.0.0.1")).unwrap();
            g.end(a, true);
        }
        for n in 0..10 {
            let a = g.begin(ip(&format!("10.9.0.{n}"))).unwrap();
            g.end(a, false);
        }
        assert!(g.tracked() <= 3, "{}", g.tracked());
    }
}
