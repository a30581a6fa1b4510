//! Target quality (`--target-vmaf N`): each chunk's CRF is searched with a
//! few probe encodes scored by `tessera-vmaf` against the chunk's own
//! frames, then the chunk is encoded at the CRF the probes point to and
//! scored again, so the report shows what the probes predicted and what the
//! final encode measured (their gap).
//!
//! The probes are full encodes of the chunk at the final settings (only the
//! CRF differs), so a probe at the chosen CRF *is* the final encode; the
//! search is a secant on fractional CRF (x264 and x265 take them), bounded
//! to [`MAX_PROBES`], from the codec's default CRF.

use crate::args::{self, ChunkExtras, ChunkSource};
use crate::error::{MediaError, Result};
use crate::ops::count_video_packets;
use crate::plan::ChunkPlan;
use crate::request::{Codec, EncodeSettings};
use crate::runner::{self, Tool};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Probe encodes per chunk at most (the last one is kept as the chunk).
pub const MAX_PROBES: usize = 5;
/// The VMAF targets accepted.
pub const TARGET_RANGE: (f64, f64) = (50.0, 99.0);
/// How close a probe must land to stop searching.
pub const TOLERANCE: f64 = 0.5;

/// What the search did for one chunk, kept beside its file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkTarget {
    pub target: f64,
    /// (crf, VMAF) of each probe, in order.
    pub probes: Vec<(f64, f64)>,
    /// The CRF the chunk was encoded at.
    pub crf: f64,
    /// The VMAF the search expected at `crf`: the target when the secant
    /// chose it, the probe's own score for the first probe (no model yet).
    /// `measured - predicted` is the model's miss; there is no gap between
    /// probe and final encode, since the kept encode is the probe.
    pub predicted: f64,
    /// The VMAF the kept encode measured.
    pub measured: f64,
}

/// Codecs whose CRF takes fractions and whose range is known.
pub fn supports(codec: Codec) -> bool {
    matches!(codec, Codec::X264 | Codec::X265)
}

/// Checks a target before any work.
pub fn check_target(target: f64, codec: Codec) -> Result<()> {
    let (lo, hi) = TARGET_RANGE;
    if !(target.is_finite() && (lo..=hi).contains(&target)) {
        return Err(MediaError::BadRequest(format!(
            "target VMAF {target} is out of range; use {lo} to {hi}"
        )));
    }
    if !supports(codec) {
        return Err(MediaError::BadRequest(format!(
            "--target-vmaf searches a fractional CRF, which x264 and x265 take; {codec} does not"
        )));
    }
    if !Tool::Vmaf.installed() {
        return Err(MediaError::NotInstalled {
            program:
                "tessera-vmaf (VMAF; build it with `cargo build --release -p tessera-quality`)"
                    .into(),
        });
    }
    Ok(())
}

/// The argv of a chunk encode at a fractional `crf`.
fn with_crf(mut a: Vec<OsString>, crf: f64) -> Vec<OsString> {
    if let Some(i) = a.iter().position(|x| x == "-crf") {
        if i + 1 < a.len() {
            a[i + 1] = format!("{crf:.2}").into();
        }
    }
    a
}

/// VMAF of `encoded` against `reference` (the chunk's own frames), every frame.
fn score(reference: &Path, encoded: &Path) -> Result<f64> {
    let mut a: Vec<OsString> = vec!["measure".into(), reference.into(), encoded.into()];
    a.extend(runner::argv(["--json", "--threads", "1"]));
    let out = runner::run(Tool::Vmaf, &a)?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|e| MediaError::Internal(format!("tessera-vmaf's answer: {e}")))?;
    v["vmaf"]["mean"]
        .as_f64()
        .ok_or_else(|| MediaError::Internal("tessera-vmaf gave no VMAF mean".into()))
}

/// The next CRF to try: the secant through the two probes nearest the
/// target, else a step of ~1 VMAF per CRF from the one probe; clamped to
/// the codec's range.
fn next_crf(probes: &[(f64, f64)], target: f64, range: (f64, f64)) -> f64 {
    let mut by_gap: Vec<(f64, f64)> = probes.to_vec();
    by_gap.sort_by(|a, b| (a.1 - target).abs().total_cmp(&(b.1 - target).abs()));
    let crf = match by_gap.as_slice() {
        [] => 23.0,
        [(c, v)] => c + (v - target) / 1.0,
        [(c1, v1), (c2, v2), ..] if (v1 - v2).abs() > 1e-6 => {
            c1 + (target - v1) * (c2 - c1) / (v2 - v1)
        }
        [(c, v), ..] => c + (v - target),
    };
    crf.clamp(range.0, range.1)
}

/// Everything one chunk's search needs.
pub struct Search<'a> {
    pub src: &'a ChunkSource<'a>,
    pub chunk: &'a ChunkPlan,
    pub settings: &'a EncodeSettings,
    pub extras: &'a ChunkExtras,
    pub target: f64,
    /// Where the kept encode goes (renamed from its probe).
    pub out: &'a Path,
}

/// Searches the CRF for `s.chunk`, leaves the chosen encode at `s.out`,
/// and returns what it did (also written beside `s.out` as JSON).
pub fn encode_to_target(s: &Search) -> Result<ChunkTarget> {
    let total = u64::from(s.chunk.count);
    // The chunk's own frames, losslessly, as the reference every probe is
    // scored against (decoded once, not from the source's start each time).
    let reference = s.out.with_extension("ref.nut");
    let lossless = EncodeSettings::new(Codec::Ffv1);
    let ref_extras = ChunkExtras {
        filters: s.extras.filters.clone(),
        autorotate: s.extras.autorotate,
        ..ChunkExtras::default()
    };
    runner::run(
        Tool::Ffmpeg,
        &args::chunk_encode_args_with(s.src, s.chunk, &lossless, &ref_extras, &reference),
    )?;
    let range = s
        .settings
        .codec
        .crf_range()
        .map_or((0.0, 51.0), |(a, b)| (f64::from(a), f64::from(b)));
    let mut probes: Vec<(f64, f64)> = Vec::new();
    let mut files: Vec<(f64, PathBuf)> = Vec::new();
    let mut crf = f64::from(s.settings.crf.unwrap_or(match s.settings.codec {
        Codec::X265 => 28,
        _ => 23,
    }));
    for n in 0..MAX_PROBES {
        let crf_key = (crf * 100.0).round() / 100.0;
        let probe = s.out.with_extension(format!("probe{n}.nut"));
        let a = args::chunk_encode_args_with(s.src, s.chunk, s.settings, s.extras, &probe);
        runner::run(Tool::Ffmpeg, &with_crf(a, crf_key))?;
        if count_video_packets(&probe)? != total {
            return Err(MediaError::Internal(format!(
                "chunk {}: a probe encode did not hold the chunk's {total} frames",
                s.chunk.index
            )));
        }
        let vmaf = score(&reference, &probe)?;
        probes.push((crf_key, vmaf));
        files.push((crf_key, probe));
        if (vmaf - s.target).abs() <= TOLERANCE {
            break;
        }
        let next = (next_crf(&probes, s.target, range) * 100.0).round() / 100.0;
        if probes.iter().any(|(c, _)| (c - next).abs() < 0.01) {
            break;
        }
        crf = next;
    }
    // Keep the probe nearest the target from above (else the best one).
    let chosen = probes
        .iter()
        .filter(|(_, v)| *v >= s.target - TOLERANCE)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .or_else(|| probes.iter().max_by(|a, b| a.1.total_cmp(&b.1)))
        .copied()
        .expect("at least one probe");
    let first = probes.first().is_some_and(|p| p.0 == chosen.0);
    let predicted = if first { chosen.1 } else { s.target };
    for (c, f) in &files {
        if *c == chosen.0 {
            std::fs::rename(f, s.out).map_err(|e| MediaError::io_at(s.out, "renaming into", e))?;
        } else {
            let _ = std::fs::remove_file(f);
        }
    }
    let _ = std::fs::remove_file(&reference);
    let result = ChunkTarget {
        target: s.target,
        probes,
        crf: chosen.0,
        predicted,
        measured: chosen.1,
    };
    crate::workdir::write_json(&s.out.with_extension("target.json"), &result)?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secant_moves_toward_the_target_and_stays_in_range() {
        // One probe at 23 scoring 90 for a target of 93: lower CRF.
        assert!((next_crf(&[(23.0, 90.0)], 93.0, (0.0, 51.0)) - 20.0).abs() < 1e-9);
        // Two probes: the line through them.
        let c = next_crf(&[(23.0, 90.0), (20.0, 94.0)], 93.0, (0.0, 51.0));
        assert!((c - 20.75).abs() < 1e-9, "{c}");
        assert_eq!(next_crf(&[(2.0, 40.0)], 99.0, (0.0, 51.0)), 0.0);
        let a = with_crf(runner::argv(["-c:v", "libx264", "-crf", "23"]), 21.25);
        assert_eq!(a[3], "21.25");
    }
}
