//! What the store hands back to readers (the CLI, the API): plain rows.

use tessera_types::{
    AttemptNo, AttemptOutcome, AttemptUsage, JobId, JobState, Millis, ProjectId, TaskRef, TaskSpec,
    TaskState,
};

/// A job's row.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    pub id: JobId,
    /// The project the job was submitted to; `None` for jobs run outside
    /// the service (the `encode` and `run` commands).
    pub project: Option<ProjectId>,
    pub name: String,
    /// The caller's key for finding the job again (e.g. the encode command's
    /// input and settings), if it gave one.
    pub key: Option<String>,
    pub state: JobState,
    pub created_at: Millis,
    /// When the job was created, changed state or grew tasks (task changes
    /// alone do not touch it).
    pub updated_at: Millis,
    /// When the job last reached a terminal state; `None` while it is not in one.
    pub finished_at: Option<Millis>,
    /// Whether the job is suspended (nothing of it starts; its running
    /// attempts are stopped). A flag beside `state`.
    pub suspended: bool,
    /// Its priority offset, added to each task's priority when queued.
    pub priority: i32,
}

/// A task's row.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRecord {
    pub task: TaskRef,
    pub name: String,
    pub spec: TaskSpec,
    pub state: TaskState,
    /// Its latest attempt number (0 before the first).
    pub attempt: AttemptNo,
    /// Attempts that counted against its retries.
    pub failures: u32,
    pub not_before: Millis,
    /// Why it is in its state (e.g. why it was skipped or failed), if known.
    pub reason: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// An attempt's row.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRecord {
    pub task: TaskRef,
    pub number: AttemptNo,
    /// The worker that ran it (its registered name); `None` for this
    /// machine, or while no start was reported.
    pub node: Option<String>,
    pub started_at: Millis,
    /// `None` while the attempt has not ended (or its end was never recorded).
    pub ended_at: Option<Millis>,
    /// `None` while the attempt has not ended.
    pub outcome: Option<AttemptOutcome>,
    /// `None` while the attempt has not ended. Its `transfer_ms` and
    /// `transfer_bytes` are what a worker without the shared filesystem
    /// spent moving the attempt's files (0 elsewhere).
    pub usage: Option<AttemptUsage>,
    /// The OS process id, when the executor reported one.
    pub pid: Option<u32>,
}

impl AttemptRecord {
    /// Whether the attempt's end has been recorded.
    pub fn is_open(&self) -> bool {
        self.outcome.is_none()
    }
}

/// An attempt's process start, as its executor reported it: for
/// [`Store::set_attempts_started`](crate::Store::set_attempts_started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartedAttempt {
    pub task: TaskRef,
    pub attempt: AttemptNo,
    /// The OS process id (on `node`).
    pub pid: u32,
    /// The worker that runs it; `None` for this machine.
    pub node: Option<String>,
}

/// What one node's attempts that ended since some time cost, for
/// [`Store::node_usage_since`](crate::Store::node_usage_since).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeUsage {
    /// The worker's name; `None` for this machine.
    pub node: Option<String>,
    /// How many attempts ended.
    pub attempts: u64,
    /// Their measured cpu time.
    pub cpu_ms: u64,
    pub transfer_ms: u64,
    pub transfer_bytes: u64,
}
