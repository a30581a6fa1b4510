mod after;
mod config;
mod input;
mod start;

pub use config::{DriverConfig, DriverError, Exit, Observer, SystemClock};
pub use start::attempt_log_path;
use start::Access;

use crate::feed::{Feed, FeedItem};
use crate::handle::{DriverHandle, Input};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::{Command, ControlError, Event, Policy, Scheduler, Step};
use tessera_exec::{EventSink, ExecEvent, Executor};
use tessera_store::{StartedAttempt, Store};
use tessera_types::{
    AttemptNo, Change, JobId, JobSpec, Millis, ProjectId, Quota, TaskRef, TaskSpec,
};

struct Running {
    spec: Arc<TaskSpec>,
    expand: Option<PathBuf>,
}

pub struct Driver<S, E> {
    sched: Scheduler,
    store: S,
    exec: E,
    rx: Receiver<Input>,
    tx: Sender<Input>,
    config: DriverConfig,
    running: HashMap<(TaskRef, AttemptNo), Running>,
    interrupted: bool,
    /// Whether past attempts' usage has been charged (once per scheduler).
    usage_restored: bool,
    feed: Feed,
    /// The turn's `Started` reports, written in one call before the turn's
    /// changes (see [`Driver::record_starts`]).
    started: Vec<StartedAttempt>,
    /// The access of every job the scheduler holds (see [`Access`]);
    /// dropped when the job ends.
    access: HashMap<JobId, Arc<Access>>,
    /// The slots attempts may use now, shared with every handle (see
    /// [`DriverHandle::slots`]).
    slots: Arc<std::sync::atomic::AtomicU32>,
}

/// Events handled per turn at most, so one turn's transaction stays bounded.
const BATCH: usize = 4096;

impl<S: Store, E: Executor> Driver<S, E> {
    /// `make_exec` builds the executor around the sink through which it
    /// reports back to this driver.
    pub fn new(store: S, make_exec: impl FnOnce(EventSink) -> E, config: DriverConfig) -> Self {
        let (tx, rx) = mpsc::channel();
        let sink_tx = std::sync::Mutex::new(tx.clone());
        let sink: EventSink = Arc::new(move |ev| {
            if let Ok(tx) = sink_tx.lock() {
                let _ = tx.send(Input::Exec(ev));
            }
        });
        let config_slots = config.slots;
        Self {
            sched: {
                let mut sched = Scheduler::new(config.slots);
                sched.set_images(config.images);
                sched
            },
            store,
            exec: make_exec(sink),
            rx,
            tx,
            config,
            running: HashMap::new(),
            interrupted: false,
            usage_restored: false,
            feed: Feed::default(),
            started: Vec::new(),
            access: HashMap::new(),
            slots: Arc::new(std::sync::atomic::AtomicU32::new(config_slots)),
        }
    }

    pub fn handle(&self) -> DriverHandle {
        DriverHandle {
            tx: self.tx.clone(),
            feed: self.feed.clone(),
            slots: self.slots.clone(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.sched
    }

    /// The workspace directory of a job.
    pub fn job_dir(&self, job: JobId) -> PathBuf {
        self.config.workspace.join("jobs").join(job.to_string())
    }

    /// Rebuilds the scheduler from the store after a restart: kills processes
    /// left over from attempts that never reported, and requeues those
    /// attempts as lost. `only` limits this to one job (the encode command
    /// resumes its own job and leaves others alone). Returns how many
    /// unfinished jobs were picked up.
    pub fn recover(&mut self, only: Option<JobId>) -> Result<usize, DriverError> {
        let wanted = |job: JobId| only.is_none_or(|o| o == job);
        for a in self.store.open_attempts()? {
            if !wanted(a.task.job) {
                continue;
            }
            // A worker's attempt ran on its machine, under a pid of that
            // machine: only this machine's are killed here.
            if let (Some(pid), None) = (a.pid, &a.node) {
                let _ = tessera_exec::kill_orphan_group(pid, a.task, a.number);
            }
        }
        let now = SystemClock::now();
        self.restore_usage(now)?;
        let mut jobs = self.store.load_unfinished()?;
        jobs.retain(|j| wanted(j.id));
        let unfinished: HashSet<JobId> = jobs.iter().map(|j| j.id).collect();
        let mut step = Step::default();
        for snap in &jobs {
            // Parents that ended before: their ends, from the store. The
            // unfinished ones are restored here too (before their children:
            // a job only names jobs older than itself).
            let mut parents = self.sched.unknown_parents(&snap.spec.after);
            parents.retain(|p| !unfinished.contains(p));
            self.tell_ended(&parents)?;
            step.append(self.sched.restore(snap, &snap.batch_starts, now)?);
            self.hold_access(snap.id, snap.project, &snap.spec);
        }
        self.commit_and_act(step, now, &mut ())?;
        Ok(jobs.len())
    }

    /// Charges the scheduler with the attempts that ended within what fair
    /// share and cpu-time quotas still remember (see [`usage_horizon`]), so
    /// both survive a restart. Once per driver: `recover` may run again.
    fn restore_usage(&mut self, now: Millis) -> Result<(), DriverError> {
        if self.usage_restored {
            return Ok(());
        }
        let since = now.saturating_sub(usage_horizon(self.sched.policy()));
        for (project, cpu_ms, ended_at) in self.store.usage_since(since)? {
            self.sched.record_usage(project, cpu_ms, ended_at);
        }
        self.usage_restored = true;
        Ok(())
    }

    /// Sets a project's quota (see [`Scheduler::set_quota`]) and starts what
    /// a raised one now allows. The store does not keep quotas for the
    /// driver: whoever owns them (the server, from its accounts) sets them
    /// here before [`recover`](Self::recover) and on every change.
    pub fn set_quota(&mut self, project: ProjectId, quota: Quota) -> Result<(), DriverError> {
        self.sched.set_quota(project, quota);
        let now = SystemClock::now();
        let step = self.sched.tick(now);
        self.commit_and_act(step, now, &mut ())
    }

    /// Why each waiting or ready task of `job` has not started, in index
    /// order (empty for a job the scheduler does not hold).
    pub fn why_waiting(&self, job: JobId, now: Millis) -> Vec<(u32, String)> {
        self.sched
            .why_waiting_job(job, now)
            .into_iter()
            .map(|(i, why)| (i, why.to_string()))
            .collect()
    }

    /// For tests of the scheduler's fault path only: asks the core for the
    /// move `task` -> `state` ([`Scheduler::force_move_for_tests`]) and
    /// commits and carries out what follows, as a turn of the loop would.
    #[doc(hidden)]
    pub fn force_move_for_tests(
        &mut self,
        task: TaskRef,
        state: tessera_types::TaskState,
    ) -> Result<(), DriverError> {
        let now = SystemClock::now();
        let step = self.sched.force_move_for_tests(task, state, now);
        self.commit_and_act(step, now, &mut ())
    }

    /// What `job` waits for while its job dependencies hold it back (`None`
    /// once released, or for a job without any).
    pub fn job_waiting(&self, job: JobId) -> Option<String> {
        self.sched.why_job_waiting(job).map(|why| why.to_string())
    }

    /// Validates, commits, and queues a job (of no project: the CLI's own jobs).
    pub fn submit(&mut self, spec: &JobSpec, key: Option<&str>) -> Result<JobId, DriverError> {
        self.submit_in(None, spec, key)
    }

    /// Validates, commits, and queues a job owned by `project`.
    pub fn submit_in(
        &mut self,
        project: Option<ProjectId>,
        spec: &JobSpec,
        key: Option<&str>,
    ) -> Result<JobId, DriverError> {
        // Arrays and templates are expanded once, here: the store holds the
        // compiled spec, so a restored job is never expanded again.
        let mut spec = self.sched.compile(spec)?;
        crate::volumes::check_job(&self.config.volumes, &spec)?;
        // So are job dependencies resolved: the store keeps the ids.
        self.resolve_after(project, &mut spec.after)?;
        let spec = &spec;
        let now = SystemClock::now();
        let id = self.store.create_job(project, spec, key, now)?;
        let step = self.sched.submit_in(id, project, spec, now)?;
        self.hold_access(id, project, spec);
        self.commit_and_act(step, now, &mut ())?;
        Ok(id)
    }

    /// Runs until `job` has ended or the driver is interrupted.
    pub fn run_job(
        &mut self,
        job: JobId,
        observer: &mut dyn Observer,
    ) -> Result<Exit, DriverError> {
        self.run(observer, |s| {
            s.job_state(job).is_none_or(|st| st.is_terminal())
        })?;
        if self.interrupted {
            return Ok(Exit::Interrupted);
        }
        let state = self
            .store
            .job(job)?
            .ok_or(DriverError::NoSuchJob(job))?
            .state;
        self.sched.forget(job);
        Ok(Exit::Finished(state))
    }

    /// Runs as a service: takes submissions and cancels from
    /// [`DriverHandle`]s until [`DriverHandle::interrupt`].
    pub fn serve(&mut self, observer: &mut dyn Observer) -> Result<(), DriverError> {
        self.run(observer, |_| false)
    }

    /// Runs until nothing is running or queued (every known job has ended)
    /// or the driver is interrupted.
    pub fn run_until_idle(&mut self, observer: &mut dyn Observer) -> Result<(), DriverError> {
        self.run(observer, |s| s.is_idle())
    }

    fn run(
        &mut self,
        observer: &mut dyn Observer,
        done: impl Fn(&Scheduler) -> bool,
    ) -> Result<(), DriverError> {
        let mut deadline: Option<std::time::Instant> = None;
        loop {
            if self.interrupted {
                if self.running.is_empty() {
                    return Ok(());
                }
                let d = *deadline
                    .get_or_insert_with(|| std::time::Instant::now() + self.config.shutdown_grace);
                if std::time::Instant::now() >= d {
                    return Ok(()); // attempts that never reported stay open; recover() handles them
                }
            } else if done(&self.sched) && self.running.is_empty() {
                return Ok(());
            }
            let now = SystemClock::now();
            let wait = match self.sched.next_wakeup() {
                Some(at) => Duration::from_millis(at.saturating_sub(now)),
                None => Duration::from_secs(3600),
            };
            let wait = if self.interrupted {
                wait.min(Duration::from_millis(100))
            } else {
                wait
            };
            let first = match self.rx.recv_timeout(wait) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => unreachable!("the driver holds a sender"),
            };
            let now = SystemClock::now();
            let mut step = Step::default();
            let inputs: Vec<Input> = first
                .into_iter()
                .chain(self.rx.try_iter().take(BATCH))
                .collect();
            for input in inputs {
                // A submission or a control request commits its own step at
                // once: what this turn decided before it is committed
                // first, so the store never records a later decision
                // before an earlier one (a job released by a parent's end
                // that the store does not have yet).
                if matches!(input, Input::Submit { .. } | Input::Control { .. }) && !step.is_empty()
                {
                    self.commit_and_act(std::mem::take(&mut step), now, observer)?;
                }
                step.append(self.input(input, now, observer)?);
            }
            self.record_starts(now)?;
            step.append(self.sched.tick(now));
            self.commit_and_act(step, now, observer)?;
        }
    }

    /// Writes the turn's started attempts (pid and node) in one store call,
    /// then tells the feed they run. Each attempt's row was committed before
    /// it was launched, so it exists.
    fn record_starts(&mut self, now: Millis) -> Result<(), DriverError> {
        if self.started.is_empty() {
            return Ok(());
        }
        let started = std::mem::take(&mut self.started);
        self.store.set_attempts_started(&started)?;
        if self.feed.listened() {
            for s in &started {
                self.feed.publish(FeedItem::Running {
                    task: s.task,
                    attempt: s.attempt,
                    at: now,
                });
            }
        }
        // Keep the buffer for the next turn.
        self.started = started;
        self.started.clear();
        Ok(())
    }

    /// Durable before visible: commit, tell the observer, then act.
    fn commit_and_act(
        &mut self,
        step: Step,
        now: Millis,
        observer: &mut dyn Observer,
    ) -> Result<(), DriverError> {
        let Step { changes, commands } = step;
        if !changes.is_empty() {
            self.store.apply(&changes, now)?;
            observer.changes(&changes);
            for c in &changes {
                if let Change::JobState { job, state } = c {
                    if state.is_terminal() {
                        self.access.remove(job);
                    }
                }
            }
            if self.feed.listened() {
                // The changes are not needed here any more: moved, not copied.
                self.feed.publish(FeedItem::Changes { at: now, changes });
            }
        }
        for cmd in commands {
            match cmd {
                Command::Start {
                    task,
                    attempt,
                    spec,
                    ..
                } => {
                    let req = self.start_request(task, attempt, &spec);
                    let expand = req
                        .as_ref()
                        .ok()
                        .and_then(|r| r.env.get("TESSERA_EXPAND").map(PathBuf::from));
                    if let Some(p) = &expand {
                        let _ = std::fs::remove_file(p); // never read a previous attempt's file
                    }
                    self.running
                        .insert((task, attempt), Running { spec, expand });
                    let prepared = req.and_then(|req| {
                        self.share_job_dir(task.job, req.user.as_ref())?;
                        Ok(req)
                    });
                    match prepared {
                        Ok(req) => self.exec.start(req),
                        // Reported like a start the executor refused.
                        Err(reason) => drop(self.tx.send(Input::Exec(ExecEvent::Exited {
                            task,
                            attempt,
                            result: Err(reason),
                            usage: Default::default(),
                        }))),
                    }
                }
                Command::Kill { task, attempt } => self.exec.kill(task, attempt),
                Command::Suspend { task, attempt } => self.exec.suspend(task, attempt),
                Command::Resume { task, attempt } => self.exec.resume(task, attempt),
                // The job's tasks carry the reason in the store; this is the log.
                Command::Fault { job, message } => {
                    eprintln!("tessera-driver: job {job}: {message}")
                }
            }
        }
        Ok(())
    }

    /// A job control event (suspend, resume, retry, priority): checked,
    /// handled, and committed before the caller hears back, so what it reads
    /// next already shows the change. A job that ended before this
    /// scheduler started is first taken back from the store
    /// ([`Scheduler::adopt`]), so it can be retried (and other requests get
    /// the answer they get for any ended job); a refused request lets go of
    /// it again.
    fn control(
        &mut self,
        event: Event,
        now: Millis,
        observer: &mut dyn Observer,
    ) -> Result<(), DriverError> {
        // A retried job counts its parents again: those the scheduler does
        // not hold are told first (after it takes the job back, if need be).
        let retried = match event {
            Event::RetryJob { job } => Some(job),
            _ => None,
        };
        if let Some(job) = retried {
            let parents = self.sched.unknown_parents_of(job);
            self.tell_ended(&parents)?;
        }
        let adopted = match self.sched.check(&event) {
            Ok(()) => None,
            Err(ControlError::UnknownJob(job)) => {
                self.adopt(job, now, observer)?;
                if retried.is_some() {
                    let parents = self.sched.unknown_parents_of(job);
                    self.tell_ended(&parents)?;
                }
                Some(job)
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = self.sched.check(&event) {
            if let Some(job) = adopted {
                self.sched.forget(job);
            }
            return Err(e.into());
        }
        let step = self.sched.handle(event, now);
        self.commit_and_act(step, now, observer)
    }

    /// Loads an ended job the scheduler does not hold and hands it to the
    /// core.
    fn adopt(
        &mut self,
        job: JobId,
        now: Millis,
        observer: &mut dyn Observer,
    ) -> Result<(), DriverError> {
        let snap = self
            .store
            .load_job(job)?
            .ok_or(DriverError::NoSuchJob(job))?;
        if !snap.state.is_terminal() {
            return Err(DriverError::NotHeld(job));
        }
        let step = self.sched.adopt(&snap, now)?;
        self.hold_access(job, snap.project, &snap.spec);
        self.commit_and_act(step, now, observer)
    }
}

/// How far back a restarted driver charges past attempts: the quota window,
/// or eight half-lives of fair share's decay (after which an attempt weighs
/// under 0.4% of its cpu time), whichever is longer.
pub fn usage_horizon(policy: Policy) -> Millis {
    policy
        .quota_window_ms
        .max(policy.usage_half_life_ms.saturating_mul(8))
}
