//! Clips for the quality tests: a lossless reference and encodes of it.

use std::path::{Path, PathBuf};
use tessera_media::runner::{self, argv, Tool};

/// A `size` testsrc2 clip of `frames` frames at 25 fps, lossless H.264
/// (qp 0) in mkv: a reference with no loss of its own.
pub fn reference(dir: &Path, name: &str, size: &str, frames: u32) -> PathBuf {
    let out = dir.join(name);
    let mut a = argv(["-nostdin", "-y", "-v", "error"]);
    a.extend(runner::lavfi_input(&format!(
        "testsrc2=size={size}:rate=25"
    )));
    a.extend(argv([
        "-frames:v",
        &frames.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-qp",
        "0",
        "-pix_fmt",
        "yuv420p",
    ]));
    a.push(out.clone().into());
    runner::run(Tool::Ffmpeg, &a).unwrap();
    out
}

/// Encodes `input` with libx264 at `crf`, `extra` output options before
/// the codec's (a filter, a frame limit), every frame kept.
pub fn encode(input: &Path, out: &Path, crf: u32, extra: &[&str]) -> PathBuf {
    let mut a = argv(["-nostdin", "-y", "-v", "error"]);
    a.extend(runner::media_input(input));
    a.extend(argv(["-fps_mode", "passthrough"]));
    a.extend(argv(extra));
    a.extend(argv([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        &crf.to_string(),
    ]));
    a.push(out.into());
    runner::run(Tool::Ffmpeg, &a).unwrap();
    out.to_path_buf()
}
