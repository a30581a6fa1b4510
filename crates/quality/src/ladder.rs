//! The ladder's `quality` op: one rendition scored against the source,
//! whole and per chunk, for `publish` to put in `ladder.json`.

use crate::error::QualityError;
use crate::measure::{measure, QualityOptions};
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Instant;
use tessera_media::ladder::{quality_json, ChunkQuality, RenditionQuality};
use tessera_media::{Plan, ProbeResult, PLAN_FILE, PROBE_FILE};

/// Frames scored at most per rendition: a longer video is scored on every
/// Nth frame (every frame is still decoded: VMAF's motion needs them).
pub const MAX_SCORED_FRAMES: u32 = 20_000;
/// A ladder scores every 4th frame: measured on 720p, scoring every frame
/// costs 1.75x a veryfast encode's cpu per rendition, every 5th about 1x
/// (decoding both videos is most of what is left); per-chunk means still
/// pool a frame every 4.
pub const LADDER_SUBSAMPLE: u32 = 4;

fn state<T: DeserializeOwned>(path: &Path) -> Result<T, QualityError> {
    let bytes = std::fs::read(path)
        .map_err(|e| QualityError::BadOptions(format!("{}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| QualityError::BadOptions(format!("{}: {e}", path.display())))
}

/// Scores rendition `name` of the ladder encode in `workdir` (its joined
/// fragmented MP4, left there by `package`) against the source, on one
/// thread (it runs in one slot beside the others), and writes the result
/// where `publish` reads it.
pub fn rendition_quality(workdir: &Path, name: &str) -> Result<RenditionQuality, QualityError> {
    let req = tessera_media::read_request(workdir)
        .map_err(|e| QualityError::BadOptions(e.to_string()))?;
    let probed: ProbeResult = state(&workdir.join(PROBE_FILE))?;
    let plan: Plan = state(&workdir.join(PLAN_FILE))?;
    if plan
        .ladder
        .as_ref()
        .and_then(|l| l.rendition(name))
        .is_none()
    {
        return Err(QualityError::BadOptions(format!(
            "the ladder has no rendition named {name:?}"
        )));
    }
    let frames = probed.index.pts.len() as u32;
    let subsample = frames.div_ceil(MAX_SCORED_FRAMES).max(LADDER_SUBSAMPLE);
    let joined = tessera_media::ladder::ops::track_file(workdir, name);
    let started = Instant::now();
    let scores = measure(
        &req.input,
        &joined,
        &QualityOptions {
            subsample,
            threads: 1,
            ..QualityOptions::default()
        },
    )?;
    let per_frame = &scores.per_frame_vmaf;
    let chunks = plan
        .chunks
        .iter()
        .map(|c| {
            let values: Vec<f64> = (c.first..c.first + c.count)
                .filter(|f| f % subsample == 0)
                .filter_map(|f| per_frame.get((f / subsample) as usize).copied())
                .collect();
            ChunkQuality {
                index: c.index,
                first: c.first,
                count: c.count,
                vmaf_mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
                vmaf_min: values
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min)
                    .min(100.0),
            }
        })
        .collect();
    let quality = RenditionQuality {
        vmaf_mean: scores.vmaf.mean,
        vmaf_min: scores.vmaf.min,
        vmaf_harmonic_mean: scores.vmaf.harmonic_mean,
        vmaf_p5: scores.vmaf.p5,
        psnr_y_mean: scores.psnr_y.mean,
        ssim_mean: scores.ssim.mean,
        frames: scores.frames,
        scored_frames: scores.scored_frames,
        subsample,
        seconds: started.elapsed().as_secs_f64(),
        chunks,
    };
    let out = quality_json(workdir, name);
    let json =
        serde_json::to_vec_pretty(&quality).map_err(|e| QualityError::BadOptions(e.to_string()))?;
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &out))
        .map_err(|e| QualityError::BadOptions(format!("{}: {e}", out.display())))?;
    Ok(quality)
}
