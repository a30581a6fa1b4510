//! The scheduler state machine: events and `now` in, a [`Step`] out.

use crate::dag::{resolve, SpecError};
use crate::step::{Command, Event, Step};
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use tessera_types::{
    AttemptNo, Change, Condition, JobId, JobSnapshot, JobSpec, JobState, Millis, NodeId, TaskRef,
    TaskSpec, TaskState,
};

/// A lost attempt does not count against retries, but a task lost this many
/// times fails: something about it keeps killing its node.
pub const MAX_LOST: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillReason {
    Cancel,
    TimeLimit,
}

#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) spec: Arc<TaskSpec>,
    pub(crate) state: TaskState,
    pub(crate) attempt: AttemptNo,
    pub(crate) failures: u32,
    pub(crate) not_before: Millis,
    pub(crate) parents: Vec<(u32, Condition)>,
    /// Edges to dependents, with the edge's condition (one entry per edge).
    pub(crate) children: Vec<(u32, Condition)>,
    /// Parents not yet ended.
    pub(crate) open_parents: u32,
    pub(crate) killing: Option<KillReason>,
    /// When the running attempt hits its time limit (0: no limit).
    pub(crate) deadline: Millis,
    /// Identifies the live heap entry (older entries are stale).
    pub(crate) queued: u64,
}

#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) tasks: Vec<Task>,
    pub(crate) state: JobState,
    pub(crate) unfinished: u32,
    pub(crate) failed: u32,
    pub(crate) cancelled: bool,
}

#[derive(PartialEq, Eq)]
struct Queued {
    priority: i32,
    job: Reverse<JobId>,
    seq: Reverse<u64>,
    task: TaskRef,
}

impl Ord for Queued {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.priority, self.job, self.seq).cmp(&(o.priority, o.job, o.seq))
    }
}

impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// The pure scheduler. One node with `capacity` cpu slots today; nodes and
/// placement grow here later.
pub struct Scheduler {
    pub(crate) jobs: HashMap<JobId, Job>,
    queue: BinaryHeap<Queued>,
    /// Ready tasks backing off until the given time.
    pub(crate) delayed: BTreeSet<(Millis, TaskRef)>,
    /// Running attempts with a time limit.
    pub(crate) deadlines: BTreeSet<(Millis, TaskRef, AttemptNo)>,
    pub(crate) capacity: u32,
    pub(crate) used: u32,
    pub(crate) seq: u64,
    /// Jobs not yet ended.
    pub(crate) active: usize,
    /// Start nothing new (draining, or interrupted).
    pub(crate) paused: bool,
}

impl Scheduler {
    pub fn new(capacity: u32) -> Self {
        Self {
            jobs: HashMap::new(),
            queue: BinaryHeap::new(),
            delayed: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            capacity: capacity.max(1),
            used: 0,
            seq: 0,
            active: 0,
            paused: false,
        }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Slots in use by running attempts.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// While paused, nothing new starts; running attempts carry on.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// True when every job it knows has ended.
    pub fn is_idle(&self) -> bool {
        self.active == 0
    }

    /// Checks a job spec without submitting it.
    pub fn validate(&self, spec: &JobSpec) -> Result<(), SpecError> {
        if spec.tasks.is_empty() {
            return Err(SpecError::Empty);
        }
        resolve(&[], &spec.tasks, self.capacity).map(|_| ())
    }

    /// Adds a job the store has just committed (all tasks waiting).
    pub fn submit(&mut self, id: JobId, spec: &JobSpec, now: Millis) -> Result<Step, SpecError> {
        if spec.tasks.is_empty() {
            return Err(SpecError::Empty);
        }
        let parents = resolve(&[], &spec.tasks, self.capacity)?;
        self.jobs.insert(
            id,
            Job {
                tasks: Vec::new(),
                state: JobState::Pending,
                unfinished: 0,
                failed: 0,
                cancelled: false,
            },
        );
        self.active += 1;
        let mut step = Step::default();
        self.add_tasks(id, spec.tasks.iter().cloned(), parents, None, &mut step);
        self.settle(id, &mut step);
        self.dispatch(now, &mut step);
        Ok(step)
    }

    /// Rebuilds a job from the store after a restart. `batch_starts` are the
    /// first indices of each batch of tasks (0, then one per expansion):
    /// selectors resolve within their own batch and earlier ones, exactly as
    /// when the tasks were first added. Attempts that were running are lost.
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
        let mut parents = Vec::with_capacity(n);
        for w in bounds.windows(2) {
            let existing: Vec<&str> = snap.spec.tasks[..w[0]]
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            parents.extend(resolve(
                &existing,
                &snap.spec.tasks[w[0]..w[1]],
                self.capacity,
            )?);
        }
        self.jobs.insert(
            snap.id,
            Job {
                tasks: Vec::new(),
                state: snap.state,
                unfinished: 0,
                failed: 0,
                cancelled: false,
            },
        );
        self.active += 1;
        let mut step = Step::default();
        self.add_tasks(
            snap.id,
            snap.spec.tasks.iter().cloned(),
            parents,
            Some(&snap.tasks),
            &mut step,
        );
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
            self.used += self.jobs[&snap.id].tasks[i as usize].spec.resources.cpu;
            let task = TaskRef::new(snap.id, i);
            self.lost(
                task,
                attempt,
                "tessera restarted while it ran".into(),
                now,
                &mut step,
            );
        }
        self.settle(snap.id, &mut step);
        self.dispatch(now, &mut step);
        Ok(step)
    }

    pub fn handle(&mut self, event: Event, now: Millis) -> Step {
        let mut step = Step::default();
        match event {
            Event::Exited {
                task,
                attempt,
                result,
                usage,
                expansion,
            } => self.exited(task, attempt, result, usage, expansion, now, &mut step),
            Event::Lost {
                task,
                attempt,
                reason,
            } => self.lost(task, attempt, reason, now, &mut step),
            Event::CancelJob { job } => self.cancel_job(job, &mut step),
        }
        self.dispatch(now, &mut step);
        step
    }

    /// Fires due timers (retry backoff, time limits) and starts what fits.
    pub fn tick(&mut self, now: Millis) -> Step {
        let mut step = Step::default();
        while let Some(&(at, task)) = self.delayed.first() {
            if at > now {
                break;
            }
            self.delayed.pop_first();
            self.enqueue(task);
        }
        while let Some(&(at, task, attempt)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(t) = self.task_mut(task) {
                if t.state == TaskState::Running && t.attempt == attempt && t.killing.is_none() {
                    t.killing = Some(KillReason::TimeLimit);
                    step.commands.push(Command::Kill { task, attempt });
                }
            }
        }
        self.dispatch(now, &mut step);
        step
    }

    /// When `tick` next has something to do, if ever.
    pub fn next_wakeup(&self) -> Option<Millis> {
        let a = self.delayed.first().map(|d| d.0);
        let b = self.deadlines.first().map(|d| d.0);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn job_state(&self, job: JobId) -> Option<JobState> {
        self.jobs.get(&job).map(|j| j.state)
    }

    pub fn task_state(&self, task: TaskRef) -> Option<TaskState> {
        self.task(task).map(|t| t.state)
    }

    /// Drops a finished job from memory (the store keeps it).
    pub fn forget(&mut self, job: JobId) {
        if self.jobs.get(&job).is_some_and(|j| j.state.is_terminal()) {
            self.jobs.remove(&job);
        }
    }

    pub(crate) fn task(&self, t: TaskRef) -> Option<&Task> {
        self.jobs.get(&t.job)?.tasks.get(t.index as usize)
    }

    pub(crate) fn task_mut(&mut self, t: TaskRef) -> Option<&mut Task> {
        self.jobs.get_mut(&t.job)?.tasks.get_mut(t.index as usize)
    }

    pub(crate) fn add_tasks(
        &mut self,
        id: JobId,
        specs: impl Iterator<Item = TaskSpec>,
        parents: Vec<Vec<(u32, Condition)>>,
        restored: Option<&[tessera_types::TaskSnapshot]>,
        step: &mut Step,
    ) {
        let job = self.jobs.get_mut(&id).expect("job exists");
        let base = job.tasks.len();
        for (i, (spec, parents)) in specs.zip(parents).enumerate() {
            let snap = restored.and_then(|r| r.get(i));
            let state = snap.map_or(TaskState::Waiting, |s| s.state);
            job.tasks.push(Task {
                spec: Arc::new(spec),
                state,
                attempt: snap.map_or(0, |s| s.attempt),
                failures: snap.map_or(0, |s| s.failures),
                not_before: snap.map_or(0, |s| s.not_before),
                open_parents: 0,
                parents,
                children: Vec::new(),
                killing: None,
                deadline: 0,
                queued: 0,
            });
            if !state.is_terminal() {
                job.unfinished += 1;
            }
            if state == TaskState::Failed {
                job.failed += 1;
            }
        }
        for i in base..job.tasks.len() {
            let ps = job.tasks[i].parents.clone();
            let mut open = 0;
            for (p, cond) in ps {
                job.tasks[p as usize].children.push((i as u32, cond));
                if !job.tasks[p as usize].state.is_terminal() {
                    open += 1;
                }
            }
            job.tasks[i].open_parents = open;
        }
        // Ready tasks (restored) go back in the queue; waiting tasks whose
        // parents have all ended are decided now.
        let mut decide = Vec::new();
        for i in base..job.tasks.len() {
            match job.tasks[i].state {
                TaskState::Ready => decide.push((i as u32, true)),
                TaskState::Waiting if job.tasks[i].open_parents == 0 => {
                    decide.push((i as u32, false))
                }
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

    pub(crate) fn requeue(&mut self, task: TaskRef) {
        let nb = self.task(task).map_or(0, |t| t.not_before);
        if nb > 0 {
            self.delayed.insert((nb, task));
        } else {
            self.enqueue(task);
        }
    }

    pub(crate) fn enqueue(&mut self, task: TaskRef) {
        self.seq += 1;
        let seq = self.seq;
        let Some(t) = self.task_mut(task) else { return };
        if t.state != TaskState::Ready {
            return; // a stale timer for a task that moved on
        }
        t.queued = seq;
        let priority = t.spec.priority;
        self.queue.push(Queued {
            priority,
            job: Reverse(task.job),
            seq: Reverse(seq),
            task,
        });
    }

    pub(crate) fn dispatch(&mut self, now: Millis, step: &mut Step) {
        if self.paused {
            return;
        }
        while let Some(top) = self.queue.peek() {
            let task = top.task;
            let seq = top.seq.0;
            let live = self
                .task(task)
                .is_some_and(|t| t.state == TaskState::Ready && t.queued == seq);
            if !live {
                self.queue.pop();
                continue;
            }
            let (not_before, cpu) = self
                .task(task)
                .map(|t| (t.not_before, t.spec.resources.cpu))
                .expect("live");
            if not_before > now {
                self.queue.pop();
                self.delayed.insert((not_before, task));
                continue;
            }
            if self.used + cpu > self.capacity {
                break;
            }
            self.queue.pop();
            self.used += cpu;
            let job = self.jobs.get_mut(&task.job).expect("job");
            if job.state == JobState::Pending {
                job.state = JobState::Running;
                step.changes.push(Change::JobState {
                    job: task.job,
                    state: JobState::Running,
                });
            }
            let t = &mut job.tasks[task.index as usize];
            t.attempt += 1;
            t.not_before = 0;
            let attempt = t.attempt;
            let spec = t.spec.clone();
            if let Some(limit) = spec.time_limit_ms {
                t.deadline = now.saturating_add(limit);
                self.deadlines.insert((t.deadline, task, attempt));
            }
            self.set(task, TaskState::Running, None, step);
            step.changes.push(Change::AttemptStarted {
                task,
                attempt,
                node: NodeId::LOCAL,
                at: now,
            });
            step.commands.push(Command::Start {
                task,
                attempt,
                spec,
                node: NodeId::LOCAL,
            });
        }
    }
}
