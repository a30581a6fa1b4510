//! The durable record of what the scheduler decided. The pure core returns a
//! list of `Change`s with every step; the driver commits them to the store
//! (one transaction per batch) *before* it acts on the step's commands, and
//! the store rebuilds the core's state from them after a crash.

use crate::{
    AttemptNo, AttemptOutcome, AttemptUsage, JobId, JobState, Millis, NodeId, ProjectId, TaskRef,
    TaskSpec, TaskState,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    JobState {
        job: JobId,
        state: JobState,
    },
    /// Tasks appended to a job by an expanding task (the job's first tasks are
    /// written when the job is created). Indices run from `first_index`.
    TasksAdded {
        job: JobId,
        first_index: u32,
        tasks: Vec<TaskSpec>,
    },
    /// A task moved. `attempt` is its latest attempt number (0 before the
    /// first), `failures` the attempts that counted against its retries,
    /// `not_before` when a ready task may start (retry backoff).
    Task {
        task: TaskRef,
        state: TaskState,
        attempt: AttemptNo,
        failures: u32,
        not_before: Millis,
        reason: Option<String>,
    },
    AttemptStarted {
        task: TaskRef,
        attempt: AttemptNo,
        node: NodeId,
        at: Millis,
    },
    AttemptEnded {
        task: TaskRef,
        attempt: AttemptNo,
        outcome: AttemptOutcome,
        usage: AttemptUsage,
        at: Millis,
    },
    /// The job was suspended (nothing of it starts; its running attempts are
    /// stopped) or resumed. A flag beside the job's state, not a state.
    JobSuspended {
        job: JobId,
        suspended: bool,
    },
    /// The job's priority offset changed: added to each of its tasks' own
    /// priority in the ready queue.
    JobPriority {
        job: JobId,
        priority: i32,
    },
}

/// A task as the store remembers it, enough to rebuild the core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSnapshot {
    pub state: TaskState,
    pub attempt: AttemptNo,
    pub failures: u32,
    pub not_before: Millis,
}

/// An unfinished job as the store remembers it. `spec.tasks` includes tasks
/// added by expansion, in index order; `tasks[i]` is the state of `spec.tasks[i]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSnapshot {
    pub id: JobId,
    pub spec: crate::JobSpec,
    pub state: JobState,
    pub tasks: Vec<TaskSnapshot>,
    /// The first task index of each batch (0, then one per expansion), so
    /// selectors resolve again exactly as they did when the tasks were added.
    #[serde(default)]
    pub batch_starts: Vec<u32>,
    /// The project that owns the job (quotas and fair share); `None` for
    /// jobs of no project, which share one implicit project.
    #[serde(default)]
    pub project: Option<ProjectId>,
    /// Whether the job is suspended (see [`Change::JobSuspended`]).
    #[serde(default)]
    pub suspended: bool,
    /// The job's priority offset (see [`Change::JobPriority`]).
    #[serde(default)]
    pub priority: i32,
}

impl Change {
    /// The job the change is about.
    pub fn job(&self) -> JobId {
        match self {
            Change::JobState { job, .. }
            | Change::TasksAdded { job, .. }
            | Change::JobSuspended { job, .. }
            | Change::JobPriority { job, .. } => *job,
            Change::Task { task, .. }
            | Change::AttemptStarted { task, .. }
            | Change::AttemptEnded { task, .. } => task.job,
        }
    }
}
