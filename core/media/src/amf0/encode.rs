//! AMF0 encoder.

use super::{marker, Amf0Error, Amf0Value};
use crate::amf3::Amf3Encoder;

/// Appends the AMF0 encoding of `value` to `out`.
///
/// Fails only for lengths the format cannot express (a key over 65535 bytes, a string or array
/// over 4 GiB). On error `out` may hold a partial encoding.
pub fn encode(value: &Amf0Value, out: &mut Vec<u8>) -> Result<(), Amf0Error> {
    match value {
        Amf0Value::Number(n) => {
            out.push(marker::NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf0Value::Boolean(b) => out.extend_from_slice(&[marker::BOOLEAN, u8::from(*b)]),
        Amf0Value::String(s) => {
            if s.len() <= usize::from(u16::MAX) {
                out.push(marker::STRING);
                short_string(s, out, "string")?;
            } else {
                out.push(marker::LONG_STRING);
                long_string(s, out)?;
            }
        }
        Amf0Value::Object(p) => {
            out.push(marker::OBJECT);
            properties(p, out)?;
        }
        Amf0Value::Null => out.push(marker::NULL),
        Amf0Value::Undefined => out.push(marker::UNDEFINED),
        Amf0Value::Reference(i) => {
            out.push(marker::REFERENCE);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Amf0Value::EcmaArray(p) => {
            out.push(marker::ECMA_ARRAY);
            out.extend_from_slice(&count(p.len(), "ECMA array")?.to_be_bytes());
            properties(p, out)?;
        }
        Amf0Value::StrictArray(items) => {
            out.push(marker::STRICT_ARRAY);
            out.extend_from_slice(&count(items.len(), "strict array")?.to_be_bytes());
            for item in items {
                encode(item, out)?;
            }
        }
        Amf0Value::Date { millis, timezone } => {
            out.push(marker::DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&timezone.to_be_bytes());
        }
        Amf0Value::LongString(s) => {
            out.push(marker::LONG_STRING);
            long_string(s, out)?;
        }
        Amf0Value::XmlDocument(s) => {
            out.push(marker::XML_DOCUMENT);
            long_string(s, out)?;
        }
        Amf0Value::TypedObject {
            class_name,
            properties: p,
        } => {
            out.push(marker::TYPED_OBJECT);
            short_string(class_name, out, "class name")?;
            properties(p, out)?;
        }
        Amf0Value::Unsupported => out.push(marker::UNSUPPORTED),
        Amf0Value::Avmplus(v) => {
            out.push(marker::AVMPLUS_OBJECT);
            Amf3Encoder::new().encode(v, out)?;
        }
    }
    Ok(())
}

/// Appends the encodings of several values back to back (a command or data message body).
pub fn encode_all<'a>(
    values: impl IntoIterator<Item = &'a Amf0Value>,
    out: &mut Vec<u8>,
) -> Result<(), Amf0Error> {
    values.into_iter().try_for_each(|v| encode(v, out))
}

/// Encodes one value into a new buffer.
pub fn to_vec(value: &Amf0Value) -> Result<Vec<u8>, Amf0Error> {
    let mut out = Vec::new();
    encode(value, &mut out)?;
    Ok(out)
}

fn count(len: usize, what: &'static str) -> Result<u32, Amf0Error> {
    u32::try_from(len).map_err(|_| Amf0Error::TooLong { what, len })
}

pub(crate) fn short_string(
    s: &str,
    out: &mut Vec<u8>,
    what: &'static str,
) -> Result<(), Amf0Error> {
    let len = u16::try_from(s.len()).map_err(|_| Amf0Error::TooLong { what, len: s.len() })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn long_string(s: &str, out: &mut Vec<u8>) -> Result<(), Amf0Error> {
    out.extend_from_slice(&count(s.len(), "long string")?.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn properties(p: &[(String, Amf0Value)], out: &mut Vec<u8>) -> Result<(), Amf0Error> {
    for (k, v) in p {
        short_string(k, out, "property name")?;
        encode(v, out)?;
    }
    out.extend_from_slice(&[0x00, 0x00, marker::OBJECT_END]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amf0::{decode, decode_all};
    use crate::amf3::{Amf3Array, Amf3Value};
    use crate::AmfLimits;

    fn sample() -> Vec<Amf0Value> {
        vec![
            Amf0Value::Number(-1.5),
            Amf0Value::Boolean(false),
            Amf0Value::String("héllo".into()),
            Amf0Value::object([
                ("a", Amf0Value::Null),
                ("b", Amf0Value::StrictArray(vec![1.0.into(), "x".into()])),
            ]),
            Amf0Value::Undefined,
            Amf0Value::Reference(7),
            Amf0Value::ecma_array([("duration", Amf0Value::Number(12.5))]),
            Amf0Value::Date {
                millis: 1.7e12,
                timezone: 0,
            },
            Amf0Value::LongString("long".into()),
            Amf0Value::XmlDocument("<a/>".into()),
            Amf0Value::TypedObject {
                class_name: "com.example.T".into(),
                properties: vec![("k".into(), Amf0Value::Boolean(true))],
            },
            Amf0Value::Unsupported,
            Amf0Value::Avmplus(Box::new(Amf3Value::Array(Amf3Array {
                assoc: vec![("z".into(), Amf3Value::Integer(-3))],
                dense: vec![Amf3Value::String("d".into())],
            }))),
        ]
    }

    #[test]
    fn round_trips_every_variant() {
        let values = sample();
        for v in &values {
            let bytes = to_vec(v).unwrap();
            let (back, used) = decode(&bytes, &AmfLimits::default()).unwrap();
            assert_eq!(&back, v);
            assert_eq!(used, bytes.len());
        }
        let mut all = Vec::new();
        encode_all(&values, &mut all).unwrap();
        assert_eq!(decode_all(&all, &AmfLimits::default()).unwrap(), values);
    }

    #[test]
    fn exact_bytes() {
        assert_eq!(
            to_vec(&Amf0Value::object([("a", Amf0Value::Boolean(true))])).unwrap(),
            vec![0x03, 0x00, 0x01, b'a', 0x01, 0x01, 0x00, 0x00, 0x09]
        );
        assert_eq!(
            to_vec(&Amf0Value::ecma_array::<&str>([])).unwrap(),
            vec![0x08, 0, 0, 0, 0, 0x00, 0x00, 0x09]
        );
    }

    #[test]
    fn long_strings_switch_marker_and_long_keys_fail() {
        let s = "x".repeat(70_000);
        let bytes = to_vec(&Amf0Value::String(s.clone())).unwrap();
        assert_eq!(bytes[0], marker::LONG_STRING);
        assert_eq!(
            decode(&bytes, &AmfLimits::default()).unwrap().0,
            Amf0Value::LongString(s.clone())
        );
        let bad = Amf0Value::object([(s, Amf0Value::Null)]);
        assert_eq!(
            to_vec(&bad),
            Err(Amf0Error::TooLong {
                what: "property name",
                len: 70_000
            })
        );
    }

    #[test]
    fn truncations_of_valid_encodings_fail_cleanly() {
        let mut all = Vec::new();
        encode_all(&sample(), &mut all).unwrap();
        for cut in 0..all.len() {
            // Must not panic; a prefix may decode (fewer values) or fail.
            let _ = decode_all(&all[..cut], &AmfLimits::default());
        }
        for v in sample() {
            let bytes = to_vec(&v).unwrap();
            for cut in 0..bytes.len() {
                let r = decode(&bytes[..cut], &AmfLimits::default());
                // ECMA arrays may legitimately end at EOF between properties.
                if !matches!(v, Amf0Value::EcmaArray(_)) {
                    assert!(r.is_err(), "{v:?} cut at {cut} decoded");
                }
            }
        }
    }
}
