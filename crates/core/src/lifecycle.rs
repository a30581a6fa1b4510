//! A task's life after it starts: how attempts end, retries, failures,
//! cancellation, expansion, and how an ending wakes the task's dependents.

use crate::dag::{resolve, SpecError};
use crate::limits::{check_limits, MAX_LINKS};
use crate::sched::{KillReason, Scheduler, MAX_LOST};
use crate::step::{Command, Step};
use tessera_types::{
    AttemptNo, AttemptOutcome, AttemptUsage, Change, Condition, JobId, JobState, Millis, TaskRef,
    TaskSpec, TaskState,
};

impl Scheduler {
    /// A waiting task whose fan-ins have all closed (ready), or one of
    /// whose fan-ins rejects (skipped); otherwise it keeps waiting.
    pub(crate) fn decide(&mut self, task: TaskRef, step: &mut Step) {
        let job = self.jobs.get(&task.job).expect("job exists");
        let t = &job.tasks[task.index as usize];
        if t.state != TaskState::Waiting {
            return;
        }
        if job.cancelled {
            let reason = job.stop_reason();
            self.finish(task, TaskState::Cancelled, Some(reason), step);
            return;
        }
        if let Some(reason) = job.skipped.clone() {
            self.finish(task, TaskState::Skipped, Some(reason), step);
            return;
        }
        if job.gated {
            return; // its parent jobs decide first (see `after.rs`)
        }
        // Only a member that has ended can reject (one still retrying may yet succeed).
        let rejected = t.waits_on.iter().find_map(|&f| {
            let f = &job.fan_ins[f as usize];
            f.barrier.rejected_by.map(|p| (p, f.barrier.condition))
        });
        match rejected {
            Some((p, cond)) => {
                let parent = &job.tasks[p as usize];
                let reason = format!(
                    "dependency {:?} ended {} and the condition is {}",
                    parent.spec.name,
                    parent.state,
                    condition_str(cond)
                );
                self.finish(task, TaskState::Skipped, Some(reason), step);
            }
            None if t.open_fan_ins > 0 => {} // still waiting for the rest
            None => {
                if self.set(task, TaskState::Ready, None, step) {
                    self.requeue(task);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn exited(
        &mut self,
        task: TaskRef,
        attempt: AttemptNo,
        result: Result<(), String>,
        usage: AttemptUsage,
        expansion: Option<Vec<TaskSpec>>,
        now: Millis,
        step: &mut Step,
    ) {
        let Some(t) = self.task(task) else { return };
        if t.state != TaskState::Running || t.attempt != attempt {
            return; // fenced: a stale attempt's report
        }
        let killing = t.killing;
        let expands = t.spec.expands;
        let cpu_ms = crate::fair::charge(&usage, t.spec.resources.cpu);
        self.release(task, attempt);
        let p = self.jobs[&task.job].project;
        self.projects[p].charge(cpu_ms, now, &self.policy);
        let outcome = match (killing, result) {
            (Some(KillReason::Cancel), _) => AttemptOutcome::Cancelled,
            (Some(KillReason::TimeLimit), _) => AttemptOutcome::TimedOut,
            (None, Ok(())) => match expansion.filter(|e| expands && !e.is_empty()) {
                Some(new) => match self.expand(task.job, new, now, step) {
                    Ok(()) => AttemptOutcome::Succeeded,
                    Err(e) => AttemptOutcome::Failed {
                        message: format!("its expansion was refused: {e}"),
                    },
                },
                None => AttemptOutcome::Succeeded,
            },
            (None, Err(message)) => AttemptOutcome::Failed { message },
        };
        step.changes.push(Change::AttemptEnded {
            task,
            attempt,
            outcome: outcome.clone(),
            usage,
            at: now,
        });
        match outcome {
            AttemptOutcome::Succeeded => self.finish(task, TaskState::Succeeded, None, step),
            AttemptOutcome::Cancelled => {
                self.finish(task, TaskState::Cancelled, Some("cancelled".into()), step)
            }
            AttemptOutcome::TimedOut | AttemptOutcome::Failed { .. } => {
                self.failed(task, outcome.describe(), now, step)
            }
            AttemptOutcome::Lost { .. } => unreachable!("not produced here"),
        }
    }

    pub(crate) fn lost(
        &mut self,
        task: TaskRef,
        attempt: AttemptNo,
        reason: String,
        now: Millis,
        step: &mut Step,
    ) {
        let Some(t) = self.task(task) else { return };
        if t.state != TaskState::Running || t.attempt != attempt {
            return;
        }
        let killing = t.killing;
        self.release(task, attempt);
        let outcome = AttemptOutcome::Lost { reason };
        let describe = outcome.describe();
        step.changes.push(Change::AttemptEnded {
            task,
            attempt,
            outcome,
            usage: AttemptUsage::default(),
            at: now,
        });
        let t = self.task_mut(task).expect("exists");
        t.lost = t.lost.saturating_add(1);
        let lost = t.lost;
        if killing == Some(KillReason::Cancel) || self.jobs[&task.job].cancelled {
            self.finish(task, TaskState::Cancelled, Some("cancelled".into()), step);
        } else if lost >= MAX_LOST {
            let reason = format!("{describe} ({MAX_LOST} attempts lost; giving up)");
            self.finish(task, TaskState::Failed, Some(reason), step);
        } else if self.set(task, TaskState::Ready, Some(describe), step) {
            self.enqueue(task);
        }
    }

    pub(crate) fn release(&mut self, task: TaskRef, attempt: AttemptNo) {
        let t = self.task_mut(task).expect("exists");
        t.killing = None;
        let (cpu, memory_mb) = (t.spec.resources.cpu, t.spec.resources.memory_mb);
        let started = t.started;
        let deadline = std::mem::take(&mut t.deadline);
        if deadline > 0 {
            self.deadlines.remove(&(deadline, task, attempt));
        }
        self.used = self.used.saturating_sub(cpu);
        let p = self.jobs[&task.job].project;
        self.projects[p].vacate(cpu, memory_mb, started);
    }

    pub(crate) fn failed(&mut self, task: TaskRef, reason: String, now: Millis, step: &mut Step) {
        let t = self.task_mut(task).expect("exists");
        t.failures += 1;
        if t.failures <= t.spec.retry.retries {
            // Saturating: a backoff near u64::MAX means "not before the end
            // of time", never a time in the past.
            let backoff = t.spec.retry.backoff_before(t.attempt.saturating_add(1));
            t.not_before = now.saturating_add(backoff);
            let at = t.not_before;
            let reason = format!("attempt {} {reason}; retrying", t.attempt);
            if !self.set(task, TaskState::Ready, Some(reason), step) {
                return;
            }
            if at > now {
                self.delayed.insert((at, task));
            } else {
                self.enqueue(task);
            }
        } else {
            self.finish(task, TaskState::Failed, Some(reason), step);
        }
    }

    pub(crate) fn expand(
        &mut self,
        job: JobId,
        new: Vec<TaskSpec>,
        _now: Millis,
        step: &mut Step,
    ) -> Result<(), SpecError> {
        let j = self.jobs.get(&job).expect("job");
        for t in &new {
            check_limits(t)?;
        }
        let existing: Vec<&str> = j.tasks.iter().map(|t| t.spec.name.as_str()).collect();
        let budget = MAX_LINKS.saturating_sub(j.links);
        let resolved = resolve(&existing, &new, self.offer(), Some(budget))?;
        let first_index = existing.len() as u32;
        step.changes.push(Change::TasksAdded {
            job,
            first_index,
            tasks: new.clone(),
        });
        self.add_tasks(job, new.into_iter(), resolved, step);
        Ok(())
    }

    /// Ends what has not started and kills what runs. A fault (see
    /// `fault.rs`) stops a job this way too, with its own reason.
    pub(crate) fn cancel_job(&mut self, job: JobId, step: &mut Step) {
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        if j.state.is_terminal() {
            return;
        }
        j.cancelled = true;
        let reason = j.stop_reason();
        let n = j.tasks.len() as u32;
        for i in 0..n {
            let task = TaskRef::new(job, i);
            let t = &mut self.jobs.get_mut(&job).expect("job").tasks[i as usize];
            match t.state {
                TaskState::Waiting | TaskState::Ready => {
                    self.finish(task, TaskState::Cancelled, Some(reason.clone()), step)
                }
                TaskState::Running if t.killing.is_none() => {
                    t.killing = Some(KillReason::Cancel);
                    let attempt = t.attempt;
                    step.commands.push(Command::Kill { task, attempt });
                }
                _ => {}
            }
        }
        self.settle(job, step);
    }

    /// Records a state change. An illegal one is refused and recorded as a
    /// fault, which stops the task's job (see `fault.rs`): false.
    pub(crate) fn set(
        &mut self,
        task: TaskRef,
        state: TaskState,
        reason: Option<String>,
        step: &mut Step,
    ) -> bool {
        let t = self.task_mut(task).expect("exists");
        if let Err(e) = t.state.transition(state) {
            let message = format!("task {:?} ({task}): {e}", t.spec.name);
            self.faults.push((task, message));
            return false;
        }
        t.state = state;
        step.changes.push(Change::Task {
            task,
            state,
            attempt: t.attempt,
            failures: t.failures,
            not_before: t.not_before,
            reason,
        });
        true
    }

    /// Moves a task to a terminal state and wakes what waits on it (work
    /// proportional to the fan-ins it belongs to and the waiters of those
    /// that close or now reject).
    pub(crate) fn finish(
        &mut self,
        task: TaskRef,
        state: TaskState,
        reason: Option<String>,
        step: &mut Step,
    ) {
        if !self.set(task, state, reason, step) {
            return;
        }
        let job = self.jobs.get_mut(&task.job).expect("job");
        job.unfinished -= 1;
        if state == TaskState::Failed {
            job.failed += 1;
        }
        for c in job.ended(task.index, state) {
            self.decide(TaskRef::new(task.job, c), step);
        }
        self.settle(task.job, step);
    }

    /// Ends the job when its last task has ended.
    pub(crate) fn settle(&mut self, job: JobId, step: &mut Step) {
        let j = self.jobs.get_mut(&job).expect("job");
        if j.unfinished > 0 || j.state.is_terminal() {
            return;
        }
        self.active -= 1;
        j.state = if j.fault.is_some() {
            JobState::Failed
        } else if j.cancelled || j.skipped.is_some() {
            JobState::Cancelled
        } else if j.failed > 0 {
            JobState::Failed
        } else {
            JobState::Succeeded
        };
        step.changes.push(Change::JobState {
            job,
            state: j.state,
        });
        // An ended job is never suspended (a retry starts it afresh).
        if std::mem::take(&mut j.suspended) {
            step.changes.push(Change::JobSuspended {
                job,
                suspended: false,
            });
        }
        // Jobs waiting on it hear of it before the call returns.
        self.job_ends.push((job, j.state));
        self.unindex(job);
    }
}

fn condition_str(c: Condition) -> &'static str {
    match c {
        Condition::Success => "success",
        Condition::Any => "any",
        Condition::Failure => "failure",
    }
}
