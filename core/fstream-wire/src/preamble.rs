//! Framing: PRELUDE, LENGTH, NUL, ACTION.

use thiserror::Error;

/// Default cap on the prelude, terminator included (spec: "prelude at most 8 KiB").
///
/// The prelude's content is ignored, so the cap only bounds how long a peer may send bytes we
/// throw away before it has to show a length.
pub const DEFAULT_MAX_PRELUDE: usize = 8192;

/// Default cap on LENGTH, the action's byte length (spec: "LENGTH from 1 to 4096").
///
/// Real actions are well under 200 bytes; the cap bounds the one allocation a peer controls.
pub const DEFAULT_MAX_ACTION_LEN: u32 = 4096;

/// Size of LENGTH (u32, big-endian) plus the NUL byte.
const HEADER_LEN: usize = 5;

/// The parser's limits. Both are peer-controlled sizes, so both are capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes the prelude may take, its terminating blank line included.
    pub max_prelude: usize,
    /// Largest accepted LENGTH. LENGTH 0 is always refused.
    pub max_action_len: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_prelude: DEFAULT_MAX_PRELUDE,
            max_action_len: DEFAULT_MAX_ACTION_LEN,
        }
    }
}

/// Why a preamble was refused. Every variant means "close the connection without a reply".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// No blank line ("\n\n" or "\n\r\n") within `limit` bytes.
    #[error("prelude longer than {limit} bytes without a blank line")]
    PreludeTooLong { limit: usize },
    /// LENGTH was 0.
    #[error("action length is zero")]
    LengthZero,
    /// LENGTH was above the configured maximum.
    #[error("action length {length} exceeds the limit of {limit} bytes")]
    LengthTooLarge { length: u32, limit: u32 },
    /// The byte after LENGTH was not 0x00.
    #[error("expected a NUL byte after the length, found 0x{found:02x}")]
    MissingNul { found: u8 },
    /// ACTION was not valid UTF-8.
    #[error("action is not valid UTF-8 (valid up to byte {valid_up_to})")]
    InvalidUtf8 { valid_up_to: usize },
    /// The input ended in the middle of the preamble (see [`PreambleParser::end_of_input`]).
    #[error("connection closed in the middle of the {stage}")]
    Truncated { stage: &'static str },
    /// [`PreambleParser::push`] was called after it had already returned a preamble.
    #[error("the preamble was already complete")]
    AlreadyComplete,
}

/// Which prelude form the client used; worth a debug log line, never a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreludeKind {
    /// The first byte was 0x00: an old client that sends no prelude.
    None,
    /// Only line breaks, normally the bare "\n\n".
    Blank,
    /// Anything else before the blank line, normally HTTP request headers.
    Headers,
}

/// A complete preamble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preamble {
    /// The ACTION text, not yet parsed (see [`crate::Action::parse`]).
    pub action: String,
    /// Bytes that followed ACTION in the chunk that completed it: the start of a broadcaster's stream.
    pub leftover: Vec<u8>,
    /// The prelude form seen.
    pub prelude: PreludeKind,
    /// The prelude's length in bytes, terminator included (0 for [`PreludeKind::None`]).
    pub prelude_len: usize,
}

/// Progress through a line break sequence, to spot "\n\n" and "\n\r\n" one byte at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eol {
    /// The last byte was not part of a possible terminator.
    Other,
    /// The last byte was '\n'.
    Lf,
    /// The last two bytes were "\n\r".
    LfCr,
}

#[derive(Debug)]
enum State {
    /// Nothing received yet: the first byte decides whether there is a prelude.
    Start,
    Prelude {
        seen: usize,
        eol: Eol,
        only_breaks: bool,
    },
    Header {
        buf: [u8; HEADER_LEN],
        have: usize,
    },
    Action {
        want: usize,
        buf: Vec<u8>,
    },
    Done,
    Failed(WireError),
}

/// Incremental, sans-IO parser for one connection's preamble.
///
/// Feed it every chunk read from the socket with [`push`](Self::push) until it returns
/// `Ok(Some(preamble))` or an error. It copies nothing but the action bytes and keeps no buffer
/// of the prelude, so feeding it one byte at a time costs the same per byte as large chunks.
#[derive(Debug)]
pub struct PreambleParser {
    limits: Limits,
    state: State,
    prelude: PreludeKind,
    prelude_len: usize,
}

impl Default for PreambleParser {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl PreambleParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> Self {
        PreambleParser {
            limits,
            state: State::Start,
            prelude: PreludeKind::None,
            prelude_len: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// True once a preamble has been returned.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Feeds the next chunk.
    ///
    /// Returns `Ok(None)` when more bytes are needed, `Ok(Some(_))` once the action is complete
    /// (bytes after it are in [`Preamble::leftover`]), or the reason to close the connection.
    /// After an error, every later call returns the same error.
    pub fn push(&mut self, mut input: &[u8]) -> Result<Option<Preamble>, WireError> {
        loop {
            match &mut self.state {
                State::Done => return Err(WireError::AlreadyComplete),
                State::Failed(err) => return Err(err.clone()),
                _ if input.is_empty() => return Ok(None),
                State::Start => {
                    if input[0] == 0 {
                        // No prelude: this byte is already the first byte of LENGTH.
                        self.prelude = PreludeKind::None;
                        self.state = State::Header {
                            buf: [0; HEADER_LEN],
                            have: 0,
                        };
                    } else {
                        self.state = State::Prelude {
                            seen: 0,
                            eol: Eol::Other,
                            only_breaks: true,
                        };
                    }
                }
                State::Prelude {
                    seen,
                    eol,
                    only_breaks,
                } => {
                    let mut end = None;
                    for (i, &b) in input.iter().enumerate() {
                        *eol = match (b, *eol) {
                            (b'\n', Eol::Lf | Eol::LfCr) => {
                                end = Some(i + 1);
                                break;
                            }
                            (b'\n', Eol::Other) => Eol::Lf,
                            (b'\r', Eol::Lf) => Eol::LfCr,
                            _ => Eol::Other,
                        };
                        if b != b'\n' && b != b'\r' {
                            *only_breaks = false;
                        }
                    }
                    match end {
                        Some(n) if *seen + n <= self.limits.max_prelude => {
                            self.prelude_len = *seen + n;
                            self.prelude = if *only_breaks {
                                PreludeKind::Blank
                            } else {
                                PreludeKind::Headers
                            };
                            input = &input[n..];
                            self.state = State::Header {
                                buf: [0; HEADER_LEN],
                                have: 0,
                            };
                        }
                        _ => {
                            *seen = seen.saturating_add(end.unwrap_or(input.len()));
                            if *seen >= self.limits.max_prelude {
                                return self.fail(WireError::PreludeTooLong {
                                    limit: self.limits.max_prelude,
                                });
                            }
                            return Ok(None);
                        }
                    }
                }
                State::Header { buf, have } => {
                    let n = (HEADER_LEN - *have).min(input.len());
                    buf[*have..*have + n].copy_from_slice(&input[..n]);
                    let before = *have;
                    *have += n;
                    input = &input[n..];
                    let buf = *buf;
                    let have = *have;
                    if before < 4 && have >= 4 {
                        let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                        if length == 0 {
                            return self.fail(WireError::LengthZero);
                        }
                        if length > self.limits.max_action_len {
                            return self.fail(WireError::LengthTooLarge {
                                length,
                                limit: self.limits.max_action_len,
                            });
                        }
                    }
                    if have == HEADER_LEN {
                        if buf[4] != 0 {
                            return self.fail(WireError::MissingNul { found: buf[4] });
                        }
                        // Checked above: 1 ..= max_action_len, so this fits in memory as asked.
                        let want = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                        self.state = State::Action {
                            want,
                            buf: Vec::with_capacity(want),
                        };
                    }
                }
                State::Action { want, buf } => {
                    let n = (*want - buf.len()).min(input.len());
                    buf.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if buf.len() == *want {
                        let bytes = std::mem::take(buf);
                        let action = match String::from_utf8(bytes) {
                            Ok(s) => s,
                            Err(e) => {
                                return self.fail(WireError::InvalidUtf8 {
                                    valid_up_to: e.utf8_error().valid_up_to(),
                                })
                            }
                        };
                        self.state = State::Done;
                        return Ok(Some(Preamble {
                            action,
                            leftover: input.to_vec(),
                            prelude: self.prelude,
                            prelude_len: self.prelude_len,
                        }));
                    }
                }
            }
        }
    }

    /// Tells the parser that the peer closed its side.
    ///
    /// `Ok(())` if nothing had been received (a plain connect-and-close, e.g. a port probe) or the
    /// preamble was complete; otherwise `Err(Truncated)` naming the part that was cut, or the
    /// earlier error.
    pub fn end_of_input(&mut self) -> Result<(), WireError> {
        let stage = match &self.state {
            State::Start | State::Done => return Ok(()),
            State::Failed(err) => return Err(err.clone()),
            State::Prelude { .. } => "prelude",
            State::Header { have, .. } if *have < 4 => "length",
            State::Header { .. } => "NUL byte",
            State::Action { .. } => "action",
        };
        self.fail(WireError::Truncated { stage })
    }

    fn fail<T>(&mut self, err: WireError) -> Result<T, WireError> {
        self.state = State::Failed(err.clone());
        Err(err)
    }
}

/// The prelude a client sends before LENGTH.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Prelude {
    /// "\n\n", as the stock clients send.
    #[default]
    Blank,
    /// Nothing, as the oldest clients did (the frame then starts with LENGTH's 0x00).
    None,
    /// A minimal HTTP request head, for paths that expect HTTP: `GET / HTTP/1.1`, `Host: {host}`.
    Http { host: String },
}

/// Builds the preamble a client sends: prelude, LENGTH, NUL, ACTION.
///
/// Line breaks and other control characters in an HTTP host are dropped, so they cannot end the
/// prelude early. The action is not checked against the server's limit; the server enforces it.
///
/// # Panics
/// If `action` is longer than `u32::MAX` bytes, which no LENGTH can describe.
pub fn encode_preamble(action: &str, prelude: Prelude) -> Vec<u8> {
    let length = u32::try_from(action.len()).expect("action longer than u32::MAX bytes");
    let mut out = Vec::with_capacity(64 + action.len());
    match prelude {
        Prelude::Blank => out.extend_from_slice(b"\n\n"),
        Prelude::None => {}
        Prelude::Http { host } => {
            out.extend_from_slice(b"GET / HTTP/1.1\r\n");
            let host: String = host.chars().filter(|c| !c.is_control()).collect();
            if !host.is_empty() {
                out.extend_from_slice(b"Host: ");
                out.extend_from_slice(host.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(&length.to_be_bytes());
    out.push(0);
    out.extend_from_slice(action.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(prelude: &[u8], action: &[u8]) -> Vec<u8> {
        let mut v = prelude.to_vec();
        v.extend_from_slice(&(action.len() as u32).to_be_bytes());
        v.push(0);
        v.extend_from_slice(action);
        v
    }

    fn parse_all(bytes: &[u8]) -> Result<Option<Preamble>, WireError> {
        PreambleParser::default().push(bytes)
    }

    /// Feeds one byte at a time; returns the result and how many bytes were pushed.
    fn parse_bytewise(
        limits: Limits,
        bytes: &[u8],
    ) -> (Result<Option<Preamble>, WireError>, usize) {
        let mut p = PreambleParser::new(limits);
        for (i, b) in bytes.iter().enumerate() {
            match p.push(std::slice::from_ref(b)) {
                Ok(None) => continue,
                other => return (other, i + 1),
            }
        }
        (Ok(None), bytes.len())
    }

    #[test]
    fn parses_bare_prelude_in_one_chunk() {
        let p = parse_all(&frame(b"\n\n", b"watch,user=fier"))
            .unwrap()
            .unwrap();
        assert_eq!(p.action, "watch,user=fier");
        assert!(p.leftover.is_empty());
        assert_eq!(p.prelude, PreludeKind::Blank);
        assert_eq!(p.prelude_len, 2);
    }

    #[test]
    fn parses_no_prelude_form() {
        let p = parse_all(&frame(b"", b"token,user=a,user_password=b"))
            .unwrap()
            .unwrap();
        assert_eq!(p.action, "token,user=a,user_password=b");
        assert_eq!(p.prelude, PreludeKind::None);
        assert_eq!(p.prelude_len, 0);
    }

    #[test]
    fn parses_http_header_prelude() {
        let head = b"GET /fstream HTTP/1.1\r\nHost: example.org:61920\r\nUser-Agent: x\r\n\r\n";
        let p = parse_all(&frame(head, b"watch,user=fier"))
            .unwrap()
            .unwrap();
        assert_eq!(p.action, "watch,user=fier");
        assert_eq!(p.prelude, PreludeKind::Headers);
        assert_eq!(p.prelude_len, head.len());
    }

    #[test]
    fn prelude_ends_at_first_blank_line() {
        // "\r\n\r\n" contains "\n\r\n"; "\r\n\n" contains "\n\n"; "\n\r\r\n" is not a blank line.
        for (head, len) in [
            (&b"\r\n\r\n"[..], 4),
            (b"a\r\n\n", 4),
            (b"x\ny\n\n", 5),
            (b"\n\r\n", 3),
        ] {
            let p = parse_all(&frame(head, b"watch,user=u")).unwrap().unwrap();
            assert_eq!(p.prelude_len, len, "{head:?}");
            assert_eq!(p.action, "watch,user=u");
        }
        // Not a terminator: the parser keeps looking, and the length bytes become prelude junk.
        let mut p = PreambleParser::default();
        assert_eq!(p.push(b"a\n\r\rb\nc").unwrap(), None);
        assert_eq!(
            p.end_of_input(),
            Err(WireError::Truncated { stage: "prelude" })
        );
    }

    #[test]
    fn returns_stream_bytes_that_follow_the_action() {
        let mut bytes = frame(b"\n\n", b"broadcast,user=a,token=t");
        bytes.extend_from_slice(b"\x47stream bytes\x00\x01");
        let p = parse_all(&bytes).unwrap().unwrap();
        assert_eq!(p.action, "broadcast,user=a,token=t");
        assert_eq!(p.leftover, b"\x47stream bytes\x00\x01");
    }

    #[test]
    fn byte_by_byte_feeding_matches_one_chunk() {
        let heads: [&[u8]; 4] = [
            b"\n\n",
            b"",
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"\r\n\r\n",
        ];
        for head in heads {
            let bytes = frame(head, "watch,user=fïer,channel=ñ".as_bytes());
            let (res, used) = parse_bytewise(Limits::default(), &bytes);
            let p = res.unwrap().unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(p.action, "watch,user=fïer,channel=ñ");
            assert!(p.leftover.is_empty());
            assert_eq!(Some(p), parse_all(&bytes).unwrap());
        }
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let mut bytes = frame(b"GET / HTTP/1.0\r\n\r\n", b"watch,user=u");
        bytes.extend_from_slice(b"tail");
        let whole = parse_all(&bytes).unwrap().unwrap();
        for cut in 0..=bytes.len() {
            let mut p = PreambleParser::default();
            let (got, mut after) = match p.push(&bytes[..cut]).unwrap() {
                // Completed by the first chunk: the second one is all stream bytes.
                Some(pre) => (pre, bytes[cut..].to_vec()),
                None => (p.push(&bytes[cut..]).unwrap().unwrap(), Vec::new()),
            };
            assert_eq!(got.action, whole.action);
            let mut stream = got.leftover.clone();
            stream.append(&mut after);
            assert_eq!(stream, b"tail", "cut at {cut}");
        }
    }

    #[test]
    fn empty_chunks_are_harmless() {
        let mut p = PreambleParser::default();
        assert_eq!(p.push(b"").unwrap(), None);
        assert_eq!(p.end_of_input(), Ok(()));
        assert_eq!(p.push(b"\n").unwrap(), None);
        assert_eq!(p.push(b"").unwrap(), None);
        assert_eq!(p.push(b"\n").unwrap(), None);
        let res = p.push(&frame(b"", b"watch,user=a")).unwrap().unwrap();
        assert_eq!(res.action, "watch,user=a");
    }

    #[test]
    fn rejects_prelude_without_blank_line_within_limit() {
        let limits = Limits::default();
        let junk = vec![b'a'; DEFAULT_MAX_PRELUDE + 10];
        assert_eq!(
            parse_all(&junk),
            Err(WireError::PreludeTooLong {
                limit: DEFAULT_MAX_PRELUDE
            })
        );
        // Byte by byte, it fails exactly at the limit.
        let (res, used) = parse_bytewise(limits, &junk);
        assert_eq!(
            res,
            Err(WireError::PreludeTooLong {
                limit: DEFAULT_MAX_PRELUDE
            })
        );
        assert_eq!(used, DEFAULT_MAX_PRELUDE);
    }

    #[test]
    fn prelude_of_exactly_the_limit_is_accepted() {
        let limits = Limits {
            max_prelude: 16,
            ..Limits::default()
        };
        let mut head = vec![b'h'; 14];
        head.extend_from_slice(b"\n\n");
        let bytes = frame(&head, b"watch,user=u");
        assert_eq!(
            PreambleParser::new(limits)
                .push(&bytes)
                .unwrap()
                .unwrap()
                .prelude_len,
            16
        );
        let (res, _) = parse_bytewise(limits, &bytes);
        assert!(res.unwrap().is_some());

        let mut head = vec![b'h'; 15];
        head.extend_from_slice(b"\n\n");
        let bytes = frame(&head, b"watch,user=u");
        let err = Err(WireError::PreludeTooLong { limit: 16 });
        assert_eq!(PreambleParser::new(limits).push(&bytes), err);
        assert_eq!(parse_bytewise(limits, &bytes).0, err);
    }

    #[test]
    fn rejects_length_zero() {
        assert_eq!(parse_all(b"\n\n\0\0\0\0\0"), Err(WireError::LengthZero));
        assert_eq!(parse_all(b"\0\0\0\0"), Err(WireError::LengthZero));
        assert_eq!(
            parse_bytewise(Limits::default(), b"\0\0\0\0\0abc"),
            (Err(WireError::LengthZero), 4)
        );
    }

    #[test]
    fn rejects_length_too_large_before_reading_the_action() {
        let err = Err(WireError::LengthTooLarge {
            length: 4097,
            limit: 4096,
        });
        assert_eq!(parse_all(&4097u32.to_be_bytes()), err);
        assert_eq!(
            parse_all(b"\n\n\xff\xff\xff\xff"),
            Err(WireError::LengthTooLarge {
                length: u32::MAX,
                limit: 4096
            })
        );
        // 4096 itself is fine.
        let action = format!("watch,user={}", "u".repeat(4096 - 11));
        assert_eq!(action.len(), 4096);
        assert_eq!(
            parse_all(&frame(b"\n\n", action.as_bytes()))
                .unwrap()
                .unwrap()
                .action,
            action
        );
        // A custom limit.
        let limits = Limits {
            max_action_len: 8,
            ..Limits::default()
        };
        assert_eq!(
            PreambleParser::new(limits).push(&frame(b"\n\n", b"watch,user=a")),
            Err(WireError::LengthTooLarge {
                length: 12,
                limit: 8
            })
        );
    }

    #[test]
    fn rejects_missing_nul() {
        let mut bytes = b"\n\n".to_vec();
        bytes.extend_from_slice(&5u32.to_be_bytes());
        bytes.extend_from_slice(b"Xwatch");
        assert_eq!(
            parse_all(&bytes),
            Err(WireError::MissingNul { found: b'X' })
        );
        assert_eq!(
            parse_bytewise(Limits::default(), &bytes),
            (Err(WireError::MissingNul { found: b'X' }), 7)
        );
    }

    #[test]
    fn rejects_invalid_utf8() {
        let err = Err(WireError::InvalidUtf8 { valid_up_to: 6 });
        let bytes = frame(b"\n\n", b"watch,\xff\xfe");
        assert_eq!(parse_all(&bytes), err);
        assert_eq!(parse_bytewise(Limits::default(), &bytes).0, err);
        // A code point cut by the end of the action.
        let bytes = frame(b"", &"watch,user=ü".as_bytes()[..12]);
        assert_eq!(
            parse_all(&bytes),
            Err(WireError::InvalidUtf8 { valid_up_to: 11 })
        );
    }

    #[test]
    fn reports_truncation_by_stage() {
        for (bytes, stage) in [
            (&b"\n"[..], "prelude"),
            (b"GET / HTTP/1.1\r\n", "prelude"),
            (b"\n\n\0\0", "length"),
            (b"\0\0\0\x05", "NUL byte"),
            (b"\0\0\0\x05\0wat", "action"),
        ] {
            let mut p = PreambleParser::default();
            assert_eq!(p.push(bytes), Ok(None), "{bytes:?}");
            assert_eq!(p.end_of_input(), Err(WireError::Truncated { stage }));
            // Failed for good.
            assert_eq!(p.push(b"more"), Err(WireError::Truncated { stage }));
        }
    }

    #[test]
    fn errors_are_sticky_and_completion_is_final() {
        let mut p = PreambleParser::default();
        assert_eq!(p.push(b"\0\0\0\0"), Err(WireError::LengthZero));
        assert_eq!(
            p.push(&frame(b"", b"watch,user=a")),
            Err(WireError::LengthZero)
        );
        assert_eq!(p.end_of_input(), Err(WireError::LengthZero));

        let mut p = PreambleParser::default();
        assert!(p.push(&frame(b"", b"watch,user=a")).unwrap().is_some());
        assert!(p.is_complete());
        assert_eq!(p.end_of_input(), Ok(()));
        assert_eq!(p.push(b"x"), Err(WireError::AlreadyComplete));
    }

    #[test]
    fn never_panics_on_arbitrary_input() {
        // A small deterministic generator (no rand dependency): xorshift over several shapes.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let limits = Limits {
            max_prelude: 64,
            max_action_len: 32,
        };
        for round in 0..5000 {
            let len = (next() % 120) as usize;
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| match next() % 8 {
                    0 => 0,
                    1 => b'\n',
                    2 => b'\r',
                    3 => 0xff,
                    _ => (next() % 256) as u8,
                })
                .collect();
            if round % 3 == 0 && len > 6 {
                // Plausible frames with random lengths.
                bytes[0] = b'\n';
                bytes[1] = b'\n';
                bytes[2] = 0;
                bytes[3] = 0;
            }
            let mut p = PreambleParser::new(limits);
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = 1 + (next() as usize % rest.len());
                match p.push(&rest[..n]) {
                    Ok(None) => rest = &rest[n..],
                    Ok(Some(pre)) => {
                        assert!(!pre.action.is_empty() && pre.action.len() <= 32);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let _ = p.end_of_input();
        }
    }

    #[test]
    fn encodes_each_prelude_form() {
        assert_eq!(
            encode_preamble("watch,user=a", Prelude::Blank),
            frame(b"\n\n", b"watch,user=a")
        );
        assert_eq!(
            encode_preamble("watch,user=a", Prelude::None),
            frame(b"", b"watch,user=a")
        );
        assert_eq!(
            encode_preamble("watch,user=a", Prelude::Http { host: "h:1".into() }),
            frame(b"GET / HTTP/1.1\r\nHost: h:1\r\n\r\n", b"watch,user=a")
        );
        // A host cannot smuggle a blank line.
        assert_eq!(
            encode_preamble(
                "t",
                Prelude::Http {
                    host: "a\n\nb".into()
                }
            ),
            frame(b"GET / HTTP/1.1\r\nHost: ab\r\n\r\n", b"t")
        );
        assert_eq!(
            encode_preamble(
                "t",
                Prelude::Http {
                    host: String::new()
                }
            ),
            frame(b"GET / HTTP/1.1\r\n\r\n", b"t")
        );
    }

    #[test]
    fn encoded_preambles_round_trip() {
        for prelude in [
            Prelude::Blank,
            Prelude::None,
            Prelude::Http {
                host: "[::1]:61920".into(),
            },
        ] {
            let mut bytes = encode_preamble("broadcast,user=ä,token=abc", prelude.clone());
            bytes.extend_from_slice(b"\0\0data");
            let p = parse_bytewise(Limits::default(), &bytes);
            // Bytewise feeding completes at the action's last byte; data would come later.
            assert_eq!(p.1, bytes.len() - 6);
            let p = parse_all(&bytes).unwrap().unwrap();
            assert_eq!(p.action, "broadcast,user=ä,token=abc");
            assert_eq!(p.leftover, b"\0\0data");
            let kind = match prelude {
                Prelude::Blank => PreludeKind::Blank,
                Prelude::None => PreludeKind::None,
                Prelude::Http { .. } => PreludeKind::Headers,
            };
            assert_eq!(p.prelude, kind);
        }
    }
}
