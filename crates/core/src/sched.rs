//! The scheduler state machine: events and `now` in, a [`Step`] out.

use crate::after::{job_fan_ins, JobFanIn};
use crate::compile::compile_for;
use crate::dag::{resolve, SpecError};
use crate::fair::{Policy, Project, ProjectUsage, Quota};
use crate::graph::FanIn;
use crate::limits::MAX_LINKS;
use crate::step::{Command, Event, Step};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tessera_types::{
    AttemptNo, JobId, JobSpec, JobState, Millis, ProjectId, TaskRef, TaskSpec, TaskState,
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
    /// Attempts lost (not counted in `failures`); at [`MAX_LOST`] it fails.
    pub(crate) lost: u32,
    pub(crate) not_before: Millis,
    /// The fan-ins it waits on (indices into `Job::fan_ins`, ascending).
    pub(crate) waits_on: Vec<u32>,
    /// The fan-ins it is a member of: they learn when it ends.
    pub(crate) member_of: Vec<u32>,
    /// Fan-ins it waits on whose members have not all ended.
    pub(crate) open_fan_ins: u32,
    pub(crate) killing: Option<KillReason>,
    /// When the running attempt hits its time limit (0: no limit).
    pub(crate) deadline: Millis,
    /// When the running attempt started (for fair share's running usage).
    pub(crate) started: Millis,
    /// Identifies the live heap entry (older entries are stale).
    pub(crate) queued: u64,
}

#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) tasks: Vec<Task>,
    /// The barriers its dependencies resolved to (see `dag.rs`).
    pub(crate) fan_ins: Vec<FanIn>,
    /// Links its fan-ins hold (see [`Scheduler::dependency_links`]).
    pub(crate) links: usize,
    /// Index into `Scheduler::projects`.
    pub(crate) project: usize,
    pub(crate) state: JobState,
    pub(crate) unfinished: u32,
    pub(crate) failed: u32,
    pub(crate) cancelled: bool,
    /// Nothing of it starts; its running attempts are stopped.
    pub(crate) suspended: bool,
    /// When it was suspended (time limits are pushed back by the pause).
    pub(crate) suspended_at: Millis,
    /// Added to each task's priority in the ready queue.
    pub(crate) priority: i32,
    /// An internal error stopped it (see `fault.rs`): it ends failed.
    pub(crate) fault: Option<String>,
    /// Its name (for what its dependents say about it).
    pub(crate) name: Arc<str>,
    /// Its job dependencies' fan-ins (see `after.rs`).
    pub(crate) after: Vec<JobFanIn>,
    /// Waiting for its parent jobs: none of its tasks is decided.
    pub(crate) gated: bool,
    /// Fan-ins of `after` still open while gated.
    pub(crate) held: u32,
    /// A parent ended as a condition rejects: why it was skipped (it ends
    /// cancelled).
    pub(crate) skipped: Option<String>,
}

impl Job {
    pub(crate) fn new(project: usize, state: JobState, suspended: bool, priority: i32) -> Self {
        Self {
            tasks: Vec::new(),
            fan_ins: Vec::new(),
            links: 0,
            project,
            state,
            unfinished: 0,
            failed: 0,
            cancelled: false,
            suspended,
            suspended_at: 0,
            priority,
            fault: None,
            name: Arc::from(""),
            after: Vec::new(),
            gated: false,
            held: 0,
            skipped: None,
        }
    }
}

/// The pure scheduler. One node with `capacity` cpu slots today; nodes and
/// placement grow here later.
pub struct Scheduler {
    pub(crate) jobs: HashMap<JobId, Job>,
    /// Ready queues and accounts, one per project seen (never removed).
    pub(crate) projects: Vec<Project>,
    project_index: HashMap<Option<ProjectId>, usize>,
    pub(crate) policy: Policy,
    /// Ready tasks backing off until the given time.
    pub(crate) delayed: BTreeSet<(Millis, TaskRef)>,
    /// Running attempts with a time limit.
    pub(crate) deadlines: BTreeSet<(Millis, TaskRef, AttemptNo)>,
    pub(crate) capacity: u32,
    /// The most cpu one task may ask for at submission: the capacity given
    /// to [`Scheduler::new`], or the current one when that is larger.
    admit: u32,
    /// Whether tasks may name a container image (a Docker executor runs them).
    pub(crate) images: bool,
    pub(crate) used: u32,
    pub(crate) seq: u64,
    /// Jobs not yet ended.
    pub(crate) active: usize,
    /// Start nothing new (draining, or interrupted).
    pub(crate) paused: bool,
    /// Illegal moves seen during the current call (see `fault.rs`).
    pub(crate) faults: Vec<(TaskRef, String)>,
    /// Gated jobs by parent: (parent, child, index of the child's fan-in).
    pub(crate) job_waiters: BTreeSet<(JobId, JobId, u32)>,
    /// How jobs it does not hold ended, and their names (see
    /// [`Scheduler::set_ended`]).
    pub(crate) ended: HashMap<JobId, (JobState, Arc<str>)>,
    /// Jobs that ended during the current call; their dependents are told
    /// before it returns.
    pub(crate) job_ends: Vec<(JobId, JobState)>,
}

impl Scheduler {
    pub fn new(capacity: u32) -> Self {
        Self {
            jobs: HashMap::new(),
            projects: Vec::new(),
            project_index: HashMap::new(),
            policy: Policy::default(),
            delayed: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            capacity: capacity.max(1),
            admit: capacity.max(1),
            images: false,
            used: 0,
            seq: 0,
            active: 0,
            paused: false,
            faults: Vec::new(),
            job_waiters: BTreeSet::new(),
            ended: HashMap::new(),
            job_ends: Vec::new(),
        }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Changes the slots attempts may use (workers joining or leaving); 0
    /// starts nothing. Attempts already running keep going even when they
    /// now exceed it. Submissions are still checked against the larger of
    /// this and the capacity given to [`Scheduler::new`].
    pub fn set_capacity(&mut self, capacity: u32) {
        self.capacity = capacity;
    }

    /// Lets tasks name a container image (the driver has a Docker
    /// executor); refused at submission otherwise.
    pub fn set_images(&mut self, allowed: bool) {
        self.images = allowed;
    }

    pub(crate) fn offer(&self) -> crate::dag::Offer {
        crate::dag::Offer {
            cpu: self.capacity.max(self.admit),
            images: self.images,
        }
    }

    /// Slots in use by running attempts.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// While paused, nothing new starts; running attempts carry on.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Sets how fair share decays usage and how long the quota window is.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Sets a project's limits. Running attempts are never stopped by a
    /// lower quota; the project just starts nothing until it is under it.
    /// Takes effect at the next dispatch (call [`tick`](Self::tick)).
    pub fn set_quota(&mut self, project: ProjectId, quota: Quota) {
        let p = self.project(Some(project));
        self.projects[p].quota = quota;
    }

    pub fn quota(&self, project: ProjectId) -> Quota {
        self.project_index
            .get(&Some(project))
            .map_or_else(Quota::default, |&p| self.projects[p].quota)
    }

    /// Sets a project's fair-share weight (default 1): usage is compared
    /// divided by it, so weight 2 gets about twice the cpu time under contention.
    pub fn set_weight(&mut self, project: Option<ProjectId>, weight: f64) {
        let p = self.project(project);
        self.projects[p].weight = if weight.is_finite() && weight > 0.0 {
            weight
        } else {
            1.0
        };
    }

    /// A project's accounts as of `now` (zero for a project it never saw).
    pub fn project_usage(&self, project: Option<ProjectId>, now: Millis) -> ProjectUsage {
        self.project_index
            .get(&project)
            .map_or_else(ProjectUsage::default, |&p| {
                self.projects[p].usage(now, &self.policy)
            })
    }

    /// Charges `cpu_ms` used by an attempt of `project` that ended at
    /// `ended_at` before this scheduler existed (after a restart, from the
    /// store's attempts), so fair share and cpu-time quotas remember it.
    /// Call in order of `ended_at`, before `restore`.
    pub fn record_usage(&mut self, project: Option<ProjectId>, cpu_ms: u64, ended_at: Millis) {
        let p = self.project(project);
        self.projects[p].charge(cpu_ms, ended_at, &self.policy);
    }

    /// The index of `project`'s queue and accounts, made on first sight.
    pub(crate) fn project(&mut self, project: Option<ProjectId>) -> usize {
        if let Some(&p) = self.project_index.get(&project) {
            return p;
        }
        self.projects.push(Project::new(project));
        let p = self.projects.len() - 1;
        self.project_index.insert(project, p);
        p
    }

    /// True when every job it knows has ended.
    pub fn is_idle(&self) -> bool {
        self.active == 0
    }

    /// Checks a job spec as written (arrays, templates) without submitting it.
    pub fn validate(&self, spec: &JobSpec) -> Result<(), SpecError> {
        self.compile(spec).map(|_| ())
    }

    /// [`compile`](crate::compile)s a spec as written and checks it against
    /// this machine's capacity. Submit the result: [`Scheduler::submit_in`]
    /// takes compiled specs, and refuses array tasks.
    pub fn compile(&self, spec: &JobSpec) -> Result<JobSpec, SpecError> {
        compile_for(spec, self.offer())
    }

    /// Adds a job of no project the store has just committed (all tasks waiting).
    pub fn submit(&mut self, id: JobId, spec: &JobSpec, now: Millis) -> Result<Step, SpecError> {
        self.submit_in(id, None, spec, now)
    }

    /// Adds a job owned by `project` (its quotas and fair share apply). The
    /// spec must be compiled ([`Scheduler::compile`]); templates in it are
    /// taken literally. Its job dependencies must be resolved, naming jobs
    /// it holds or was told the end of ([`Scheduler::check_after`]): until
    /// they allow it, nothing of it starts.
    pub fn submit_in(
        &mut self,
        id: JobId,
        project: Option<ProjectId>,
        spec: &JobSpec,
        now: Millis,
    ) -> Result<Step, SpecError> {
        if spec.tasks.is_empty() {
            return Err(SpecError::Empty);
        }
        let resolved = resolve(&[], &spec.tasks, self.offer(), Some(MAX_LINKS))?;
        self.check_after(&spec.after)?;
        self.check_acyclic_after(id, &spec.after)?;
        let project = self.project(project);
        let mut job = Job::new(project, JobState::Pending, false, 0);
        job.name = Arc::from(spec.name.as_str());
        job.after = job_fan_ins(&spec.after);
        job.gated = !job.after.is_empty();
        let gated = job.gated;
        self.jobs.insert(id, job);
        self.active += 1;
        let mut step = Step::default();
        self.add_tasks(id, spec.tasks.iter().cloned(), resolved, &mut step);
        if gated {
            self.arm(id, &mut step);
        }
        self.settle(id, &mut step);
        self.flush(&mut step);
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
            Event::SuspendJob { job } => self.suspend_job(job, now, &mut step),
            Event::ResumeJob { job } => self.resume_job(job, now, &mut step),
            Event::RetryJob { job } => self.retry_job(job, &mut step),
            Event::SetPriority { job, priority } => self.set_priority(job, priority, &mut step),
        }
        self.flush(&mut step);
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
        for p in &mut self.projects {
            p.prune(now, &self.policy);
        }
        self.flush(&mut step);
        self.dispatch(now, &mut step);
        step
    }

    /// When `tick` next has something to do, if ever: a backoff or time
    /// limit expiring, or a cpu-time quota window freeing up for a project
    /// that has tasks waiting on it.
    pub fn next_wakeup(&self) -> Option<Millis> {
        let a = self.delayed.first().map(|d| d.0);
        let b = self.deadlines.first().map(|d| d.0);
        let c = self
            .projects
            .iter()
            .filter_map(|p| p.window_frees_at(&self.policy))
            .min();
        [a, b, c].into_iter().flatten().min()
    }

    pub fn job_state(&self, job: JobId) -> Option<JobState> {
        self.jobs.get(&job).map(|j| j.state)
    }

    /// Whether the job is suspended (`None` for a job it does not hold).
    pub fn job_suspended(&self, job: JobId) -> Option<bool> {
        self.jobs.get(&job).map(|j| j.suspended)
    }

    /// The job's priority offset (`None` for a job it does not hold).
    pub fn job_priority(&self, job: JobId) -> Option<i32> {
        self.jobs.get(&job).map(|j| j.priority)
    }

    pub fn task_state(&self, task: TaskRef) -> Option<TaskState> {
        self.task(task).map(|t| t.state)
    }

    /// Drops a finished job from memory (the store keeps it); its end is
    /// remembered for jobs that name it (see [`Scheduler::set_ended`]).
    pub fn forget(&mut self, job: JobId) {
        if self.jobs.get(&job).is_some_and(|j| j.state.is_terminal()) {
            let j = self.jobs.remove(&job).expect("held");
            self.ended.insert(job, (j.state, j.name));
        }
    }

    pub(crate) fn task(&self, t: TaskRef) -> Option<&Task> {
        self.jobs.get(&t.job)?.tasks.get(t.index as usize)
    }

    pub(crate) fn task_mut(&mut self, t: TaskRef) -> Option<&mut Task> {
        self.jobs.get_mut(&t.job)?.tasks.get_mut(t.index as usize)
    }
}
