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
mod history;
mod nodes;
mod place;
mod placed;
mod pool;
mod report;
mod throughput;
mod tokens;

pub(crate) use files::{download, remove, upload, upload_status};
pub(crate) use nodes::{
    drain, node_views, nodes, recent_node_usage, set_draining, undrain, unplaceable_views,
};
pub use placed::Placed;
pub use pool::{NodeInfo, NodeState, Pool};
pub(crate) use report::{attempt_events, holds_attempt, release};
pub use tokens::{create_worker_token, revoke_worker_token, token_file};

use crate::body::JsonBody;
use crate::ApiError;
use axum::extract::{Path, State};
use axum::Json;
use pool::Order;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tessera_service::now_ms;
use tessera_types::{Action, AttemptNo, JobId, TaskRef};

pub(crate) use tokens::{Verified, WorkerToken, Workers};

/// The longest a lease request waits for work.
const MAX_WAIT_MS: u64 = 30_000;

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
    /// Volumes bound into its container (at the same host paths on the
    /// worker: a docker worker must see the server's volumes there).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mounts: Vec<tessera_exec::Bind>,
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
                    mounts: r.mounts,
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
