//! The no-shared-filesystem data plane: for each attempt handed to a
//! worker that runs with `--data http`, the server decides which files it
//! reads (`inputs`: path, size, mtime, sha256) and which it may send back
//! (`outputs`), and serves exactly those, fenced by attempt number like
//! every other attempt route.
//!
//! Uploads arrive in pieces at an offset, into a partial file beside the
//! target (`.NAME.part-<job>-<index>-<attempt>`); once the partial holds
//! the announced size its sha256 is checked and it is renamed into place,
//! under the pool's lock so an attempt given up meanwhile cannot land
//! anything. A half file is never at the target path.
//!
//! Every file the server opens, creates, renames or removes here is the
//! attempt's and lies inside its reach (its job folder, its project's
//! uploads, what its job was granted), reached through no symbolic link
//! (`tessera_confine`): a member's task can change what its folders hold,
//! and the server does this work as root. A plan that would name a file
//! outside the reach is refused whole, and the attempt fails saying why.

mod routes;

pub(crate) use routes::{download, remove, upload, upload_status};

use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use tessera_confine::{self as confine, ConfineError};
use tessera_exec::StartRequest;
use tessera_types::{Action, AttemptNo, Reach, TaskRef};

/// One file an attempt reads.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct InputFile {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha256: String,
}

/// What an attempt may send back.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub(crate) enum Output {
    /// Exactly this file.
    File(PathBuf),
    /// Any file under this directory.
    Tree(PathBuf),
    /// Any file directly in this directory.
    Children(PathBuf),
}

impl Output {
    fn covers(&self, p: &FsPath) -> bool {
        match self {
            Output::File(f) => f == p,
            Output::Tree(d) => p != d && p.starts_with(d),
            Output::Children(d) => p.parent() == Some(d.as_path()),
        }
    }
}

/// An attempt's files, as the lease answer carries them (`files`).
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct AttemptFiles {
    pub inputs: Vec<InputFile>,
    pub outputs: Vec<Output>,
    /// Directories that must exist before it runs.
    pub dirs: Vec<PathBuf>,
    /// Why the attempt may not run (its op names a file outside its
    /// reach): the worker fails it with this reason, running nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// What every file above lies in (see the module doc); kept for the
    /// file routes.
    #[serde(skip)]
    pub reach: Reach,
    /// The uid and gid that files landed for the attempt are given to (its
    /// project's task user), when it has one.
    #[serde(skip)]
    pub owner: Option<(u32, u32)>,
}

type Key = (TaskRef, AttemptNo);

/// The plans of attempts on http workers and the sha256 of files served.
#[derive(Default)]
pub(crate) struct DataPlane {
    plans: Mutex<HashMap<Key, Arc<AttemptFiles>>>,
    /// sha256 by path, valid while size and mtime match.
    sums: Mutex<HashMap<PathBuf, (u64, i64, String)>>,
}

impl DataPlane {
    fn plan(&self, key: Key) -> Option<Arc<AttemptFiles>> {
        lock(&self.plans).get(&key).cloned()
    }

    /// Keeps the plans of the attempts for which `held` is true.
    pub(crate) fn retain(&self, held: impl Fn(&Key) -> bool) {
        lock(&self.plans).retain(|k, _| held(k));
    }

    /// The sha256 of `path` inside `reach` (cached by size and mtime);
    /// `(size, mtime, sum)`.
    pub(crate) fn sum(
        &self,
        reach: &Reach,
        path: &FsPath,
    ) -> Result<(u64, i64, String), ConfineError> {
        let (size, mtime) = confine::stamp(reach, path)?;
        if let Some((s, m, sum)) = lock(&self.sums).get(path) {
            if (*s, *m) == (size, mtime) {
                return Ok((size, mtime, sum.clone()));
            }
        }
        let mut file = confine::open(reach, path)?;
        let sum = tessera_media::sha256_of(&mut file).map_err(|e| ConfineError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let (size2, mtime2) = confine::stamp(reach, path)?;
        if (size2, mtime2) == (size, mtime) {
            lock(&self.sums).insert(path.to_path_buf(), (size, mtime, sum.clone()));
        }
        Ok((size, mtime, sum))
    }

    /// Works out (hashing inputs; blocking) and keeps an attempt's files.
    pub(crate) fn prepare(&self, req: &StartRequest) -> Arc<AttemptFiles> {
        let mut files = self.files_of(req);
        files.reach = req.reach.clone();
        files.owner = req.user.as_ref().map(|u| (u.uid, u.gid));
        let files = Arc::new(files);
        lock(&self.plans).insert((req.task, req.attempt), files.clone());
        files
    }

    fn files_of(&self, req: &StartRequest) -> AttemptFiles {
        let mut inputs: Vec<PathBuf> = Vec::new();
        let mut outputs = Vec::new();
        let mut dirs = vec![req.log_dir.clone()];
        match &req.action {
            Action::Noop => {}
            Action::Op { op, args } => match tessera_media::op_files(op, args, Some(&req.reach)) {
                Ok(f) => {
                    inputs = f.inputs;
                    outputs = f.outputs.into_iter().map(Output::File).collect();
                    dirs.extend(f.dirs);
                }
                // Outside its reach: refused here, nothing is named.
                Err(e) if e.is_user_error() => {
                    return AttemptFiles {
                        refused: Some(format!("op {op}: {e}")),
                        ..AttemptFiles::default()
                    }
                }
                // The op fails on the worker with the same cause, said there.
                Err(e) => eprintln!(
                    "tessera-api: the files of {} attempt {}: {e}",
                    req.task, req.attempt
                ),
            },
            Action::Command { .. } | Action::Script { .. } => {
                // The job directory: <data>/jobs/<job>/, logs in its logs/.
                if let Some(job_dir) = req.log_dir.parent() {
                    walk(job_dir, &req.log_dir, &mut inputs);
                    outputs.push(Output::Children(job_dir.to_path_buf()));
                    dirs.push(job_dir.to_path_buf());
                }
                outputs.push(Output::Tree(req.workdir.clone()));
                dirs.push(req.workdir.clone());
            }
        }
        // An expanding task's follow-on tasks (read by the driver).
        if let Some(expand) = req.env.get("TESSERA_EXPAND").map(PathBuf::from) {
            if let Some(dir) = expand.parent() {
                dirs.push(dir.to_path_buf());
            }
            outputs.push(Output::File(expand));
        }
        for stream in ["stdout", "stderr"] {
            let log = tessera_exec::log_file(&req.log_dir, &req.name, req.attempt, stream);
            outputs.push(Output::File(log));
        }
        let inputs = inputs
            .into_iter()
            .filter_map(|path| match self.sum(&req.reach, &path) {
                Ok((size, mtime_ns, sha256)) => Some(InputFile {
                    path,
                    size,
                    mtime_ns,
                    sha256,
                }),
                Err(e) => {
                    // A missing input: the attempt fails on the worker saying so.
                    eprintln!("tessera-api: input {} of {}: {e}", path.display(), req.task);
                    None
                }
            })
            .collect();
        AttemptFiles {
            inputs,
            outputs,
            dirs,
            ..AttemptFiles::default()
        }
    }
}

/// Every regular file under `dir`, except under `skip` (symbolic links are
/// left out; each file is opened confined later anyway).
fn walk(dir: &FsPath, skip: &FsPath, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() && p != skip => walk(&p, skip, into),
            Ok(t) if t.is_file() && !is_partial(&p) => into.push(p),
            _ => {}
        }
    }
}

fn is_partial(p: &FsPath) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.contains(".part-"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_cover_their_files_only() {
        let f = Output::File("/d/jobs/1/a".into());
        assert!(f.covers(FsPath::new("/d/jobs/1/a")));
        assert!(!f.covers(FsPath::new("/d/jobs/1/b")));
        let t = Output::Tree("/d/jobs/1/tasks/x".into());
        assert!(t.covers(FsPath::new("/d/jobs/1/tasks/x/deep/f")));
        assert!(!t.covers(FsPath::new("/d/jobs/1/tasks/x")));
        assert!(!t.covers(FsPath::new("/d/jobs/1/tasks/xy/f")));
        let c = Output::Children("/d/jobs/1".into());
        assert!(c.covers(FsPath::new("/d/jobs/1/f")));
        assert!(!c.covers(FsPath::new("/d/jobs/1/logs/f")));
    }

    #[test]
    fn partial_names_sit_beside_the_target() {
        let k = routes::key(7, 2, 3);
        let p = routes::partial_of(FsPath::new("/d/chunks/c.nut"), k);
        assert_eq!(p, FsPath::new("/d/chunks/.c.nut.part-7-2-3"));
        assert!(is_partial(&p));
    }
}
