//! `QualityError`: why a measurement could not be made, in words a user can act on.

use std::path::PathBuf;
use tessera_media::MediaError;

/// The error of [`measure`](crate::measure). Messages are one line.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// Probing or decoding one of the two files failed (missing, not media,
    /// damaged, ffmpeg not installed).
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(
        "{}: {width}x{height} is larger than 8K ({max} pixels); Tessera does not score videos this large",
        .path.display()
    )]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        max: u64,
    },
    #[error("{}: the video stream has no size (ffprobe reported none); remux or re-encode it", .path.display())]
    NoSize { path: PathBuf },
    /// The two files do not hold the same number of frames (after the
    /// reference's range), so frames cannot be paired one to one.
    #[error(
        "frame counts differ: the reference has {reference} frames{range} and the distorted file has {distorted}; \
         score an encode against its own source, or set the range to the chunk it encodes"
    )]
    FrameCountMismatch {
        reference: u64,
        distorted: u64,
        range: String,
    },
    #[error(
        "the reference has only {got} frames from frame {first}, fewer than the {asked} asked for; \
         check the range against the source's frame count"
    )]
    ShortReference { got: u64, first: u32, asked: u32 },
    #[error("bad quality options: {0}")]
    BadOptions(String),
    #[error("{}: decoding stopped in the middle of frame {frame} ({detail})", .path.display())]
    PartialFrame {
        path: PathBuf,
        frame: u64,
        detail: String,
    },
    /// libvmaf refused a call; `code` is its negative errno.
    #[error("libvmaf: {call} failed (code {code}){hint}")]
    Vmaf {
        call: &'static str,
        code: i32,
        hint: &'static str,
    },
}

impl QualityError {
    /// True when the user can fix the problem (their files, their options);
    /// false for failures of ours or of the machine.
    pub fn is_user_error(&self) -> bool {
        match self {
            QualityError::Media(e) => e.is_user_error(),
            QualityError::Vmaf { .. } => false,
            _ => true,
        }
    }
}
