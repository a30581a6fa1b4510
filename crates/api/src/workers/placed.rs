//! [`Placed`]: the driver's executor when workers take part. `start`
//! queues the attempt in the [`Pool`]; a worker takes it with its lease
//! request, or the server's own node (with local slots beside workers)
//! takes it on a thread of its own and runs it in-process with a local
//! executor. Kill, suspend and resume follow the attempt to wherever it
//! runs: orders for a worker (with its next heartbeat or lease answer),
//! signals for a local attempt.

use super::pool::{NodeInfo, Order, Pool, LOCAL_ID};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use tessera_exec::{EventSink, ExecEvent, Executor, StartRequest};
use tessera_types::{Action, AttemptNo, AttemptUsage, TaskRef};

/// The longest the local node's thread sleeps between looks at the queue.
const LOCAL_TICK: Duration = Duration::from_millis(200);

type Local = Arc<Mutex<Box<dyn Executor>>>;

/// Runs attempts on the pool's nodes (see the module doc).
pub struct Placed {
    pool: Arc<Pool>,
    /// The executor of the server's own node, if it has one.
    local: Option<Local>,
}

fn lock(local: &Local) -> std::sync::MutexGuard<'_, Box<dyn Executor>> {
    local.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Placed {
    /// Every attempt runs on workers (`--slots 0`).
    pub fn remote(pool: Arc<Pool>, sink: EventSink) -> Self {
        pool.set_sink(sink);
        Self { pool, local: None }
    }

    /// The server's own slots are the node `info` beside the workers; its
    /// attempts run on the executor `make` builds around the sink it is
    /// given (a `LocalExecutor`), with `TESSERA_NODE` set to its name.
    pub fn with_local(
        pool: Arc<Pool>,
        sink: EventSink,
        info: NodeInfo,
        make: impl FnOnce(EventSink) -> Box<dyn Executor>,
    ) -> Self {
        pool.set_sink(sink.clone());
        let name = info.name.clone();
        pool.add_local(info, tessera_service::now_ms());
        let weak = Arc::downgrade(&pool);
        let name_in_sink = name.clone();
        let local_sink: EventSink = Arc::new(move |event: ExecEvent| {
            if let ExecEvent::Exited { task, attempt, .. } | ExecEvent::Lost { task, attempt, .. } =
                &event
            {
                if let Some(pool) = weak.upgrade() {
                    let mut inner = pool.lock();
                    if let Some(node) = inner.workers.iter_mut().find(|w| w.local) {
                        node.leases.remove(&(*task, *attempt));
                    }
                    match &event {
                        ExecEvent::Exited { result: Ok(()), .. } => inner.ended_well(*task),
                        _ => inner.ended_badly(*task, &name_in_sink),
                    }
                    drop(inner);
                    pool.kick();
                }
            }
            sink(event);
        });
        let local: Local = Arc::new(Mutex::new(make(local_sink)));
        spawn_local(Arc::downgrade(&pool), local.clone(), name);
        Self {
            pool,
            local: Some(local),
        }
    }

    /// Gives the attempt's holder an order; false if no worker holds it.
    fn order(&self, task: TaskRef, attempt: AttemptNo, order: Order) -> bool {
        let mut inner = self.pool.lock();
        let Some(w) = inner.holder(task, attempt) else {
            return false;
        };
        if w.local {
            drop(inner);
            if let Some(local) = &self.local {
                // Waits for the local thread if it is starting it right now.
                let mut exec = lock(local);
                match order {
                    Order::Kill => exec.kill(task, attempt),
                    Order::Suspend => exec.suspend(task, attempt),
                    Order::Resume => exec.resume(task, attempt),
                }
            }
            return true;
        }
        w.orders.push((task, attempt, order));
        drop(inner);
        self.pool.wake.notify_waiters();
        true
    }
}

/// The local node: takes what placement gives it whenever the pool is
/// kicked (or every [`LOCAL_TICK`], for waits that ran out) and starts it.
/// Ends when the pool is closed or gone.
fn spawn_local(pool: Weak<Pool>, local: Local, name: String) {
    let spawned = std::thread::Builder::new()
        .name("tessera-local-node".into())
        .spawn(move || loop {
            let Some(pool) = pool.upgrade() else { return };
            if pool.closed() {
                return;
            }
            // The executor is held from taking to starting, so a kill that
            // finds the attempt on this node reaches its process.
            let mut exec = lock(&local);
            let taken = {
                let mut inner = pool.lock();
                match inner.index(LOCAL_ID) {
                    Some(i) => inner.assign(i, Instant::now()),
                    None => Vec::new(),
                }
            };
            for mut req in taken {
                req.env.insert("TESSERA_NODE".into(), name.clone());
                exec.start(req);
            }
            drop(exec);
            pool.wait_kick(LOCAL_TICK);
        });
    if let Err(e) = spawned {
        eprintln!(
            "tessera-api: cannot start the local node's thread ({e}); only workers run tasks"
        );
    }
}

impl Executor for Placed {
    fn start(&mut self, req: StartRequest) {
        if req.action == Action::Noop {
            // Nothing runs: no node needed.
            self.pool.emit(ExecEvent::Exited {
                task: req.task,
                attempt: req.attempt,
                result: Ok(()),
                usage: AttemptUsage::default(),
            });
            return;
        }
        let input = self.pool.input_of(&req);
        let mut inner = self.pool.lock();
        let avoid = inner.avoid(req.task);
        inner.seed_ran_on(&req);
        let queued = super::place::Queued::new(req, input, Instant::now()).avoiding(avoid);
        inner.queue.push_back(queued);
        inner.review();
        drop(inner);
        self.pool.kick();
    }

    fn kill(&mut self, task: TaskRef, attempt: AttemptNo) {
        if self.order(task, attempt, Order::Kill) {
            return;
        }
        let mut inner = self.pool.lock();
        let before = inner.queue.len();
        inner
            .queue
            .retain(|q| (q.req.task, q.req.attempt) != (task, attempt));
        if inner.queue.len() < before {
            drop(inner);
            self.pool.emit(ExecEvent::Exited {
                task,
                attempt,
                result: Err("killed before a node took it".into()),
                usage: Default::default(),
            });
        }
    }

    /// The server is stopping: local attempts are killed (their `Exited`
    /// events follow), queued ones and those workers hold are lost
    /// (workers are fenced off them and kill their copies).
    fn kill_all(&mut self) {
        self.pool.close();
        if let Some(local) = &self.local {
            lock(local).kill_all();
        }
        let now = tessera_service::now_ms();
        let mut inner = self.pool.lock();
        let queued: Vec<_> = inner
            .queue
            .drain(..)
            .map(|q| (q.req.task, q.req.attempt))
            .collect();
        for (task, attempt) in queued {
            self.pool.emit(ExecEvent::Lost {
                task,
                attempt,
                reason: "the server stopped before a node took it".into(),
            });
        }
        let ids: Vec<String> = inner
            .workers
            .iter()
            .filter(|w| !w.local)
            .map(|w| w.id.clone())
            .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::mpsc;
    use tessera_types::JobId;

    /// Stands in for the local executor: records what it is asked.
    struct Recorder(mpsc::Sender<String>);

    impl Executor for Recorder {
        fn start(&mut self, req: StartRequest) {
            let node = req.env.get("TESSERA_NODE").cloned().unwrap_or_default();
            let _ = self.0.send(format!("start {} on {node}", req.task.index));
        }
        fn kill(&mut self, task: TaskRef, _: AttemptNo) {
            let _ = self.0.send(format!("kill {}", task.index));
        }
        fn kill_all(&mut self) {
            let _ = self.0.send("kill all".into());
        }
    }

    fn req(index: u32, labels: &[(&str, &str)]) -> StartRequest {
        StartRequest {
            task: TaskRef::new(JobId(1), index),
            attempt: 1,
            name: format!("t{index}"),
            action: Action::Command {
                argv: vec!["true".into()],
            },
            env: BTreeMap::new(),
            workdir: "/nonexistent".into(),
            log_dir: "/nonexistent".into(),
            image: None,
            cpu: 1,
            memory_mb: 0,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            placement: Default::default(),
            reach: Default::default(),
            user: None,
            mounts: Vec::new(),
        }
    }

    #[test]
    fn the_local_node_runs_what_fits_it_and_kills_reach_it() {
        let pool = Pool::new(Duration::from_secs(10));
        let (tx, rx) = mpsc::channel();
        let (etx, erx) = mpsc::channel();
        let etx = Mutex::new(etx);
        let sink: EventSink = Arc::new(move |e| drop(etx.lock().unwrap().send(e)));
        let info = NodeInfo {
            name: "here".into(),
            slots: 1,
            ..Default::default()
        };
        let mut placed = Placed::with_local(pool.clone(), sink, info, |_| Box::new(Recorder(tx)));
        let capacity = Arc::new(Mutex::new(0));
        let seen = capacity.clone();
        pool.on_capacity(move |n| *seen.lock().unwrap() = n);
        assert_eq!(*capacity.lock().unwrap(), 1, "the local slot counts");
        placed.start(req(0, &[]));
        placed.start(req(1, &[]));
        placed.start(req(2, &[("gpu", "a100")]));
        let wait = Duration::from_secs(5);
        assert_eq!(rx.recv_timeout(wait).unwrap(), "start 0 on here");
        // One slot: the second waits; the labelled one can never run here.
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        let unplaceable = crate::workers::unplaceable_views(Some(&pool));
        assert_eq!(unplaceable.len(), 1);
        assert_eq!(unplaceable[0]["index"], 2);
        placed.kill(TaskRef::new(JobId(1), 0), 1);
        assert_eq!(rx.recv_timeout(wait).unwrap(), "kill 0");
        // A queued one is ended by the kill itself.
        placed.kill(TaskRef::new(JobId(1), 2), 1);
        match erx.recv_timeout(wait).unwrap() {
            ExecEvent::Exited { task, result, .. } => {
                assert_eq!(task.index, 2);
                assert_eq!(result, Err("killed before a node took it".into()));
            }
            other => panic!("{other:?}"),
        }
        placed.kill_all();
        assert_eq!(rx.recv_timeout(wait).unwrap(), "kill all");
        match erx.recv_timeout(wait).unwrap() {
            ExecEvent::Lost { task, .. } => assert_eq!(task.index, 1),
            other => panic!("{other:?}"),
        }
    }
}
