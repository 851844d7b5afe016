//! Command messages (type 20 AMF0, type 17 AMF3) and data messages (type 18 AMF0, 15 AMF3).
//!
//! A type 17/15 payload is a format byte 0x00 followed by AMF0 values, any of which may switch
//! to AMF3 with the avmplus marker. Parsed values are normalized to the AMF0 model
//! ([`Amf0Value::normalized`]) so session code handles both encodings the same way.

use super::{msg_type, MessageError};
use crate::amf0::{self, marker, Amf0Value, AmfLimits, Properties};
use crate::rtmp::RtmpMessage;

/// How to encode a command we send: type 20, or type 17 (a 0x00 byte, then AMF0 values), which
/// clients that connected with `objectEncoding: 3` expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandEncoding {
    Amf0,
    Amf3,
}

impl CommandEncoding {
    /// The message type id: 20 or 17.
    pub fn type_id(self) -> u8 {
        match self {
            CommandEncoding::Amf0 => msg_type::COMMAND_AMF0,
            CommandEncoding::Amf3 => msg_type::COMMAND_AMF3,
        }
    }

    /// From the `objectEncoding` of a `connect` command object (3 means AMF3).
    pub fn from_object_encoding(object_encoding: f64) -> Self {
        if object_encoding == 3.0 {
            CommandEncoding::Amf3
        } else {
            CommandEncoding::Amf0
        }
    }
}

/// An RPC: `name`, transaction id, command object (often Null), then arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub name: String,
    pub transaction_id: f64,
    pub command_object: Amf0Value,
    pub args: Vec<Amf0Value>,
}

/// Skips the format byte of a type 17/15 payload. The byte is 0x00, which is also the AMF0
/// Number marker; a command or data name is a string, so a leading 0x00 is always the format
/// byte.
fn amf3_body(payload: &[u8]) -> &[u8] {
    match payload.split_first() {
        Some((&0, rest)) => rest,
        _ => payload,
    }
}

impl Command {
    pub fn new(
        name: impl Into<String>,
        transaction_id: f64,
        command_object: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Self {
        Command {
            name: name.into(),
            transaction_id,
            command_object,
            args,
        }
    }

    /// Parses a command message payload of type 20 or 17. A missing transaction id reads as 0 and
    /// a missing command object as Null.
    pub fn parse(type_id: u8, payload: &[u8], limits: &AmfLimits) -> Result<Self, MessageError> {
        let body = match type_id {
            msg_type::COMMAND_AMF0 => payload,
            msg_type::COMMAND_AMF3 => amf3_body(payload),
            other => return Err(MessageError::NotCommand(other)),
        };
        let mut values = amf0::decode_all(body, limits)?
            .into_iter()
            .map(Amf0Value::normalized);
        let name = match values.next() {
            Some(Amf0Value::String(s)) | Some(Amf0Value::LongString(s)) => s,
            _ => return Err(MessageError::MissingCommandName),
        };
        let transaction_id = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let command_object = values.next().unwrap_or(Amf0Value::Null);
        Ok(Command {
            name,
            transaction_id,
            command_object,
            args: values.collect(),
        })
    }

    /// Argument `i` after the command object.
    pub fn arg(&self, i: usize) -> Option<&Amf0Value> {
        self.args.get(i)
    }

    /// `_result` for transaction `transaction_id`.
    pub fn result(transaction_id: f64, command_object: Amf0Value, args: Vec<Amf0Value>) -> Self {
        Command::new("_result", transaction_id, command_object, args)
    }

    /// `_error` for transaction `transaction_id` (usually with a [`Status`] argument).
    pub fn error(transaction_id: f64, command_object: Amf0Value, args: Vec<Amf0Value>) -> Self {
        Command::new("_error", transaction_id, command_object, args)
    }

    /// `onStatus` with transaction 0, a Null command object and the info object.
    pub fn on_status(status: &Status) -> Self {
        Command::new("onStatus", 0.0, Amf0Value::Null, vec![status.to_amf0()])
    }

    /// The payload bytes in `encoding`.
    pub fn encode(&self, encoding: CommandEncoding) -> Result<Vec<u8>, MessageError> {
        let mut out = Vec::new();
        if encoding == CommandEncoding::Amf3 {
            out.push(0x00);
        }
        out.push(marker::STRING);
        let name_len = u16::try_from(self.name.len()).map_err(|_| {
            MessageError::Amf0(amf0::Amf0Error::TooLong {
                what: "command name",
                len: self.name.len(),
            })
        })?;
        out.extend_from_slice(&name_len.to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        amf0::encode(&Amf0Value::Number(self.transaction_id), &mut out)?;
        amf0::encode(&self.command_object, &mut out)?;
        amf0::encode_all(&self.args, &mut out)?;
        Ok(out)
    }

    /// The complete message (timestamp 0) on chunk stream `csid` and message stream `stream_id`.
    pub fn to_message(
        &self,
        encoding: CommandEncoding,
        csid: u32,
        stream_id: u32,
    ) -> Result<RtmpMessage, MessageError> {
        Ok(RtmpMessage::new(
            csid,
            0,
            encoding.type_id(),
            stream_id,
            self.encode(encoding)?,
        ))
    }
}

/// Parses a data message payload (type 18, or 15 with its format byte) into normalized values,
/// e.g. `["@setDataFrame", "onMetaData", {...}]` or `["|RtmpSampleAccess", true, true]`.
pub fn parse_data(
    type_id: u8,
    payload: &[u8],
    limits: &AmfLimits,
) -> Result<Vec<Amf0Value>, MessageError> {
    let body = match type_id {
        msg_type::DATA_AMF0 => payload,
        msg_type::DATA_AMF3 => amf3_body(payload),
        other => return Err(MessageError::NotData(other)),
    };
    Ok(amf0::decode_all(body, limits)?
        .into_iter()
        .map(Amf0Value::normalized)
        .collect())
}

/// The info object of `onStatus` / `_error` replies: level, code, description, extra fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// "status", "warning" or "error".
    pub level: String,
    /// e.g. "NetStream.Play.Start".
    pub code: String,
    pub description: String,
    /// Further fields appended after the three above (e.g. `details`, `clientid`, `objectEncoding`).
    pub extra: Properties,
}

impl Status {
    /// Level "status".
    #[allow(clippy::self_named_constructors)] // reads as the level name, like `error`/`warning`
    pub fn status(code: impl Into<String>, description: impl Into<String>) -> Self {
        Self::with_level("status", code, description)
    }

    /// Level "error".
    pub fn error(code: impl Into<String>, description: impl Into<String>) -> Self {
        Self::with_level("error", code, description)
    }

    /// Level "warning".
    pub fn warning(code: impl Into<String>, description: impl Into<String>) -> Self {
        Self::with_level("warning", code, description)
    }

    pub fn with_level(
        level: impl Into<String>,
        code: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Status {
            level: level.into(),
            code: code.into(),
            description: description.into(),
            extra: Vec::new(),
        }
    }

    /// Adds an extra field.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Amf0Value>) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }

    /// The AMF0 object `{level, code, description, ...extra}`.
    pub fn to_amf0(&self) -> Amf0Value {
        let mut p: Properties = vec![
            ("level".into(), Amf0Value::String(self.level.clone())),
            ("code".into(), Amf0Value::String(self.code.clone())),
            (
                "description".into(),
                Amf0Value::String(self.description.clone()),
            ),
        ];
        p.extend(self.extra.iter().cloned());
        Amf0Value::Object(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amf3::{self, Amf3Object, Amf3Value};

    fn lim() -> AmfLimits {
        AmfLimits::default()
    }

    fn connect() -> Command {
        Command::new(
            "connect",
            1.0,
            Amf0Value::object([
                ("app", Amf0Value::from("live")),
                ("tcUrl", Amf0Value::from("rtmp://h/live")),
                ("objectEncoding", Amf0Value::from(3.0)),
            ]),
            vec![],
        )
    }

    #[test]
    fn round_trip_both_encodings() {
        let c = connect();
        for enc in [CommandEncoding::Amf0, CommandEncoding::Amf3] {
            let m = c.to_message(enc, 3, 0).unwrap();
            assert_eq!(m.type_id, enc.type_id());
            assert_eq!(Command::parse(m.type_id, &m.payload, &lim()), Ok(c.clone()));
        }
        let p = c.encode(CommandEncoding::Amf3).unwrap();
        assert_eq!(&p[..4], &[0x00, 0x02, 0x00, 0x07]);
    }

    #[test]
    fn parses_flash_amf3_command_with_avmplus_values() {
        // type 17: 0x00, "connect", 1.0, avmplus {app: "live", objectEncoding: 3}
        let mut p = vec![0x00];
        amf0::encode(&Amf0Value::from("connect"), &mut p).unwrap();
        amf0::encode(&Amf0Value::Number(1.0), &mut p).unwrap();
        p.push(0x11);
        p.extend(
            amf3::to_vec(&Amf3Value::Object(Amf3Object::anonymous([
                ("app", Amf3Value::from("live")),
                ("objectEncoding", Amf3Value::Integer(3)),
            ])))
            .unwrap(),
        );
        p.push(0x11);
        p.extend(amf3::to_vec(&Amf3Value::from("extra")).unwrap());
        let c = Command::parse(17, &p, &lim()).unwrap();
        assert_eq!(c.name, "connect");
        assert_eq!(c.transaction_id, 1.0);
        assert_eq!(c.command_object.get_str("app"), Some("live"));
        assert_eq!(c.command_object.get_f64("objectEncoding"), Some(3.0));
        assert_eq!(c.arg(0), Some(&Amf0Value::from("extra")));
        assert_eq!(
            CommandEncoding::from_object_encoding(3.0),
            CommandEncoding::Amf3
        );
    }

    #[test]
    fn status_replies() {
        let st = Status::status("NetStream.Play.Start", "Started playing cam.")
            .with("details", "cam")
            .with("clientid", 7u32);
        let c = Command::on_status(&st);
        let m = c.to_message(CommandEncoding::Amf0, 5, 1).unwrap();
        let back = Command::parse(20, &m.payload, &lim()).unwrap();
        assert_eq!(back.name, "onStatus");
        assert_eq!(back.transaction_id, 0.0);
        assert!(back.command_object.is_null());
        let info = back.arg(0).unwrap();
        assert_eq!(info.get_str("level"), Some("status"));
        assert_eq!(info.get_str("code"), Some("NetStream.Play.Start"));
        assert_eq!(info.get_str("details"), Some("cam"));
        assert_eq!(info.get_f64("clientid"), Some(7.0));
        let keys: Vec<_> = info
            .properties()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            keys,
            ["level", "code", "description", "details", "clientid"]
        );

        let e = Command::error(
            1.0,
            Amf0Value::Null,
            vec![Status::error("NetConnection.Connect.Rejected", "nope").to_amf0()],
        );
        let back = Command::parse(17, &e.encode(CommandEncoding::Amf3).unwrap(), &lim()).unwrap();
        assert_eq!(back, e);
        let r = Command::result(2.0, Amf0Value::Null, vec![Amf0Value::Number(1.0)]);
        assert_eq!(r.name, "_result");
        assert_eq!(Status::warning("a", "b").level, "warning");
    }

    #[test]
    fn exact_bytes_of_create_stream_result() {
        let r = Command::result(4.0, Amf0Value::Null, vec![Amf0Value::Number(1.0)]);
        let mut expect = vec![0x02, 0x00, 0x07];
        expect.extend_from_slice(b"_result");
        expect.push(0x00);
        expect.extend_from_slice(&4.0f64.to_be_bytes());
        expect.push(0x05);
        expect.push(0x00);
        expect.extend_from_slice(&1.0f64.to_be_bytes());
        assert_eq!(r.encode(CommandEncoding::Amf0).unwrap(), expect);
    }

    #[test]
    fn malformed_commands() {
        assert_eq!(
            Command::parse(18, &[], &lim()),
            Err(MessageError::NotCommand(18))
        );
        assert_eq!(
            Command::parse(20, &[], &lim()),
            Err(MessageError::MissingCommandName)
        );
        assert_eq!(
            Command::parse(20, &[0x05], &lim()),
            Err(MessageError::MissingCommandName)
        );
        assert!(matches!(
            Command::parse(20, &[0x02, 0x00, 0x09, b'x'], &lim()),
            Err(MessageError::Amf0(_))
        ));
        let c = Command::parse(20, &[0x02, 0x00, 0x01, b'x'], &lim()).unwrap();
        assert_eq!((c.transaction_id, c.command_object), (0.0, Amf0Value::Null));
        let bytes = connect().encode(CommandEncoding::Amf3).unwrap();
        for cut in 0..bytes.len() {
            let _ = Command::parse(17, &bytes[..cut], &lim());
        }
    }

    #[test]
    fn data_messages() {
        let mut p = Vec::new();
        amf0::encode_all(
            &[
                Amf0Value::from("@setDataFrame"),
                Amf0Value::from("onMetaData"),
                Amf0Value::ecma_array([("width", Amf0Value::Number(640.0))]),
            ],
            &mut p,
        )
        .unwrap();
        let v = parse_data(18, &p, &lim()).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].get_f64("width"), Some(640.0));
        let mut p3 = vec![0];
        p3.extend_from_slice(&p);
        assert_eq!(parse_data(15, &p3, &lim()).unwrap(), v);
        assert_eq!(parse_data(20, &p, &lim()), Err(MessageError::NotData(20)));
    }
}
