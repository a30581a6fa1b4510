//! Live streams over HTTP: a job's events ([`tessera_service::JobEvent`])
//! as Server-Sent Events, and a followed log as a streamed text body.
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

use crate::auth::{JobAccess, Need};
use crate::views::JobView;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::poll_fn;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;
use tessera_service::{FollowedLog, JobEvent};
use tessera_types::Change;

/// `GET /api/v1/jobs/{id}/events`: the job's events from now until it ends.
pub(crate) fn job_events<R: Need>(state: &AppState, job: &JobAccess<R>) -> Response {
    let mut events = state.service.job_events(job);
    let mut next_id = 0u64;
    let events = poll_fn(move |cx| {
        events.poll_next(cx).map(|e| {
            e.map(|e| {
                let (name, data) = describe(&e);
                let event = Event::default()
                    .event(name)
                    .id(next_id.to_string())
                    .data(data.to_string());
                next_id += 1;
                Ok::<_, Infallible>(event)
            })
        })
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// An event's name and its data.
fn describe(event: &JobEvent) -> (&'static str, Value) {
    match event {
        JobEvent::Snapshot(status) => (
            "snapshot",
            serde_json::to_value(JobView::status(status)).unwrap_or(Value::Null),
        ),
        JobEvent::Change(change) => describe_change(change),
        JobEvent::Progress {
            index,
            attempt,
            progress,
        } => (
            "progress",
            json!({
                "index": index, "attempt": attempt,
                "done": progress.done, "total": progress.total,
            }),
        ),
        JobEvent::Lagged { missed } => ("lagged", json!({ "missed": missed })),
        JobEvent::End { state } => ("end", json!({ "state": state })),
    }
}

/// A change as an event: its name and its data.
fn describe_change(change: &Change) -> (&'static str, Value) {
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

/// `GET .../tasks/{index}/logs?follow=true`: the followed log as a text
/// body that ends with the attempt.
pub(crate) fn followed_log(mut log: FollowedLog) -> Response {
    let body = poll_fn(move |cx| {
        log.poll_next(cx)
            .map(|b| b.map(|b| Ok::<_, Infallible>(Bytes::from(b))))
    });
    (
        [
            ("content-type", "text/plain; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("x-content-type-options", "nosniff"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
