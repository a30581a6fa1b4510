//! What a user does to a whole job besides cancelling it: suspend and
//! resume, retry what ended badly, change its priority.
//!
//! Suspension is a flag on the job, not a state: nothing of a suspended job
//! starts (its queue entries are dropped at the head and put back on
//! resume), its running attempts are stopped ([`Command::Suspend`]) and
//! their time limits stop counting (each deadline moves back by the time
//! the job spent suspended).
//!
//! A job that ended before the scheduler last started is not held in
//! memory; [`Scheduler::adopt`] takes it back from its snapshot so it can be
//! retried.

use crate::sched::Scheduler;
use crate::step::{Command, Event, Step};
use std::fmt;
use tessera_types::{Change, JobId, JobSnapshot, JobState, Millis, TaskRef, TaskState};

/// Why a job control event does not apply to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// The scheduler does not hold the job.
    UnknownJob(JobId),
    /// Suspend, resume or a priority change asked of a job that has ended.
    Ended {
        job: JobId,
        state: JobState,
    },
    AlreadySuspended(JobId),
    NotSuspended(JobId),
    /// Retry asked of a job that has not ended, or that succeeded.
    NotRetryable {
        job: JobId,
        state: JobState,
    },
    /// Retry asked of a job one of whose parent jobs ended as its condition
    /// rejects (it would be skipped again at once): `why` says which.
    ParentRejects {
        job: JobId,
        why: String,
    },
    /// [`Scheduler::adopt`] refused a snapshot: the job is held already, has
    /// not ended, or its record is not that of an ended job.
    NotAdoptable {
        job: JobId,
        why: String,
    },
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownJob(job) => write!(f, "job {job} is not held by the scheduler"),
            Self::Ended { job, state } => write!(f, "job {job} has already ended ({state})"),
            Self::AlreadySuspended(job) => write!(f, "job {job} is already suspended"),
            Self::NotSuspended(job) => write!(f, "job {job} is not suspended"),
            Self::NotRetryable { job, state } if state.is_terminal() => write!(
                f,
                "job {job} {state}; only a failed or cancelled job can be retried"
            ),
            Self::NotRetryable { job, state } => write!(
                f,
                "job {job} is {state}; wait until it ends (or cancel it) before retrying"
            ),
            Self::ParentRejects { job, why } => write!(
                f,
                "job {job} cannot be retried: {why}; retry that job first"
            ),
            Self::NotAdoptable { job, why } => {
                write!(f, "job {job} cannot be taken back by the scheduler: {why}")
            }
        }
    }
}

impl std::error::Error for ControlError {}

impl Scheduler {
    /// Whether a job control event ([`Event::SuspendJob`], `ResumeJob`,
    /// `RetryJob`, `SetPriority`) would apply; [`Scheduler::handle`]
    /// ignores one that would not. Other events always pass.
    pub fn check(&self, event: &Event) -> Result<(), ControlError> {
        let job = match event {
            Event::SuspendJob { job }
            | Event::ResumeJob { job }
            | Event::RetryJob { job }
            | Event::SetPriority { job, .. } => *job,
            _ => return Ok(()),
        };
        let j = self.jobs.get(&job).ok_or(ControlError::UnknownJob(job))?;
        let state = j.state;
        match event {
            Event::RetryJob { .. } => match state {
                JobState::Failed | JobState::Cancelled => match self.rejecting_parent(job) {
                    Some(why) => Err(ControlError::ParentRejects { job, why }),
                    None => Ok(()),
                },
                _ => Err(ControlError::NotRetryable { job, state }),
            },
            _ if state.is_terminal() => Err(ControlError::Ended { job, state }),
            Event::SuspendJob { .. } if j.suspended => Err(ControlError::AlreadySuspended(job)),
            Event::ResumeJob { .. } if !j.suspended => Err(ControlError::NotSuspended(job)),
            _ => Ok(()),
        }
    }

    /// Takes back a job that ended before this scheduler started, from its
    /// snapshot (the store's `load_job`), so that job control can act on it:
    /// a retry after a restart. Nothing of it runs until then; the step
    /// holds what a restore always does (dispatch), and clears a suspension
    /// the record kept (an ended job is never suspended). Refused for a job
    /// it already holds, one that has not ended (that is
    /// [`restore`](Scheduler::restore)'s), or a record in which the ended
    /// job still has a task that has not ended.
    pub fn adopt(&mut self, snap: &JobSnapshot, now: Millis) -> Result<Step, ControlError> {
        let job = snap.id;
        let refuse = |why: String| Err(ControlError::NotAdoptable { job, why });
        if self.jobs.contains_key(&job) {
            return refuse("it already holds it".into());
        }
        if !snap.state.is_terminal() {
            return refuse(format!("it has not ended ({})", snap.state));
        }
        if snap.tasks.len() != snap.spec.tasks.len() {
            return refuse(format!(
                "its record has {} task states for {} tasks",
                snap.tasks.len(),
                snap.spec.tasks.len()
            ));
        }
        if let Some((i, t)) = snap
            .tasks
            .iter()
            .enumerate()
            .find(|(_, t)| !t.state.is_terminal())
        {
            let name = &snap.spec.tasks[i].name;
            return refuse(format!("its task {name:?} is {} though it ended", t.state));
        }
        let mut step = self
            .restore(snap, &snap.batch_starts, now)
            .or_else(|e| refuse(format!("its tasks no longer resolve: {e}")))?;
        let j = self.jobs.get_mut(&job).expect("just restored");
        if std::mem::take(&mut j.suspended) {
            step.changes.push(Change::JobSuspended {
                job,
                suspended: false,
            });
        }
        Ok(step)
    }

    pub(crate) fn suspend_job(&mut self, job: JobId, now: Millis, step: &mut Step) {
        if self.check(&Event::SuspendJob { job }).is_err() {
            return;
        }
        let j = self.jobs.get_mut(&job).expect("checked");
        j.suspended = true;
        j.suspended_at = now;
        step.changes.push(Change::JobSuspended {
            job,
            suspended: true,
        });
        for (i, t) in j.tasks.iter().enumerate() {
            if t.state == TaskState::Running && t.killing.is_none() {
                let task = TaskRef::new(job, i as u32);
                if t.deadline > 0 {
                    self.deadlines.remove(&(t.deadline, task, t.attempt));
                }
                step.commands.push(Command::Suspend {
                    task,
                    attempt: t.attempt,
                });
            }
        }
    }

    pub(crate) fn resume_job(&mut self, job: JobId, now: Millis, step: &mut Step) {
        if self.check(&Event::ResumeJob { job }).is_err() {
            return;
        }
        self.unsuspend(job, now, step);
        let n = self.jobs[&job].tasks.len() as u32;
        for i in 0..n {
            let task = TaskRef::new(job, i);
            if self.jobs[&job].tasks[i as usize].state == TaskState::Ready {
                self.requeue(task);
            }
        }
    }

    /// Clears the flag: continues the stopped attempts, pushing their time
    /// limits back by the pause.
    pub(crate) fn unsuspend(&mut self, job: JobId, now: Millis, step: &mut Step) {
        let Some(j) = self.jobs.get_mut(&job).filter(|j| j.suspended) else {
            return;
        };
        j.suspended = false;
        let paused = now.saturating_sub(j.suspended_at);
        step.changes.push(Change::JobSuspended {
            job,
            suspended: false,
        });
        for (i, t) in j.tasks.iter_mut().enumerate() {
            if t.state != TaskState::Running {
                continue;
            }
            let task = TaskRef::new(job, i as u32);
            if t.deadline > 0 {
                t.deadline = t.deadline.saturating_add(paused);
                self.deadlines.insert((t.deadline, task, t.attempt));
            }
            if t.killing.is_none() {
                step.commands.push(Command::Resume {
                    task,
                    attempt: t.attempt,
                });
            }
        }
    }

    pub(crate) fn retry_job(&mut self, job: JobId, step: &mut Step) {
        if self.check(&Event::RetryJob { job }).is_err() {
            return;
        }
        let j = self.jobs.get_mut(&job).expect("checked");
        j.cancelled = false;
        j.fault = None;
        j.skipped = None;
        j.failed = 0;
        j.state = JobState::Running;
        self.active += 1;
        step.changes.push(Change::JobState {
            job,
            state: JobState::Running,
        });
        let n = j.tasks.len() as u32;
        for i in 0..n {
            let t = &mut self.jobs.get_mut(&job).expect("job").tasks[i as usize];
            if matches!(
                t.state,
                TaskState::Failed | TaskState::Cancelled | TaskState::Skipped
            ) {
                t.failures = 0;
                t.lost = 0;
                t.not_before = 0;
                let again = Some("retried".into());
                if self.set(TaskRef::new(job, i), TaskState::Waiting, again, step) {
                    self.jobs.get_mut(&job).expect("job").unfinished += 1;
                }
            }
        }
        // Tasks waiting again reopen the fan-ins they belong to.
        let j = self.jobs.get_mut(&job).expect("job");
        j.recount(0, 0);
        // Its parent jobs are counted again as they are now.
        let gated = !j.after.is_empty();
        j.gated = gated;
        let due: Vec<u32> = (0..n)
            .filter(|&i| j.tasks[i as usize].state == TaskState::Waiting && j.decidable(i as usize))
            .collect();
        for i in due {
            self.decide(TaskRef::new(job, i), step);
        }
        // Jobs still waiting on it wait for its new end.
        self.reopen_children(job);
        if gated {
            self.arm(job, step);
        }
        self.settle(job, step);
    }

    pub(crate) fn set_priority(&mut self, job: JobId, priority: i32, step: &mut Step) {
        if self.check(&Event::SetPriority { job, priority }).is_err() {
            return;
        }
        let j = self.jobs.get_mut(&job).expect("checked");
        if j.priority == priority {
            return;
        }
        j.priority = priority;
        step.changes.push(Change::JobPriority { job, priority });
        // Queue entries carry the old priority: queue the ready tasks again
        // (the old entries go stale).
        let n = j.tasks.len() as u32;
        for i in 0..n {
            if self.jobs[&job].tasks[i as usize].state == TaskState::Ready {
                self.enqueue(TaskRef::new(job, i));
            }
        }
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
