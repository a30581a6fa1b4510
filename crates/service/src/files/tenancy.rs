//! Each project's folders belong to that project's task user (see
//! `tessera_exec::TaskUids`), so no other project's tasks can open them:
//!
//! ```text
//! <data>/                      the server's, 0711 (passable, not listable)
//!   tessera.db, worker-tokens  the server's alone, 0600
//!   uploads/<project>/...      root, group = the project's, 0750 (files 0640): its tasks read them
//!   encodes/<encode>/          the project's user, 0700: its tasks write there
//!   outputs/<encode>/          the project's user, 0700
//!   jobs/<job>/                root, group = the project's, 1770 (the driver shares it)
//!   jobs/<job>/logs/           the server's alone, 0700
//! ```
//!
//! Without task uids (a server not running as root) every call here does
//! nothing: tasks run as the server's own user and the folders stay its.

use crate::{Service, ServiceError};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tessera_exec::RunAs;
use tessera_types::{Grant, ProjectId};

impl Service {
    /// The user a project's tasks run as, if they switch users.
    pub(crate) fn project_user(&self, project: ProjectId) -> Result<Option<RunAs>, ServiceError> {
        self.task_uids
            .map(|u| u.user_of(Some(project.0)))
            .transpose()
            .map_err(ServiceError::internal)
    }

    /// A project's uploads folder.
    pub(crate) fn uploads_of(&self, project: ProjectId) -> PathBuf {
        self.data_dir.join("uploads").join(project.0.to_string())
    }

    /// What every job of `project` may read besides its own folder: the
    /// project's uploads.
    pub(crate) fn project_grants(&self, project: ProjectId) -> Vec<Grant> {
        vec![Grant::read(self.uploads_of(project)).folder()]
    }
}

/// Sets the owner (`None` keeps it), group and mode of `path`, not
/// following a link.
fn set(path: &Path, uid: Option<u32>, gid: u32, mode: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, uid, Some(gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Gives `dir` (made by the server, in a folder only the server writes)
/// and everything in it to `user`: its tasks write there. Mode 0700.
pub(crate) fn give_tree(dir: &Path, user: Option<&RunAs>) -> std::io::Result<()> {
    let Some(user) = user else { return Ok(()) };
    set(dir, Some(user.uid), user.gid, 0o700)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let t = entry.file_type()?;
        if t.is_dir() {
            give_tree(&entry.path(), Some(user))?;
        } else if t.is_file() {
            set(&entry.path(), Some(user.uid), user.gid, 0o600)?;
        }
    }
    Ok(())
}

/// Lets `user`'s tasks read `path` (a folder: 0750, a file: 0640), kept
/// the server's: an upload and the folders above it up to `root`.
pub(crate) fn share_read(path: &Path, root: &Path, user: Option<&RunAs>) -> std::io::Result<()> {
    let Some(user) = user else { return Ok(()) };
    for p in path
        .ancestors()
        .take_while(|p| p.starts_with(root) && *p != root)
    {
        let meta = std::fs::symlink_metadata(p)?;
        let mode = if meta.is_dir() { 0o750 } else { 0o640 };
        set(p, None, user.gid, mode)?;
    }
    Ok(())
}
