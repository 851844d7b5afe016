//! Sinks run on threads of their own, fed through bounded queues, so a slow or failing disk
//! never delays the publisher or the viewers.

use std::{
    sync::{
        mpsc::{sync_channel, SyncSender, TrySendError},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use fstream_abi::{MediaPacket, SinkBox};

/// The queue to a sink thread; dropping the sender tells the sink to finish once it has
/// written everything queued.
enum SinkMsg {
    Packet(MediaPacket),
}

/// The hub's end of one running sink.
pub struct SinkHandle {
    plugin: String,
    stream: String,
    tx: SyncSender<SinkMsg>,
    dropped: u64,
    /// After a drop, video is skipped until the next keyframe so the recording stays decodable
    /// (metadata and sequence headers always pass).
    wait_key: bool,
    has_video: bool,
}

/// Threads of sinks still running, so shutdown can wait for them to finish their files.
#[derive(Default, Clone)]
pub struct SinkThreads(Arc<Mutex<Vec<JoinHandle<()>>>>);

impl SinkThreads {
    /// Waits until every sink thread ended or `deadline` passed.
    pub fn join_until(&self, deadline: Instant) {
        let handles: Vec<_> =
            std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

impl SinkHandle {
    pub fn spawn(
        plugin: &str,
        stream: &str,
        mut sink: SinkBox,
        capacity: usize,
        threads: &SinkThreads,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<SinkMsg>(capacity.max(1));
        let (p, s) = (plugin.to_string(), stream.to_string());
        let handle = std::thread::Builder::new()
            .name(format!("sink-{plugin}"))
            .spawn(move || {
                let mut failed = false;
                while let Ok(msg) = rx.recv() {
                    match msg {
                        SinkMsg::Packet(pkt) if !failed => {
                            if let Err(e) = sink.packet(&pkt).into_result() {
                                tracing::error!(plugin = %p, stream = %s, error = %e,
                                    "sink failed; it stops, the live stream goes on");
                                failed = true;
                            }
                        }
                        SinkMsg::Packet(_) => {}
                    }
                }
                if !failed {
                    if let Err(e) = sink.finish().into_result() {
                        tracing::error!(plugin = %p, stream = %s, error = %e, "sink failed to finish");
                    }
                }
            })?;
        threads
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
        Ok(Self {
            plugin: plugin.to_string(),
            stream: stream.to_string(),
            tx,
            dropped: 0,
            wait_key: false,
            has_video: false,
        })
    }

    pub fn packet(&mut self, pkt: &MediaPacket) {
        let header = pkt.is_sequence_header() || pkt.is_metadata();
        if pkt.kind == fstream_abi::MediaKind::Video {
            self.has_video = true;
        }
        if self.wait_key && !header {
            let resumes = if self.has_video {
                pkt.kind == fstream_abi::MediaKind::Video && pkt.is_keyframe()
            } else {
                true
            };
            if !resumes {
                self.dropped += 1;
                return;
            }
            self.wait_key = false;
        }
        match self.tx.try_send(SinkMsg::Packet(pkt.clone())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.wait_key = true;
                if self.dropped == 0 {
                    tracing::warn!(plugin = %self.plugin, stream = %self.stream,
                        "sink is too slow; dropping packets for it (live viewers are not affected)");
                }
                self.dropped += 1;
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    pub fn finish(self) {
        if self.dropped > 0 {
            tracing::warn!(plugin = %self.plugin, stream = %self.stream, dropped = self.dropped,
                "sink finished after dropping packets");
        }
        // Dropping the sender ends the sink thread's loop after the queued packets.
        drop(self.tx);
    }
}
