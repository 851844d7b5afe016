//! Limits and timeouts (issue 7): each one is hit while a normal stream keeps flowing.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use fstream_e2e::{fstream_preamble, Host, LiveFlow, Root};

fn root(tag: &str, host_toml: &str, fstream_toml: &str) -> Root {
    let root = Root::new(tag, &["auth-ini", "fstream"]);
    root.user("fier", "123");
    root.write("mods/host.toml", host_toml);
    root.write("mods/fstream.toml", fstream_toml);
    root
}

/// Whether the server closes `s` (EOF or reset) within `timeout`.
fn eof_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let start = Instant::now();
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut b = [0u8; 65536];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => {
                if start.elapsed() > timeout {
                    return false;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn connection_limits_refuse_the_extra_connection_and_keep_serving() {
    // Per IP (every test client is 127.0.0.1): the flow takes 2, four idle ones fill it.
    let r = root("conn-limit", "[limits]\nmax_connections_per_ip = 6\n", "");
    let host = Host::start(&r, &["fstream"], &[]);
    let addr = host.addr("fstream");
    let flow = CheckedFlow::start(&host, "c");
    assert!(flow.flows(100_000, Duration::from_secs(10)));
    let idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(addr).unwrap();
    assert!(
        eof_within(&mut extra, Duration::from_secs(5)),
        "the 7th connection is refused"
    );
    assert!(
        host.wait_log("max_connections_per_ip", Duration::from_secs(5)),
        "{}",
        host.log()
    );
    assert!(
        flow.flows(100_000, Duration::from_secs(10)),
        "the stream goes on"
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    // Room again.
    let mut again = TcpStream::connect(addr).unwrap();
    again
        .write_all(&fstream_preamble("watch,user=fier,channel=c"))
        .unwrap();
    again
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 1024];
    assert!(again.read(&mut b).unwrap() > 0);
    drop(again);
    flow.finish();

    // In all.
    let r = root("conn-limit-total", "[limits]\nmax_connections = 3\n", "");
    let host = Host::start(&r, &["fstream"], &[]);
    let addr = host.addr("fstream");
    let flow = CheckedFlow::start(&host, "c");
    assert!(flow.flows(100_000, Duration::from_secs(10)));
    let one = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(addr).unwrap();
    assert!(eof_within(&mut extra, Duration::from_secs(5)));
    assert!(host.wait_log("max_connections", Duration::from_secs(5)));
    assert!(flow.flows(100_000, Duration::from_secs(10)));
    // A place freed: a new watcher is served.
    drop(one);
    std::thread::sleep(Duration::from_millis(300));
    let mut again = TcpStream::connect(addr).unwrap();
    again
        .write_all(&fstream_preamble("watch,user=fier,channel=c"))
        .unwrap();
    again
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(again.read(&mut b).unwrap() > 0, "a new watcher got nothing");
    drop(again);
    flow.finish();
}

#[test]
fn streams_per_user_are_bounded() {
    let r = root("streams-limit", "[limits]\nmax_streams_per_user = 1\n", "");
    let host = Host::start(&r, &["fstream"], &[]);
    let addr = host.addr("fstream");
    let flow = CheckedFlow::start(&host, "one");
    assert!(flow.flows(100_000, Duration::from_secs(10)));
    let mut second = TcpStream::connect(addr).unwrap();
    second
        .write_all(&fstream_preamble(
            "broadcast,user=fier,user_password=123,channel=two",
        ))
        .unwrap();
    assert!(
        eof_within(&mut second, Duration::from_secs(5)),
        "the second stream is refused"
    );
    assert!(host.wait_log("max_streams_per_user", Duration::from_secs(5)));
    assert!(flow.flows(100_000, Duration::from_secs(10)));
    // The first stream ends whole; then the user's second stream is taken.
    flow.finish();
    let mut second = TcpStream::connect(addr).unwrap();
    second
        .write_all(&fstream_preamble(
            "broadcast,user=fier,user_password=123,channel=two",
        ))
        .unwrap();
    assert!(host.wait_log("broadcast started stream=fier/two", Duration::from_secs(5)));
}

#[test]
fn a_silent_publisher_is_closed_and_its_viewers_released() {
    let r = root(
        "idle",
        "[limits]\npublisher_idle_ms = 800\n",
        "grace_ms = 200\n",
    );
    let host = Host::start(&r, &["fstream"], &[]);
    let addr = host.addr("fstream");
    let mut w = TcpStream::connect(addr).unwrap();
    w.write_all(&fstream_preamble("watch,user=fier,channel=quiet"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // A publisher that sends a little, then nothing, without closing (as if its network
    // vanished without a FIN).
    let mut p = TcpStream::connect(addr).unwrap();
    p.write_all(&fstream_preamble(
        "broadcast,user=fier,user_password=123,channel=quiet",
    ))
    .unwrap();
    p.write_all(&[1u8; 1000]).unwrap();
    let t0 = Instant::now();
    assert!(
        eof_within(&mut w, Duration::from_secs(10)),
        "the viewer is released"
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(host.wait_log(
        "publisher sent nothing for too long",
        Duration::from_secs(5)
    ));
    drop(p);
}

#[test]
fn a_viewer_that_stops_reading_is_closed_after_the_stall_timeout() {
    let r = root(
        "stall",
        "[limits]\nwrite_stall_ms = 1000\n",
        // A queue so large that the overflow policy never acts first.
        "watcher_queue_bytes = 268435456\n",
    );
    let host = Host::start(&r, &["fstream"], &[]);
    let addr = host.addr("fstream");
    let mut stuck = TcpStream::connect(addr).unwrap();
    stuck
        .write_all(&fstream_preamble("watch,user=fier,channel=s"))
        .unwrap();
    let flow = LiveFlow::start(addr, "fier", "123", "s");
    // 4 KiB per 5 ms fills the kernel's buffers for the stuck viewer within seconds.
    assert!(
        host.wait_log("peer took no bytes for too long", Duration::from_secs(30)),
        "{}",
        host.log()
    );
    assert!(
        flow.flows(100_000, Duration::from_secs(10)),
        "the reading viewer keeps receiving"
    );
    drop(stuck);
}

#[test]
fn slowloris_connections_are_all_closed_by_the_preamble_timeout() {
    let r = root("slowloris", "", "preamble_timeout_ms = 2000\n");
    let host = Host::start(&r, &["fstream"], &[]);
    let addr: SocketAddr = host.addr("fstream");
    let mut slow: Vec<TcpStream> = Vec::new();
    for _ in 0..1000 {
        match TcpStream::connect(addr) {
            Ok(s) => {
                s.set_nonblocking(true).unwrap();
                slow.push(s);
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
    let flow = LiveFlow::start(addr, "fier", "123", "real");
    // One byte a second from each (never completing a preamble).
    let start = Instant::now();
    let mut open = slow.len();
    while open > 0 && start.elapsed() < Duration::from_secs(15) {
        open = 0;
        for s in &mut slow {
            let _ = s.write(b"\n");
            let mut b = [0u8; 8];
            match s.read(&mut b) {
                Ok(0) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
                Ok(_) => panic!("the server sent bytes to a slowloris connection"),
                Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    assert_eq!(open, 0, "every slowloris connection was closed");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(
        flow.flows(100_000, Duration::from_secs(10)),
        "the real stream went on"
    );
}

// =============================================================================================
// The limits that only unit tests, fuzzing or the hub's design covered, hit over the network
// by another connection while a normal stream flows. Each test checks the abuser's outcome, that
// a watcher of the normal stream received every byte or frame sent (checked, not only counted),
// and that a new client is served afterwards.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread::{self, JoinHandle},
};

use fstream_e2e::rtmp_client::{info_of, RtmpClient};
use fstream_media::{
    amf0::Amf0Value,
    amf3::{Amf3Array, Amf3Value},
    flv::{classify_video, FlvDemuxer},
    rtmp::{
        chunk::RtmpMessage,
        message::{
            msg_type, Command as RtmpCommand, CommandEncoding, ControlMessage, UserControlEvent,
        },
    },
    AmfLimits,
};

const WAIT: Duration = Duration::from_secs(20);

/// Reads until the server closes `s` (EOF or reset); the bytes it sent meanwhile, or `None` if
/// it did not close within `timeout`.
fn bytes_until_close(s: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut b) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                return Some(got)
            }
            Err(_) => {}
        }
    }
    None
}

fn wait_for(host: &Host, needle: &str) {
    assert!(
        host.wait_log(needle, WAIT),
        "no {needle:?} in the log:\n{}",
        host.log()
    );
}

// ---------------------------------------------------------------------------------------------
// fstream: a broadcast whose every byte is checked

/// The size of the checked flow's chunks, and the `bufsize` its broadcaster asks for.
const CHUNK: usize = 4096;

/// Chunk `i` of the checked flow: its index, then bytes made from it.
fn flow_chunk(i: u64) -> Vec<u8> {
    let mut c = vec![0u8; CHUNK];
    c[..8].copy_from_slice(&i.to_be_bytes());
    for (k, b) in c[8..].iter_mut().enumerate() {
        *b = (i as usize).wrapping_mul(31).wrapping_add(k * 7) as u8 ^ 0xa5;
    }
    c
}

/// Checks that `got` is whole chunks of the flow with consecutive indices; returns the first
/// index and the number of chunks.
fn check_chunks(got: &[u8]) -> (u64, u64) {
    assert!(!got.is_empty(), "nothing received");
    assert_eq!(
        got.len() % CHUNK,
        0,
        "{} bytes: not whole chunks",
        got.len()
    );
    let first = u64::from_be_bytes(got[..8].try_into().unwrap());
    for (n, c) in got.chunks(CHUNK).enumerate() {
        assert!(
            c == flow_chunk(first + n as u64),
            "chunk {n} (of {}) is not chunk {} of the stream",
            got.len() / CHUNK,
            first + n as u64
        );
    }
    (first, (got.len() / CHUNK) as u64)
}

/// A live fstream broadcast (`bufsize=4096`, 4 KiB every 5 ms, sent once it has started) and a
/// watcher that was there first and keeps every byte.
struct CheckedFlow {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicUsize>,
    watcher: Option<JoinHandle<Vec<u8>>>,
    broadcaster: Option<JoinHandle<u64>>,
}

impl CheckedFlow {
    fn start(host: &Host, channel: &str) -> CheckedFlow {
        let addr = host.addr("fstream");
        let mut w = TcpStream::connect(addr).unwrap();
        w.write_all(&fstream_preamble(&format!(
            "watch,user=fier,channel={channel}"
        )))
        .unwrap();
        wait_for(
            host,
            &format!("watcher waiting for a broadcaster stream=fier/{channel}\n"),
        );
        let mut b = TcpStream::connect(addr).unwrap();
        b.write_all(&fstream_preamble(&format!(
            "broadcast,user=fier,user_password=123,channel={channel},bufsize={CHUNK}"
        )))
        .unwrap();
        wait_for(host, &format!("broadcast started stream=fier/{channel}\n"));
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicUsize::new(0));
        let st = stop.clone();
        let broadcaster = thread::spawn(move || {
            let mut i = 0u64;
            while !st.load(Ordering::Relaxed) {
                if b.write_all(&flow_chunk(i)).is_err() {
                    break;
                }
                i += 1;
                thread::sleep(Duration::from_millis(5));
            }
            // Dropping the socket ends the broadcast.
            i
        });
        let (st, rx) = (stop.clone(), received.clone());
        let watcher = thread::spawn(move || {
            w.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut got = Vec::new();
            let mut b = vec![0u8; 65536];
            let mut stopped_at: Option<Instant> = None;
            loop {
                if st.load(Ordering::Relaxed) {
                    let t = *stopped_at.get_or_insert_with(Instant::now);
                    if t.elapsed() > WAIT {
                        break;
                    }
                }
                match w.read(&mut b) {
                    Ok(0) => break,
                    Ok(n) => {
                        got.extend_from_slice(&b[..n]);
                        rx.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                    Err(_) => {}
                }
            }
            got
        });
        CheckedFlow {
            stop,
            received,
            watcher: Some(watcher),
            broadcaster: Some(broadcaster),
        }
    }

    /// Whether at least `more` further bytes arrive within `timeout`.
    fn flows(&self, more: usize, timeout: Duration) -> bool {
        let start = self.received.load(Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.received.load(Ordering::Relaxed) >= start + more {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Ends the broadcast; checks the watcher got every chunk sent, in order, and its EOF.
    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.broadcaster.take().unwrap().join().unwrap();
        let got = self.watcher.take().unwrap().join().unwrap();
        let (first, n) = check_chunks(&got);
        eprintln!("the checked flow: {n} of {sent} chunks received, all intact");
        assert_eq!((first, n), (0, sent), "the watcher missed chunks");
    }
}

impl Drop for CheckedFlow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A broadcaster of `fier/CHANNEL` closed without a byte, with `why` logged, no broadcast
/// started, and the checked stream still flowing.
fn refused_silently(host: &Host, s: &mut TcpStream, channel: &str, why: &str, flow: &CheckedFlow) {
    let got = bytes_until_close(s, WAIT).expect("the refused broadcaster stays open");
    assert!(got.is_empty(), "{channel}: it was sent {} bytes", got.len());
    wait_for(host, why);
    assert!(!host
        .log()
        .contains(&format!("broadcast started stream=fier/{channel}")));
    assert!(flow.flows(100_000, WAIT), "the checked stream stalled");
}

/// fstream's `max_pending_bytes` (bytes of a broadcast before it has started: authentication)
/// and `max_bufsize`: a broadcaster sending 16 KiB with its preamble (limit 1 KiB) and one asking
/// for `bufsize=4097` (limit 4096) are each closed without a byte and logged with the limit; a
/// broadcast at the limits (`bufsize=4096`, 1,000 bytes with the preamble) is served, and so are
/// a late watcher and the checked stream throughout.
#[test]
fn fstream_pending_bytes_and_bufsize_over_the_limit_close_only_that_broadcaster() {
    let r = root(
        "fstream-pending",
        "",
        "grace_ms = 200\nmax_pending_bytes = 1024\nmax_bufsize = 4096\n",
    );
    let host = Host::start(&r, &["fstream"], &[]);
    let addr = host.addr("fstream");
    // The normal stream asks for bufsize=4096 itself: the limit is inclusive.
    let flow = CheckedFlow::start(&host, "live");
    assert!(
        flow.flows(100_000, WAIT),
        "the checked stream does not flow"
    );

    // 16 KiB in the same write as the preamble: they reach the session while it authenticates.
    let mut s = TcpStream::connect(addr).unwrap();
    let mut input = fstream_preamble("broadcast,user=fier,user_password=123,channel=flood");
    input.extend_from_slice(&[0x47; 16 * 1024]);
    let _ = s.write_all(&input);
    refused_silently(
        &host,
        &mut s,
        "flood",
        "more than 1024 bytes arrived before the broadcast could start",
        &flow,
    );

    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&fstream_preamble(
        "broadcast,user=fier,user_password=123,channel=big,bufsize=4097",
    ))
    .unwrap();
    refused_silently(
        &host,
        &mut s,
        "big",
        "bufsize 4097 exceeds this server's limit of 4096 bytes",
        &flow,
    );

    // New clients: a broadcast of 1,000 bytes sent with its preamble (under the limit) reaches
    // its watcher whole; a late watcher of the checked stream starts on a chunk boundary
    // (bufsize) and gets intact, consecutive chunks.
    let mut w = TcpStream::connect(addr).unwrap();
    w.write_all(&fstream_preamble("watch,user=fier,channel=small"))
        .unwrap();
    wait_for(
        &host,
        "watcher waiting for a broadcaster stream=fier/small\n",
    );
    let small: Vec<u8> = (0..1000u32).map(|i| (i * 13) as u8).collect();
    let mut b = TcpStream::connect(addr).unwrap();
    let mut input = fstream_preamble("broadcast,user=fier,user_password=123,channel=small");
    input.extend_from_slice(&small);
    b.write_all(&input).unwrap();
    b.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(
        bytes_until_close(&mut w, WAIT).expect("the small broadcast ends"),
        small
    );
    let mut late = TcpStream::connect(addr).unwrap();
    late.write_all(&fstream_preamble("watch,user=fier,channel=live"))
        .unwrap();
    late.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = vec![0u8; 10 * CHUNK];
    late.read_exact(&mut got).unwrap();
    let (first, _) = check_chunks(&got);
    assert!(first > 0, "the late watcher got the stream from its start");
    drop(late);

    flow.finish();
}

// ---------------------------------------------------------------------------------------------
// RTMP: a paced publisher of a generated FLV file and players that keep every video frame

/// One message as an RTMP publisher sends an FLV tag: (type id, timestamp, payload); metadata
/// goes as `@setDataFrame`.
type Tag = (u8, u32, Vec<u8>);

/// A generated H.264 + AAC file (`secs` seconds, a keyframe every second) as publisher messages.
fn generated_tags(dir: &std::path::Path, secs: u32) -> Vec<Tag> {
    let flv = fstream_e2e::generated_flv(dir, secs);
    let mut d = FlvDemuxer::new(16 << 20);
    d.push(&flv);
    let mut tags = Vec::new();
    while let Some(t) = d.next_tag().unwrap() {
        let t = t.tag;
        let type_id = t.tag_type as u8;
        let payload = if type_id == msg_type::DATA_AMF0 {
            let mut p = fstream_media::amf0::to_vec(&Amf0Value::from("@setDataFrame")).unwrap();
            p.extend_from_slice(&t.data);
            p
        } else {
            t.data.to_vec()
        };
        tags.push((type_id, t.timestamp, payload));
    }
    tags
}

fn is_keyframe(video: &[u8]) -> bool {
    classify_video(video).is_some_and(|i| i.is_keyframe())
}

fn is_coded_frame(video: &[u8]) -> bool {
    classify_video(video).is_some_and(|i| !i.is_sequence_header())
}

/// The video payloads among `tags`, in order.
fn video_of(tags: &[Tag]) -> Vec<Vec<u8>> {
    tags.iter()
        .filter(|t| t.0 == msg_type::VIDEO)
        .map(|t| t.2.clone())
        .collect()
}

/// What a paced publisher has sent: the index (among the video payloads) and time of the
/// latest keyframe.
type LastKey = Arc<Mutex<Option<(usize, Instant)>>>;

/// Publishes `tags` to `fier/NAME` (publish type `kind`: live, record, append) at their
/// timestamps, on a thread; the connection closes (ending the publication) after the last.
fn publish_paced(
    addr: SocketAddr,
    name: &str,
    kind: &str,
    tags: Vec<Tag>,
) -> (JoinHandle<()>, LastKey) {
    let last_key: LastKey = Arc::new(Mutex::new(None));
    let lk = last_key.clone();
    let key = format!("{name}?user_password=123");
    let kind = kind.to_string();
    let h = thread::spawn(move || {
        let mut c = RtmpClient::new(addr);
        assert_eq!(c.connect("fier").name, "_result");
        c.set_chunk_size(4096);
        let msid = c.create_stream(2.0);
        c.command(
            msid,
            "publish",
            5.0,
            Amf0Value::Null,
            vec![
                Amf0Value::from(key.as_str()),
                Amf0Value::from(kind.as_str()),
            ],
        );
        let (_, code, description) = info_of(&c.expect("onStatus"));
        assert_eq!(code, "NetStream.Publish.Start", "{description}");
        let start = Instant::now();
        let mut video = 0usize;
        for (type_id, ts, payload) in tags {
            let due = start + Duration::from_millis(ts as u64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            let csid = if type_id == msg_type::VIDEO { 6 } else { 4 };
            if type_id == msg_type::VIDEO {
                if is_keyframe(&payload) {
                    *lk.lock().unwrap() = Some((video, Instant::now()));
                }
                video += 1;
            }
            c.send(&RtmpMessage::new(csid, ts, type_id, msid, payload));
        }
        thread::sleep(Duration::from_millis(100));
    });
    (h, last_key)
}

/// What a player received.
struct Played {
    video: Vec<Vec<u8>>,
    /// It got `UnpublishNotify` (the publisher left), rather than an EOF.
    unpublished: bool,
}

/// A player of `fier/NAME` that waits for the publisher and keeps every video payload until the
/// publisher leaves; `count` follows the frames. Every chunk it receives must parse.
fn play_until_unpublished(
    addr: SocketAddr,
    name: &str,
    count: Arc<AtomicUsize>,
) -> JoinHandle<Played> {
    let mut c = RtmpClient::new(addr);
    assert_eq!(c.connect("fier").name, "_result");
    let msid = c.create_stream(2.0);
    c.command(
        msid,
        "play",
        3.0,
        Amf0Value::Null,
        vec![Amf0Value::from(name)],
    );
    thread::spawn(move || {
        let mut video = Vec::new();
        let mut unpublished = false;
        while let Some(m) = c.next() {
            match m.type_id {
                msg_type::VIDEO => {
                    video.push(m.payload.to_vec());
                    count.fetch_add(1, Ordering::Relaxed);
                }
                // Answer the server's pings, as players do (it closes idle connections).
                msg_type::USER_CONTROL => {
                    if let Ok(ControlMessage::UserControl(UserControlEvent::PingRequest(t))) =
                        ControlMessage::parse(m.type_id, &m.payload)
                    {
                        c.send(
                            &ControlMessage::UserControl(UserControlEvent::PingResponse(t))
                                .to_message(),
                        );
                    }
                }
                msg_type::COMMAND_AMF0 => {
                    let cmd =
                        RtmpCommand::parse(m.type_id, &m.payload, &AmfLimits::default()).unwrap();
                    if info_of(&cmd).1 == "NetStream.Play.UnpublishNotify" {
                        unpublished = true;
                        break;
                    }
                }
                _ => {}
            }
        }
        Played { video, unpublished }
    })
}

/// Whether `count` grows by `more` within `timeout`.
fn grows(count: &AtomicUsize, more: usize, timeout: Duration) -> bool {
    let start = count.load(Ordering::Relaxed);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if count.load(Ordering::Relaxed) >= start + more {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A new player of the live `fier/NAME`: its first video frame is a keyframe the publisher
/// sent, and the next frames follow it as sent.
fn new_player_gets_a_decodable_start(addr: SocketAddr, name: &str, sent: &[Vec<u8>]) {
    let mut c = RtmpClient::new(addr);
    assert_eq!(c.connect("fier").name, "_result");
    let msid = c.create_stream(2.0);
    c.command(
        msid,
        "play",
        3.0,
        Amf0Value::Null,
        vec![Amf0Value::from(name)],
    );
    let mut frames: Vec<Vec<u8>> = Vec::new();
    while frames.len() < 5 {
        let m = c.next().expect("the new player is served");
        if m.type_id == msg_type::VIDEO && is_coded_frame(&m.payload) {
            frames.push(m.payload.to_vec());
        }
    }
    assert!(
        is_keyframe(&frames[0]),
        "the new player starts on an inter frame"
    );
    let at = sent
        .iter()
        .position(|v| *v == frames[0])
        .expect("the new player's first frame was not sent");
    assert!(
        frames[..] == sent[at..at + frames.len()],
        "the new player's frames are not the stream's"
    );
}

/// Checks that a player that was there first got every video payload sent, in order.
fn got_every_frame(p: Played, sent: &[Vec<u8>], who: &str) {
    eprintln!(
        "{who}: {} of {} video messages received",
        p.video.len(),
        sent.len()
    );
    assert!(p.unpublished, "{who} was disconnected");
    assert!(
        p.video[..] == sent[..],
        "{who} did not get the stream as sent"
    );
}

/// An RTMP connection that has completed its handshake, as raw bytes from here on.
fn handshaken(addr: SocketAddr) -> RtmpClient {
    RtmpClient::new(addr)
}

/// Whether the server closes `c` within 5 s without answering (a command from it fails the
/// test).
fn rtmp_closed(c: &mut RtmpClient) -> bool {
    if let Some(cmd) = c.command_within(Duration::from_secs(5)) {
        panic!(
            "the server answered the abuser: {} {:?}",
            cmd.name,
            info_of(&cmd)
        );
    }
    c.closed()
}

fn rtmp_root(tag: &str, rtmp_toml: &str) -> Root {
    let r = Root::new(tag, &["auth-ini", "rtmp", "rtmp-app"]);
    r.user("fier", "123");
    r.write("mods/rtmp.toml", rtmp_toml);
    r
}

/// RTMP `max_chunk_size`, `max_message_size`, `max_chunk_streams`, `max_partial_bytes`, each
/// exceeded by its own connection (a Set Chunk Size of 65536 over 8192; a message header of
/// 300,000 bytes over 262,144; a 9th chunk stream over 8; 17 chunks of 8 KiB of one unfinished
/// message over 128 KiB): each is closed without an answer and logged with the limit, while a
/// player of a live stream gets every video message as sent and a new player starts on a
/// keyframe.
/// A live RTMP stream `fier/cam` under test: a player that joined before the publisher, and a
/// paced publisher of `secs` of generated media.
struct LiveCam {
    host: Host,
    addr: SocketAddr,
    sent: Vec<Vec<u8>>,
    frames: Arc<AtomicUsize>,
    player: thread::JoinHandle<Played>,
    publisher: thread::JoinHandle<()>,
}

impl LiveCam {
    /// Starts the host on `r`, the player, then the publisher; waits until frames flow.
    fn start(r: &Root, secs: u32) -> Self {
        let tags = generated_tags(r.path(), secs);
        let sent = video_of(&tags);
        let host = Host::start(r, &["rtmp"], &[]);
        let addr = host.addr("rtmp");
        let frames = Arc::new(AtomicUsize::new(0));
        let player = play_until_unpublished(addr, "cam", frames.clone());
        wait_for(&host, "playing stream=fier/cam");
        let (publisher, _) = publish_paced(addr, "cam", "live", tags);
        assert!(grows(&frames, 10, WAIT), "the live stream does not flow");
        Self {
            host,
            addr,
            sent,
            frames,
            player,
            publisher,
        }
    }

    /// The stream still flows, a new player starts on a keyframe, and the first player got
    /// every frame as sent.
    fn check_unharmed(self) {
        assert!(grows(&self.frames, 10, WAIT), "the live stream stalled");
        new_player_gets_a_decodable_start(self.addr, "cam", &self.sent);
        self.publisher.join().expect("publisher");
        got_every_frame(
            self.player.join().expect("player"),
            &self.sent,
            "the player",
        );
    }
}

#[test]
fn rtmp_chunk_limits_close_only_the_offending_connection() {
    let r = rtmp_root(
        "rtmp-chunk-limits",
        "max_chunk_size = 8192\nmax_message_size = 262144\nmax_chunk_streams = 8\n\
         max_partial_bytes = 131072\ngrace_ms = 200\n",
    );
    let live = LiveCam::start(&r, 5);
    let (host, addr) = (&live.host, live.addr);

    // Set Chunk Size over max_chunk_size.
    let mut c = handshaken(addr);
    c.send(&ControlMessage::SetChunkSize(65536).to_message());
    assert!(rtmp_closed(&mut c), "a chunk size of 65536 was accepted");
    wait_for(host, "chunk size 65536 exceeds the limit of 8192");

    // A message header over max_message_size (no payload needed): fmt 0 on chunk stream 4,
    // timestamp 0, length 300000, video, message stream 1.
    let mut c = handshaken(addr);
    c.sock
        .write_all(&[0x04, 0, 0, 0, 0x04, 0x93, 0xE0, 9, 1, 0, 0, 0])
        .unwrap();
    assert!(rtmp_closed(&mut c), "a 300000-byte message was accepted");
    wait_for(host, "message of 300000 bytes exceeds the limit of 262144");

    // A 9th chunk stream.
    let mut c = handshaken(addr);
    let mut b = Vec::new();
    for csid in 10..=18 {
        b.extend(
            c.enc
                .encode_message(csid, &RtmpMessage::new(csid, 0, 9, 1, vec![0x17, 1]))
                .unwrap(),
        );
    }
    let _ = c.sock.write_all(&b);
    assert!(rtmp_closed(&mut c), "9 chunk streams were accepted");
    wait_for(host, "more than 8 chunk streams in use");

    // One message of 200,000 bytes (under max_message_size) in 8 KiB chunks: the 17th chunk
    // takes the partly received bytes over max_partial_bytes.
    let mut c = handshaken(addr);
    c.set_chunk_size(8192);
    let b = c
        .enc
        .encode_message(4, &RtmpMessage::new(4, 0, 9, 1, vec![0x27; 200_000]))
        .unwrap();
    let _ = c.sock.write_all(&b);
    assert!(rtmp_closed(&mut c), "131072 partial bytes were exceeded");
    wait_for(
        host,
        "partially received messages exceed the limit of 131072 bytes",
    );
    assert_eq!(
        host.log()
            .matches("closing the connection kind=chunk")
            .count(),
        4
    );

    live.check_unharmed();
}

/// AMF limits over the network: RTMP commands are decoded with the frontend's bounds (16
/// levels, 4,096 values, 1,024 references; fstream-media's defaults, 32 / 65,536 / 4,096, are
/// for metadata). A `connect` whose command object nests 40 objects deep, one with an array of
/// 5,000 numbers, and an AMF3 `connect` with 1,100 distinct strings (each an entry of the
/// string reference table) are each closed without an answer and logged with the limit, while
/// a player of a live stream gets every video message as sent and a new player starts on a
/// keyframe.
#[test]
fn amf_nesting_values_and_references_over_the_limit_close_only_that_client() {
    let r = rtmp_root("amf-limits", "grace_ms = 200\n");
    let live = LiveCam::start(&r, 5);
    let (host, addr) = (&live.host, live.addr);

    // Nesting.
    let mut deep = Amf0Value::object([("app", Amf0Value::from("fier"))]);
    for _ in 0..40 {
        deep = Amf0Value::object([("app", Amf0Value::from("fier")), ("inner", deep)]);
    }
    let mut c = handshaken(addr);
    c.command(0, "connect", 1.0, deep, vec![]);
    assert!(rtmp_closed(&mut c), "40 levels of AMF0 were accepted");
    wait_for(host, "AMF0 nesting deeper than the limit of 16");

    // Values.
    let many = Amf0Value::StrictArray((0..5000).map(|i| Amf0Value::Number(i as f64)).collect());
    let mut c = handshaken(addr);
    c.command(
        0,
        "connect",
        1.0,
        Amf0Value::object([("app", Amf0Value::from("fier"))]),
        vec![many],
    );
    assert!(rtmp_closed(&mut c), "5000 AMF0 values were accepted");
    wait_for(
        host,
        "AMF0 input produces more than the limit of 4096 values",
    );

    // References (AMF3, after the avmplus switch of an AMF3 command message).
    let strings = Amf3Value::Array(Amf3Array {
        assoc: Vec::new(),
        dense: (0..1100)
            .map(|i| Amf3Value::String(format!("s{i}")))
            .collect(),
    });
    let m = RtmpCommand::new(
        "connect",
        1.0,
        Amf0Value::object([("app", Amf0Value::from("fier"))]),
        vec![Amf0Value::Avmplus(Box::new(strings))],
    )
    .to_message(CommandEncoding::Amf3, 3, 0)
    .unwrap();
    let mut c = handshaken(addr);
    c.send(&m);
    assert!(
        rtmp_closed(&mut c),
        "1100 AMF3 string references were accepted"
    );
    wait_for(
        host,
        "AMF3 string reference table exceeds the limit of 1024 entries",
    );
    assert_eq!(
        host.log()
            .matches("closing the connection kind=message")
            .count(),
        3
    );

    live.check_unharmed();
}

/// `[hub] gop_cache_bytes`: a publisher whose groups of pictures (indeed each keyframe) exceed
/// the bound (1 KiB here) is not cached; a late joiner gets the metadata and sequence headers
/// at once and starts at the next keyframe (not the one before it joined, which a cache would
/// give), with the frames after it as sent, while the early player gets every frame.
#[test]
fn a_gop_over_gop_cache_bytes_makes_late_joiners_start_at_the_next_keyframe() {
    let r = rtmp_root("gop-bound", "grace_ms = 200\n");
    r.write("mods/host.toml", "[hub]\ngop_cache_bytes = 1024\n");
    let tags = generated_tags(r.path(), 5);
    let sent = video_of(&tags);
    let keys: Vec<usize> = (0..sent.len()).filter(|&i| is_keyframe(&sent[i])).collect();
    assert!(keys.len() >= 4, "{} keyframes", keys.len());
    assert!(
        keys.iter().all(|&k| sent[k].len() > 1024),
        "a keyframe fits the bound: the test would not hit it"
    );
    let host = Host::start(&r, &["rtmp"], &[]);
    let addr = host.addr("rtmp");
    let frames = Arc::new(AtomicUsize::new(0));
    let player = play_until_unpublished(addr, "cam", frames.clone());
    wait_for(&host, "playing stream=fier/cam");
    let (publisher, last_key) = publish_paced(addr, "cam", "live", tags);

    // The late joiner asks to play 200 to 400 ms after the second keyframe went out, well
    // inside its group of pictures (a keyframe every second).
    let mut late = RtmpClient::new(addr);
    assert_eq!(late.connect("fier").name, "_result");
    let msid = late.create_stream(2.0);
    let deadline = Instant::now() + WAIT;
    let before = loop {
        assert!(
            Instant::now() < deadline,
            "the publisher sent no second keyframe"
        );
        if let Some((k, t)) = *last_key.lock().unwrap() {
            let since = t.elapsed();
            if k >= keys[1]
                && since >= Duration::from_millis(200)
                && since < Duration::from_millis(400)
            {
                break k;
            }
        }
        thread::sleep(Duration::from_millis(5));
    };
    late.command(
        msid,
        "play",
        3.0,
        Amf0Value::Null,
        vec![Amf0Value::from("cam")],
    );
    let mut video: Vec<Vec<u8>> = Vec::new();
    while video.iter().filter(|v| is_coded_frame(v)).count() < 10 {
        let m = late.next().expect("the late joiner is served");
        if m.type_id == msg_type::VIDEO {
            video.push(m.payload.to_vec());
        }
    }
    drop(late);
    let next = *keys
        .iter()
        .find(|&&k| k > before)
        .expect("a keyframe after the join");
    assert!(
        !is_coded_frame(&video[0]) && video[0] == sent[0],
        "the late joiner did not get the sequence header first"
    );
    let coded: Vec<Vec<u8>> = video.into_iter().filter(|v| is_coded_frame(v)).collect();
    let first = sent.iter().position(|v| *v == coded[0]);
    eprintln!("joined after keyframe {before}; first frame: {first:?}; next keyframe: {next}");
    assert!(
        coded[0] != sent[before],
        "the late joiner got the keyframe from before it joined: the GOP was cached"
    );
    assert!(
        coded[0] == sent[next],
        "the late joiner's first frame is not the next keyframe"
    );
    assert!(
        coded[..] == sent[next..next + coded.len()],
        "the late joiner's frames do not follow the keyframe as sent"
    );

    new_player_gets_a_decodable_start(addr, "cam", &sent);
    publisher.join().expect("publisher");
    got_every_frame(player.join().expect("player"), &sent, "the early player");
}

/// A slow disk, made with a FIFO: the recording of an RTMP "append" publish goes to
/// `recordings/fier/cam.flv`, which is a named pipe of 4 KiB that this test leaves unread at
/// first, so the recorder's writes block. The sink's queue (`[hub] sink_queue_packets`, 8
/// here) fills: the host drops packets for the recorder only, with a log line; the live player
/// gets every frame meanwhile, a new player is served, and once the pipe is read again the
/// recording resumes, each gap ending at a keyframe.
#[test]
fn a_recorder_on_a_slow_disk_drops_packets_for_itself_only() {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;

    let r = Root::new(
        "slow-disk",
        &["auth-ini", "rtmp", "rtmp-app", "flv-recorder"],
    );
    // fier may ask for the recording (record_requires_permission is on by default).
    r.write("users/fier.ini", "[DEFAULT]\npassword=123\nrecord = yes\n");
    r.write("mods/rtmp.toml", "grace_ms = 200\n");
    r.write("mods/host.toml", "[hub]\nsink_queue_packets = 8\n");
    // No fdatasync: a pipe has none.
    r.write("mods/flv-recorder.toml", "sync_interval_ms = 0\n");
    let fifo = r.path().join("recordings/fier/cam.flv");
    std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo");
    // The test's read end keeps the pipe (and its size) while the recorder opens and writes it.
    let mut disk = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    // SAFETY: fcntl on a descriptor we own.
    let size = unsafe { libc::fcntl(disk.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(size >= 4096, "F_SETPIPE_SZ: {size}");

    let tags = generated_tags(r.path(), 6);
    let sent = video_of(&tags);
    let host = Host::start(&r, &["rtmp"], &[]);
    let addr = host.addr("rtmp");
    let frames = Arc::new(AtomicUsize::new(0));
    let player = play_until_unpublished(addr, "cam", frames.clone());
    wait_for(&host, "playing stream=fier/cam");
    let (publisher, _) = publish_paced(addr, "cam", "append", tags);

    wait_for(&host, "recording stream=fier/cam mode=Append");
    wait_for(
        &host,
        "sink is too slow; dropping packets for it (live viewers are not affected)",
    );
    assert!(
        grows(&frames, 10, WAIT),
        "the live stream stalled with its recorder"
    );
    // The disk is fast again: read the pipe until the publication is over.
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let reader = thread::spawn(move || {
        let mut file = Vec::new();
        let mut b = vec![0u8; 65536];
        loop {
            match disk.read(&mut b) {
                Ok(n) if n > 0 => file.extend_from_slice(&b[..n]),
                _ if st.load(Ordering::Relaxed) => break,
                _ => thread::sleep(Duration::from_millis(10)),
            }
        }
        file
    });
    new_player_gets_a_decodable_start(addr, "cam", &sent);
    publisher.join().expect("publisher");
    got_every_frame(player.join().expect("player"), &sent, "the live player");
    wait_for(&host, "sink finished after dropping packets");
    // The recorder writes what was queued, then fails to patch the header (a pipe cannot
    // seek): then everything it will write is in the pipe.
    wait_for(&host, "sink failed to finish");
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let file = reader.join().unwrap();

    // The recording: the frames sent, in order, with gaps that each end at a keyframe.
    let mut d = FlvDemuxer::new(16 << 20);
    d.push(&file);
    let mut recorded = Vec::new();
    while let Some(t) = d.next_tag().expect("the recording is FLV") {
        if t.tag.tag_type as u8 == msg_type::VIDEO && is_coded_frame(&t.tag.data) {
            recorded.push(t.tag.data.to_vec());
        }
    }
    assert!(!recorded.is_empty(), "nothing was recorded");
    let mut at: Option<usize> = None;
    let mut gaps = 0;
    for (n, v) in recorded.iter().enumerate() {
        let from = at.map_or(0, |a| a + 1);
        let i = from
            + sent[from..]
                .iter()
                .position(|s| s == v)
                .unwrap_or_else(|| panic!("recorded frame {n} is not a frame sent after the last"));
        if at.is_none() || i != from {
            assert!(
                is_keyframe(&sent[i]),
                "recorded frame {n} resumes on an inter frame"
            );
            if at.is_some() {
                gaps += 1;
            }
        }
        at = Some(i);
    }
    let coded = sent.iter().filter(|v| is_coded_frame(v)).count();
    eprintln!(
        "recorded {} of {coded} frames, {gaps} gap(s); the live player got all",
        recorded.len()
    );
    assert!(gaps >= 1, "no packets were dropped for the recorder");
    assert!(recorded.len() < coded);
}

/// RTMP `handshake_timeout_ms` and `idle_timeout_ms` (1 s and 2 s here): a client that sends
/// half a handshake and stops, and one that completes it and then sends nothing (it is pinged
/// and does not answer), are each closed and logged with the timeout, while a player that
/// answers the pings stays for the whole live stream (longer than the idle timeout) and gets
/// every video message as sent, and a new player starts on a keyframe.
#[test]
fn rtmp_handshake_and_idle_timeouts_close_only_the_silent_clients() {
    let r = rtmp_root(
        "rtmp-timeouts",
        "handshake_timeout_ms = 1000\nidle_timeout_ms = 2000\ngrace_ms = 200\n",
    );
    let live = LiveCam::start(&r, 5);
    let (host, addr) = (&live.host, live.addr);

    // C0 and part of C1, then nothing.
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(&[3u8; 100]).unwrap();
    // A complete handshake, then nothing.
    let mut silent = RtmpClient::new(addr);

    let got = bytes_until_close(&mut half, WAIT).expect("half a handshake stays open");
    assert!(got.len() <= 1 + 1536 + 1536, "{} bytes", got.len());
    wait_for(host, "no complete handshake within 1000 ms");
    let mut pinged = false;
    while let Some(m) = silent.next() {
        pinged |= matches!(
            ControlMessage::parse(m.type_id, &m.payload),
            Ok(ControlMessage::UserControl(UserControlEvent::PingRequest(
                _
            )))
        );
    }
    assert!(silent.closed());
    assert!(pinged, "the silent client was not pinged first");
    wait_for(host, "nothing received for 2000 ms");

    live.check_unharmed();
}

/// The failed-login guard's table (`auth_guard_addresses`, 3 here; `auth_failures_per_ip` 2,
/// applied to loopback): three addresses of 127.0.0.0/8 each get their 2 wrong guesses to the
/// authenticator and the third refused by the guard; a fourth address, with the table full, is
/// not limited (each of its guesses reaches the authenticator) and the host says the table is
/// full. The checked stream flows throughout and a right password still publishes.
#[test]
fn the_failed_login_table_is_bounded_and_says_so_while_a_stream_flows() {
    let r = root(
        "auth-table",
        "[limits]\nauth_guard_addresses = 3\nauth_failures_per_ip = 2\n\
         auth_limit_loopback = true\nauth_ban_ms = 60000\n",
        "grace_ms = 200\n",
    );
    let host = Host::start(&r, &["fstream"], &[]);
    let addr = host.addr("fstream");
    let flow = CheckedFlow::start(&host, "live");
    assert!(
        flow.flows(100_000, WAIT),
        "the checked stream does not flow"
    );

    let guess = |from: [u8; 4], n: usize| {
        let mut s = fstream_e2e::connect_from(from.into(), addr);
        s.write_all(&fstream_preamble(&format!(
            "broadcast,user=fier,user_password=wrong{n},channel=g{n}"
        )))
        .unwrap();
        assert!(eof_within(&mut s, WAIT), "a wrong password stayed open");
    };
    let asked = |host: &Host| host.log().matches("reason=auth-ini:").count();
    let guarded = |host: &Host| {
        host.log()
            .matches("reason=\"too many failed authentications from this address\"")
            .count()
    };
    for (k, last) in [2u8, 3, 4].into_iter().enumerate() {
        for n in 0..3 {
            guess([127, 0, 0, last], n);
        }
        let deadline = Instant::now() + WAIT;
        while guarded(&host) < k + 1 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(asked(&host), 2 * (k + 1), "127.0.0.{last}: {}", host.log());
        assert_eq!(guarded(&host), k + 1, "127.0.0.{last}: {}", host.log());
        wait_for(
            &host,
            &format!("refusing this address for a while address=127.0.0.{last} "),
        );
    }
    for n in 0..3 {
        guess([127, 0, 0, 5], n);
    }
    let deadline = Instant::now() + WAIT;
    while asked(&host) < 9 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        asked(&host),
        9,
        "an address past the table's bound was limited"
    );
    assert_eq!(guarded(&host), 3);
    wait_for(
        &host,
        "the failed-login table is full (auth_guard_addresses)",
    );
    assert!(flow.flows(100_000, WAIT), "the checked stream stalled");

    // A right password from a new address still publishes, and the checked stream is whole.
    let mut s = fstream_e2e::connect_from([127, 0, 0, 9].into(), addr);
    s.write_all(&fstream_preamble(
        "broadcast,user=fier,user_password=123,channel=after",
    ))
    .unwrap();
    wait_for(&host, "broadcast started stream=fier/after");
    flow.finish();
}

/// `auth_timeout_ms` (300 ms here) while a stream flows: auth-ini answers for `fier`, and a
/// test authenticator asked after it sleeps 3 s for user `u`. A broadcast as `u` is refused
/// once the timeout passes, long before the authenticator returns, with the reason logged; the
/// checked stream flows throughout, and `fier` still publishes a new stream right after.
#[test]
fn a_slow_authenticator_times_out_while_a_stream_flows() {
    let r = Root::new("auth-timeout", &["auth-ini", "test-auth", "fstream"]);
    r.user("fier", "123");
    r.write(
        "mods/test-auth.toml",
        "user = \"u\"\npassword = \"p\"\nsleep_ms = 3000\n",
    );
    r.write("mods/host.toml", "auth_timeout_ms = 300\n");
    r.write("mods/fstream.toml", "grace_ms = 200\n");
    let host = Host::start(&r, &["fstream"], &[]);
    let addr = host.addr("fstream");
    let flow = CheckedFlow::start(&host, "live");
    assert!(
        flow.flows(100_000, WAIT),
        "the checked stream does not flow"
    );

    let t0 = Instant::now();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(&fstream_preamble(
        "broadcast,user=u,user_password=p,channel=slow",
    ))
    .unwrap();
    assert!(
        eof_within(&mut slow, WAIT),
        "the timed-out broadcaster stayed open"
    );
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "refused only after the authenticator returned: {:?}",
        t0.elapsed()
    );
    wait_for(&host, "timed out");
    assert!(!host.log().contains("broadcast started stream=u/slow"));
    assert!(flow.flows(100_000, WAIT), "the checked stream stalled");

    let mut next = TcpStream::connect(addr).unwrap();
    next.write_all(&fstream_preamble(
        "broadcast,user=fier,user_password=123,channel=next",
    ))
    .unwrap();
    wait_for(&host, "broadcast started stream=fier/next");
    flow.finish();
}
