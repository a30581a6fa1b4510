//! The ladder's plan, pure: segment boundaries on the source's frames, and
//! chunks made of whole segments so every rendition's chunks start with the
//! IDR frame of a segment.

use crate::probe::FrameIndex;
use crate::request::EncodeSettings;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One rung, resolved for the source: its exact size and encoder settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendition {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub settings: EncodeSettings,
    pub maxrate_kbps: Option<u32>,
    pub bufsize_kbps: Option<u32>,
}

impl Rendition {
    /// A short hash of everything that shapes the rendition's frames: its
    /// chunk files carry it, so a changed rung never reuses old chunks.
    pub fn key(&self) -> String {
        let digest = Sha256::digest(serde_json::to_vec(self).unwrap_or_default());
        digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
    }
}

/// One audio track of the ladder: a source audio stream, encoded once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioTrackPlan {
    /// Among the source's audio streams (`0:a:N`).
    pub source: u32,
    /// Folder name in the output: `audio-<lang>-<n>`.
    pub name: String,
    pub language: Option<String>,
    pub title: String,
    pub channels: u32,
    pub default: bool,
}

/// One subtitle track, as WebVTT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubtitlePlan {
    /// Among the source's subtitle streams (`0:s:N`).
    pub source: u32,
    /// File in the output, `subs/<lang>-<n>.vtt`.
    pub file: String,
    pub language: Option<String>,
    pub title: String,
    pub default: bool,
    pub forced: bool,
}

/// `plan.json`'s ladder part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LadderPlan {
    pub segment_seconds: f64,
    /// First frame of each segment, ascending, starting at 0.
    pub segments: Vec<u32>,
    pub renditions: Vec<Rendition>,
    pub audio: Vec<AudioTrackPlan>,
    pub audio_kbps: u32,
    pub subtitles: Vec<SubtitlePlan>,
    /// The user's rungs left out because they would upscale.
    pub skipped: Vec<String>,
    /// Whether each rendition's quality is measured (`tessera-vmaf` was
    /// installed when the plan was made).
    #[serde(default)]
    pub quality: bool,
    /// Seconds from the container's start to the first video frame: audio
    /// and subtitles shift by it so the first frame is time 0 everywhere.
    pub video_origin: f64,
}

impl LadderPlan {
    /// Frames in each segment, given the total.
    pub fn segment_frames(&self, total: u32) -> Vec<u32> {
        let mut ends: Vec<u32> = self.segments.iter().skip(1).copied().collect();
        ends.push(total);
        self.segments
            .iter()
            .zip(ends)
            .map(|(a, b)| b.saturating_sub(*a))
            .collect()
    }

    /// Segment start times in seconds from the first frame.
    pub fn segment_seconds_from(&self, index: &FrameIndex) -> Vec<f64> {
        let first = index.pts.first().copied().unwrap_or(0);
        self.segments
            .iter()
            .map(|&f| index.seconds(index.pts[f as usize] - first))
            .collect()
    }

    pub fn rendition(&self, name: &str) -> Option<&Rendition> {
        self.renditions.iter().find(|r| r.name == name)
    }
}

/// Segment boundaries: segment k starts at the first frame shown at or
/// after k x `seconds` from the first frame (on the source's own clock, so
/// NTSC and VFR sources get segments of the same length in every
/// rendition). A last segment shorter than a quarter of `seconds` joins
/// the one before it.
pub fn plan_segments(index: &FrameIndex, seconds: f64) -> Vec<u32> {
    let n = index.pts.len();
    if n == 0 {
        return Vec::new();
    }
    let first = index.pts[0];
    let mut starts = vec![0u32];
    let mut k = 1u64;
    for (i, &p) in index.pts.iter().enumerate().skip(1) {
        // Half a microsecond of slack for time bases that do not divide seconds.
        if index.seconds(p - first) + 5e-7 >= k as f64 * seconds {
            starts.push(i as u32);
            k = (index.seconds(p - first) / seconds).floor() as u64 + 1;
        }
    }
    if starts.len() > 1 {
        let last = *starts.last().expect("non-empty");
        let tail = index.end_pts() - index.pts[last as usize];
        if index.seconds(tail) < seconds / 4.0 {
            starts.pop();
        }
    }
    starts
}

/// Chunk cuts (first frames, starting with 0) made of whole segments: about
/// `target_frames` each, at least `min_chunks` of them when there are
/// segments enough, each cut on a segment start.
pub fn chunk_cuts(segments: &[u32], total: u32, target_frames: u32, min_chunks: u32) -> Vec<u32> {
    if segments.is_empty() || total == 0 {
        return Vec::new();
    }
    let k = (total.div_ceil(target_frames.max(1)))
        .max(min_chunks.max(1))
        .min(segments.len() as u32);
    let len = f64::from(total) / f64::from(k);
    let mut cuts = vec![0u32];
    for i in 1..k {
        let ideal = (f64::from(i) * len).round() as i64;
        let prev = *cuts.last().expect("starts with 0");
        let best = segments
            .iter()
            .copied()
            .filter(|&s| s > prev)
            .min_by_key(|&s| (i64::from(s) - ideal).abs());
        if let Some(s) = best {
            if !cuts.contains(&s) {
                cuts.push(s);
            }
        }
    }
    cuts
}
