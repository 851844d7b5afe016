//! Publishing: the `publish` command, the app handler's and the hub's answers, and the
//! publisher's audio, video and data messages as media packets.

use abi_stable::std_types::RVec;
use fstream_abi::{
    flags, may_record, payload_from, Action, AppCall, AppDecision, CloseMode, MediaKind,
    MediaPacket, Outbox, PublishCall, PublishOptions, PublishOutcome, PublishOutcome_NE,
    RecordMode,
};
use fstream_media::{
    amf0::Amf0Value,
    flv::{classify_audio, classify_video, strip_set_data_frame, VideoPacket},
    rtmp::{
        chunk::RtmpMessage,
        message::{msg_type, Command, UserControlEvent},
    },
};

use crate::{
    commands::{send_status, status},
    error::Violation,
    names::{decided_stream, join_queries, parse_name, query_param},
    session::RtmpSession,
    state::{Conn, Pending, Publishing, Role, Wait},
};

/// The AMF0 encoding of a short string, as a data message starts with its name.
fn amf0_string(s: &str) -> Vec<u8> {
    let mut v = vec![0x02];
    v.extend_from_slice(&(s.len() as u16).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

/// The media packet for an audio, video or data message; `None` for what players need not see
/// (empty messages, `@clearDataFrame`).
///
/// Flags come from the payload: video keyframes, sequence headers (AVC/HEVC and Enhanced RTMP
/// SequenceStart, AAC AudioSpecificConfig), disposable frames, and `onMetaData` (sent by
/// publishers as `@setDataFrame`, which is stripped, leaving the body players expect). The
/// payload is copied once; Enhanced RTMP (FourCC) payloads pass through untouched.
pub fn media_packet(type_id: u8, timestamp: u32, payload: &[u8]) -> Option<MediaPacket> {
    if payload.is_empty() {
        return None;
    }
    let (kind, flags, body) = match type_id {
        msg_type::VIDEO => {
            let info = classify_video(payload)?;
            let mut f = 0;
            if info.is_keyframe() {
                f |= flags::KEYFRAME;
            }
            if info.is_sequence_header() {
                f |= flags::SEQUENCE_HEADER;
            }
            if info.frame_type == 3 && info.packet == VideoPacket::CodedFrame {
                f |= flags::DISPOSABLE;
            }
            (MediaKind::Video, f, payload)
        }
        msg_type::AUDIO => {
            let info = classify_audio(payload)?;
            let f = if info.is_sequence_header() {
                flags::SEQUENCE_HEADER
            } else {
                0
            };
            (MediaKind::Audio, f, payload)
        }
        msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => {
            let body = if type_id == msg_type::DATA_AMF3 {
                payload.strip_prefix(&[0u8]).unwrap_or(payload)
            } else {
                payload
            };
            let body = strip_set_data_frame(body);
            if body.is_empty() || body.starts_with(&amf0_string("@clearDataFrame")) {
                return None;
            }
            let f = if body.starts_with(&amf0_string("onMetaData")) {
                flags::METADATA
            } else {
                0
            };
            (MediaKind::Script, f, body)
        }
        _ => return None,
    };
    Some(MediaPacket::new(kind, flags, timestamp, payload_from(body)))
}

fn record_mode(kind: &str) -> RecordMode {
    match kind {
        "record" => RecordMode::Record,
        "append" | "appendWithGap" => RecordMode::Append,
        _ => RecordMode::Live,
    }
}

impl RtmpSession {
    /// `publish(name?query, type)` on a stream from `createStream`.
    pub(crate) fn cmd_publish(
        &mut self,
        msid: u32,
        cmd: &Command,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        let arg = cmd.arg(0).and_then(Amf0Value::as_str).unwrap_or("");
        let kind = cmd.arg(1).and_then(Amf0Value::as_str).unwrap_or("live");
        let shown = arg.split('?').next().unwrap_or("");
        match self.streams.get(&msid).map(|ns| &ns.role) {
            None => {
                return self.publish_refused(
                    msid,
                    shown,
                    "Publish needs a stream from createStream.",
                )
            }
            Some(Role::Idle) => {}
            Some(_) => return self.publish_refused(msid, shown, "The stream is already in use."),
        }
        let name = match parse_name(arg) {
            Ok(n) => n,
            Err(e) => return self.publish_refused(msid, shown, &format!("Bad stream name: {e}.")),
        };
        let Conn::Connected(c) = &self.conn else {
            return Ok(());
        };
        let query = join_queries(&name.query, &c.app_query);
        let call = AppCall::Publish(PublishCall {
            app: c.app.clone().into(),
            stream: name.name.clone().into(),
            kind: kind.into(),
            query: query.clone().into(),
            caller: self.caller.clone(),
            ext: RVec::new(),
        });
        tracing::debug!(app = %c.app, name = %name.name, kind, "publish");
        let request = self.request_id();
        self.wait = Some(Wait::App {
            request,
            call: Pending::Publish {
                msid,
                name: name.name,
                query,
                record: record_mode(kind),
            },
        });
        self.call_app(out, request, call);
        Ok(())
    }

    /// `onStatus` error NetStream.Publish.BadName.
    fn publish_refused(&mut self, msid: u32, name: &str, why: &str) -> Result<(), Violation> {
        tracing::info!(name, reason = why, "publish refused");
        let st = status("error", "NetStream.Publish.BadName", why, name);
        send_status(&mut self.output, msid, st)?;
        Ok(())
    }

    pub(crate) fn publish_decided(
        &mut self,
        msid: u32,
        name: String,
        query: String,
        record: RecordMode,
        decision: AppDecision,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        let Conn::Connected(c) = &self.conn else {
            return Ok(());
        };
        let stream = match decided_stream(&c.app, &name, decision.verdict()) {
            Ok(s) => s,
            Err(why) => {
                self.publish_refused(msid, &name, &why)?;
                return self.send_client_commands(&decision.commands);
            }
        };
        // The handler may accept the publish but not the recording it asks for (since v2.3):
        // then it is published live.
        let record_refused = record != RecordMode::Live && may_record(&decision.ext) == Some(false);
        let record = if record_refused {
            tracing::info!(stream = %stream, "recording not allowed; publishing live");
            RecordMode::Live
        } else {
            record
        };
        let publication = self.handle();
        let Some(ns) = self.streams.get_mut(&msid) else {
            return Ok(());
        };
        ns.role = Role::Publishing(Publishing {
            publication,
            stream: stream.clone(),
            name,
            started: false,
        });
        let options = PublishOptions {
            channel_password: query_param(&query, "channel_password")
                .map(Into::into)
                .into(),
            conflict: self.settings.second_publisher.conflict(),
            grace_ms: self.settings.grace_ms,
            record,
            query: query.into(),
            ext: RVec::new(),
        };
        self.wait = Some(Wait::PublishResult {
            publication,
            msid,
            commands: decision.commands,
            record_refused,
        });
        self.act(
            out,
            Action::Publish {
                publication,
                stream: stream.into(),
                options,
            },
        );
        Ok(())
    }

    pub(crate) fn on_publish_result(
        &mut self,
        publication: u32,
        outcome: PublishOutcome_NE,
    ) -> Result<(), Violation> {
        let (msid, commands, record_refused) = match self.wait.take() {
            Some(Wait::PublishResult {
                publication: p,
                msid,
                commands,
                record_refused,
            }) if p == publication => (msid, commands, record_refused),
            other => {
                self.wait = other;
                tracing::debug!(publication, "ignored a stale publish result");
                return Ok(());
            }
        };
        let Some(ns) = self.streams.get_mut(&msid) else {
            return Ok(());
        };
        let Role::Publishing(p) = &mut ns.role else {
            return Ok(());
        };
        let name = p.name.clone();
        let stream = p.stream.clone();
        match outcome.as_enum() {
            Ok(PublishOutcome::Started) => {
                p.started = true;
                tracing::info!(stream = %stream, "publishing");
                self.output
                    .user_control(UserControlEvent::StreamBegin(msid))?;
                let st = status(
                    "status",
                    "NetStream.Publish.Start",
                    format!("{name} is now published."),
                    &name,
                );
                send_status(&mut self.output, msid, st)?;
                if record_refused {
                    // Flash's code for a recording the client has no right to; level
                    // "status", so clients that stop on errors keep publishing.
                    let st = status(
                        "status",
                        "NetStream.Record.NoAccess",
                        format!("{name} is published live; recording it is not allowed."),
                        &name,
                    );
                    send_status(&mut self.output, msid, st)?;
                }
            }
            Ok(PublishOutcome::Busy) => {
                ns.role = Role::Idle;
                let why = format!("{stream} is already being published.");
                self.publish_refused(msid, &name, &why)?;
            }
            Ok(PublishOutcome::Refused(why)) => {
                ns.role = Role::Idle;
                self.publish_refused(msid, &name, why)?;
            }
            // An outcome of a newer host: the publication did not start.
            _ => {
                ns.role = Role::Idle;
                tracing::debug!(stream = %stream, outcome = ?outcome, "unknown publish outcome");
                self.publish_refused(msid, &name, "The server refused to publish this stream.")?;
            }
        }
        self.send_client_commands(&commands)
    }

    /// Another publisher took the stream over: tell this one and disconnect it (it is usually a
    /// stale connection of the encoder that just reconnected).
    pub(crate) fn on_replaced(
        &mut self,
        publication: u32,
        out: &mut Outbox,
    ) -> Result<(), Violation> {
        let found = self.streams.iter_mut().find_map(|(id, ns)| match &ns.role {
            Role::Publishing(p) if p.publication == publication => {
                let r = (*id, p.name.clone(), p.stream.clone());
                ns.role = Role::Idle;
                Some(r)
            }
            _ => None,
        });
        let Some((msid, name, stream)) = found else {
            return Ok(());
        };
        tracing::info!(stream = %stream, "another publisher took over; disconnecting this one");
        let st = status(
            "status",
            "NetStream.Unpublish.Success",
            format!("Another publisher took over {name}."),
            &name,
        );
        send_status(&mut self.output, msid, st)?;
        self.finish(CloseMode::AfterFlush, out);
        Ok(())
    }

    /// Audio, video and data messages of a publishing stream.
    pub(crate) fn on_media(&mut self, msg: &RtmpMessage, out: &mut Outbox) {
        let publication = match self.streams.get(&msg.stream_id).map(|ns| &ns.role) {
            Some(Role::Publishing(p)) if p.started => p.publication,
            _ => {
                tracing::trace!(
                    msid = msg.stream_id,
                    type_id = msg.type_id,
                    "ignored media on a stream that is not publishing"
                );
                return;
            }
        };
        if let Some(packet) = media_packet(msg.type_id, msg.timestamp, &msg.payload) {
            self.act(
                out,
                Action::Packet {
                    publication,
                    packet,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags_of(type_id: u8, payload: &[u8]) -> Option<(MediaKind, u8)> {
        media_packet(type_id, 0, payload).map(|p| (p.kind, p.flags))
    }

    #[test]
    fn classifies_legacy_and_enhanced_media() {
        use flags::*;
        let v = msg_type::VIDEO;
        let a = msg_type::AUDIO;
        // AVC: sequence header, keyframe, inter frame, disposable H.263 frame.
        assert_eq!(
            flags_of(v, &[0x17, 0, 0, 0, 0]),
            Some((MediaKind::Video, SEQUENCE_HEADER))
        );
        assert_eq!(
            flags_of(v, &[0x17, 1, 0, 0, 0]),
            Some((MediaKind::Video, KEYFRAME))
        );
        assert_eq!(
            flags_of(v, &[0x27, 1, 0, 0, 0]),
            Some((MediaKind::Video, 0))
        );
        assert_eq!(
            flags_of(v, &[0x32, 9]),
            Some((MediaKind::Video, DISPOSABLE))
        );
        // Enhanced RTMP (HEVC FourCC): SequenceStart, CodedFrames key; payload untouched.
        let hevc_start = [0x90, b'h', b'v', b'c', b'1', 1, 2];
        assert_eq!(
            flags_of(v, &hevc_start),
            Some((MediaKind::Video, SEQUENCE_HEADER))
        );
        let p = media_packet(v, 5, &[0x91, b'h', b'v', b'c', b'1', 0, 0, 0, 7]).unwrap();
        assert_eq!((p.flags, p.timestamp), (KEYFRAME, 5));
        assert_eq!(&p.payload[..], &[0x91, b'h', b'v', b'c', b'1', 0, 0, 0, 7]);
        // AAC config and frames; Enhanced audio (Opus) SequenceStart.
        assert_eq!(
            flags_of(a, &[0xAF, 0, 0x12]),
            Some((MediaKind::Audio, SEQUENCE_HEADER))
        );
        assert_eq!(flags_of(a, &[0xAF, 1, 0x21]), Some((MediaKind::Audio, 0)));
        assert_eq!(
            flags_of(a, &[0x90, b'O', b'p', b'u', b's', 1]),
            Some((MediaKind::Audio, SEQUENCE_HEADER))
        );
        assert_eq!(flags_of(a, &[0x2F, 1]), Some((MediaKind::Audio, 0)), "MP3");
        // Nothing to classify.
        assert_eq!(flags_of(v, &[]), None);
        assert_eq!(flags_of(msg_type::COMMAND_AMF0, &[2, 0, 1, b'x']), None);
    }

    #[test]
    fn data_messages_lose_set_data_frame() {
        let body = |values: &[Amf0Value]| {
            let mut v = Vec::new();
            fstream_media::amf0::encode_all(values, &mut v).unwrap();
            v
        };
        let meta = body(&[
            Amf0Value::from("onMetaData"),
            Amf0Value::ecma_array([("width", Amf0Value::Number(1.0))]),
        ]);
        let mut wrapped = body(&[Amf0Value::from("@setDataFrame")]);
        wrapped.extend_from_slice(&meta);
        let p = media_packet(msg_type::DATA_AMF0, 0, &wrapped).unwrap();
        assert_eq!((p.kind, p.flags), (MediaKind::Script, flags::METADATA));
        assert_eq!(&p.payload[..], &meta[..]);
        // Type 15: the format byte goes too.
        let mut amf3 = vec![0u8];
        amf3.extend_from_slice(&wrapped);
        let p = media_packet(msg_type::DATA_AMF3, 0, &amf3).unwrap();
        assert_eq!(&p.payload[..], &meta[..]);
        // Other data passes as script data without the metadata flag.
        let cue = body(&[Amf0Value::from("onCuePoint"), Amf0Value::Null]);
        assert_eq!(media_packet(msg_type::DATA_AMF0, 0, &cue).unwrap().flags, 0);
        assert!(media_packet(
            msg_type::DATA_AMF0,
            0,
            &body(&[Amf0Value::from("@clearDataFrame")])
        )
        .is_none());
        assert_eq!(record_mode("record"), RecordMode::Record);
        assert_eq!(record_mode("append"), RecordMode::Append);
        assert_eq!(record_mode("live"), RecordMode::Live);
        assert_eq!(record_mode("whatever"), RecordMode::Live);
    }
}
