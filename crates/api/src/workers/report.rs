//! What a worker reports: its attempts' events (fenced: only while it
//! holds the attempt), and its leaving.

use super::pool::{self, NodeState};
use super::{owned, WorkerToken, Workers};
use crate::body::JsonBody;
use crate::ApiError;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_exec::ExecEvent;
use tessera_service::now_ms;
use tessera_types::{AttemptNo, AttemptUsage, JobId, Progress, TaskRef};

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
