//! A connection's output: one ordered queue of shared buffers, written without waking a task
//! per viewer.
//!
//! Everything a peer receives goes through its `Outq`: its session's own writes (answers,
//! control messages) and the media the hub fans out. Media pushes never write: they queue a
//! shared payload (a reference count) and, when the queue turns non-empty, register it with its shard's
//! [`Flusher`]. A flusher's task sleeps while no queue of its shard waits; otherwise it wakes when
//! the earliest waiting queue falls due (at least four times per gathering window) and writes
//! every queue whose oldest byte has waited `gather` (or that holds `gather_bytes`) with one
//! non-blocking vectored write, straight from that task: one syscall per viewer per window,
//! no task wake-up per viewer (see `../shared/notes/fanout-floor.md`). A session's own writes
//! go out at once from the connection's task. Only when the kernel's buffer is full does the
//! connection's writer task take over: it waits for the socket to become writable, then flushes.
//!
//! Writes never happen under the queue's lock: a flush takes the queued buffers out, writes,
//! and puts back what the socket did not take (one flusher at a time per queue).
//!
//! On a TLS connection the same flush hands the buffers to rustls instead, which seals them
//! into records and writes those (see [`crate::tls`]); "what the socket did not take" is then
//! what rustls did not take, and records it sealed but could not send wait inside rustls.

use std::{
    collections::VecDeque,
    io::IoSlice,
    os::fd::AsRawFd,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use fstream_abi::Payload;
use tokio::{
    net::tcp::OwnedWriteHalf,
    sync::{watch, Notify},
    time::Instant,
};

use crate::tls::WriteSide;

/// Most buffers handed to one `writev`.
const MAX_IOVECS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Open,
    /// Write what is queued, then shut the write side down.
    AfterFlush,
    /// Stop now; drop what is queued.
    Aborted,
}

struct Item {
    data: Payload,
    kind: ItemKind,
}

/// What a queued buffer is, for [`Outq::drop_media`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A session's own write: never dropped.
    Control,
    /// Media a subscriber skipping ahead may lose.
    Media,
    /// Media a skip keeps (a format's preamble, metadata, sequence headers): without it what
    /// follows cannot be decoded.
    Essential,
}

impl AsRef<[u8]> for Item {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

struct State {
    items: VecDeque<Item>,
    /// Bytes of `items[0]` already written.
    head_written: usize,
    /// Bytes in `items` not yet written.
    bytes: usize,
    oldest: Option<Instant>,
    closing: Closing,
    /// A flush is writing (outside the lock); others keep off the socket.
    writing: bool,
    /// The socket said "would block": the writer task waits for it to drain.
    blocked: bool,
    /// Registered with the flusher.
    pending: bool,
    /// A session write is queued: write without waiting for the window.
    urgent: bool,
    /// Bytes of session writes in `items`, and their bound: a peer that sends requests and
    /// never reads the answers is closed rather than allowed to grow the queue.
    control_bytes: usize,
    control_limit: usize,
}

pub struct Outq {
    state: Mutex<State>,
    sock: Option<WriteSide>,
    /// Wakes the connection's writer task (blocked socket, close).
    wake: Notify,
    gather: Duration,
    gather_bytes: usize,
    /// A socket that takes no bytes for this long is given up on (0: never).
    stall: Duration,
    flusher: Option<Arc<Flusher>>,
    me: Weak<Outq>,
    ended_tx: watch::Sender<bool>,
    /// Bytes the socket took, since the start (for the stats API).
    sent: std::sync::atomic::AtomicU64,
}

/// The queue refused media: this subscriber is over its limit.
#[derive(Debug)]
pub struct Full;

impl Outq {
    /// A queue writing to `sock`; `flusher` times the gathered writes; a socket blocked for
    /// `stall` (a peer that stopped reading) ends the connection.
    pub fn new(
        sock: WriteSide,
        gather: Duration,
        gather_bytes: usize,
        stall: Duration,
        flusher: Arc<Flusher>,
    ) -> Arc<Self> {
        Self::build(Some(sock), gather, gather_bytes, stall, Some(flusher))
    }

    /// A queue with no socket, for benchmarks and tests: it only queues.
    pub fn detached(gather: Duration, gather_bytes: usize) -> Arc<Self> {
        Self::build(None, gather, gather_bytes, Duration::ZERO, None)
    }

    fn build(
        sock: Option<WriteSide>,
        gather: Duration,
        gather_bytes: usize,
        stall: Duration,
        flusher: Option<Arc<Flusher>>,
    ) -> Arc<Self> {
        let (ended_tx, _) = watch::channel(false);
        Arc::new_cyclic(|me| Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                head_written: 0,
                bytes: 0,
                oldest: None,
                closing: Closing::Open,
                writing: false,
                blocked: false,
                pending: false,
                urgent: false,
                control_bytes: 0,
                control_limit: usize::MAX,
            }),
            sock,
            wake: Notify::new(),
            gather,
            gather_bytes,
            stall,
            flusher,
            me: me.clone(),
            ended_tx,
            sent: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves when the connection's output has ended (peer gone, write error, abort, or a
    /// flushed close).
    pub fn ended(&self) -> watch::Receiver<bool> {
        self.ended_tx.subscribe()
    }

    pub fn is_ended(&self) -> bool {
        *self.ended_tx.borrow()
    }

    fn end(&self) {
        let _ = self.ended_tx.send(true);
        self.wake.notify_one();
    }

    /// Queues a session's own bytes and writes them at once (with whatever media is queued
    /// before them, keeping the order).
    pub fn push_control(&self, data: Payload) {
        {
            let mut st = self.lock();
            if st.closing != Closing::Open {
                return;
            }
            if st.control_bytes + data.len() > st.control_limit {
                let (queued, limit) = (st.control_bytes, st.control_limit);
                drop(st);
                tracing::warn!(
                    queued,
                    limit,
                    "peer does not read what the server answers; closing the connection"
                );
                self.abort();
                return;
            }
            st.control_bytes += data.len();
            st.bytes += data.len();
            st.items.push_back(Item {
                data,
                kind: ItemKind::Control,
            });
            if st.oldest.is_none() {
                st.oldest = Some(Instant::now());
            }
            st.urgent = true;
        }
        self.flush(true);
    }

    /// Bounds the session's own writes waiting in the queue (0: no bound).
    pub fn set_control_limit(&self, bytes: usize) {
        self.lock().control_limit = if bytes == 0 { usize::MAX } else { bytes };
    }

    /// Queues media unless that would take the queue past `limit` bytes. The flusher writes it
    /// when due. `Ok(true)`: the caller should call [`Outq::flush`] once it holds no lock (the
    /// gathering window is 0, or `now` asks for it, as for a joining viewer's first burst).
    pub fn push_media(&self, data: Payload, limit: usize, now: bool) -> Result<bool, Full> {
        self.push(data, ItemKind::Media, limit, now)
    }

    /// Queues media that [`Outq::drop_media`] keeps (see [`ItemKind::Essential`]); like
    /// [`Outq::push_media`] otherwise.
    pub fn push_essential(&self, data: Payload, limit: usize, now: bool) -> Result<bool, Full> {
        self.push(data, ItemKind::Essential, limit, now)
    }

    fn push(&self, data: Payload, kind: ItemKind, limit: usize, now: bool) -> Result<bool, Full> {
        let register = {
            let mut st = self.lock();
            if st.closing != Closing::Open {
                return Ok(false);
            }
            if st.bytes + data.len() > limit && !st.items.is_empty() {
                return Err(Full);
            }
            st.bytes += data.len();
            st.items.push_back(Item { data, kind });
            if st.oldest.is_none() {
                st.oldest = Some(Instant::now());
            }
            if now {
                st.urgent = true;
            }
            let register = !st.pending && !st.blocked;
            if register {
                st.pending = true;
            }
            register
        };
        if now || self.gather.is_zero() {
            return Ok(true);
        }
        if register {
            self.register();
        }
        Ok(false)
    }

    fn register(&self) {
        if let (Some(f), Some(me)) = (&self.flusher, self.me.upgrade()) {
            f.register(me);
        }
    }

    /// Drops queued media not yet started (a subscriber skipping ahead). Session writes and
    /// essential media stay, and so does a buffer already partly written.
    pub fn drop_media(&self) -> usize {
        let mut st = self.lock();
        let before = st.bytes;
        let keep_head = st.head_written > 0;
        let mut first = true;
        st.items.retain(|i| {
            let keep = i.kind != ItemKind::Media || (first && keep_head);
            first = false;
            keep
        });
        let total: usize = st.items.iter().map(|i| i.data.len()).sum();
        st.bytes = total - if keep_head { st.head_written } else { 0 };
        if st.items.is_empty() {
            st.oldest = None;
            st.head_written = 0;
        }
        before.saturating_sub(st.bytes)
    }

    /// Sends what is queued, then closes the write side.
    pub fn close_after_flush(&self) {
        {
            let mut st = self.lock();
            if st.closing != Closing::Open {
                return;
            }
            st.closing = Closing::AfterFlush;
        }
        self.flush(true);
        self.wake.notify_one();
    }

    /// Stops at once. The socket is reset when it closes (SO_LINGER 0) rather than closed in
    /// order: what was queued is dropped, and the peer can tell this abort (a refusal, a
    /// protocol violation, a viewer too slow) from an orderly end. The fstream protocol has no
    /// other way to say "refused".
    pub fn abort(&self) {
        if let Some(sock) = &self.sock {
            reset_on_close(sock.socket().as_ref().as_raw_fd());
        }
        {
            let mut st = self.lock();
            st.closing = Closing::Aborted;
            st.items.clear();
            st.bytes = 0;
            st.control_bytes = 0;
        }
        self.end();
    }

    /// For a queue with no socket ([`Outq::detached`]): takes every byte queued, as a peer
    /// that reads everything would.
    pub fn take_queued(&self) -> Vec<u8> {
        let mut st = self.lock();
        let mut out = Vec::with_capacity(st.bytes);
        let skip = st.head_written;
        for (n, item) in st.items.drain(..).enumerate() {
            let data: &[u8] = &item.data;
            out.extend_from_slice(if n == 0 { &data[skip..] } else { data });
        }
        st.head_written = 0;
        st.bytes = 0;
        st.control_bytes = 0;
        st.oldest = None;
        st.urgent = false;
        st.pending = false;
        out
    }

    /// Bytes written to the socket so far.
    pub fn sent_bytes(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Whether the flusher should write this queue now; `false` also when it has nothing.
    fn due(&self, st: &State, now: Instant) -> bool {
        !st.items.is_empty()
            && (st.urgent
                || st.closing != Closing::Open
                || st.bytes >= self.gather_bytes
                || st.oldest.map(|o| o + self.gather <= now).unwrap_or(true))
    }

    /// Writes what is queued without blocking, if due (or `force`). Returns whether the queue
    /// still holds data the flusher must come back for (it was not due yet).
    pub fn flush(&self, force: bool) -> bool {
        self.flush_when(force).is_some()
    }

    /// [`Outq::flush`], saying when the queue falls due if it was not due yet.
    fn flush_when(&self, force: bool) -> Option<Instant> {
        let Some(sock) = &self.sock else {
            return None;
        };
        let tls = sock.is_tls();
        loop {
            let (batch, offset, close) = {
                let mut st = self.lock();
                if st.writing || st.blocked || st.closing == Closing::Aborted {
                    // Whoever writes or waits will register again if data remains.
                    st.pending = false;
                    return None;
                }
                let close = st.closing == Closing::AfterFlush;
                if st.items.is_empty() {
                    st.pending = false;
                    // TLS: records rustls still holds, then the close_notify, go out first.
                    if !(tls && (force || close)) {
                        if close {
                            drop(st);
                            shutdown_write(sock.socket());
                            self.end();
                        }
                        return None;
                    }
                } else if !force && !self.due(&st, Instant::now()) {
                    return Some(st.oldest.map_or_else(Instant::now, |o| o + self.gather));
                }
                st.writing = true;
                st.pending = false;
                st.urgent = false;
                st.bytes = 0;
                st.control_bytes = 0;
                st.oldest = None;
                let batch: Vec<Item> = st.items.drain(..).collect();
                (batch, std::mem::take(&mut st.head_written), close)
            };
            // The write happens outside the lock.
            let batch_bytes = batch.iter().map(|i| i.data.len()).sum::<usize>() - offset;
            let (written_to, offset, outcome) = match sock {
                WriteSide::Plain(s) => write_batch(s, &batch, offset),
                WriteSide::Tls(s, conn) => conn.write(s, &batch, offset, close),
            };
            let unwritten = batch
                .iter()
                .skip(written_to)
                .map(|i| i.data.len())
                .sum::<usize>()
                .saturating_sub(offset);
            self.sent.fetch_add(
                batch_bytes.saturating_sub(unwritten) as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            let mut st = self.lock();
            st.writing = false;
            if outcome == WriteOutcome::Failed || st.closing == Closing::Aborted {
                st.closing = Closing::Aborted;
                st.items.clear();
                st.bytes = 0;
                st.control_bytes = 0;
                drop(st);
                self.end();
                return None;
            }
            if written_to < batch.len() {
                // Put back what the socket did not take, ahead of anything queued meanwhile.
                let rest: Vec<Item> = batch.into_iter().skip(written_to).collect();
                let rest_bytes = rest.iter().map(|i| i.data.len()).sum::<usize>() - offset;
                st.control_bytes += rest
                    .iter()
                    .filter(|i| i.kind == ItemKind::Control)
                    .map(|i| i.data.len())
                    .sum::<usize>();
                for it in rest.into_iter().rev() {
                    st.items.push_front(it);
                }
                st.head_written = offset;
                st.bytes += rest_bytes;
                st.oldest = Some(Instant::now());
            }
            if outcome == WriteOutcome::WouldBlock {
                st.blocked = true;
                drop(st);
                self.wake.notify_one();
                return None;
            }
            if st.items.is_empty() {
                let closing = st.closing == Closing::AfterFlush;
                drop(st);
                if closing {
                    if tls && !close {
                        // Closed while writing: one more round sends the close_notify.
                        continue;
                    }
                    shutdown_write(sock.socket());
                    self.end();
                }
                return None;
            }
            // More arrived while writing: session writes go now, media waits for its window.
            if st.urgent {
                continue;
            }
            let register = !st.pending;
            st.pending = true;
            drop(st);
            if register {
                self.register();
            }
            return None;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    Done,
    WouldBlock,
    Failed,
}

/// Writes `batch` (its first buffer from `offset`) with non-blocking vectored writes until done
/// or the socket is full. Returns the index of the first buffer not fully written, the offset
/// into it, and how it ended.
fn write_batch(
    sock: &OwnedWriteHalf,
    batch: &[Item],
    mut offset: usize,
) -> (usize, usize, WriteOutcome) {
    let mut idx = 0;
    while idx < batch.len() {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_IOVECS.min(batch.len() - idx));
        slices.push(IoSlice::new(&batch[idx].data[offset..]));
        for it in batch[idx + 1..].iter().take(MAX_IOVECS - 1) {
            slices.push(IoSlice::new(&it.data));
        }
        match sock.try_write_vectored(&slices) {
            Ok(0) => return (idx, offset, WriteOutcome::Failed),
            Ok(mut n) => {
                while n > 0 && idx < batch.len() {
                    let left = batch[idx].data.len() - offset;
                    if n >= left {
                        n -= left;
                        idx += 1;
                        offset = 0;
                    } else {
                        offset += n;
                        n = 0;
                    }
                }
                while idx < batch.len() && batch[idx].data.len() == offset {
                    idx += 1;
                    offset = 0;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return (idx, offset, WriteOutcome::WouldBlock)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!(error = %e, "write failed");
                return (idx, offset, WriteOutcome::Failed);
            }
        }
    }
    (idx, 0, WriteOutcome::Done)
}

fn shutdown_write(sock: &OwnedWriteHalf) {
    // SAFETY: `shutdown` on a socket we own; it only changes the socket's state.
    unsafe {
        libc::shutdown(sock.as_ref().as_raw_fd(), libc::SHUT_WR);
    }
}

/// The connection's writer task: it only runs when the socket is full (it waits for room and
/// flushes) and to notice the end.
pub async fn run_writer(out: Arc<Outq>) {
    let Some(sock) = &out.sock else {
        return;
    };
    loop {
        if out.is_ended() {
            return;
        }
        let blocked = out.lock().blocked;
        if blocked {
            let writable = sock.socket().as_ref().writable();
            let ready = if out.stall.is_zero() {
                writable.await.map(|_| true)
            } else {
                tokio::time::timeout(out.stall, writable)
                    .await
                    .map_or(Ok(false), |r| r.map(|_| true))
            };
            match ready {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        stall_ms = out.stall.as_millis() as u64,
                        "peer took no bytes for too long; closing the connection"
                    );
                    out.abort();
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "socket failed");
                    out.abort();
                    return;
                }
            }
            out.lock().blocked = false;
            out.flush(true);
        } else {
            out.wake.notified().await;
        }
    }
}

/// Times gathered writes for the queues of one shard: one task that sleeps while no queue of
/// its shard waits, and otherwise wakes when the earliest waiting queue falls due (at least once
/// per quarter window, for queues that reach `gather_bytes` early).
pub struct Flusher {
    pending: Mutex<Vec<Weak<Outq>>>,
    /// Rings when a queue registers with an empty list. `notify_one` keeps a permit when the
    /// task is not waiting yet, so a registration between the task's "empty" check and its
    /// wait is never lost.
    wake: Notify,
    period: Duration,
    /// Time spent writing, for the shard figures.
    busy_ns: std::sync::atomic::AtomicU64,
    /// Rounds the task ran (woken by a registration or a due time).
    rounds: std::sync::atomic::AtomicU64,
}

impl Flusher {
    pub fn new(gather: Duration) -> Arc<Self> {
        Arc::new(Self {
            pending: Mutex::new(Vec::new()),
            wake: Notify::new(),
            // Four rounds per window bound the extra delay to a quarter window.
            period: (gather / 4).max(Duration::from_millis(2)),
            busy_ns: std::sync::atomic::AtomicU64::new(0),
            rounds: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Time this flusher has spent writing queues.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_ns.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Rounds this flusher has run so far.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn list(&self) -> MutexGuard<'_, Vec<Weak<Outq>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, q: Arc<Outq>) {
        let first = {
            let mut list = self.list();
            list.push(Arc::downgrade(&q));
            list.len() == 1
        };
        if first {
            self.wake.notify_one();
        }
    }

    /// Runs until the process ends.
    pub async fn run(self: Arc<Self>) {
        let mut work = Vec::new();
        let mut keep = Vec::new();
        // When the queues kept from the last round fall due; `None`: no queue waits.
        let mut next: Option<Instant> = None;
        loop {
            match next {
                Some(at) => {
                    let cap = Instant::now() + self.period;
                    tokio::time::sleep_until(at.min(cap)).await;
                }
                None => {
                    let idle = self.list().is_empty();
                    if idle {
                        self.wake.notified().await;
                    }
                }
            }
            let started = std::time::Instant::now();
            self.rounds
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::mem::swap(&mut work, &mut *self.list());
            next = None;
            for w in work.drain(..) {
                if let Some(q) = w.upgrade() {
                    if let Some(due) = q.flush_when(false) {
                        next = Some(next.map_or(due, |n: Instant| n.min(due)));
                        keep.push(w);
                    }
                }
            }
            {
                let mut list = self.list();
                if !list.is_empty() {
                    // Registered during the round: one of them may be due soon.
                    let soon = Instant::now() + self.period;
                    next = Some(next.map_or(soon, |n| n.min(soon)));
                }
                list.append(&mut keep);
            }
            self.busy_ns.fetch_add(
                started.elapsed().as_nanos() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }
}

/// The flushers, one per shard of connections: each is a task of its own, so the runtime's
/// workers write different viewers' sockets at the same time (one stream's thousands of viewers
/// are spread over every shard), and a queue registers with its shard's list alone.
pub struct Flushers {
    shards: Vec<Arc<Flusher>>,
}

impl Flushers {
    /// `shards` 0 is taken as 1.
    pub fn new(gather: Duration, shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| Flusher::new(gather)).collect(),
        }
    }

    /// The flusher of connection `id`.
    pub fn for_conn(&self, id: u64) -> Arc<Flusher> {
        self.shards[(id % self.shards.len() as u64) as usize].clone()
    }

    /// Starts every shard's task (on the current runtime).
    pub fn spawn_all(&self) {
        for f in &self.shards {
            tokio::spawn(f.clone().run());
        }
    }

    /// Each shard's time spent writing so far.
    pub fn busy(&self) -> Vec<Duration> {
        self.shards.iter().map(|f| f.busy()).collect()
    }

    /// Each shard's rounds so far.
    pub fn rounds(&self) -> Vec<u64> {
        self.shards.iter().map(|f| f.rounds()).collect()
    }
}

impl Drop for Outq {
    fn drop(&mut self) {
        // tokio's write half shuts the socket's write side down when dropped, which would send
        // a FIN before the reset an abort asked for: let the socket's close do it alone.
        if self.lock().closing == Closing::Aborted {
            if let Some(sock) = self.sock.take() {
                sock.into_socket().forget();
            }
        }
    }
}

/// Makes the kernel send a reset instead of a FIN when `fd` is closed.
fn reset_on_close(fd: std::os::fd::RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` is an open socket owned by this queue's connection; the option value is a
    // valid `linger` of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot set SO_LINGER");
    }
}
