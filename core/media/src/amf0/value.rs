//! The AMF0 value model and its accessors.

use crate::amf3::Amf3Value;

/// Ordered key/value pairs of an object or ECMA array. Order is kept because encoders and
/// players (e.g. for `onMetaData`) care about it and keys may repeat on the wire.
pub type Properties = Vec<(String, Amf0Value)>;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    /// A UTF-8 string (invalid UTF-8 on the wire is decoded lossily). Encoded as a short string,
    /// or as a long string when it does not fit 65535 bytes.
    String(String),
    /// An anonymous object.
    Object(Properties),
    Null,
    Undefined,
    /// Index into the AMF0 object reference table; left unresolved (no expansion attacks).
    Reference(u16),
    /// An associative array (the wire count is advisory and not kept).
    EcmaArray(Properties),
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the Unix epoch; `timezone` is reserved and should be 0.
    Date {
        millis: f64,
        timezone: i16,
    },
    LongString(String),
    XmlDocument(String),
    TypedObject {
        class_name: String,
        properties: Properties,
    },
    /// The `unsupported` marker (0x0D), a value with no payload.
    Unsupported,
    /// An AMF3 value introduced by the `avmplus-object` marker (0x11).
    Avmplus(Box<Amf3Value>),
}

impl Amf0Value {
    /// Builds an anonymous object from pairs.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Amf0Value)>) -> Self {
        Amf0Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Builds an ECMA array from pairs.
    pub fn ecma_array<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Amf0Value)>) -> Self {
        Amf0Value::EcmaArray(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The string content of String/LongString (or an AMF3 string).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) | Amf0Value::LongString(s) => Some(s),
            Amf0Value::Avmplus(v) => v.as_str(),
            _ => None,
        }
    }

    /// The numeric value of a Number (or an AMF3 integer/double).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            Amf0Value::Avmplus(v) => v.as_f64(),
            _ => None,
        }
    }

    /// The value of a Boolean (or an AMF3 boolean).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf0Value::Boolean(b) => Some(*b),
            Amf0Value::Avmplus(v) => v.as_bool(),
            _ => None,
        }
    }

    /// True for Null and Undefined (in either encoding).
    pub fn is_null(&self) -> bool {
        match self {
            Amf0Value::Null | Amf0Value::Undefined => true,
            Amf0Value::Avmplus(v) => v.is_null(),
            _ => false,
        }
    }

    /// The pairs of an Object, EcmaArray or TypedObject.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p)
            | Amf0Value::EcmaArray(p)
            | Amf0Value::TypedObject { properties: p, .. } => Some(p),
            _ => None,
        }
    }

    /// The first property named `key` of an Object, EcmaArray or TypedObject.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Shortcut for `get(key)?.as_str()`.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// Shortcut for `get(key)?.as_f64()`.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    /// Converts any embedded AMF3 values into their AMF0 equivalents, recursively, so code can
    /// match on one model whatever encoding the peer chose. AMF3 byte arrays have no AMF0 form and
    /// stay wrapped in [`Amf0Value::Avmplus`].
    pub fn normalized(self) -> Amf0Value {
        fn props(p: Properties) -> Properties {
            p.into_iter().map(|(k, v)| (k, v.normalized())).collect()
        }
        match self {
            Amf0Value::Avmplus(v) => v.to_amf0(),
            Amf0Value::Object(p) => Amf0Value::Object(props(p)),
            Amf0Value::EcmaArray(p) => Amf0Value::EcmaArray(props(p)),
            Amf0Value::TypedObject {
                class_name,
                properties,
            } => Amf0Value::TypedObject {
                class_name,
                properties: props(properties),
            },
            Amf0Value::StrictArray(items) => {
                Amf0Value::StrictArray(items.into_iter().map(Amf0Value::normalized).collect())
            }
            other => other,
        }
    }
}

impl From<&str> for Amf0Value {
    fn from(s: &str) -> Self {
        Amf0Value::String(s.to_owned())
    }
}

impl From<String> for Amf0Value {
    fn from(s: String) -> Self {
        Amf0Value::String(s)
    }
}

impl From<f64> for Amf0Value {
    fn from(n: f64) -> Self {
        Amf0Value::Number(n)
    }
}

impl From<u32> for Amf0Value {
    fn from(n: u32) -> Self {
        Amf0Value::Number(f64::from(n))
    }
}

impl From<bool> for Amf0Value {
    fn from(b: bool) -> Self {
        Amf0Value::Boolean(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amf3::{Amf3Object, Amf3Value};

    #[test]
    fn accessors() {
        let v = Amf0Value::object([
            ("app", Amf0Value::from("live")),
            ("objectEncoding", Amf0Value::from(3.0)),
            ("flag", Amf0Value::from(true)),
        ]);
        assert_eq!(v.get_str("app"), Some("live"));
        assert_eq!(v.get_f64("objectEncoding"), Some(3.0));
        assert_eq!(v.get("flag").and_then(Amf0Value::as_bool), Some(true));
        assert_eq!(v.get("missing"), None);
        assert_eq!(Amf0Value::Null.get("x"), None);
        assert!(Amf0Value::Undefined.is_null());
        assert_eq!(Amf0Value::LongString("x".into()).as_str(), Some("x"));
        assert_eq!(
            Amf0Value::Avmplus(Box::new(Amf3Value::Integer(5))).as_f64(),
            Some(5.0)
        );
    }

    #[test]
    fn normalizes_amf3_objects() {
        let inner = Amf3Value::Object(Amf3Object {
            class_name: String::new(),
            dynamic: true,
            sealed: vec![("a".into(), Amf3Value::Integer(1))],
            dynamic_members: vec![("b".into(), Amf3Value::String("x".into()))],
        });
        let v = Amf0Value::StrictArray(vec![Amf0Value::Avmplus(Box::new(inner))]).normalized();
        let Amf0Value::StrictArray(items) = v else {
            panic!("not an array")
        };
        assert_eq!(items[0].get_f64("a"), Some(1.0));
        assert_eq!(items[0].get_str("b"), Some("x"));
    }
}
