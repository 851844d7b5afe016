//! SIGHUP reloads users, settings and main.mods without dropping a live stream; a bad new
//! configuration is refused with a log line and the old one stays (issue 7).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use fstream_e2e::{bin, Host, Root};

fn ask(addr: SocketAddr, line: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut answer = String::new();
    r.read_line(&mut answer).unwrap_or(0);
    answer.trim_end().to_string()
}

fn preamble(action: &str) -> Vec<u8> {
    let mut v = b"\n\n".to_vec();
    v.extend_from_slice(&(action.len() as u32).to_be_bytes());
    v.push(0);
    v.extend_from_slice(action.as_bytes());
    v
}

#[test]
fn sighup_reloads_plugins_and_settings_without_dropping_a_live_stream() {
    let root = Root::new("reload", &["test-auth", "auth-ini", "fstream", "test-echo"]);
    root.user("fier", "123");
    root.write("mods/test-auth.toml", "user = \"u\"\npassword = \"p\"\n");
    let host = Host::start(&root, &["fstream", "echo"], &[]);
    let (fs, echo) = (host.addr("fstream"), host.addr("echo"));

    // A live stream: a watcher, then a broadcaster that keeps sending.
    let received = Arc::new(AtomicUsize::new(0));
    let mut w = TcpStream::connect(fs).unwrap();
    w.write_all(&preamble("watch,user=fier,channel=live"))
        .unwrap();
    w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let rx = received.clone();
    let watcher = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = w.read(&mut buf) {
            if n == 0 {
                break;
            }
            rx.fetch_add(n, Ordering::Relaxed);
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut b = Command::new(bin("fstream"))
        .arg(fs.to_string())
        .arg("broadcast,user=fier,user_password=123,channel=live")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = b.stdin.take().unwrap();
    let st = stop.clone();
    let feeder = std::thread::spawn(move || {
        while !st.load(Ordering::Relaxed) {
            if stdin.write_all(&[7u8; 4096]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let wait_bytes = |more_than: usize| {
        for _ in 0..500 {
            if received.load(Ordering::Relaxed) > more_than {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    };
    assert!(
        wait_bytes(100_000),
        "the live stream flows before the reload"
    );
    assert_eq!(ask(echo, "AUTH u p"), "AUTH allowed");

    // New settings for a plugin, a new plugin, a new user.
    root.write("mods/test-auth.toml", "user = \"u\"\npassword = \"q\"\n");
    root.write("mods/auth-toml.toml", "[users]\nalice = \"w\"\n");
    root.write(
        "mods/main.mods",
        "test-auth\nauth-toml\nauth-ini\nfstream\ntest-echo\n",
    );
    root.user("ann", "abc");
    host.signal(libc::SIGHUP);
    assert!(
        host.wait_log("configuration reloaded", Duration::from_secs(10)),
        "{}",
        host.log()
    );
    let before = received.load(Ordering::Relaxed);
    assert_eq!(ask(echo, "AUTH u q"), "AUTH allowed");
    assert_eq!(ask(echo, "AUTH u p"), "AUTH denied");
    assert_eq!(ask(echo, "AUTH alice w"), "AUTH allowed");
    assert_eq!(ask(echo, "AUTH ann abc"), "AUTH allowed");
    assert!(
        wait_bytes(before + 100_000),
        "the live stream goes on across the reload"
    );

    // A bad configuration is refused; the running one stays.
    root.write("mods/main.mods", "test-auth\nnosuch\nfstream\ntest-echo\n");
    host.signal(libc::SIGHUP);
    assert!(
        host.wait_log("reload refused", Duration::from_secs(10)),
        "{}",
        host.log()
    );
    assert!(host.log().contains("libnosuch.so is missing"));
    assert_eq!(ask(echo, "AUTH alice w"), "AUTH allowed");
    let before = received.load(Ordering::Relaxed);
    assert!(
        wait_bytes(before + 50_000),
        "the live stream goes on after a refused reload"
    );

    stop.store(true, Ordering::Relaxed);
    let _ = feeder.join();
    let _ = b.wait();
    let _ = watcher.join();
}
