//! Live streams: a job's events as Server-Sent Events, and a task's log
//! followed as it grows. Both listen to the driver's feed
//! ([`tessera_driver::Feed`]); the store stays the truth, so a listener that
//! falls behind is sent a fresh snapshot rather than a guess.
//!
//! Event names on `GET /api/v1/jobs/{id}/events` (each `data:` is one JSON
//! object, each event has an increasing `id:`):
//!
//! | event | data |
//! |---|---|
//! | `snapshot` | the job as `GET /api/v1/jobs/{id}` shows it (first, and after `lagged`) |
//! | `job` | `{state}`: the job moved |
//! | `task` | `{index, state, attempt, failures, reason}` |
//! | `attempt_started` | `{index, attempt, node, at}` |
//! | `attempt_ended` | `{index, attempt, outcome, message, wall_ms, cpu_ms, max_rss_kb, at}` |
//! | `progress` | `{index, attempt, done, total}` (not durable) |
//! | `tasks_added` | `{first_index, count}` (an expansion) |
//! | `suspended` | `{suspended}` |
//! | `priority` | `{priority}` |
//! | `lagged` | `{missed}`: events were dropped; a `snapshot` follows |
//! | `end` | `{state}`: the job has ended; the stream closes |

use crate::jobs::{self, Stream};
use crate::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::poll_fn;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tessera_driver::FeedItem;
use tessera_store::JobRecord;
use tessera_types::{AttemptNo, Change, JobId, TaskRef, TaskState};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// How often a followed log is read again while its attempt runs (the feed
/// says when it ends; the file says nothing when it grows).
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// Bytes read from a followed log per step at most.
const FOLLOW_CHUNK: usize = 256 << 10;

/// Events buffered per stream before the sender waits for the client.
const STREAM_BUFFER: usize = 256;

/// `GET /api/v1/jobs/{id}/events`: the job's events from now until it ends.
pub(crate) async fn job_events(state: AppState, job: JobRecord) -> Response {
    // Subscribe before reading the snapshot, so nothing falls between them
    // (an event may then repeat what the snapshot shows, which is harmless).
    let mut feed = state.driver.subscribe();
    let mut closing = state.closing.subscribe();
    let (tx, mut rx) = mpsc::channel::<Event>(STREAM_BUFFER);
    tokio::spawn(async move {
        let mut out = Out { tx, next_id: 0 };
        let id = job.id;
        if !out.snapshot(&state, job).await {
            return;
        }
        loop {
            let item = tokio::select! {
                item = feed.recv() => item,
                () = out.tx.closed() => return,
                () = shutting_down(&mut closing) => return,
            };
            match item {
                Ok(item) => {
                    if !out.item(id, &item).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    if !out.send("lagged", json!({ "missed": missed })).await {
                        return;
                    }
                    let Ok(Some(job)) = reload(&state, id).await else {
                        return;
                    };
                    if !out.snapshot(&state, job).await {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    let events = poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok::<_, Infallible>)));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The sending end of one event stream. Each method returns `false` once the
/// stream is over (the client went away, or the job ended).
struct Out {
    tx: mpsc::Sender<Event>,
    next_id: u64,
}

impl Out {
    async fn send(&mut self, name: &str, data: Value) -> bool {
        let event = Event::default()
            .event(name)
            .id(self.next_id.to_string())
            .data(data.to_string());
        self.next_id += 1;
        self.tx.send(event).await.is_ok()
    }

    /// Sends the job as the store has it; ends the stream if it has ended.
    async fn snapshot(&mut self, state: &AppState, job: JobRecord) -> bool {
        let ended = job.state.is_terminal();
        let job_state = job.state;
        let view = match jobs::view(state, job).await {
            Ok(v) => serde_json::to_value(v).unwrap_or(Value::Null),
            Err(_) => return false,
        };
        if !self.send("snapshot", view).await {
            return false;
        }
        if ended {
            self.send("end", json!({ "state": job_state })).await;
            return false;
        }
        true
    }

    async fn item(&mut self, job: JobId, item: &FeedItem) -> bool {
        match item {
            FeedItem::Progress {
                task,
                attempt,
                progress,
            } if task.job == job => {
                let data = json!({
                    "index": task.index, "attempt": attempt,
                    "done": progress.done, "total": progress.total,
                });
                self.send("progress", data).await
            }
            FeedItem::Progress { .. } | FeedItem::Running { .. } => true,
            FeedItem::Changes { changes, .. } => {
                for change in changes.iter().filter(|c| c.job() == job) {
                    let (name, data) = describe(change);
                    if !self.send(name, data).await {
                        return false;
                    }
                    if let Change::JobState { state, .. } = change {
                        if state.is_terminal() {
                            self.send("end", json!({ "state": state })).await;
                            return false;
                        }
                    }
                }
                true
            }
        }
    }
}

/// A change as an event: its name and its data.
fn describe(change: &Change) -> (&'static str, Value) {
    match change {
        Change::JobState { state, .. } => ("job", json!({ "state": state })),
        Change::TasksAdded {
            first_index, tasks, ..
        } => (
            "tasks_added",
            json!({ "first_index": first_index, "count": tasks.len() }),
        ),
        Change::Task {
            task,
            state,
            attempt,
            failures,
            reason,
            ..
        } => (
            "task",
            json!({
                "index": task.index, "state": state, "attempt": attempt,
                "failures": failures, "reason": reason,
            }),
        ),
        Change::AttemptStarted {
            task,
            attempt,
            node,
            at,
        } => (
            "attempt_started",
            json!({ "index": task.index, "attempt": attempt, "node": node, "at": at }),
        ),
        Change::AttemptEnded {
            task,
            attempt,
            outcome,
            usage,
            at,
        } => (
            "attempt_ended",
            json!({
                "index": task.index, "attempt": attempt,
                "outcome": outcome.kind(), "message": outcome.describe(),
                "wall_ms": usage.wall_ms, "cpu_ms": usage.cpu_ms,
                "max_rss_kb": usage.max_rss_kb, "at": at,
            }),
        ),
        Change::JobSuspended { suspended, .. } => ("suspended", json!({ "suspended": suspended })),
        Change::JobPriority { priority, .. } => ("priority", json!({ "priority": priority })),
    }
}

async fn reload(state: &AppState, id: JobId) -> Result<Option<JobRecord>, ApiError> {
    state.db(move |db| Ok(db.job(id)?)).await
}

/// `GET .../tasks/{index}/logs?follow=true`: the log of one attempt (the
/// latest, or `attempt`) from its start, then what it writes, until the
/// attempt ends. A task that has not started yet is waited for; one that
/// ends without running (skipped, cancelled) ends the stream at once.
pub(crate) async fn follow_log(
    state: AppState,
    job: JobRecord,
    index: u32,
    attempt: Option<AttemptNo>,
    stream: Stream,
) -> Result<Response, ApiError> {
    let tref = TaskRef::new(job.id, index);
    let mut feed = state.driver.subscribe();
    let mut closing = state.closing.subscribe();
    let task = jobs::task(&state, job.id, index).await?;
    if let Some(a) = attempt {
        if a == 0 || a > task.attempt {
            return Err(ApiError::NotFound(format!(
                "task {tref} ({}) has no attempt {a}; it has had {}",
                task.name, task.attempt
            )));
        }
    }
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let name = task.name.clone();
        // Which attempt: the one asked for, else the latest, else the first
        // one to start.
        let mut number = attempt.unwrap_or(task.attempt);
        let mut ended = attempt_over(&task, number);
        let mut offset = 0u64;
        loop {
            if number > 0 {
                let path = jobs::log_path(&state, &job, &name, number, stream);
                match read_from(path, offset).await {
                    Some(bytes) if !bytes.is_empty() => {
                        offset += bytes.len() as u64;
                        if tx.send(Bytes::from(bytes)).await.is_err() {
                            return;
                        }
                        continue; // more may be waiting
                    }
                    _ if ended => return,
                    _ => {}
                }
            } else if ended {
                return;
            }
            // Wait for the attempt to end (or start), or for the file to grow.
            let wait = tokio::time::sleep(FOLLOW_POLL);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    () = tx.closed() => return,
                    () = shutting_down(&mut closing) => return,
                    item = feed.recv() => match item {
                        Ok(item) => {
                            if let Some(started) = watch(&item, tref, number) {
                                match started {
                                    Watch::Started(n) => number = n,
                                    Watch::Ended => ended = true,
                                }
                                break;
                            }
                        }
                        Err(RecvError::Lagged(_)) => {
                            // Ask the store what we missed.
                            let Ok(t) = jobs::task(&state, job.id, index).await else { return };
                            if number == 0 && t.attempt > 0 {
                                number = t.attempt;
                            }
                            ended = attempt_over(&t, number);
                            break;
                        }
                        Err(RecvError::Closed) => {
                            ended = true;
                            break;
                        }
                    },
                }
            }
        }
    });
    let body = poll_fn(move |cx| rx.poll_recv(cx).map(|b| b.map(Ok::<_, Infallible>)));
    Ok((
        [
            ("content-type", "text/plain; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("x-content-type-options", "nosniff"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

enum Watch {
    Started(AttemptNo),
    Ended,
}

/// What a feed item means for following attempt `number` of `task` (0: the
/// first attempt that starts).
fn watch(item: &Arc<FeedItem>, task: TaskRef, number: AttemptNo) -> Option<Watch> {
    let FeedItem::Changes { changes, .. } = item.as_ref() else {
        return None;
    };
    let mut seen = None;
    for change in changes {
        match change {
            Change::AttemptStarted {
                task: t, attempt, ..
            } if *t == task && number == 0 => seen = Some(Watch::Started(*attempt)),
            Change::AttemptEnded {
                task: t, attempt, ..
            } if *t == task && *attempt == number => return Some(Watch::Ended),
            // Ended without (another) attempt: skipped or cancelled.
            Change::Task { task: t, state, .. }
                if *t == task && number == 0 && state.is_terminal() =>
            {
                return Some(Watch::Ended)
            }
            _ => {}
        }
    }
    seen
}

/// Whether attempt `number` of a task is over, as its row tells.
fn attempt_over(task: &tessera_store::TaskRecord, number: AttemptNo) -> bool {
    if number == 0 {
        return task.state.is_terminal();
    }
    task.attempt > number || task.state != TaskState::Running
}

/// Completes when the server starts shutting down.
async fn shutting_down(closing: &mut tokio::sync::watch::Receiver<bool>) {
    // An error means the state is gone: as good as shut down.
    let _ = closing.wait_for(|c| *c).await;
}

/// Up to [`FOLLOW_CHUNK`] bytes of `path` from `offset`; `None` while the
/// file does not exist.
async fn read_from(path: PathBuf, offset: u64) -> Option<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path).ok()?;
        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut buf = Vec::with_capacity(FOLLOW_CHUNK.min(64 << 10));
        file.take(FOLLOW_CHUNK as u64).read_to_end(&mut buf).ok()?;
        Some(buf)
    })
    .await
    .ok()
    .flatten()
}
