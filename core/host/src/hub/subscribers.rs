//! A stream's subscribers: a dense list for the fan-out loop and an index by key, so adding and
//! removing one is O(1) (a swap with the last) however many there are.

use std::collections::HashMap;

use super::subscriber::{SubKey, Subscriber};

#[derive(Default)]
pub(super) struct Subscribers {
    list: Vec<Subscriber>,
    index: HashMap<SubKey, usize>,
}

impl Subscribers {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Adds `sub`; one with the same key is replaced and returned.
    pub fn insert(&mut self, sub: Subscriber) -> Option<Subscriber> {
        let key = sub.key();
        let old = self.remove(key);
        self.index.insert(key, self.list.len());
        self.list.push(sub);
        old
    }

    pub fn remove(&mut self, key: SubKey) -> Option<Subscriber> {
        let i = self.index.remove(&key)?;
        let sub = self.list.swap_remove(i);
        if let Some(moved) = self.list.get(i) {
            self.index.insert(moved.key(), i);
        }
        Some(sub)
    }

    pub fn get_mut(&mut self, key: SubKey) -> Option<&mut Subscriber> {
        let i = *self.index.get(&key)?;
        self.list.get_mut(i)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Subscriber> {
        self.list.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Subscriber> {
        self.list.iter_mut()
    }

    /// Removes and returns every subscriber.
    pub fn take_all(&mut self) -> Vec<Subscriber> {
        self.index.clear();
        std::mem::take(&mut self.list)
    }
}
