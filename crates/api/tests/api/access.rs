//! Who sees and changes what, beyond the route walk's status codes: the
//! project list (a user's own projects, an admin's all), another user's key
//! (no user but an admin revokes it), the UI's live job routes (what a
//! viewer reads, what another project's user is refused), role levels,
//! revocation behind the API's back and the wrong-secret throttle.

use crate::harness::Server;
use crate::walk_world::{login, send, Cred, World};
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeSet;
use tessera_store::Accounts;
use tessera_store::Store;
use tessera_types::{Action, JobSpec, KeyId, TaskSpec};

/// The names of the projects `GET /api/v1/projects` lists for `key`.
async fn listed(s: &Server, key: &str) -> BTreeSet<String> {
    let r = s.get("/api/v1/projects", key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

/// The project ids the UI's dashboard shows a session.
async fn dashboard(s: &Server, session: &str) -> BTreeSet<i64> {
    let r = send(s, "GET", "/ui", &Cred::Cookie(session.into()), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.text()
        .split(r#"<section class="card project"><h2><a href="/ui/projects/"#)
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_user_lists_only_their_projects_and_an_admin_lists_all() {
    let w = World::build().await;
    let s = &w.s;
    let names =
        |list: &[&str]| -> BTreeSet<String> { list.iter().map(|n| n.to_string()).collect() };
    for col in ["view", "memb", "ownr"] {
        assert_eq!(listed(s, &w.keys[col]).await, names(&["alpha"]), "{col}");
    }
    assert_eq!(listed(s, &w.keys["othr"]).await, names(&["beta"]));
    assert_eq!(listed(s, &w.keys["admn"]).await, names(&["alpha", "beta"]));
    let (_, nobody) = s.user("loner", false).await;
    assert_eq!(listed(s, &nobody).await, names(&[]));
    // /me names the same projects, with the caller's role.
    let me = s.get("/api/v1/me", &w.keys["view"]).await.json();
    assert_eq!(me["projects"].as_array().unwrap().len(), 1, "{me}");
    assert_eq!(me["projects"][0]["role"], "viewer", "{me}");
    // The dashboard too.
    let session = |key: &str| {
        let key = key.to_string();
        async move { login(s, &key).await.unwrap() }
    };
    let (alpha, beta) = (w.alpha, w.beta);
    assert_eq!(
        dashboard(s, &session(&w.keys["view"]).await).await,
        [alpha].into()
    );
    assert_eq!(
        dashboard(s, &session(&w.keys["othr"]).await).await,
        [beta].into()
    );
    assert_eq!(
        dashboard(s, &session(&w.keys["admn"]).await).await,
        [alpha, beta].into()
    );
    assert!(dashboard(s, &session(&nobody).await).await.is_empty());
}

#[tokio::test]
async fn no_user_but_an_admin_revokes_another_users_key() {
    let w = World::build().await;
    let s = &w.s;
    let owner = &w.keys["ownr"];
    let r = s.get("/api/v1/keys", owner).await;
    let id = r.json()[0]["id"].as_i64().unwrap();
    let url = format!("/api/v1/keys/{id}");
    // A viewer and a member of the owner's project, another project's
    // owner: "no such key of yours", and nothing changes.
    for col in ["view", "memb", "othr"] {
        let r = s.call(Method::DELETE, &url, Some(&w.keys[col]), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{col}: {}", r.text());
        assert!(r.message().contains("is not yours"), "{}", r.message());
    }
    let store = s.store();
    let user = store.user_by_name("own").unwrap().unwrap();
    let key = store.keys_of(user.id).unwrap();
    assert!(key[0].revoked_at.is_none(), "{key:?}");
    assert_eq!(s.get("/api/v1/me", owner).await.status, StatusCode::OK);
    // An admin may.
    let r = s
        .call(Method::DELETE, &url, Some(&w.keys["admn"]), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = s.get("/api/v1/me", owner).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

#[tokio::test]
async fn the_uis_job_state_events_and_output_serve_the_projects_viewers_only() {
    let w = World::build().await;
    let s = &w.s;
    let job = w.job;
    let viewer = Cred::Cookie(login(s, &w.keys["view"]).await.unwrap());
    let other = Cred::Cookie(login(s, &w.keys["othr"]).await.unwrap());

    let r = send(s, "GET", &format!("/ui/jobs/{job}/state.json"), &viewer, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let state = r.json();
    assert_eq!(state["state"], "succeeded", "{state}");
    assert_eq!(state["tasks"], json!([[0, "succeeded"]]), "{state}");

    let r = send(s, "GET", &format!("/ui/jobs/{job}/events"), &viewer, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events = r.text();
    assert!(events.starts_with("event: snapshot\n"), "{events}");
    let end = events
        .split("event: end\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{events}"));
    assert!(end.contains("data: {\"state\":\"succeeded\"}"), "{events}");

    let r = send(
        s,
        "GET",
        &format!("/ui/jobs/{job}/tasks/0/logs"),
        &viewer,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), "walked\n");

    // Not an encode: the page says so, to the viewer only.
    let r = send(s, "GET", &format!("/ui/jobs/{job}/output"), &viewer, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    for what in [
        "state.json",
        "parts.json",
        "events",
        "output",
        "tasks/0/logs",
    ] {
        let r = send(s, "GET", &format!("/ui/jobs/{job}/{what}"), &other, "").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text());
        // A JSON error or an HTML page's error paragraph, and nothing of the job.
        let text = r.text();
        let said = match text.split_once(r#"<p class="error">"#) {
            Some((_, rest)) => rest.split("</p>").next().unwrap().to_string(),
            None => r.message(),
        };
        assert!(said.contains("not a member of project"), "{what}: {said}");
        assert!(
            !text.contains("walked") && !text.contains(r#""tasks""#),
            "{what}: {text}"
        );
    }
}

#[tokio::test]
async fn a_job_outside_any_project_is_an_admins_alone() {
    let w = World::build().await;
    let s = &w.s;
    // As `tessera encode` or an old store leaves one: no project.
    let spec = JobSpec::new("loose", vec![TaskSpec::new("t", Action::Noop)]);
    let job = s.store().create_job(None, &spec, None, 1).unwrap().0;
    for col in ["othr", "view", "memb", "ownr"] {
        for (method, path) in [
            ("GET", format!("/api/v1/jobs/{job}")),
            ("POST", format!("/api/v1/jobs/{job}/cancel")),
        ] {
            let r = send(s, method, &path, &Cred::Bearer(w.keys[col].clone()), "").await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{col} {method} {path}: {}",
                r.text()
            );
            assert!(
                r.message().contains("outside any project"),
                "{}",
                r.message()
            );
        }
    }
    let r = s.get(&format!("/api/v1/jobs/{job}"), &w.keys["admn"]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["project"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_key_revoked_behind_the_apis_back_is_refused_at_once() {
    let s = Server::start();
    let (_, key) = s.user("ana", false).await;
    assert_eq!(s.get("/api/v1/me", &key).await.status, StatusCode::OK);
    // Revoked by another process (the CLI): the cached verification must not help.
    let mut store = s.store();
    let user = store.user_by_name("ana").unwrap().unwrap();
    let id: KeyId = store.keys_of(user.id).unwrap()[0].id;
    assert!(store.revoke_key(id, 1).unwrap());
    let r = s.get("/api/v1/me", &key).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.message().contains("revoked"), "{}", r.message());
}

#[tokio::test]
async fn roles_gate_what_members_may_do() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    let p = s.project("gamma", &admin).await;
    let (vic, vic_key) = s.user("vic", false).await;
    let put = |user: i64, role: &'static str| {
        let url = format!("/api/v1/projects/{p}/members/{user}");
        let admin = admin.clone();
        let s = &s;
        async move {
            s.send_json(Method::PUT, &url, &admin, json!({ "role": role }))
                .await
        }
    };
    assert_eq!(put(vic, "viewer").await.status, StatusCode::OK);
    let spec = "name: n\ntasks:\n  - name: a\n    action: {kind: noop}\n";
    let url = format!("/api/v1/projects/{p}/jobs");
    let r = s.post_yaml(&url, &vic_key, spec).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(
        r.message()
            .contains("you are a viewer of project \"gamma\"; this needs member"),
        "{}",
        r.message()
    );
    assert_eq!(
        s.get(&url, &vic_key).await.status,
        StatusCode::OK,
        "viewers read"
    );
    assert_eq!(put(vic, "member").await.status, StatusCode::OK);
    let r = s.post_yaml(&url, &vic_key, spec).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // Members may not manage members; the last owner cannot leave.
    let r = s
        .send_json(
            Method::PUT,
            &format!("/api/v1/projects/{p}/members/{vic}"),
            &vic_key,
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = s
        .call(
            Method::DELETE,
            &format!("/api/v1/projects/{p}/members/root"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.message().contains("last owner"), "{}", r.message());
    // A project is found by name too.
    let r = s.get("/api/v1/projects/gamma", &vic_key).await;
    assert_eq!(r.json()["role"], "member", "{}", r.text());
}

#[tokio::test]
async fn wrong_secrets_for_one_prefix_are_throttled_without_locking_out_a_cached_key() {
    let s = Server::start();
    let key = s.admin_key.clone();
    // Used once, so its verification is cached.
    assert_eq!(s.get("/api/v1/me", &key).await.status, StatusCode::OK);
    let (head, secret) = key.rsplit_once('_').unwrap();
    let wrong = format!("{head}_{}", "x".repeat(secret.len()));
    for _ in 0..5 {
        let r = s.get("/api/v1/me", &wrong).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    }
    let r = s.get("/api/v1/me", &wrong).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.code(), "too_many_requests");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(s.get("/api/v1/me", &key).await.status, StatusCode::OK);
}
