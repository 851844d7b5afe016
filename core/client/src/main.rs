//! `fstream`: the command-line client of the fstream protocol.
//!
//! `fstream HOST:PORT ACTION[,key=value...]` sends one preamble, then:
//! - `broadcast` copies stdin to the server as it arrives;
//! - `watch` copies the server's bytes to stdout as they arrive;
//! - `token` prints the token the server sends.
//!
//! Blocking sockets and one extra thread (the broadcaster's watch on the server side of the
//! connection); no async runtime.

mod args;
mod session;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use fstream_wire::{encode_preamble, Prelude, Request, DEFAULT_MAX_ACTION_LEN};
use thiserror::Error;

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: the server refused the request or cut the connection.
pub const EXIT_CLOSED: u8 = 1;
/// Exit status: bad command line, action or `fserv_arg_*` variable (also clap's own usage errors).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the address could not be resolved or connected to.
pub const EXIT_CONNECT: u8 = 3;
/// Exit status: reading stdin or writing stdout failed (other than stdout being closed).
pub const EXIT_LOCAL_IO: u8 = 4;

const AFTER_HELP: &str = "\
ACTION is broadcast, watch or token, followed by ,key=value items:
  broadcast  user, user_password or token; channel (default), channel_password, bufsize (0)
  watch      user (whose stream); channel (default), channel_password
  token      user, user_password
Keys may also be spelled with '-' (user-password). Values cannot contain ','.

Environment:
  fserv_arg_KEY=VALUE  adds KEY=VALUE to the action. These items are placed before the command
                       line's, and the server keeps the last duplicate, so the command line wins.

Exit status:
  0  success (watch: the stream ended after data arrived, or stdout was closed; broadcast: the
     input ended and the server closed in order after it; fstream-host resets a refused one)
  1  the server refused the request or cut the connection
  2  usage error (bad arguments, action or fserv_arg_* variable)
  3  could not resolve or connect to HOST:PORT
  4  reading stdin or writing stdout failed

Examples:
  ffmpeg ... -f mpegts - | fstream 127.0.0.1:61920 broadcast,user=fier,user_password=123
  fserv_arg_user=fier fstream 127.0.0.1:61920 watch | ffplay -i -";

/// A live streaming client for fstream servers.
#[derive(Debug, Parser)]
#[command(name = "fstream", version, about, after_help = AFTER_HELP)]
struct Cli {
    /// Server address, HOST:PORT (IPv6 as [ADDR]:PORT)
    address: String,

    /// What to do: ACTION[,key=value...]
    action: String,

    /// What to send before the request: a blank line (as stock clients), nothing (as the oldest
    /// clients), or a minimal HTTP request head
    #[arg(long, value_enum, default_value_t = PreludeArg::Blank)]
    prelude: PreludeArg,

    /// Give up connecting after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    connect_timeout: u64,

    /// broadcast, for servers that refuse with an ordinary close rather than a reset (the
    /// original fstream server): how long after connecting a refusal may still come. Input
    /// that ends sooner keeps the connection open until then, so a refusal is never taken for
    /// a short broadcast. fstream-host needs none (0)
    #[arg(long, value_name = "SECONDS", default_value_t = session::DEFAULT_VERDICT_WAIT.as_secs_f64(),
        value_parser = parse_seconds)]
    verdict_wait: f64,
}

/// A number of seconds, fractions allowed, from 0 to a day.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..=86_400.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "{text:?} is not a number of seconds from 0 to 86400"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PreludeArg {
    Blank,
    None,
    Http,
}

/// Why the client stops with a non-zero status. The message is printed after `fstream: `.
#[derive(Debug, Error)]
pub enum Fail {
    #[error("{0}")]
    Usage(String),
    #[error("cannot resolve {address}: {source}")]
    Resolve { address: String, source: io::Error },
    #[error("cannot connect to {address} ({addr}): {source}")]
    Connect {
        address: String,
        addr: SocketAddr,
        source: io::Error,
    },
    /// The server refused or cut the connection; the text explains.
    #[error("{0}")]
    Closed(String),
    #[error("{what}: {source}")]
    LocalIo {
        what: &'static str,
        source: io::Error,
    },
}

impl Fail {
    fn exit_code(&self) -> u8 {
        match self {
            Fail::Usage(_) => EXIT_USAGE,
            Fail::Resolve { .. } | Fail::Connect { .. } => EXIT_CONNECT,
            Fail::Closed(_) => EXIT_CLOSED,
            Fail::LocalIo { .. } => EXIT_LOCAL_IO,
        }
    }
}

/// Held while the process prints its last words, so two threads never both report an ending.
static EXITING: Mutex<()> = Mutex::new(());

/// Ends the process from any thread: prints the failure (if any) and exits with its status.
pub fn finish(result: Result<(), Fail>) -> ! {
    let _guard = EXITING.lock().unwrap_or_else(|e| e.into_inner());
    let code = match result {
        Ok(()) => EXIT_OK,
        Err(fail) => {
            eprintln!("fstream: {fail}");
            fail.exit_code()
        }
    };
    let _ = io::stderr().flush();
    std::process::exit(i32::from(code))
}

fn main() {
    // Rust programs start with SIGPIPE ignored, so writing to a closed stdout or socket returns
    // EPIPE (handled as "the reader went away") instead of killing the process.
    let cli = Cli::parse();
    finish(run(cli))
}

fn run(cli: Cli) -> Result<(), Fail> {
    let action = args::build_action(&cli.action, std::env::vars_os())?;
    let parsed = Request::parse(&action).map_err(|e| Fail::Usage(format!("bad action: {e}")))?;
    if !parsed.unknown_keys.is_empty() {
        eprintln!(
            "fstream: note: the server ignores unknown keys: {}",
            parsed.unknown_keys.join(", ")
        );
    }
    if action.len() > DEFAULT_MAX_ACTION_LEN as usize {
        return Err(Fail::Usage(format!(
            "the action is {} bytes; servers accept at most {DEFAULT_MAX_ACTION_LEN}",
            action.len()
        )));
    }
    let prelude = match cli.prelude {
        PreludeArg::Blank => Prelude::Blank,
        PreludeArg::None => Prelude::None,
        PreludeArg::Http => Prelude::Http {
            host: cli.address.clone(),
        },
    };
    let timeout = Duration::from_secs(cli.connect_timeout.max(1));
    let sock = connect(&cli.address, timeout)?;
    // Stream bytes go out as soon as they are read; never wait to fill a segment.
    let _ = sock.set_nodelay(true);
    let preamble = encode_preamble(&action, prelude);
    match parsed.request {
        Request::Broadcast { .. } => {
            session::broadcast(sock, &preamble, Duration::from_secs_f64(cli.verdict_wait))
        }
        Request::Watch { .. } => session::watch(sock, &preamble),
        Request::Token { .. } => session::token(sock, &preamble),
    }
}

/// Resolves HOST:PORT and connects to the first address that answers.
fn connect(address: &str, timeout: Duration) -> Result<TcpStream, Fail> {
    let port_ok = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok {
        return Err(Fail::Usage(format!("address {address:?} is not HOST:PORT")));
    }
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|source| Fail::Resolve {
            address: address.to_owned(),
            source,
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(sock) => return Ok(sock),
            Err(source) => last = Some((addr, source)),
        }
    }
    Err(match last {
        Some((addr, source)) => Fail::Connect {
            address: address.to_owned(),
            addr,
            source,
        },
        None => Fail::Resolve {
            address: address.to_owned(),
            source: io::Error::new(io::ErrorKind::NotFound, "no addresses found"),
        },
    })
}
