//! Live streams: a job's events (Server-Sent Events) and a task's log
//! followed while the task runs.

use crate::harness::Server;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// `a` reports progress and writes twice with a pause between; `b` needs
/// `a`; `c` runs only if `a` fails, so it is skipped.
const FLOW: &str = r#"name: live
tasks:
  - name: a
    action: {kind: script, script: "echo one; echo '#tessera-progress 1 2'; sleep 0.8; echo two; echo '#tessera-progress 2 2'"}
  - {name: b, deps: [{selector: a}], action: {kind: command, argv: ['true']}}
  - {name: c, deps: [{selector: a, condition: failure}], action: {kind: command, argv: ['true']}}
"#;

async fn submit(s: &Server, key: &str) -> i64 {
    let p = s.project("live", key).await;
    let r = s
        .post_yaml(&format!("/api/v1/projects/{p}/jobs"), key, FLOW)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_i64().unwrap()
}

/// Opens a streaming GET; returns its status, content type and body stream.
async fn open(s: &Server, path: &str, key: &str) -> (StatusCode, String, Body) {
    let req = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let resp = s.app.clone().oneshot(req).await.unwrap();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status(), ct, resp.into_body())
}

/// Reads a body to its end (at most 20 s), with the time each chunk came.
async fn read_timed(body: Body) -> Vec<(Instant, Vec<u8>)> {
    let mut stream = body.into_data_stream();
    let mut chunks = Vec::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            chunks.push((Instant::now(), chunk.unwrap().to_vec()));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the stream did not end within 20 s");
    chunks
}

/// Parses `event:`/`data:` blocks of a text/event-stream.
fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            Some((name?, serde_json::from_str(&data).unwrap()))
        })
        .collect()
}

#[tokio::test]
async fn job_events_stream_every_step_and_end_when_the_job_ends() {
    let s = Server::start();
    let key = s.admin_key.clone();
    let job = submit(&s, &key).await;
    let (status, ct, body) = open(&s, &format!("/api/v1/jobs/{job}/events"), &key).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let text: Vec<u8> = read_timed(body)
        .await
        .into_iter()
        .flat_map(|(_, c)| c)
        .collect();
    let events = sse_events(&String::from_utf8(text).unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"snapshot"), "{names:?}");
    assert_eq!(events[0].1["id"], job, "{:?}", events[0]);
    assert_eq!(names.last(), Some(&"end"), "{names:?}");
    assert_eq!(events.last().unwrap().1["state"], "succeeded");
    let has = |name: &str, index: u64, key: &str, value: &str| {
        events
            .iter()
            .any(|(n, d)| n == name && d["index"] == index && d[key] == value)
    };
    // (a may already run when the stream opens: the snapshot shows that.)
    assert!(has("task", 1, "state", "running"), "{events:?}");
    assert!(
        events
            .iter()
            .any(|(n, d)| n == "attempt_started" && d["index"] == 1 && d["attempt"] == 1),
        "{events:?}"
    );
    assert!(
        has("attempt_ended", 0, "outcome", "succeeded"),
        "{events:?}"
    );
    assert!(
        has("attempt_ended", 1, "outcome", "succeeded"),
        "{events:?}"
    );
    assert!(has("task", 2, "state", "skipped"), "{events:?}");
    assert!(
        events
            .iter()
            .any(|(n, d)| n == "progress" && d["index"] == 0 && d["done"] == 2),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(n, d)| n == "job" && d["state"] == "succeeded"),
        "{events:?}"
    );

    // An ended job: its snapshot, then the end at once.
    let (_, _, body) = open(&s, &format!("/api/v1/jobs/{job}/events"), &key).await;
    let text: Vec<u8> = read_timed(body)
        .await
        .into_iter()
        .flat_map(|(_, c)| c)
        .collect();
    let names: Vec<String> = sse_events(&String::from_utf8(text).unwrap())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["snapshot", "end"]);
}

#[tokio::test]
async fn a_followed_log_arrives_while_the_task_runs_and_ends_with_it() {
    let s = Server::start();
    let key = s.admin_key.clone();
    let job = submit(&s, &key).await;
    // Asked at once: the task may not have started; the follow waits for it.
    let (status, ct, body) = open(
        &s,
        &format!("/api/v1/jobs/{job}/tasks/0/logs?follow=true"),
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/plain"), "{ct}");
    let chunks = read_timed(body).await;
    let text: String = chunks
        .iter()
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert!(text.starts_with("one\n"), "{text:?}");
    assert!(text.contains("two\n"), "{text:?}");
    // "one" came while the task still slept before writing "two": the log
    // was streamed, not read once at the end.
    let first = chunks.iter().find(|(_, c)| !c.is_empty()).unwrap().0;
    let last = chunks.last().unwrap().0;
    assert!(
        last.duration_since(first) >= Duration::from_millis(400),
        "the whole log came at once ({:?} apart)",
        last.duration_since(first)
    );

    // A task that is skipped never runs: following it ends, empty.
    let (status, _, body) = open(
        &s,
        &format!("/api/v1/jobs/{job}/tasks/2/logs?follow=true"),
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rest: usize = read_timed(body).await.iter().map(|(_, c)| c.len()).sum();
    assert_eq!(rest, 0);

    // An attempt that does not exist is a 404, follow or not.
    let r = s
        .get(
            &format!("/api/v1/jobs/{job}/tasks/0/logs?follow=true&attempt=9"),
            &key,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}
