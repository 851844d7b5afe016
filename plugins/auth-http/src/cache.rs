//! Answers kept for identical requests: a time limit per entry and a bound on their number.
//! Only the backend's own answers are kept (allow and deny), never a failure policy's.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct Cache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    /// A cache of `capacity` entries kept `ttl` each; a zero `ttl` keeps nothing.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// The answer kept for `key`, if it is younger than the limit at `now`.
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some((v, expiry)) if *expiry > now => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `key` from `now`. When full, expired entries go first, then the one
    /// closest to expiring.
    pub fn put(&self, key: K, value: V, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, (_, expiry)| *expiry > now);
            if map.len() >= self.capacity {
                // O(n) in a bounded n, and only when full of live entries.
                let oldest = map
                    .iter()
                    .min_by_key(|(_, (_, expiry))| *expiry)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
        }
        map.insert(key, (value, now + self.ttl));
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_their_time() {
        let c = Cache::new(Duration::from_millis(100), 8);
        let t0 = Instant::now();
        c.put("a", 1, t0);
        assert_eq!(c.get(&"a", t0), Some(1));
        assert_eq!(c.get(&"a", t0 + Duration::from_millis(99)), Some(1));
        assert_eq!(c.get(&"a", t0 + Duration::from_millis(100)), None);
        // An expired entry is dropped when seen.
        assert_eq!(c.len(), 0);
        assert_eq!(c.get(&"b", t0), None);
    }

    #[test]
    fn the_size_is_bounded_and_the_oldest_goes_first() {
        let c = Cache::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
            c.put(*k, i, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&"a", t0), None);
        assert_eq!(c.get(&"d", t0), Some(3));
        // Overwriting a key does not evict another.
        c.put("d", 9, t0 + Duration::from_millis(5));
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&"b", t0), Some(1));
        // Expired entries make room before live ones are evicted.
        let later = t0 + Duration::from_secs(10) + Duration::from_millis(2);
        c.put("e", 4, later);
        assert_eq!(c.get(&"d", later), Some(9));
        assert_eq!(c.get(&"e", later), Some(4));
    }

    #[test]
    fn a_zero_time_keeps_nothing() {
        let c = Cache::new(Duration::ZERO, 8);
        let t0 = Instant::now();
        c.put("a", 1, t0);
        assert_eq!(c.get(&"a", t0), None);
        assert_eq!(c.len(), 0);
    }
}
