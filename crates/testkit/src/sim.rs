//! The simulation harness: the real scheduler, a fake clock, a fake executor.

mod after;

use crate::Shadow;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tessera_core::{glob_match, Command, Event, Policy, Quota, Scheduler, Step};
use tessera_types::{
    AttemptNo, AttemptUsage, Condition, JobId, JobSpec, Millis, ProjectId, Selector, TaskRef,
    TaskSpec, TaskState,
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
    /// Stopped attempts (their job is suspended) with the time they still need.
    stopped: HashMap<(TaskRef, AttemptNo), (Millis, Finish)>,
    seq: u64,
    next_job: i64,
    /// Every attempt started: (time, task, attempt).
    pub starts: Vec<(Millis, TaskRef, AttemptNo)>,
    /// Most slots ever in use at once.
    pub peak_used: u32,
    /// Slot-milliseconds spent running (for utilisation figures).
    pub busy_ms: u128,
    /// Real time spent inside the scheduler's `submit`, `handle` and `tick`
    /// (the harness's own bookkeeping and checks excluded).
    pub sched_time: Duration,
    /// Cpu-ms of ended attempts, per project, as the scheduler is charged.
    pub cpu_done: BTreeMap<Option<ProjectId>, u64>,
    /// Each project's ended attempts (end time, cpu-ms), oldest first, to
    /// check cpu-time quotas independently of the scheduler.
    charges: HashMap<Option<ProjectId>, Vec<(Millis, u64)>>,
    quotas: BTreeMap<ProjectId, Quota>,
    policy: Policy,
    /// Internal errors the scheduler reported ([`Command::Fault`]): each is
    /// a core bug, and [`Sim::assert_log_matches_scheduler`] fails on any.
    pub faults: Vec<String>,
    /// Jobs retried through [`Sim::retry`]: a job released before its
    /// parent was retried keeps running (so the start check spares it).
    pub retried: std::collections::HashSet<JobId>,
}

struct Finish {
    task: TaskRef,
    attempt: AttemptNo,
    project: Option<ProjectId>,
    started: Millis,
    cpu: u32,
    memory_mb: u64,
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
            stopped: HashMap::new(),
            seq: 0,
            next_job: 1,
            starts: Vec::new(),
            peak_used: 0,
            busy_ms: 0,
            sched_time: Duration::ZERO,
            cpu_done: BTreeMap::new(),
            charges: HashMap::new(),
            quotas: BTreeMap::new(),
            policy: Policy::default(),
            faults: Vec::new(),
            retried: Default::default(),
        }
    }

    /// Submits a job (panics if the spec is invalid: use valid specs in tests).
    pub fn submit(&mut self, spec: &JobSpec) -> JobId {
        self.submit_in(None, spec)
    }

    /// Submits a job owned by `project`. Its job dependencies are
    /// resolved against the shadow store's jobs of the project, as the
    /// driver resolves them against the store.
    pub fn submit_in(&mut self, project: Option<ProjectId>, spec: &JobSpec) -> JobId {
        let spec = &self.resolve_after(project, spec);
        let id = JobId(self.next_job);
        self.next_job += 1;
        self.shadow.create_in(id, project, spec);
        let now = self.now;
        let step = self
            .timed(|s| s.submit_in(id, project, spec, now))
            .expect("valid spec");
        self.apply(step);
        id
    }

    /// Sets a project's quota (checked by the harness at every step from now
    /// on) and lets the scheduler start what the new quota allows.
    pub fn set_quota(&mut self, project: ProjectId, quota: Quota) {
        self.quotas.insert(project, quota);
        self.sched.set_quota(project, quota);
        self.tick();
    }

    /// Lets the scheduler fire due timers and start what fits now (after
    /// unpausing it, say).
    pub fn tick(&mut self) {
        let now = self.now;
        let step = self.timed(|s| s.tick(now));
        self.apply(step);
    }

    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
        self.sched.set_policy(policy);
    }

    /// Cpu slots each project's running attempts hold, as the fake executor sees them.
    pub fn running_cpu(&self, project: Option<ProjectId>) -> u32 {
        self.running
            .values()
            .filter(|f| f.project == project)
            .map(|f| f.cpu)
            .sum()
    }

    pub fn cancel(&mut self, job: JobId) {
        self.event(Event::CancelJob { job });
    }

    /// Feeds an event (suspend, resume, retry, a priority change...) now;
    /// returns the step it produced, already carried out.
    pub fn event(&mut self, event: Event) -> Step {
        let now = self.now;
        let step = self.timed(|s| s.handle(event, now));
        self.apply(step.clone());
        step
    }

    /// Attempts stopped by a suspension, as the fake executor sees them.
    pub fn stopped(&self) -> usize {
        self.stopped.len()
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
                let cpu_ms = (self.now - f.started) * u64::from(f.cpu);
                *self.cpu_done.entry(f.project).or_default() += cpu_ms;
                if cpu_ms > 0 {
                    let charges = self.charges.entry(f.project).or_default();
                    charges.push((self.now, cpu_ms));
                }
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
                let now = self.now;
                let step = self.timed(|s| s.handle(ev, now));
                self.apply(step);
                delivered += 1;
            }
            let now = self.now;
            let step = self.timed(|s| s.tick(now));
            self.apply(step);
        }
        delivered
    }

    /// Calls into the scheduler, counting the time it takes.
    fn timed<T>(&mut self, call: impl FnOnce(&mut Scheduler) -> T) -> T {
        let t0 = Instant::now();
        let out = call(&mut self.sched);
        self.sched_time += t0.elapsed();
        out
    }

    /// Simulates a crash of the scheduler process: the in-memory scheduler is
    /// thrown away and rebuilt from the shadow store; attempts that were
    /// running are abandoned (their reports never arrive).
    pub fn crash_and_restore(&mut self) {
        let capacity = self.sched.capacity();
        self.running.clear();
        self.index.clear();
        self.stopped.clear();
        self.sched = Scheduler::new(capacity);
        self.sched.set_policy(self.policy);
        for (&p, &q) in &self.quotas {
            self.sched.set_quota(p, q);
        }
        for (&p, charges) in &self.charges {
            for &(at, ms) in charges {
                self.sched.record_usage(p, ms, at);
            }
        }
        for snap in self.shadow.snapshots() {
            self.tell_ended(&snap.spec.after);
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
                    self.check_parent_jobs_allow(task.job);
                    assert!(
                        !self.shadow.jobs[&task.job].suspended,
                        "{task} started while its job is suspended"
                    );
                    let project = self.shadow.jobs[&task.job].project;
                    self.check_cpu_time_quota(project);
                    let out = (self.behaviour.0)(&spec, attempt);
                    self.seq += 1;
                    let key = (self.now.saturating_add(out.duration), self.seq);
                    self.running.insert(
                        key,
                        Finish {
                            task,
                            attempt,
                            project,
                            started: self.now,
                            cpu: spec.resources.cpu,
                            memory_mb: spec.resources.memory_mb,
                            result: out.result,
                            expansion: out.expansion,
                        },
                    );
                    self.index.insert((task, attempt), key);
                    self.starts.push((self.now, task, attempt));
                }
                Command::Suspend { task, attempt } => {
                    if let Some(key) = self.index.remove(&(task, attempt)) {
                        let f = self.running.remove(&key).expect("indexed");
                        let left = key.0.saturating_sub(self.now);
                        self.stopped.insert((task, attempt), (left, f));
                    }
                }
                Command::Resume { task, attempt } => {
                    if let Some((left, f)) = self.stopped.remove(&(task, attempt)) {
                        self.seq += 1;
                        let key = (self.now.saturating_add(left), self.seq);
                        self.index.insert((task, attempt), key);
                        self.running.insert(key, f);
                    }
                }
                Command::Fault { message, .. } => self.faults.push(message),
                Command::Kill { task, attempt } => {
                    // A stopped process dies too (SIGKILL needs no SIGCONT).
                    if let Some((_, f)) = self.stopped.remove(&(task, attempt)) {
                        self.seq += 1;
                        let key = (self.now, self.seq);
                        self.index.insert((task, attempt), key);
                        self.running.insert(key, f);
                    }
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
        let used: u32 = self.running.values().map(|f| f.cpu).sum::<u32>()
            + self.stopped.values().map(|(_, f)| f.cpu).sum::<u32>();
        assert!(
            used <= self.sched.capacity(),
            "slots oversubscribed: {used} > {}",
            self.sched.capacity()
        );
        self.peak_used = self.peak_used.max(used);
        self.check_concurrency_quotas();
    }

    /// No project holds more cpu or memory than its quota, at any moment.
    fn check_concurrency_quotas(&self) {
        if self.quotas.is_empty() {
            return;
        }
        let mut held: HashMap<ProjectId, (u32, u64)> = HashMap::new();
        for f in self.running.values() {
            if let Some(p) = f.project {
                let h = held.entry(p).or_default();
                h.0 += f.cpu;
                h.1 += f.memory_mb;
            }
        }
        for (p, (cpu, mem)) in held {
            let Some(q) = self.quotas.get(&p) else {
                continue;
            };
            if let Some(max) = q.max_cpu {
                assert!(cpu <= max, "project {p} runs {cpu} cpu, quota {max}");
            }
            if let Some(max) = q.max_memory_mb {
                assert!(mem <= max, "project {p} holds {mem} MiB, quota {max}");
            }
        }
    }

    /// An attempt starts only while its project's cpu time in the window is
    /// under its quota.
    fn check_cpu_time_quota(&self, project: Option<ProjectId>) {
        let Some(limit) = project
            .and_then(|p| self.quotas.get(&p))
            .and_then(|q| q.cpu_ms_per_window)
        else {
            return;
        };
        let used: u64 = self.charges.get(&project).map_or(0, |c| {
            c.iter()
                .filter(|(at, _)| at + self.policy.quota_window_ms > self.now)
                .map(|(_, ms)| ms)
                .sum()
        });
        assert!(
            used < limit,
            "project {project:?} started an attempt with {used} of {limit} cpu-ms used in the window"
        );
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

    /// Checks that the change log agrees with the scheduler's own view, and
    /// that the scheduler reported no internal error.
    pub fn assert_log_matches_scheduler(&self) {
        assert!(
            self.faults.is_empty(),
            "scheduler faults: {:?}",
            self.faults
        );
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
