//! TLS listeners: a rustls server configuration per `[tls.PROTOCOL]` table of host.toml, the
//! handshake, and a connection's transport (plain TCP or TLS).
//!
//! rustls's `ServerConnection` does no I/O itself, so a TLS connection keeps the host's
//! non-blocking style. The handshake runs first, before the frontend's session exists, bounded
//! by `handshake_timeout_ms`; a failed or timed-out handshake closes the socket with a log line.
//! After it, the plugin's session sees exactly the bytes a plain connection would give it:
//!
//! - Reading: socket bytes go straight into rustls (`read_tls`), are decrypted
//!   (`process_new_packets`), and the plaintext is read from `reader()` into the thread's scratch
//!   buffer the plain path uses too.
//! - Writing: the connection's [`Outq`](crate::outq::Outq) hands its queued plaintext buffers to
//!   `writer()` (encrypting, at most rustls's 64 KiB buffer limit at a time) and the records go
//!   to the socket with non-blocking `write_tls`. When the socket is full rustls keeps the
//!   records not sent, and the queue's writer task waits for room as for a plain socket.
//!
//! The read side and the write side share the `ServerConnection` behind a mutex that only this
//! connection's tasks take, for memory work and non-blocking syscalls: it never waits for the
//! peer, and the queue's own lock (the one the hub takes) is never held with it.
//!
//! The plain transport is the tokio socket halves as before: no lock, no copy.

use std::{
    io::{self, IoSlice, Read, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    ServerConfig, ServerConnection,
};
use tokio::net::{
    tcp::{OwnedReadHalf, OwnedWriteHalf},
    TcpStream,
};

use crate::{config::TlsListen, outq::WriteOutcome};

/// Most plaintext buffers handed to rustls at once (they are sealed into full-size records).
const MAX_IOVECS: usize = 64;

/// Records read from the socket in one go without plaintext coming out, before the connection's
/// task lets others run (a peer sending only empty or handshake records).
const MAX_EMPTY_READS: usize = 8;

/// Why a TLS listener's certificate or key cannot be used. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path}: bad PEM: {message}")]
    Pem { path: String, message: String },
    #[error("{path}: no certificate in it (expected PEM \"CERTIFICATE\" sections)")]
    NoCertificate { path: String },
    #[error("{path}: no private key in it (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" section)")]
    NoKey { path: String },
    #[error("the private key in {key} does not belong to the certificate in {cert}")]
    KeyMismatch { cert: String, key: String },
    #[error("cannot use the certificate in {cert} with the key in {key}: {source}")]
    Unusable {
        cert: String,
        key: String,
        source: rustls::Error,
    },
}

/// Why a TLS handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("no handshake within {0} ms")]
    Timeout(u64),
    #[error("the peer closed the connection during the handshake")]
    Closed,
    #[error(transparent)]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A TLS listener's settings, loaded: what each of its connections needs.
#[derive(Debug)]
pub struct TlsSettings {
    pub config: Arc<ServerConfig>,
    /// `None`: no limit.
    pub handshake_timeout: Option<Duration>,
    /// The certificate file, for logs.
    pub cert: PathBuf,
}

impl TlsSettings {
    /// Loads `listen`'s certificate chain and key; relative paths are relative to `root`.
    pub fn load(root: &Path, listen: &TlsListen) -> Result<Self, TlsConfigError> {
        let cert = root.join(&listen.cert);
        let key = root.join(&listen.key);
        let config = server_config(&cert, &key)?;
        Ok(Self {
            config: Arc::new(config),
            handshake_timeout: (listen.handshake_timeout_ms > 0)
                .then(|| Duration::from_millis(listen.handshake_timeout_ms)),
            cert,
        })
    }
}

/// A rustls server configuration (ring's algorithms, TLS 1.2 and 1.3, no client certificates)
/// serving the PEM certificate chain in `cert` with the PEM private key in `key`.
pub fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsConfigError> {
    let certs = read_certs(cert)?;
    let private_key = read_key(key)?;
    let (cert_name, key_name) = (cert.display().to_string(), key.display().to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, private_key))
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsConfigError::KeyMismatch {
                cert: cert_name,
                key: key_name,
            },
            source => TlsConfigError::Unusable {
                cert: cert_name,
                key: key_name,
                source,
            },
        })
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Pem {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let pem = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsConfigError::NoKey {
            path: path.display().to_string(),
        },
        e => TlsConfigError::Pem {
            path: path.display().to_string(),
            message: e.to_string(),
        },
    })
}

/// An accepted connection's transport, before it is split into its read and write sides.
pub enum Transport {
    Plain(TcpStream),
    /// A TLS session whose handshake is complete.
    Tls(TcpStream, Box<ServerConnection>),
}

impl Transport {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) | Transport::Tls(s, _) => s,
        }
    }

    pub fn split(self) -> (ReadSide, WriteSide) {
        match self {
            Transport::Plain(s) => {
                let (r, w) = s.into_split();
                (ReadSide::Plain(r), WriteSide::Plain(w))
            }
            Transport::Tls(s, conn) => {
                let tls = Arc::new(TlsConn::new(*conn));
                let (r, w) = s.into_split();
                (ReadSide::Tls(r, tls.clone()), WriteSide::Tls(w, tls))
            }
        }
    }
}

/// Runs the server side of a TLS handshake on `sock`, within the listener's time limit.
pub async fn accept(sock: TcpStream, settings: &TlsSettings) -> Result<Transport, HandshakeError> {
    let mut conn = ServerConnection::new(settings.config.clone())?;
    match settings.handshake_timeout {
        Some(limit) => tokio::time::timeout(limit, handshake(&sock, &mut conn))
            .await
            .map_err(|_| HandshakeError::Timeout(limit.as_millis() as u64))??,
        None => handshake(&sock, &mut conn).await?,
    }
    Ok(Transport::Tls(sock, Box::new(conn)))
}

async fn handshake(sock: &TcpStream, conn: &mut ServerConnection) -> Result<(), HandshakeError> {
    loop {
        // What rustls has to say goes first (its flight, then session tickets).
        while conn.wants_write() {
            match conn.write_tls(&mut SockWriter(sock)) {
                Ok(0) => return Err(HandshakeError::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => sock.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        sock.readable().await?;
        match conn.read_tls(&mut SockReader(sock)) {
            Ok(0) => return Err(HandshakeError::Closed),
            Ok(_) => {
                if let Err(e) = conn.process_new_packets() {
                    // Tell the peer why, if its socket takes it at once (best effort).
                    let _ = conn.write_tls(&mut SockWriter(sock));
                    return Err(e.into());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// A TLS connection's session, shared by its read side and its write side.
pub struct TlsConn {
    state: Mutex<TlsState>,
    /// Reading made rustls queue records (an alert, a key update): the queue should flush.
    flush_wanted: AtomicBool,
}

struct TlsState {
    conn: ServerConnection,
    /// Decrypted bytes rustls holds that the session has not had yet.
    plain_left: usize,
    /// The close_notify alert is queued (it goes once).
    close_queued: bool,
}

impl TlsConn {
    fn new(mut conn: ServerConnection) -> Self {
        // Application data that came with the end of the handshake is already decrypted.
        let plain_left = conn
            .process_new_packets()
            .map(|s| s.plaintext_bytes_to_read())
            .unwrap_or(0);
        Self {
            state: Mutex::new(TlsState {
                conn,
                plain_left,
                close_queued: false,
            }),
            flush_wanted: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TlsState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decrypted bytes into `buf`, reading and decrypting what the socket has when rustls holds
    /// none. `Ok(0)`: the peer closed (with or without close_notify); `WouldBlock`: no plaintext
    /// yet. A TLS error is logged and returned as `InvalidData`.
    fn read(&self, sock: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let mut st = self.lock();
        let mut reads = 0;
        loop {
            match st.conn.reader().read(buf) {
                Ok(n) => {
                    st.plain_left = st.plain_left.saturating_sub(n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => st.plain_left = 0,
                // The TCP connection ended without a close_notify: many clients do that.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if reads == MAX_EMPTY_READS {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            reads += 1;
            // `Ok(0)` (EOF) falls through: rustls then reports the end after any plaintext.
            st.conn.read_tls(&mut SockReader(sock))?;
            let processed = st.conn.process_new_packets();
            if st.conn.wants_write() {
                self.flush_wanted.store(true, Ordering::Relaxed);
            }
            match processed {
                Ok(io_state) => st.plain_left = io_state.plaintext_bytes_to_read(),
                Err(e) => {
                    tracing::warn!(error = %e, "TLS error; closing the connection");
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
        }
    }

    /// Seals `batch` (its first buffer from `offset`) and writes the records with non-blocking
    /// writes, records rustls already holds first; then, if `close`, the close_notify alert.
    /// Returns the index of the first buffer not wholly taken by rustls, the offset into it, and
    /// how it ended. On `WouldBlock`, rustls keeps what it sealed and the socket did not take.
    pub(crate) fn write<B: AsRef<[u8]>>(
        &self,
        sock: &OwnedWriteHalf,
        batch: &[B],
        mut offset: usize,
        close: bool,
    ) -> (usize, usize, WriteOutcome) {
        let sock: &TcpStream = sock.as_ref();
        let mut st = self.lock();
        let mut idx = 0;
        loop {
            while st.conn.wants_write() {
                match st.conn.write_tls(&mut SockWriter(sock)) {
                    Ok(0) => return (idx, offset, WriteOutcome::Failed),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return (idx, offset, WriteOutcome::WouldBlock)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "write failed");
                        return (idx, offset, WriteOutcome::Failed);
                    }
                }
            }
            while idx < batch.len() && batch[idx].as_ref().len() == offset {
                idx += 1;
                offset = 0;
            }
            if idx == batch.len() {
                if close && !st.close_queued {
                    st.close_queued = true;
                    st.conn.send_close_notify();
                    continue;
                }
                return (idx, 0, WriteOutcome::Done);
            }
            let mut slices: Vec<IoSlice<'_>> =
                Vec::with_capacity(MAX_IOVECS.min(batch.len() - idx));
            slices.push(IoSlice::new(&batch[idx].as_ref()[offset..]));
            for b in batch[idx + 1..].iter().take(MAX_IOVECS - 1) {
                slices.push(IoSlice::new(b.as_ref()));
            }
            let mut n = match st.conn.writer().write_vectored(&slices) {
                // Its buffer is empty here, so rustls takes at least one byte unless it failed.
                Ok(0) => return (idx, offset, WriteOutcome::Failed),
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(error = %e, "TLS write failed");
                    return (idx, offset, WriteOutcome::Failed);
                }
            };
            while n > 0 && idx < batch.len() {
                let left = batch[idx].as_ref().len() - offset;
                if n >= left {
                    n -= left;
                    idx += 1;
                    offset = 0;
                } else {
                    offset += n;
                    n = 0;
                }
            }
        }
    }
}

/// A connection's read side.
pub enum ReadSide {
    Plain(OwnedReadHalf),
    Tls(OwnedReadHalf, Arc<TlsConn>),
}

impl ReadSide {
    /// Resolves when [`ReadSide::try_read`] may have something: the socket is readable, or
    /// rustls still holds decrypted bytes.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            ReadSide::Plain(r) => r.readable().await,
            ReadSide::Tls(r, tls) => {
                if tls.lock().plain_left > 0 {
                    return Ok(());
                }
                r.readable().await
            }
        }
    }

    /// Reads what is there without waiting, as `TcpStream::try_read` does: `Ok(0)` is the end.
    #[inline]
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ReadSide::Plain(r) => r.try_read(buf),
            ReadSide::Tls(r, tls) => tls.read(r.as_ref(), buf),
        }
    }

    /// Whether reading left records to send (TLS alerts and key updates).
    #[inline]
    pub fn take_flush_wanted(&self) -> bool {
        match self {
            ReadSide::Plain(_) => false,
            ReadSide::Tls(_, tls) => tls.flush_wanted.swap(false, Ordering::Relaxed),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, ReadSide::Tls(..))
    }
}

/// A connection's write side, owned by its output queue.
pub enum WriteSide {
    Plain(OwnedWriteHalf),
    Tls(OwnedWriteHalf, Arc<TlsConn>),
}

impl WriteSide {
    pub fn socket(&self) -> &OwnedWriteHalf {
        match self {
            WriteSide::Plain(w) | WriteSide::Tls(w, _) => w,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, WriteSide::Tls(..))
    }

    pub fn into_socket(self) -> OwnedWriteHalf {
        match self {
            WriteSide::Plain(w) | WriteSide::Tls(w, _) => w,
        }
    }
}

/// `io::Read` over a tokio socket's non-blocking read, for rustls.
struct SockReader<'a>(&'a TcpStream);

impl Read for SockReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// `io::Write` over a tokio socket's non-blocking writes, for rustls.
struct SockWriter<'a>(&'a TcpStream);

impl Write for SockWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway self-signed pair (CN and SAN `localhost`) and an unrelated key, for tests only.
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBkjCCATigAwIBAgIUM3K/iIb06bnN8s1p45T+fF+6LskwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzE3MjYyOFoYDzIxMjYxMDMw
MTcyNjI4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASkbtd7uyjW6Gkr4juKE65V2TxU/DbaOmFwkb6DufFt1pO3q62XhOvb
kM8Q/WdRi3t+gAmp1ihmw8n/DjToNlLro2YwZDAdBgNVHQ4EFgQUvTIs/FK4TsLZ
eYoa72BO6IOC+QcwHwYDVR0jBBgwFoAUvTIs/FK4TsLZeYoa72BO6IOC+QcwFAYD
VR0RBA0wC4IJbG9jYWxob3N0MAwGA1UdEwEB/wQCMAAwCgYIKoZIzj0EAwIDSAAw
RQIgDRlERoVAvZyGOoR4eFixU95WKFGs2P1wEbbiY0X9J6ACIQCJAM3n6kuuwVNg
vyM3x8GGGzACa8D8HZdlRryXBTAtFQ==
-----END CERTIFICATE-----
";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgADOLHOp9zL1y50j8
me5Lucw39qeSaB4MmALdyiwOUHOhRANCAASkbtd7uyjW6Gkr4juKE65V2TxU/Dba
OmFwkb6DufFt1pO3q62XhOvbkM8Q/WdRi3t+gAmp1ihmw8n/DjToNlLr
-----END PRIVATE KEY-----
";
    const OTHER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgp4dBlK8wDY6mfeLJ
dsEBx1FlMHu2OE0gwHYK57ZtPxKhRANCAAQdBDGcgsDpH9eLpvV1PEExzVljoyxs
cjxwHTjqFUg49s1V0ZDNrgXNOCBKwSYE4alktzmtSRobjQLJP4IOXCk2
-----END PRIVATE KEY-----
";

    /// A temporary directory with the given files, removed on drop.
    struct Files(PathBuf);

    impl Files {
        fn new(tag: &str, files: &[(&str, &str)]) -> Self {
            let dir =
                std::env::temp_dir().join(format!("fstream-tls-unit-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, text) in files {
                std::fs::write(dir.join(name), text).unwrap();
            }
            Files(dir)
        }

        fn load(&self, cert: &str, key: &str) -> Result<TlsSettings, TlsConfigError> {
            let listen = TlsListen {
                listen: "127.0.0.1:0".into(),
                cert: cert.into(),
                key: key.into(),
                handshake_timeout_ms: 200,
            };
            TlsSettings::load(&self.0, &listen)
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn config_errors_name_the_file() {
        let f = Files::new(
            "errors",
            &[
                ("cert.pem", CERT),
                ("key.pem", KEY),
                ("other.pem", OTHER_KEY),
                (
                    "garbage.pem",
                    "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n",
                ),
                ("empty.pem", ""),
            ],
        );
        let s = f.load("cert.pem", "key.pem").expect("a good pair loads");
        assert_eq!(s.handshake_timeout, Some(Duration::from_millis(200)));
        assert_eq!(s.cert, f.0.join("cert.pem"));

        let err = |cert: &str, key: &str| match f.load(cert, key) {
            Ok(_) => panic!("{cert} with {key} loaded"),
            Err(e) => e,
        };
        let e = err("missing.pem", "key.pem");
        assert!(matches!(e, TlsConfigError::Read { .. }), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");

        let e = err("cert.pem", "missing-key.pem");
        assert!(e.to_string().contains("missing-key.pem"), "{e}");

        let e = err("garbage.pem", "key.pem");
        assert!(matches!(e, TlsConfigError::Pem { .. }), "{e}");
        assert!(e.to_string().contains("garbage.pem"), "{e}");

        // A key where the certificate should be, and the other way round.
        let e = err("key.pem", "key.pem");
        assert!(matches!(e, TlsConfigError::NoCertificate { .. }), "{e}");
        let e = err("cert.pem", "cert.pem");
        assert!(matches!(e, TlsConfigError::NoKey { .. }), "{e}");
        assert!(e.to_string().contains("cert.pem"), "{e}");
        let e = err("cert.pem", "empty.pem");
        assert!(matches!(e, TlsConfigError::NoKey { .. }), "{e}");

        let e = err("cert.pem", "other.pem");
        assert!(matches!(e, TlsConfigError::KeyMismatch { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("other.pem") && text.contains("cert.pem"),
            "{text}"
        );
    }

    #[test]
    fn host_toml_tls_table() {
        let cfg: crate::config::HostConfig = toml::from_str(
            "[tls.rtmp]\nlisten = \"0.0.0.0:1936\"\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n",
        )
        .unwrap();
        let t = &cfg.tls["rtmp"];
        assert_eq!(t.listen, "0.0.0.0:1936");
        assert_eq!(t.cert, PathBuf::from("tls/cert.pem"));
        assert_eq!(t.handshake_timeout_ms, 10_000);
        // Unknown keys and a missing key file are errors.
        assert!(toml::from_str::<crate::config::HostConfig>(
            "[tls.rtmp]\nlisten = \"x\"\ncert = \"c\"\nkey = \"k\"\nkye = \"k\"\n"
        )
        .is_err());
        assert!(toml::from_str::<crate::config::HostConfig>(
            "[tls.rtmp]\nlisten = \"x\"\ncert = \"c\"\n"
        )
        .is_err());
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A blocking rustls client that trusts the test certificate.
    fn client(addr: std::net::SocketAddr) -> (rustls::ClientConnection, std::net::TcpStream) {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
        let sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (conn, sock)
    }

    /// The transport end to end over loopback: handshake, plaintext in, 4 MiB out through a
    /// socket that fills up (the client starts reading late), then close_notify.
    #[test]
    fn transport_round_trip_with_a_full_socket() {
        let f = Files::new("round", &[("cert.pem", CERT), ("key.pem", KEY)]);
        let settings = f.load("cert.pem", "key.pem").unwrap();
        let data: Vec<Vec<u8>> = (0..256u32)
            .map(|i| (0..16 * 1024).map(|j| (i * 7 + j) as u8).collect())
            .collect();
        let expected: Vec<u8> = data.concat();
        runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let reader = std::thread::spawn(move || {
                let (mut conn, mut sock) = client(addr);
                let mut tls = rustls::Stream::new(&mut conn, &mut sock);
                tls.write_all(b"hello over tls").unwrap();
                std::thread::sleep(Duration::from_millis(300));
                let mut got = Vec::new();
                let r = tls.read_to_end(&mut got);
                (got, r.map(|_| ()))
            });
            let (sock, _) = listener.accept().await.unwrap();
            let transport = accept(sock, &settings).await.expect("handshake");
            let (rd, wr) = transport.split();
            assert!(rd.is_tls() && wr.is_tls());
            let mut got = Vec::new();
            let mut buf = [0u8; 7];
            while got.len() < 14 {
                rd.readable().await.unwrap();
                match rd.try_read(&mut buf) {
                    Ok(0) => panic!("early end"),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(got, b"hello over tls");
            let WriteSide::Tls(sock, conn) = &wr else {
                unreachable!()
            };
            let (mut idx, mut offset, mut blocked) = (0, 0, 0);
            loop {
                let (i, o, outcome) = conn.write(sock, &data[idx..], offset, true);
                idx += i;
                offset = o;
                match outcome {
                    WriteOutcome::Done => break,
                    WriteOutcome::WouldBlock => {
                        blocked += 1;
                        sock.as_ref().writable().await.unwrap();
                    }
                    WriteOutcome::Failed => panic!("write failed at buffer {idx}"),
                }
            }
            assert!(blocked > 0, "the socket never filled up");
            let (received, end) = reader.join().unwrap();
            assert!(end.is_ok(), "no clean close_notify: {end:?}");
            assert!(received == expected, "the bytes differ");
        });
    }

    #[test]
    fn handshake_refuses_plaintext_and_times_out() {
        let f = Files::new("refuse", &[("cert.pem", CERT), ("key.pem", KEY)]);
        let settings = f.load("cert.pem", "key.pem").unwrap();
        runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            // Plain bytes where a ClientHello belongs.
            let mut plain = std::net::TcpStream::connect(addr).unwrap();
            plain.write_all(b"\n\n\0\0\0\x05\0watch").unwrap();
            let (sock, _) = listener.accept().await.unwrap();
            match accept(sock, &settings).await {
                Err(HandshakeError::Tls(_)) => {}
                Err(e) => panic!("unexpected error: {e}"),
                Ok(_) => panic!("plaintext completed a handshake"),
            }
            // A client that says nothing.
            let _silent = std::net::TcpStream::connect(addr).unwrap();
            let (sock, _) = listener.accept().await.unwrap();
            let t = std::time::Instant::now();
            match accept(sock, &settings).await {
                Err(HandshakeError::Timeout(200)) => {}
                Err(e) => panic!("unexpected error: {e}"),
                Ok(_) => panic!("a silent client completed a handshake"),
            }
            assert!(t.elapsed() >= Duration::from_millis(190));
        });
    }
}
