//! Compares an encoded output with its source: frames, timing, streams.

use crate::error::Result;
use crate::probe::{probe_and_index, FrameIndex, MediaInfo};
use crate::runner::{self, argv, Tool};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// How far per-frame timestamps may drift (seconds); containers with a
/// millisecond time base round to it.
pub const PTS_TOLERANCE: f64 = 0.001 + 1e-6;

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyOptions {
    /// Also decode the whole output, failing on any decode error (slow).
    pub decode: bool,
}

/// One check of a verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// Every check made, passed or not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub checks: Vec<Check>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The failed checks on one line.
    pub fn failures(&self) -> String {
        let failed: Vec<String> = self
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        failed.join("; ")
    }

    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    fn add(&mut self, name: &str, ok: bool, detail: String) {
        self.checks.push(Check {
            name: name.to_string(),
            ok,
            detail,
        });
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            writeln!(
                f,
                "{} {:<18} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            )?;
        }
        write!(
            f,
            "{}",
            if self.passed() {
                "all checks passed"
            } else {
                "verification FAILED"
            }
        )
    }
}

/// Seconds of every frame relative to the first.
pub fn relative_seconds(index: &FrameIndex) -> Vec<f64> {
    let first = index.pts.first().copied().unwrap_or(0);
    index.pts.iter().map(|p| index.seconds(p - first)).collect()
}

/// Index and drift of the first frame whose relative time differs by more
/// than `tolerance` seconds (compares the common prefix).
pub fn first_pts_mismatch(a: &FrameIndex, b: &FrameIndex, tolerance: f64) -> Option<(usize, f64)> {
    relative_seconds(a)
        .into_iter()
        .zip(relative_seconds(b))
        .enumerate()
        .map(|(i, (x, y))| (i, (x - y).abs()))
        .find(|(_, d)| *d > tolerance)
}

fn langs(info: &MediaInfo, kind: &str) -> Vec<String> {
    info.streams_of(kind)
        .map(|s| s.language().unwrap_or("und").to_string())
        .collect()
}

/// Verifies `candidate` against `source`.
pub fn verify(source: &Path, candidate: &Path, options: VerifyOptions) -> Result<VerifyReport> {
    let (si, sx) = probe_and_index(source)?;
    verify_against(&si, &sx, candidate, options)
}

/// [`verify`] against a source that was already probed.
pub fn verify_against(
    si: &MediaInfo,
    sx: &FrameIndex,
    candidate: &Path,
    options: VerifyOptions,
) -> Result<VerifyReport> {
    let (ci, cx) = probe_and_index(candidate)?;
    Ok(compare(
        si,
        sx,
        &ci,
        &cx,
        options.decode.then_some(candidate),
    ))
}

/// The video checks alone (frames, decode, timestamps, duration,
/// monotonic) of `candidate`, whose first video stream must hold exactly
/// the frames of `sx` with their timing: a ladder's rendition, which has no
/// audio or subtitles of its own.
pub fn verify_video(sx: &FrameIndex, candidate: &Path, decode: bool) -> Result<VerifyReport> {
    let (ci, cx) = probe_and_index(candidate)?;
    let mut r = VerifyReport::default();
    video_checks(&mut r, sx, &cx, decode.then_some(candidate));
    monotonic_check(&mut r, &cx);
    r.add(
        "video streams",
        ci.streams_of("video").count() == 1,
        format!("{} (one expected)", ci.streams_of("video").count()),
    );
    Ok(r)
}

fn compare(
    si: &MediaInfo,
    sx: &FrameIndex,
    ci: &MediaInfo,
    cx: &FrameIndex,
    decode: Option<&Path>,
) -> VerifyReport {
    let mut r = VerifyReport::default();
    video_checks(&mut r, sx, cx, decode);
    for kind in ["audio", "subtitle"] {
        let (a, b) = (langs(si, kind), langs(ci, kind));
        r.add(
            &format!("{kind} streams"),
            a == b,
            format!("source {a:?}, output {b:?}"),
        );
    }
    let (a, b) = (si.chapters.len(), ci.chapters.len());
    r.add("chapters", a == b, format!("source {a}, output {b}"));
    monotonic_check(&mut r, cx);
    let (a, b) = (rotation(si), rotation(ci));
    r.add("rotation", a == b, format!("source {a}°, output {b}°"));
    r
}

fn monotonic_check(r: &mut VerifyReport, cx: &FrameIndex) {
    r.add(
        "timestamps monotonic",
        cx.timestamp_faults == 0,
        match cx.timestamp_faults {
            0 => "no repeated or backward timestamps".into(),
            n => format!("{n} repeated or backward timestamps in the output"),
        },
    );
}

fn video_checks(r: &mut VerifyReport, sx: &FrameIndex, cx: &FrameIndex, decode: Option<&Path>) {
    r.add(
        "video frames",
        sx.len() == cx.len(),
        format!("source {}, output {}", sx.len(), cx.len()),
    );
    if let Some(path) = decode {
        let mut a = argv(["-nostdin", "-v", "error", "-xerror"]);
        a.extend(runner::media_input(path));
        a.extend(argv([
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "-1",
            "-f",
            "null",
            "-",
        ]));
        match runner::run(Tool::Ffmpeg, &a) {
            Ok(out) if out.stderr.trim().is_empty() => {
                r.add("decode", true, "no decode errors".into())
            }
            Ok(out) => r.add("decode", false, runner::tail(&out.stderr)),
            Err(e) => r.add("decode", false, e.to_string()),
        }
    }
    match first_pts_mismatch(sx, cx, PTS_TOLERANCE) {
        None => r.add("frame timestamps", true, "every frame within 1 ms".into()),
        Some((i, d)) => r.add(
            "frame timestamps",
            false,
            format!("frame {i} is off by {:.3} ms", d * 1000.0),
        ),
    }
    let span = |x: &FrameIndex| {
        x.seconds(x.pts.last().copied().unwrap_or(0) - x.pts.first().copied().unwrap_or(0))
    };
    let frame = sx.mean_frame_seconds().max(0.001);
    let (ss, cs) = (span(sx), span(cx));
    r.add(
        "duration",
        (ss - cs).abs() <= frame + PTS_TOLERANCE,
        format!("source {ss:.3}s, output {cs:.3}s"),
    );
}

/// The video's display rotation in degrees, 0..360 (0 when none).
fn rotation(info: &MediaInfo) -> i64 {
    info.video()
        .and_then(|v| v.rotation)
        .unwrap_or(0)
        .rem_euclid(360)
}
