//! A task's life after it starts: how attempts end, retries, failures,
//! cancellation, expansion, and how an ending wakes the task's dependents.

use crate::dag::{resolve, SpecError};
use crate::sched::{KillReason, Scheduler, MAX_LOST};
use crate::step::{Command, Step};
use tessera_types::{
    AttemptNo, AttemptOutcome, AttemptUsage, Change, Condition, JobId, JobState, Millis, TaskRef,
    TaskSpec, TaskState,
};

impl Scheduler {
    /// A waiting task whose parents have all ended: ready, or skipped.
    pub(crate) fn decide(&mut self, task: TaskRef, step: &mut Step) {
        let job = self.jobs.get(&task.job).expect("job exists");
        let t = &job.tasks[task.index as usize];
        if t.state != TaskState::Waiting {
            return;
        }
        // Only a parent that has ended can reject (one still retrying may yet succeed).
        let rejected = t.parents.iter().find(|&&(p, cond)| {
            let ps = job.tasks[p as usize].state;
            ps.is_terminal() && !accepts(cond, ps)
        });
        if job.cancelled {
            self.finish(
                task,
                TaskState::Cancelled,
                Some("job cancelled".into()),
                step,
            );
            return;
        }
        match rejected {
            Some(&(p, cond)) => {
                let parent = &job.tasks[p as usize];
                let reason = format!(
                    "dependency {:?} ended {} and the condition is {}",
                    parent.spec.name,
                    parent.state,
                    condition_str(cond)
                );
                self.finish(task, TaskState::Skipped, Some(reason), step);
            }
            None if t.open_parents > 0 => {} // still waiting for the rest
            None => {
                self.set(task, TaskState::Ready, None, step);
                self.requeue(task);
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
        let t = self.task(task).expect("exists");
        if killing == Some(KillReason::Cancel) || self.jobs[&task.job].cancelled {
            self.finish(task, TaskState::Cancelled, Some("cancelled".into()), step);
        } else if t.attempt - t.failures.min(t.attempt) >= MAX_LOST {
            let reason = format!("{describe} ({MAX_LOST} attempts lost; giving up)");
            self.finish(task, TaskState::Failed, Some(reason), step);
        } else {
            self.set(task, TaskState::Ready, Some(describe), step);
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
            t.not_before = now + t.spec.retry.backoff_before(t.attempt + 1);
            let at = t.not_before;
            let reason = format!("attempt {} {reason}; retrying", t.attempt);
            self.set(task, TaskState::Ready, Some(reason), step);
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
        let existing: Vec<&str> = j.tasks.iter().map(|t| t.spec.name.as_str()).collect();
        let parents = resolve(&existing, &new, self.offer())?;
        let first_index = existing.len() as u32;
        step.changes.push(Change::TasksAdded {
            job,
            first_index,
            tasks: new.clone(),
        });
        self.add_tasks(job, new.into_iter(), parents, None, step);
        Ok(())
    }

    pub(crate) fn cancel_job(&mut self, job: JobId, step: &mut Step) {
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        if j.state.is_terminal() {
            return;
        }
        j.cancelled = true;
        let n = j.tasks.len() as u32;
        for i in 0..n {
            let task = TaskRef::new(job, i);
            let t = &mut self.jobs.get_mut(&job).expect("job").tasks[i as usize];
            match t.state {
                TaskState::Waiting | TaskState::Ready => self.finish(
                    task,
                    TaskState::Cancelled,
                    Some("job cancelled".into()),
                    step,
                ),
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

    /// Records a state change.
    pub(crate) fn set(
        &mut self,
        task: TaskRef,
        state: TaskState,
        reason: Option<String>,
        step: &mut Step,
    ) {
        let t = self.task_mut(task).expect("exists");
        if let Err(e) = t.state.transition(state) {
            // A bug in this module, never a user error: refuse loudly in tests.
            debug_assert!(false, "task {task}: {e}");
            return;
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
    }

    /// Moves a task to a terminal state and wakes its dependents
    /// (work proportional to its out-degree).
    pub(crate) fn finish(
        &mut self,
        task: TaskRef,
        state: TaskState,
        reason: Option<String>,
        step: &mut Step,
    ) {
        self.set(task, state, reason, step);
        let job = self.jobs.get_mut(&task.job).expect("job");
        job.unfinished -= 1;
        if state == TaskState::Failed {
            job.failed += 1;
        }
        let children = std::mem::take(&mut job.tasks[task.index as usize].children);
        let mut due = Vec::new();
        for &(c, cond) in &children {
            let child = &mut job.tasks[c as usize];
            child.open_parents -= 1;
            if child.state != TaskState::Waiting {
                continue;
            }
            if !accepts(cond, state) || child.open_parents == 0 {
                due.push(c);
            }
        }
        job.tasks[task.index as usize].children = children;
        for c in due {
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
        j.state = if j.cancelled {
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
    }
}

fn accepts(cond: Condition, parent: TaskState) -> bool {
    match cond {
        Condition::Success => parent == TaskState::Succeeded,
        Condition::Failure => parent == TaskState::Failed,
        Condition::Any => parent.is_terminal(),
    }
}

fn condition_str(c: Condition) -> &'static str {
    match c {
        Condition::Success => "success",
        Condition::Any => "any",
        Condition::Failure => "failure",
    }
}
