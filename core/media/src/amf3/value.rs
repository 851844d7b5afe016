//! The AMF3 value model, its accessors and the conversion to AMF0.

use crate::amf0::Amf0Value;

/// One AMF3 value, with references already resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf3Value {
    Undefined,
    Null,
    Boolean(bool),
    /// A 29-bit signed integer.
    Integer(i32),
    Double(f64),
    String(String),
    /// Legacy `flash.xml.XMLDocument`.
    XmlDocument(String),
    /// Milliseconds since the Unix epoch (UTC).
    Date(f64),
    Array(Amf3Array),
    Object(Amf3Object),
    /// E4X `XML`.
    Xml(String),
    ByteArray(Vec<u8>),
}

/// An AMF3 array: associative part (ordered) and dense part.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Amf3Array {
    pub assoc: Vec<(String, Amf3Value)>,
    pub dense: Vec<Amf3Value>,
}

/// An AMF3 object: sealed members come from its traits, dynamic members follow when `dynamic`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Amf3Object {
    /// Empty for anonymous objects.
    pub class_name: String,
    pub dynamic: bool,
    pub sealed: Vec<(String, Amf3Value)>,
    pub dynamic_members: Vec<(String, Amf3Value)>,
}

impl Amf3Object {
    /// An anonymous dynamic object, the form Flash uses for command objects.
    pub fn anonymous<K: Into<String>>(members: impl IntoIterator<Item = (K, Amf3Value)>) -> Self {
        Amf3Object {
            class_name: String::new(),
            dynamic: true,
            sealed: Vec::new(),
            dynamic_members: members.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }

    /// The first member named `key`, sealed members first.
    pub fn get(&self, key: &str) -> Option<&Amf3Value> {
        self.sealed
            .iter()
            .chain(self.dynamic_members.iter())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

impl Amf3Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf3Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Integer or Double as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf3Value::Integer(i) => Some(f64::from(*i)),
            Amf3Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf3Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Amf3Value::Null | Amf3Value::Undefined)
    }

    /// A member of an object, or an associative entry of an array.
    pub fn get(&self, key: &str) -> Option<&Amf3Value> {
        match self {
            Amf3Value::Object(o) => o.get(key),
            Amf3Value::Array(a) => a.assoc.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The closest AMF0 value: integers become numbers, anonymous objects become objects, named
    /// ones typed objects, arrays strict arrays (or ECMA arrays when they have associative keys,
    /// dense items keyed "0", "1", ...). Byte arrays stay wrapped in [`Amf0Value::Avmplus`].
    pub fn to_amf0(&self) -> Amf0Value {
        fn pairs(p: &[(String, Amf3Value)]) -> Vec<(String, Amf0Value)> {
            p.iter().map(|(k, v)| (k.clone(), v.to_amf0())).collect()
        }
        match self {
            Amf3Value::Undefined => Amf0Value::Undefined,
            Amf3Value::Null => Amf0Value::Null,
            Amf3Value::Boolean(b) => Amf0Value::Boolean(*b),
            Amf3Value::Integer(i) => Amf0Value::Number(f64::from(*i)),
            Amf3Value::Double(d) => Amf0Value::Number(*d),
            Amf3Value::String(s) => Amf0Value::String(s.clone()),
            Amf3Value::XmlDocument(s) | Amf3Value::Xml(s) => Amf0Value::XmlDocument(s.clone()),
            Amf3Value::Date(ms) => Amf0Value::Date {
                millis: *ms,
                timezone: 0,
            },
            Amf3Value::Array(a) if a.assoc.is_empty() => {
                Amf0Value::StrictArray(a.dense.iter().map(Amf3Value::to_amf0).collect())
            }
            Amf3Value::Array(a) => {
                let mut p = pairs(&a.assoc);
                p.extend(
                    a.dense
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (i.to_string(), v.to_amf0())),
                );
                Amf0Value::EcmaArray(p)
            }
            Amf3Value::Object(o) => {
                let mut p = pairs(&o.sealed);
                p.extend(pairs(&o.dynamic_members));
                if o.class_name.is_empty() {
                    Amf0Value::Object(p)
                } else {
                    Amf0Value::TypedObject {
                        class_name: o.class_name.clone(),
                        properties: p,
                    }
                }
            }
            Amf3Value::ByteArray(_) => Amf0Value::Avmplus(Box::new(self.clone())),
        }
    }
}

impl From<&str> for Amf3Value {
    fn from(s: &str) -> Self {
        Amf3Value::String(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_amf0() {
        let a = Amf3Value::Array(Amf3Array {
            assoc: vec![("k".into(), Amf3Value::Boolean(true))],
            dense: vec![Amf3Value::Integer(4)],
        });
        assert_eq!(
            a.to_amf0(),
            Amf0Value::ecma_array([
                ("k", Amf0Value::Boolean(true)),
                ("0", Amf0Value::Number(4.0))
            ])
        );
        let typed = Amf3Value::Object(Amf3Object {
            class_name: "C".into(),
            ..Default::default()
        });
        assert!(matches!(typed.to_amf0(), Amf0Value::TypedObject { .. }));
        let ba = Amf3Value::ByteArray(vec![1]);
        assert_eq!(ba.to_amf0(), Amf0Value::Avmplus(Box::new(ba.clone())));
        assert_eq!(Amf3Value::Date(5.0).to_amf0().as_f64(), None);
        assert_eq!(Amf3Value::from("s").get("x"), None);
    }
}
