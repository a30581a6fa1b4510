//! What an admin sees of the nodes (`GET /api/v1/nodes`, the nodes page)
//! and how one is drained.

use super::{NodeState, Pool, Workers};
use crate::ApiError;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use tessera_service::{now_ms, Admin};

/// Drains the live worker named `node`: no new attempts go to it.
pub(crate) async fn drain(
    State(s): State<Workers>,
    _: Admin,
    Path(node): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_draining(&*s.pool()?, &node, true)?;
    Ok(Json(json!({ "ok": true })))
}

pub(crate) async fn undrain(
    State(s): State<Workers>,
    _: Admin,
    Path(node): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_draining(&*s.pool()?, &node, false)?;
    Ok(Json(json!({ "ok": true })))
}

/// Drains the live node named `node`, or makes a draining one ready again
/// (a worker shutting down says so again in its next heartbeat).
pub(crate) fn set_draining(pool: &Pool, node: &str, drain: bool) -> Result<(), ApiError> {
    let mut inner = pool.lock();
    let w = if drain {
        inner
            .workers
            .iter_mut()
            .find(|w| w.info.name == node && w.state != NodeState::Lost)
            .ok_or_else(|| ApiError::Conflict(format!("no live node is named {node}")))?
    } else {
        inner
            .workers
            .iter_mut()
            .find(|w| w.info.name == node && w.state == NodeState::Draining)
            .ok_or_else(|| ApiError::Conflict(format!("no draining node is named {node}")))?
    };
    w.state = if drain {
        NodeState::Draining
    } else {
        NodeState::Ready
    };
    pool.capacity_changed(&inner);
    if !drain {
        pool.kick();
    }
    Ok(())
}

/// The nodes (workers, and the server's own slots when it has a local
/// node): state, slots, labels, last heartbeat, running attempts; and the
/// queued attempts no ready node could ever take, with the reason; what
/// each node ended in the last 10 minutes.
pub(crate) async fn nodes(State(s): State<Workers>, a: Admin) -> Result<Json<Value>, ApiError> {
    let recent = super::throughput::recent(&s.service, &a).await?;
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

pub(crate) use super::throughput::recent as recent_node_usage;

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
                "recent": super::throughput::view(&w.info.name, w.local, recent),
            })
        })
        .collect()
}
