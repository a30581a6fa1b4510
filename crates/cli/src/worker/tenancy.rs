//! Each project's tasks on this worker run as that project's own user (the
//! uid and gid the server names in the lease answer, when this worker runs
//! as root), and an http attempt's files are made as the server makes them:
//! its job's folder shared with its user only (logs the worker's alone),
//! its writable grants its user's, its project's uploads readable by its
//! group only. A plan that names a file outside the attempt's reach is
//! refused before anything is fetched.

use super::{data, Running};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tessera_exec::{RunAs, StartRequest};

/// Whether this worker may switch users.
pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// What the worker says at start about who its tasks run as.
pub(super) fn isolation_line() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    (uid != 0).then(|| {
        format!(
            "tessera worker: warning: running as uid {uid}, not root, so every project's tasks \
             run here as uid {uid} too and can read each other's files on this machine; run the \
             worker as root to give each project its own user"
        )
    })
}

impl Running {
    /// The user an attempt runs as: its project's (`uid`, `gid` of the
    /// lease answer) when this worker runs as root, else this worker's.
    pub(super) fn user_of(&self, a: &Value) -> Option<RunAs> {
        let id = |k: &str| a[k].as_u64().and_then(|n| u32::try_from(n).ok());
        match (is_root(), id("uid"), id("gid")) {
            (true, Some(uid), Some(gid)) => Some(RunAs::numeric(uid, gid)),
            _ => None,
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Makes `dir` if it is missing (and the folders above it, this worker's),
/// and sets its owner (not following a link) and mode.
fn make(dir: &Path, owner: (Option<u32>, Option<u32>), mode: u32) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::os::unix::fs::lchown(dir, owner.0, owner.1)?;
    set_mode(dir, mode)
}

/// Checks an http attempt's plan against its reach and makes the folders
/// its grants name, as the server has them. `Err` is why it may not run.
pub(super) fn admit(req: &StartRequest, plan: &data::Plan) -> Result<(), String> {
    plan.admit()?;
    prepare(req).map_err(|e| {
        format!(
            "worker could not prepare the folders of attempt {} of {}: {e}",
            req.attempt, req.task
        )
    })
}

fn prepare(req: &StartRequest) -> std::io::Result<()> {
    let user = req.user.as_ref();
    let job_dir = req.log_dir.parent();
    for g in &req.reach.grants {
        if Some(g.path.as_path()) == job_dir {
            match user {
                Some(u) => {
                    u.share(&g.path)?;
                    tessera_exec::private_dir(&req.log_dir)?;
                }
                None => std::fs::create_dir_all(&req.log_dir)?,
            }
        } else if g.write {
            // A folder of the project's (an encode's workdir) or a file in
            // one (its output): that folder is the project user's alone.
            let dir = if g.folder {
                Some(g.path.as_path())
            } else {
                g.path.parent()
            };
            if let Some(dir) = dir {
                let owner = user.map_or((None, None), |u| (Some(u.uid), Some(u.gid)));
                make(dir, owner, if user.is_some() { 0o700 } else { 0o755 })?;
            }
        } else if let Some(u) = user.filter(|_| g.folder) {
            // A read-only folder (the project's uploads): its group reads it.
            make(&g.path, (None, Some(u.gid)), 0o750)?;
        }
    }
    Ok(())
}
