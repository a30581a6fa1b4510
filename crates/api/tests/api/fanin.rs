//! The array-on-array attack through the API: a small spec whose second
//! array waits for all of the first. Each dependency is one shared fan-in
//! in the scheduler; here: the job runs, what the API shows of it stays
//! bounded (tasks page, the waiting reasons, the DAG page), and what no
//! sharing can make small (many distinct selectors over many tasks) is
//! refused with 422, naming the budget.

use crate::harness::Server;
use crate::ui::login;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use std::time::{Duration, Instant};
use tessera_store::Store;
use tower::ServiceExt;

/// The attack (3,000 x 3,000) behind a gate: the first array waits for a
/// task that runs until the test creates `go`.
fn attack(go: &std::path::Path) -> String {
    format!(
        r#"name: attack
tasks:
  - name: gate
    action: {{ kind: script, script: "while [ ! -e '{}' ]; do sleep 0.05; done" }}
  - {{ name: a, array: {{ count: 3000 }}, action: {{ kind: noop }}, deps: [{{ selector: gate }}] }}
  - {{ name: b, array: {{ count: 3000 }}, action: {{ kind: noop }}, deps: [{{ selector: a }}] }}
"#,
        go.display()
    )
}

#[tokio::test]
async fn array_on_array_runs_and_its_views_stay_bounded() {
    let s = Server::start();
    let key = s.admin_key.clone();
    s.project("f", &key).await;
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let r = s
        .post_yaml("/api/v1/projects/f/jobs", &key, &attack(&go))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();

    // b-0000 (index 3001) says what it waits for, in one line.
    let page = s
        .get(
            &format!("/api/v1/jobs/{id}/tasks?offset=3001&limit=2"),
            &key,
        )
        .await
        .json();
    let b0 = &page.as_array().unwrap()[0];
    assert_eq!(b0["name"], "b-0000");
    assert_eq!(
        b0["waiting"],
        "waiting for 3,000 of 3,000 tasks matching a-*: a-0000, a-0001, a-0002, a-0003, a-0004, …"
    );
    assert_eq!(
        b0["spec"]["deps"][0]["selector"], "a-*",
        "one stored selector"
    );
    assert_eq!(b0["spec"]["deps"].as_array().unwrap().len(), 1);

    // The job page lists the first 1,000 tasks and draws the first 300.
    let cookie = login(&s, &key).await;
    let req = Request::get(format!("/ui/jobs/{id}"))
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let resp = s.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("showing the first 300 of 1000 tasks"),
        "no bound"
    );
    assert!(body.matches("class=\"edge\"").count() <= 300 * 300);

    std::fs::write(&go, "").unwrap();
    let end = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let job = s.get(&format!("/api/v1/jobs/{id}"), &key).await.json();
        if job["state"] != "running" && job["state"] != "pending" {
            break job;
        }
        assert!(Instant::now() < end, "still {} after 120 s", job["state"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job["state"], "succeeded", "{job}");
    let attempts = s.store().attempts(tessera_types::JobId(id)).unwrap();
    assert_eq!(attempts.len(), 6001, "every task ran once");
}

#[tokio::test]
async fn distinct_selectors_beyond_the_link_budget_are_refused_with_422() {
    let s = Server::start();
    let key = s.admin_key.clone();
    s.project("f", &key).await;
    // 100 distinct globs ([aX]-*, X a different letter each), each
    // matching all 20,001 elements of `a`: more than 2,000,000 links.
    let mut yaml = String::from(
        "name: budget\ntasks:\n  - { name: a, array: { count: 20001 }, action: { kind: noop } }\n",
    );
    for i in 0..100u32 {
        let other = char::from_u32(0x100 + i).unwrap();
        yaml.push_str(&format!(
            "  - {{ name: b{i}, action: {{ kind: noop }}, deps: [{{ selector: \"[a{other}]-*\" }}] }}\n"
        ));
    }
    let r = s.post_yaml("/api/v1/projects/f/jobs", &key, &yaml).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.code(), "invalid_spec");
    assert!(
        r.message().starts_with(
            "invalid job: the job's dependencies need more than 2000000 links (at least 20"
        ),
        "{}",
        r.message()
    );
    assert!(
        s.store().recent_jobs(10).unwrap().is_empty(),
        "nothing stored"
    );
}
