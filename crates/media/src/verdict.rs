//! What an ffprobe failure on a user's file means, said to the user: a
//! format Tessera does not open (a playlist, a list, a still image), a
//! truncated file, or not media at all.

use crate::error::MediaError;
use std::path::Path;

/// Maps an ffprobe failure on a user's file to the user error it means.
pub(crate) fn input_error(path: &Path, err: MediaError) -> MediaError {
    match err {
        MediaError::ToolFailed { stderr_tail, .. } => {
            let lower = stderr_tail.to_lowercase();
            if let Some(format) = refused_format(&stderr_tail) {
                refused(path, format)
            } else if looks_truncated(&lower) {
                MediaError::Truncated {
                    path: path.into(),
                    detail: short(&stderr_tail),
                }
            } else {
                MediaError::NotMedia {
                    path: path.into(),
                    detail: short(&stderr_tail),
                }
            }
        }
        other => other,
    }
}

/// The demuxer ffmpeg recognised but refused because it is not on the
/// format whitelist: `[hls @ 0x55d7...] Format not on whitelist 'mov,...'`.
fn refused_format(stderr: &str) -> Option<&str> {
    let at = stderr.find("] Format not on whitelist")?;
    let open = stderr[..at].rfind('[')?;
    let name = stderr[open + 1..at].split(" @ ").next()?.trim();
    (!name.is_empty()).then_some(name)
}

/// The user error for a file whose format is refused, saying what the
/// file is and why Tessera does not read it.
fn refused(path: &Path, format: &str) -> MediaError {
    let lists = "a list can name any file on the server or any URL, so Tessera opens \
                 only the one media file it was given; send the video itself";
    let (what, why) = match format {
        "hls" => ("an HLS playlist", lists),
        "dash" => ("a DASH manifest", lists),
        "concat" => ("an ffmpeg concat list", lists),
        "image2" => (
            "an image or image sequence",
            "send a video, not still images",
        ),
        f if f.ends_with("_pipe") => ("a still image", "send a video, not a still image"),
        _ => (
            "not a video container Tessera reads",
            "send mp4/mov, mkv/webm, avi, flv, MPEG-TS/PS, nut, ogg, asf/wmv, mxf, ivf, y4m or dv",
        ),
    };
    MediaError::Refused {
        path: path.into(),
        format: format.to_string(),
        what: what.to_string(),
        why: why.to_string(),
    }
}

/// ffmpeg's ways of saying a file stops before its end ("truncating packet"
/// is not one: ffprobe prints it for any tiny file).
pub(crate) fn looks_truncated(lower_stderr: &str) -> bool {
    [
        "moov atom not found",
        "ended prematurely",
        "partial file",
        "stream ends prematurely",
    ]
    .iter()
    .any(|m| lower_stderr.contains(m))
}

pub(crate) fn short(s: &str) -> String {
    let s = s.rsplit(" | ").next().unwrap_or(s);
    let s = s.split_once("]: ").map_or(s, |(_, rest)| rest).trim();
    let s = match s.split_once(": ") {
        Some((a, rest)) if a.contains('/') => rest,
        _ => s,
    };
    s.chars().take(160).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_formats_are_named_from_ffmpegs_stderr() {
        let tail = "[hls @ 0x55d794325280] Format not on whitelist 'mov,matroska' | file:/u/x: Invalid argument";
        assert_eq!(refused_format(tail), Some("hls"));
        assert_eq!(
            refused_format("[png_pipe @ 0x1] Format not on whitelist 'mov'"),
            Some("png_pipe")
        );
        assert_eq!(refused_format("moov atom not found"), None);
        let err = input_error(
            Path::new("/u/x"),
            MediaError::ToolFailed {
                program: "ffprobe".into(),
                status: "exit status: 1".into(),
                stderr_tail: tail.into(),
            },
        );
        assert!(err.is_user_error());
        assert!(
            err.to_string().starts_with(
                "/u/x: Tessera does not open this file: it is an HLS playlist (ffmpeg format hls)"
            ),
            "{err}"
        );
    }
}
