//! FLV: file and tag headers, an incremental demuxer, a muxer, tag classification helpers,
//! `onMetaData` script data and a keyframe index scanner.
//!
//! Layout reminder: a 9-byte file header, a 4-byte PreviousTagSize0 (= 0), then tags, each an
//! 11-byte tag header, its data, and a 4-byte PreviousTagSize (11 + data size).

mod audio;
mod demux;
mod error;
mod header;
mod keyframes;
mod metadata;
mod mux;
mod video;

pub use audio::{
    classify_audio, is_aac_sequence_header, is_audio_sequence_header, AudioCodec, AudioPacket,
    AudioTagInfo, SOUND_FORMAT_AAC, SOUND_FORMAT_EX_HEADER,
};
pub use demux::{DemuxedTag, FlvDemuxer};
pub use error::FlvError;
pub use header::{
    FlvHeader, FlvTag, TagHeader, TagType, FLV_HEADER_LEN, MAX_TAG_DATA_SIZE,
    PREVIOUS_TAG_SIZE_LEN, TAG_HEADER_LEN,
};
pub use keyframes::{find_keyframe, keyframe_index, KeyframeEntry, KeyframeIndexer};
pub use metadata::{
    build_on_metadata, metadata_number_offset, parse_on_metadata, parse_script_data,
    strip_set_data_frame, ScriptData, ON_METADATA, SET_DATA_FRAME,
};
pub use mux::{live_tag, write_file_header, write_tag, FlvMuxer};
pub use video::{
    classify_video, codec_id, is_video_keyframe, is_video_sequence_header, VideoCodec, VideoPacket,
    VideoTagInfo, FOURCC_AV1, FOURCC_HEVC, FOURCC_VP9,
};
