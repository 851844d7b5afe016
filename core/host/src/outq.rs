//! A connection's output: one ordered queue of shared buffers and the task that writes it.
//!
//! Everything a peer receives goes through its `Outq`: its session's own writes (control
//! messages, answers) and the media the hub fans out. The hub pushes shared payloads (no copy per
//! viewer) and never waits; the writer task gathers what is queued and sends it with one
//! vectored write when `gather_bytes` are pending, when the oldest byte has waited `gather`, or
//! at once for a session's own writes. The queue is bounded by the pusher: media beyond a
//! subscriber's limit is refused and the hub applies that subscriber's overflow policy.

use std::{
    collections::VecDeque,
    io::IoSlice,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use fstream_abi::Payload;
use tokio::{
    io::AsyncWriteExt,
    net::tcp::OwnedWriteHalf,
    sync::{watch, Notify},
    time::Instant,
};

/// Most buffers handed to one `writev`.
const MAX_IOVECS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Open,
    /// Write what is queued, then shut down.
    AfterFlush,
    /// Stop now; drop what is queued.
    Aborted,
}

struct Item {
    data: Payload,
    media: bool,
}

struct State {
    items: VecDeque<Item>,
    /// Bytes in `items` (not counting what the writer already took).
    bytes: usize,
    oldest: Option<Instant>,
    /// A session write is queued: flush without waiting for the window.
    urgent: bool,
    closing: Closing,
}

pub struct Outq {
    state: Mutex<State>,
    wake: Notify,
    gather: Duration,
    gather_bytes: usize,
    ended_tx: watch::Sender<bool>,
}

/// The queue refused media: this subscriber is over its limit.
#[derive(Debug)]
pub struct Full;

impl Outq {
    pub fn new(gather: Duration, gather_bytes: usize) -> Arc<Self> {
        let (ended_tx, _) = watch::channel(false);
        Arc::new(Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                oldest: None,
                urgent: false,
                closing: Closing::Open,
            }),
            wake: Notify::new(),
            gather,
            gather_bytes,
            ended_tx,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves when the writer has stopped (peer gone, write error, abort or flushed close).
    pub fn ended(&self) -> watch::Receiver<bool> {
        self.ended_tx.subscribe()
    }

    pub fn is_ended(&self) -> bool {
        *self.ended_tx.borrow()
    }

    /// Queues a session's own bytes; they go out without waiting for the gathering window.
    pub fn push_control(&self, data: Payload) {
        let mut st = self.lock();
        if st.closing != Closing::Open {
            return;
        }
        st.bytes += data.len();
        st.items.push_back(Item { data, media: false });
        if st.oldest.is_none() {
            st.oldest = Some(Instant::now());
        }
        st.urgent = true;
        drop(st);
        self.wake.notify_one();
    }

    /// Queues media unless that would take the queue past `limit` bytes.
    pub fn push_media(&self, data: Payload, limit: usize) -> Result<(), Full> {
        let mut st = self.lock();
        if st.closing != Closing::Open {
            return Ok(());
        }
        if st.bytes + data.len() > limit && !st.items.is_empty() {
            return Err(Full);
        }
        let was_empty = st.items.is_empty();
        st.bytes += data.len();
        st.items.push_back(Item { data, media: true });
        let flush_now = self.gather.is_zero() || st.bytes >= self.gather_bytes;
        if was_empty {
            st.oldest = Some(Instant::now());
        }
        drop(st);
        // Wake the writer when there is something new to time (an empty queue got data) or
        // something to send now; not for every packet.
        if was_empty || flush_now {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Drops queued media that the writer has not started on (a subscriber skipping ahead).
    /// Session writes stay.
    pub fn drop_media(&self) -> usize {
        let mut st = self.lock();
        let before = st.bytes;
        st.items.retain(|i| !i.media);
        st.bytes = st.items.iter().map(|i| i.data.len()).sum();
        if st.items.is_empty() {
            st.oldest = None;
        }
        before - st.bytes
    }

    /// Sends what is queued, then closes.
    pub fn close_after_flush(&self) {
        let mut st = self.lock();
        if st.closing == Closing::Open {
            st.closing = Closing::AfterFlush;
            st.urgent = true;
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Stops at once.
    pub fn abort(&self) {
        let mut st = self.lock();
        st.closing = Closing::Aborted;
        st.items.clear();
        st.bytes = 0;
        drop(st);
        self.wake.notify_one();
        let _ = self.ended_tx.send(true);
    }

    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }
}

enum Next {
    /// Take these and write them.
    Write(Vec<Payload>),
    /// Wait for more, at most until the deadline.
    WaitUntil(Instant),
    /// Nothing queued.
    Idle,
    Shutdown,
    Stop,
}

impl Outq {
    fn next(&self) -> Next {
        let mut st = self.lock();
        match st.closing {
            Closing::Aborted => return Next::Stop,
            Closing::AfterFlush if st.items.is_empty() => return Next::Shutdown,
            _ => {}
        }
        if st.items.is_empty() {
            return Next::Idle;
        }
        let deadline = st.oldest.unwrap_or_else(Instant::now) + self.gather;
        let ready = st.urgent
            || st.closing != Closing::Open
            || self.gather.is_zero()
            || st.bytes >= self.gather_bytes
            || deadline <= Instant::now();
        if !ready {
            return Next::WaitUntil(deadline);
        }
        let batch: Vec<Payload> = st.items.drain(..).map(|i| i.data).collect();
        st.bytes = 0;
        st.oldest = None;
        st.urgent = false;
        Next::Write(batch)
    }
}

/// Writes `out` to the socket until the connection ends.
pub async fn run_writer(out: Arc<Outq>, mut sock: OwnedWriteHalf) {
    let result = writer_loop(&out, &mut sock).await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "write failed");
    }
    let _ = out.ended_tx.send(true);
}

async fn writer_loop(out: &Outq, sock: &mut OwnedWriteHalf) -> std::io::Result<()> {
    loop {
        match out.next() {
            Next::Write(batch) => write_all_vectored(sock, &batch).await?,
            Next::WaitUntil(deadline) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = out.wake.notified() => {}
                }
            }
            Next::Idle => out.wake.notified().await,
            Next::Shutdown => {
                sock.shutdown().await?;
                return Ok(());
            }
            Next::Stop => return Ok(()),
        }
    }
}

async fn write_all_vectored(sock: &mut OwnedWriteHalf, batch: &[Payload]) -> std::io::Result<()> {
    let mut idx = 0;
    let mut offset = 0;
    while idx < batch.len() {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_IOVECS.min(batch.len() - idx));
        slices.push(IoSlice::new(&batch[idx][offset..]));
        for p in batch[idx + 1..].iter().take(MAX_IOVECS - 1) {
            slices.push(IoSlice::new(p));
        }
        let mut n = sock.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && idx < batch.len() {
            let left = batch[idx].len() - offset;
            if n >= left {
                n -= left;
                idx += 1;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
        // Skip empty payloads.
        while idx < batch.len() && batch[idx].len() == offset {
            idx += 1;
            offset = 0;
        }
    }
    Ok(())
}
