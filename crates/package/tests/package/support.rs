//! Makes real fragmented MP4 renditions with ffmpeg, as the integrator
//! does, and reads them back with ffprobe.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use tessera_media::runner::{self, argv, Tool};

/// The movflags the integrator uses for video (a fragment per keyframe).
pub const VIDEO_FLAGS: &str = "+frag_keyframe+empty_moov+default_base_moof+cmaf";

pub fn ffmpeg(args: Vec<OsString>) {
    let mut a = argv(["-nostdin", "-y", "-v", "error"]);
    a.extend(args);
    runner::run(Tool::Ffmpeg, &a).expect("ffmpeg");
}

pub fn ffprobe(file: &Path, args: &[&str]) -> String {
    ffprobe_with(file, &["mov"], args)
}

/// ffprobe opening `file` with only the demuxers in `formats`.
pub fn ffprobe_with(file: &Path, formats: &[&str], args: &[&str]) -> String {
    let mut a = argv(["-v", "error"]);
    a.extend(argv(args));
    a.extend(runner::input_args(file, formats));
    runner::run(Tool::Ffprobe, &a).expect("ffprobe").stdout
}

/// A 640x360 30000/1001 clip of `frames` frames encoded by `codec_args`
/// with a keyframe forced wherever `keys` (an ffmpeg expression of `n`) is
/// true, remuxed to fMP4 as the integrator does.
pub fn video_fmp4(dir: &Path, name: &str, frames: u32, keys: &str, codec_args: &[&str]) -> PathBuf {
    video_fmp4_with(
        dir,
        name,
        frames,
        keys,
        codec_args,
        &["-movflags", VIDEO_FLAGS],
    )
}

/// [`video_fmp4`] remuxed with the muxer options `remux` instead of
/// `-movflags` [`VIDEO_FLAGS`].
pub fn video_fmp4_with(
    dir: &Path,
    name: &str,
    frames: u32,
    keys: &str,
    codec_args: &[&str],
    remux: &[&str],
) -> PathBuf {
    let src = dir.join(format!("{name}-src.mp4"));
    let mut a = runner::lavfi_input("testsrc2=size=640x360:rate=30000/1001");
    a.extend(argv([
        "-frames:v",
        &frames.to_string(),
        "-pix_fmt",
        "yuv420p",
    ]));
    a.extend(argv(["-force_key_frames", &format!("expr:{keys}")]));
    a.extend(argv(codec_args));
    a.push(src.clone().into());
    ffmpeg(a);
    let out = dir.join(format!("{name}.mp4"));
    let mut a = runner::input_args(&src, &["mov"]);
    a.extend(argv(["-c", "copy", "-f", "mp4"]));
    a.extend(argv(remux));
    a.push(out.clone().into());
    ffmpeg(a);
    out
}

/// x264 at the veryfast preset (B-frames, so composition offsets), with no
/// keyframes but the forced ones.
pub const X264: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-x264-params",
    "scenecut=0:keyint=1000",
];

/// `seconds` of 48 kHz stereo AAC in fragments of `frag_us` microseconds.
pub fn audio_fmp4(dir: &Path, seconds: u32, frag_us: u32) -> PathBuf {
    let out = dir.join("audio.mp4");
    let mut a = runner::lavfi_input("sine=frequency=440:sample_rate=48000");
    a.extend(argv([
        "-t",
        &seconds.to_string(),
        "-ac",
        "2",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
    ]));
    a.extend(argv([
        "-movflags",
        "+empty_moov+default_base_moof+cmaf",
        "-frag_duration",
        &frag_us.to_string(),
        "-f",
        "mp4",
    ]));
    a.push(out.clone().into());
    ffmpeg(a);
    out
}

/// `init.mp4` followed by every segment, as a player would append them.
pub fn concat(dir: &Path, track: &tessera_package::Track, out: &Path) {
    let mut bytes = std::fs::read(dir.join(&track.init)).unwrap();
    for s in &track.segments {
        bytes.extend(std::fs::read(dir.join(&s.file)).unwrap());
    }
    std::fs::write(out, bytes).unwrap();
}

/// (pts, is keyframe) of every packet of the first stream, in file order.
pub fn packets(file: &Path) -> Vec<(i64, bool)> {
    ffprobe(
        file,
        &[
            "-select_streams",
            "0",
            "-show_entries",
            "packet=pts,flags",
            "-of",
            "csv=p=0",
        ],
    )
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(|l| {
        let (pts, flags) = l.split_once(',').expect("pts,flags");
        (pts.parse().expect("pts"), flags.starts_with('K'))
    })
    .collect()
}
