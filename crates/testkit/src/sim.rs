//! The simulation harness: the real scheduler, a fake clock, a fake executor.

use crate::Shadow;
use std::collections::{BTreeMap, HashMap};
use tessera_core::{glob_match, Command, Event, Scheduler, Step};
use tessera_types::{
    AttemptNo, AttemptUsage, Condition, JobId, JobSpec, Millis, Selector, TaskRef, TaskSpec,
    TaskState,
};

/// How a simulated attempt ends: after `duration` virtual ms, with `result`,
/// optionally adding tasks (for expanding tasks).
pub struct Outcome {
    pub duration: Millis,
    pub result: Result<(), String>,
    pub expansion: Option<Vec<TaskSpec>>,
}

type Decide = dyn FnMut(&TaskSpec, AttemptNo) -> Outcome;

/// Picks each attempt's fate (failure injection lives here).
pub struct Behaviour(Box<Decide>);

impl Behaviour {
    /// Every attempt takes `ms` and succeeds.
    pub fn fixed(ms: Millis) -> Self {
        Self::custom(move |_, _| Outcome {
            duration: ms,
            result: Ok(()),
            expansion: None,
        })
    }

    pub fn custom(f: impl FnMut(&TaskSpec, AttemptNo) -> Outcome + 'static) -> Self {
        Behaviour(Box::new(f))
    }
}

pub struct Sim {
    pub sched: Scheduler,
    pub shadow: Shadow,
    pub now: Millis,
    behaviour: Behaviour,
    /// Running attempts by (end time, sequence).
    running: BTreeMap<(Millis, u64), Finish>,
    index: HashMap<(TaskRef, AttemptNo), (Millis, u64)>,
    seq: u64,
    next_job: i64,
    /// Every attempt started: (time, task, attempt).
    pub starts: Vec<(Millis, TaskRef, AttemptNo)>,
    /// Most slots ever in use at once.
    pub peak_used: u32,
    /// Slot-milliseconds spent running (for utilisation figures).
    pub busy_ms: u128,
}

struct Finish {
    task: TaskRef,
    attempt: AttemptNo,
    started: Millis,
    cpu: u32,
    result: Result<(), String>,
    expansion: Option<Vec<TaskSpec>>,
}

impl Sim {
    pub fn new(capacity: u32, behaviour: Behaviour) -> Self {
        Self {
            sched: Scheduler::new(capacity),
            shadow: Shadow::default(),
            now: 0,
            behaviour,
            running: BTreeMap::new(),
            index: HashMap::new(),
            seq: 0,
            next_job: 1,
            starts: Vec::new(),
            peak_used: 0,
            busy_ms: 0,
        }
    }

    /// Submits a job (panics if the spec is invalid: use valid specs in tests).
    pub fn submit(&mut self, spec: &JobSpec) -> JobId {
        let id = JobId(self.next_job);
        self.next_job += 1;
        self.shadow.create(id, spec);
        let step = self.sched.submit(id, spec, self.now).expect("valid spec");
        self.apply(step);
        id
    }

    pub fn cancel(&mut self, job: JobId) {
        let step = self.sched.handle(Event::CancelJob { job }, self.now);
        self.apply(step);
    }

    /// Runs until nothing is left to happen or `max_events` events were
    /// delivered. Returns the number of events delivered.
    pub fn run(&mut self, max_events: usize) -> usize {
        let mut delivered = 0;
        while delivered < max_events {
            let next_exit = self.running.keys().next().map(|k| k.0);
            let next = match (next_exit, self.sched.next_wakeup()) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            self.now = self.now.max(next);
            while let Some(entry) = self.running.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let f = entry.remove();
                self.index.remove(&(f.task, f.attempt));
                self.busy_ms += u128::from(self.now - f.started) * u128::from(f.cpu);
                let usage = AttemptUsage {
                    wall_ms: self.now - f.started,
                    ..Default::default()
                };
                let ev = Event::Exited {
                    task: f.task,
                    attempt: f.attempt,
                    result: f.result,
                    usage,
                    expansion: f.expansion,
                };
                let step = self.sched.handle(ev, self.now);
                self.apply(step);
                delivered += 1;
            }
            let step = self.sched.tick(self.now);
            self.apply(step);
        }
        delivered
    }

    /// Simulates a crash of the scheduler process: the in-memory scheduler is
    /// thrown away and rebuilt from the shadow store; attempts that were
    /// running are abandoned (their reports never arrive).
    pub fn crash_and_restore(&mut self) {
        let capacity = self.sched.capacity();
        self.running.clear();
        self.index.clear();
        self.sched = Scheduler::new(capacity);
        for snap in self.shadow.snapshots() {
            let step = self
                .sched
                .restore(&snap, &snap.batch_starts, self.now)
                .expect("restorable");
            self.apply(step);
        }
    }

    /// Applies a step: commit to the shadow store, check invariants, then
    /// carry out the commands on the fake executor.
    fn apply(&mut self, step: Step) {
        self.shadow.apply(&step.changes);
        for cmd in step.commands {
            match cmd {
                Command::Start {
                    task,
                    attempt,
                    spec,
                    ..
                } => {
                    self.check_dependencies_allow(task, &spec);
                    let out = (self.behaviour.0)(&spec, attempt);
                    self.seq += 1;
                    let key = (self.now + out.duration, self.seq);
                    self.running.insert(
                        key,
                        Finish {
                            task,
                            attempt,
                            started: self.now,
                            cpu: spec.resources.cpu,
                            result: out.result,
                            expansion: out.expansion,
                        },
                    );
                    self.index.insert((task, attempt), key);
                    self.starts.push((self.now, task, attempt));
                }
                Command::Kill { task, attempt } => {
                    // The process dies now: its exit arrives immediately.
                    if let Some(key) = self.index.remove(&(task, attempt)) {
                        let mut f = self.running.remove(&key).expect("indexed");
                        f.result = Err("killed by signal 9".into());
                        self.seq += 1;
                        let key = (self.now, self.seq);
                        self.index.insert((task, attempt), key);
                        self.running.insert(key, f);
                    }
                }
            }
        }
        let used: u32 = self.running.values().map(|f| f.cpu).sum();
        assert!(
            used <= self.sched.capacity(),
            "slots oversubscribed: {used} > {}",
            self.sched.capacity()
        );
        self.peak_used = self.peak_used.max(used);
    }

    fn check_dependencies_allow(&self, task: TaskRef, spec: &TaskSpec) {
        let job = &self.shadow.jobs[&task.job];
        assert_eq!(
            job.tasks[task.index as usize].state,
            TaskState::Running,
            "{task} started while not running"
        );
        for dep in &spec.deps {
            for (i, other) in job.spec.tasks.iter().enumerate() {
                let hit = match &dep.selector {
                    Selector::Name(n) => &other.name == n,
                    Selector::Glob(g) => glob_match(&g.chars().collect::<Vec<_>>(), &other.name),
                    Selector::Regex(_) => false,
                };
                if !hit || i == task.index as usize {
                    continue;
                }
                let ps = job.tasks[i].state;
                let ok = match dep.condition {
                    Condition::Success => ps == TaskState::Succeeded,
                    Condition::Failure => ps == TaskState::Failed,
                    Condition::Any => ps.is_terminal(),
                };
                assert!(
                    ok,
                    "{} started while its dependency {} is {ps}",
                    spec.name, other.name
                );
            }
        }
    }

    /// Checks that the change log agrees with the scheduler's own view.
    pub fn assert_log_matches_scheduler(&self) {
        for (id, job) in &self.shadow.jobs {
            if let Some(state) = self.sched.job_state(*id) {
                assert_eq!(state, job.state, "job {id}");
            }
            for (i, t) in job.tasks.iter().enumerate() {
                let task = TaskRef::new(*id, i as u32);
                if let Some(state) = self.sched.task_state(task) {
                    assert_eq!(state, t.state, "task {task}");
                }
            }
        }
    }
}
