//! Attempts as local child processes.

mod output;
mod wait;

use crate::{EventSink, ExecError, ExecEvent, Executor, StartRequest};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tessera_types::{Action, AttemptNo, AttemptUsage, TaskRef, DEFAULT_SHELL};

/// The environment variable every local attempt's processes carry:
/// `<job>.<task index>.<attempt>`. [`kill_orphan_group`](crate::kill_orphan_group)
/// checks it before it kills anything.
pub const ATTEMPT_ENV: &str = "TESSERA_ATTEMPT";

/// The value of [`ATTEMPT_ENV`] for an attempt.
pub fn attempt_marker(task: TaskRef, attempt: AttemptNo) -> String {
    format!("{}.{}.{attempt}", task.job, task.index)
}

/// How a [`LocalExecutor`] runs things.
pub struct LocalConfig {
    /// `Action::Op { op, args }` runs `<op_program> op <op> <args...>`
    /// (normally the `tessera` binary itself).
    pub op_program: PathBuf,
    pub sink: EventSink,
}

/// Running attempts' process group ids. An entry lives from just after the
/// spawn until the process has exited but before it is reaped, so a pid in
/// here always names our group and never a recycled one.
type Running = Arc<Mutex<HashMap<(TaskRef, AttemptNo), u32>>>;

/// Runs each attempt as a child process of this one.
///
/// Each attempt gets its own process group (so a kill takes its
/// descendants too), standard input from `/dev/null`, the executor's
/// environment plus the request's `env` plus [`ATTEMPT_ENV`], and
/// `workdir` as its current directory. Lines of standard output that follow
/// the progress protocol ([`tessera_types::parse_progress_line`]) become
/// `Progress` events; the rest go to `<log_dir>/<name>.<attempt>.stdout.log`.
/// Standard error goes to `<log_dir>/<name>.<attempt>.stderr.log`, and its
/// last non-empty line ends up in the failure message. When the attempt's
/// main process exits, whatever it left behind in its group is killed.
///
/// Two threads per running attempt: one drains standard output, one reaps
/// the process with `wait4` (for its resource usage). Nothing else in the
/// program may reap these children (no `SIGCHLD` set to `SIG_IGN`, no
/// `waitpid(-1, ..)`).
///
/// Each child asks the kernel to `SIGKILL` it when its parent goes away
/// (`PR_SET_PDEATHSIG`). Linux sends that signal when the **thread** that
/// spawned the child ends, not the process: call [`start`](Executor::start)
/// from a thread that lives as long as the executor (the driver's loop
/// thread), never from a short-lived or pooled one. Only the attempt's main
/// process gets the signal; after a crash, its descendants are found and
/// killed with [`kill_orphan_group`](crate::kill_orphan_group).
///
/// Dropping the executor kills every running attempt.
///
/// Peak memory (`max_rss_kb`, from `wait4`) is an upper bound, not the
/// attempt's own figure: Linux folds the address space a child starts with
/// (a copy of this process's, after `fork`) into its `maxrss` at `exec`, so
/// an attempt reports at least this process's resident size when it was
/// spawned. `vfork`/`posix_spawn` would report this process's *peak*
/// instead. See the ignored test `peak_memory_is_the_attempts_own_not_the_parents`.
pub struct LocalExecutor {
    op_program: PathBuf,
    sink: EventSink,
    running: Running,
}

impl LocalExecutor {
    pub fn new(config: LocalConfig) -> Self {
        Self {
            op_program: config.op_program,
            sink: config.sink,
            running: Running::default(),
        }
    }

    /// How many attempts have a process right now.
    pub fn running(&self) -> usize {
        lock(&self.running).len()
    }

    fn launch(&self, req: &StartRequest) -> Result<(), ExecError> {
        let (program, args): (PathBuf, Vec<&str>) = match &req.action {
            Action::Noop => unreachable!("no-ops never reach launch"),
            Action::Op { op, args } => {
                let args = ["op", op.as_str()]
                    .into_iter()
                    .chain(args.iter().map(String::as_str));
                (self.op_program.clone(), args.collect())
            }
            Action::Command { argv } => {
                let (first, rest) = argv.split_first().ok_or(ExecError::EmptyCommand)?;
                (
                    PathBuf::from(first),
                    rest.iter().map(String::as_str).collect(),
                )
            }
            Action::Script { script, shell } => (
                PathBuf::from(shell.as_deref().unwrap_or(DEFAULT_SHELL)),
                vec!["-c", script.as_str()],
            ),
        };
        create_dir(&req.workdir, "working directory")?;
        create_dir(&req.log_dir, "log directory")?;
        let stdout_log = create_file(&log_file(&req.log_dir, &req.name, req.attempt, "stdout"))?;
        let stderr_path = log_file(&req.log_dir, &req.name, req.attempt, "stderr");
        let stderr_log = create_file(&stderr_path)?;

        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .current_dir(&req.workdir)
            .envs(&req.env)
            .env(ATTEMPT_ENV, attempt_marker(req.task, req.attempt))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_log))
            .process_group(0);
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec; it only
        // makes async-signal-safe system calls and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the line above took effect.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| ExecError::Spawn {
            program: program.display().to_string(),
            reason: crate::error::os_reason(&e),
        })?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("stdout is piped");
        // The child is reaped by `wait4` in the waiter, never by std.
        drop(child);

        let (task, attempt) = (req.task, req.attempt);
        lock(&self.running).insert((task, attempt), pid);
        (self.sink)(ExecEvent::Started { task, attempt, pid });
        let drained = output::spawn_pump(stdout, stdout_log, task, attempt, self.sink.clone());
        let waiter = wait::Waiter {
            task,
            attempt,
            pid,
            started,
            stderr_path,
            drained,
            running: self.running.clone(),
            sink: self.sink.clone(),
        };
        waiter.spawn();
        Ok(())
    }
}

impl Executor for LocalExecutor {
    fn start(&mut self, req: StartRequest) {
        let result = match req.action {
            Action::Noop => Ok(()),
            _ => match self.launch(&req) {
                Ok(()) => return,
                Err(e) => Err(e.to_string()),
            },
        };
        let (task, attempt) = (req.task, req.attempt);
        (self.sink)(ExecEvent::Exited {
            task,
            attempt,
            result,
            usage: AttemptUsage::default(),
        });
    }

    fn kill(&mut self, task: TaskRef, attempt: AttemptNo) {
        if let Some(&pgid) = lock(&self.running).get(&(task, attempt)) {
            kill_group(pgid);
        }
    }

    fn kill_all(&mut self) {
        for &pgid in lock(&self.running).values() {
            kill_group(pgid);
        }
    }

    /// `SIGSTOP` to the attempt's process group.
    fn suspend(&mut self, task: TaskRef, attempt: AttemptNo) {
        if let Some(&pgid) = lock(&self.running).get(&(task, attempt)) {
            signal_group(pgid, libc::SIGSTOP);
        }
    }

    /// `SIGCONT` to the attempt's process group.
    fn resume(&mut self, task: TaskRef, attempt: AttemptNo) {
        if let Some(&pgid) = lock(&self.running).get(&(task, attempt)) {
            signal_group(pgid, libc::SIGCONT);
        }
    }
}

impl Drop for LocalExecutor {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// `SIGKILL` to a whole process group; a group that is already gone is fine.
pub(crate) fn kill_group(pgid: u32) {
    signal_group(pgid, libc::SIGKILL);
}

/// A signal to a whole process group; a group that is already gone is fine.
fn signal_group(pgid: u32, signal: libc::c_int) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
        unsafe { libc::kill(-pgid, signal) };
    }
}

fn lock(running: &Running) -> std::sync::MutexGuard<'_, HashMap<(TaskRef, AttemptNo), u32>> {
    running.lock().unwrap_or_else(PoisonError::into_inner)
}

fn create_dir(path: &Path, what: &'static str) -> Result<(), ExecError> {
    std::fs::create_dir_all(path).map_err(|e| ExecError::Prepare {
        what,
        path: path.to_path_buf(),
        reason: crate::error::os_reason(&e),
    })
}

fn create_file(path: &Path) -> Result<File, ExecError> {
    File::create(path).map_err(|e| ExecError::Prepare {
        what: "log file",
        path: path.to_path_buf(),
        reason: crate::error::os_reason(&e),
    })
}

/// A task name as a file name: no path separators, no leading dot.
fn file_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\0' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    match s.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None if s.is_empty() => "_".into(),
        None => s,
    }
}

/// The log file of an attempt's `stream` ("stdout" or "stderr"):
/// `<log_dir>/<name>.<attempt>.<stream>.log`. The one definition of that
/// name: readers (the API) call this too.
pub fn log_file(log_dir: &Path, name: &str, attempt: AttemptNo, stream: &str) -> PathBuf {
    log_dir.join(format!("{}.{attempt}.{stream}.log", file_safe(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_become_safe_file_names() {
        assert_eq!(file_safe("encode-3"), "encode-3");
        assert_eq!(file_safe("a/b"), "a_b");
        assert_eq!(file_safe(".."), "_.");
        assert_eq!(file_safe(""), "_");
    }
}
