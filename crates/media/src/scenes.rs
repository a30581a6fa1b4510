//! Scene changes: the frames where the picture changes so much that a chunk
//! or a segment should start there (an encoder restarting at a cut spends
//! no bits on a keyframe of a scene about to end, and rate control starts
//! on the new scene).
//!
//! Found with ffmpeg's `select` filter's scene score on a small copy of the
//! picture (one decode of the source, no encode), kept in the workdir
//! (`scenes.json`), mapped back to frame indices by exact pts.

use crate::error::Result;
use crate::probe::FrameIndex;
use crate::runner::{self, argv, media_input, Tool};
use crate::workdir::{read_json, write_json};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::Path;

pub const SCENES_FILE: &str = "scenes.json";
/// The scene score (0..1, ffmpeg's) above which a frame starts a scene.
pub const SCENE_THRESHOLD: f64 = 0.3;
/// The most scene changes kept: a flashing video is not cut at every flash.
pub const MAX_SCENES: usize = 100_000;
/// Below this many seconds a single-file encode does not look for scenes:
/// a short clip's few chunks gain less than the extra decode costs.
pub const MIN_SCENE_SECONDS: f64 = 30.0;

/// `scenes.json`: presentation indices of the frames that start a scene.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenes {
    pub frames: Vec<u32>,
}

/// ffmpeg argv writing the pts of each frame whose scene score exceeds
/// `threshold` to `out` (the `metadata` filter's print format), on the
/// stream's own timestamps (`-copyts`), from a 160-pixel-wide copy.
pub fn scene_args(input: &Path, video_stream: u32, threshold: f64, out: &Path) -> Vec<OsString> {
    let mut a = argv(["-nostdin", "-v", "error", "-copyts", "-noautorotate"]);
    a.extend(media_input(input));
    // The metadata filter's file name is filter syntax: it is escaped as such.
    let file = out
        .to_string_lossy()
        .replace('\\', "\\\\")
        .replace('\'', "\\'")
        .replace(':', "\\:");
    a.extend(argv([
        "-map".to_string(),
        format!("0:{video_stream}"),
        "-an".into(),
        "-sn".into(),
        "-dn".into(),
        "-vf".into(),
        format!("scale=160:-2,select='gt(scene,{threshold})',metadata=mode=print:file='{file}'"),
        "-fps_mode".into(),
        "passthrough".into(),
        "-f".into(),
        "null".into(),
        "-".into(),
    ]));
    a
}

/// The frames of `index` named by the `metadata` filter's output `text`
/// (`frame:N pts:P pts_time:T` lines), by exact pts; frame 0 is never a
/// scene start (it starts everything anyway). Bounded by [`MAX_SCENES`].
pub fn parse_scene_file(text: &str, index: &FrameIndex) -> Vec<u32> {
    let mut frames: Vec<u32> = text
        .lines()
        .filter(|l| l.starts_with("frame:"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("pts:"))
                .and_then(|p| p.parse::<i64>().ok())
        })
        .filter_map(|pts| index.pts.binary_search(&pts).ok())
        .filter(|&i| i > 0)
        .map(|i| i as u32)
        .take(MAX_SCENES)
        .collect();
    frames.sort_unstable();
    frames.dedup();
    frames
}

/// Detects the scene changes of `input`'s video into `workdir/scenes.json`,
/// or reads them from there when an earlier attempt did.
pub fn detect_scenes(
    input: &Path,
    video_stream: u32,
    index: &FrameIndex,
    workdir: &Path,
) -> Result<Vec<u32>> {
    let file = workdir.join(SCENES_FILE);
    if let Ok(s) = read_json::<Scenes>(&file) {
        return Ok(s.frames);
    }
    let raw = workdir.join("scenes.txt");
    runner::run(
        Tool::Ffmpeg,
        &scene_args(input, video_stream, SCENE_THRESHOLD, &raw),
    )?;
    let text = std::fs::read_to_string(&raw).unwrap_or_default();
    let _ = std::fs::remove_file(&raw);
    let frames = parse_scene_file(&text, index);
    write_json(
        &file,
        &Scenes {
            frames: frames.clone(),
        },
    )?;
    Ok(frames)
}

/// Segment starts that follow the scenes: a segment starts at a scene
/// change once it is at least half of `seconds` long, and otherwise at
/// `seconds`, moved forward to a scene change that comes before 1.5 x
/// `seconds` when there is one. Every frame is covered once; the first
/// segment starts at frame 0. A last segment shorter than a quarter of
/// `seconds` joins the one before it.
pub fn segments_with_scenes(index: &FrameIndex, seconds: f64, scenes: &[u32]) -> Vec<u32> {
    let n = index.pts.len();
    if n == 0 {
        return Vec::new();
    }
    let at = |i: usize| index.seconds(index.pts[i] - index.pts[0]);
    let is_scene = |i: usize| scenes.binary_search(&(i as u32)).is_ok();
    let mut starts = vec![0u32];
    let mut last = 0usize;
    let mut i = 1usize;
    while i < n {
        let t = at(i) - at(last);
        let cut = if is_scene(i) && t + 5e-7 >= seconds / 2.0 {
            Some(i)
        } else if t + 5e-7 >= seconds {
            let next = scenes.partition_point(|&s| s as usize <= i);
            let ahead = scenes
                .get(next)
                .map(|&s| s as usize)
                .filter(|&s| s < n && at(s) - at(last) < seconds * 1.5);
            Some(ahead.unwrap_or(i))
        } else {
            None
        };
        match cut {
            Some(c) => {
                starts.push(c as u32);
                last = c;
                i = c + 1;
            }
            None => i += 1,
        }
    }
    if starts.len() > 1 {
        let tail = index.end_pts() - index.pts[last];
        if index.seconds(tail) < seconds / 4.0 {
            starts.pop();
        }
    }
    starts
}

/// Whether a scene search pays for itself: a single-file encode of at
/// least [`MIN_SCENE_SECONDS`]; a ladder always (its work is many encodes
/// of each chunk, and its segments gain an IDR at each cut).
pub fn worth_detecting(index: &FrameIndex, ladder: bool) -> bool {
    let span = index.seconds(index.end_pts() - index.pts.first().copied().unwrap_or(0));
    ladder || span >= MIN_SCENE_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfr(n: usize) -> FrameIndex {
        FrameIndex {
            time_base: (1, 25),
            pts: (0..n as i64).collect(),
            keyframes: vec![0],
            last_duration: 1,
            timestamp_faults: 0,
        }
    }

    #[test]
    fn scene_lines_map_to_frames_by_exact_pts() {
        let idx = cfr(100);
        let text = "frame:0    pts:30   pts_time:1.2\nlavfi.scene_score=0.5\nframe:1 pts:0\nframe:2 pts:55\nframe:3 pts:9999\ngarbage\nframe:4 pts:30\n";
        assert_eq!(parse_scene_file(text, &idx), [30, 55]);
    }

    #[test]
    fn segments_move_to_scene_changes_within_bounds() {
        let idx = cfr(250);
        // No scenes: every 4 s (100 frames).
        assert_eq!(segments_with_scenes(&idx, 4.0, &[]), [0, 100, 200]);
        // A cut at 2.8 s (frame 70) starts a segment (over half a segment in);
        // one at 1 s (frame 25) is too soon and is ignored.
        assert_eq!(segments_with_scenes(&idx, 4.0, &[25, 70]), [0, 70, 170]);
        // A cut at 5.2 s (frame 130): the segment from 0 runs on to it (< 1.5 x).
        // (the 0.8 s tail after 230 joins the last segment.)
        assert_eq!(segments_with_scenes(&idx, 4.0, &[130]), [0, 130]);
        // Too far (7 s = frame 175 > 1.5 x 4 s): cut at 4 s, then at the scene.
        assert_eq!(segments_with_scenes(&idx, 4.0, &[175]), [0, 100, 175]);
    }

    #[test]
    fn single_file_cuts_prefer_a_scene_change_to_a_keyframe() {
        let mut idx = cfr(300);
        idx.keyframes = vec![0, 100, 200];
        let plan = crate::plan::plan_chunks_for_slots_with_scenes(&idx, 100, 1, &[90, 215]);
        let firsts: Vec<u32> = plan.iter().map(|c| c.first).collect();
        assert_eq!(firsts, [0, 90, 215]);
        assert!(worth_detecting(&cfr(750), false) && !worth_detecting(&cfr(749), false));
        assert!(worth_detecting(&cfr(10), true));
    }
}
