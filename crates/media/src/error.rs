//! `MediaError`: what went wrong, split into problems the user can fix
//! (their input, their request, their output directory) and internal failures.

use std::path::{Path, PathBuf};

/// The error of every media operation. Messages are one line: what is wrong
/// and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{}: no such file (check the path)", .path.display())]
    InputMissing { path: PathBuf },
    #[error("{}: file is empty", .path.display())]
    InputEmpty { path: PathBuf },
    #[error("{}: not a media file ffmpeg can read ({detail})", .path.display())]
    NotMedia { path: PathBuf, detail: String },
    /// A file in a format Tessera never opens: a playlist or list that
    /// names other files, a still image, or a format outside
    /// [`MEDIA_DEMUXERS`](crate::runner::MEDIA_DEMUXERS).
    #[error("{}: Tessera does not open this file: it is {what} (ffmpeg format {format}); {why}", .path.display())]
    Refused {
        path: PathBuf,
        format: String,
        what: String,
        why: String,
    },
    #[error("{}: not a video file (ffprobe found no video stream)", .path.display())]
    NoVideo { path: PathBuf },
    #[error("{}: the video stream has no frames", .path.display())]
    NoFrames { path: PathBuf },
    #[error("{}: has no timestamps; remux it first (ffmpeg -i in -c copy out.mkv)", .path.display())]
    NoTimestamps { path: PathBuf },
    #[error("{}: file is truncated or damaged ({detail}); re-copy or re-download it", .path.display())]
    Truncated { path: PathBuf, detail: String },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("{}: output directory is not usable ({detail})", .path.display())]
    OutputDir { path: PathBuf, detail: String },
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A file an op was asked to read or write lies outside its attempt's
    /// reach (see `tessera_types::Reach`).
    #[error(transparent)]
    OutOfReach(#[from] tessera_types::OutOfReach),
    #[error("{program} is not installed or not on PATH (install ffmpeg, or set TESSERA_FFMPEG / TESSERA_FFPROBE)")]
    NotInstalled { program: String },
    #[error("{program} failed ({status}): {stderr_tail}")]
    ToolFailed {
        program: String,
        status: String,
        stderr_tail: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unreadable state file ({detail}); re-run the previous step", .path.display())]
    State { path: PathBuf, detail: String },
    #[error("internal: {0}")]
    Internal(String),
    #[error("verification failed: {0}")]
    VerifyFailed(String),
}

impl MediaError {
    /// True when the user can fix the problem (bad input, bad request, bad
    /// output directory); false for internal failures worth a retry or a bug report.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            MediaError::InputMissing { .. }
                | MediaError::InputEmpty { .. }
                | MediaError::NotMedia { .. }
                | MediaError::Refused { .. }
                | MediaError::NoVideo { .. }
                | MediaError::NoFrames { .. }
                | MediaError::NoTimestamps { .. }
                | MediaError::Truncated { .. }
                | MediaError::Unsupported(_)
                | MediaError::OutputDir { .. }
                | MediaError::BadRequest(_)
                | MediaError::OutOfReach(_)
        )
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        MediaError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn io_at(path: &Path, what: &str, source: std::io::Error) -> Self {
        MediaError::io(format!("{what} {}", path.display()), source)
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = MediaError> = std::result::Result<T, E>;
