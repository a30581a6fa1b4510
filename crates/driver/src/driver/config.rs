//! What a driver is told about its machine, how it fails, how a job run
//! ends, and who may watch it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_core::{ControlError, SpecError};
use tessera_exec::TaskUids;
use tessera_store::StoreError;
use tessera_types::{AttemptNo, Change, JobId, JobState, Millis, Progress, TaskRef};

/// What the driver needs to know about its machine.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// CPU slots on this machine (parallel attempts of 1 cpu each).
    pub slots: u32,
    /// Root of job workspaces: `<workspace>/jobs/<id>/{tasks/<name>,logs}`,
    /// each task's name written as [`folder_name`] gives it (injective).
    pub workspace: PathBuf,
    /// How long an interrupt waits for killed attempts to report.
    pub shutdown_grace: Duration,
    /// The uids projects' tasks run as (this process must be root): each
    /// attempt runs as its project's own user ([`TaskUids::user_of`]), its
    /// job's directory is shared with that user only ([`RunAs::share`]:
    /// the job's tasks may add files there for each other, the driver's
    /// `logs` and `tasks` stay its own). `None`: tasks run as this
    /// process's user.
    pub task_uids: Option<TaskUids>,
    /// Whether the executor can run tasks that name a container image (a
    /// Docker engine is there); such tasks are refused at submission
    /// otherwise.
    pub images: bool,
    /// The volumes tasks may mount into their containers, by name (see
    /// [`crate::volumes`]).
    pub volumes: crate::Volumes,
}

impl DriverConfig {
    pub fn new(slots: u32, workspace: impl Into<PathBuf>) -> Self {
        Self {
            slots,
            workspace: workspace.into(),
            shutdown_grace: Duration::from_secs(10),
            task_uids: None,
            images: false,
            volumes: crate::Volumes::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid job: {0}")]
    Spec(#[from] SpecError),
    #[error("job {0} does not exist")]
    NoSuchJob(JobId),
    /// A job control request the job's state does not allow (resume of a
    /// job that is not suspended, retry of a running or succeeded job...).
    #[error("{0}")]
    Control(#[from] ControlError),
    /// The job has not ended but this scheduler does not run it (a driver
    /// that recovered only another job: `tessera encode`).
    #[error("job {0} is not run by this scheduler; change it where it runs")]
    NotHeld(JobId),
    #[error("the scheduler has stopped")]
    Stopped,
}

/// How [`Driver::run_job`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Finished(JobState),
    /// Interrupted (Ctrl-C): running attempts were killed and put back in the
    /// queue, so running the job again resumes it.
    Interrupted,
}

/// Sees what happens, for progress displays. Called on the driver's thread;
/// keep it quick.
pub trait Observer {
    /// Changes just committed.
    fn changes(&mut self, _changes: &[Change]) {}
    fn progress(&mut self, _task: TaskRef, _attempt: AttemptNo, _progress: Progress) {}
}

impl Observer for () {}

/// A clock in milliseconds since the Unix epoch.
pub struct SystemClock;

impl SystemClock {
    pub fn now() -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis)
    }
}
