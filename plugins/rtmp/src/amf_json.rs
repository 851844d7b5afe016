//! AMF0 ⇄ JSON for the app handler interface: connect arguments go out as JSON, commands an
//! app handler wants sent to the client come back as JSON and are sent as AMF0.

use fstream_media::amf0::Amf0Value;
use serde_json::{Map, Number, Value};

/// A JSON view of an AMF0 value. Numbers that JSON cannot hold (NaN, infinities), references
/// and AMF3 byte arrays become `null`; dates become their milliseconds.
pub fn to_json(v: &Amf0Value) -> Value {
    match v {
        Amf0Value::Number(n) => number(*n),
        Amf0Value::Boolean(b) => Value::Bool(*b),
        Amf0Value::String(s) | Amf0Value::LongString(s) | Amf0Value::XmlDocument(s) => {
            Value::String(s.clone())
        }
        Amf0Value::Object(p)
        | Amf0Value::EcmaArray(p)
        | Amf0Value::TypedObject { properties: p, .. } => Value::Object(
            p.iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Amf0Value::StrictArray(items) => Value::Array(items.iter().map(to_json).collect()),
        Amf0Value::Date { millis, .. } => number(*millis),
        Amf0Value::Null
        | Amf0Value::Undefined
        | Amf0Value::Reference(_)
        | Amf0Value::Unsupported
        | Amf0Value::Avmplus(_) => Value::Null,
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// The AMF0 form of a JSON value: objects become anonymous objects, arrays strict arrays.
pub fn from_json(v: &Value) -> Amf0Value {
    match v {
        Value::Null => Amf0Value::Null,
        Value::Bool(b) => Amf0Value::Boolean(*b),
        Value::Number(n) => Amf0Value::Number(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Amf0Value::String(s.clone()),
        Value::Array(items) => Amf0Value::StrictArray(items.iter().map(from_json).collect()),
        Value::Object(m) => {
            Amf0Value::Object(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// The arguments of a command an app handler sends: a JSON array is the argument list; any
/// other value is a single argument.
pub fn args_from_json(text: &str) -> Result<Vec<Amf0Value>, serde_json::Error> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    Ok(match serde_json::from_str::<Value>(text)? {
        Value::Array(items) => items.iter().map(from_json).collect(),
        other => vec![from_json(&other)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_arguments_become_json() {
        let obj = Amf0Value::object([
            ("app", Amf0Value::from("fier")),
            ("objectEncoding", Amf0Value::Number(0.0)),
            ("fpad", Amf0Value::Boolean(false)),
            ("audioCodecs", Amf0Value::Number(3575.5)),
            ("nan", Amf0Value::Number(f64::NAN)),
            ("list", Amf0Value::StrictArray(vec![Amf0Value::Null])),
        ]);
        let j = to_json(&obj);
        assert_eq!(
            j.to_string(),
            r#"{"app":"fier","audioCodecs":3575.5,"fpad":false,"list":[null],"nan":null,"objectEncoding":0}"#
        );
    }

    #[test]
    fn command_arguments_come_from_json() {
        let args = args_from_json(r#"[null, {"code": "x", "n": 2}, [true], "s"]"#).unwrap();
        assert_eq!(args.len(), 4);
        assert!(args[0].is_null());
        assert_eq!(args[1].get_str("code"), Some("x"));
        assert_eq!(args[1].get_f64("n"), Some(2.0));
        assert_eq!(args[3].as_str(), Some("s"));
        assert_eq!(args_from_json("7").unwrap(), vec![Amf0Value::Number(7.0)]);
        assert!(args_from_json("").unwrap().is_empty());
        assert!(args_from_json("[").is_err());
    }
}
