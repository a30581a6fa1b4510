//! `tessera-media`: the standard library of media operations behind
//! Tessera's frame-exact split -> parallel encode -> join pipeline.
//!
//! An encode job lives in a workdir holding `request.json` (an
//! [`EncodeRequest`]). Each op reads what earlier ops wrote and writes its own
//! files, so each can run alone, in its own process, and again after a crash:
//!
//! ```text
//! probe -> plan -> encode-chunk-0000 .. encode-chunk-NNNN ┐
//!               -> encode-audio (if the source has audio) ├-> concat -> verify
//! ```
//!
//! * [`probe_op`] validates the request and writes `probe.json`: a typed
//!   [`MediaInfo`] and the packet-level [`FrameIndex`] of the video.
//! * [`plan_op`] cuts the frames into exact ranges ([`plan_chunks`], pure),
//!   writes `plan.json` and returns the follow-on [`TaskSpec`](tessera_types::TaskSpec)s.
//! * [`encode_chunk`] encodes exactly one range and checks its frame count.
//! * [`encode_audio`] encodes (or copies) all audio once, whole.
//! * [`concat`] joins the chunks with exact durations and muxes audio,
//!   subtitles, chapters and metadata into a temporary output.
//! * [`verify_op`] compares it with the source ([`verify`]) and renames it
//!   into place only if every check passes.
//! * [`thumbnails_op`] (after probe, beside the encode) writes a poster,
//!   sprite sheets and a WebVTT thumbnail track ([`write_thumbnails`]).
//!
//! All ffmpeg/ffprobe runs go through [`runner`]; argv builders live in
//! [`args`] and run nothing. Errors are [`MediaError`]; use
//! [`MediaError::is_user_error`] to tell a bad input from a failure of ours.
//!
//! ```
//! use tessera_media::{plan_chunks, FrameIndex};
//! let index = FrameIndex { time_base: (1, 25), pts: (0..100).collect(), keyframes: vec![0, 50], last_duration: 1, timestamp_faults: 0 };
//! let chunks = plan_chunks(&index, 50, 1);
//! assert_eq!((chunks[1].first, chunks[1].count), (50, 50));
//! ```

pub mod args;
mod error;
mod files;
pub mod ladder;
mod ops;
mod plan;
mod probe;
mod request;
pub mod runner;
pub mod scenes;
pub mod target;
mod tasks;
pub mod testclips;
pub mod thumbs;
mod verdict;
mod verify;
mod workdir;

pub use error::{MediaError, Result};
pub use files::{check_reach, file_stamp, op_files, sha256_file, sha256_of, OpFiles};
pub use ops::{
    check_streams, concat, count_video_packets, encode_audio, encode_chunk, encode_chunk_of,
    plan_op, probe_op, thumbnails_op, verify_op, CHUNKS_PER_SLOT,
};
pub use plan::{
    chunks_from_cuts, frames_for_seconds, min_chunks_for, plan_chunks, plan_chunks_for_slots,
    plan_chunks_for_slots_with_scenes, ChunkPlan, MAX_CHUNKS_PER_SLOT, MIN_SECONDS_PER_CHUNK,
};
pub use probe::{frame_index, probe, probe_and_index, Chapter, FrameIndex, MediaInfo, StreamInfo};
pub use request::{Codec, Container, EncodeRequest, EncodeSettings};
pub use tasks::{
    chunk_of_task, chunk_task_name, encode_grants, follow_on_tasks, initial_tasks,
    rendition_chunk_task_name,
};
pub use tessera_types::is_plain_absolute;
pub use thumbs::{write_thumbnails, ThumbOptions, Thumbs};
pub use verify::{
    first_pts_mismatch, relative_seconds, verify, verify_against, verify_video, Check,
    VerifyOptions, VerifyReport,
};
pub use workdir::{
    audio_file, read_request, temp_output, write_request, AudioPlan, OutputPlan, Plan, ProbeResult,
    PLAN_FILE, PROBE_FILE, REQUEST_FILE,
};
