//! Pure ffmpeg argv builders. Each returns a `Vec<OsString>` and runs nothing.

use crate::plan::ChunkPlan;
use crate::probe::StreamInfo;
use crate::request::{Codec, Container, EncodeSettings};
use crate::runner::{argv, input_args, media_input};
use std::ffi::OsString;
use std::path::Path;

/// Pixel formats each encoder keeps as is (so 10-bit stays 10-bit).
fn keeps_pix_fmt(codec: Codec, pix_fmt: &str) -> bool {
    let ok: &[&str] = match codec {
        Codec::X264 => &[
            "yuv420p",
            "yuvj420p",
            "yuv422p",
            "yuv444p",
            "yuv420p10le",
            "yuv422p10le",
            "yuv444p10le",
        ],
        Codec::X265 => &[
            "yuv420p",
            "yuv422p",
            "yuv444p",
            "yuv420p10le",
            "yuv422p10le",
            "yuv444p10le",
            "yuv420p12le",
            "gray",
        ],
        Codec::SvtAv1 => &["yuv420p", "yuv420p10le"],
        Codec::Vp9 => &[
            "yuv420p",
            "yuv422p",
            "yuv440p",
            "yuv444p",
            "yuv420p10le",
            "yuv422p10le",
            "yuv444p10le",
        ],
        // ffv1 takes nearly everything; ffmpeg's own negotiation keeps the source format.
        Codec::Ffv1 => &[],
    };
    ok.contains(&pix_fmt)
}

/// Encoder options for `settings`, keeping `pix_fmt` where the encoder can.
pub fn codec_args(settings: &EncodeSettings, pix_fmt: Option<&str>) -> Vec<OsString> {
    let t = settings.threads_per_chunk.max(1);
    let preset = settings.preset.as_deref();
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    match settings.codec {
        Codec::X264 => {
            let crf = settings.crf.unwrap_or(23).to_string();
            push(&[
                "-c:v",
                "libx264",
                "-crf",
                &crf,
                "-preset",
                preset.unwrap_or("medium"),
            ]);
            push(&["-threads", &t.to_string()]);
        }
        Codec::X265 => {
            let crf = settings.crf.unwrap_or(28).to_string();
            push(&[
                "-c:v",
                "libx265",
                "-crf",
                &crf,
                "-preset",
                preset.unwrap_or("medium"),
            ]);
            let params = format!("pools={t}:frame-threads={}:log-level=error", t.min(4));
            push(&["-x265-params", &params]);
        }
        Codec::SvtAv1 => {
            let crf = settings.crf.unwrap_or(35).to_string();
            push(&[
                "-c:v",
                "libsvtav1",
                "-crf",
                &crf,
                "-preset",
                preset.unwrap_or("8"),
            ]);
            push(&["-svtav1-params", &format!("lp={t}")]);
        }
        Codec::Vp9 => {
            let crf = settings.crf.unwrap_or(32).to_string();
            push(&[
                "-c:v",
                "libvpx-vp9",
                "-b:v",
                "0",
                "-crf",
                &crf,
                "-row-mt",
                "1",
            ]);
            push(&[
                "-threads",
                &t.to_string(),
                "-deadline",
                "good",
                "-cpu-used",
                preset.unwrap_or("4"),
            ]);
        }
        Codec::Ffv1 => {
            push(&[
                "-c:v",
                "ffv1",
                "-level",
                "3",
                "-slicecrc",
                "1",
                "-g",
                "1",
                "-threads",
                &t.to_string(),
            ]);
        }
    }
    if let Some(p) = pix_fmt.filter(|p| keeps_pix_fmt(settings.codec, p)) {
        push(&["-pix_fmt", p]);
    }
    argv(a)
}

/// Seconds as ffmpeg reads them, with microsecond precision.
fn secs(s: f64) -> String {
    format!("{s:.6}")
}

/// Where decoding of a chunk starts: its seek keyframe, relative to the
/// container start (ffmpeg adds the start back), plus half a millisecond so
/// the demuxer lands on that keyframe and not the one before.
pub fn seek_seconds(seek_pts: i64, time_base: (i64, i64), format_start: f64) -> f64 {
    seek_pts as f64 * time_base.0 as f64 / time_base.1 as f64 - format_start + 0.0005
}

/// Everything a chunk encode needs to know about its source.
#[derive(Clone, Debug)]
pub struct ChunkSource<'a> {
    pub input: &'a Path,
    pub video_stream: u32,
    pub time_base: (i64, i64),
    pub format_start: f64,
    pub first_pts: i64,
    pub pix_fmt: Option<&'a str>,
}

/// Frame-exact encode of `chunk`: seek to its keyframe, keep only frames with
/// `start_pts <= pts < end_pts` (source time base), stop after `count` frames,
/// keep timestamps as they are, write matroska to `out`.
pub fn chunk_encode_args(
    src: &ChunkSource,
    chunk: &ChunkPlan,
    settings: &EncodeSettings,
    out: &Path,
) -> Vec<OsString> {
    chunk_encode_args_with(src, chunk, settings, &ChunkExtras::default(), out)
}

/// What a chunk encode adds for a ladder rendition (see
/// [`crate::ladder::args`]): filters after the frame selection, encoder
/// options after the codec's, a pixel format, and rotation applied to the
/// pixels (a rendition is shown as the source is displayed).
#[derive(Clone, Debug, Default)]
pub struct ChunkExtras {
    pub filters: Option<String>,
    pub codec: Vec<OsString>,
    pub pix_fmt: Option<&'static str>,
    pub autorotate: bool,
}

/// [`chunk_encode_args`] with [`ChunkExtras`].
pub fn chunk_encode_args_with(
    src: &ChunkSource,
    chunk: &ChunkPlan,
    settings: &EncodeSettings,
    extras: &ChunkExtras,
    out: &Path,
) -> Vec<OsString> {
    let mut a = argv([
        "-nostdin",
        "-y",
        "-v",
        "error",
        "-noaccurate_seek",
        "-copyts",
    ]);
    if chunk.seek_pts > src.first_pts {
        a.extend(argv([
            "-ss",
            &secs(seek_seconds(
                chunk.seek_pts,
                src.time_base,
                src.format_start,
            )),
        ]));
    }
    if !extras.autorotate {
        a.push("-noautorotate".into());
    }
    a.extend(media_input(src.input));
    let mut select = format!(
        "select='gte(pts,{})*lt(pts,{})'",
        chunk.start_pts, chunk.end_pts
    );
    if let Some(f) = &extras.filters {
        select.push(',');
        select.push_str(f);
    }
    a.extend(argv([
        "-map",
        &format!("0:{}", src.video_stream),
        "-vf",
        &select,
    ]));
    a.extend(argv([
        "-fps_mode",
        "passthrough",
        "-enc_time_base",
        "-1",
        "-frames:v",
        &chunk.count.to_string(),
    ]));
    a.extend(codec_args(settings, extras.pix_fmt.or(src.pix_fmt)));
    let mut more = extras.codec.iter();
    while let Some(opt) = more.next() {
        let value = more.next();
        // One -x265-params: ffmpeg keeps only the last, so join them.
        let existing = a.iter().position(|x| x == "-x265-params");
        match (opt.to_str(), existing, value) {
            (Some("-x265-params"), Some(i), Some(v)) if i + 1 < a.len() => {
                let mut joined = a[i + 1].clone();
                joined.push(":");
                joined.push(v);
                a[i + 1] = joined;
            }
            _ => {
                a.push(opt.clone());
                a.extend(value.cloned());
            }
        }
    }
    a.extend(argv([
        "-an",
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
        // NUT keeps the encoder's exact time base (Matroska would round to 1 ms).
        "-f",
        "nut",
    ]));
    a.push(out.into());
    a
}

/// Whether `stream` can be copied into `container` as is.
pub fn audio_copyable(container: Container, stream: &StreamInfo) -> bool {
    stream
        .codec_name
        .as_deref()
        .is_some_and(|c| container.accepts_audio(c))
}

/// The source's audio streams that the output container cannot take, once,
/// whole, encoded into `out` (streams the container takes are copied from the
/// source at the final mux instead). `copy` says, per source audio stream,
/// which is which. Stream metadata and dispositions follow by default.
pub fn audio_args(input: &Path, copy: &[bool], container: Container, out: &Path) -> Vec<OsString> {
    let mut a = argv(["-nostdin", "-y", "-v", "error"]);
    a.extend(media_input(input));
    for (i, _) in copy.iter().enumerate().filter(|(_, c)| !**c) {
        a.extend(argv(["-map".to_string(), format!("0:a:{i}")]));
    }
    a.extend(argv([
        "-vn",
        "-sn",
        "-dn",
        "-map_chapters",
        "-1",
        "-c:a",
        container.audio_encoder(),
    ]));
    let format = if container == Container::Mkv {
        "matroska"
    } else {
        "nut"
    };
    a.extend(argv(["-f", format]));
    a.push(out.into());
    a
}

/// Subtitle codecs that are text (convertible between containers).
pub fn is_text_subtitle(codec: &str) -> bool {
    matches!(
        codec,
        "subrip" | "srt" | "ass" | "ssa" | "mov_text" | "webvtt" | "text"
    )
}

/// The codec a subtitle stream gets in `container`; `None` if it cannot go there.
pub fn subtitle_codec(container: Container, codec: &str) -> Option<&'static str> {
    match container {
        Container::Mkv if codec == "mov_text" => Some("srt"),
        Container::Mkv => Some("copy"),
        Container::Mp4 | Container::Mov if codec == "mov_text" => Some("copy"),
        Container::Mp4 | Container::Mov if is_text_subtitle(codec) => Some("mov_text"),
        Container::Webm if codec == "webvtt" => Some("copy"),
        Container::Webm if is_text_subtitle(codec) => Some("webvtt"),
        _ => None,
    }
}

/// One entry of the concat list.
#[derive(Clone, Debug)]
pub struct ConcatEntry<'a> {
    pub path: &'a Path,
    pub seconds: f64,
}

/// The `ffconcat` list: every chunk with its exact duration.
pub fn concat_list(entries: &[ConcatEntry]) -> String {
    let mut s = String::from("ffconcat version 1.0\n");
    for e in entries {
        let p = e.path.to_string_lossy().replace('\'', "'\\''");
        s.push_str(&format!("file '{p}'\nduration {:.9}\n", e.seconds));
    }
    s
}

/// Inputs of the final mux.
#[derive(Clone, Debug)]
pub struct MuxPlan<'a> {
    pub concat_list: &'a Path,
    /// Seconds from the container start to the first video frame.
    pub video_offset: f64,
    /// The encoded audio streams, if any stream needed encoding.
    pub audio: Option<&'a Path>,
    /// Per source audio stream: copied from the source (true) or taken from
    /// `audio` (false), in source order.
    pub audio_copy: Vec<bool>,
    pub source: &'a Path,
    pub format_start: f64,
    /// Subtitle codec per source subtitle stream, in order (see [`subtitle_codec`]).
    pub subtitles: Vec<&'a str>,
    pub video_stream: u32,
    pub rotation: Option<i64>,
    pub container: Container,
    pub out: &'a Path,
}

/// Joins the chunks and muxes audio, subtitles, chapters and metadata, all
/// stream-copied, on the source's timeline (`-copyts` with explicit offsets).
pub fn mux_args(m: &MuxPlan) -> Vec<OsString> {
    let mut a = argv(["-nostdin", "-y", "-v", "error", "-copyts"]);
    a.extend(argv([
        "-f",
        "concat",
        "-safe",
        "0",
        "-itsoffset",
        &secs(m.video_offset),
    ]));
    // The list is ours; the files it names are chunks (NUT), nothing else.
    a.extend(input_args(m.concat_list, &["concat", "nut"]));
    let source_input = if let Some(audio) = m.audio {
        // The encoded audio intermediate (see `audio_args`).
        a.extend(input_args(audio, &["nut", "matroska"]));
        2
    } else {
        1
    };
    a.extend(argv(["-itsoffset", &secs(-m.format_start)]));
    a.extend(media_input(m.source));
    a.extend(argv(["-map", "0:v:0"]));
    let mut encoded = 0;
    for (i, copy) in m.audio_copy.iter().enumerate() {
        let from = if *copy {
            format!("{source_input}:a:{i}")
        } else {
            encoded += 1;
            format!("1:a:{}", encoded - 1)
        };
        a.extend(argv(["-map".to_string(), from]));
    }
    for i in 0..m.subtitles.len() {
        a.extend(argv(["-map".to_string(), format!("{source_input}:s:{i}")]));
    }
    a.extend(argv(["-c", "copy"]));
    for (i, codec) in m.subtitles.iter().enumerate() {
        a.extend(argv([format!("-c:s:{i}"), codec.to_string()]));
    }
    // Naming any stream metadata turns off the default copy for all streams:
    // name them all.
    a.extend(argv([
        "-map_metadata".to_string(),
        source_input.to_string(),
        "-map_metadata:s:v:0".to_string(),
        format!("{source_input}:s:{}", m.video_stream),
    ]));
    for i in 0..m.audio_copy.len() {
        a.extend(argv([
            format!("-map_metadata:s:a:{i}"),
            format!("{source_input}:s:a:{i}"),
        ]));
    }
    for i in 0..m.subtitles.len() {
        a.extend(argv([
            format!("-map_metadata:s:s:{i}"),
            format!("{source_input}:s:s:{i}"),
        ]));
    }
    a.extend(argv([
        "-map_chapters".to_string(),
        source_input.to_string(),
    ]));
    if let Some(r) = m.rotation.filter(|r| *r != 0) {
        // ffmpeg 5.1 turns a `rotate` tag on a stream copy into a display
        // matrix whose rotation ffprobe reports as the same number (measured:
        // rotate=90 -> 90, rotate=270 -> -90), so the source's value goes back as is.
        a.extend(argv([
            "-metadata:s:v:0".to_string(),
            format!("rotate={}", r.rem_euclid(360)),
        ]));
    }
    if matches!(m.container, Container::Mp4 | Container::Mov) {
        a.extend(argv(["-movflags", "+faststart"]));
    }
    a.extend(argv(["-f", m.container.muxer()]));
    a.push(m.out.into());
    a
}

#[cfg(test)]
mod tests;
