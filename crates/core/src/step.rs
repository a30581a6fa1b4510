//! What goes in and out of the scheduler: events, commands, steps.

use std::sync::Arc;
use tessera_types::{AttemptNo, AttemptUsage, Change, JobId, NodeId, TaskRef, TaskSpec};

/// Something that happened, fed to [`Scheduler::handle`](crate::Scheduler::handle).
#[derive(Debug, Clone)]
pub enum Event {
    /// An attempt's process ended. `expansion` holds the tasks an expanding
    /// task asked to add (read by the driver from its expansion file).
    Exited {
        task: TaskRef,
        attempt: AttemptNo,
        result: Result<(), String>,
        usage: AttemptUsage,
        expansion: Option<Vec<TaskSpec>>,
    },
    /// Nobody knows how the attempt ended (its node or the scheduler went away).
    Lost {
        task: TaskRef,
        attempt: AttemptNo,
        reason: String,
    },
    /// Cancel the whole job: queued tasks end at once, running ones are killed.
    CancelJob { job: JobId },
    /// Start nothing more of the job and stop its running attempts (their
    /// time limits stop counting). Ignored for an ended or suspended job.
    SuspendJob { job: JobId },
    /// Undo [`Event::SuspendJob`]: continue its attempts, queue its ready tasks.
    ResumeJob { job: JobId },
    /// Run again what ended badly in a failed or cancelled job: its failed,
    /// cancelled and skipped tasks wait again with their failures reset,
    /// succeeded ones are kept. Ignored for a job in any other state (ask
    /// [`Scheduler::check`](crate::Scheduler::check) first).
    RetryJob { job: JobId },
    /// Sets the job's priority offset, added to each task's own priority in
    /// its project's ready queue.
    SetPriority { job: JobId, priority: i32 },
}

/// What the driver must do, after committing the step's changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Start {
        task: TaskRef,
        attempt: AttemptNo,
        spec: Arc<TaskSpec>,
        node: NodeId,
    },
    Kill {
        task: TaskRef,
        attempt: AttemptNo,
    },
    /// Stop the attempt where it is (SIGSTOP its process group).
    Suspend {
        task: TaskRef,
        attempt: AttemptNo,
    },
    /// Continue a suspended attempt (SIGCONT).
    Resume {
        task: TaskRef,
        attempt: AttemptNo,
    },
    /// The scheduler caught itself in a bug and stopped `job` (its tasks
    /// carry the reason, the job ends failed): log `message`.
    Fault {
        job: JobId,
        message: String,
    },
}

/// The output of one call: durable changes first, then commands.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Step {
    pub changes: Vec<Change>,
    pub commands: Vec<Command>,
}

impl Step {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.commands.is_empty()
    }
    pub fn append(&mut self, mut other: Step) {
        self.changes.append(&mut other.changes);
        self.commands.append(&mut other.commands);
    }
}
