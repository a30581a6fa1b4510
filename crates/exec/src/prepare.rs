//! What every executor does before an attempt starts: its log folder and
//! files, and its working folder, given to the user it runs as. With a
//! reach (every attempt a scheduler starts), all of it is made inside the
//! job's folder through no link its tasks could have left there
//! (`tessera_confine`); without one (tests, embedders), by plain paths.

use crate::error::os_reason;
use crate::{log_file, ExecError, RunAs, StartRequest};
use std::fs::File;
use std::path::{Path, PathBuf};
use tessera_confine as confine;

/// An attempt's open log files, ready for its process.
pub struct AttemptFiles {
    pub stdout: File,
    pub stdout_path: PathBuf,
    pub stderr: File,
    pub stderr_path: PathBuf,
}

/// Makes the attempt's log folder and files and its working folder (the
/// latter `user`'s, when it switches users).
pub fn prepare_attempt(
    req: &StartRequest,
    user: Option<&RunAs>,
) -> Result<AttemptFiles, ExecError> {
    let stdout_path = log_file(&req.log_dir, &req.name, req.attempt, "stdout");
    let stderr_path = log_file(&req.log_dir, &req.name, req.attempt, "stderr");
    let give_workdir = |result: std::io::Result<()>| {
        result.map_err(|e| ExecError::Prepare {
            what: "working directory",
            path: req.workdir.clone(),
            reason: format!(
                "giving it to {}: {}",
                user.map_or("its user", |u| u.name.as_str()),
                os_reason(&e)
            ),
        })
    };
    let (stdout, stderr) = if req.reach.grants.is_empty() {
        create_dir(&req.log_dir, "log directory", user.is_some())?;
        create_dir(&req.workdir, "working directory", user.is_some())?;
        if let Some(user) = user {
            give_workdir(user.give(&req.workdir))?;
        }
        (create_file(&stdout_path)?, create_file(&stderr_path)?)
    } else {
        confined(
            "log directory",
            &req.log_dir,
            confine::create_dir_all(&req.reach, &req.log_dir, None),
        )?;
        let owner = user.map(|u| (u.uid, u.gid));
        let workdir = confined(
            "working directory",
            &req.workdir,
            confine::create_dir_all(&req.reach, &req.workdir, owner),
        )?;
        if let Some((uid, gid)) = owner {
            give_workdir(std::os::unix::fs::fchown(&workdir, Some(uid), Some(gid)))?;
        }
        let log = |p: &Path| {
            let made = confine::create(
                &req.reach,
                p,
                confine::Make::output(confine::Write::Truncate),
            );
            confined("log file", p, made)
        };
        (log(&stdout_path)?, log(&stderr_path)?)
    };
    Ok(AttemptFiles {
        stdout,
        stdout_path,
        stderr,
        stderr_path,
    })
}

fn confined<T>(
    what: &'static str,
    path: &Path,
    r: Result<T, confine::ConfineError>,
) -> Result<T, ExecError> {
    r.map_err(|e| ExecError::Prepare {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Creates a directory the attempt needs; `for_others` makes what it
/// creates searchable by everyone (for an attempt running as another user).
fn create_dir(path: &Path, what: &'static str, for_others: bool) -> Result<(), ExecError> {
    let made = if for_others {
        crate::user::make_dirs(path)
    } else {
        std::fs::create_dir_all(path)
    };
    made.map_err(|e| ExecError::Prepare {
        what,
        path: path.to_path_buf(),
        reason: os_reason(&e),
    })
}

/// Creates (or truncates) a log file, never through a symbolic link.
fn create_file(path: &Path) -> Result<File, ExecError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| ExecError::Prepare {
            what: "log file",
            path: path.to_path_buf(),
            reason: os_reason(&e),
        })
}
