//! The three sessions: broadcast, watch, token. Blocking I/O, no buffering delay.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{finish, Fail};

/// Size of one read from stdin or the socket; whatever a read returns is written at once.
const CHUNK: usize = 64 * 1024;

/// fstream-host refuses a broadcast by resetting the connection, which the client tells from the
/// orderly close that ends an accepted one, so it needs no wait by default. A server that
/// refuses with an ordinary close (the original fstream server) cannot be told from a short
/// broadcast's end unless the client holds its side open until the verdict must be in:
/// `--verdict-wait` (above that server's authentication time).
pub const DEFAULT_VERDICT_WAIT: Duration = Duration::ZERO;

/// After stdin ends, how long to wait for the server to close its side before leaving anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(60);

/// How long to wait for the token line.
const TOKEN_WAIT: Duration = Duration::from_secs(30);

/// Longest token reply read; a real one is 33 bytes.
const MAX_TOKEN_REPLY: u64 = 1024;

const CLOSED: &str = "the server closed the connection before any data";

const SEE_LOG: &str = "The server's log names the reason.";

const BROADCAST_REASONS: &str = "\
Likely reasons:
  - unknown user, or wrong user_password
  - bad, used or expired token
  - the channel is live and the server rejects a second broadcaster
  - wrong channel_password
  - malformed request";

const WATCH_REASONS: &str = "\
Likely reasons:
  - nobody broadcast on that user and channel in time (the server waits a while, then closes)
  - unknown user
  - wrong channel_password
  - malformed request";

const TOKEN_REASONS: &str = "\
Likely reasons:
  - unknown user, or wrong user_password
  - the server does not issue tokens
  - malformed request";

fn refused(reasons: &str) -> Fail {
    Fail::Closed(format!("{CLOSED}.\n{reasons}\n{SEE_LOG}"))
}

fn send_preamble(sock: &TcpStream, preamble: &[u8]) -> Result<(), Fail> {
    let mut sock = sock;
    sock.write_all(preamble)
        .map_err(|e| Fail::Closed(format!("could not send the request: {e}")))
}

/// Reads from `sock` until EOF (`Ok`) or an error, throwing the bytes away.
fn drain(mut sock: &TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Describes the server closing a broadcast before the client ended it. Within `verdict_wait`
/// of connecting (or before any byte went out) that is a refusal; later, a cut-off.
fn broadcast_closed(
    sent: u64,
    elapsed: Duration,
    verdict_wait: Duration,
    cause: Option<io::Error>,
) -> Fail {
    let cause = cause.map(|e| format!(" ({e})")).unwrap_or_default();
    if sent == 0 || elapsed < verdict_wait {
        Fail::Closed(format!(
            "{CLOSED}{cause}: the broadcast was refused ({sent} bytes had been sent).\n\
             {BROADCAST_REASONS}\n{SEE_LOG}"
        ))
    } else {
        // A reset comes for a refusal and for a broadcast cut off alike.
        Fail::Closed(format!(
            "the server closed the connection{cause} after {sent} bytes ({:.1} s): the broadcast \
             was refused or cut off.\n{BROADCAST_REASONS}\n  - cut off: the server stopped, or \
             another broadcaster of the same user and channel replaced this one\n{SEE_LOG}",
            elapsed.as_secs_f64()
        ))
    }
}

/// Where a broadcast stands, as the socket's reader thread must know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Copying stdin: a close by the server ends the process at once.
    Sending,
    /// Stdin ended; our side stays open until the verdict wait is over, and a close by the
    /// server is passed to the main thread as a refusal.
    Deciding,
    /// Our side is closed (EOF sent): the server's close is the normal end.
    Ending,
}

/// Copies stdin to the server until stdin ends, then ends the broadcast and waits for the
/// server to close.
///
/// A second thread reads the socket: the server never sends anything to a broadcaster, so EOF or
/// an error there means the server has closed, and the process ends at once with status 1 even
/// while stdin is idle. When stdin ends within `verdict_wait` of connecting, our EOF waits until
/// that time: a server that closes first refused (status 1), even with no input at all.
pub fn broadcast(sock: TcpStream, preamble: &[u8], verdict_wait: Duration) -> Result<(), Fail> {
    let start = Instant::now();
    send_preamble(&sock, preamble)?;

    let stage = Arc::new(Mutex::new(Stage::Sending));
    let sent = Arc::new(AtomicU64::new(0));
    let (ended_tx, ended_rx) = mpsc::channel();
    let reader = sock.try_clone().map_err(|source| Fail::LocalIo {
        what: "cloning the socket",
        source,
    })?;
    {
        let stage = Arc::clone(&stage);
        let sent = Arc::clone(&sent);
        thread::spawn(move || {
            let end = drain(&reader);
            // Under the lock: the main thread changes the stage under it too, so a close seen
            // before our EOF went out is never taken for the normal end.
            let stage = stage.lock().unwrap_or_else(|e| e.into_inner());
            if *stage == Stage::Sending {
                let sent = sent.load(Ordering::SeqCst);
                finish(Err(broadcast_closed(
                    sent,
                    start.elapsed(),
                    verdict_wait,
                    end.err(),
                )));
            }
            let _ = ended_tx.send(end);
        });
    }

    // Stdin's own buffer is smaller than CHUNK, so each read goes straight to the file descriptor
    // and returns whatever is available: no waiting to fill a buffer.
    let mut input = io::stdin().lock();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Fail::LocalIo {
                    what: "reading stdin",
                    source,
                })
            }
        };
        if let Err(e) = (&sock).write_all(&buf[..n]) {
            let sent = sent.load(Ordering::SeqCst);
            return Err(broadcast_closed(
                sent,
                start.elapsed(),
                verdict_wait,
                Some(e),
            ));
        }
        sent.fetch_add(n as u64, Ordering::SeqCst);
    }

    let set_stage = |s: Stage| *stage.lock().unwrap_or_else(|e| e.into_inner()) = s;
    let refused = |end: io::Result<()>| {
        broadcast_closed(
            sent.load(Ordering::SeqCst),
            start.elapsed(),
            verdict_wait,
            end.err(),
        )
    };
    // The verdict may still be out: keep our side open until it must be in.
    set_stage(Stage::Deciding);
    let left = verdict_wait.saturating_sub(start.elapsed());
    if !left.is_zero() {
        if let Ok(end) = ended_rx.recv_timeout(left) {
            return Err(refused(end));
        }
    }
    set_stage(Stage::Ending);
    // A close that came while the stage changed is still one before our EOF.
    if let Ok(end) = ended_rx.try_recv() {
        return Err(refused(end));
    }
    let _ = sock.shutdown(Shutdown::Write);
    match ended_rx.recv_timeout(CLOSE_WAIT) {
        // The server read our EOF and closed: done. Or it is slow to close: leave anyway, the
        // kernel still delivers what is queued.
        Ok(Ok(())) | Err(_) => Ok(()),
        // A reset after a clean end means the server dropped bytes it never read.
        Ok(Err(e)) => Err(Fail::Closed(format!(
            "the server reset the connection ({e}) after {} bytes: the broadcast was refused \
             (or cut off).\n{BROADCAST_REASONS}\n{SEE_LOG}",
            sent.load(Ordering::SeqCst)
        ))),
    }
}

/// An unbuffered handle on stdout, so every chunk is written the moment it arrives.
fn stdout_file() -> Result<File, Fail> {
    io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|source| Fail::LocalIo {
            what: "opening stdout",
            source,
        })
}

/// Copies the server's bytes to stdout until the server closes.
pub fn watch(sock: TcpStream, preamble: &[u8]) -> Result<(), Fail> {
    send_preamble(&sock, preamble)?;
    let mut out = stdout_file()?;
    let mut buf = vec![0u8; CHUNK];
    let mut received: u64 = 0;
    loop {
        let n = match (&sock).read(&mut buf) {
            Ok(0) if received == 0 => return Err(refused(WATCH_REASONS)),
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if received == 0 => {
                return Err(Fail::Closed(format!(
                    "{CLOSED} ({e}).\n{WATCH_REASONS}\n{SEE_LOG}"
                )))
            }
            Err(e) => {
                return Err(Fail::Closed(format!(
                    "the stream was cut off after {received} bytes: {e}"
                )))
            }
        };
        match out.write_all(&buf[..n]) {
            Ok(()) => received += n as u64,
            // The player or pipe reader quit: a normal way for watching to end.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(source) => {
                return Err(Fail::LocalIo {
                    what: "writing stdout",
                    source,
                })
            }
        }
    }
}

/// Prints the token line the server sends.
pub fn token(sock: TcpStream, preamble: &[u8]) -> Result<(), Fail> {
    send_preamble(&sock, preamble)?;
    let _ = sock.set_read_timeout(Some(TOKEN_WAIT));
    let mut reply = Vec::new();
    let read = (&sock).take(MAX_TOKEN_REPLY).read_to_end(&mut reply);
    if let Err(e) = read {
        if reply.is_empty() {
            let what = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    format!("no token arrived within {} s", TOKEN_WAIT.as_secs())
                }
                _ => format!("{CLOSED} ({e}).\n{TOKEN_REASONS}\n{SEE_LOG}"),
            };
            return Err(Fail::Closed(what));
        }
    }
    let text = String::from_utf8_lossy(&reply);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return Err(refused(TOKEN_REASONS));
    }
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .or_else(|e| match e.kind() {
            io::ErrorKind::BrokenPipe => Ok(()),
            _ => Err(e),
        })
        .map_err(|source| Fail::LocalIo {
            what: "writing stdout",
            source,
        })
}
