//! Attempts as local child processes.

mod output;
mod wait;

pub use output::last_line;

use crate::error::os_reason;
use crate::spawn::SpawnRequest;
use crate::{EventSink, ExecError, ExecEvent, Executor, Spawner, StartRequest};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tessera_types::{Action, AttemptNo, AttemptUsage, TaskRef, DEFAULT_SHELL, REACH_ENV};

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

/// Runs each attempt as a local process, started by a [`Spawner`].
///
/// Each attempt gets its own process group (so a kill takes its
/// descendants too), standard input from `/dev/null`, the executor's
/// environment plus the request's `env` plus [`ATTEMPT_ENV`] and its reach
/// ([`REACH_ENV`](tessera_types::REACH_ENV)), and `workdir` as its current
/// directory, as the request's user (its project's [`RunAs`]) when it names
/// one: built-in ops included, since a job spec may name any op with any
/// arguments, so an op is no more trusted than a command. The working
/// directory is made that user's; the log files stay this process's
/// (opened here, not following links, inherited as descriptors). Lines of standard output that follow
/// the progress protocol ([`tessera_types::parse_progress_line`]) become
/// `Progress` events; the rest go to `<log_dir>/<name>.<attempt>.stdout.log`.
/// Standard error goes to `<log_dir>/<name>.<attempt>.stderr.log`, and its
/// last non-empty line ends up in the failure message. When the attempt's
/// main process exits, whatever it left behind in its group is killed.
///
/// Attempts are children of the spawner, which reaps them (with `wait4`,
/// for their resource usage) when this executor says so. Their peak memory
/// (`max_rss_kb`) is their own as long as the spawner was started while
/// this program was small: Linux counts what a process starts with (a copy
/// of its parent's resident memory) in its peak.
///
/// Two threads per running attempt: one drains standard output, one waits
/// for the spawner's word on its end. Each attempt dies with the spawner
/// (`PR_SET_PDEATHSIG`), and the spawner kills every attempt when its
/// executor (its last handle) goes away, however this program ends. Only
/// the attempt's main process gets the signal; after a crash, its
/// descendants are found and killed with
/// [`kill_orphan_group`](crate::kill_orphan_group).
///
/// Dropping the executor kills every running attempt.
pub struct LocalExecutor {
    op_program: PathBuf,
    sink: EventSink,
    running: Running,
    /// The spawner, or why there is none (every start then fails with it).
    spawner: Result<Spawner, ExecError>,
}

impl LocalExecutor {
    /// An executor with a spawner of its own, forked now: attempts' peak
    /// memory includes what this program has resident at this moment. A
    /// program that grows first should start a [`Spawner`] early and use
    /// [`with_spawner`](Self::with_spawner).
    pub fn new(config: LocalConfig) -> Self {
        Self::with_spawner(config, Spawner::start())
    }

    /// An executor that starts its attempts with `spawner` (or fails every
    /// start with the error, if it could not be started).
    pub fn with_spawner(config: LocalConfig, spawner: Result<Spawner, ExecError>) -> Self {
        Self {
            op_program: config.op_program,
            sink: config.sink,
            running: Running::default(),
            spawner,
        }
    }

    /// How many attempts have a process right now.
    pub fn running(&self) -> usize {
        lock(&self.running).len()
    }

    fn launch(&self, req: &StartRequest) -> Result<(), ExecError> {
        let spawner = self.spawner.as_ref().map_err(Clone::clone)?;
        let argv: Vec<OsString> = match &req.action {
            Action::Noop => unreachable!("no-ops never reach launch"),
            Action::Op { op, args } => [self.op_program.as_os_str(), "op".as_ref(), op.as_ref()]
                .into_iter()
                .map(OsString::from)
                .chain(args.iter().map(OsString::from))
                .collect(),
            Action::Command { argv } if argv.is_empty() => return Err(ExecError::EmptyCommand),
            Action::Command { argv } => argv.iter().map(OsString::from).collect(),
            Action::Script { script, shell } => {
                let shell = shell.as_deref().unwrap_or(DEFAULT_SHELL);
                [shell, "-c", script].map(OsString::from).into()
            }
        };
        let user = req.user.as_ref().filter(|u| u.switches());
        let crate::AttemptFiles {
            stdout: stdout_log,
            stdout_path,
            stderr: stderr_log,
            stderr_path,
        } = crate::prepare_attempt(req, user)?;
        let (stdout, stdout_tx) = pipe().map_err(|e| ExecError::Prepare {
            what: "pipe for",
            path: stdout_path,
            reason: os_reason(&e),
        })?;

        let mut env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
        env.extend(req.env.iter().map(|(k, v)| (k.into(), v.into())));
        env.insert(
            ATTEMPT_ENV.into(),
            attempt_marker(req.task, req.attempt).into(),
        );
        if !req.reach.grants.is_empty() {
            env.insert(REACH_ENV.into(), req.reach.to_env().into());
        }
        let started = Instant::now();
        let child = spawner.spawn(&SpawnRequest {
            argv,
            env: env.into_iter().collect(),
            cwd: &req.workdir,
            user,
            stdout: stdout_tx.as_raw_fd(),
            stderr: stderr_log.as_raw_fd(),
        })?;
        // The attempt has its own copies; the pump must see end of file
        // when the attempt's are closed.
        drop((stdout_tx, stderr_log));
        let pid = child.pid;

        let (task, attempt) = (req.task, req.attempt);
        lock(&self.running).insert((task, attempt), pid);
        (self.sink)(ExecEvent::Started {
            task,
            attempt,
            pid,
            node: None,
        });
        let drained = output::spawn_pump(stdout, stdout_log, task, attempt, self.sink.clone());
        let waiter = wait::Waiter {
            task,
            attempt,
            child,
            spawner: spawner.clone(),
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

/// A pipe for an attempt's standard output: (read end, write end), both
/// close-on-exec (the attempt gets the write end as its descriptor 1).
fn pipe() -> std::io::Result<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just created and are owned here.
    unsafe { Ok((File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
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
