//! Worker agents: the routes `tessera worker` talks to, and the
//! [`Placed`] executor through which the driver hands them attempts.
//!
//! A worker registers (its slots, cpus, memory, labels, free disk), then
//! long-polls `lease` for attempts that fit its free slots, heartbeats to
//! renew its leases (and to hear kill, suspend and resume orders), and
//! reports each attempt's events. A worker that stops heartbeating for
//! [`Pool::lease`] is lost (see [`pool`]); what it reports later is refused
//! with 409 `fenced`. `release` hands every lease back at once (graceful
//! shutdown).
//!
//! Data moves one of two ways, chosen by each worker at register
//! (`data`): `shared`, the worker sees the server's data directory at the
//! same path (NFS...); or `http`, the worker keeps its own copies at the
//! same absolute paths, fetching each attempt's inputs and sending back
//! its outputs through the fenced file routes of [`files`].
//!
//! Which attempts a node takes is decided by [`place`] (fit, labels,
//! executor: an attempt that names an image only on a node that offers
//! `docker`; locality, spread); with `--workers` beside local slots the server's own
//! slots are a node too, run by [`Placed`].

mod files;
mod place;
mod placed;
mod pool;
mod throughput;
mod tokens;

pub(crate) use files::{download, remove, upload, upload_status};
pub use placed::Placed;
pub use pool::{NodeInfo, NodeState, Pool};
pub use tokens::{create_worker_token, revoke_worker_token, token_file};

use crate::body::JsonBody;
use crate::ApiError;
use axum::extract::{FromRef, FromRequestParts, Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::Json;
use pool::Order;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tessera_exec::ExecEvent;
use tessera_service::{now_ms, Admin, Service};
use tessera_types::{Action, AttemptNo, AttemptUsage, JobId, Progress, TaskRef};

pub(crate) use tokens::Verified;

/// The longest a lease request waits for work.
const MAX_WAIT_MS: u64 = 30_000;

/// What the worker routes use: the pool (when tasks run on workers), the
/// worker tokens verified so far, and the service (its data directory, its
/// closing, its upload limit and secret checks).
#[derive(Clone)]
pub(crate) struct Workers {
    pub(crate) pool: Option<Arc<Pool>>,
    pub(crate) tokens: Arc<Verified>,
    pub(crate) service: Service,
}

impl Workers {
    fn pool(&self) -> Result<Arc<Pool>, ApiError> {
        self.pool.clone().ok_or_else(|| {
            ApiError::Conflict(
                "this server runs its tasks itself; start it with --workers (or --slots 0) to \
                 use workers"
                    .into(),
            )
        })
    }
}

/// Proof that the caller sent a valid worker token (its name inside).
pub(crate) struct WorkerToken(pub String);

impl<S> FromRequestParts<S> for WorkerToken
where
    S: Send + Sync,
    Workers: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "no worker token; send one as `Authorization: Bearer twk_...`".into(),
                )
            })?
            .to_string();
        if !tokens::is_worker_token(&key) {
            return Err(ApiError::Unauthorized(
                "worker routes take a worker token (twk_..., from `tessera admin \
                 create-worker-token`), not an API key"
                    .into(),
            ));
        }
        Verified::check(&Workers::from_ref(state), key)
            .await
            .map(WorkerToken)
    }
}

/// The worker `id`, which `token` must have registered.
fn owned<'a>(
    inner: &'a mut pool::Inner,
    id: &str,
    token: &WorkerToken,
) -> Result<&'a mut pool::Worker, ApiError> {
    let w = inner
        .worker(id)
        .filter(|w| !w.local)
        .ok_or_else(|| gone(id))?;
    if w.token != token.0 {
        return Err(ApiError::Forbidden(format!(
            "worker {id} registered with another worker token"
        )));
    }
    Ok(w)
}

fn gone(id: &str) -> ApiError {
    ApiError::Conflict(format!(
        "fenced: worker {id} is not registered (its leases lapsed or it left); kill what it \
         runs and register again"
    ))
}

pub(crate) async fn register(
    State(s): State<Workers>,
    token: WorkerToken,
    JsonBody(info): JsonBody<NodeInfo>,
) -> Result<Json<Value>, ApiError> {
    let pool = s.pool()?;
    if info.slots == 0 || info.name.is_empty() {
        return Err(ApiError::Invalid(
            "a worker needs a name and at least one slot".into(),
        ));
    }
    if info.data != "shared" && info.data != "http" {
        return Err(ApiError::Invalid(format!(
            "data {:?}: a worker's data mode is shared or http",
            info.data
        )));
    }
    let id = pool
        .register(info, token.0, now_ms())
        .map_err(ApiError::Conflict)?;
    Ok(Json(json!({
        "id": id,
        "lease_ms": pool.lease.as_millis() as u64,
        "data_dir": s.service.data_dir(),
    })))
}

/// An attempt handed to a worker.
#[derive(Serialize)]
struct Assignment {
    job: JobId,
    index: u32,
    attempt: AttemptNo,
    name: String,
    action: Action,
    env: BTreeMap<String, String>,
    workdir: PathBuf,
    log_dir: PathBuf,
    cpu: u32,
    memory_mb: u64,
    /// The container image it runs in (only nodes that offer `docker` get
    /// one); absent: a host process.
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    /// What it reads and may send back, for workers with `data: http`.
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<files::AttemptFiles>,
    /// What it may touch (its job folder, its project's uploads, its
    /// job's grants): the worker refuses a plan that strays outside it and
    /// gives it to the attempt's process.
    reach: tessera_types::Reach,
    /// The uid and gid it runs as (its project's task user), for a worker
    /// running as root; absent: the worker's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid: Option<u32>,
}

#[derive(Serialize)]
struct OrderView {
    job: JobId,
    index: u32,
    attempt: AttemptNo,
    order: &'static str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeaseBody {
    #[serde(default)]
    wait_ms: u64,
    /// Server paths of inputs the worker holds a verified copy of.
    #[serde(default)]
    holds: Option<Vec<PathBuf>>,
}

/// The most `holds` paths kept per worker.
const MAX_HOLDS: usize = 1_000;

fn set_holds(w: &mut pool::Worker, holds: Option<Vec<PathBuf>>) {
    if let Some(h) = holds {
        w.holds = h.into_iter().take(MAX_HOLDS).collect();
    }
}

fn orders(w: &mut pool::Worker) -> Vec<OrderView> {
    w.orders
        .drain(..)
        .map(|(task, attempt, order)| OrderView {
            job: task.job,
            index: task.index,
            attempt,
            order: match order {
                Order::Kill => "kill",
                Order::Suspend => "suspend",
                Order::Resume => "resume",
            },
        })
        .collect()
}

/// Long-polls for attempts that fit the worker's free slots (and orders).
pub(crate) async fn lease(
    State(s): State<Workers>,
    token: WorkerToken,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody<LeaseBody>,
) -> Result<Json<Value>, ApiError> {
    let pool = s.pool()?;
    let until = tokio::time::Instant::now() + Duration::from_millis(body.wait_ms.min(MAX_WAIT_MS));
    let mut first = true;
    loop {
        let woken = pool.wake.notified();
        let answer = {
            let mut inner = pool.lock();
            let w = owned(&mut inner, &id, &token)?;
            if w.state == NodeState::Lost {
                return Err(gone(&id));
            }
            if first {
                // The request shows the worker alive now; a wait that goes
                // on does not (a stopped worker's request stays open).
                w.last_seen = std::time::Instant::now();
                w.last_seen_ms = now_ms();
                set_holds(w, body.holds.take());
                first = false;
            }
            let http = w.info.data == "http";
            let orders = orders(w);
            let who = inner.index(&id).expect("found above");
            let taken = inner.assign(who, std::time::Instant::now());
            if !taken.is_empty() || !orders.is_empty() || tokio::time::Instant::now() >= until {
                if http {
                    let held: std::collections::HashSet<_> = inner
                        .workers
                        .iter()
                        .flat_map(|w| w.leases.keys().copied())
                        .collect();
                    pool.files.retain(|k| held.contains(k));
                }
                Some((taken, orders, http))
            } else {
                None
            }
        };
        if let Some((taken, orders, http)) = answer {
            // The plans hash inputs (cached): off the async threads.
            let plans: Vec<_> = if http && !taken.is_empty() {
                let (p, t) = (pool.clone(), taken.clone());
                tokio::task::spawn_blocking(move || {
                    t.iter()
                        .map(|r| Some((*p.files.prepare(r)).clone()))
                        .collect()
                })
                .await?
            } else {
                vec![None; taken.len()]
            };
            let attempts: Vec<Assignment> = taken
                .into_iter()
                .zip(plans)
                .map(|(r, files)| Assignment {
                    job: r.task.job,
                    index: r.task.index,
                    attempt: r.attempt,
                    name: r.name,
                    action: r.action,
                    env: r.env,
                    workdir: r.workdir,
                    log_dir: r.log_dir,
                    cpu: r.cpu,
                    memory_mb: r.memory_mb,
                    image: r.image,
                    files,
                    reach: r.reach,
                    uid: r.user.as_ref().map(|u| u.uid),
                    gid: r.user.as_ref().map(|u| u.gid),
                })
                .collect();
            return Ok(Json(json!({ "attempts": attempts, "orders": orders })));
        }
        // Waits for work, an order, the server closing or the deadline
        // (then one last look and the empty answer).
        let mut closing = s.service.closing();
        if *closing.borrow() {
            return Ok(Json(json!({ "attempts": [], "orders": [] })));
        }
        tokio::select! {
            () = woken => {}
            _ = closing.changed() => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeartbeatBody {
    #[serde(default)]
    draining: bool,
    /// `[job, index, attempt]` of every attempt the worker runs. When
    /// given, a lease it does not run (its lease answer never reached it)
    /// is lost after a lease's time, and an attempt it runs without a
    /// lease is ordered killed.
    #[serde(default)]
    running: Option<Vec<(i64, u32, AttemptNo)>>,
    /// Server paths of inputs the worker holds a verified copy of.
    #[serde(default)]
    holds: Option<Vec<PathBuf>>,
    /// Its disk is below its `--min-free-mb`: it takes nothing new.
    #[serde(default)]
    disk_low: Option<bool>,
}

/// Renews every lease the worker holds; answers with its orders.
pub(crate) async fn heartbeat(
    State(s): State<Workers>,
    token: WorkerToken,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<HeartbeatBody>,
) -> Result<Json<Value>, ApiError> {
    let pool = s.pool()?;
    let mut inner = pool.lock();
    let w = owned(&mut inner, &id, &token)?;
    if w.state == NodeState::Lost {
        return Err(gone(&id));
    }
    w.last_seen = std::time::Instant::now();
    w.last_seen_ms = now_ms();
    let was = w.state;
    set_holds(w, body.holds);
    let low_before = w.disk_low;
    if let Some(low) = body.disk_low {
        w.disk_low = low;
    }
    let low_changed = low_before != w.disk_low;
    if body.draining {
        w.state = NodeState::Draining;
    }
    let mut orders = orders(w);
    if let Some(running) = body.running {
        let running: std::collections::HashSet<_> = running
            .into_iter()
            .map(|(job, index, attempt)| (TaskRef::new(JobId(job), index), attempt))
            .collect();
        let orphans: Vec<_> = w
            .leases
            .iter()
            .filter(|(k, l)| !running.contains(k) && l.since.elapsed() > pool.lease)
            .map(|(k, _)| *k)
            .collect();
        for (task, attempt) in running {
            if !w.leases.contains_key(&(task, attempt)) {
                orders.push(OrderView {
                    job: task.job,
                    index: task.index,
                    attempt,
                    order: "kill",
                });
            }
        }
        let name = w.info.name.clone();
        for key in &orphans {
            w.leases.remove(key);
        }
        for key in orphans {
            let why = format!("worker {name} does not run it (it never got the attempt)");
            pool.lose_attempt(&mut inner, key, &name, why, now_ms());
        }
    }
    if (was != NodeState::Draining && body.draining) || low_changed {
        pool.capacity_changed(&inner);
    }
    // Freed slots, new holdings or a disk with room again may change where
    // queued attempts go (nothing to place: nobody needs waking).
    let replace = !inner.queue.is_empty();
    drop(inner);
    if replace {
        pool.kick();
    }
    Ok(Json(json!({ "orders": orders })))
}

/// One thing that happened to an attempt on a worker.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum WireEvent {
    Started {
        pid: u32,
    },
    Progress {
        done: u64,
        total: u64,
    },
    Exited {
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        usage: AttemptUsage,
    },
    /// The worker could not move the attempt's files (the server or the
    /// network failed, or its disk is full): retried without using a retry.
    Lost {
        reason: String,
    },
}

/// Whether `token`'s worker `id` still holds the attempt; else 409 `fenced`.
pub(crate) fn holds_attempt(
    inner: &mut pool::Inner,
    id: &str,
    token: &WorkerToken,
    (task, attempt): (TaskRef, AttemptNo),
) -> Result<(), ApiError> {
    if inner.worker(id).is_some() {
        owned(inner, id, token)?;
    }
    let held = inner
        .worker(id)
        .is_some_and(|w| w.state != NodeState::Lost && w.leases.contains_key(&(task, attempt)));
    if held {
        return Ok(());
    }
    let why = match inner.given_up.get(&(task, attempt)) {
        Some((at, reason)) => format!(" at {at} ms ({reason})"),
        None => String::new(),
    };
    Err(ApiError::Conflict(format!(
        "fenced: attempt {attempt} of task {} of job {} was given up{why}; kill it",
        task.index, task.job.0
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsBody {
    events: Vec<WireEvent>,
}

/// Reports an attempt's events; 409 `fenced` if the worker no longer holds it.
pub(crate) async fn attempt_events(
    State(s): State<Workers>,
    token: WorkerToken,
    Path((id, job, index, attempt)): Path<(String, i64, u32, AttemptNo)>,
    JsonBody(body): JsonBody<EventsBody>,
) -> Result<Json<Value>, ApiError> {
    let pool = s.pool()?;
    let task = TaskRef::new(JobId(job), index);
    let mut inner = pool.lock();
    holds_attempt(&mut inner, &id, &token, (task, attempt))?;
    // Only an attempt's end frees a slot (and may change where a retry goes).
    let mut ended = false;
    for event in body.events {
        let event = match event {
            WireEvent::Started { pid } => ExecEvent::Started {
                task,
                attempt,
                pid,
                node: inner.worker(&id).map(|w| w.info.name.clone()),
            },
            WireEvent::Progress { done, total } => ExecEvent::Progress {
                task,
                attempt,
                progress: Progress { done, total },
            },
            WireEvent::Exited { error, usage } => {
                ended = true;
                let name = inner.worker(&id).map(|w| {
                    w.leases.remove(&(task, attempt));
                    w.info.name.clone()
                });
                match (&error, name) {
                    (None, _) => inner.ended_well(task),
                    (Some(_), Some(name)) => inner.ended_badly(task, &name),
                    (Some(_), None) => {}
                }
                ExecEvent::Exited {
                    task,
                    attempt,
                    result: error.map_or(Ok(()), Err),
                    usage,
                }
            }
            WireEvent::Lost { reason } => {
                ended = true;
                let name = inner.worker(&id).map_or(String::new(), |w| {
                    w.leases.remove(&(task, attempt));
                    w.info.name.clone()
                });
                pool.lose_attempt(&mut inner, (task, attempt), &name, reason, now_ms());
                continue;
            }
        };
        pool.emit(event);
    }
    // Progress reports come often: waking every waiting node for them
    // would only make each look at the queue again for nothing.
    let replace = ended && !inner.queue.is_empty();
    drop(inner);
    if replace {
        pool.kick();
    }
    Ok(Json(json!({ "ok": true })))
}

/// Hands every lease back (the attempts are retried at once elsewhere) and
/// removes the worker.
pub(crate) async fn release(
    State(s): State<Workers>,
    token: WorkerToken,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pool = s.pool()?;
    let mut inner = pool.lock();
    let name = owned(&mut inner, &id, &token)?.info.name.clone();
    let why = format!("handed back by worker {name} (it is shutting down)");
    pool.lose(&mut inner, &id, &why, now_ms());
    inner.workers.retain(|w| w.id != id);
    Ok(Json(json!({ "ok": true })))
}

/// Drains the live worker named `node`: no new attempts go to it.
pub(crate) async fn drain(
    State(s): State<Workers>,
    _: Admin,
    Path(node): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pool = s.pool()?;
    let mut inner = pool.lock();
    let w = inner
        .workers
        .iter_mut()
        .find(|w| w.info.name == node && w.state != NodeState::Lost)
        .ok_or_else(|| ApiError::Conflict(format!("no live node is named {node}")))?;
    w.state = NodeState::Draining;
    pool.capacity_changed(&inner);
    Ok(Json(json!({ "ok": true })))
}

/// The nodes (workers, and the server's own slots when it has a local
/// node): state, slots, labels, last heartbeat, running attempts; and the
/// queued attempts no ready node could ever take, with the reason; what
/// each node ended in the last 10 minutes.
pub(crate) async fn nodes(State(s): State<Workers>, a: Admin) -> Result<Json<Value>, ApiError> {
    let recent = throughput::recent(&s.service, &a).await?;
    Ok(Json(json!({
        "nodes": node_views(s.pool.as_deref(), &recent),
        "unplaceable": unplaceable_views(s.pool.as_deref()),
    })))
}

/// Queued attempts no ready node could ever take: job, index, attempt,
/// name and why.
pub(crate) fn unplaceable_views(pool: Option<&Pool>) -> Vec<Value> {
    let Some(pool) = pool else {
        return Vec::new();
    };
    let inner = pool.lock();
    inner
        .queue
        .iter()
        .filter_map(|q| {
            let why = q.unplaceable.as_ref()?;
            Some(json!({
                "job": q.req.task.job.0,
                "index": q.req.task.index,
                "attempt": q.req.attempt,
                "name": q.req.name,
                "reason": why,
            }))
        })
        .collect()
}

pub(crate) use throughput::recent as recent_node_usage;

/// Every worker the pool knows, as `GET /api/v1/nodes` and the nodes page
/// show it (none without a pool), with its `recent` usage (see
/// [`throughput`]).
pub(crate) fn node_views(pool: Option<&Pool>, recent: &[tessera_store::NodeUsage]) -> Vec<Value> {
    let Some(pool) = pool else {
        return Vec::new();
    };
    let now = now_ms();
    let inner = pool.lock();
    inner
        .workers
        .iter()
        .map(|w| {
            let mut running: Vec<_> = w.leases.keys().map(|(t, a)| (t.job.0, t.index, *a)).collect();
            running.sort_unstable();
            json!({
                "id": w.id,
                "name": w.info.name,
                "local": w.local,
                "state": w.state.as_str(),
                "slots": w.info.slots,
                "used": w.used(),
                "cpus": w.info.cpus,
                "memory_mb": w.info.memory_mb,
                "gpus": w.info.gpus,
                "disk_free_mb": w.info.disk_free_mb,
                "labels": w.info.labels,
                "executors": w.info.executors,
                "data": w.info.data,
                "disk_low": w.disk_low,
                "holds": w.holds.len(),
                "last_heartbeat_ms": if w.local { now } else { w.last_seen_ms },
                "running": running.iter().map(|(j, i, a)| json!({"job": j, "index": i, "attempt": a})).collect::<Vec<_>>(),
                "recent": throughput::view(&w.info.name, recent),
            })
        })
        .collect()
}

/// Loses workers whose leases lapsed (and lets waits for locality and
/// spread run out), every `lease / 4` or 250 ms, on a thread of its own that
/// ends with the pool. Started by `AppState::with_workers`.
pub(crate) fn expire_leases(pool: &Arc<Pool>) {
    let every = (pool.lease / 4).clamp(Duration::from_millis(50), Duration::from_millis(250));
    let pool = Arc::downgrade(pool);
    let spawned = std::thread::Builder::new()
        .name("tessera-leases".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            match pool.upgrade() {
                Some(pool) => pool.expire(now_ms()),
                None => return,
            }
        });
    if let Err(e) = spawned {
        eprintln!("tessera-api: cannot start the lease timer ({e}); lost workers go unnoticed");
    }
}
