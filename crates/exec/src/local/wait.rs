//! Reaping an attempt's process: wait for its exit without reaping it, take
//! it out of the running set and kill what it left in its group (its pid
//! cannot be recycled while it is a zombie), then reap it with `wait4` for
//! its resource usage, and report.

use super::{kill_group, lock, output, Running};
use crate::error::os_reason;
use crate::{EventSink, ExecError, ExecEvent};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tessera_types::{AttemptNo, AttemptUsage, TaskRef};

/// How long the exit report waits for standard output to drain after the
/// process group is gone (a descendant that left the group may hold the pipe).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

pub(super) struct Waiter {
    pub task: TaskRef,
    pub attempt: AttemptNo,
    pub pid: u32,
    pub started: Instant,
    pub stderr_path: PathBuf,
    pub drained: mpsc::Receiver<()>,
    pub running: Running,
    pub sink: EventSink,
}

impl Waiter {
    /// Waits on a thread of its own; if none can be had, kills the attempt
    /// and waits right here.
    pub(super) fn spawn(self) {
        let pid = self.pid;
        let name = format!("tessera-wait-{}.{}", self.task, self.attempt);
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(self)));
        let theirs = slot.clone();
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            if let Some(w) = theirs.lock().ok().and_then(|mut s| s.take()) {
                w.run();
            }
        });
        if spawned.is_err() {
            kill_group(pid);
            if let Some(w) = slot.lock().ok().and_then(|mut s| s.take()) {
                w.run();
            }
        }
    }

    fn run(self) {
        let (result, usage) = match self.reap() {
            Ok((status, usage)) => (self.judge(status), usage),
            Err(e) => (Err(e.to_string()), AttemptUsage::default()),
        };
        // Progress lines come before the end, unless something holds the pipe.
        let _ = self.drained.recv_timeout(DRAIN_GRACE);
        let (task, attempt) = (self.task, self.attempt);
        (self.sink)(ExecEvent::Exited {
            task,
            attempt,
            result,
            usage,
        });
    }

    fn reap(&self) -> Result<(libc::c_int, AttemptUsage), ExecError> {
        let pid = self.pid as libc::pid_t;
        let fail = |e: std::io::Error| ExecError::Wait {
            pid: self.pid,
            reason: os_reason(&e),
        };
        loop {
            // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid writes only into `info`.
            let rc = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if rc == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                lock(&self.running).remove(&(self.task, self.attempt));
                return Err(fail(e));
            }
        }
        {
            let mut running = lock(&self.running);
            running.remove(&(self.task, self.attempt));
            // Leftovers in the group die with the attempt.
            kill_group(self.pid);
        }
        let mut status: libc::c_int = 0;
        // SAFETY: a zeroed rusage is a valid out-parameter for wait4.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: wait4 writes only into `status` and `ru`.
            let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            if rc == pid {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(fail(e));
            }
        }
        let ms = |t: libc::timeval| (t.tv_sec as u64) * 1000 + (t.tv_usec as u64) / 1000;
        let usage = AttemptUsage {
            wall_ms: self.started.elapsed().as_millis() as u64,
            cpu_ms: ms(ru.ru_utime) + ms(ru.ru_stime),
            max_rss_kb: ru.ru_maxrss.max(0) as u64,
        };
        Ok((status, usage))
    }

    fn judge(&self, status: libc::c_int) -> Result<(), String> {
        if libc::WIFEXITED(status) {
            match libc::WEXITSTATUS(status) {
                0 => Ok(()),
                code => {
                    let stderr = output::last_line(&self.stderr_path);
                    Err(ExecError::Status { code, stderr }.to_string())
                }
            }
        } else if libc::WIFSIGNALED(status) {
            Err(ExecError::Signal {
                signal: libc::WTERMSIG(status),
            }
            .to_string())
        } else {
            Err(format!("ended with wait status {status:#x}"))
        }
    }
}
