//! The job's dependency graph as the scheduler holds it: tasks and the
//! fan-ins between them (see `dag.rs`), kept counted so that a task ending
//! wakes what waits on it in work proportional to the fan-ins it belongs to
//! and the waiters of those that close.

use crate::dag::{FanInSpec, Resolved};
use crate::sched::{Job, Scheduler, Task};
use crate::step::Step;
use std::sync::Arc;
use tessera_types::{Condition, JobId, TaskRef, TaskSnapshot, TaskSpec, TaskState};

/// A barrier with a count: members that must all end as `condition`
/// accepts before its waiters may go on. Task fan-ins (members are task
/// indices) and job fan-ins (members are jobs, see `after.rs`) share it.
#[derive(Debug)]
pub(crate) struct Barrier<M> {
    pub(crate) condition: Condition,
    /// Members not yet ended.
    pub(crate) open: u32,
    /// A member that ended in a way `condition` rejects (its waiters are
    /// skipped): the first to, or the first in member order after a recount.
    pub(crate) rejected_by: Option<M>,
}

impl<M: Copy> Barrier<M> {
    pub(crate) fn new(condition: Condition) -> Self {
        Self {
            condition,
            open: 0,
            rejected_by: None,
        }
    }

    /// Member `m` ended in `state`: returns whether the barrier now rejects
    /// (for the first time) and whether it has closed (no member open).
    pub(crate) fn ended(&mut self, m: M, state: TaskState) -> (bool, bool) {
        self.open = self.open.saturating_sub(1);
        let rejects = !accepts(self.condition, state) && self.rejected_by.is_none();
        if rejects {
            self.rejected_by = Some(m);
        }
        (rejects, self.open == 0)
    }

    /// Counts again from each member's state (`None`: it has not ended).
    pub(crate) fn recount(&mut self, members: impl Iterator<Item = (M, Option<TaskState>)>) {
        self.open = 0;
        self.rejected_by = None;
        for (m, state) in members {
            match state {
                Some(s) if s.is_terminal() => {
                    if !accepts(self.condition, s) && self.rejected_by.is_none() {
                        self.rejected_by = Some(m);
                    }
                }
                _ => self.open += 1,
            }
        }
    }
}

/// A task fan-in: the tasks one selector matched (members) and the tasks
/// that wait for all of them to end as its condition accepts (waiters).
#[derive(Debug)]
pub(crate) struct FanIn {
    /// The task whose spec names its selector, and which dependency it is.
    pub(crate) named_by: (u32, u32),
    pub(crate) members: Arc<[u32]>,
    pub(crate) waiters: Vec<u32>,
    pub(crate) barrier: Barrier<u32>,
}

impl From<FanInSpec> for FanIn {
    fn from(f: FanInSpec) -> Self {
        Self {
            named_by: f.named_by,
            members: f.members,
            waiters: f.waiters,
            barrier: Barrier::new(f.condition),
        }
    }
}

pub(crate) fn accepts(cond: Condition, parent: TaskState) -> bool {
    match cond {
        Condition::Success => parent == TaskState::Succeeded,
        Condition::Failure => parent == TaskState::Failed,
        Condition::Any => parent.is_terminal(),
    }
}

impl Job {
    /// The selector of fan-in `f` as written.
    pub(crate) fn selector(&self, f: &FanIn) -> String {
        let (task, dep) = f.named_by;
        self.tasks[task as usize].spec.deps[dep as usize]
            .selector
            .to_string()
    }

    /// Counts again, from the tasks' states, the open members and the
    /// rejecting member of the fan-ins from `first_fan_in` on, and the open
    /// fan-ins of the tasks from `first_task` on.
    pub(crate) fn recount(&mut self, first_fan_in: usize, first_task: usize) {
        let Job { tasks, fan_ins, .. } = self;
        for f in &mut fan_ins[first_fan_in..] {
            let states = f
                .members
                .iter()
                .map(|&m| (m, Some(tasks[m as usize].state)));
            f.barrier.recount(states);
        }
        for t in &mut tasks[first_task..] {
            t.open_fan_ins = t
                .waits_on
                .iter()
                .filter(|&&f| fan_ins[f as usize].barrier.open > 0)
                .count() as u32;
        }
    }

    /// Whether a waiting task can be decided now: every fan-in it waits on
    /// has closed, or one of them rejects.
    pub(crate) fn decidable(&self, i: usize) -> bool {
        let t = &self.tasks[i];
        t.open_fan_ins == 0
            || t.waits_on
                .iter()
                .any(|&f| self.fan_ins[f as usize].barrier.rejected_by.is_some())
    }

    /// Task `i` ended in `state`: updates the fan-ins it belongs to and
    /// returns the waiting tasks that can now be decided.
    pub(crate) fn ended(&mut self, i: u32, state: TaskState) -> Vec<u32> {
        let Job { tasks, fan_ins, .. } = self;
        let member_of = std::mem::take(&mut tasks[i as usize].member_of);
        let mut due = Vec::new();
        for &g in &member_of {
            let f = &mut fan_ins[g as usize];
            let (rejects, closed) = f.barrier.ended(i, state);
            if !rejects && !closed {
                continue;
            }
            for &w in &f.waiters {
                let waiter = &mut tasks[w as usize];
                if closed {
                    waiter.open_fan_ins = waiter.open_fan_ins.saturating_sub(1);
                }
                if waiter.state == TaskState::Waiting && (rejects || waiter.open_fan_ins == 0) {
                    due.push(w);
                }
            }
        }
        tasks[i as usize].member_of = member_of;
        due
    }
}

impl Scheduler {
    /// Appends a batch of tasks (a submission or an expansion) with the
    /// fan-ins `resolved` holds, then decides what can be.
    pub(crate) fn add_tasks(
        &mut self,
        id: JobId,
        specs: impl Iterator<Item = TaskSpec>,
        resolved: Resolved,
        step: &mut Step,
    ) {
        let base = self.attach(id, specs, resolved, None);
        self.wake(id, base, step);
    }

    /// Appends a batch of tasks, in the states `restored` gives (waiting
    /// without), with its fan-ins. Returns the index of its first task.
    pub(crate) fn attach(
        &mut self,
        id: JobId,
        specs: impl Iterator<Item = TaskSpec>,
        resolved: Resolved,
        restored: Option<&[TaskSnapshot]>,
    ) -> usize {
        let job = self.jobs.get_mut(&id).expect("job exists");
        let base = job.tasks.len();
        let first_fan_in = job.fan_ins.len() as u32;
        for (i, (spec, waits_on)) in specs.zip(resolved.waits_on).enumerate() {
            let snap = restored.and_then(|r| r.get(i));
            let state = snap.map_or(TaskState::Waiting, |s| s.state);
            let (attempt, failures) = snap.map_or((0, 0), |s| (s.attempt, s.failures));
            job.tasks.push(Task {
                spec: Arc::new(spec),
                state,
                attempt,
                failures,
                // Exact unless the job was retried before a restart (the
                // store keeps no count of its own).
                lost: attempt.saturating_sub(failures),
                not_before: snap.map_or(0, |s| s.not_before),
                waits_on: waits_on.into_iter().map(|f| f + first_fan_in).collect(),
                member_of: Vec::new(),
                open_fan_ins: 0,
                killing: None,
                deadline: 0,
                started: 0,
                queued: 0,
            });
            if !state.is_terminal() {
                job.unfinished += 1;
            }
            if state == TaskState::Failed {
                job.failed += 1;
            }
        }
        for (k, f) in resolved.fan_ins.into_iter().enumerate() {
            for &m in f.members.iter() {
                job.tasks[m as usize]
                    .member_of
                    .push(first_fan_in + k as u32);
            }
            job.fan_ins.push(f.into());
        }
        job.links += resolved.links;
        job.recount(first_fan_in as usize, base);
        base
    }

    /// Queues the ready tasks from index `from` on (restored ones) and
    /// decides the waiting ones whose fan-ins have closed or reject.
    pub(crate) fn wake(&mut self, id: JobId, from: usize, step: &mut Step) {
        let job = &self.jobs[&id];
        let mut decide = Vec::new();
        for i in from..job.tasks.len() {
            match job.tasks[i].state {
                TaskState::Ready => decide.push((i as u32, true)),
                TaskState::Waiting if job.decidable(i) => decide.push((i as u32, false)),
                _ => {}
            }
        }
        for (i, ready) in decide {
            let task = TaskRef::new(id, i);
            if ready {
                self.requeue(task);
            } else {
                self.decide(task, step);
            }
        }
    }

    /// The dependency links the scheduler holds for `job` (members of its
    /// fan-ins plus each task's fan-ins): linear in the job's tasks and
    /// selectors, never their product. `None` for a job it does not hold.
    pub fn dependency_links(&self, job: JobId) -> Option<usize> {
        self.jobs.get(&job).map(|j| j.links)
    }
}
