//! What happens when the scheduler catches itself in a bug: a task asked to
//! make a move [`TaskState::transition`](tessera_types::TaskState::transition)
//! refuses.
//!
//! Such a move is never made. Its job's bookkeeping can no longer be
//! trusted, so the job is stopped, in debug and release builds alike: what
//! has not started is cancelled, what runs is killed, and the job ends
//! *failed*, every task it stopped carrying the reason (a `Change` the store
//! records). The step also carries a [`Command::Fault`] so the driver logs
//! it. Other jobs go on. A user may retry the job like any failed one.

use crate::sched::Scheduler;
use crate::step::{Command, Step};
use tessera_types::{Change, JobState, Millis, TaskRef, TaskState};

impl crate::sched::Job {
    /// The reason given to tasks a cancel or a fault ends before they run.
    pub(crate) fn stop_reason(&self) -> String {
        self.fault.clone().unwrap_or_else(|| "job cancelled".into())
    }
}

impl Scheduler {
    /// Stops the jobs of the illegal moves seen during this call.
    pub(crate) fn flush_faults(&mut self, step: &mut Step) {
        while !self.faults.is_empty() {
            for (task, message) in std::mem::take(&mut self.faults) {
                self.stop_for_fault(task, message, step);
            }
        }
    }

    fn stop_for_fault(&mut self, task: TaskRef, message: String, step: &mut Step) {
        let Some(j) = self.jobs.get_mut(&task.job) else {
            return;
        };
        let reason = format!(
            "stopped by an internal error of the scheduler ({message}); this is a bug in \
             Tessera, please report it, then retry the job"
        );
        step.commands.push(Command::Fault {
            job: task.job,
            message: reason.clone(),
        });
        if j.fault.is_some() {
            return; // already stopping
        }
        j.fault = Some(reason);
        if !j.state.is_terminal() {
            self.cancel_job(task.job, step);
        } else if j.state != JobState::Failed {
            j.state = JobState::Failed;
            step.changes.push(Change::JobState {
                job: task.job,
                state: JobState::Failed,
            });
        }
    }

    /// For tests of the path above only: asks for the move `task` ->
    /// `state` exactly as the scheduler's own code does, so that an illegal
    /// one (which no sequence of events makes) can be provoked. A legal one
    /// is made without any of the bookkeeping around it.
    #[doc(hidden)]
    pub fn force_move_for_tests(&mut self, task: TaskRef, state: TaskState, now: Millis) -> Step {
        let mut step = Step::default();
        if self.task(task).is_some() {
            self.set(task, state, Some("forced by a test".into()), &mut step);
        }
        self.flush(&mut step);
        self.dispatch(now, &mut step);
        step
    }
}
