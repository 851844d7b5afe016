//! AMF0 decoder with depth and output budgets.

use super::{marker, Amf0Error, Amf0Value, Properties};
use crate::amf3::Amf3Decoder;
use crate::limits::{AmfLimits, Budget};
use crate::reader::Reader;

/// Decodes one AMF0 value from the start of `input`.
///
/// Returns the value and the number of bytes it used, so callers can decode a sequence or find
/// where a known prefix ends.
pub fn decode(input: &[u8], limits: &AmfLimits) -> Result<(Amf0Value, usize), Amf0Error> {
    let mut r = Reader::new(input);
    let mut budget = Budget::new(*limits);
    let v = value(&mut r, &mut budget, 0)?;
    Ok((v, r.pos()))
}

/// Decodes consecutive AMF0 values until `input` is exhausted (one budget for all of them), as
/// found in command and data message payloads.
pub fn decode_all(input: &[u8], limits: &AmfLimits) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut r = Reader::new(input);
    let mut budget = Budget::new(*limits);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(value(&mut r, &mut budget, 0)?);
    }
    Ok(out)
}

pub(crate) fn value(
    r: &mut Reader<'_>,
    budget: &mut Budget,
    depth: usize,
) -> Result<Amf0Value, Amf0Error> {
    let limit = budget.limits().max_depth;
    if depth > limit {
        return Err(Amf0Error::TooDeep { limit });
    }
    budget.node()?;
    let offset = r.pos();
    let m = r.u8()?;
    Ok(match m {
        marker::NUMBER => Amf0Value::Number(r.f64_be()?),
        marker::BOOLEAN => Amf0Value::Boolean(r.u8()? != 0),
        marker::STRING => Amf0Value::String(short_string(r, budget)?),
        marker::OBJECT => Amf0Value::Object(properties(r, budget, depth + 1, false)?),
        marker::NULL => Amf0Value::Null,
        marker::UNDEFINED => Amf0Value::Undefined,
        marker::REFERENCE => Amf0Value::Reference(r.u16_be()?),
        marker::ECMA_ARRAY => {
            // The count is advisory (many writers get it wrong); the end marker terminates.
            let _count = r.u32_be()?;
            Amf0Value::EcmaArray(properties(r, budget, depth + 1, true)?)
        }
        marker::OBJECT_END => return Err(Amf0Error::UnexpectedObjectEnd { offset }),
        marker::STRICT_ARRAY => {
            let count = r.u32_be()? as usize;
            // Every element takes at least one byte: never pre-allocate beyond the input.
            let mut items = Vec::with_capacity(count.min(r.remaining()));
            for _ in 0..count {
                items.push(value(r, budget, depth + 1)?);
            }
            Amf0Value::StrictArray(items)
        }
        marker::DATE => {
            let millis = r.f64_be()?;
            let timezone = r.i16_be()?;
            Amf0Value::Date { millis, timezone }
        }
        marker::LONG_STRING => Amf0Value::LongString(long_string(r, budget)?),
        marker::UNSUPPORTED => Amf0Value::Unsupported,
        marker::XML_DOCUMENT => Amf0Value::XmlDocument(long_string(r, budget)?),
        marker::TYPED_OBJECT => {
            let class_name = short_string(r, budget)?;
            let properties = properties(r, budget, depth + 1, false)?;
            Amf0Value::TypedObject {
                class_name,
                properties,
            }
        }
        marker::AVMPLUS_OBJECT => {
            // Each switch starts fresh AMF3 reference tables; the budget is shared.
            let mut d = Amf3Decoder::new(r, budget);
            Amf0Value::Avmplus(Box::new(d.value(depth)?))
        }
        marker::MOVIECLIP | marker::RECORDSET => {
            return Err(Amf0Error::UnsupportedMarker { marker: m, offset })
        }
        _ => return Err(Amf0Error::UnknownMarker { marker: m, offset }),
    })
}

fn utf8(bytes: &[u8]) -> String {
    // Lossy on purpose: some encoders put Latin-1 in metadata, which must not reject a stream.
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn short_string(r: &mut Reader<'_>, budget: &mut Budget) -> Result<String, Amf0Error> {
    let len = usize::from(r.u16_be()?);
    let bytes = r.bytes(len)?;
    budget.bytes(len)?;
    Ok(utf8(bytes))
}

fn long_string(r: &mut Reader<'_>, budget: &mut Budget) -> Result<String, Amf0Error> {
    let len = r.u32_be()? as usize;
    let bytes = r.bytes(len)?;
    budget.bytes(len)?;
    Ok(utf8(bytes))
}

/// Key/value pairs up to the `00 00 09` end marker. ECMA arrays may also end with the input
/// (`end_at_eof`), which some metadata writers do.
fn properties(
    r: &mut Reader<'_>,
    budget: &mut Budget,
    depth: usize,
    end_at_eof: bool,
) -> Result<Properties, Amf0Error> {
    let mut props = Vec::new();
    loop {
        if end_at_eof && r.is_empty() {
            return Ok(props);
        }
        let key = short_string(r, budget)?;
        if key.is_empty() && r.peek_u8() == Some(marker::OBJECT_END) {
            r.u8()?;
            return Ok(props);
        }
        let v = value(r, budget, depth)?;
        props.push((key, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amf3::Amf3Value;

    fn lim() -> AmfLimits {
        AmfLimits::default()
    }

    #[test]
    fn decodes_scalars() {
        let bytes = [0x00, 0x40, 0x08, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode(&bytes, &lim()), Ok((Amf0Value::Number(3.0), 9)));
        assert_eq!(
            decode(&[0x01, 0x01], &lim()),
            Ok((Amf0Value::Boolean(true), 2))
        );
        assert_eq!(
            decode(&[0x02, 0x00, 0x02, b'h', b'i', 0xFF], &lim()),
            Ok((Amf0Value::String("hi".into()), 5))
        );
        assert_eq!(decode(&[0x05], &lim()), Ok((Amf0Value::Null, 1)));
        assert_eq!(decode(&[0x06], &lim()), Ok((Amf0Value::Undefined, 1)));
        assert_eq!(
            decode(&[0x07, 0x00, 0x03], &lim()),
            Ok((Amf0Value::Reference(3), 3))
        );
        assert_eq!(decode(&[0x0D], &lim()), Ok((Amf0Value::Unsupported, 1)));
    }

    #[test]
    fn decodes_connect_command_object() {
        // "connect", 1.0, {app: "live", objectEncoding: 0}
        let mut b = vec![0x02, 0x00, 0x07];
        b.extend_from_slice(b"connect");
        b.push(0x00);
        b.extend_from_slice(&1.0f64.to_be_bytes());
        b.push(0x03);
        b.extend_from_slice(&[0x00, 0x03]);
        b.extend_from_slice(b"app");
        b.extend_from_slice(&[0x02, 0x00, 0x04]);
        b.extend_from_slice(b"live");
        b.extend_from_slice(&[0x00, 0x0E]);
        b.extend_from_slice(b"objectEncoding");
        b.push(0x00);
        b.extend_from_slice(&0.0f64.to_be_bytes());
        b.extend_from_slice(&[0x00, 0x00, 0x09]);
        let values = decode_all(&b, &lim()).unwrap();
        assert_eq!(values.len(), 3);
        assert_eq!(values[0].as_str(), Some("connect"));
        assert_eq!(values[1].as_f64(), Some(1.0));
        assert_eq!(values[2].get_str("app"), Some("live"));
        assert_eq!(values[2].get_f64("objectEncoding"), Some(0.0));
    }

    #[test]
    fn ecma_array_without_end_marker_is_accepted() {
        let mut b = vec![0x08, 0, 0, 0, 1, 0x00, 0x01, b'a', 0x01, 0x00];
        let (v, n) = decode(&b, &lim()).unwrap();
        assert_eq!(n, b.len());
        assert_eq!(v.get("a"), Some(&Amf0Value::Boolean(false)));
        // but an object is not
        b[0] = 0x03;
        b.drain(1..5);
        assert!(matches!(
            decode(&b, &lim()),
            Err(Amf0Error::Truncated { .. })
        ));
    }

    #[test]
    fn avmplus_switch() {
        // 0x11 then AMF3 string "abc"
        let b = [0x11, 0x06, 0x07, b'a', b'b', b'c'];
        let (v, n) = decode(&b, &lim()).unwrap();
        assert_eq!(n, 6);
        assert_eq!(
            v,
            Amf0Value::Avmplus(Box::new(Amf3Value::String("abc".into())))
        );
        assert_eq!(v.as_str(), Some("abc"));
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            decode(&[], &lim()),
            Err(Amf0Error::Truncated { offset: 0, .. })
        ));
        assert!(matches!(
            decode(&[0x00, 1, 2], &lim()),
            Err(Amf0Error::Truncated { .. })
        ));
        assert!(matches!(
            decode(&[0x02, 0x00, 0x05, b'a'], &lim()),
            Err(Amf0Error::Truncated { .. })
        ));
        assert_eq!(
            decode(&[0x42], &lim()),
            Err(Amf0Error::UnknownMarker {
                marker: 0x42,
                offset: 0
            })
        );
        assert_eq!(
            decode(&[0x09], &lim()),
            Err(Amf0Error::UnexpectedObjectEnd { offset: 0 })
        );
        assert!(matches!(
            decode(&[0x04], &lim()),
            Err(Amf0Error::UnsupportedMarker { marker: 0x04, .. })
        ));
        // strict array claiming 4 billion entries
        assert!(matches!(
            decode(&[0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05], &lim()),
            Err(Amf0Error::Truncated { .. })
        ));
        // long string claiming 4 GB
        assert!(matches!(
            decode(&[0x0C, 0xFF, 0xFF, 0xFF, 0xFF, b'a'], &lim()),
            Err(Amf0Error::Truncated { .. })
        ));
    }

    #[test]
    fn enforces_depth_and_budget() {
        // 100 nested strict arrays of one element
        let mut b = Vec::new();
        for _ in 0..100 {
            b.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
        }
        b.push(0x05);
        assert_eq!(decode(&b, &lim()), Err(Amf0Error::TooDeep { limit: 32 }));
        let deep_ok = AmfLimits {
            max_depth: 100,
            ..lim()
        };
        assert!(decode(&b, &deep_ok).is_ok());

        let many_nulls = [0x05u8; 10];
        let small = AmfLimits {
            max_nodes: 5,
            ..lim()
        };
        assert_eq!(
            decode_all(&many_nulls, &small),
            Err(Amf0Error::TooManyValues { limit: 5 })
        );
        let few_bytes = AmfLimits {
            max_bytes: 2,
            ..lim()
        };
        assert_eq!(
            decode(&[0x02, 0x00, 0x03, b'a', b'b', b'c'], &few_bytes),
            Err(Amf0Error::TooManyBytes { limit: 2 })
        );
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        let (v, _) = decode(&[0x02, 0x00, 0x02, 0xE9, b'a'], &lim()).unwrap();
        assert_eq!(v.as_str(), Some("\u{FFFD}a"));
    }
}
