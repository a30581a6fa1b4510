//! Project quotas over HTTP: an admin sets one, members read it and the
//! project's usage, and a task held back by it says why in the task list.

use crate::harness::Server;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tessera_store::Accounts;
use tessera_types::{ProjectId, Quota};

/// Two tasks that run until the file `go` exists.
fn two_until(go: &std::path::Path) -> String {
    let task = |name: &str| {
        format!(
            "  - {{name: {name}, action: {{kind: command, argv: [sh, -c, 'while [ ! -e {} ]; do sleep 0.05; done']}}}}\n",
            go.display()
        )
    };
    format!("name: two\ntasks:\n{}{}", task("a"), task("b"))
}

#[tokio::test]
async fn a_project_at_its_cpu_quota_runs_one_task_and_says_why_the_other_waits() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    let p = s.project("film", &admin).await;
    let url = format!("/api/v1/projects/{p}/quota");
    let r = s.get(&url, &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let unlimited = json!({"max_cpu": null, "max_memory_mb": null, "cpu_ms_per_window": null});
    assert_eq!(r.json(), unlimited);

    let r = s
        .send_json(Method::PUT, &url, &admin, json!({"max_cpu": 1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["max_cpu"], 1);
    assert_eq!(r.json()["max_memory_mb"], Value::Null);
    let stored = s.store().quota(ProjectId(p)).unwrap();
    assert_eq!(
        stored,
        Quota {
            max_cpu: Some(1),
            ..Quota::default()
        },
        "the quota is persisted"
    );
    // By name too.
    let r = s.get("/api/v1/projects/film/quota", &admin).await;
    assert_eq!(r.json()["max_cpu"], 1, "{}", r.text());

    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let r = s
        .post_yaml(
            &format!("/api/v1/projects/{p}/jobs"),
            &admin,
            &two_until(&go),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();

    // The driver has two slots, the quota allows one: one runs, one waits
    // (until `go`).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (running, waiting) = loop {
        let r = s.get(&format!("/api/v1/jobs/{job}/tasks"), &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let tasks = r.json();
        let tasks = tasks.as_array().unwrap().clone();
        let state = |t: &Value| t["state"].as_str().unwrap().to_string();
        let running: Vec<_> = tasks
            .iter()
            .filter(|t| state(t) == "running")
            .cloned()
            .collect();
        let ready: Vec<_> = tasks
            .iter()
            .filter(|t| state(t) == "ready")
            .cloned()
            .collect();
        if running.len() == 1 && ready.len() == 1 {
            break (running[0].clone(), ready[0].clone());
        }
        assert!(
            Instant::now() < deadline,
            "never one running, one ready: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(running["waiting"], Value::Null);
    let why = waiting["waiting"]
        .as_str()
        .unwrap_or_else(|| panic!("{waiting}"));
    assert!(why.contains("cpu quota"), "{why}");
    assert_eq!(why, format!("project {p} is at its cpu quota (1 of 1)"));

    let r = s.get(&format!("/api/v1/projects/{p}/usage"), &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let usage = r.json();
    assert_eq!(usage["running_cpu"], 1, "{usage}");
    assert_eq!(usage["quota"]["max_cpu"], 1, "{usage}");

    std::fs::write(&go, "").unwrap();
    let done = s.wait_job(job, &admin).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let r = s.get(&format!("/api/v1/jobs/{job}/tasks"), &admin).await;
    for t in r.json().as_array().unwrap() {
        assert_eq!(t["state"], "succeeded", "{t}");
        assert_eq!(t["waiting"], Value::Null, "{t}");
    }
    let r = s.get(&format!("/api/v1/projects/{p}/usage"), &admin).await;
    let usage = r.json();
    assert_eq!(usage["running_cpu"], 0, "{usage}");
    assert!(
        usage["window_cpu_seconds"].as_f64().unwrap() > 0.0,
        "{usage}"
    );
}

#[tokio::test]
async fn only_admins_set_quotas_and_members_read_them() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    let (_, owner_key) = s.user("olga", false).await;
    let p = s.project("docs", &owner_key).await;
    let url = format!("/api/v1/projects/{p}/quota");
    let body = json!({"max_cpu": 2, "max_memory_mb": 4096, "cpu_ms_per_window": 60000});
    let r = s
        .send_json(Method::PUT, &url, &owner_key, body.clone())
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "even an owner: {}",
        r.text()
    );
    let r = s.send_json(Method::PUT, &url, &admin, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = s.get(&url, &owner_key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), body);
    let r = s
        .send_json(Method::PUT, &url, &admin, json!({"max_cpus": 2}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown field: {}",
        r.text()
    );
    let r = s
        .send_json(Method::PUT, "/api/v1/projects/999999/quota", &admin, body)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    // Nulls clear it.
    let r = s
        .send_json(Method::PUT, &url, &admin, json!({"max_cpu": null}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        s.get(&url, &owner_key).await.json()["max_memory_mb"],
        Value::Null
    );
}
