//! The three sessions: broadcast, watch, token. Blocking I/O, no buffering delay.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::{finish, Fail};

/// Size of one read from stdin or the socket; whatever a read returns is written at once.
const CHUNK: usize = 64 * 1024;

/// A broadcast the server closes within this time of connecting is reported as refused (auth is
/// checked right after the preamble); a later close is reported as cut off.
const REFUSAL_WINDOW: Duration = Duration::from_secs(5);

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

/// Describes the server closing a broadcast that was still sending.
fn broadcast_closed(sent: u64, elapsed: Duration, cause: Option<io::Error>) -> Fail {
    let cause = cause.map(|e| format!(" ({e})")).unwrap_or_default();
    if sent == 0 || elapsed < REFUSAL_WINDOW {
        Fail::Closed(format!(
            "{CLOSED}{cause}: the broadcast was refused ({sent} bytes had been sent).\n\
             {BROADCAST_REASONS}\n{SEE_LOG}"
        ))
    } else {
        Fail::Closed(format!(
            "the server closed the connection{cause} after {sent} bytes ({:.1} s): the broadcast \
             was cut off.\nLikely: the server stopped, or another broadcaster of the same user and \
             channel replaced this one.",
            elapsed.as_secs_f64()
        ))
    }
}

/// Copies stdin to the server until stdin ends, then waits for the server to close.
///
/// A second thread reads the socket: the server never sends anything to a broadcaster, so EOF or
/// an error there means the server has closed, and the process ends at once with status 1 even
/// while stdin is idle.
pub fn broadcast(sock: TcpStream, preamble: &[u8]) -> Result<(), Fail> {
    let start = Instant::now();
    send_preamble(&sock, preamble)?;

    let stdin_done = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (ended_tx, ended_rx) = mpsc::channel();
    let reader = sock.try_clone().map_err(|source| Fail::LocalIo {
        what: "cloning the socket",
        source,
    })?;
    {
        let stdin_done = Arc::clone(&stdin_done);
        let sent = Arc::clone(&sent);
        thread::spawn(move || {
            let end = drain(&reader);
            if !stdin_done.load(Ordering::SeqCst) {
                let sent = sent.load(Ordering::SeqCst);
                finish(Err(broadcast_closed(sent, start.elapsed(), end.err())));
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
            return Err(broadcast_closed(sent, start.elapsed(), Some(e)));
        }
        sent.fetch_add(n as u64, Ordering::SeqCst);
    }

    stdin_done.store(true, Ordering::SeqCst);
    let _ = sock.shutdown(Shutdown::Write);
    match ended_rx.recv_timeout(CLOSE_WAIT) {
        // The server read our EOF and closed: done. Or it is slow to close: leave anyway, the
        // kernel still delivers what is queued.
        Ok(Ok(())) | Err(_) => Ok(()),
        // A reset after a clean end means the server dropped bytes it never read.
        Ok(Err(e)) => Err(Fail::Closed(format!(
            "the server reset the connection ({e}) after {} bytes: it may have refused or cut \
             off the broadcast.\n{SEE_LOG}",
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
