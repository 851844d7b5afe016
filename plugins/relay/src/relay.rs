//! Every push of every live stream, behind one object the host drives: the stream's life goes
//! in by name and fans out to its destinations' [`Push`]es; each push's actions and events
//! come out tagged with its [`PushId`], and socket input goes back to that push.
//!
//! A push lives from its stream's start to its end, and a little longer: until the host took
//! its last actions (the unpublish and the close). Settings replaced by [`Relay::set_settings`]
//! apply to streams that start afterwards; running pushes keep the ones they started with.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::{
    matching::RouteError,
    push::{Action, ConnId, Push, PushConfig, PushEvent, PushState, PushStats, Tag},
    settings::{Destination, Settings},
};

/// Pushes at once, at most, over all streams (ended ones still flushing included).
pub const MAX_PUSHES: usize = 1024;

/// Which push an action, an event or a socket input is about. Never reused.
pub type PushId = u64;

/// One push and the stream it belongs to.
#[derive(Debug)]
struct Entry {
    stream: String,
    push: Push,
    /// The stream ended: the entry goes once its actions are taken.
    retiring: bool,
}

/// What the relay knows of a push, for stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushInfo<'a> {
    pub id: PushId,
    pub stream: &'a str,
    pub destination: &'a Destination,
    pub state: PushState,
    pub stats: &'a PushStats,
}

/// What [`Relay::stream_started`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Started {
    /// The stream's pushes (those it already had, if it was live).
    pub pushes: Vec<PushId>,
    /// Destinations left out, each with why (redacted): a URL this name makes unusable, or
    /// [`MAX_PUSHES`] reached.
    pub skipped: Vec<String>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Relay {
    settings: Settings,
    entries: BTreeMap<PushId, Entry>,
    /// The live streams' pushes, by stream name.
    streams: BTreeMap<String, Vec<PushId>>,
    /// Pushes that may have actions (touched since their queue was last found empty).
    ready: BTreeSet<PushId>,
    next_id: PushId,
    seed: u64,
    events: VecDeque<(PushId, PushEvent)>,
}

impl Relay {
    /// `seed` feeds each push's handshake bytes (mixed with its id).
    pub fn new(settings: Settings, seed: u64) -> Relay {
        Relay {
            settings,
            entries: BTreeMap::new(),
            streams: BTreeMap::new(),
            ready: BTreeSet::new(),
            next_id: 1,
            seed,
            events: VecDeque::new(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// New settings, for the streams that start from now on.
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// Stream `APP/NAME` went live (or, if it was, has a new publisher): one push per
    /// destination its name matches, each sending `headers` first.
    pub fn stream_started(
        &mut self,
        stream: &str,
        headers: Vec<Tag>,
        now_ms: u64,
    ) -> Result<Started, RouteError> {
        if let Some(ids) = self.streams.get(stream).cloned() {
            for &id in &ids {
                self.with(id, |p| p.stream_started(headers.iter().cloned(), now_ms));
            }
            return Ok(Started {
                pushes: ids,
                skipped: Vec::new(),
            });
        }
        let (destinations, mut skipped) = self.settings.destinations(stream)?;
        let mut ids = Vec::with_capacity(destinations.len());
        for dest in destinations {
            if self.entries.len() >= MAX_PUSHES {
                skipped.push(format!("{dest}: {MAX_PUSHES} pushes already"));
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            let config = PushConfig::from_settings(&self.settings);
            let seed = self.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut push = Push::new(dest, config, seed);
            push.stream_started(headers.iter().cloned(), now_ms);
            self.entries.insert(
                id,
                Entry {
                    stream: stream.to_string(),
                    push,
                    retiring: false,
                },
            );
            ids.push(id);
            self.touched(id);
        }
        if !ids.is_empty() {
            self.streams.insert(stream.to_string(), ids.clone());
        }
        Ok(Started {
            pushes: ids,
            skipped,
        })
    }

    /// A tag of stream `stream`, to each of its pushes (a reference count per push: the
    /// payload is `Bytes`).
    pub fn media(&mut self, stream: &str, tag: &Tag, now_ms: u64) {
        // The packet path: no allocation, one look-up per push.
        let Some(ids) = self.streams.get(stream) else {
            return;
        };
        for &id in ids {
            if let Some(e) = self.entries.get_mut(&id) {
                e.push.media(tag.clone(), now_ms);
                while let Some(ev) = e.push.poll_event() {
                    self.events.push_back((id, ev));
                }
                if e.push.has_actions() {
                    self.ready.insert(id);
                }
            }
        }
    }

    /// Stream `stream` ended: its pushes unpublish and close, then go.
    pub fn stream_ended(&mut self, stream: &str, now_ms: u64) {
        let Some(ids) = self.streams.remove(stream) else {
            return;
        };
        for id in ids {
            if let Some(e) = self.entries.get_mut(&id) {
                e.retiring = true;
            }
            self.with(id, |p| p.stream_ended(now_ms));
        }
    }

    /// The push `id`, if it is still there.
    pub fn push(&self, id: PushId) -> Option<&Push> {
        self.entries.get(&id).map(|e| &e.push)
    }

    /// The socket inputs of push `id` (see [`Push::connected`] and the others); input for a
    /// push that is gone is dropped.
    pub fn connected(&mut self, id: PushId, conn: ConnId, now_ms: u64) {
        self.with(id, |p| p.connected(conn, now_ms));
    }

    pub fn bytes_in(&mut self, id: PushId, conn: ConnId, data: &[u8], now_ms: u64) {
        self.with(id, |p| p.bytes_in(conn, data, now_ms));
    }

    pub fn written(&mut self, id: PushId, conn: ConnId, n: usize, now_ms: u64) {
        self.with(id, |p| p.written(conn, n, now_ms));
    }

    pub fn closed(&mut self, id: PushId, conn: ConnId, now_ms: u64) {
        self.with(id, |p| p.closed(conn, now_ms));
    }

    fn with(&mut self, id: PushId, f: impl FnOnce(&mut Push)) {
        if let Some(e) = self.entries.get_mut(&id) {
            f(&mut e.push);
            self.touched(id);
        }
    }

    /// After a call into push `id`: its events, and a look at its actions later.
    fn touched(&mut self, id: PushId) {
        if let Some(e) = self.entries.get_mut(&id) {
            while let Some(ev) = e.push.poll_event() {
                self.events.push_back((id, ev));
            }
            self.ready.insert(id);
        }
    }

    /// The next action of any push, in each push's order.
    pub fn poll_action(&mut self) -> Option<(PushId, Action)> {
        while let Some(&id) = self.ready.first() {
            let Some(e) = self.entries.get_mut(&id) else {
                self.ready.remove(&id);
                continue;
            };
            if let Some(a) = e.push.poll_action() {
                return Some((id, a));
            }
            self.ready.remove(&id);
            // An ended push whose last actions were taken goes.
            if e.retiring && e.push.state() == PushState::Idle {
                self.entries.remove(&id);
            }
        }
        None
    }

    /// The next event worth logging, with the push it is about.
    pub fn poll_event(&mut self) -> Option<(PushId, PushEvent)> {
        self.events.pop_front()
    }

    /// When [`Relay::tick`] has something to do.
    pub fn next_timeout(&self) -> Option<u64> {
        self.entries
            .values()
            .filter_map(|e| e.push.next_timeout())
            .min()
    }

    pub fn tick(&mut self, now_ms: u64) {
        let due: Vec<PushId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.push.next_timeout().is_some_and(|t| t <= now_ms))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.with(id, |p| p.tick(now_ms));
        }
    }

    /// Every push, for stats.
    pub fn pushes(&self) -> impl Iterator<Item = PushInfo<'_>> {
        self.entries.iter().map(|(id, e)| PushInfo {
            id: *id,
            stream: &e.stream,
            destination: e.push.destination(),
            state: e.push.state(),
            stats: e.push.stats(),
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
