//! Reaping an attempt's process: wait for the spawner's word that it has
//! exited (not yet reaped), take it out of the running set and kill what it
//! left in its group (its pid cannot be recycled while it is a zombie), then
//! have the spawner reap it with `wait4` for its resource usage, and report.

use super::{kill_group, lock, output, Running};
use crate::error::os_reason;
use crate::spawn::{Child, ChildEvent};
use crate::{EventSink, ExecError, ExecEvent, Spawner};
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
    pub child: Child,
    pub spawner: Spawner,
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
        let pid = self.child.pid;
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
        let pid = self.child.pid;
        match self.child.events.recv() {
            Ok(ChildEvent::Exited) => {}
            Ok(other) => unreachable!("{other:?} before Exited"),
            Err(mpsc::RecvError) => return Err(self.spawner_gone()),
        }
        {
            let mut running = lock(&self.running);
            running.remove(&(self.task, self.attempt));
            // Leftovers in the group die with the attempt.
            kill_group(pid);
        }
        self.spawner.reap(pid);
        let (errno, status, cpu_us, max_rss_kb) = match self.child.events.recv() {
            Ok(ChildEvent::Reaped {
                errno,
                status,
                cpu_us,
                max_rss_kb,
            }) => (errno, status, cpu_us, max_rss_kb),
            Ok(other) => unreachable!("{other:?} after Exited"),
            Err(mpsc::RecvError) => return Err(self.spawner_gone()),
        };
        if errno != 0 {
            let e = std::io::Error::from_raw_os_error(errno);
            return Err(ExecError::Wait {
                pid,
                reason: os_reason(&e),
            });
        }
        let usage = AttemptUsage {
            wall_ms: self.started.elapsed().as_millis() as u64,
            cpu_ms: cpu_us / 1000,
            max_rss_kb,
            ..Default::default()
        };
        Ok((status, usage))
    }

    /// The spawner died with the attempt running: the attempt died with it
    /// (`PR_SET_PDEATHSIG`); what it started may not have, so its group is
    /// killed if it still carries the attempt's marker.
    fn spawner_gone(&self) -> ExecError {
        lock(&self.running).remove(&(self.task, self.attempt));
        let _ = crate::kill_orphan_group(self.child.pid, self.task, self.attempt);
        ExecError::SpawnerStopped {
            reason: self
                .spawner
                .stopped()
                .unwrap_or_else(|| "it went away".into()),
        }
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
