//! THE ROUTE WALK: every authenticated route of ROUTES refuses a missing,
//! wrong or revoked key (401), and every project or job route answers 403
//! to a user of another project and 404 for a project or job that does not
//! exist.

use crate::harness::Server;
use axum::http::{Method, StatusCode};
use serde_json::json;
use tessera_api::{Auth, ROUTES};
use tessera_store::Accounts;
use tessera_types::KeyId;

/// The route's path with its parameters filled in.
fn fill(path: &str, project: i64, job: i64, user: i64, key: i64) -> String {
    path.replace("{project}", &project.to_string())
        .replace(
            "{id}",
            &if path.contains("/jobs/") { job } else { key }.to_string(),
        )
        .replace("{user}", &user.to_string())
        .replace("{index}", "0")
        .replace("{worker}", "1-1")
        .replace("{node}", "a")
        .replace("{job}", &job.to_string())
        .replace("{attempt}", "1")
}

fn body_for(method: &Method) -> Option<(&'static str, Vec<u8>)> {
    (*method == Method::POST || *method == Method::PUT)
        .then(|| ("application/json", b"{}".to_vec()))
}

#[tokio::test]
async fn every_authenticated_route_refuses_missing_wrong_revoked_and_foreign_keys() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    let alpha = s.project("alpha", &admin).await;
    let (member, _) = s.user("member", false).await;
    let r = s
        .send_json(
            Method::PUT,
            &format!("/api/v1/projects/{alpha}/members/{member}"),
            &admin,
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let spec = "name: n\ntasks:\n  - name: a\n    action: {kind: noop}\n";
    let r = s
        .post_yaml(&format!("/api/v1/projects/{alpha}/jobs"), &admin, spec)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();

    let (_, outsider) = s.user("outsider", false).await;
    s.project("beta", &outsider).await;

    // A key that was used (so it sits in the verification cache), then revoked.
    let r = s
        .send_json(Method::POST, "/api/v1/keys", &admin, json!({"name": "old"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let revoked = r.json()["secret"].as_str().unwrap().to_string();
    let revoked_id = r.json()["key"]["id"].as_i64().unwrap();
    assert_eq!(s.get("/api/v1/me", &revoked).await.status, StatusCode::OK);
    let r = s
        .call(
            Method::DELETE,
            &format!("/api/v1/keys/{revoked_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());

    // The admin's key with its last character changed: right prefix, wrong secret.
    let mut wrong = admin.clone();
    let last = if wrong.ends_with('x') { "y" } else { "x" };
    wrong.replace_range(wrong.len() - 1.., last);

    // A well-formed key whose prefix no key has.
    let unknown = format!("tsk_{}_{}", "Q".repeat(12), "Q".repeat(32));

    let mut walked = 0;
    for (method, path, _, auth) in ROUTES {
        if *auth == Auth::None {
            continue;
        }
        if *auth == Auth::Worker {
            // Worker routes: a user's key, even an admin's, is not a
            // worker token (401, before any argon2 runs); nor is a made-up
            // one.
            let url = fill(path, alpha, job, member, revoked_id);
            let fake = format!("twk_{}_{}", "Q".repeat(12), "Q".repeat(32));
            for (key, status) in [
                (None, StatusCode::UNAUTHORIZED),
                (Some(admin.as_str()), StatusCode::UNAUTHORIZED),
                (Some(fake.as_str()), StatusCode::UNAUTHORIZED),
            ] {
                let r = s.call(method.clone(), &url, key, body_for(method)).await;
                assert_eq!(r.status, status, "{key:?}: {method} {url}: {}", r.text());
            }
            continue;
        }
        walked += 1;
        let url = fill(path, alpha, job, member, revoked_id);
        for (label, key) in [
            ("no", None),
            ("wrong", Some(wrong.as_str())),
            ("unknown", Some(unknown.as_str())),
            ("revoked", Some(revoked.as_str())),
        ] {
            let r = s.call(method.clone(), &url, key, body_for(method)).await;
            // The wrong secret's prefix is throttled after 5 failures (a
            // 429 that runs no argon2); every other refusal stays a 401.
            if label == "wrong" && walked > 5 {
                assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{method} {url}");
                continue;
            }
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{label} key: {method} {url}: {}",
                r.text()
            );
            assert_eq!(r.code(), "unauthorized", "{method} {url}");
        }
        if matches!(auth, Auth::Admin) {
            let r = s
                .call(method.clone(), &url, Some(&outsider), body_for(method))
                .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "non-admin: {method} {url}: {}",
                r.text()
            );
            assert_eq!(r.code(), "forbidden");
            if path.contains("{project}") {
                let missing = fill(path, 999_999, job, member, revoked_id);
                let r = s
                    .call(method.clone(), &missing, Some(&admin), body_for(method))
                    .await;
                assert_eq!(
                    r.status,
                    StatusCode::NOT_FOUND,
                    "missing: {method} {missing}: {}",
                    r.text()
                );
                assert!(
                    r.message().contains("999999 does not exist"),
                    "{}",
                    r.message()
                );
            }
        }
        if matches!(auth, Auth::Project(_) | Auth::Job(_)) {
            let r = s
                .call(method.clone(), &url, Some(&outsider), body_for(method))
                .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "outsider: {method} {url}: {}",
                r.text()
            );
            assert_eq!(r.code(), "forbidden");
            let missing = fill(path, 999_999, 999_999, member, revoked_id);
            let r = s
                .call(method.clone(), &missing, Some(&outsider), body_for(method))
                .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "missing: {method} {missing}: {}",
                r.text()
            );
            assert_eq!(r.code(), "not_found");
            assert!(
                r.message().contains("999999 does not exist"),
                "{}",
                r.message()
            );
        }
    }
    assert!(walked >= 22, "walked only {walked} routes");
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
