//! Live streams: a job's events (Server-Sent Events) and a task's log
//! followed while the task runs.

use crate::harness::Server;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use futures_util::StreamExt;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tower::ServiceExt;

/// `a` reports progress and writes "one", waits until `go` exists, then
/// writes "two" and reports again; `b` needs `a`; `c` runs only if `a`
/// fails, so it is skipped.
fn flow(go: &Path) -> String {
    format!(
        r#"name: live
tasks:
  - name: a
    action: {{kind: script, script: "echo one; echo '#tessera-progress 1 2'; while [ ! -e {go} ]; do sleep 0.05; done; echo two; echo '#tessera-progress 2 2'"}}
  - {{name: b, deps: [{{selector: a}}], action: {{kind: command, argv: ['true']}}}}
  - {{name: c, deps: [{{selector: a, condition: failure}}], action: {{kind: command, argv: ['true']}}}}
"#,
        go = go.display()
    )
}

async fn submit(s: &Server, key: &str, go: &Path) -> i64 {
    let p = s.project("live", key).await;
    let r = s
        .post_yaml(&format!("/api/v1/projects/{p}/jobs"), key, &flow(go))
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

/// Reads a body to its end (60 s at most: a bound on a hang); its chunks.
async fn read_all(body: Body) -> Vec<Vec<u8>> {
    read_releasing(body, None).await.1
}

/// A file to create once the text read so far satisfies the test.
type Release<'a> = (&'a Path, &'a dyn Fn(&str) -> bool);

/// Reads a body to its end (60 s at most); once the text read so far
/// satisfies `release.1`, creates the file `release.0`. The text read when
/// it did (empty if it never did), and every chunk.
async fn read_releasing(body: Body, mut release: Option<Release<'_>>) -> (String, Vec<Vec<u8>>) {
    let mut stream = body.into_data_stream();
    let mut chunks = Vec::new();
    let mut at_release = String::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            chunks.push(chunk.unwrap().to_vec());
            let text = String::from_utf8_lossy(&chunks.concat()).into_owned();
            if let Some((go, ready)) = release {
                if ready(&text) {
                    std::fs::write(go, "").unwrap();
                    at_release = text;
                    release = None;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the stream did not end within 60 s");
    (at_release, chunks)
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
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let job = submit(&s, &key, &go).await;
    let (status, ct, body) = open(&s, &format!("/api/v1/jobs/{job}/events"), &key).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    // `a` ends only once the stream has begun: its end, b's run and c's
    // skip are all events of the stream.
    let subscribed = |text: &str| text.contains("event: snapshot");
    let (_, chunks) = read_releasing(body, Some((&go, &subscribed))).await;
    let text = chunks.concat();
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
    let text = read_all(body).await.concat();
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
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let job = submit(&s, &key, &go).await;
    // Asked at once: the task may not have started; the follow waits for it.
    let (status, ct, body) = open(
        &s,
        &format!("/api/v1/jobs/{job}/tasks/0/logs?follow=true"),
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/plain"), "{ct}");
    // "two" is written only once "one" has come: the log is streamed while
    // the task runs, not read once at the end.
    let said_one = |text: &str| text.contains("one\n");
    let (before, chunks) = read_releasing(body, Some((&go, &said_one))).await;
    assert_eq!(before, "one\n", "the task was released early");
    let text = String::from_utf8(chunks.concat()).unwrap();
    assert_eq!(text, "one\ntwo\n");

    // A task that is skipped never runs: following it ends, empty.
    let (status, _, body) = open(
        &s,
        &format!("/api/v1/jobs/{job}/tasks/2/logs?follow=true"),
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rest: usize = read_all(body).await.iter().map(Vec::len).sum();
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
