//! Rebuilding the scheduler after a restart: a job from its snapshot.

use crate::after::job_fan_ins;
use crate::dag::{resolve, SpecError};
use crate::sched::{Job, Scheduler};
use crate::step::Step;
use std::sync::Arc;
use tessera_types::{AttemptNo, JobSnapshot, Millis, TaskRef, TaskState};

impl Scheduler {
    /// Rebuilds a job from the store after a restart. `batch_starts` are the
    /// first indices of each batch of tasks (0, then one per expansion):
    /// selectors resolve within their own batch and earlier ones, exactly as
    /// when the tasks were first added. Attempts that were running are lost.
    /// A job with job dependencies that had not been released waits for
    /// them again, counted as they are now: tell it first how the parents
    /// it does not hold ended ([`Scheduler::unknown_parents`]).
    pub fn restore(
        &mut self,
        snap: &JobSnapshot,
        batch_starts: &[u32],
        now: Millis,
    ) -> Result<Step, SpecError> {
        let n = snap.spec.tasks.len();
        let mut bounds: Vec<usize> = batch_starts
            .iter()
            .map(|&b| b as usize)
            .filter(|&b| b < n)
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        if bounds.first() != Some(&0) {
            bounds.insert(0, 0);
        }
        bounds.push(n);
        let mut resolved = Vec::with_capacity(bounds.len());
        for w in bounds.windows(2) {
            let existing: Vec<&str> = snap.spec.tasks[..w[0]]
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            // A restored job ran before: its images were accepted then. If
            // the Docker executor is gone now, its attempts fail, saying so.
            let offer = crate::dag::Offer {
                images: true,
                ..self.offer()
            };
            // Accepted once: not held to today's budgets.
            let batch = &snap.spec.tasks[w[0]..w[1]];
            resolved.push((w[0], w[1], resolve(&existing, batch, offer, None)?));
        }
        let project = self.project(snap.project);
        let mut job = Job::new(project, snap.state, snap.suspended, snap.priority);
        job.suspended_at = now;
        job.name = Arc::from(snap.spec.name.as_str());
        job.after = job_fan_ins(&snap.spec.after);
        // Releasing a job always readies a task, and a released job that
        // has not ended always has one ready or running.
        let released = snap
            .tasks
            .iter()
            .any(|t| matches!(t.state, TaskState::Ready | TaskState::Running));
        job.gated = !job.after.is_empty() && !snap.state.is_terminal() && !released;
        let gated = job.gated;
        self.ended.remove(&snap.id);
        self.jobs.insert(snap.id, job);
        if !snap.state.is_terminal() {
            self.active += 1;
        }
        let mut step = Step::default();
        // Every batch is in place before anything is decided.
        for (from, to, r) in resolved {
            let states = snap.tasks.get(from..to.min(snap.tasks.len()));
            self.attach(
                snap.id,
                snap.spec.tasks[from..to].iter().cloned(),
                r,
                states,
            );
        }
        self.wake(snap.id, 0, &mut step);
        let job = self.jobs.get_mut(&snap.id).expect("just inserted");
        let running: Vec<(u32, AttemptNo)> = job
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.state == TaskState::Running)
            .map(|(i, t)| (i as u32, t.attempt))
            .collect();
        for (i, attempt) in running {
            // Its slot was never taken in this process.
            let task = TaskRef::new(snap.id, i);
            self.occupy(task, now);
            self.lost(
                task,
                attempt,
                "tessera restarted while it ran".into(),
                now,
                &mut step,
            );
        }
        if gated {
            self.arm(snap.id, &mut step);
        }
        self.settle(snap.id, &mut step);
        self.flush(&mut step);
        self.dispatch(now, &mut step);
        Ok(step)
    }
}
