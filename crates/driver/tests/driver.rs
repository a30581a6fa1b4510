//! The driver end to end: a real SQLite file, real processes (or the
//! in-process executor where processes are not the point), and assertions on
//! what the store recorded.
//!
//! - `run`: DAGs, retries, time limits, cancellation, refused specs.
//! - `restart`: interrupt and resume, crash recovery with an orphan process,
//!   expansion across a restart.
//! - `quota`: a project held back by its quota, and usage restored after a restart.
//! - `control`: a job that failed before a restart, retried by the next driver.
//! - `users`: tasks running as another user share their job's directory.
//! - `nodes`: the node an attempt ran on is recorded; recovery leaves
//!   workers' pids alone.
//! - `after`: jobs that wait on jobs: resolution and its refusals, parents
//!   that ended before, a restart while children wait, retries.
//! - `hostile`: specs and events written to hurt (array-on-array fan-in,
//!   names alike once sanitised, endless losses, an illegal state move, a
//!   zero time limit).

#[path = "driver/after.rs"]
mod after;
#[path = "driver/control.rs"]
mod control;
#[path = "driver/hostile.rs"]
mod hostile;
#[path = "driver/nodes.rs"]
mod nodes;
#[path = "driver/quota.rs"]
mod quota;
#[path = "driver/restart.rs"]
mod restart;
#[path = "driver/run.rs"]
mod run;
#[path = "driver/users.rs"]
mod users;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tessera_driver::{Driver, DriverConfig, DriverHandle};
use tessera_exec::{InProcessExecutor, LocalConfig, LocalExecutor, TaskUids};
use tessera_store::{AttemptRecord, SqliteStore, Store, StoreError};
use tessera_types::{Action, JobId, TaskState};

/// A scratch directory holding the database, the workspace and the files
/// the tests' commands write.
pub(crate) struct Rig {
    dir: tempfile::TempDir,
}

impl Rig {
    pub(crate) fn new() -> Self {
        let rig = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(rig.file("")).unwrap();
        rig
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    pub(crate) fn workspace(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// A path under the directory the commands write their markers to.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("files").join(name)
    }

    pub(crate) fn config(&self, slots: u32) -> DriverConfig {
        let mut config = DriverConfig::new(slots, self.workspace());
        config.shutdown_grace = Duration::from_secs(5);
        config
    }

    /// Opens the database for a driver. A store just dropped by an earlier
    /// driver of the same test may still look locked for a moment: a child
    /// that another test's thread forked while the lock file was open holds
    /// a copy of its descriptor until it execs.
    pub(crate) fn store(&self) -> SqliteStore {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            match SqliteStore::open(self.db()) {
                Err(StoreError::Locked { .. }) if Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => return other.unwrap(),
            }
        }
    }

    /// A driver that runs real processes (which die with it).
    pub(crate) fn local(&self, slots: u32) -> Driver<SqliteStore, LocalExecutor> {
        self.local_as(slots, None)
    }

    /// A driver whose tasks run as their project's user from `uids`.
    pub(crate) fn local_as(
        &self,
        slots: u32,
        uids: Option<TaskUids>,
    ) -> Driver<SqliteStore, LocalExecutor> {
        let store = self.store();
        let mut config = self.config(slots);
        config.task_uids = uids;
        let make = |sink| {
            LocalExecutor::new(LocalConfig {
                op_program: "/bin/sh".into(),
                sink,
            })
        };
        Driver::new(store, make, config)
    }

    pub(crate) fn in_process(&self, slots: u32) -> Driver<SqliteStore, InProcessExecutor> {
        let store = self.store();
        Driver::new(store, InProcessExecutor::new, self.config(slots))
    }
}

/// A shell script as a task's action.
pub(crate) fn sh(script: &str) -> Action {
    Action::command(["sh", "-c", script])
}

/// A shell word for a path (the temp dir could hold anything).
pub(crate) fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Script: touch `started`, then wait until `gate` exists.
pub(crate) fn wait_for_gate(started: &Path, gate: &Path) -> String {
    format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.02; done",
        quote(started),
        quote(gate)
    )
}

/// Polls `cond` until it holds or `timeout` passes; whether it held.
pub(crate) fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Interrupts the driver from another thread once every one of `markers`
/// exists. The thread's result says whether they all appeared in time (it
/// interrupts anyway, so a failing test ends rather than hangs).
pub(crate) fn interrupt_when(
    handle: DriverHandle,
    markers: Vec<PathBuf>,
) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        let seen = eventually(Duration::from_secs(20), || {
            markers.iter().all(|m| m.exists())
        });
        handle.interrupt();
        seen
    })
}

/// Each task's name and state, in index order.
pub(crate) fn task_states(store: &impl Store, job: JobId) -> Vec<(String, TaskState)> {
    store
        .tasks(job)
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.state))
        .collect()
}

/// The attempts of the task named `name`.
pub(crate) fn attempts_of(store: &impl Store, job: JobId, name: &str) -> Vec<AttemptRecord> {
    let index = store
        .tasks(job)
        .unwrap()
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no task {name:?}"))
        .task
        .index;
    store
        .attempts(job)
        .unwrap()
        .into_iter()
        .filter(|a| a.task.index == index)
        .collect()
}

/// Whether a process exists (zombies included; the executor reaps its own).
pub(crate) fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
