//! Where attempts ran: the attempts list names each attempt's node and its
//! transfers, and the nodes list counts what each worker ended lately.

use crate::harness::Server;
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use tessera_api::{create_worker_token, Pool};
use tessera_store::{StartedAttempt, Store};
use tessera_types::{
    Action, AttemptOutcome, AttemptUsage, Change, JobSpec, JobState, NodeId, ProjectId, TaskRef,
    TaskSpec, TaskState,
};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn attempts_name_their_node_and_transfers_and_nodes_count_them() {
    let s = Server::start_with("/bin/true", |state| {
        state.with_workers(Pool::new(Duration::from_secs(30)))
    });
    let admin = s.admin_key.clone();
    let project = s.project("media", &admin).await;
    std::fs::create_dir_all(&s.data).unwrap();
    let token = create_worker_token(&s.data, "rack").unwrap();
    let r = s
        .call(
            Method::POST,
            "/api/v1/workers",
            Some(&token),
            Some((
                "application/json",
                serde_json::to_vec(&json!({"name": "rack-1", "slots": 2})).unwrap(),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // The rows a run leaves when a worker ran attempt 1 (moving its files)
    // and this machine ran attempt 2, written as the driver writes them.
    let mut store = s.store();
    let at = now();
    let spec = JobSpec::new("placed", vec![TaskSpec::new("t", Action::Noop)]);
    let job = store
        .create_job(Some(ProjectId(project)), &spec, None, at)
        .unwrap();
    let t = TaskRef::new(job, 0);
    let started = |attempt| Change::AttemptStarted {
        task: t,
        attempt,
        node: NodeId::LOCAL,
        at,
    };
    store.apply(&[started(1), started(2)], at).unwrap();
    store
        .set_attempts_started(&[
            StartedAttempt {
                task: t,
                attempt: 1,
                pid: 41,
                node: Some("rack-1".into()),
            },
            StartedAttempt {
                task: t,
                attempt: 2,
                pid: 42,
                node: None,
            },
        ])
        .unwrap();
    let usage = |transfer_ms, transfer_bytes| AttemptUsage {
        wall_ms: 2_000,
        cpu_ms: 1_500,
        max_rss_kb: 10,
        transfer_ms,
        transfer_bytes,
    };
    let ended = |attempt, usage| Change::AttemptEnded {
        task: t,
        attempt,
        outcome: AttemptOutcome::Succeeded,
        usage,
        at: at + 2_000,
    };
    store
        .apply(
            &[
                ended(1, usage(750, 12_345_678)),
                ended(2, usage(0, 0)),
                Change::Task {
                    task: t,
                    state: TaskState::Succeeded,
                    attempt: 2,
                    failures: 0,
                    not_before: 0,
                    reason: None,
                },
                Change::JobState {
                    job,
                    state: JobState::Succeeded,
                },
            ],
            at + 2_000,
        )
        .unwrap();

    let attempts = s
        .get(&format!("/api/v1/jobs/{job}/attempts"), &admin)
        .await
        .json();
    assert_eq!(attempts[0]["node"], "rack-1", "{attempts}");
    assert_eq!(attempts[0]["usage"]["transfer_ms"], 750, "{attempts}");
    assert_eq!(
        attempts[0]["usage"]["transfer_bytes"], 12_345_678,
        "{attempts}"
    );
    // The server's own attempts carry its node's name, as the nodes list
    // would show it (the default name here: no hostname was given).
    assert_eq!(attempts[1]["node"], "server", "{attempts}");
    // Zero transfers are left out.
    assert!(
        attempts[1]["usage"].get("transfer_ms").is_none(),
        "{attempts}"
    );
    assert!(
        attempts[1]["usage"].get("transfer_bytes").is_none(),
        "{attempts}"
    );

    let nodes = s.get("/api/v1/nodes", &admin).await.json();
    let nodes = &nodes["nodes"];
    let recent = &nodes[0]["recent"];
    assert_eq!(nodes[0]["name"], "rack-1", "{nodes}");
    assert_eq!(
        *recent,
        json!({"window_ms": 600_000, "attempts": 1, "cpu_ms": 1_500,
               "transfer_ms": 750, "transfer_bytes": 12_345_678}),
        "{nodes}"
    );

    // Drain and undrain, through the API and from the nodes page.
    let r = s
        .call(
            Method::POST,
            "/api/v1/nodes/rack-1/undrain",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a ready node: {}", r.text());
    let r = s
        .call(
            Method::POST,
            "/api/v1/nodes/rack-1/drain",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(node_state(&s, &admin).await, "draining");
    let r = s
        .call(
            Method::POST,
            "/api/v1/nodes/rack-1/undrain",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(node_state(&s, &admin).await, "ready");
    let c = crate::ui::login(&s, &admin).await;
    let page = crate::ui::ui(&s, Method::GET, "/ui/nodes", Some(&c), None).await;
    assert!(page.body.contains(r#"value="drain""#), "{}", page.body);
    let r = crate::ui::ui(
        &s,
        Method::POST,
        "/ui/nodes/drain",
        Some(&c),
        Some("node=rack-1&action=drain"),
    )
    .await;
    assert_eq!(r.location.as_deref(), Some("/ui/nodes"), "{}", r.body);
    assert_eq!(node_state(&s, &admin).await, "draining");
    let page = crate::ui::ui(&s, Method::GET, "/ui/nodes", Some(&c), None).await;
    assert!(page.body.contains(r#"value="undrain""#), "{}", page.body);
    let r = crate::ui::ui(
        &s,
        Method::POST,
        "/ui/nodes/drain",
        Some(&c),
        Some("node=rack-1&action=undrain"),
    )
    .await;
    assert_eq!(r.location.as_deref(), Some("/ui/nodes"), "{}", r.body);
    assert_eq!(node_state(&s, &admin).await, "ready");
}

async fn node_state(s: &Server, admin: &str) -> serde_json::Value {
    s.get("/api/v1/nodes", admin).await.json()["nodes"][0]["state"].clone()
}
