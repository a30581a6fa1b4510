//! The crate's one error type. Every variant prints as one line that names
//! the file (and the byte offset where it applies), says what was wrong and,
//! where it helps, what to do.

use std::path::{Path, PathBuf};

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The fragmented MP4 is not what this crate can read: a box whose size
    /// does not fit, a field out of range, a missing box.
    #[error("{}: offset {offset}: {what}", file.display())]
    Malformed {
        file: PathBuf,
        offset: u64,
        what: String,
    },
    /// The requested cuts do not fit the file's fragments (a segment that
    /// would start inside a fragment or on a non-keyframe, a count that
    /// differs from the file's).
    #[error("{}: {what}", file.display())]
    Cut { file: PathBuf, what: String },
    /// Reading or writing a file failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A presentation that no manifest can describe safely (a name with a
    /// quote or a line break, a path that leaves the output folder).
    #[error("presentation: {0}")]
    Invalid(String),
}

impl PackageError {
    pub(crate) fn malformed(file: &Path, offset: u64, what: impl Into<String>) -> Self {
        PackageError::Malformed {
            file: file.to_path_buf(),
            offset,
            what: what.into(),
        }
    }

    pub(crate) fn cut(file: &Path, what: impl Into<String>) -> Self {
        PackageError::Cut {
            file: file.to_path_buf(),
            what: what.into(),
        }
    }

    pub(crate) fn io(path: &Path, op: &'static str, source: std::io::Error) -> Self {
        PackageError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }
}
