//! Runs the real `fstream` binary against tiny in-test servers on 127.0.0.1 ephemeral ports.
//!
//! Every wait is bounded: a server that sees no client, or a client that does not exit, fails the
//! test instead of hanging it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fstream_wire::{PreambleParser, Request};
use rand::RngCore;

/// Longest any single step may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// What the test server saw before its handler ran.
struct Received {
    /// Every byte of the preamble as sent, prelude included.
    raw: Vec<u8>,
    action: String,
    /// Stream bytes that arrived with the preamble.
    leftover: Vec<u8>,
}

/// Accepts one connection on 127.0.0.1:0, reads its preamble with fstream-wire, then runs
/// `handler`. Returns the address and a receiver for the handler's result.
fn serve<T: Send + 'static>(
    handler: impl FnOnce(TcpStream, Received) -> T + Send + 'static,
) -> (String, mpsc::Receiver<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let sock = accept_within(&listener, LIMIT).expect("the client never connected");
        sock.set_read_timeout(Some(LIMIT)).unwrap();
        let received = read_preamble(&sock);
        let _ = tx.send(handler(sock, received));
    });
    (addr, rx)
}

fn accept_within(listener: &TcpListener, limit: Duration) -> Option<TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match listener.accept() {
            Ok((sock, _)) => {
                sock.set_nonblocking(false).unwrap();
                return Some(sock);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    None
}

fn read_preamble(mut sock: &TcpStream) -> Received {
    let mut parser = PreambleParser::default();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = sock.read(&mut buf).expect("reading the preamble");
        assert!(n > 0, "the client closed before a whole preamble");
        seen.extend_from_slice(&buf[..n]);
        if let Some(p) = parser.push(&buf[..n]).expect("a valid preamble") {
            seen.truncate(seen.len() - p.leftover.len());
            return Received {
                raw: seen,
                action: p.action,
                leftover: p.leftover,
            };
        }
    }
}

/// The client command, with any `fserv_arg_*` of the test's own environment removed.
fn client(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fstream"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("fserv_arg_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

struct Outcome {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

/// Waits for the child to exit, killing it and failing the test after `LIMIT`.
fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the client did not exit within {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Collects a pipe on a thread, so a full pipe never blocks the child.
fn collect(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipe.read_to_end(&mut v);
        v
    })
}

/// Runs the client to completion, feeding `stdin` (then closing it) if given.
fn run(mut cmd: Command, stdin: Option<Vec<u8>>) -> Outcome {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap();
    let feeder = stdin.map(|data| {
        let mut pipe = child.stdin.take().unwrap();
        // An error here means the client quit early; the exit status tells the story.
        thread::spawn(move || drop(pipe.write_all(&data)))
    });
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    let status = wait(&mut child);
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    Outcome {
        status,
        stdout: out.join().unwrap(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

fn result<T>(rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(LIMIT)
        .expect("the test server failed or timed out")
}

#[test]
fn broadcast_sends_stdin_byte_identical_with_environment_merged() {
    let data = random_bytes(1 << 20);
    let (addr, rx) = serve(|mut sock, got| {
        let mut stream = got.leftover.clone();
        sock.read_to_end(&mut stream).unwrap();
        (got, stream)
    });
    let mut cmd = client(&[&addr, "broadcast,channel=cli,bufsize=188"]);
    cmd.env("fserv_arg_user", "fier")
        .env("fserv_arg_user_password", "123")
        .env("fserv_arg_channel", "env");
    let out = run(cmd, Some(data.clone()));
    assert!(out.status.success(), "{:?} {}", out.status, out.stderr);
    let (got, stream) = result(&rx);
    // Environment first (sorted), then the command line, which therefore wins.
    assert_eq!(
        got.action,
        "broadcast,channel=env,user=fier,user_password=123,channel=cli,bufsize=188"
    );
    assert_eq!(&got.raw[..2], b"\n\n");
    match Request::parse(&got.action).unwrap().request {
        Request::Broadcast {
            channel, bufsize, ..
        } => assert_eq!((channel.as_str(), bufsize), ("cli", 188)),
        other => panic!("{other:?}"),
    }
    assert!(
        stream.len() == data.len() && stream == data,
        "stream differs"
    );
}

#[test]
fn broadcast_forwards_bytes_as_they_arrive() {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (addr, rx) = serve(move |mut sock, got| {
        let mut first = got.leftover;
        let mut buf = [0u8; 64];
        while first.len() < 5 {
            let n = sock.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed early");
            first.extend_from_slice(&buf[..n]);
        }
        ready_tx.send(first).unwrap();
        let mut rest = Vec::new();
        sock.read_to_end(&mut rest).unwrap();
        rest
    });
    let mut cmd = client(&[&addr, "broadcast,user=u,token=t"]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello").unwrap();
    stdin.flush().unwrap();
    // Stdin stays open: the bytes must go out without waiting for more input or EOF.
    let first = ready_rx
        .recv_timeout(LIMIT)
        .expect("the first bytes never arrived");
    assert_eq!(first, b"hello");
    stdin.write_all(b" world").unwrap();
    drop(stdin);
    let status = wait(&mut child);
    assert!(status.success(), "{status:?}");
    assert_eq!(result(&rx), b" world");
}

#[test]
fn broadcast_refusal_ends_the_client_even_while_stdin_is_idle() {
    let (addr, rx) = serve(|sock, got| {
        drop(sock);
        got.action
    });
    let mut cmd = client(&[&addr, "broadcast,user=fier,user-password=wrong"]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Hold stdin open and silent, as an encoder that has not produced output yet.
    let _stdin = child.stdin.take().unwrap();
    let err = collect(child.stderr.take().unwrap());
    let status = wait(&mut child);
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("closed the connection before any data"),
        "{stderr}"
    );
    for reason in [
        "unknown user",
        "user_password",
        "expired token",
        "channel_password",
        "malformed",
    ] {
        assert!(stderr.contains(reason), "missing {reason:?} in {stderr}");
    }
    // Old dash keys are sent as given; the server normalises them.
    assert_eq!(result(&rx), "broadcast,user=fier,user-password=wrong");
}

#[test]
fn watch_writes_what_the_server_sends() {
    let data = random_bytes(1 << 20);
    let sent = data.clone();
    let (addr, rx) = serve(move |mut sock, got| {
        // Uneven pieces, as a live stream arrives.
        for piece in sent.chunks(7919) {
            sock.write_all(piece).unwrap();
        }
        got.action
    });
    let mut cmd = client(&[&addr, "watch,channel=c"]);
    cmd.env("fserv_arg_user", "fier");
    let out = run(cmd, None);
    assert!(out.status.success(), "{:?} {}", out.status, out.stderr);
    assert_eq!(result(&rx), "watch,user=fier,channel=c");
    assert!(
        out.stdout == data,
        "stdout differs ({} bytes)",
        out.stdout.len()
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn watch_refusal_says_closed_before_any_data() {
    let (addr, rx) = serve(|sock, _| drop(sock));
    let out = run(
        client(&[&addr, "watch,user=nobody,channel_password=x"]),
        None,
    );
    result(&rx);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("closed the connection before any data"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("channel_password"), "{}", out.stderr);
}

#[test]
fn watch_ends_quietly_when_stdout_is_closed() {
    let (addr, rx) = serve(|mut sock, _| {
        // Keep sending (bounded) until the client goes away.
        let chunk = vec![0x47u8; 64 * 1024];
        for _ in 0..4096 {
            if sock.write_all(&chunk).is_err() {
                return true;
            }
        }
        false
    });
    let mut child = client(&[&addr, "watch,user=fier"]).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1000];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(first, [0x47u8; 1000]);
    drop(stdout); // like `| head -c 1000`, or a player that quit
    let err = collect(child.stderr.take().unwrap());
    let status = wait(&mut child);
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
    assert!(result(&rx), "the server never saw the client leave");
}

#[test]
fn token_prints_the_token_line() {
    let (addr, rx) = serve(|mut sock, got| {
        sock.write_all(format!("{TOKEN}\n").as_bytes()).unwrap();
        got
    });
    let out = run(
        client(&[
            "--prelude",
            "none",
            &addr,
            "token,user=fier,user_password=123",
        ]),
        None,
    );
    assert!(out.status.success(), "{:?} {}", out.status, out.stderr);
    assert_eq!(out.stdout, format!("{TOKEN}\n").as_bytes());
    let got = result(&rx);
    assert_eq!(got.action, "token,user=fier,user_password=123");
    // No prelude: the frame starts with LENGTH.
    let mut expected = (got.action.len() as u32).to_be_bytes().to_vec();
    expected.push(0);
    expected.extend_from_slice(got.action.as_bytes());
    assert_eq!(got.raw, expected);
}

#[test]
fn token_refusal_is_an_error() {
    let (addr, rx) = serve(|sock, _| drop(sock));
    let out = run(client(&[&addr, "token,user=fier,user_password=bad"]), None);
    result(&rx);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("closed the connection before any data"),
        "{}",
        out.stderr
    );
}

#[test]
fn http_prelude_sends_a_request_head() {
    let (addr, rx) = serve(|mut sock, got| {
        sock.write_all(b"x").unwrap();
        got.raw
    });
    let out = run(
        client(&["--prelude", "http", &addr, "watch,user=fier"]),
        None,
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, b"x");
    let head = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let raw = result(&rx);
    assert!(raw.starts_with(head.as_bytes()), "{raw:?}");
    assert_eq!(&raw[head.len()..head.len() + 5], b"\0\0\0\x0f\0");
}

#[test]
fn connect_failure_names_the_address() {
    let addr: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }; // closed again: nothing listens there now
    let out = run(client(&[&addr.to_string(), "watch,user=fier"]), None);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert!(out.stderr.contains(&addr.to_string()), "{}", out.stderr);
    assert!(out.stderr.contains("refused"), "{}", out.stderr);
}

/// Arguments, extra environment, and a phrase the error must contain.
type UsageCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn usage_errors_exit_2_without_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cases: [UsageCase; 7] = [
        (&[], &[], "Usage"),
        (&[&addr, "watch,oops"], &[], "has no '='"),
        (&[&addr, "play,user=a"], &[], "unknown action"),
        (&[&addr, "watch"], &[], "watch needs user"),
        (&[&addr, "broadcast,user=a"], &[], "user_password or token"),
        (&["localhost", "watch,user=a"], &[], "HOST:PORT"),
        (
            &[&addr, "watch"],
            &[("fserv_arg_user", "a,b")],
            "contains ','",
        ),
    ];
    for (args, env, needle) in cases {
        let mut cmd = client(args);
        cmd.envs(env.iter().copied());
        let out = run(cmd, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == io::ErrorKind::WouldBlock),
        "a usage error still connected"
    );
}

#[test]
fn help_documents_exit_codes_and_version_prints() {
    let out = run(client(&["--help"]), None);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Exit status",
        "fserv_arg_",
        "--prelude",
        "command line wins",
        "refused",
    ] {
        assert!(help.contains(needle), "missing {needle:?} in help");
    }
    let out = run(client(&["--version"]), None);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("fstream "));
}

/// How a test server refuses a broadcast.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// Close right after the preamble, unread bytes and all.
    AtOnce,
    /// Read what the client sends for a moment (as while authenticating), then close.
    AfterReading(Duration),
}

/// Makes closing `sock` send a reset, as fstream-host does when it refuses (SO_LINGER 0).
fn reset_on_close(sock: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a valid option value of the given size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

/// A server that refuses one broadcast as `how` says, with a reset as fstream-host does;
/// returns the bytes it read.
fn refusing_server(how: Refusal) -> (String, mpsc::Receiver<Vec<u8>>) {
    refusing_server_closing(how, true)
}

/// Like [`refusing_server`]; `reset: false` refuses with an ordinary close, as the original
/// fstream server does.
fn refusing_server_closing(how: Refusal, reset: bool) -> (String, mpsc::Receiver<Vec<u8>>) {
    serve(move |mut sock, got| {
        let mut seen = got.leftover;
        if let Refusal::AfterReading(t) = how {
            let until = Instant::now() + t;
            let mut buf = [0u8; 4096];
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                sock.set_read_timeout(Some(left)).unwrap();
                match sock.read(&mut buf) {
                    // The client ended its side before the verdict: nothing more to read.
                    Ok(0) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                    Err(_) => break,
                }
            }
        }
        if reset {
            reset_on_close(&sock);
        }
        drop(sock);
        seen
    })
}

#[test]
fn broadcast_refusals_exit_1_with_empty_or_short_input_every_time() {
    let inputs: [Option<&[u8]>; 3] = [None, Some(b""), Some(b"abc")];
    let hows = [
        Refusal::AtOnce,
        Refusal::AfterReading(Duration::from_millis(30)),
        Refusal::AfterReading(Duration::from_millis(100)),
    ];
    for i in 0..20 {
        for input in inputs {
            for how in hows {
                let (addr, rx) = refusing_server(how);
                let cmd = client(&[&addr, "broadcast,user=fier,user_password=wrong"]);
                // None: stdin is /dev/null; Some: a pipe that ends after these bytes.
                let out = run(cmd, input.map(<[u8]>::to_vec));
                result(&rx);
                assert_eq!(
                    out.status.code(),
                    Some(1),
                    "run {i}, input {input:?}, {how:?}: {}",
                    out.stderr
                );
                assert!(out.stderr.contains("refused"), "{}", out.stderr);
            }
        }
    }
}

/// A server that refuses with an ordinary close: `--verdict-wait` keeps the client's side open
/// long enough to tell the refusal from a short broadcast's end.
#[test]
fn orderly_close_refusals_exit_1_with_a_verdict_wait() {
    let inputs: [Option<&[u8]>; 3] = [None, Some(b""), Some(b"abc")];
    let hows = [
        Refusal::AtOnce,
        Refusal::AfterReading(Duration::from_millis(30)),
    ];
    for input in inputs {
        for how in hows {
            let (addr, rx) = refusing_server_closing(how, false);
            let cmd = client(&[
                "--verdict-wait",
                "0.5",
                &addr,
                "broadcast,user=fier,user_password=wrong",
            ]);
            let out = run(cmd, input.map(<[u8]>::to_vec));
            result(&rx);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{input:?}, {how:?}: {}",
                out.stderr
            );
            assert!(out.stderr.contains("refused"), "{}", out.stderr);
        }
    }
}

#[test]
fn accepted_short_broadcasts_exit_0_at_once() {
    for input in [None, Some(b"".to_vec()), Some(b"hello".to_vec())] {
        let (addr, rx) = serve(|mut sock, got| {
            let mut stream = got.leftover;
            sock.read_to_end(&mut stream).unwrap();
            stream
        });
        let t = Instant::now();
        let out = run(
            client(&[&addr, "broadcast,user=u,user_password=p"]),
            input.clone(),
        );
        assert_eq!(out.status.code(), Some(0), "{input:?}: {}", out.stderr);
        assert_eq!(result(&rx), input.unwrap_or_default());
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
}

#[test]
fn a_refusal_later_than_the_input_but_within_the_verdict_wait_exits_1() {
    // An authenticator that takes a while: the refusal comes 1.5 s after an empty input ended.
    let (addr, rx) =
        refusing_server_closing(Refusal::AfterReading(Duration::from_millis(1500)), false);
    let t = Instant::now();
    let out = run(
        client(&["--verdict-wait", "3", &addr, "broadcast,user=u,token=t"]),
        Some(Vec::new()),
    );
    result(&rx);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the refusal was not reported at once"
    );
}

#[test]
fn accepted_short_broadcasts_exit_0_after_the_verdict_wait() {
    for input in [None, Some(b"".to_vec()), Some(b"hello".to_vec())] {
        // The server accepts: it reads to EOF, then closes.
        let (addr, rx) = serve(|mut sock, got| {
            let mut stream = got.leftover;
            let t = Instant::now();
            sock.read_to_end(&mut stream).unwrap();
            (stream, t.elapsed())
        });
        let out = run(
            client(&[
                "--verdict-wait",
                "0.5",
                &addr,
                "broadcast,user=u,user_password=p",
            ]),
            input.clone(),
        );
        assert_eq!(out.status.code(), Some(0), "{input:?}: {}", out.stderr);
        assert_eq!(out.stderr, "");
        let (stream, held) = result(&rx);
        assert_eq!(stream, input.unwrap_or_default());
        // The EOF waited for the verdict.
        assert!(held >= Duration::from_millis(400), "{held:?}");
    }
}

#[test]
fn a_bad_verdict_wait_is_a_usage_error() {
    for bad in ["-1", "x", "1e9"] {
        let out = run(
            client(&[
                "--verdict-wait",
                bad,
                "127.0.0.1:1",
                "broadcast,user=u,token=t",
            ]),
            None,
        );
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", out.stderr);
    }
}
