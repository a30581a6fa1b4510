//! What `tessera server` sets up at start so projects cannot read each
//! other's data or the server's secrets (see `tessera_api`'s tenancy
//! module for the layout): the data directory and its top folders, the
//! database and the worker tokens closed to everyone but the server, and
//! one line that says what isolation this server has.

use crate::fail::{Failure, Result};
use crate::server::{Database, ServerConfig};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tessera_exec::TaskUids;

/// The folders under the data directory that hold projects' folders.
const TOP: [&str; 4] = ["jobs", "encodes", "outputs", "uploads"];

fn chmod(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
        Failure::env(format!(
            "cannot set the permissions of {}: {e}",
            path.display()
        ))
    })
}

/// Creates the data directory and its top folders and closes them: with
/// task uids (root), passable but not listable by the projects' users
/// (0711); without, the server's alone (0700). New files the server makes
/// are its own alone too (umask 077; what tasks must read is opened up
/// explicitly). Returns the directory's canonical path, which is what
/// tasks' reaches are built from.
pub fn prepare_data_dir(dir: &Path, isolate: bool) -> Result<PathBuf> {
    // SAFETY: umask only swaps the process's file mode mask.
    unsafe { libc::umask(0o077) };
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::env(format!("cannot use data directory {}: {e}", dir.display())))?;
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| Failure::env(format!("cannot use data directory {}: {e}", dir.display())))?;
    let mode = if isolate { 0o711 } else { 0o700 };
    chmod(&dir, mode)?;
    for top in TOP {
        let d = dir.join(top);
        std::fs::create_dir_all(&d)
            .map_err(|e| Failure::env(format!("cannot create {}: {e}", d.display())))?;
        chmod(&d, mode)?;
    }
    Ok(dir)
}

/// The SQLite database (with its journal files) and the worker tokens:
/// readable and writable by the server alone (0600).
pub fn close_secrets(config: &ServerConfig) -> Result<()> {
    let mut files = vec![tessera_api::token_file(&config.data_dir)];
    if let Database::Sqlite(db) = &config.database {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            files.push(p.into());
        }
    }
    for f in files.iter().filter(|f| f.exists()) {
        chmod(f, 0o600)?;
    }
    Ok(())
}

/// One line on what isolation this server gives its projects' tasks.
pub fn isolation_line(uids: Option<TaskUids>) -> String {
    match uids {
        Some(u) => format!(
            "tasks run as their project's own user: project N as uid {}+N (task uids {}-{}); \
             each project's folders are closed to the others, the database and tokens are the \
             server's alone",
            u.first, u.first, u.last
        ),
        None => {
            // SAFETY: geteuid has no preconditions.
            let uid = unsafe { libc::geteuid() };
            format!(
                "warning: tessera runs as uid {uid}, not root, so every project's tasks run as \
                 uid {uid} too: they can read each other's uploads, logs and outputs and this \
                 server's database; run the server as root for per-project task users \
                 (--task-uids), or give each team a server of its own"
            )
        }
    }
}
