//! Micro-benchmarks of the packet path (not a test; `cargo bench -p fstream-host`).
//!
//! 1. The cost of a call across the plugin boundary (a `#[sabi_trait]` object with the panic
//!    guard, as every plugin call is made) against a direct call of the same function.
//! 2. The hub's fan-out cost per packet per subscriber, for the raw format (payload shared as
//!    is) and for an encoded format (one encoder call per packet, shared by all subscribers),
//!    at 1, 100 and 1,000 subscribers; and the boundary's share of the packet path.
//!
//! Results go in BENCHMARKS.md.

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use fstream_abi::{
    payload_from,
    sdk::{encoder_box, frontend_box, Encode, Frontend as FrontendLogic},
    ConnInfo, EncoderBox, MediaPacket, OverflowPolicy, Payload, PluginError, PublishConflict,
    PublishOptions, RecordMode, SessionBox, SubscribeOptions,
};
use fstream_host::{
    config::HubConfig,
    frontends::Frontend,
    hub::{EventTx, Hub, Peer},
    outq::Outq,
};

/// An encoder that returns the payload unchanged: the boundary cost alone.
struct Passthrough;

impl Encode for Passthrough {
    fn encode(&mut self, p: &MediaPacket) -> Result<Option<Payload>, PluginError> {
        Ok(Some(p.payload.clone()))
    }
}

struct BenchFrontend;

impl FrontendLogic for BenchFrontend {
    fn protocol(&self) -> String {
        "bench".into()
    }
    fn default_listen(&self) -> String {
        String::new()
    }
    fn new_session(&self, _: &ConnInfo) -> Result<SessionBox, PluginError> {
        Err(PluginError::new("no sessions"))
    }
    fn encoder(&self, _: &str) -> Result<EncoderBox, PluginError> {
        Ok(encoder_box(Passthrough))
    }
}

fn per_iter(iters: u64, f: impl FnMut()) -> Duration {
    let mut f = f;
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed() / iters as u32
}

fn boundary() -> (f64, f64) {
    let pkt = MediaPacket::raw(payload_from(&[0u8; 4096]));
    let mut direct = Passthrough;
    let mut boxed = encoder_box(Passthrough);
    let n = 5_000_000;
    // Warm up, then measure each three times and keep the best.
    let mut best_direct = f64::MAX;
    let mut best_abi = f64::MAX;
    for _ in 0..3 {
        let d = per_iter(n, || {
            black_box(direct.encode(black_box(&pkt)).ok());
        });
        let a = per_iter(n, || {
            black_box(boxed.encode(black_box(&pkt)).into_result().ok());
        });
        best_direct = best_direct.min(d.as_nanos() as f64);
        best_abi = best_abi.min(a.as_nanos() as f64);
    }
    (best_direct, best_abi)
}

fn fan_out(subscribers: usize, format: &str) -> f64 {
    let cfg = HubConfig {
        gop_cache: false,
        ..HubConfig::default()
    };
    let hub = Hub::new(cfg, Vec::new());
    let frontend = Arc::new(Frontend {
        plugin: "bench".into(),
        protocol: "bench".into(),
        default_listen: String::new(),
        factory: frontend_box(BenchFrontend),
        takes_commands: true,
    });
    let peer = |id: u64| {
        let (events, rx) = tokio::sync::mpsc::unbounded_channel();
        std::mem::forget(rx);
        Peer {
            conn_id: id,
            out: Outq::detached(Duration::from_millis(40), 1 << 30),
            events: EventTx::new(events),
            frontend: frontend.clone(),
        }
    };
    let publisher = peer(0);
    let (_, stream) = hub.publish(
        &publisher,
        1,
        "bench/stream",
        "bench",
        PublishOptions {
            channel_password: None.into(),
            conflict: PublishConflict::Replace,
            grace_ms: 0,
            record: RecordMode::Live,
            query: "".into(),
            ext: Default::default(),
        },
    );
    let stream = stream.expect("published");
    let subs: Vec<Peer> = (1..=subscribers as u64).map(peer).collect();
    for s in &subs {
        hub.subscribe(
            s,
            1,
            "bench/stream",
            SubscribeOptions {
                format: format.into(),
                channel_password: None.into(),
                wait_ms: u32::MAX,
                overflow: OverflowPolicy::SkipToKeyframe,
                max_queue_bytes: u64::MAX,
                join_with_cache: false,
                audio: true,
                video: true,
                start_ms: 0,
                ext: Default::default(),
            },
        );
    }
    let payload = payload_from(&[7u8; 1400]);
    let packets = (2_000_000 / subscribers.max(1)).clamp(200, 200_000);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let mut total = Duration::ZERO;
        let mut sent = 0;
        while sent < packets {
            let batch = 100.min(packets - sent);
            let t = Instant::now();
            for _ in 0..batch {
                hub.packet(&stream, 0, 1, MediaPacket::raw(payload.clone()));
            }
            total += t.elapsed();
            sent += batch;
            // Empty the queues outside the timing, as writers would.
            for s in &subs {
                s.out.drop_media();
            }
        }
        best = best.min(total.as_nanos() as f64 / packets as f64);
    }
    best
}

fn main() {
    let (direct, abi) = boundary();
    println!("call: direct {direct:.1} ns, across the ABI (sabi_trait + panic guard) {abi:.1} ns, difference {:.1} ns", abi - direct);
    println!(
        "| subscribers | format | ns per packet | ns per packet per subscriber | boundary share |"
    );
    println!("|---|---|---|---|---|");
    for &n in &[1usize, 100, 1000] {
        for format in ["raw", "encoded"] {
            let ns = fan_out(n, format);
            // The plugin calls on this path: one Session::bytes for the publisher's read
            // (amortised over the packets of that read; counted as one per packet here) and,
            // for an encoded format, one Encoder::encode.
            let calls = if format == "raw" { 1.0 } else { 2.0 };
            let share = calls * (abi - direct).max(0.0) / ns * 100.0;
            println!(
                "| {n} | {format} | {ns:.0} | {:.1} | {share:.3}% |",
                ns / n as f64
            );
        }
    }
}
