//! What an attempt may touch on the file system: its *reach*. A task of a
//! server's job may read and write its job's folder, read its project's
//! uploads, and use what the service that built the job granted it (an
//! encode's workdir and output folder, the volume file it reads), and
//! nothing else. The driver works out each attempt's reach; built-in ops
//! check the paths they are asked to open against it, and the server and
//! its workers open files for an attempt only inside it.
//!
//! The check here is lexical (plain absolute paths, compared by whole
//! components); whoever opens a file also makes sure no symbolic link leads
//! it out (see `tessera_confine`).

use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// The environment variable that carries an attempt's reach (JSON) to its
/// process. Set by the executor from [`StartRequest`]'s reach, after the
/// task's own environment, so a spec cannot widen it.
pub const REACH_ENV: &str = "TESSERA_REACH";

/// One path an attempt may use: a folder (and everything under it) or a
/// file, read-only unless `write`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub write: bool,
    /// Whether `path` is a folder (a worker without the server's files
    /// makes it as one before the attempt's files arrive).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub folder: bool,
}

impl Grant {
    /// A file or folder the attempt may read.
    pub fn read(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            write: false,
            folder: false,
        }
    }

    /// A file or folder the attempt may write.
    pub fn write(path: impl Into<PathBuf>) -> Self {
        Self {
            write: true,
            ..Self::read(path)
        }
    }

    /// The same grant, of a folder.
    pub fn folder(self) -> Self {
        Self {
            folder: true,
            ..self
        }
    }

    fn covers(&self, path: &Path) -> bool {
        path.starts_with(&self.path)
    }
}

/// The paths an attempt may use (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reach {
    pub grants: Vec<Grant>,
}

/// Why a path is outside a reach, in one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} is outside what this job may {} (its job folder, its project's uploads \
     and the files the server granted it)",
    .path.display(),
    if *.write { "write" } else { "read" }
)]
pub struct OutOfReach {
    pub path: PathBuf,
    pub write: bool,
}

impl Reach {
    pub fn new(grants: Vec<Grant>) -> Self {
        Self { grants }
    }

    /// Whether `path` (absolute, without `.` or `..`) lies within a grant
    /// that allows reading it, or writing it when `write`.
    pub fn allows(&self, path: &Path, write: bool) -> bool {
        is_plain_absolute(path)
            && self
                .grants
                .iter()
                .any(|g| (g.write || !write) && g.covers(path))
    }

    /// [`allows`](Self::allows), as an error naming the path.
    pub fn check(&self, path: &Path, write: bool) -> Result<(), OutOfReach> {
        if self.allows(path, write) {
            Ok(())
        } else {
            Err(OutOfReach {
                path: path.to_path_buf(),
                write,
            })
        }
    }

    /// Whether a directory may be created (by a worker, before an attempt):
    /// inside a writable grant, or on the way to a grant.
    pub fn allows_dir(&self, dir: &Path) -> bool {
        self.allows(dir, true)
            || (is_plain_absolute(dir) && self.grants.iter().any(|g| g.path.starts_with(dir)))
    }

    /// The grant that covers `path` most closely, if any (the longest).
    pub fn grant_of(&self, path: &Path) -> Option<&Grant> {
        self.grants
            .iter()
            .filter(|g| g.covers(path))
            .max_by_key(|g| g.path.components().count())
    }

    /// This reach and one more grant: for a temporary file beside a
    /// granted one (a partial upload, a download in progress), which the
    /// grant of a single file does not cover.
    pub fn and(&self, grant: Grant) -> Reach {
        let mut grants = self.grants.clone();
        grants.push(grant);
        Reach { grants }
    }

    /// The reach as the value of [`REACH_ENV`].
    pub fn to_env(&self) -> String {
        serde_json::to_string(self).expect("a reach serialises")
    }

    /// Reads the value of [`REACH_ENV`].
    pub fn from_env(value: &str) -> Result<Self, String> {
        serde_json::from_str(value).map_err(|e| format!("{REACH_ENV} is not a reach: {e}"))
    }
}

/// Whether `path` is absolute and plain: no `.` or `..` segments (looked
/// for in the text: `Path::components` drops inner `.`s silently).
pub fn is_plain_absolute(path: &Path) -> bool {
    path.is_absolute()
        && path
            .as_os_str()
            .as_encoded_bytes()
            .split(|b| *b == b'/')
            .all(|seg| seg != b"." && seg != b"..")
        && path
            .components()
            .all(|c| !matches!(c, Component::ParentDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach() -> Reach {
        Reach::new(vec![
            Grant::write("/d/jobs/7").folder(),
            Grant::read("/d/uploads/2").folder(),
            Grant::read("/media/show/ep1.mkv"),
        ])
    }

    #[test]
    fn grants_cover_whole_components_and_read_only_stays_read_only() {
        let r = reach();
        assert!(r.allows(Path::new("/d/jobs/7/tasks/a/out"), true));
        assert!(r.allows(Path::new("/d/jobs/7"), false));
        assert!(
            !r.allows(Path::new("/d/jobs/70/x"), false),
            "not a prefix by text"
        );
        assert!(r.allows(Path::new("/d/uploads/2/u/clip.mp4"), false));
        assert!(!r.allows(Path::new("/d/uploads/2/u/clip.mp4"), true));
        assert!(r.allows(Path::new("/media/show/ep1.mkv"), false));
        assert!(!r.allows(Path::new("/media/show/ep2.mkv"), false));
        assert!(!r.allows(Path::new("/etc/passwd"), false));
        assert!(!r.allows(Path::new("/d/jobs/7/../8/x"), false));
        assert!(!r.allows(Path::new("/d/jobs/7/./x"), false));
        assert!(!r.allows(Path::new("d/jobs/7/x"), false));
        assert!(!Reach::default().allows(Path::new("/"), false));
        let err = r.check(Path::new("/etc/shadow"), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/shadow is outside what this job may read (its job folder, its project's \
             uploads and the files the server granted it)"
        );
    }

    #[test]
    fn directories_on_the_way_to_a_grant_may_be_made() {
        let r = reach();
        assert!(r.allows_dir(Path::new("/d/jobs/7/tasks/a")));
        assert!(r.allows_dir(Path::new("/d/jobs")));
        assert!(r.allows_dir(Path::new("/media/show")));
        assert!(!r.allows_dir(Path::new("/etc/cron.d")));
        assert!(
            !r.allows_dir(Path::new("/d/uploads/2/new")),
            "read-only grant"
        );
    }

    #[test]
    fn a_reach_round_trips_through_its_environment_variable() {
        let r = reach();
        assert_eq!(Reach::from_env(&r.to_env()).unwrap(), r);
        assert!(Reach::from_env("nonsense").is_err());
        assert_eq!(
            r.grant_of(Path::new("/d/jobs/7/x")).map(|g| g.write),
            Some(true)
        );
    }
}
