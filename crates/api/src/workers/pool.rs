//! The [`Pool`]: attempts waiting for a worker, the workers, and the lease
//! each worker holds on each attempt it runs. [`RemoteExecutor`] is the
//! driver's side of it; the worker routes are the other side.
//!
//! A lease lasts [`Pool::lease`] from the worker's last heartbeat. When one
//! lapses the worker is *lost*: every attempt it held is reported
//! [`ExecEvent::Lost`] (the task is retried elsewhere without using up a
//! retry) and anything it says later about those attempts is refused
//! (*fenced*) by attempt number.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tessera_exec::{EventSink, ExecEvent, Executor, StartRequest};
use tessera_types::{AttemptNo, TaskRef};

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
    /// Attempts it holds: the cpu each takes and when it was handed over.
    pub leases: HashMap<(TaskRef, AttemptNo), (u32, Instant)>,
    pub orders: Vec<(TaskRef, AttemptNo, Order)>,
    /// Server paths of the inputs it has a verified copy of (http workers).
    pub holds: HashSet<PathBuf>,
    /// Its disk is below its `--min-free-mb`: it takes nothing new.
    pub disk_low: bool,
}

impl Worker {
    pub fn used(&self) -> u32 {
        self.leases.values().map(|(cpu, _)| cpu).sum()
    }
}

/// Given-up attempts remembered for their fencing message, at most.
const GIVEN_UP_KEPT: usize = 100_000;

/// Attempts given up, by attempt: when and why (for the fencing message).
type GivenUp = HashMap<(TaskRef, AttemptNo), (u64, String)>;

#[derive(Default)]
pub(crate) struct Inner {
    pub queue: VecDeque<StartRequest>,
    pub workers: Vec<Worker>,
    pub given_up: GivenUp,
    next_id: u64,
}

/// Told the ready workers' slots whenever they change.
type CapacityHook = Box<dyn Fn(u32) + Send>;

/// The shared state of the worker routes and the [`RemoteExecutor`].
pub struct Pool {
    inner: Mutex<Inner>,
    sink: Mutex<Option<EventSink>>,
    capacity: Mutex<Option<CapacityHook>>,
    /// Woken when work is queued or orders are given.
    pub(crate) wake: tokio::sync::Notify,
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
            wake: tokio::sync::Notify::new(),
            lease,
            files: Default::default(),
        })
    }

    /// Tells `set` the slots of the ready workers each time they change
    /// (the driver's [`set_capacity`](tessera_driver::DriverHandle::set_capacity)).
    pub fn on_capacity(&self, set: impl Fn(u32) + Send + 'static) {
        set(self.lock().capacity());
        *self.capacity.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(set));
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Adds a worker; one of the same name that was there before is lost
    /// (it restarted). Returns its id.
    pub(crate) fn register(&self, info: NodeInfo, token: String, now_ms: u64) -> String {
        let mut inner = self.lock();
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
        inner.workers.push(Worker {
            id: id.clone(),
            token,
            info,
            state: NodeState::Ready,
            last_seen: Instant::now(),
            last_seen_ms: now_ms,
            leases: HashMap::new(),
            orders: Vec::new(),
            holds: HashSet::new(),
            disk_low: false,
        });
        self.capacity_changed(&inner);
        id
    }

    /// Marks a worker lost and reports every attempt it held lost.
    pub(crate) fn lose(&self, inner: &mut Inner, id: &str, why: &str, now_ms: u64) {
        if inner.given_up.len() > GIVEN_UP_KEPT {
            // Only the fencing message gets vaguer for very old attempts.
            inner.given_up.clear();
        }
        let Some(w) = inner.workers.iter_mut().find(|w| w.id == id) else {
            return;
        };
        w.state = NodeState::Lost;
        w.orders.clear();
        let held: Vec<_> = w.leases.drain().map(|(k, _)| k).collect();
        for (task, attempt) in held {
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

    /// Ends one attempt a worker held as lost (it says it does not run it).
    pub(crate) fn lose_attempt(
        &self,
        inner: &mut Inner,
        key: (TaskRef, AttemptNo),
        why: String,
        now_ms: u64,
    ) {
        let (task, attempt) = key;
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
            .filter(|w| w.state != NodeState::Lost && w.last_seen.elapsed() > self.lease)
            .map(|w| (w.id.clone(), w.info.name.clone(), w.last_seen_ms))
            .collect();
        for (id, name, seen) in lapsed {
            let why = format!(
                "worker {name} stopped renewing its lease (last heartbeat {} ms ago)",
                now_ms.saturating_sub(seen)
            );
            self.lose(&mut inner, &id, &why, now_ms);
        }
    }
}

impl Inner {
    /// Slots of the workers that take work.
    pub fn capacity(&self) -> u32 {
        self.workers
            .iter()
            .filter(|w| w.state == NodeState::Ready)
            .map(|w| w.info.slots)
            .sum()
    }

    pub fn worker(&mut self, id: &str) -> Option<&mut Worker> {
        self.workers.iter_mut().find(|w| w.id == id)
    }

    /// Which worker holds an attempt.
    fn holder(&mut self, task: TaskRef, attempt: AttemptNo) -> Option<&mut Worker> {
        self.workers
            .iter_mut()
            .find(|w| w.leases.contains_key(&(task, attempt)))
    }

    /// Takes from the queue, in order, what fits `free` slots.
    pub fn take(&mut self, mut free: u32) -> Vec<StartRequest> {
        let mut taken = Vec::new();
        let mut i = 0;
        while i < self.queue.len() && free > 0 {
            let cpu = self.queue[i].cpu.max(1);
            if cpu <= free {
                free -= cpu;
                taken.extend(self.queue.remove(i));
            } else {
                i += 1;
            }
        }
        taken
    }
}

/// The driver's executor for attempts that run on workers: `start` queues,
/// workers take from the queue; kill, suspend and resume become orders the
/// holder gets with its next heartbeat or lease answer.
pub struct RemoteExecutor {
    pool: Arc<Pool>,
}

impl RemoteExecutor {
    pub fn new(pool: Arc<Pool>, sink: EventSink) -> Self {
        *pool.sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(sink);
        Self { pool }
    }

    fn order(&self, task: TaskRef, attempt: AttemptNo, order: Order) -> bool {
        let mut inner = self.pool.lock();
        let Some(w) = inner.holder(task, attempt) else {
            return false;
        };
        w.orders.push((task, attempt, order));
        drop(inner);
        self.pool.wake.notify_waiters();
        true
    }
}

impl Executor for RemoteExecutor {
    fn start(&mut self, req: StartRequest) {
        self.pool.lock().queue.push_back(req);
        self.pool.wake.notify_waiters();
    }

    fn kill(&mut self, task: TaskRef, attempt: AttemptNo) {
        if self.order(task, attempt, Order::Kill) {
            return;
        }
        let mut inner = self.pool.lock();
        let before = inner.queue.len();
        inner
            .queue
            .retain(|r| (r.task, r.attempt) != (task, attempt));
        if inner.queue.len() < before {
            drop(inner);
            self.pool.emit(ExecEvent::Exited {
                task,
                attempt,
                result: Err("killed before a worker took it".into()),
                usage: Default::default(),
            });
        }
    }

    /// The server is stopping: queued attempts and those workers hold are
    /// all lost (workers are fenced off them and kill their copies).
    fn kill_all(&mut self) {
        let now = crate::state::now_ms();
        let mut inner = self.pool.lock();
        let queued: Vec<_> = inner.queue.drain(..).map(|r| (r.task, r.attempt)).collect();
        for (task, attempt) in queued {
            self.pool.emit(ExecEvent::Lost {
                task,
                attempt,
                reason: "the server stopped before a worker took it".into(),
            });
        }
        let ids: Vec<String> = inner.workers.iter().map(|w| w.id.clone()).collect();
        for id in ids {
            self.pool.lose(&mut inner, &id, "the server stopped", now);
        }
    }

    fn suspend(&mut self, task: TaskRef, attempt: AttemptNo) {
        self.order(task, attempt, Order::Suspend);
    }

    fn resume(&mut self, task: TaskRef, attempt: AttemptNo) {
        self.order(task, attempt, Order::Resume);
    }
}
