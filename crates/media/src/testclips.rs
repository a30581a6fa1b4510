//! Small generated clips for tests (lavfi `testsrc2` + `sine`), shared with
//! other crates' integration tests. Each writes into `dir` and returns the
//! path. They run real ffmpeg and take a second or two each.

use crate::error::{MediaError, Result};
use crate::runner::{self, argv, Tool};
use std::path::{Path, PathBuf};

const SIZE: &str = "320x240";

fn strings(a: Vec<std::ffi::OsString>) -> Vec<String> {
    a.into_iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect()
}

fn lavfi_video(rate: &str) -> Vec<String> {
    strings(runner::lavfi_input(&format!(
        "testsrc2=size={SIZE}:rate={rate}"
    )))
}

fn sine(freq: u32) -> Vec<String> {
    strings(runner::lavfi_input(&format!(
        "sine=frequency={freq}:sample_rate=48000"
    )))
}

fn ffmpeg(dir: &Path, name: &str, args: Vec<String>) -> Result<PathBuf> {
    let out = dir.join(name);
    let mut a = argv(["-nostdin", "-y", "-v", "error"]);
    a.extend(argv(args));
    a.push(out.clone().into());
    runner::run(Tool::Ffmpeg, &a)?;
    Ok(out)
}

fn cat(parts: &[&[&str]]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|p| p.iter().map(|s| s.to_string()))
        .collect()
}

/// 4 s, 25 fps constant rate, H.264 (GOP 25) + AAC in mp4.
pub fn cfr_25(dir: &Path) -> Result<PathBuf> {
    let mut a = lavfi_video("25");
    a.extend(sine(440));
    a.extend(cat(&[&[
        "-t",
        "4",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
        "-c:a",
        "aac",
    ]]));
    ffmpeg(dir, "cfr25.mp4", a)
}

/// 4 s at 30000/1001 fps, H.264 with B-frames + AAC in mp4 (time base 1/30000).
pub fn ntsc(dir: &Path) -> Result<PathBuf> {
    let mut a = lavfi_video("30000/1001");
    a.extend(sine(440));
    a.extend(cat(&[&[
        "-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "30", "-c:a", "aac",
    ]]));
    a.extend(cat(&[&["-video_track_timescale", "30000"]]));
    ffmpeg(dir, "ntsc.mp4", a)
}

/// 6 s at ~25 fps with every timestamp jittered by up to ±12 ms (a
/// millisecond time base), H.264 + AAC in mkv: variable frame rate.
pub fn vfr_jitter(dir: &Path) -> Result<PathBuf> {
    let mut a = lavfi_video("25");
    a.extend(sine(440));
    a.extend(cat(&[&[
        "-t",
        "6",
        "-vf",
        "settb=1/1000,setpts='(N/25+0.012*sin(N*1.7))/TB'",
        "-fps_mode",
        "passthrough",
        "-enc_time_base",
        "1:1000",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "30",
        "-c:a",
        "aac",
    ]]));
    ffmpeg(dir, "vfr.mkv", a)
}

/// 3 s, HEVC 10-bit with open GOPs (CRA keyframes every 24 frames, B-frames), mkv, no audio.
pub fn hevc_10bit_open_gop(dir: &Path) -> Result<PathBuf> {
    let mut a = lavfi_video("24");
    a.extend(cat(&[&[
        "-t", "3", "-pix_fmt", "yuv420p10le", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
        "open-gop=1:keyint=24:min-keyint=24:bframes=3:scenecut=0:pools=1:frame-threads=1:log-level=error",
    ]]));
    ffmpeg(dir, "hevc10.mkv", a)
}

/// 8 s at 25 fps with a keyframe only every 6 s (cuts fall mid-GOP), mp4.
pub fn sparse_keyframes(dir: &Path) -> Result<PathBuf> {
    let mut a = lavfi_video("25");
    a.extend(sine(330));
    a.extend(cat(&[&[
        "-t",
        "8",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "150",
        "-keyint_min",
        "150",
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
    ]]));
    ffmpeg(dir, "sparse.mp4", a)
}

/// 4 s mkv with two audio tracks (eng aac, fre flac), an English srt
/// subtitle track, two chapters and a title.
pub fn multi_track(dir: &Path) -> Result<PathBuf> {
    let srt = dir.join("subs.srt");
    let meta = dir.join("chapters.txt");
    let write =
        |p: &Path, s: &str| std::fs::write(p, s).map_err(|e| MediaError::io_at(p, "writing", e));
    write(
        &srt,
        "1\n00:00:00,500 --> 00:00:01,500\nHello\n\n2\n00:00:02,000 --> 00:00:03,000\nWorld\n",
    )?;
    write(
        &meta,
        ";FFMETADATA1\ntitle=Tessera test\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=2000\ntitle=One\n\
         [CHAPTER]\nTIMEBASE=1/1000\nSTART=2000\nEND=4000\ntitle=Two\n",
    )?;
    let mut a = lavfi_video("25");
    a.extend(sine(440));
    a.extend(sine(880));
    a.extend(strings(runner::input_args(&srt, &["srt"])));
    a.extend(strings(runner::input_args(&meta, &["ffmetadata"])));
    a.extend(cat(&[&[
        "-t",
        "4",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        "-map",
        "3:s",
        "-map_metadata",
        "4",
        "-map_chapters",
        "4",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
        "-c:a:0",
        "aac",
        "-c:a:1",
        "flac",
        "-c:s",
        "srt",
        "-metadata:s:a:0",
        "language=eng",
        "-metadata:s:a:1",
        "language=fre",
        "-metadata:s:s:0",
        "language=eng",
    ]]));
    ffmpeg(dir, "multi.mkv", a)
}

/// 9 s at 25 fps in three scenes of 3 s each (test pattern, fractal, colour
/// bars: cuts at frames 75 and 150), H.264 with one keyframe (so the
/// source's keyframes give no hint) + AAC, mp4.
pub fn scene_cuts(dir: &Path) -> Result<PathBuf> {
    let mut a = Vec::new();
    for source in ["testsrc2", "mandelbrot", "smptebars"] {
        a.extend(cat(&[&["-t", "3"]]));
        a.extend(strings(runner::lavfi_input(&format!(
            "{source}=size={SIZE}:rate=25"
        ))));
    }
    a.extend(sine(440));
    a.extend(cat(&[&[
        "-filter_complex",
        "[0:v][1:v][2:v]concat=n=3:v=1[v]",
        "-map",
        "[v]",
        "-map",
        "3:a",
        "-t",
        "9",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "250",
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
    ]]));
    ffmpeg(dir, "scenes.mp4", a)
}

/// 2 s of audio only (m4a).
pub fn audio_only(dir: &Path) -> Result<PathBuf> {
    let mut a = sine(440);
    a.extend(cat(&[&["-t", "2", "-c:a", "aac"]]));
    ffmpeg(dir, "audio.m4a", a)
}

/// A real mp4 cut in half (its index, at the end, is lost).
pub fn truncated(dir: &Path) -> Result<PathBuf> {
    let full = cfr_25(dir)?;
    let bytes = std::fs::read(&full).map_err(|e| MediaError::io_at(&full, "reading", e))?;
    let out = dir.join("truncated.mp4");
    std::fs::write(&out, &bytes[..bytes.len() / 2])
        .map_err(|e| MediaError::io_at(&out, "writing", e))?;
    Ok(out)
}

/// The README's sample: `seconds` of 1280x720 30 fps H.264 (GOP 60) with a
/// moving test pattern and light noise (so the encoder has real work), plus
/// AAC stereo, in mp4. Written to a temporary name and renamed into place.
pub fn sample_720p(out: &Path, seconds: u32) -> Result<()> {
    let tmp = out.with_extension("tessera-tmp.mp4");
    let t = seconds.max(1).to_string();
    let mut a = argv(["-nostdin", "-y", "-v", "error"]);
    a.extend(runner::lavfi_input(
        "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t",
    ));
    a.extend(runner::lavfi_input("sine=frequency=440:sample_rate=48000"));
    a.extend(argv([
        "-t",
        &t,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "60",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-ac",
        "2",
        "-shortest",
    ]));
    a.push(tmp.clone().into());
    if let Err(e) = runner::run(Tool::Ffmpeg, &a) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(|e| MediaError::Io {
        context: format!("could not move the sample to {}", out.display()),
        source: e,
    })
}
