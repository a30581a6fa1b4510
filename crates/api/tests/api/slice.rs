//! The vertical slice: bootstrap admin -> project -> member -> YAML flow of
//! real commands with a glob fan-in -> poll until succeeded -> read a log.

use crate::harness::Server;
use axum::http::{Method, StatusCode};
use serde_json::json;

const FLOW: &str = r#"
name: fan-in
tasks:
  - name: encode-1
    action: {kind: command, argv: [sh, -c, "echo hi"]}
  - name: encode-2
    action: {kind: command, argv: [sh, -c, "echo hi; echo oops >&2"]}
  - name: merge
    action: {kind: command, argv: [sh, -c, "echo merged"]}
    deps:
      - selector: "encode-*"
"#;

#[tokio::test]
async fn a_member_submits_a_yaml_flow_and_reads_its_logs() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    let project = s.project("media", &admin).await;
    let (ana, ana_key) = s.user("ana", false).await;
    let r = s
        .send_json(
            Method::PUT,
            &format!("/api/v1/projects/media/members/{ana}"),
            &admin,
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let me = s.get("/api/v1/me", &ana_key).await.json();
    assert_eq!(me["user"]["name"], "ana");
    assert_eq!(me["admin"], false);
    assert_eq!(me["projects"][0]["name"], "media");
    assert_eq!(me["projects"][0]["role"], "member");

    let r = s
        .post_yaml(&format!("/api/v1/projects/{project}/jobs"), &ana_key, FLOW)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json()["project"], project);

    let job = s.wait_job(id, &ana_key).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["tasks"], json!({"succeeded": 3}));

    let tasks = s
        .get(&format!("/api/v1/jobs/{id}/tasks"), &ana_key)
        .await
        .json();
    let names: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["encode-1", "encode-2", "merge"]);

    let attempts = s
        .get(&format!("/api/v1/jobs/{id}/attempts"), &ana_key)
        .await
        .json();
    let attempts = attempts.as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    for a in attempts {
        assert_eq!(a["outcome"], "succeeded", "{a}");
        assert!(
            a["usage"]["wall_ms"].is_u64() && a["usage"]["max_rss_kb"].as_u64().unwrap() > 0,
            "{a}"
        );
        assert!(a["usage"]["cpu_ms"].is_u64(), "{a}");
    }

    let log = |index: u32, query: &'static str| {
        let url = format!("/api/v1/jobs/{id}/tasks/{index}/logs{query}");
        let (s, key) = (&s, ana_key.clone());
        async move { s.get(&url, &key).await }
    };
    let r = log(0, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), "hi\n");
    assert_eq!(log(2, "?attempt=1&stream=stdout").await.text(), "merged\n");
    assert_eq!(log(1, "?stream=stderr").await.text(), "oops\n");
    let r = log(1, "?attempt=2").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.message()
            .contains("has no attempt 2; its attempts are 1 to 1"),
        "{}",
        r.message()
    );
    let r = log(7, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.message(), format!("job {id} has no task 7"));
    let r = log(0, "?stream=../../etc/passwd").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.code(), "bad_request");

    // Newest first, and a finished job cannot be cancelled.
    let r = s
        .post_yaml(
            &format!("/api/v1/projects/{project}/jobs"),
            &ana_key,
            "name: second\ntasks: [{name: a, action: {kind: noop}}]",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let list = s
        .get("/api/v1/projects/media/jobs?limit=10", &ana_key)
        .await
        .json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["second", "fan-in"]);
    let r = s
        .call(
            Method::POST,
            &format!("/api/v1/jobs/{id}/cancel"),
            Some(&ana_key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(
        r.message().contains("has already ended (succeeded)"),
        "{}",
        r.message()
    );
}

#[tokio::test]
async fn a_running_job_is_cancelled_through_the_driver() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    s.project("slow", &admin).await;
    let spec =
        "name: sleepy\ntasks:\n  - name: nap\n    action: {kind: command, argv: [sleep, '30']}\n";
    let r = s
        .post_yaml("/api/v1/projects/slow/jobs", &admin, spec)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let r = s
        .call(
            Method::POST,
            &format!("/api/v1/jobs/{id}/cancel"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let job = s.wait_job(id, &admin).await;
    assert_eq!(job["state"], "cancelled", "{job}");
}

#[tokio::test]
async fn keys_are_listed_without_secrets_and_users_need_unique_names() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    let r = s
        .send_json(Method::POST, "/api/v1/keys", &admin, json!({"name": "ci"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("tsk_"));
    assert_eq!(s.get("/api/v1/me", &secret).await.status, StatusCode::OK);
    let keys = s.get("/api/v1/keys", &admin).await;
    let text = keys.text();
    assert!(
        !text.contains("argon2") && !text.contains(&secret[17..]),
        "{text}"
    );
    assert_eq!(keys.json().as_array().unwrap().len(), 2);
    s.user("bob", false).await;
    let r = s
        .send_json(
            Method::POST,
            "/api/v1/users",
            &admin,
            json!({"name": "bob"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.code(), "conflict");
    let users = s.get("/api/v1/users", &admin).await.json();
    assert_eq!(users.as_array().unwrap().len(), 2);
}
