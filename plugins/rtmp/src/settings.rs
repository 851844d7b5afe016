//! `mods/rtmp.toml`: the plugin's settings. Every key is optional; an unknown key is an error
//! that names it. `mods/rtmp.toml` in the repository lists every key with its default.

use fstream_abi::PublishConflict;
use fstream_media::rtmp::chunk::{ChunkLimits, MAX_EFFECTIVE_CHUNK_SIZE, MAX_MESSAGE_LEN};
use serde::Deserialize;

/// What happens when a second publisher arrives for a live stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecondPublisher {
    /// The newcomer takes over; players stay and continue with its media.
    Replace,
    /// The newcomer gets `NetStream.Publish.BadName`.
    Reject,
}

impl SecondPublisher {
    pub fn conflict(self) -> PublishConflict {
        match self {
            SecondPublisher::Replace => PublishConflict::Replace,
            SecondPublisher::Reject => PublishConflict::Reject,
        }
    }
}

/// What a player of a live stream gets once the stream is over (its publisher left and did not
/// come back within the grace period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamEnd {
    /// Stay attached and wait for the next publisher (nginx-rtmp's behaviour): the player got
    /// `UnpublishNotify` when the publisher left and gets `PublishNotify` when one comes.
    Wait,
    /// `StreamEOF` and `NetStream.Play.Stop`; the connection stays open.
    Stop,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where to listen unless `host.toml` or `--listen rtmp=ADDR` says otherwise.
    pub listen: String,
    /// The handshake (C0 C1 C2) must be complete within this time after connecting.
    pub handshake_timeout_ms: u64,
    /// A connection that sends nothing for this long is closed. Halfway through it is pinged
    /// (User Control PingRequest), which players that only receive answer.
    pub idle_timeout_ms: u64,
    /// The largest chunk size a client may set (Set Chunk Size).
    pub max_chunk_size: u32,
    /// The largest message a client may send (a video keyframe is the usual biggest).
    pub max_message_size: u32,
    /// How many chunk stream ids a client may use.
    pub max_chunk_streams: usize,
    /// Bytes of partly received messages, over all chunk streams.
    pub max_partial_bytes: usize,
    /// Bytes a client may send while its session waits for the app handler or the hub; more
    /// closes the connection.
    pub max_pending_bytes: usize,
    /// Our chunk size, announced with Set Chunk Size right after a connect is accepted.
    pub chunk_size: u32,
    /// The Window Acknowledgement Size and Set Peer Bandwidth we announce.
    pub window_ack_size: u32,
    /// Streams (`createStream`) one connection may hold.
    pub max_streams: u32,
    /// `replace` or `reject` a second publisher of a live stream.
    pub second_publisher: SecondPublisher,
    /// How long players stay attached after the publisher leaves, waiting for it to return.
    pub grace_ms: u32,
    /// How long a player waits for a publisher that is not there; 4294967295 = forever.
    pub play_wait_ms: u32,
    /// The bound of a player's queue in bytes (it skips to the next keyframe when over it);
    /// 0 takes the host's `hub.queue_bytes`.
    pub player_queue_bytes: u64,
    /// `wait` or `stop`, see [`StreamEnd`].
    pub on_stream_end: StreamEnd,
    /// Answer a Flash Player's `<policy-file-request/>` on the RTMP port with a cross-domain
    /// policy allowing any domain to this port (as rtmplite does); off: close without a byte.
    pub policy_file: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:1935".into(),
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_chunk_size: 1 << 20,
            max_message_size: 8 << 20,
            max_chunk_streams: 64,
            max_partial_bytes: 16 << 20,
            max_pending_bytes: 8 << 20,
            chunk_size: 4096,
            window_ack_size: 5_000_000,
            max_streams: 8,
            second_publisher: SecondPublisher::Replace,
            grace_ms: 5_000,
            play_wait_ms: u32::MAX,
            player_queue_bytes: 0,
            on_stream_end: StreamEnd::Wait,
            policy_file: true,
        }
    }
}

pub use fstream_abi::sdk::SettingsError;

impl Settings {
    /// Parses and checks the text of `mods/rtmp.toml` (empty text gives the defaults).
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let s: Settings = toml::from_str(text)
            .map_err(|e| SettingsError::parse(text, e.span().map(|r| r.start), e.message()))?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), SettingsError> {
        fn invalid(key: &'static str, value: impl ToString, why: &'static str) -> SettingsError {
            SettingsError::Invalid {
                key,
                value: value.to_string(),
                why,
            }
        }
        if self.listen.trim().is_empty() {
            return Err(invalid("listen", "\"\"", "must be HOST:PORT"));
        }
        if self.handshake_timeout_ms == 0 {
            return Err(invalid("handshake_timeout_ms", 0, "must be at least 1"));
        }
        if self.idle_timeout_ms < 2 {
            return Err(invalid(
                "idle_timeout_ms",
                self.idle_timeout_ms,
                "must be at least 2",
            ));
        }
        if self.max_chunk_size < 128 || self.max_chunk_size > MAX_EFFECTIVE_CHUNK_SIZE {
            return Err(invalid(
                "max_chunk_size",
                self.max_chunk_size,
                "must be 128 to 16777215",
            ));
        }
        if self.max_message_size == 0 || self.max_message_size > MAX_MESSAGE_LEN {
            return Err(invalid(
                "max_message_size",
                self.max_message_size,
                "must be 1 to 16777215",
            ));
        }
        if self.max_chunk_streams < 2 {
            return Err(invalid(
                "max_chunk_streams",
                self.max_chunk_streams,
                "must be at least 2",
            ));
        }
        if self.chunk_size < 128 || self.chunk_size > MAX_EFFECTIVE_CHUNK_SIZE {
            return Err(invalid(
                "chunk_size",
                self.chunk_size,
                "must be 128 to 16777215",
            ));
        }
        if self.window_ack_size == 0 {
            return Err(invalid("window_ack_size", 0, "must be at least 1"));
        }
        if self.max_streams == 0 {
            return Err(invalid("max_streams", 0, "must be at least 1"));
        }
        Ok(())
    }

    /// The chunk decoder's limits.
    pub fn chunk_limits(&self) -> ChunkLimits {
        ChunkLimits {
            max_chunk_size: self.max_chunk_size,
            max_message_size: self.max_message_size,
            max_chunk_streams: self.max_chunk_streams,
            max_pending_bytes: self.max_partial_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_the_defaults() {
        let s = Settings::parse("").unwrap();
        assert_eq!(s.listen, "0.0.0.0:1935");
        assert_eq!(s.chunk_size, 4096);
        assert_eq!(s.second_publisher, SecondPublisher::Replace);
        assert_eq!(s.play_wait_ms, u32::MAX);
        assert_eq!(s.on_stream_end, StreamEnd::Wait);
        assert!(s.policy_file);
        assert!(!Settings::parse("policy_file = false").unwrap().policy_file);
    }

    #[test]
    fn the_shipped_file_parses_to_the_defaults() {
        let text = include_str!("../../../mods/rtmp.toml");
        let s = Settings::parse(text).unwrap();
        let d = Settings::default();
        assert_eq!(format!("{s:?}"), format!("{d:?}"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e = Settings::parse("chunk_sise = 4096\n").unwrap_err();
        assert!(e.to_string().contains("chunk_sise"), "{e}");
        assert!(e.to_string().starts_with("line 1"), "{e}");
        let e = Settings::parse("second_publisher = \"kick\"\n").unwrap_err();
        assert!(e.to_string().contains("kick"), "{e}");
        assert!(matches!(
            Settings::parse("chunk_size = 0"),
            Err(SettingsError::Invalid {
                key: "chunk_size",
                ..
            })
        ));
        assert!(matches!(
            Settings::parse("max_message_size = 16777216"),
            Err(SettingsError::Invalid {
                key: "max_message_size",
                ..
            })
        ));
        let s = Settings::parse("second_publisher = \"reject\"\non_stream_end = \"stop\"").unwrap();
        assert_eq!(s.second_publisher, SecondPublisher::Reject);
        assert_eq!(s.on_stream_end, StreamEnd::Stop);
    }
}
