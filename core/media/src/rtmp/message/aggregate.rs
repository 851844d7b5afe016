//! Aggregate messages (type 22): FLV-tag-like sub-messages packed into one message.

use super::{msg_type, MessageError};
use crate::reader::Reader;
use crate::rtmp::RtmpMessage;

/// Splits an aggregate message into its sub-messages.
///
/// Each sub-message is an 11-byte header (type, 24-bit size, 24+8-bit timestamp, 24-bit stream
/// id), its data and a 4-byte back pointer. Timestamps are rebased so the first sub-message gets
/// the aggregate's timestamp and later ones keep their offsets from it; stream and chunk stream
/// ids are the aggregate's. Payloads share the aggregate's buffer. A missing back pointer after
/// the last sub-message is tolerated.
pub fn split_aggregate(msg: &RtmpMessage) -> Result<Vec<RtmpMessage>, MessageError> {
    let data = &msg.payload[..];
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    let mut first_ts: Option<u32> = None;
    let bad = |offset, reason| MessageError::BadAggregate { offset, reason };
    while !r.is_empty() {
        let at = r.pos();
        let type_id = r.u8().map_err(|_| bad(at, "truncated header"))?;
        let size = r.u24_be().map_err(|_| bad(at, "truncated header"))? as usize;
        let low = r.u24_be().map_err(|_| bad(at, "truncated header"))?;
        let ext = r.u8().map_err(|_| bad(at, "truncated header"))?;
        let _stream_id = r.u24_be().map_err(|_| bad(at, "truncated header"))?;
        if type_id == msg_type::AGGREGATE {
            return Err(bad(at, "nested aggregate"));
        }
        let start = r.pos();
        r.bytes(size)
            .map_err(|_| bad(at, "sub-message data truncated"))?;
        let ts = (u32::from(ext) << 24) | low;
        let base = *first_ts.get_or_insert(ts);
        out.push(RtmpMessage {
            csid: msg.csid,
            timestamp: msg.timestamp.wrapping_add(ts.wrapping_sub(base)),
            type_id,
            stream_id: msg.stream_id,
            payload: msg.payload.slice(start..start + size),
        });
        if r.remaining() < 4 && r.remaining() > 0 {
            return Err(bad(r.pos(), "truncated back pointer"));
        }
        if !r.is_empty() {
            r.u32_be()
                .map_err(|_| bad(r.pos(), "truncated back pointer"))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::{write_tag, TagType};

    fn aggregate(tags: &[(TagType, u32, Vec<u8>)]) -> Vec<u8> {
        let mut p = Vec::new();
        for (t, ts, d) in tags {
            write_tag(&mut p, *t, *ts, d).unwrap();
        }
        p
    }

    #[test]
    fn splits_and_rebases_timestamps() {
        let p = aggregate(&[
            (TagType::Video, 5000, vec![0x17, 1, 0, 0, 0]),
            (TagType::Audio, 5023, vec![0xAF, 1]),
            (TagType::Video, 5040, vec![0x27, 1]),
        ]);
        let msg = RtmpMessage::new(7, 100, msg_type::AGGREGATE, 1, p);
        let subs = split_aggregate(&msg).unwrap();
        assert_eq!(subs.len(), 3);
        assert_eq!(
            subs.iter().map(|m| m.timestamp).collect::<Vec<_>>(),
            vec![100, 123, 140]
        );
        assert_eq!(subs[1].type_id, 8);
        assert_eq!(&subs[1].payload[..], &[0xAF, 1]);
        assert!(subs.iter().all(|m| m.stream_id == 1 && m.csid == 7));
    }

    #[test]
    fn tolerates_missing_final_back_pointer_and_rejects_garbage() {
        let mut p = aggregate(&[(TagType::Audio, 0, vec![1, 2, 3])]);
        p.truncate(p.len() - 4);
        let msg = RtmpMessage::new(4, 0, 22, 1, p.clone());
        assert_eq!(split_aggregate(&msg).unwrap().len(), 1);
        for cut in 1..p.len() {
            let m = RtmpMessage::new(4, 0, 22, 1, p[..cut].to_vec());
            assert!(split_aggregate(&m).is_err(), "cut {cut}");
        }
        let mut nested = p.clone();
        nested[0] = 22;
        assert!(matches!(
            split_aggregate(&RtmpMessage::new(4, 0, 22, 1, nested)),
            Err(MessageError::BadAggregate {
                reason: "nested aggregate",
                ..
            })
        ));
        let mut two = aggregate(&[(TagType::Audio, 0, vec![1])]);
        two.extend_from_slice(&[0, 0]);
        assert!(split_aggregate(&RtmpMessage::new(4, 0, 22, 1, two)).is_err());
        assert_eq!(
            split_aggregate(&RtmpMessage::new(4, 0, 22, 1, Vec::new())),
            Ok(vec![])
        );
    }
}
