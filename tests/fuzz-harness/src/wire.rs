//! `fstream_preamble`: core/fstream-wire's `PreambleParser`, `Action` and `Request`.

use fstream_wire::{Action, Limits, Preamble, PreambleParser, Request, WireError};

/// What a parser made of a whole input: the preamble (with every byte after the action, fed or
/// not), or the error, or "needs more" and the answer to end of input.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done(Preamble),
    Failed(WireError),
    Incomplete(Result<(), WireError>),
}

fn run(limits: Limits, input: &[u8], step: usize) -> Outcome {
    let mut p = PreambleParser::new(limits);
    let mut fed = 0;
    for piece in input.chunks(step.max(1)) {
        fed += piece.len();
        match p.push(piece) {
            Ok(None) => {}
            Ok(Some(mut pre)) => {
                assert!(p.is_complete());
                assert_eq!(p.push(b"x"), Err(WireError::AlreadyComplete));
                pre.leftover
                    .extend_from_slice(input.get(fed..).unwrap_or_default());
                return Outcome::Done(pre);
            }
            Err(e) => {
                // A failed parser keeps failing the same way.
                assert_eq!(p.push(b"\n\n\0\0\0\x01\0a"), Err(e.clone()));
                return Outcome::Failed(e);
            }
        }
    }
    Outcome::Incomplete(p.end_of_input())
}

/// The parser fed at once and in pieces must agree; a parsed action must round-trip.
pub fn fstream_preamble(data: &[u8]) {
    let (c, input) = crate::control(data);
    let limits = if c & 0x80 != 0 {
        Limits {
            max_prelude: usize::from(c & 0x3F) + 1,
            max_action_len: u32::from(c & 0x3F) + 1,
        }
    } else {
        Limits::default()
    };
    let whole = run(limits, input, input.len());
    let pieces = run(limits, input, usize::from(c & 0x0F) + 1);
    assert_eq!(whole, pieces, "whole input vs pieces disagree");
    if let Outcome::Done(pre) = &whole {
        assert!(pre.prelude_len <= limits.max_prelude);
        assert!(!pre.action.is_empty() && pre.action.len() <= limits.max_action_len as usize);
        action(&pre.action);
    }
    // The action grammar is reachable directly too, so the fuzzer need not build a frame.
    if let Ok(text) = std::str::from_utf8(input) {
        action(text);
    }
}

fn action(text: &str) {
    let Ok(a) = Action::parse(text) else {
        assert!(Request::parse(text).is_err());
        return;
    };
    // The canonical text parses back to the same action.
    let canonical = a.to_string();
    assert_eq!(Action::parse(&canonical).as_ref(), Ok(&a), "{canonical:?}");
    let direct = Request::parse(text);
    assert_eq!(direct, Request::from_action(&a));
    if let Ok(parsed) = direct {
        // Debug output (what logs show) must be producible, and name the action.
        let shown = format!("{:?}", parsed.request);
        assert!(!shown.is_empty());
        assert_eq!(parsed.request.name(), a.name());
    }
}
