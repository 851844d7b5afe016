//! The segments of every stream, shared by the sinks that cut them and the sessions that serve
//! them. Bounded: `hls_window` segments per stream, `hls_max_streams` streams (the oldest
//! ended stream is dropped first; a live one is never dropped for a newcomer, which then gets
//! no HLS).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use fstream_abi::Payload;

#[derive(Debug, Clone)]
pub struct Segment {
    pub seq: u64,
    pub duration_ms: u32,
    /// The first segment after a publisher's restart.
    pub discontinuity: bool,
    pub data: Payload,
    /// Its partial segments (Low-Latency HLS), kept for the newest segments only.
    pub parts: Vec<Part>,
    /// fMP4: the init segment it needs (see [`StreamSegments::inits`]); `None`: MPEG-TS.
    pub init: Option<u64>,
}

/// What a file name under `/APP/STREAM/` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaName {
    Segment { seq: u64, fmp4: bool },
    Part { seq: u64, part: usize, fmp4: bool },
    Init(u64),
}

/// The content type of MPEG-TS and of fMP4 media.
pub const TS_TYPE: &str = "video/mp2t";
pub const MP4_TYPE: &str = "video/mp4";

/// A partial segment, part of a segment's time: whole TS (it starts with the PAT and PMT), or
/// one fMP4 fragment.
#[derive(Debug, Clone)]
pub struct Part {
    pub duration_ms: u32,
    /// It starts with a keyframe.
    pub independent: bool,
    pub data: Payload,
}

/// How many of the newest complete segments keep their parts listed and served.
pub const SEGMENTS_WITH_PARTS: usize = 3;

#[derive(Debug, Default)]
pub struct StreamSegments {
    /// Names segments (see the module documentation).
    pub epoch: u64,
    pub segments: VecDeque<Segment>,
    pub next_seq: u64,
    /// Discontinuities that left the window (`EXT-X-DISCONTINUITY-SEQUENCE`).
    pub discontinuity_seq: u64,
    /// A publisher feeds it now.
    pub live: bool,
    /// The next segment starts after a publisher's restart.
    pub restart: bool,
    /// Publications seen, for the ordering of ended streams.
    pub touched: u64,
    /// The parts of the segment being cut (numbered `next_seq`).
    pub open_parts: Vec<Part>,
    /// A segment is being cut (its parts may be asked for).
    pub open: bool,
    /// fMP4 init segments by id (the sequence number of the first segment that needs each),
    /// kept while a segment in the window or the open one needs them.
    pub inits: Vec<(u64, Payload)>,
    /// The init segment of the segment being cut (`None`: it is MPEG-TS).
    pub current_init: Option<u64>,
}

impl StreamSegments {
    fn ext(fmp4: bool) -> &'static str {
        if fmp4 {
            "m4s"
        } else {
            "ts"
        }
    }

    pub fn segment_name(&self, seq: u64, fmp4: bool) -> String {
        format!("{}-{seq}.{}", self.epoch, Self::ext(fmp4))
    }

    pub fn part_name(&self, seq: u64, part: usize, fmp4: bool) -> String {
        format!("{}-{seq}.p{part}.{}", self.epoch, Self::ext(fmp4))
    }

    pub fn init_name(&self, id: u64) -> String {
        format!("{}-init{id}.mp4", self.epoch)
    }

    /// What a name asks for. `None`: not a name of this stream's epoch.
    pub fn parse_name(&self, name: &str) -> Option<MediaName> {
        let (stem, ext) = name.rsplit_once('.')?;
        let (epoch, rest) = stem.split_once('-')?;
        if epoch.parse::<u64>().ok()? != self.epoch {
            return None;
        }
        let fmp4 = match ext {
            "ts" => false,
            "m4s" => true,
            "mp4" => return Some(MediaName::Init(rest.strip_prefix("init")?.parse().ok()?)),
            _ => return None,
        };
        match rest.split_once(".p") {
            Some((seq, part)) => Some(MediaName::Part {
                seq: seq.parse().ok()?,
                part: part.parse().ok()?,
                fmp4,
            }),
            None => Some(MediaName::Segment {
                seq: rest.parse().ok()?,
                fmp4,
            }),
        }
    }

    /// The bytes a name gives and their content type, if they exist now (a segment in the
    /// window, a part of a recent or the open segment, an init segment one of them needs).
    pub fn find(&self, name: &str) -> Option<(Payload, &'static str)> {
        let typed =
            |data: &Payload, fmp4: bool| (data.clone(), if fmp4 { MP4_TYPE } else { TS_TYPE });
        match self.parse_name(name)? {
            MediaName::Init(id) => self
                .inits
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, d)| (d.clone(), MP4_TYPE)),
            MediaName::Segment { seq, fmp4 } => self
                .segments
                .iter()
                .find(|s| s.seq == seq && s.init.is_some() == fmp4)
                .map(|s| typed(&s.data, fmp4)),
            MediaName::Part { seq, part, fmp4 } if seq == self.next_seq && self.open => {
                (self.current_init.is_some() == fmp4)
                    .then(|| self.open_parts.get(part))
                    .flatten()
                    .map(|p| typed(&p.data, fmp4))
            }
            MediaName::Part { seq, part, fmp4 } => self
                .segments
                .iter()
                .find(|s| s.seq == seq && s.init.is_some() == fmp4)
                .and_then(|s| s.parts.get(part))
                .map(|p| typed(&p.data, fmp4)),
        }
    }

    /// The segments cut from now on need the init segment `data` (fMP4), or none (`None`:
    /// MPEG-TS). Its id is the sequence number of the next segment.
    pub fn set_init(&mut self, data: Option<Payload>) {
        self.current_init = data.map(|data| {
            let id = self.next_seq;
            self.inits.retain(|(i, _)| *i != id);
            self.inits.push((id, data));
            id
        });
    }

    /// Whether segment `msn` (its part `part`, if given) exists: what a blocking playlist
    /// reload waits for.
    pub fn has(&self, msn: u64, part: Option<usize>) -> bool {
        if msn < self.next_seq {
            return true;
        }
        match part {
            Some(p) => msn == self.next_seq && self.open && p < self.open_parts.len(),
            None => false,
        }
    }

    /// Adds a part of the open segment.
    pub fn push_part(&mut self, part: Part) {
        self.open = true;
        self.open_parts.push(part);
    }

    /// Adds a finished segment, dropping the oldest past `window`.
    pub fn push(&mut self, duration_ms: u32, data: Payload, window: usize) {
        let seg = Segment {
            seq: self.next_seq,
            duration_ms,
            discontinuity: std::mem::take(&mut self.restart) && self.next_seq > 0,
            data,
            parts: std::mem::take(&mut self.open_parts),
            init: self.current_init,
        };
        self.open = false;
        self.next_seq += 1;
        self.segments.push_back(seg);
        let n = self.segments.len();
        for old in self
            .segments
            .iter_mut()
            .take(n.saturating_sub(SEGMENTS_WITH_PARTS))
        {
            old.parts = Vec::new();
        }
        while self.segments.len() > window.max(1) {
            if let Some(old) = self.segments.pop_front() {
                if old.discontinuity {
                    self.discontinuity_seq += 1;
                }
            }
        }
        let (segments, current) = (&self.segments, self.current_init);
        self.inits
            .retain(|(id, _)| current == Some(*id) || segments.iter().any(|s| s.init == Some(*id)));
    }
}

#[derive(Default)]
pub struct Store {
    streams: Mutex<HashMap<String, Arc<Mutex<StreamSegments>>>>,
    publications: std::sync::atomic::AtomicU64,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// The stream's segments for a new publication (created, or continued after a restart);
    /// `None` when `max_streams` live streams already have HLS.
    pub fn publish(
        &self,
        stream: &str,
        epoch: u64,
        max_streams: usize,
    ) -> Option<Arc<Mutex<StreamSegments>>> {
        let n = self
            .publications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut all = lock(&self.streams);
        if let Some(s) = all.get(stream) {
            let mut g = lock(s);
            g.live = true;
            g.restart = true;
            g.touched = n;
            drop(g);
            return Some(s.clone());
        }
        while all.len() >= max_streams.max(1) {
            // The ended stream published longest ago goes.
            let oldest = all
                .iter()
                .filter(|(_, s)| !lock(s).live)
                .min_by_key(|(_, s)| lock(s).touched)
                .map(|(k, _)| k.clone())?;
            all.remove(&oldest);
        }
        let s = Arc::new(Mutex::new(StreamSegments {
            epoch,
            live: true,
            touched: n,
            ..StreamSegments::default()
        }));
        all.insert(stream.to_string(), s.clone());
        Some(s)
    }

    /// The streams a publisher feeds now, sorted.
    pub fn live(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.streams)
            .iter()
            .filter(|(_, s)| lock(s).live)
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    pub fn get(&self, stream: &str) -> Option<Arc<Mutex<StreamSegments>>> {
        lock(&self.streams).get(stream).cloned()
    }
}
