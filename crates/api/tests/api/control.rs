//! Job control over HTTP: suspend and resume a running job, retry a failed
//! one, change a job's priority; 409s where the job's state does not allow it.

use crate::harness::Server;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Two tasks that write their shell's pid to `dir/NAME.pid` and run until
/// `dir/go` exists fill the driver's two slots; the third waits for them.
fn two_until_go_then_one(dir: &std::path::Path) -> String {
    let d = dir.display();
    let wait = |name: &str| {
        format!(
            "  - {{name: {name}, action: {{kind: command, argv: [sh, -c, 'echo $$ > {d}/{name}.pid; while [ ! -e {d}/go ]; do sleep 0.05; done']}}}}\n"
        )
    };
    format!(
        "name: held\ntasks:\n{}{}  - {{name: c, action: {{kind: command, argv: ['true']}}}}\n",
        wait("a"),
        wait("b")
    )
}

/// The state letter of process `pid` in /proc (`T`: stopped), if it exists.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The pid in `path`, once the task has written it (30 s at most).
async fn pid_in(path: &std::path::Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Ok(pid) = text.trim().parse() {
            if text.ends_with('\n') {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn submit(s: &Server, key: &str, yaml: &str) -> i64 {
    let p = s.project("ops", key).await;
    let r = s
        .post_yaml(&format!("/api/v1/projects/{p}/jobs"), key, yaml)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_i64().unwrap()
}

async fn tasks(s: &Server, job: i64, key: &str) -> Vec<Value> {
    let r = s.get(&format!("/api/v1/jobs/{job}/tasks"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

async fn post(s: &Server, path: String, key: &str) -> crate::harness::Resp {
    s.call(Method::POST, &path, Some(key), None).await
}

#[tokio::test]
async fn a_suspended_job_starts_nothing_until_resumed_then_finishes() {
    let s = Server::start();
    let key = s.admin_key.clone();
    let dir = tempfile::tempdir().unwrap();
    let job = submit(&s, &key, &two_until_go_then_one(dir.path())).await;
    // Both run (their shells wrote their pids) before the suspend: a
    // process stopped before it wrote its pid would never write it.
    let pids = [
        pid_in(&dir.path().join("a.pid")).await,
        pid_in(&dir.path().join("b.pid")).await,
    ];
    let r = post(&s, format!("/api/v1/jobs/{job}/suspend"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["suspended"], true);
    let r = post(&s, format!("/api/v1/jobs/{job}/suspend"), &key).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.message().contains("already suspended"), "{}", r.text());

    // The attempts' processes stop (SIGSTOP: state T in /proc).
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids.iter().any(|p| proc_state(*p) != Some('T')) {
        let states: Vec<_> = pids.iter().map(|p| proc_state(*p)).collect();
        assert!(Instant::now() < deadline, "not stopped: {states:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What would end them is there, but stopped they cannot see it: they
    // stay running, and c has not started.
    std::fs::write(dir.path().join("go"), "").unwrap();
    let ts = tasks(&s, job, &key).await;
    let states: Vec<&str> = ts.iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["running", "running", "ready"], "{ts:?}");
    assert_eq!(ts[2]["attempt"], 0);
    assert_eq!(ts[2]["waiting"], "its job is suspended");
    let r = s.get(&format!("/api/v1/jobs/{job}"), &key).await;
    assert_eq!(r.json()["suspended"], true);
    assert_eq!(r.json()["state"], "running");
    for pid in pids {
        assert_eq!(
            proc_state(pid),
            Some('T'),
            "{pid} runs again while suspended"
        );
    }

    let r = post(&s, format!("/api/v1/jobs/{job}/resume"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["suspended"], false);
    let done = s.wait_job(job, &key).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let r = post(&s, format!("/api/v1/jobs/{job}/resume"), &key).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
}

#[tokio::test]
async fn a_failed_job_retried_after_its_cause_is_fixed_succeeds_and_keeps_what_succeeded() {
    let s = Server::start();
    let key = s.admin_key.clone();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("fixed");
    let yaml = format!(
        "name: flaky\ntasks:\n  - {{name: a, action: {{kind: command, argv: [sh, -c, 'test -f {m} || exit 3']}}}}\n  - {{name: b, deps: [{{selector: a}}], action: {{kind: command, argv: ['true']}}}}\n  - {{name: c, action: {{kind: command, argv: ['true']}}}}\n",
        m = marker.display()
    );
    let job = submit(&s, &key, &yaml).await;
    let done = s.wait_job(job, &key).await;
    assert_eq!(done["state"], "failed", "{done}");
    let r = post(&s, format!("/api/v1/jobs/{job}/suspend"), &key).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());

    std::fs::write(&marker, "").unwrap();
    let r = post(&s, format!("/api/v1/jobs/{job}/retry"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let done = s.wait_job(job, &key).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let ts = tasks(&s, job, &key).await;
    let attempts: Vec<&Value> = ts.iter().map(|t| &t["attempt"]).collect();
    assert_eq!(attempts, [&json!(2), &json!(1), &json!(1)], "{ts:?}");

    let r = post(&s, format!("/api/v1/jobs/{job}/retry"), &key).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.code(), "conflict");
    assert!(
        r.message().contains("only a failed or cancelled job"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn retry_of_a_running_job_is_a_conflict() {
    let s = Server::start();
    let key = s.admin_key.clone();
    let dir = tempfile::tempdir().unwrap();
    let job = submit(&s, &key, &two_until_go_then_one(dir.path())).await;
    let r = post(&s, format!("/api/v1/jobs/{job}/retry"), &key).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.message().contains("wait until it ends"), "{}", r.text());
    post(&s, format!("/api/v1/jobs/{job}/cancel"), &key).await;
    s.wait_job(job, &key).await;
}

#[tokio::test]
async fn a_priority_change_shows_in_the_view_and_out_of_range_is_refused() {
    let s = Server::start();
    let key = s.admin_key.clone();
    let dir = tempfile::tempdir().unwrap();
    let job = submit(&s, &key, &two_until_go_then_one(dir.path())).await;
    let url = format!("/api/v1/jobs/{job}/priority");
    let r = s
        .send_json(Method::PUT, &url, &key, json!({"priority": 42}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["priority"], 42);
    let r = s.get(&format!("/api/v1/jobs/{job}"), &key).await;
    assert_eq!(r.json()["priority"], 42);
    let r = s
        .send_json(Method::PUT, &url, &key, json!({"priority": 101}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    std::fs::write(dir.path().join("go"), "").unwrap();
    let done = s.wait_job(job, &key).await;
    assert_eq!(done["priority"], 42);
    let r = s
        .send_json(Method::PUT, &url, &key, json!({"priority": 1}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
}
