use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tessera_types::{Action, AttemptNo, AttemptUsage, JobId, PlaceRule, Progress, Reach, TaskRef};

/// Runs attempts and reports what happens to them as [`ExecEvent`]s.
///
/// Calls return at once; the events arrive later on the executor's
/// [`EventSink`], possibly from other threads (and possibly from inside the
/// call, for an attempt that ends at once). For one attempt they come in
/// order: `Started` (only when a process was started), any `Progress`, then
/// exactly one `Exited` (or `Lost`, from executors that can lose track).
pub trait Executor: Send {
    /// Starts an attempt. Its progress and its end arrive later as events.
    fn start(&mut self, req: StartRequest);
    /// Kills the attempt's whole process group (a no-op if it is already
    /// gone). Its `Exited` event still follows.
    fn kill(&mut self, task: TaskRef, attempt: AttemptNo);
    /// Kills every running attempt (shutdown, Ctrl-C); `Exited` events follow.
    fn kill_all(&mut self);
    /// Stops the attempt where it is (its whole process group), until
    /// [`resume`](Executor::resume). A no-op if it is gone, and for
    /// executors without processes. A stopped attempt can still be killed.
    fn suspend(&mut self, _task: TaskRef, _attempt: AttemptNo) {}
    /// Continues an attempt stopped by [`suspend`](Executor::suspend).
    fn resume(&mut self, _task: TaskRef, _attempt: AttemptNo) {}
}

/// One attempt to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartRequest {
    pub task: TaskRef,
    pub attempt: AttemptNo,
    /// The task's name; names its log files.
    pub name: String,
    pub action: Action,
    /// Set on top of the executor's own environment.
    pub env: BTreeMap<String, String>,
    /// The attempt's current directory; created if missing.
    pub workdir: PathBuf,
    /// Where `<name>.<attempt>.stdout.log` and `.stderr.log` go; created if missing.
    pub log_dir: PathBuf,
    /// The container image to run the action in. Only a container executor
    /// (tessera-docker's) runs images, with its own default image when this
    /// is `None`; the job compiler refuses images while the scheduler has none.
    pub image: Option<String>,
    /// CPU cores the attempt may use (0: no limit). Enforced by executors
    /// that can (containers); local processes are only scheduled by it.
    pub cpu: u32,
    /// Memory the attempt may use, in MiB (0: no limit). Enforced like `cpu`.
    pub memory_mb: u64,
    /// Labels the node that runs it must carry (the task's
    /// `resources.labels`); placement among workers honours them.
    pub labels: BTreeMap<String, String>,
    /// Its further placement rules, with the nodes the jobs they name had
    /// run on when it was started; placement among workers honours them.
    pub placement: Placement,
    /// What it may touch on the file system; its process gets it as
    /// [`REACH_ENV`](tessera_types::REACH_ENV) (built-in ops check their
    /// paths against it), and whoever moves files for it stays inside it.
    /// Empty: not confined (tests and embedders that build requests by
    /// hand); the driver always gives one.
    pub reach: Reach,
    /// The user it runs as (its project's own uid), when this process may
    /// switch users; `None`: as this process's user.
    pub user: Option<crate::RunAs>,
    /// Host folders bound into its container (resolved from the task's
    /// volume mounts by the driver, already inside its reach); only a
    /// container executor uses them.
    pub mounts: Vec<Bind>,
}

/// A task's placement rules (`resources.rules`) and, for those that name
/// jobs, the nodes the store records those jobs' attempts on (`None`: this
/// machine). Placement adds the nodes it hands their later attempts to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub rules: Vec<PlaceRule>,
    pub ran_on: Vec<(JobId, Option<String>)>,
}

/// A host folder seen inside a container.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bind {
    pub source: PathBuf,
    pub target: PathBuf,
    #[serde(default)]
    pub read_only: bool,
}

/// What happened to an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecEvent {
    /// Its process started. `pid` is also its process group id (on `node`).
    Started {
        task: TaskRef,
        attempt: AttemptNo,
        pid: u32,
        /// The worker it runs on; `None` for this machine.
        node: Option<String>,
    },
    Progress {
        task: TaskRef,
        attempt: AttemptNo,
        progress: Progress,
    },
    /// It ended: `Ok` for success, else a one-line reason (see
    /// [`ExecError`](crate::ExecError) for the forms it takes).
    Exited {
        task: TaskRef,
        attempt: AttemptNo,
        result: Result<(), String>,
        usage: AttemptUsage,
    },
    /// Nobody knows how it ended (a remote worker stopped renewing its
    /// lease, or handed it back): it does not count against the task's
    /// retries. Ends the attempt like `Exited`.
    Lost {
        task: TaskRef,
        attempt: AttemptNo,
        reason: String,
    },
}

impl ExecEvent {
    /// The attempt the event is about.
    pub fn attempt(&self) -> (TaskRef, AttemptNo) {
        match self {
            ExecEvent::Started { task, attempt, .. }
            | ExecEvent::Progress { task, attempt, .. }
            | ExecEvent::Exited { task, attempt, .. }
            | ExecEvent::Lost { task, attempt, .. } => (*task, *attempt),
        }
    }
}

/// Where an executor sends its events (typically into the driver's channel).
pub type EventSink = Arc<dyn Fn(ExecEvent) + Send + Sync>;

/// A boxed executor is one (a server picks its host executor at start).
impl<E: Executor + ?Sized> Executor for Box<E> {
    fn start(&mut self, req: StartRequest) {
        (**self).start(req)
    }
    fn kill(&mut self, task: TaskRef, attempt: AttemptNo) {
        (**self).kill(task, attempt)
    }
    fn kill_all(&mut self) {
        (**self).kill_all()
    }
    fn suspend(&mut self, task: TaskRef, attempt: AttemptNo) {
        (**self).suspend(task, attempt)
    }
    fn resume(&mut self, task: TaskRef, attempt: AttemptNo) {
        (**self).resume(task, attempt)
    }
}
