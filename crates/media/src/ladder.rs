//! ABR ladders: what the user asks for ([`LadderRequest`]: the default
//! H.264 ladder or their own rungs), and the renditions it resolves to for
//! one source ([`resolve`]).
//!
//! A ladder encode writes a folder: one CMAF rendition per rung (an init
//! segment and media segments shared by the HLS and DASH manifests), the
//! audio tracks encoded once, subtitles as WebVTT, thumbnails, and the
//! manifests (see [`ops`]).

pub mod args;
pub(crate) mod files;
pub use files::{needs_workdir, WORKDIR_OPS};
pub mod ops;
pub mod plan;
pub mod publish;
mod spec;
#[cfg(test)]
mod tests;

pub use plan::{chunk_cuts, plan_segments, LadderPlan, Rendition};
pub use publish::{
    package_audio, package_rendition, publish, quality_json, ChunkQuality, LadderReport,
    RenditionQuality, RenditionReport,
};
pub use spec::{parse_ladder_file, resolve, LadderRequest, Rung, DEFAULT_RUNGS};

/// The most rungs a ladder may have (each multiplies the encode's work).
pub const MAX_RUNGS: usize = 12;
/// Segment lengths Tessera accepts, seconds.
pub const SEGMENT_SECONDS: (f64, f64) = (1.0, 20.0);
/// The default segment length, seconds (Apple's HLS authoring advice: 6 s;
/// 4 s is the common choice for both HLS and DASH at lower latency).
pub const DEFAULT_SEGMENT_SECONDS: f64 = 4.0;
/// The file in a published ladder folder that marks it as Tessera's own
/// (and describes it): `--overwrite` replaces only such a folder.
pub const LADDER_REPORT: &str = "ladder.json";
