//! A flood of wrong-password attempts, no login needed, against a user whose password is an
//! argon2 hash (`fstream-host user add`): each check costs about 19 MiB and a core for a
//! while, so unbounded they exhaust the server's memory. The host bounds authenticator calls
//! (`auth_concurrency`, `auth_queue`): every attempt is refused, a live stream keeps flowing,
//! and the server's peak memory stays under a stated bound.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use fstream_e2e::{bin, fstream_preamble, Host, LiveFlow, Root};

const ATTEMPTS: usize = 2_000;
/// The bound on the server's peak resident memory during the flood, with `auth_concurrency = 2`:
/// two checks of 19 MiB and the server's own ~20 MB, with room to spare. Unbounded, 2,000
/// checks were up to 512 blocking threads of 19 MiB each; and before large allocations got
/// mappings of their own, heap fragmentation alone took the server to 600 MB.
const PEAK_RSS_BOUND_MB: u64 = 150;

fn raise_fd_limit(n: u64) {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < n {
            l.rlim_cur = n.min(l.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

fn peak_rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn add_hashed_user(root: &Root, name: &str, password: &str) {
    let mut c = Command::new(bin("fstream-host"))
        .arg("--root")
        .arg(root.path())
        .args(["user", "add", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fstream-host user add");
    c.stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ini = std::fs::read_to_string(root.path().join(format!("users/{name}.ini"))).unwrap();
    assert!(ini.contains("$argon2id$"), "{ini}");
}

#[test]
fn a_flood_of_wrong_passwords_is_refused_with_bounded_memory_while_a_stream_flows() {
    raise_fd_limit(16_384);
    let root = Root::new("auth-flood", &["auth-ini", "fstream"]);
    root.user("fier", "123");
    add_hashed_user(&root, "hashed", "righthorsebattery");
    root.write(
        "mods/host.toml",
        "[limits]\nmax_connections = 10000\nmax_connections_per_ip = 10000\nauth_concurrency = 2\n",
    );
    let host = Host::start(&root, &["fstream"], &[]);
    let pid = host.child.id();
    let addr = host.addr("fstream");
    let flow = LiveFlow::start(addr, "fier", "123", "live");
    assert!(flow.flows(64 * 1024, Duration::from_secs(10)), "no stream");
    let base = peak_rss_mb(pid);

    let t = Instant::now();
    let mut socks = Vec::with_capacity(ATTEMPTS);
    for _ in 0..ATTEMPTS {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(&fstream_preamble(
            "broadcast,user=hashed,user_password=wrong",
        ))
        .expect("preamble");
        socks.push(s);
    }
    eprintln!("{ATTEMPTS} attempts sent in {:?}", t.elapsed());
    // Meanwhile the stream flows.
    assert!(
        flow.flows(64 * 1024, Duration::from_secs(10)),
        "the stream stalled under the flood"
    );
    let mut refused = 0;
    for mut s in socks {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => refused += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => refused += 1,
            Ok(n) => panic!("an attempt got {n} bytes"),
            Err(e) => panic!("an attempt was not answered: {e}"),
        }
    }
    let peak = peak_rss_mb(pid);
    let log = host.log();
    let busy = log.matches("server busy").count() + log.matches("waiting; refused").count();
    let denied = log.matches("authentication denied").count();
    eprintln!(
        "refused {refused}/{ATTEMPTS} in {:?}; denied by the authenticator or as busy: {denied} \
         (busy {busy}); peak RSS {base} MB before, {peak} MB after",
        t.elapsed()
    );
    assert_eq!(refused, ATTEMPTS);
    assert!(
        flow.flows(64 * 1024, Duration::from_secs(10)),
        "the stream stopped after the flood"
    );
    assert!(
        peak < PEAK_RSS_BOUND_MB,
        "peak RSS {peak} MB (bound {PEAK_RSS_BOUND_MB} MB)"
    );
    // The right password still works afterwards.
    let mut ok = TcpStream::connect(addr).unwrap();
    ok.write_all(&fstream_preamble(
        "broadcast,user=hashed,user_password=righthorsebattery,channel=after",
    ))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !host.log().contains("broadcast started stream=hashed/after") {
        assert!(Instant::now() < deadline, "the right password was refused");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The failed-login guard counts attempts when they start: 200 guesses sent at once from one
/// address reach the authenticator at most `auth_failures_per_ip` times.
#[test]
fn parallel_guesses_from_one_address_reach_the_authenticator_only_its_allowance() {
    raise_fd_limit(4_096);
    let root = Root::new("auth-parallel", &["auth-ini", "fstream"]);
    add_hashed_user(&root, "hashed", "righthorsebattery");
    root.write(
        "mods/host.toml",
        // A long authentication timeout: on a loaded machine (debug argon2 checks of a few
        // seconds) no attempt times out, so each one counts against the allowance.
        "auth_timeout_ms = 120000\n[limits]\nmax_connections_per_ip = 10000\n\
         auth_concurrency = 2\nauth_failures_per_ip = 10\nauth_limit_loopback = true\n",
    );
    let host = Host::start(&root, &["fstream"], &[]);
    let addr = host.addr("fstream");
    let socks: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(&fstream_preamble(
                "broadcast,user=hashed,user_password=wrong",
            ))
            .expect("preamble");
            s
        })
        .collect();
    for mut s in socks {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 8];
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    }
    // The host's log lines are read from its stderr by a thread: let them all arrive.
    let deadline = Instant::now() + Duration::from_secs(10);
    while host.log().matches("from this address").count() < 190 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = host.log();
    let asked = log.matches("reason=auth-ini:").count();
    let guarded = log.matches("from this address").count();
    eprintln!("asked the authenticator {asked} times; refused by the guard {guarded} times");
    assert!(asked <= 10, "{asked} guesses reached the authenticator");
    assert!(guarded >= 190, "{guarded}");
}
