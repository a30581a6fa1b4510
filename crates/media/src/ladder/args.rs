//! Pure ffmpeg argv builders for the ladder's ops; each runs nothing.

use super::plan::Rendition;
use crate::args::ChunkExtras;
use crate::request::Codec;
use crate::runner::{argv, input_args, media_input};
use std::ffi::OsString;
use std::path::Path;

/// What a rendition adds to a chunk encode: scaling to its size with square
/// pixels, 8-bit 4:2:0 (what every player decodes), an IDR frame at each of
/// `keyframes` (frame numbers counted from the chunk's first frame: the
/// segment starts inside the chunk, 0 included), closed GOPs, and its rate cap.
pub fn rendition_extras(r: &Rendition, keyframes: &[u32]) -> ChunkExtras {
    let expr: Vec<String> = keyframes.iter().map(|k| format!("eq(n,{k})")).collect();
    let mut codec = argv([
        "-force_key_frames".to_string(),
        format!("expr:{}", expr.join("+")),
    ]);
    match r.settings.codec {
        // Forced keyframes become IDR frames; x264's GOPs are closed by default.
        Codec::X264 => codec.extend(argv(["-forced-idr", "1"])),
        // x265 opens its GOPs by default: a segment must decode on its own.
        Codec::X265 => codec.extend(argv(["-forced-idr", "1"])),
        _ => {}
    }
    if r.settings.codec == Codec::X265 {
        // Joined with the params codec_args sets (see chunk_encode_args_with).
        codec.extend(argv(["-x265-params", "open-gop=0"]));
    }
    if let Some(m) = r.maxrate_kbps {
        codec.extend(argv(["-maxrate".to_string(), format!("{m}k")]));
        let b = r.bufsize_kbps.unwrap_or(m.saturating_mul(2));
        codec.extend(argv(["-bufsize".to_string(), format!("{b}k")]));
    }
    ChunkExtras {
        filters: Some(format!(
            "scale={}:{}:flags=bicubic,setsar=1",
            r.width, r.height
        )),
        codec,
        pix_fmt: Some("yuv420p"),
        autorotate: true,
    }
}

/// The fMP4 muxer's flags for CMAF: a moov written once the first packets
/// are seen (so it carries an edit list: the B-frame delay of video and the
/// encoder priming of AAC, both shown from time 0), then one moof+mdat per
/// fragment with decode times in tfdt. ffmpeg 5.1's `negative_cts_offsets`
/// was measured to leave the first frame 1-2 frames late; the edit list
/// puts it at 0 (checked by `package`).
const CMAF_FLAGS: &str = "+delay_moov+default_base_moof+cmaf";

/// Joins a rendition's chunks (an ffconcat list of NUT files with exact
/// durations) into one fragmented MP4, a fragment at each keyframe, the
/// first frame at time 0.
pub fn rendition_fmp4_args(concat_list: &Path, codec: Codec, out: &Path) -> Vec<OsString> {
    let mut a = argv([
        "-nostdin", "-y", "-v", "error", "-f", "concat", "-safe", "0",
    ]);
    a.extend(input_args(concat_list, &["concat", "nut"]));
    a.extend(argv([
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-map_metadata",
        "-1",
        "-use_editlist",
        "1",
        "-movflags",
        &format!("+frag_keyframe{CMAF_FLAGS}"),
    ]));
    if codec == Codec::X265 {
        // hvc1: parameter sets in the sample entry only, as Apple's players want.
        a.extend(argv(["-tag:v", "hvc1"]));
    }
    a.extend(argv(["-f", "mp4"]));
    a.push(out.into());
    a
}

/// One audio track of a ladder, as [`audio_fmp4_args`] encodes it.
#[derive(Clone, Debug)]
pub struct AudioTrackArgs<'a> {
    pub input: &'a Path,
    /// Among the source's audio streams (`0:a:N`).
    pub stream: u32,
    /// Seconds from the container start to the first video frame.
    pub origin: f64,
    /// Per stereo pair.
    pub kbps: u32,
    pub channels: u32,
    pub segment_seconds: f64,
    /// The video's length: shorter audio is padded to it.
    pub video_seconds: f64,
}

/// One source audio stream encoded once to AAC (at least as long as the
/// video) in a fragmented MP4, fragments of a quarter segment, on the
/// video's clock.
pub fn audio_fmp4_args(t: &AudioTrackArgs, out: &Path) -> Vec<OsString> {
    let AudioTrackArgs {
        input,
        stream,
        origin,
        kbps,
        channels,
        segment_seconds,
        video_seconds,
    } = *t;
    let mut a = argv(["-nostdin", "-y", "-v", "error"]);
    a.extend(argv(["-itsoffset".to_string(), format!("{:.6}", -origin)]));
    a.extend(media_input(input));
    a.extend(argv([
        "-map".to_string(),
        format!("0:a:{stream}"),
        "-vn".into(),
        "-sn".into(),
        "-dn".into(),
        "-map_metadata".into(),
        "-1".into(),
        // The MP4 muxer would add chapters as a text track of their own.
        "-map_chapters".into(),
        "-1".into(),
        // Sample 0 at the first video frame: silence before late audio, early
        // audio trimmed (an MP4 track cannot start before zero); audio that
        // ends before the video is padded with silence to its end, so a
        // player's buffers run to the last frame.
        "-af".into(),
        format!("aresample=async=1:first_pts=0,apad=whole_dur={video_seconds:.6}"),
        "-c:a".into(),
        "aac".into(),
        "-b:a".into(),
        format!("{}k", kbps.saturating_mul(channels.clamp(1, 8)).div_ceil(2)),
        "-use_editlist".into(),
        "1".into(),
        "-movflags".into(),
        CMAF_FLAGS.into(),
        // Fragments of a quarter segment: the packager starts each audio
        // segment with the fragment nearest the video segment's start (VFR
        // segments vary in length; fixed-length fragments would miss some).
        "-frag_duration".into(),
        format!("{}", (segment_seconds * 1e6 / 4.0).round() as u64),
        "-f".into(),
        "mp4".into(),
    ]));
    a.push(out.into());
    a
}

/// One text subtitle stream (`0:s:N`) as WebVTT on the video's clock.
pub fn webvtt_args(input: &Path, stream: u32, origin: f64, out: &Path) -> Vec<OsString> {
    let mut a = argv(["-nostdin", "-y", "-v", "error"]);
    a.extend(argv(["-itsoffset".to_string(), format!("{:.6}", -origin)]));
    a.extend(media_input(input));
    a.extend(argv([
        "-map".to_string(),
        format!("0:s:{stream}"),
        "-vn".into(),
        "-an".into(),
        "-c:s".into(),
        "webvtt".into(),
        "-f".into(),
        "webvtt".into(),
    ]));
    a.push(out.into());
    a
}
