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
