//! The flusher sleeps while nothing waits and must never miss a queue that registers: histories
//! of bursts and silences over real loopback sockets, every byte checked at the reader.

use std::{sync::Arc, time::Duration};

use fstream_abi::payload_from_vec;
use fstream_host::{
    outq::{Flushers, Outq},
    tls::WriteSide,
};
use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
};

const GATHER: Duration = Duration::from_millis(20);

/// A queue writing to one end of a loopback connection, and the other end.
async fn pair(flushers: &Flushers, id: u64) -> (Arc<Outq>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (_read, write) = accepted.unwrap().0.into_split();
    // Keep the read half alive with the queue's socket: dropping it does not close anything.
    std::mem::forget(_read);
    let q = Outq::new(
        WriteSide::Plain(write),
        GATHER,
        32 * 1024,
        Duration::ZERO,
        flushers.for_conn(id),
    );
    (q, client.unwrap())
}

/// A small deterministic generator, so that a failing history can be run again.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Block `n` of queue `q`: its number and a length that varies, so readers can check each byte.
fn block(q: u64, n: u32, len: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(len + 8);
    b.extend_from_slice(&n.to_be_bytes());
    b.extend_from_slice(&(len as u32).to_be_bytes());
    b.extend((0..len).map(|i| (q as usize * 31 + n as usize * 7 + i) as u8));
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_queued_byte_arrives_through_bursts_and_silences_and_the_idle_flusher_sleeps() {
    let flushers = Arc::new(Flushers::new(GATHER, 2));
    flushers.spawn_all();
    const QUEUES: u64 = 24;
    const BLOCKS: u32 = 300;
    let mut pushers = Vec::new();
    let mut readers = Vec::new();
    for id in 0..QUEUES {
        let (q, mut peer) = pair(&flushers, id).await;
        readers.push(tokio::spawn(async move {
            let mut expect = 0u32;
            let mut head = [0u8; 8];
            while expect < BLOCKS {
                // A missed wake-up leaves bytes queued forever: the read times out.
                tokio::time::timeout(Duration::from_secs(5), peer.read_exact(&mut head))
                    .await
                    .unwrap_or_else(|_| panic!("queue {id}: block {expect} never arrived"))
                    .unwrap();
                let n = u32::from_be_bytes(head[..4].try_into().unwrap());
                let len = u32::from_be_bytes(head[4..].try_into().unwrap()) as usize;
                assert_eq!(n, expect, "queue {id}: blocks out of order");
                let mut body = vec![0u8; len];
                peer.read_exact(&mut body).await.unwrap();
                assert_eq!(
                    &block(id, n, len)[8..],
                    &body[..],
                    "queue {id}: block {n} corrupt"
                );
                expect += 1;
            }
        }));
        pushers.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id + 1));
            for n in 0..BLOCKS {
                let len = (rng.next() % 3000) as usize;
                let now = q
                    .push_media(payload_from_vec(block(id, n, len)), usize::MAX, false)
                    .unwrap();
                if now {
                    q.flush(true);
                }
                // Mostly back to back, sometimes a pause past the window (the flusher
                // empties its list and goes to sleep), now and then a session write.
                match rng.next() % 20 {
                    0 => tokio::time::sleep(GATHER * 3).await,
                    1..=4 => tokio::time::sleep(Duration::from_millis(rng.next() % 5)).await,
                    _ => tokio::task::yield_now().await,
                }
            }
            q
        }));
    }
    let mut queues = Vec::new();
    for p in pushers {
        queues.push(p.await.unwrap());
    }
    for r in readers {
        r.await.unwrap();
    }
    // Nothing is pending: after the last round the flushers sleep instead of ticking.
    tokio::time::sleep(GATHER * 2).await;
    let before: u64 = flushers.rounds().iter().sum();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after: u64 = flushers.rounds().iter().sum();
    assert!(
        after - before <= 2,
        "idle flushers ran {} rounds in 500 ms",
        after - before
    );
    // And they wake again for the next write.
    let q = &queues[3];
    q.push_media(payload_from_vec(vec![1; 10]), usize::MAX, false)
        .unwrap();
    tokio::time::sleep(GATHER * 4).await;
    assert_eq!(
        q.queued_bytes(),
        0,
        "a write after the silence stayed queued"
    );
}
