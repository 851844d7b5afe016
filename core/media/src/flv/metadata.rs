//! Script data (`onMetaData`) helpers, including RTMP `@setDataFrame` unwrapping.
//!
//! RTMP publishers send metadata as a data message `"@setDataFrame", "onMetaData", {...}`. The form
//! that is stored in FLV files and forwarded to players drops the first string:
//! `"onMetaData", {...}`.

use super::FlvError;
use crate::amf0::{self, marker, Amf0Value, AmfLimits, Properties};

/// Name of the metadata script tag.
pub const ON_METADATA: &str = "onMetaData";
/// Name of the RTMP data message that wraps metadata sent by publishers.
pub const SET_DATA_FRAME: &str = "@setDataFrame";

/// A parsed script tag / data message: a name and the values after it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptData {
    pub name: String,
    pub values: Vec<Amf0Value>,
}

fn encoded_name(name: &str) -> Vec<u8> {
    let mut v = vec![marker::STRING];
    v.extend_from_slice(&(name.len() as u16).to_be_bytes());
    v.extend_from_slice(name.as_bytes());
    v
}

/// Drops a leading AMF0 string `"@setDataFrame"` if present; otherwise returns `payload` as is.
/// Works on bytes so the rest of the message is forwarded unchanged (use `Bytes::slice_ref` for
/// a zero-copy `Bytes`).
pub fn strip_set_data_frame(payload: &[u8]) -> &[u8] {
    let prefix = encoded_name(SET_DATA_FRAME);
    payload.strip_prefix(prefix.as_slice()).unwrap_or(payload)
}

/// Parses script data: a string name followed by values (a leading `@setDataFrame` is removed).
pub fn parse_script_data(data: &[u8], limits: &AmfLimits) -> Result<ScriptData, FlvError> {
    let mut values = amf0::decode_all(strip_set_data_frame(data), limits)?.into_iter();
    let name = match values.next() {
        Some(Amf0Value::String(s)) | Some(Amf0Value::LongString(s)) => s,
        _ => return Err(FlvError::ScriptNameMissing),
    };
    Ok(ScriptData {
        name,
        values: values.map(Amf0Value::normalized).collect(),
    })
}

/// The properties of an `onMetaData` script (ECMA array or object), or `None` when the script
/// has another name or no such value.
pub fn parse_on_metadata(data: &[u8], limits: &AmfLimits) -> Result<Option<Properties>, FlvError> {
    let script = parse_script_data(data, limits)?;
    if script.name != ON_METADATA {
        return Ok(None);
    }
    Ok(script.values.into_iter().find_map(|v| match v {
        Amf0Value::EcmaArray(p) | Amf0Value::Object(p) => Some(p),
        _ => None,
    }))
}

/// Builds `onMetaData` script tag data: the name string and an ECMA array of `properties`.
pub fn build_on_metadata(properties: &[(String, Amf0Value)]) -> Result<Vec<u8>, FlvError> {
    let mut out = encoded_name(ON_METADATA);
    amf0::encode(&Amf0Value::EcmaArray(properties.to_vec()), &mut out)?;
    Ok(out)
}

/// Byte offset, within `data`, of the 8-byte big-endian `f64` of top-level Number property
/// `key` of an `onMetaData` script. Lets a recorder patch `duration` or `filesize` in place
/// when it closes a file. `None` if absent or not a Number.
pub fn metadata_number_offset(
    data: &[u8],
    key: &str,
    limits: &AmfLimits,
) -> Result<Option<usize>, FlvError> {
    let (name, mut pos) = amf0::decode(data, limits)?;
    if name.as_str() != Some(ON_METADATA) {
        return Ok(None);
    }
    match data.get(pos) {
        Some(&marker::ECMA_ARRAY) => pos += 5,
        Some(&marker::OBJECT) => pos += 1,
        _ => return Ok(None),
    }
    loop {
        let Some(len_bytes) = data
            .get(pos..pos + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
        else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes(len_bytes));
        let Some(k) = data.get(pos + 2..pos + 2 + len) else {
            return Ok(None);
        };
        pos += 2 + len;
        let m = data.get(pos).copied();
        if len == 0 && m == Some(marker::OBJECT_END) {
            return Ok(None);
        }
        if k == key.as_bytes() && m == Some(marker::NUMBER) {
            return Ok(data.get(pos + 1..pos + 9).map(|_| pos + 1));
        }
        let rest = data.get(pos..).unwrap_or_default();
        let (_, used) = amf0::decode(rest, limits)?;
        pos += used;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> Properties {
        vec![
            ("duration".into(), Amf0Value::Number(0.0)),
            ("width".into(), Amf0Value::Number(1280.0)),
            ("encoder".into(), Amf0Value::String("obs".into())),
            ("filesize".into(), Amf0Value::Number(0.0)),
        ]
    }

    #[test]
    fn build_and_parse() {
        let data = build_on_metadata(&props()).unwrap();
        assert_eq!(&data[..13], b"\x02\x00\x0aonMetaData");
        assert_eq!(data[13], marker::ECMA_ARRAY);
        let back = parse_on_metadata(&data, &AmfLimits::default()).unwrap();
        assert_eq!(back, Some(props()));
        let s = parse_script_data(&data, &AmfLimits::default()).unwrap();
        assert_eq!(s.name, ON_METADATA);
    }

    #[test]
    fn set_data_frame_is_unwrapped() {
        let body = build_on_metadata(&props()).unwrap();
        let mut msg = encoded_name(SET_DATA_FRAME);
        msg.extend_from_slice(&body);
        assert_eq!(strip_set_data_frame(&msg), body.as_slice());
        assert_eq!(strip_set_data_frame(&body), body.as_slice());
        assert_eq!(strip_set_data_frame(&[]), &[] as &[u8]);
        assert_eq!(
            parse_on_metadata(&msg, &AmfLimits::default()).unwrap(),
            Some(props())
        );
    }

    #[test]
    fn object_form_and_other_names() {
        let mut data = encoded_name(ON_METADATA);
        amf0::encode(&Amf0Value::Object(props()), &mut data).unwrap();
        assert_eq!(
            parse_on_metadata(&data, &AmfLimits::default()).unwrap(),
            Some(props())
        );
        let mut other = encoded_name("onCuePoint");
        amf0::encode(&Amf0Value::Null, &mut other).unwrap();
        assert_eq!(
            parse_on_metadata(&other, &AmfLimits::default()).unwrap(),
            None
        );
        assert_eq!(
            parse_script_data(&[0x05], &AmfLimits::default()),
            Err(FlvError::ScriptNameMissing)
        );
        assert!(parse_script_data(&[0x02, 0x00], &AmfLimits::default()).is_err());
    }

    #[test]
    fn number_offset_patching() {
        let mut data = build_on_metadata(&props()).unwrap();
        let l = AmfLimits::default();
        let off = metadata_number_offset(&data, "filesize", &l)
            .unwrap()
            .unwrap();
        data[off..off + 8].copy_from_slice(&1234.0f64.to_be_bytes());
        let back = parse_on_metadata(&data, &l).unwrap().unwrap();
        assert_eq!(back[3].1, Amf0Value::Number(1234.0));
        assert!(metadata_number_offset(&data, "duration", &l)
            .unwrap()
            .is_some());
        assert_eq!(metadata_number_offset(&data, "encoder", &l).unwrap(), None);
        assert_eq!(metadata_number_offset(&data, "nope", &l).unwrap(), None);
        for cut in 0..data.len() {
            let _ = metadata_number_offset(&data[..cut], "filesize", &l);
        }
    }
}
