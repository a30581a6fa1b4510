//! Thumbnails for a ladder: a poster, sprite sheets of small tiles and a
//! WebVTT thumbnail track that players show while the user scrubs.
//!
//! [`plan_thumbnails`] decides everything (pure): which source frame each
//! tile shows, the tile and poster sizes, the sheet layout and the cue
//! times. [`thumbnail_graph`] and [`thumbnail_args`] turn the plan into one
//! ffmpeg run (pure, run nothing), and [`write_thumbnails`] runs it through
//! [`crate::runner`] into a temporary folder that is renamed into place.
//!
//! Choices:
//! * **Frames.** Tile `i` shows the source frame at or just after
//!   `i * interval` on the source's own timeline, counted from the first
//!   frame: picked exactly from the [`FrameIndex`] (integer arithmetic on
//!   pts, microsecond intervals) and selected in ffmpeg by pts, so VFR, NTSC
//!   and odd start times land on the right frame. `fps=` is not used to
//!   pick frames: it drops and duplicates by its own rounding. When one
//!   frame lasts over several tile times (a VFR gap, a long last frame),
//!   the tiles it covers all show it. Cue `i` runs from `i * interval` to
//!   `(i + 1) * interval` (the last one to the end of the last frame),
//!   relative to the first frame, which a player shows as 0.
//! * **Poster.** ffmpeg's `thumbnail` filter picks, among the frames at 10%,
//!   20% .. 90% of the duration, the one whose colour histogram is closest to
//!   their mean: a black fade-in, a title card or a flash among them loses
//!   to the picture most of the video looks like. One pass, no guessing.
//! * **Look.** Tiles and poster are scaled to the display size: the sample
//!   aspect ratio is applied and the display rotation too (ffmpeg's
//!   autorotate), so they look as the video does in a player; heights are
//!   even. The poster is the display size, or `poster_width` if smaller:
//!   never upscaled.
//! * **Bounds.** At most [`MAX_TILES`] tiles: a longer video gets a larger
//!   interval, `ceil(duration / MAX_TILES)` rounded up to whole seconds
//!   (reported in [`Thumbs::interval_seconds`]). Sheets are at most
//!   [`MAX_SHEET_SIDE`] pixels a side; a single sheet is cut to the rows and
//!   columns it uses. Videos smaller than [`MIN_SOURCE_SIDE`] pixels, with an
//!   aspect ratio past 16:1, or with no duration are refused with a one-line
//!   error; audio-only input is [`MediaError::NoVideo`].
//! * **Atomic.** Everything is written into a temporary folder next to
//!   `out_dir` and renamed into place at the end; a failure leaves nothing.
//!
//! Cost: one decode of the whole video (exact frames need every frame
//! decoded), plus scaling and JPEG encoding of the tiles only.

mod args;
#[cfg(test)]
mod tests;

pub use args::{thumbnail_args, thumbnail_graph};

use crate::error::{MediaError, Result};
use crate::probe::{FrameIndex, MediaInfo, StreamInfo};
use crate::runner::{self, Tool};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Most tiles a video gets; a longer video gets a larger interval.
pub const MAX_TILES: u32 = 2_000;
/// Largest sprite sheet side in pixels (browsers decode larger images
/// slowly or not at all).
pub const MAX_SHEET_SIDE: u32 = 16_384;
/// Largest poster width; a larger source is scaled down.
pub const MAX_POSTER_WIDTH: u32 = 7_680;
/// Smallest source side (display pixels) worth a thumbnail.
pub const MIN_SOURCE_SIDE: u32 = 16;
/// Longest video accepted (100 days): longer timestamps are damage.
const MAX_DURATION_US: i64 = 100 * 86_400 * 1_000_000;
/// Widest display aspect ratio (either way) accepted.
const MAX_ASPECT: f64 = 16.0;
/// Frames the poster is chosen among: 10%, 20% .. 90% of the duration.
const POSTER_CANDIDATES: i64 = 9;

pub const POSTER_FILE: &str = "poster.jpg";
pub const VTT_FILE: &str = "thumbnails.vtt";
/// The filter graph's script, written in the temporary folder and removed
/// before it is published.
const GRAPH_FILE: &str = "thumbnails.graph";

/// What thumbnails to make.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThumbOptions {
    /// Seconds between tiles (0.1 to 3600).
    pub interval_seconds: f64,
    /// Tile width in pixels (16 to 1920); the height follows from the
    /// display aspect ratio, rounded to even.
    pub tile_width: u32,
    /// Tiles per sheet row and column (1 to 100 each).
    pub columns: u32,
    pub rows: u32,
    /// Poster width (16 to [`MAX_POSTER_WIDTH`]); `None`: the display
    /// width. Never larger than the display width.
    pub poster_width: Option<u32>,
}

impl Default for ThumbOptions {
    fn default() -> Self {
        ThumbOptions {
            interval_seconds: 2.0,
            tile_width: 160,
            columns: 10,
            rows: 10,
            poster_width: None,
        }
    }
}

impl ThumbOptions {
    /// Refuses options outside their documented bounds.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(MediaError::BadRequest(format!("thumbnails: {m}")));
        let i = self.interval_seconds;
        if !(0.1..=3600.0).contains(&i) {
            return bad(format!("interval {i} s is outside 0.1 to 3600 seconds"));
        }
        if !(16..=1920).contains(&self.tile_width) {
            return bad(format!(
                "tile width {} is outside 16 to 1920 pixels",
                self.tile_width
            ));
        }
        if !(1..=100).contains(&self.columns) || !(1..=100).contains(&self.rows) {
            return bad(format!(
                "a sheet of {}x{} tiles: columns and rows must be 1 to 100",
                self.columns, self.rows
            ));
        }
        match self.poster_width {
            Some(w) if !(16..=MAX_POSTER_WIDTH).contains(&w) => bad(format!(
                "poster width {w} is outside 16 to {MAX_POSTER_WIDTH} pixels"
            )),
            _ => Ok(()),
        }
    }
}

/// What [`write_thumbnails`] wrote; file names are relative to `out_dir`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thumbs {
    pub poster: String,
    pub sprites: Vec<String>,
    pub vtt: String,
    /// Tile size in pixels (width, height).
    pub tile: (u32, u32),
    /// Number of tiles (and cues).
    pub count: u32,
    /// The interval used: the requested one, or larger for a long video.
    pub interval_seconds: f64,
}

/// Everything decided before ffmpeg runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ThumbPlan {
    /// ffmpeg's index of the video stream in the input.
    pub stream: u32,
    pub interval_us: i64,
    /// From the first frame to the end of the last, in microseconds.
    pub duration_us: i64,
    /// Per tile, the presentation index of the source frame it shows.
    pub tile_frames: Vec<usize>,
    /// Distinct frames shown, in order: (pts, first tile showing it).
    pub shown: Vec<(i64, u32)>,
    /// pts of the poster candidates, ascending and distinct.
    pub poster_pts: Vec<i64>,
    pub tile: (u32, u32),
    pub poster: (u32, u32),
    /// Tiles per sheet row and column.
    pub columns: u32,
    pub rows: u32,
    pub sheets: u32,
}

impl ThumbPlan {
    pub fn count(&self) -> u32 {
        self.tile_frames.len() as u32
    }

    /// Sheet number (from 1) and pixel rectangle (x, y, w, h) of tile `i`.
    pub fn tile_rect(&self, i: u32) -> (u32, [u32; 4]) {
        let per = self.columns * self.rows;
        let at = i % per;
        let (w, h) = self.tile;
        (
            i / per + 1,
            [(at % self.columns) * w, (at / self.columns) * h, w, h],
        )
    }

    /// The WebVTT thumbnail track: one cue per tile, contiguous from 0 to
    /// the end of the last frame.
    pub fn vtt(&self) -> String {
        let mut s = String::from("WEBVTT\n");
        for i in 0..self.count() {
            let start = i64::from(i) * self.interval_us;
            let end = (start + self.interval_us).min(self.duration_us);
            let (sheet, [x, y, w, h]) = self.tile_rect(i);
            s.push_str(&format!(
                "\n{} --> {}\n{}#xywh={x},{y},{w},{h}\n",
                vtt_time(start),
                vtt_time(end),
                sprite_name(sheet)
            ));
        }
        s
    }
}

/// Name of sprite sheet `n` (from 1).
pub fn sprite_name(n: u32) -> String {
    format!("thumbs-{n:03}.jpg")
}

/// Microseconds as a WebVTT timestamp, `HH:MM:SS.mmm` (to the nearest ms).
pub fn vtt_time(us: i64) -> String {
    let ms = (us + 500) / 1_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
        ms % 1_000
    )
}

/// Display size of `v` in pixels: the sample aspect ratio applied to the
/// width, width and height swapped for a quarter-turn rotation.
pub fn display_size(v: &StreamInfo) -> Option<(f64, f64)> {
    let (w, h) = (f64::from(v.width?), f64::from(v.height?));
    let (n, d) = v.sample_aspect_ratio.unwrap_or((1, 1));
    let w = w * f64::from(n) / f64::from(d);
    match v.rotation.unwrap_or(0).rem_euclid(180) {
        90 => Some((h, w)),
        _ => Some((w, h)),
    }
}

/// `x` rounded to the nearest even number of pixels, at least 2.
pub(crate) fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// Decides tiles, poster candidates and sizes for `index`, the frame index
/// of `info`'s video stream. `input` names the file in errors.
pub fn plan_thumbnails(
    input: &Path,
    info: &MediaInfo,
    index: &FrameIndex,
    opts: &ThumbOptions,
) -> Result<ThumbPlan> {
    opts.validate()?;
    let refuse = |why: String| {
        Err(MediaError::Unsupported(format!(
            "{}: {why}",
            input.display()
        )))
    };
    let v = info
        .video()
        .ok_or_else(|| MediaError::NoVideo { path: input.into() })?;
    let (first, last) = match (index.pts.first(), index.pts.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => return Err(MediaError::NoFrames { path: input.into() }),
    };
    let Some((dw, dh)) = display_size(v) else {
        return refuse("the video stream has no frame size; thumbnails need one".into());
    };
    if dw < f64::from(MIN_SOURCE_SIDE) || dh < f64::from(MIN_SOURCE_SIDE) {
        return refuse(format!(
            "the video is {dw:.0}x{dh:.0} pixels, too small for thumbnails (at least {MIN_SOURCE_SIDE}x{MIN_SOURCE_SIDE})"
        ));
    }
    if dw / dh > MAX_ASPECT || dh / dw > MAX_ASPECT {
        return refuse(format!(
            "the video displays at {dw:.0}x{dh:.0}, an aspect ratio past 16:1 that thumbnails do not support"
        ));
    }
    let (num, den) = (
        i128::from(index.time_base.0.max(1)),
        i128::from(index.time_base.1.max(1)),
    );
    // In i128: a hostile file's pts may sit anywhere in i64.
    let to_us = |ticks: i128| ticks * num * 1_000_000 / den;
    // Mean frame interval, in ticks, for a last frame of unknown length.
    let frames = index.pts.len() as i128;
    let mean = (i128::from(last) - i128::from(first)) / (frames - 1).max(1);
    let last_duration = if index.last_duration > 0 {
        i128::from(index.last_duration)
    } else {
        mean
    };
    let duration_us = to_us(i128::from(last) + last_duration - i128::from(first));
    if duration_us <= 0 {
        return refuse(
            "the video is a single frame with no duration; thumbnails need a video that plays"
                .into(),
        );
    }
    if duration_us > i128::from(MAX_DURATION_US) {
        return refuse(format!(
            "the video's timestamps span {} days, which no real video does; its timestamps are damaged (remux it: ffmpeg -i in -c copy out.mkv)",
            duration_us / 86_400_000_000
        ));
    }
    let duration_us = duration_us as i64;
    let mut interval_us = (opts.interval_seconds * 1e6).round() as i64;
    if ceil_div(duration_us, interval_us) > i64::from(MAX_TILES) {
        interval_us = ceil_div(ceil_div(duration_us, i64::from(MAX_TILES)), 1_000_000) * 1_000_000;
    }
    let count = ceil_div(duration_us, interval_us);
    // Time past the first frame, times `den`: exact, to compare with `us * den`.
    let to_us_exact = |p: i64| (i128::from(p) - i128::from(first)) * num * 1_000_000;
    // The first frame at or after `us` past the first frame, else the last.
    let frame_at = |us: i64| {
        let i = index
            .pts
            .partition_point(|&p| to_us_exact(p) < i128::from(us) * den);
        i.min(index.pts.len() - 1)
    };
    let tile_frames: Vec<usize> = (0..count).map(|i| frame_at(i * interval_us)).collect();
    let mut shown: Vec<(i64, u32)> = Vec::new();
    for (i, &f) in tile_frames.iter().enumerate() {
        if shown.last().is_none_or(|s| s.0 != index.pts[f]) {
            shown.push((index.pts[f], i as u32));
        }
    }
    let mut poster_pts: Vec<i64> = (1..=POSTER_CANDIDATES)
        .map(|k| index.pts[frame_at(duration_us * k / (POSTER_CANDIDATES + 1))])
        .collect();
    poster_pts.dedup();

    let tile = (opts.tile_width, even(f64::from(opts.tile_width) * dh / dw));
    let count = count as u32;
    let per = opts.columns * opts.rows;
    let (columns, rows) = if count < per {
        let c = opts.columns.min(count);
        (c, count.div_ceil(c))
    } else {
        (opts.columns, opts.rows)
    };
    if columns * tile.0 > MAX_SHEET_SIDE || rows * tile.1 > MAX_SHEET_SIDE {
        return Err(MediaError::BadRequest(format!(
            "thumbnails: a sheet of {columns}x{rows} tiles of {}x{} pixels is larger than {MAX_SHEET_SIDE} pixels a side; use fewer columns or rows, or narrower tiles",
            tile.0, tile.1
        )));
    }
    let pw = (opts.poster_width.unwrap_or(u32::MAX) as f64)
        .min(dw)
        .min(f64::from(MAX_POSTER_WIDTH));
    // Even, and never more than the display width.
    let poster_w = (pw.floor() as u32 / 2 * 2).max(2);
    Ok(ThumbPlan {
        stream: v.index,
        interval_us,
        duration_us,
        tile_frames,
        shown,
        poster_pts,
        tile,
        poster: (poster_w, even(f64::from(poster_w) * dh / dw)),
        columns,
        rows,
        sheets: count.div_ceil(per),
    })
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// Writes into `out_dir`: `poster.jpg`, sprite sheets `thumbs-001.jpg` ..
/// (columns x rows tiles each) and `thumbnails.vtt` (one cue per tile,
/// `START --> END` covering the whole video without gaps, each naming
/// `thumbs-NNN.jpg#xywh=x,y,w,h`). See the module doc for the choices.
/// Replaces an existing `out_dir` whole, and so refuses one that holds
/// anything but earlier thumbnails; on failure nothing new is left and an
/// earlier `out_dir` stays as it was.
pub fn write_thumbnails(
    input: &Path,
    info: &MediaInfo,
    index: &FrameIndex,
    out_dir: &Path,
    opts: &ThumbOptions,
) -> Result<Thumbs> {
    let plan = plan_thumbnails(input, info, index, opts)?;
    let out_err = |detail: &str| MediaError::OutputDir {
        path: out_dir.into(),
        detail: detail.into(),
    };
    let name = out_dir
        .file_name()
        .ok_or_else(|| out_err("it has no folder name"))?
        .to_string_lossy()
        .into_owned();
    // ffmpeg's image2 muxer reads `%` in a path as a pattern.
    if out_dir.to_string_lossy().contains('%') {
        return Err(out_err(
            "its path holds '%', which ffmpeg reads as a file-name pattern; pick another folder",
        ));
    }
    check_replaceable(out_dir).map_err(|d| out_err(&d))?;
    let tmp = out_dir.with_file_name(format!(".{name}.tessera-tmp"));
    remove_dir(&tmp)?;
    std::fs::create_dir(&tmp)
        .map_err(|e| out_err(&format!("cannot create {}: {e}", tmp.display())))?;
    match fill(input, &plan, &tmp).and_then(|()| publish(&tmp, out_dir, &name)) {
        Ok(()) => Ok(Thumbs {
            poster: POSTER_FILE.into(),
            sprites: (1..=plan.sheets).map(sprite_name).collect(),
            vtt: VTT_FILE.into(),
            tile: plan.tile,
            count: plan.count(),
            interval_seconds: plan.interval_us as f64 / 1e6,
        }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Whether thumbnails may replace `out_dir` whole: it is absent, or a
/// folder holding only earlier thumbnails, so a folder of other things
/// (the ladder's output, say) is never swept away.
fn check_replaceable(out_dir: &Path) -> std::result::Result<(), String> {
    let entries = match std::fs::read_dir(out_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read it as a folder ({e})")),
        Ok(entries) => entries,
    };
    for entry in entries {
        let name = entry.map_err(|e| e.to_string())?.file_name();
        let name = name.to_string_lossy();
        let ours = name == POSTER_FILE
            || name == VTT_FILE
            || name
                .strip_prefix("thumbs-")
                .and_then(|n| n.strip_suffix(".jpg"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !ours {
            return Err(format!(
                "it holds {name:?}, not a thumbnail file; thumbnails replace their folder whole, so give them a folder of their own (e.g. out/thumbs)"
            ));
        }
    }
    Ok(())
}

/// Runs ffmpeg into `tmp`, checks what it wrote and adds the track.
fn fill(input: &Path, plan: &ThumbPlan, tmp: &Path) -> Result<()> {
    let graph = tmp.join(GRAPH_FILE);
    std::fs::write(&graph, thumbnail_graph(plan))
        .map_err(|e| MediaError::io_at(&graph, "writing", e))?;
    runner::run(Tool::Ffmpeg, &thumbnail_args(input, &graph, tmp))?;
    std::fs::remove_file(&graph).map_err(|e| MediaError::io_at(&graph, "removing", e))?;
    let mut missing: Vec<String> = (1..=plan.sheets).map(sprite_name).collect();
    missing.push(POSTER_FILE.into());
    missing.retain(|f| !tmp.join(f).is_file());
    let extra = tmp.join(sprite_name(plan.sheets + 1));
    if !missing.is_empty() || extra.exists() {
        return Err(MediaError::Internal(format!(
            "{}: ffmpeg did not write the planned thumbnails (missing {missing:?}, or more than {} sheets)",
            input.display(),
            plan.sheets
        )));
    }
    let vtt = tmp.join(VTT_FILE);
    std::fs::write(&vtt, plan.vtt()).map_err(|e| MediaError::io_at(&vtt, "writing", e))
}

/// Renames `tmp` to `out_dir`, replacing an older `out_dir` whole.
fn publish(tmp: &Path, out_dir: &Path, name: &str) -> Result<()> {
    let old: PathBuf = out_dir.with_file_name(format!(".{name}.tessera-old"));
    let had_old = out_dir.exists();
    if had_old {
        remove_dir(&old)?;
        std::fs::rename(out_dir, &old)
            .map_err(|e| MediaError::io_at(out_dir, "moving aside", e))?;
    }
    if let Err(e) = std::fs::rename(tmp, out_dir) {
        if had_old {
            // Put the earlier thumbnails back rather than leave none.
            let _ = std::fs::rename(&old, out_dir);
        }
        return Err(MediaError::io_at(out_dir, "renaming into", e));
    }
    if had_old {
        remove_dir(&old)?;
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(MediaError::io_at(dir, "removing", e))
        }
        _ => Ok(()),
    }
}
