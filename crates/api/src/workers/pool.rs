//! The [`Pool`]: attempts waiting for a worker, the workers, and the lease
//! each worker holds on each attempt it runs. [`Placed`] is the
//! driver's side of it; the worker routes are the other side.
//!
//! A lease lasts [`Pool::lease`] from the worker's last heartbeat. When one
//! lapses the worker is *lost*: every attempt it held is reported
//! [`ExecEvent::Lost`] (the task is retried elsewhere without using up a
//! retry) and anything it says later about those attempts is refused
//! (*fenced*) by attempt number.
//!
//! With `--workers` beside local slots, the server's own slots are one more
//! node here (`local`): it never expires and speaks no HTTP; its attempts
//! run in-process (see [`Placed`](super::Placed)).

use super::place::{self, Lease, Queued};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tessera_exec::{EventSink, ExecEvent, StartRequest};
use tessera_types::{AttemptNo, TaskRef};

/// The id of the server's own node.
pub(crate) const LOCAL_ID: &str = "local";

/// A worker's state as `GET /api/v1/nodes` shows it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NodeState {
    Ready,
    Draining,
    Lost,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Ready => "ready",
            NodeState::Draining => "draining",
            NodeState::Lost => "lost",
        }
    }
}

/// What a worker said about itself when it registered.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    pub name: String,
    pub slots: u32,
    #[serde(default)]
    pub cpus: u32,
    #[serde(default)]
    pub memory_mb: u64,
    #[serde(default)]
    pub disk_free_mb: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub executors: Vec<String>,
    /// GPUs it has (told, not yet placed on: the core refuses tasks that
    /// ask for GPUs).
    #[serde(default)]
    pub gpus: u32,
    /// How it gets the files of its attempts: `shared` (it sees the
    /// server's data directory) or `http` (it fetches and sends them).
    #[serde(default = "shared")]
    pub data: String,
}

fn shared() -> String {
    "shared".into()
}

/// Something a worker must do to an attempt it runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Order {
    Kill,
    Suspend,
    Resume,
}

pub(crate) struct Worker {
    pub id: String,
    /// The name of the worker token it registered with: only that token
    /// may speak for it.
    pub token: String,
    pub info: NodeInfo,
    pub state: NodeState,
    pub last_seen: Instant,
    pub last_seen_ms: u64,
    /// Attempts it holds: the cpu and memory each takes and when it was
    /// handed over.
    pub leases: HashMap<(TaskRef, AttemptNo), Lease>,
    pub orders: Vec<(TaskRef, AttemptNo, Order)>,
    /// Inputs it holds a copy of (workers without the shared filesystem
    /// say so in their lease and heartbeat bodies): placement prefers it
    /// for attempts that read them.
    pub holds: HashSet<PathBuf>,
    /// The server's own slots (never expires; its attempts run in-process).
    pub local: bool,
    /// Its disk is below its `--min-free-mb`: it takes nothing new.
    pub disk_low: bool,
}

impl Worker {
    pub fn new(id: String, token: String, info: NodeInfo, now_ms: u64) -> Self {
        Self {
            id,
            token,
            info,
            state: NodeState::Ready,
            last_seen: Instant::now(),
            last_seen_ms: now_ms,
            leases: HashMap::new(),
            orders: Vec::new(),
            holds: HashSet::new(),
            local: false,
            disk_low: false,
        }
    }

    /// Ready, and with room on its disk: placement may give it work.
    pub fn takes_work(&self) -> bool {
        self.state == NodeState::Ready && !self.disk_low
    }

    pub fn used(&self) -> u32 {
        self.leases.values().map(|l| l.cpu).sum()
    }
}

/// Given-up attempts remembered for their fencing message, at most.
const GIVEN_UP_KEPT: usize = 100_000;

/// Attempts given up, by attempt: when and why (for the fencing message).
type GivenUp = HashMap<(TaskRef, AttemptNo), (u64, String)>;

#[derive(Default)]
pub(crate) struct Inner {
    /// Attempts no node took yet, in the scheduler's order.
    pub queue: VecDeque<Queued>,
    pub workers: Vec<Worker>,
    pub given_up: GivenUp,
    /// Per task, the names of the nodes its attempts were lost or failed
    /// on, until one succeeds: its retries prefer other nodes.
    pub bad_nodes: HashMap<TaskRef, Vec<String>>,
    /// The nodes each job's attempts were handed to, for placement rules
    /// that name jobs (seeded from the store as such attempts are queued).
    pub ran_on: place::RanOn,
    next_id: u64,
}

/// Told the ready workers' slots whenever they change.
type CapacityHook = Box<dyn Fn(u32) + Send>;

/// Names the file an attempt reads, for locality.
type InputHook = Box<dyn Fn(&StartRequest) -> Option<PathBuf> + Send + Sync>;

/// The shared state of the worker routes and the [`Placed`] executor.
pub struct Pool {
    inner: Mutex<Inner>,
    sink: Mutex<Option<EventSink>>,
    capacity: Mutex<Option<CapacityHook>>,
    input: Mutex<Option<Arc<InputHook>>>,
    /// Woken when work is queued or orders are given.
    pub(crate) wake: tokio::sync::Notify,
    /// The same for the local node's thread: set, then notified.
    local_wake: (Mutex<bool>, Condvar),
    /// The server is stopping: nothing more is placed.
    closed: AtomicBool,
    /// How long a lease lasts without a heartbeat.
    pub lease: Duration,
    /// File plans of attempts on http workers (see [`super::files`]).
    pub(crate) files: super::files::DataPlane,
}

impl Pool {
    pub fn new(lease: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::default(),
            sink: Mutex::new(None),
            capacity: Mutex::new(None),
            input: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            local_wake: (Mutex::new(false), Condvar::new()),
            closed: AtomicBool::new(false),
            lease,
            files: Default::default(),
        })
    }

    /// What the nodes that take work now said about themselves (the
    /// server's own node among them, with `--workers` and slots).
    pub fn ready_nodes(&self) -> Vec<NodeInfo> {
        let inner = self.lock();
        inner
            .workers
            .iter()
            .filter(|w| w.takes_work())
            .map(|w| w.info.clone())
            .collect()
    }

    /// Why no ready node could ever take the queued attempt of `job`
    /// (the first such, by queue order), as placement last found it.
    pub fn unplaceable(&self, job: tessera_types::JobId) -> Option<String> {
        let inner = self.lock();
        let mut queued = inner.queue.iter().filter(|q| q.req.task.job == job);
        queued.find_map(|q| q.unplaceable.clone())
    }

    /// Tells `set` the slots of the ready workers each time they change
    /// (the driver's [`set_capacity`](tessera_driver::DriverHandle::set_capacity)).
    pub fn on_capacity(&self, set: impl Fn(u32) + Send + 'static) {
        set(self.lock().capacity());
        *self.capacity.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(set));
    }

    /// Names the file each attempt reads (computed once, when it is
    /// queued): nodes that hold it are preferred for it. Without a hook,
    /// placement ignores locality.
    pub fn on_input(
        &self,
        input: impl Fn(&StartRequest) -> Option<PathBuf> + Send + Sync + 'static,
    ) {
        *self.input.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Arc::new(Box::new(input)));
    }

    /// The file `req` reads, by the hook.
    pub(crate) fn input_of(&self, req: &StartRequest) -> Option<PathBuf> {
        let hook = self
            .input
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        hook.and_then(|f| f(req))
    }

    /// Something changed that may let a node take work: wakes the waiting
    /// lease requests and the local node.
    pub(crate) fn kick(&self) {
        self.wake.notify_waiters();
        let (flag, cv) = &self.local_wake;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_all();
    }

    /// Waits (at most `limit`) for a [`kick`](Self::kick).
    pub(crate) fn wait_kick(&self, limit: Duration) {
        let (flag, cv) = &self.local_wake;
        let guard = flag.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut guard, _) = cv
            .wait_timeout_while(guard, limit, |kicked| !*kicked)
            .unwrap_or_else(PoisonError::into_inner);
        *guard = false;
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.kick();
    }

    pub(crate) fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_sink(&self, sink: EventSink) {
        *self.sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }

    pub(crate) fn emit(&self, event: ExecEvent) {
        let sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sink) = sink.as_ref() {
            sink(event);
        }
    }

    pub(crate) fn capacity_changed(&self, inner: &Inner) {
        let slots = inner.capacity();
        if let Some(set) = self
            .capacity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            set(slots);
        }
    }

    /// Adds the server's own slots as the node `local` (see [`LOCAL_ID`]).
    pub(crate) fn add_local(&self, info: NodeInfo, now_ms: u64) {
        let mut inner = self.lock();
        let mut node = Worker::new(LOCAL_ID.into(), String::new(), info, now_ms);
        node.local = true;
        inner.workers.retain(|w| !w.local);
        inner.workers.insert(0, node);
        self.capacity_changed(&inner);
    }

    /// Adds a worker; one of the same name that was there before is lost
    /// (it restarted). Returns its id, or why it is refused.
    pub(crate) fn register(
        &self,
        info: NodeInfo,
        token: String,
        now_ms: u64,
    ) -> Result<String, String> {
        let mut inner = self.lock();
        if inner
            .workers
            .iter()
            .any(|w| w.local && w.info.name == info.name)
        {
            return Err(format!(
                "{} is the name of this server's own node; give the worker another --name",
                info.name
            ));
        }
        let old: Vec<String> = inner
            .workers
            .iter()
            .filter(|w| w.info.name == info.name && w.state != NodeState::Lost)
            .map(|w| w.id.clone())
            .collect();
        for id in old {
            let why = format!("worker {} registered again (it restarted)", info.name);
            self.lose(&mut inner, &id, &why, now_ms);
        }
        inner
            .workers
            .retain(|w| w.state != NodeState::Lost || w.info.name != info.name);
        inner.next_id += 1;
        let id = format!("{}-{}", inner.next_id, now_ms % 1_000_000);
        inner
            .workers
            .push(Worker::new(id.clone(), token, info, now_ms));
        self.capacity_changed(&inner);
        drop(inner);
        self.kick();
        Ok(id)
    }

    /// Marks a worker lost and reports every attempt it held lost.
    pub(crate) fn lose(&self, inner: &mut Inner, id: &str, why: &str, now_ms: u64) {
        if inner.given_up.len() > GIVEN_UP_KEPT {
            // Only the fencing message gets vaguer for very old attempts.
            inner.given_up.clear();
        }
        let Some(w) = inner.workers.iter_mut().find(|w| w.id == id && !w.local) else {
            return;
        };
        w.state = NodeState::Lost;
        w.orders.clear();
        let name = w.info.name.clone();
        let held: Vec<_> = w.leases.drain().map(|(k, _)| k).collect();
        for (task, attempt) in held {
            inner.ended_badly(task, &name);
            inner
                .given_up
                .insert((task, attempt), (now_ms, why.to_string()));
            self.emit(ExecEvent::Lost {
                task,
                attempt,
                reason: why.to_string(),
            });
        }
        self.capacity_changed(inner);
    }

    /// Ends one attempt the worker named `node` held as lost (it says it
    /// does not run it, or could not move its files).
    pub(crate) fn lose_attempt(
        &self,
        inner: &mut Inner,
        key: (TaskRef, AttemptNo),
        node: &str,
        why: String,
        now_ms: u64,
    ) {
        let (task, attempt) = key;
        inner.ended_badly(task, node);
        inner.given_up.insert(key, (now_ms, why.clone()));
        self.emit(ExecEvent::Lost {
            task,
            attempt,
            reason: why,
        });
    }

    /// Loses every worker whose lease lapsed. Called by a timer.
    pub fn expire(&self, now_ms: u64) {
        let mut inner = self.lock();
        let lapsed: Vec<(String, String, u64)> = inner
            .workers
            .iter()
            .filter(|w| {
                !w.local && w.state != NodeState::Lost && w.last_seen.elapsed() > self.lease
            })
            .map(|w| (w.id.clone(), w.info.name.clone(), w.last_seen_ms))
            .collect();
        for (id, name, seen) in lapsed {
            let why = format!(
                "worker {name} stopped renewing its lease (last heartbeat {} ms ago)",
                now_ms.saturating_sub(seen)
            );
            self.lose(&mut inner, &id, &why, now_ms);
        }
        inner.review();
        let waiting = !inner.queue.is_empty();
        drop(inner);
        if waiting {
            // A wait for locality or spread may have run out.
            self.kick();
        }
    }
}

impl Inner {
    /// Slots of the workers that take work.
    pub fn capacity(&self) -> u32 {
        self.workers
            .iter()
            .filter(|w| w.takes_work())
            .map(|w| w.info.slots)
            .sum()
    }

    pub fn worker(&mut self, id: &str) -> Option<&mut Worker> {
        self.workers.iter_mut().find(|w| w.id == id)
    }

    /// Which worker holds an attempt.
    pub(crate) fn holder(&mut self, task: TaskRef, attempt: AttemptNo) -> Option<&mut Worker> {
        self.workers
            .iter_mut()
            .find(|w| w.leases.contains_key(&(task, attempt)))
    }

    /// Hands node `who` (an index into `workers`) what [`place::place`]
    /// gives it, recording its leases; in queue order.
    pub fn assign(&mut self, who: usize, now: Instant) -> Vec<StartRequest> {
        let picked = place::place(&self.queue, &self.workers, who, now, &self.ran_on);
        let mut taken = Vec::with_capacity(picked.len());
        for i in picked.into_iter().rev() {
            taken.extend(self.queue.remove(i).map(|q| q.req));
        }
        taken.reverse();
        let name = self.workers[who].info.name.clone();
        for r in &taken {
            self.ran(r.task.job, &name);
        }
        let node = &mut self.workers[who];
        for r in &taken {
            let lease = Lease {
                cpu: r.cpu.max(1),
                memory_mb: r.memory_mb,
                since: now,
            };
            node.leases.insert((r.task, r.attempt), lease);
        }
        taken
    }

    /// Notes which queued attempts no ready node could ever take, logging
    /// each once (and again only if it became placeable in between).
    pub fn review(&mut self) {
        for q in &mut self.queue {
            let why = place::unplaceable(&q.req, &self.workers, &self.ran_on);
            if let (Some(why), None) = (&why, &q.unplaceable) {
                eprintln!(
                    "tessera-api: attempt {} of task {} of job {} ({}) cannot be placed: {why}",
                    q.req.attempt, q.req.task.index, q.req.task.job.0, q.req.name
                );
            }
            q.unplaceable = why;
        }
    }

    /// The index of the node with id `id`.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.workers.iter().position(|w| w.id == id)
    }
}
