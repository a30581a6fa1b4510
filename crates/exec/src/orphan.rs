//! Cleaning up after a crash: an attempt's processes may have outlived the
//! scheduler that started them (only the main process dies with its parent).

use crate::local::{attempt_marker, kill_group, ATTEMPT_ENV};
use crate::ExecError;
use std::path::Path;
use tessera_types::{AttemptNo, TaskRef};

/// Kills what is left of an attempt from a previous run of the scheduler:
/// the process group `pid` (the attempt's recorded pid), if it still exists
/// **and** one of its members carries the attempt's [`ATTEMPT_ENV`] marker
/// (so a recycled pid never gets an unrelated process killed). Returns how
/// many of the attempt's processes were found (0: nothing to do).
///
/// Reads `/proc`, so it sees only processes it may inspect (the same user's).
pub fn kill_orphan_group(pid: u32, task: TaskRef, attempt: AttemptNo) -> Result<usize, ExecError> {
    if pid <= 1 {
        return Ok(0);
    }
    let marker = format!("{ATTEMPT_ENV}={}", attempt_marker(task, attempt));
    let proc_err = |e: std::io::Error| ExecError::Kill {
        pid,
        reason: format!("reading /proc: {}", crate::error::os_reason(&e)),
    };
    let mut found = 0;
    for entry in std::fs::read_dir("/proc").map_err(proc_err)? {
        let Ok(entry) = entry else { continue };
        let is_process = entry
            .file_name()
            .to_str()
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()));
        if is_process
            && process_group(&entry.path()) == Some(pid)
            && has_env(&entry.path(), &marker)
        {
            found += 1;
        }
    }
    if found > 0 {
        kill_group(pid);
    }
    Ok(found)
}

/// The process group of `/proc/<pid>`, from its `stat` file.
fn process_group(proc_dir: &Path) -> Option<u32> {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(1)?.parse().ok()
}

fn has_env(proc_dir: &Path, entry: &str) -> bool {
    std::fs::read(proc_dir.join("environ"))
        .map(|env| env.split(|&b| b == 0).any(|var| var == entry.as_bytes()))
        .unwrap_or(false)
}
