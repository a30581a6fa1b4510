//! The ladder's last steps: each rendition cut into CMAF segments and
//! checked against the source (`package`), the audio tracks cut on the
//! video's segment times (`package-audio`), then the manifests written and
//! the folder renamed into place (`publish`).

use super::ops::{join_audio, join_rendition, ladder_of, TRACK_DIR};
use super::LADDER_REPORT;
use crate::error::{MediaError, Result};
use crate::ops::load;
use crate::verify::{verify_video, Check};
use crate::workdir::{read_json, write_atomic, write_json};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use tessera_package::{split_fmp4, AudioRendition, Cuts, Media, Presentation, Track};

/// What `package` leaves for `publish`: the track and its checks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackagedTrack {
    pub name: String,
    pub track: Track,
    pub checks: Vec<Check>,
}

/// `ladder.json`: what the published folder holds, for people and tools.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LadderReport {
    pub duration_seconds: f64,
    pub segment_seconds: f64,
    pub segments: usize,
    pub renditions: Vec<RenditionReport>,
    pub audio: Vec<String>,
    pub subtitles: Vec<String>,
    /// Rungs left out because they would upscale.
    pub skipped: Vec<String>,
    /// Poster, sprite sheets and the WebVTT thumbnail track (in `thumbs/`).
    pub thumbnails: Option<crate::Thumbs>,
    /// Why quality was not measured, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_note: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RenditionReport {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub codec: String,
    pub frames: u64,
    pub bytes: u64,
    /// bit/s over the whole rendition, and its busiest segment's.
    pub average_bandwidth: u64,
    pub peak_bandwidth: u64,
    pub checks: Vec<Check>,
    /// VMAF, PSNR and SSIM against the source, whole and per chunk.
    #[serde(default)]
    pub quality: Option<RenditionQuality>,
}

/// A rendition's quality against the source (written by `tessera-quality`'s
/// `quality` op into the workdir; `publish` puts it in `ladder.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenditionQuality {
    pub vmaf_mean: f64,
    pub vmaf_min: f64,
    pub vmaf_harmonic_mean: f64,
    pub vmaf_p5: f64,
    pub psnr_y_mean: f64,
    pub ssim_mean: f64,
    /// Frames compared, and of those scored (every `subsample`th).
    pub frames: u32,
    pub scored_frames: u32,
    pub subsample: u32,
    /// Wall seconds the measurement took (decode of both, scaling, libvmaf).
    pub seconds: f64,
    pub chunks: Vec<ChunkQuality>,
}

/// One chunk's VMAF within a rendition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkQuality {
    pub index: u32,
    pub first: u32,
    pub count: u32,
    pub vmaf_mean: f64,
    pub vmaf_min: f64,
}

/// Where the quality op writes a rendition's [`RenditionQuality`].
pub fn quality_json(workdir: &Path, name: &str) -> PathBuf {
    workdir.join(TRACK_DIR).join(format!("{name}.quality.json"))
}

fn track_json(workdir: &Path, name: &str) -> PathBuf {
    workdir.join(TRACK_DIR).join(format!("{name}.json"))
}

fn packaging(e: tessera_package::PackageError) -> MediaError {
    MediaError::Internal(format!("packaging: {e}"))
}

/// A fresh folder for a track's segments inside the temporary output (an
/// earlier attempt's files go: their names may not be reused).
fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| MediaError::io_at(dir, "removing", e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| MediaError::io_at(dir, "creating", e))
}

/// init + segments, joined, as a player would read them one after another.
fn join_segments(dir: &Path, track: &Track, out: &Path) -> Result<()> {
    let mut f = std::fs::File::create(out).map_err(|e| MediaError::io_at(out, "creating", e))?;
    let names = std::iter::once(&track.init).chain(track.segments.iter().map(|s| &s.file));
    for name in names {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| MediaError::io_at(&path, "reading", e))?;
        f.write_all(&bytes)
            .map_err(|e| MediaError::io_at(out, "writing", e))?;
    }
    Ok(())
}

/// `package --rendition NAME`: joins the rendition's chunks, cuts them into
/// CMAF segments at the plan's segment starts, and checks the segments,
/// read one after another as a player does, against the source: every
/// frame there with its timing, and the whole decodes. A failed check
/// fails the task; nothing is published.
pub fn package_rendition(workdir: &Path, name: &str) -> Result<PackagedTrack> {
    let joined = join_rendition(workdir, name)?;
    let (_, probed, plan) = load(workdir)?;
    let ladder = ladder_of(&plan)?;
    let total = probed.index.pts.len() as u32;
    let dir = plan.output.temp.join(name);
    fresh_dir(&dir)?;
    let track = split_fmp4(&joined, &dir, &Cuts::Samples(ladder.segment_frames(total)))
        .map_err(packaging)?;
    let replay = workdir.join(TRACK_DIR).join(format!("{name}.replay.mp4"));
    join_segments(&dir, &track, &replay)?;
    let report = verify_video(&probed.index, &replay, true);
    let mut report = report?;
    let first = crate::probe::probe(&replay)
        .ok()
        .and_then(|i| i.video().and_then(|v| v.start_time));
    report.checks.push(Check {
        name: "starts at 0".into(),
        ok: first.is_some_and(|t| t.abs() < 0.0005),
        detail: match first {
            Some(t) => format!("first frame shown at {:.3} ms", t * 1000.0),
            None => "no start time".into(),
        },
    });
    let _ = std::fs::remove_file(&replay);
    let segments_ok = track.segments.len() == ladder.segments.len();
    report.checks.push(Check {
        name: "segments".into(),
        ok: segments_ok,
        detail: format!(
            "{} segments, the plan has {}",
            track.segments.len(),
            ladder.segments.len()
        ),
    });
    if !report.passed() {
        return Err(MediaError::VerifyFailed(format!(
            "rendition {name}: {}",
            report.failures()
        )));
    }
    // The joined rendition stays in the workdir for its quality task.
    let packaged = PackagedTrack {
        name: name.to_string(),
        track,
        checks: report.checks,
    };
    write_json(&track_json(workdir, name), &packaged)?;
    Ok(packaged)
}

/// `package-audio`: every audio track encoded once and cut at the video's
/// segment start times.
pub fn package_audio(workdir: &Path) -> Result<Vec<PackagedTrack>> {
    let files = join_audio(workdir)?;
    let (_, probed, plan) = load(workdir)?;
    let ladder = ladder_of(&plan)?;
    let starts = ladder.segment_seconds_from(&probed.index);
    let mut out = Vec::new();
    for (a, file) in ladder.audio.iter().zip(files) {
        let dir = plan.output.temp.join(&a.name);
        fresh_dir(&dir)?;
        let track = split_fmp4(&file, &dir, &Cuts::Seconds(starts.clone())).map_err(packaging)?;
        let seconds = track_seconds(&track);
        let video = probed
            .index
            .seconds(probed.index.end_pts() - probed.index.pts[0]);
        // Padded to the video's end (see audio_fmp4_args); a source whose
        // audio runs on past the last frame keeps it.
        let frame = 2048.0 / 8000.0;
        let checks = vec![Check {
            name: "audio duration".into(),
            ok: seconds + frame >= video,
            detail: format!("{seconds:.3}s of audio, {video:.3}s of video"),
        }];
        if let Some(c) = checks.iter().find(|c| !c.ok) {
            return Err(MediaError::VerifyFailed(format!(
                "audio track {}: {}: {}",
                a.name, c.name, c.detail
            )));
        }
        let packaged = PackagedTrack {
            name: a.name.clone(),
            track,
            checks,
        };
        write_json(&track_json(workdir, &a.name), &packaged)?;
        let _ = std::fs::remove_file(&file);
        out.push(packaged);
    }
    Ok(out)
}

fn track_seconds(t: &Track) -> f64 {
    let units: u64 = t.segments.iter().map(|s| s.duration).sum();
    units as f64 / f64::from(t.timescale.max(1))
}

fn bandwidths(t: &Track) -> (u64, u64) {
    let seconds = track_seconds(t).max(1e-3);
    let bytes: u64 = t.segments.iter().map(|s| s.bytes).sum();
    let peak = t
        .segments
        .iter()
        .map(|s| {
            let d = s.duration as f64 / f64::from(t.timescale.max(1));
            (s.bytes as f64 * 8.0 / d.max(1e-3)) as u64
        })
        .max()
        .unwrap_or(0);
    ((bytes as f64 * 8.0 / seconds) as u64, peak)
}

/// Segment start times in seconds, to compare renditions.
fn starts(t: &Track) -> Vec<f64> {
    let first = t.segments.first().map_or(0, |s| s.start);
    t.segments
        .iter()
        .map(|s| (s.start - first) as f64 / f64::from(t.timescale.max(1)))
        .collect()
}

/// `publish`: checks that the renditions' segments are aligned (the same
/// count, each starting at the same time), writes the HLS and DASH
/// manifests and `ladder.json`, and renames the folder into place.
pub fn publish(workdir: &Path) -> Result<LadderReport> {
    let (_, probed, plan) = load(workdir)?;
    let ladder = ladder_of(&plan)?;
    let temp = &plan.output.temp;
    let mut video = Vec::new();
    let mut reports = Vec::new();
    for r in &ladder.renditions {
        let p: PackagedTrack = read_json(&track_json(workdir, &r.name))?;
        let (average, peak) = bandwidths(&p.track);
        let (width, height) = match p.track.media {
            Media::Video { width, height } => (width, height),
            Media::Audio { .. } => (r.width, r.height),
        };
        reports.push(RenditionReport {
            name: r.name.clone(),
            width,
            height,
            codec: p.track.codec.clone(),
            frames: p.track.segments.iter().map(|s| u64::from(s.samples)).sum(),
            bytes: p.track.segments.iter().map(|s| s.bytes).sum(),
            average_bandwidth: average,
            peak_bandwidth: peak,
            checks: p.checks.clone(),
            quality: read_json(&quality_json(workdir, &r.name)).ok(),
        });
        video.push(p);
    }
    let reference = video.first().map(|p| starts(&p.track)).unwrap_or_default();
    for p in &video {
        let mine = starts(&p.track);
        let aligned = mine.len() == reference.len()
            && mine
                .iter()
                .zip(&reference)
                .all(|(a, b)| (a - b).abs() < 1e-6);
        if !aligned {
            return Err(MediaError::VerifyFailed(format!(
                "rendition {}'s segments do not start where {}'s do; the ladder is not aligned",
                p.name, video[0].name
            )));
        }
    }
    let mut audio = Vec::new();
    for a in &ladder.audio {
        let p: PackagedTrack = read_json(&track_json(workdir, &a.name))?;
        audio.push(AudioRendition {
            dir: a.name.clone(),
            track: p.track,
            name: a.title.clone(),
            language: a.language.clone(),
            default: a.default,
        });
    }
    let frame_rate = frame_rate(&probed.index);
    let presentation = Presentation {
        duration_seconds: probed
            .index
            .seconds(probed.index.end_pts() - probed.index.pts[0]),
        video: video
            .into_iter()
            .map(|p| tessera_package::VideoRendition {
                dir: p.name,
                track: p.track,
                frame_rate,
            })
            .collect(),
        audio,
        subtitles: ladder
            .subtitles
            .iter()
            .map(|s| tessera_package::SubtitleRendition {
                file: s.file.clone(),
                name: s.title.clone(),
                language: s.language.clone(),
                default: s.default,
                forced: s.forced,
            })
            .collect(),
    };
    for (path, text) in tessera_package::hls(&presentation) {
        let file = temp.join(path);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| MediaError::io_at(dir, "creating", e))?;
        }
        write_atomic(&file, text.as_bytes())?;
    }
    write_atomic(
        &temp.join("manifest.mpd"),
        tessera_package::dash(&presentation).as_bytes(),
    )?;
    let report = LadderReport {
        duration_seconds: presentation.duration_seconds,
        segment_seconds: ladder.segment_seconds,
        segments: ladder.segments.len(),
        renditions: reports,
        audio: ladder.audio.iter().map(|a| a.name.clone()).collect(),
        subtitles: ladder.subtitles.iter().map(|s| s.file.clone()).collect(),
        skipped: ladder.skipped.clone(),
        thumbnails: read_json(&workdir.join(TRACK_DIR).join("thumbs.json")).ok(),
        quality_note: (!ladder.quality).then(|| {
            "not measured: tessera-vmaf was not installed next to tessera or on PATH \
             (cargo build --release -p tessera-quality)"
                .to_string()
        }),
    };
    write_json(&temp.join(LADDER_REPORT), &report)?;
    replace_folder(temp, &plan.output.path)?;
    Ok(report)
}

/// The source's frame rate as a fraction: its mean over the whole video.
fn frame_rate(index: &crate::probe::FrameIndex) -> (u32, u32) {
    let s = index.mean_frame_seconds();
    if s <= 0.0 {
        return (25, 1);
    }
    // 1001-based rates are written exactly (29.97 is 30000/1001).
    let fps = 1.0 / s;
    let ntsc = fps * 1.001;
    if (ntsc - ntsc.round()).abs() < 0.01 && (fps - fps.round()).abs() > 0.01 {
        return ((ntsc.round() as u32) * 1000, 1001);
    }
    ((fps * 1000.0).round() as u32, 1000)
}

/// Moves `temp` to `path`; an earlier ladder there (checked when the
/// encode was asked for: empty, or Tessera's own) is removed first.
fn replace_folder(temp: &Path, path: &Path) -> Result<()> {
    if path.exists() {
        let ours = path.join(LADDER_REPORT).is_file()
            || std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
        if !ours {
            return Err(MediaError::OutputDir {
                path: path.into(),
                detail: "files appeared there during the encode that are not a Tessera ladder; nothing was replaced".into(),
            });
        }
        std::fs::remove_dir_all(path).map_err(|e| MediaError::io_at(path, "replacing", e))?;
    }
    std::fs::rename(temp, path).map_err(|e| MediaError::io_at(path, "renaming into", e))
}
