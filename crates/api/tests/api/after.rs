//! Jobs that wait on jobs (`after`) through the REST API: submitted as JSON
//! and YAML, shown (what each dependency matched, what the job waits for)
//! by the job, its tasks and its page, skipped with a reason when a parent
//! fails, and refused with 422 naming the selector when it matches no job
//! of the project (another project's job included), with nothing stored.

use crate::harness::Server;
use crate::ui::login;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

/// A one-task job (JSON) running `script`, after `after`.
fn job(name: &str, script: &str, after: Value) -> Value {
    json!({
        "name": name,
        "after": after,
        "tasks": [{ "name": "t", "action": { "kind": "script", "script": script } }],
    })
}

async fn post(s: &Server, project: i64, key: &str, spec: Value) -> crate::harness::Resp {
    let path = format!("/api/v1/projects/{project}/jobs");
    s.send_json(Method::POST, &path, key, spec).await
}

async fn submit(s: &Server, project: i64, key: &str, spec: Value) -> i64 {
    let r = post(s, project, key, spec).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn a_job_waits_on_jobs_says_so_everywhere_and_runs_after_them() {
    let s = Server::start();
    let key = s.admin_key.clone();
    let v = s.project("video", &key).await;
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let wait = format!("while [ ! -e '{}' ]; do sleep 0.05; done", go.display());
    let split = submit(&s, v, &key, job("split", &wait, json!([]))).await;
    let encode = submit(
        &s,
        v,
        &key,
        job("encode1", "true", json!([{ "job": split }])),
    )
    .await;
    let yaml = "name: merge\nafter:\n  - job: encode*\n  - {job: split, condition: any}\ntasks:\n  - {name: m, action: {kind: noop}}\n";
    let r = s
        .post_yaml(&format!("/api/v1/projects/{v}/jobs"), &key, yaml)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let merge = r.json()["id"].as_i64().unwrap();

    let view = s.get(&format!("/api/v1/jobs/{merge}"), &key).await.json();
    assert_eq!(
        view["after"],
        json!([
            { "job": "encode*", "condition": "success", "jobs": [encode] },
            { "job": "split", "condition": "any", "jobs": [split] },
        ])
    );
    let says = format!("waiting for job {encode} (encode1) to succeed; job {split} (split) to end");
    assert_eq!(view["waiting"], says.as_str());
    let tasks = s
        .get(&format!("/api/v1/jobs/{merge}/tasks"), &key)
        .await
        .json();
    assert_eq!(tasks[0]["state"], "waiting");
    assert_eq!(tasks[0]["waiting"], says.as_str());
    let view = s.get(&format!("/api/v1/jobs/{encode}"), &key).await.json();
    assert_eq!(
        view["after"],
        json!([{ "job": split, "condition": "success", "jobs": [split] }])
    );
    assert_eq!(
        view["waiting"],
        format!("waiting for job {split} (split) to succeed").as_str()
    );

    // The job page says it in one line, linking the jobs it waits on.
    let cookie = login(&s, &key).await;
    let req = Request::get(format!("/ui/jobs/{merge}"))
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
        body.contains(&format!(
            r#"encode* (success): <a href="/ui/jobs/{encode}">#{encode}</a>"#
        )),
        "{body}"
    );
    assert!(body.contains(&says), "{body}");

    std::fs::write(&go, "").unwrap();
    let done = s.wait_job(merge, &key).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(done.get("waiting").is_none(), "{done}");
    let store = s.store();
    use tessera_store::Store;
    let ended = |id: i64| {
        let a = store.attempts(tessera_types::JobId(id)).unwrap();
        (a[0].started_at, a[0].ended_at.unwrap())
    };
    assert!(ended(merge).0 >= ended(encode).1 && ended(encode).0 >= ended(split).1);
}

#[tokio::test]
async fn a_failed_parent_skips_its_children_with_a_reason() {
    let s = Server::start();
    let key = s.admin_key.clone();
    let v = s.project("video", &key).await;
    let split = submit(&s, v, &key, job("split", "exit 3", json!([]))).await;
    let encode = submit(
        &s,
        v,
        &key,
        job("encode", "true", json!([{ "job": split }])),
    )
    .await;
    let done = s.wait_job(encode, &key).await;
    assert_eq!(done["state"], "cancelled", "{done}");
    let tasks = s
        .get(&format!("/api/v1/jobs/{encode}/tasks"), &key)
        .await
        .json();
    assert_eq!(tasks[0]["state"], "skipped");
    assert_eq!(
        tasks[0]["reason"],
        format!("job {split} (split) ended failed and this job waits for it to succeed").as_str()
    );
    let r = s
        .call(
            Method::POST,
            &format!("/api/v1/jobs/{encode}/retry"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.message().contains("retry that job first"), "{}", r.text());
}

async fn listed(s: &Server, project: i64, key: &str) -> usize {
    let path = format!("/api/v1/projects/{project}/jobs");
    s.get(&path, key).await.json().as_array().unwrap().len()
}

#[tokio::test]
async fn selectors_that_match_no_job_of_the_project_are_422_and_store_nothing() {
    let s = Server::start();
    let key = s.admin_key.clone();
    let v = s.project("video", &key).await;
    let other = s.project("other", &key).await;
    let theirs = submit(&s, other, &key, job("split", "true", json!([]))).await;
    submit(&s, v, &key, job("probe", "true", json!([]))).await;
    let before = listed(&s, v, &key).await;
    for (after, says) in [
        (
            json!([{ "job": theirs }]),
            format!("job dependency \"{theirs}\" matches no job of this project"),
        ),
        (
            json!([{ "job": 99999 }]),
            "job dependency \"99999\" matches no job of this project".into(),
        ),
        (
            json!([{ "job": "split" }]),
            "job dependency \"split\" matches no job of this project".into(),
        ),
        (
            json!([{ "job": "encode*" }]),
            "job dependency \"encode*\" matches no job".into(),
        ),
        (
            json!([{ "job": "probe" }, { "job": "re:^enc" }]),
            "job dependency \"re:^enc\" matches no job".into(),
        ),
        (
            json!([{ "job": "re:(" }]),
            "job dependency \"re:(\": invalid regex".into(),
        ),
        (
            json!([{ "job": "probe", "resolved": [theirs] }]),
            "carries `resolved`".into(),
        ),
        (json!([{ "job": 0 }]), "0 is not a job id".into()),
        (
            Value::Array(
                (0..=100)
                    .map(|i| json!({ "job": format!("p{i}*") }))
                    .collect(),
            ),
            "101 distinct job name patterns; at most 100".into(),
        ),
        (
            json!([{ "job": "probe", "condition": "maybe" }]),
            "unknown variant `maybe`".into(),
        ),
    ] {
        let r = post(&s, v, &key, job("merge", "true", after.clone())).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{after}: {}",
            r.text()
        );
        assert!(r.message().contains(&says), "{after}: {}", r.text());
        assert_eq!(r.message().lines().count(), 1, "{}", r.text());
    }
    assert_eq!(
        listed(&s, v, &key).await,
        before,
        "a refused job is not stored"
    );
}
