//! AMF3 encoder. Strings are de-duplicated through the string reference table; traits and
//! objects are always written inline (valid AMF3, and our values are trees anyway).

use std::collections::HashMap;

use super::{marker, Amf3Error, Amf3Value, INTEGER_MAX, INTEGER_MIN};

/// Largest length or count a U29 header can carry after its flag bit.
const U28_MAX: usize = (1 << 28) - 1;

/// One AMF3 encoding context (one string reference table). Use a fresh encoder per AMF0
/// `avmplus` switch or per message, as the decoder on the other side does.
#[derive(Debug, Default)]
pub struct Amf3Encoder {
    strings: HashMap<String, usize>,
}

/// Encodes one value with a fresh context.
pub fn to_vec(value: &Amf3Value) -> Result<Vec<u8>, Amf3Error> {
    let mut out = Vec::new();
    Amf3Encoder::new().encode(value, &mut out)?;
    Ok(out)
}

fn put_u29(out: &mut Vec<u8>, v: u32) {
    let v = v & 0x1FFF_FFFF;
    if v < 0x80 {
        out.push(v as u8);
    } else if v < 0x4000 {
        out.extend_from_slice(&[0x80 | (v >> 7) as u8, (v & 0x7F) as u8]);
    } else if v < 0x20_0000 {
        out.extend_from_slice(&[
            0x80 | (v >> 14) as u8,
            0x80 | ((v >> 7) & 0x7F) as u8,
            (v & 0x7F) as u8,
        ]);
    } else {
        out.extend_from_slice(&[
            0x80 | (v >> 22) as u8,
            0x80 | ((v >> 15) & 0x7F) as u8,
            0x80 | ((v >> 8) & 0x7F) as u8,
            (v & 0xFF) as u8,
        ]);
    }
}

/// Writes a U29 whose low bit is the "inline" flag and the rest a length or count.
fn put_inline_len(out: &mut Vec<u8>, len: usize, what: &'static str) -> Result<(), Amf3Error> {
    if len > U28_MAX {
        return Err(Amf3Error::TooLong { what, len });
    }
    put_u29(out, ((len as u32) << 1) | 1);
    Ok(())
}

impl Amf3Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the AMF3 encoding of `value` (marker included) to `out`.
    pub fn encode(&mut self, value: &Amf3Value, out: &mut Vec<u8>) -> Result<(), Amf3Error> {
        match value {
            Amf3Value::Undefined => out.push(marker::UNDEFINED),
            Amf3Value::Null => out.push(marker::NULL),
            Amf3Value::Boolean(false) => out.push(marker::FALSE),
            Amf3Value::Boolean(true) => out.push(marker::TRUE),
            Amf3Value::Integer(i) if (INTEGER_MIN..=INTEGER_MAX).contains(i) => {
                out.push(marker::INTEGER);
                put_u29(out, *i as u32);
            }
            Amf3Value::Integer(i) => {
                // Out of the 29-bit range: the format says to send a double.
                out.push(marker::DOUBLE);
                out.extend_from_slice(&f64::from(*i).to_be_bytes());
            }
            Amf3Value::Double(d) => {
                out.push(marker::DOUBLE);
                out.extend_from_slice(&d.to_be_bytes());
            }
            Amf3Value::String(s) => {
                out.push(marker::STRING);
                self.string(s, out)?;
            }
            Amf3Value::XmlDocument(s) | Amf3Value::Xml(s) => {
                out.push(if matches!(value, Amf3Value::Xml(_)) {
                    marker::XML
                } else {
                    marker::XML_DOC
                });
                put_inline_len(out, s.len(), "XML")?;
                out.extend_from_slice(s.as_bytes());
            }
            Amf3Value::Date(ms) => {
                out.extend_from_slice(&[marker::DATE, 0x01]);
                out.extend_from_slice(&ms.to_be_bytes());
            }
            Amf3Value::Array(a) => {
                out.push(marker::ARRAY);
                put_inline_len(out, a.dense.len(), "array")?;
                for (k, v) in &a.assoc {
                    if k.is_empty() {
                        return Err(Amf3Error::EmptyKey);
                    }
                    self.string(k, out)?;
                    self.encode(v, out)?;
                }
                out.push(0x01);
                for v in &a.dense {
                    self.encode(v, out)?;
                }
            }
            Amf3Value::Object(o) => {
                out.push(marker::OBJECT);
                if o.sealed.len() > (1 << 25) - 1 {
                    return Err(Amf3Error::TooLong {
                        what: "sealed member list",
                        len: o.sealed.len(),
                    });
                }
                // inline object, inline traits, not externalizable, dynamic flag, sealed count
                let h = ((o.sealed.len() as u32) << 4) | (u32::from(o.dynamic) << 3) | 0b011;
                put_u29(out, h);
                self.string(&o.class_name, out)?;
                for (k, _) in &o.sealed {
                    self.string(k, out)?;
                }
                for (_, v) in &o.sealed {
                    self.encode(v, out)?;
                }
                if o.dynamic {
                    for (k, v) in &o.dynamic_members {
                        if k.is_empty() {
                            return Err(Amf3Error::EmptyKey);
                        }
                        self.string(k, out)?;
                        self.encode(v, out)?;
                    }
                    out.push(0x01);
                }
            }
            Amf3Value::ByteArray(b) => {
                out.push(marker::BYTE_ARRAY);
                put_inline_len(out, b.len(), "byte array")?;
                out.extend_from_slice(b);
            }
        }
        Ok(())
    }

    /// A string body (no marker), by reference when already sent in this context.
    fn string(&mut self, s: &str, out: &mut Vec<u8>) -> Result<(), Amf3Error> {
        if let Some(&i) = self.strings.get(s) {
            put_u29(out, (i as u32) << 1);
            return Ok(());
        }
        put_inline_len(out, s.len(), "string")?;
        out.extend_from_slice(s.as_bytes());
        if !s.is_empty() && self.strings.len() < U28_MAX {
            self.strings.insert(s.to_owned(), self.strings.len());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amf3::{decode, Amf3Array, Amf3Object};
    use crate::AmfLimits;

    fn rt(v: &Amf3Value) -> Amf3Value {
        let bytes = to_vec(v).unwrap();
        let (back, used) = decode(&bytes, &AmfLimits::default()).unwrap();
        assert_eq!(used, bytes.len());
        back
    }

    #[test]
    fn u29_boundaries_round_trip() {
        for i in [
            0,
            1,
            127,
            128,
            0x3FFF,
            0x4000,
            0x1F_FFFF,
            0x20_0000,
            INTEGER_MAX,
            -1,
            -128,
            INTEGER_MIN,
        ] {
            assert_eq!(rt(&Amf3Value::Integer(i)), Amf3Value::Integer(i), "{i}");
        }
        assert_eq!(
            rt(&Amf3Value::Integer(INTEGER_MAX + 1)),
            Amf3Value::Double(f64::from(INTEGER_MAX + 1))
        );
    }

    #[test]
    fn complex_round_trip_uses_string_refs() {
        let obj = |n: i32| {
            Amf3Value::Object(Amf3Object {
                class_name: "flex.Msg".into(),
                dynamic: true,
                sealed: vec![("id".into(), Amf3Value::Integer(n))],
                dynamic_members: vec![("tag".into(), Amf3Value::String("tag".into()))],
            })
        };
        let v = Amf3Value::Array(Amf3Array {
            assoc: vec![("name".into(), Amf3Value::String("name".into()))],
            dense: vec![
                obj(1),
                obj(2),
                Amf3Value::Date(1.0e12),
                Amf3Value::Xml("<x/>".into()),
                Amf3Value::XmlDocument("<y/>".into()),
                Amf3Value::ByteArray(vec![0, 1, 2]),
                Amf3Value::Double(0.25),
                Amf3Value::Null,
                Amf3Value::Undefined,
                Amf3Value::Boolean(true),
                Amf3Value::String(String::new()),
                Amf3Value::Object(Amf3Object::anonymous([("a", Amf3Value::Null)])),
            ],
        });
        assert_eq!(rt(&v), v);
        let bytes = to_vec(&v).unwrap();
        // "flex.Msg" appears once on the wire thanks to the string table.
        let hits = bytes.windows(8).filter(|w| w == b"flex.Msg").count();
        assert_eq!(hits, 1);
    }

    #[test]
    fn exact_bytes() {
        assert_eq!(
            to_vec(&Amf3Value::Object(Amf3Object::anonymous([(
                "a",
                Amf3Value::Integer(1)
            )])))
            .unwrap(),
            vec![0x0A, 0x0B, 0x01, 0x03, b'a', 0x04, 0x01, 0x01]
        );
        assert_eq!(
            to_vec(&Amf3Value::Object(Amf3Object::anonymous([(
                "",
                Amf3Value::Null
            )]))),
            Err(Amf3Error::EmptyKey)
        );
    }

    #[test]
    fn every_truncation_fails() {
        let v = Amf3Value::Array(Amf3Array {
            assoc: vec![("k".into(), Amf3Value::Integer(300))],
            dense: vec![Amf3Value::Object(Amf3Object::anonymous([(
                "s",
                Amf3Value::String("str".into()),
            )]))],
        });
        let bytes = to_vec(&v).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], &AmfLimits::default()).is_err());
        }
    }
}
