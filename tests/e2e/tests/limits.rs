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
    let flow = LiveFlow::start(addr, "fier", "123", "c");
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

    // In all.
    let r = root("conn-limit-total", "[limits]\nmax_connections = 3\n", "");
    let host = Host::start(&r, &["fstream"], &[]);
    let addr = host.addr("fstream");
    let flow = LiveFlow::start(addr, "fier", "123", "c");
    assert!(flow.flows(100_000, Duration::from_secs(10)));
    let _one = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(addr).unwrap();
    assert!(eof_within(&mut extra, Duration::from_secs(5)));
    assert!(host.wait_log("max_connections", Duration::from_secs(5)));
    assert!(flow.flows(100_000, Duration::from_secs(10)));
}

#[test]
fn streams_per_user_are_bounded() {
    let r = root("streams-limit", "[limits]\nmax_streams_per_user = 1\n", "");
    let host = Host::start(&r, &["fstream"], &[]);
    let addr = host.addr("fstream");
    let flow = LiveFlow::start(addr, "fier", "123", "one");
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
