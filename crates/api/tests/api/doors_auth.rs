//! Floods of secrets, in-process: however many wrong secrets for one
//! prefix arrive at once, at most 5 reach argon2 (then 429 with
//! Retry-After), for users' keys and workers' tokens alike; a burst of one
//! right secret not cached yet runs argon2 once; more checks than the
//! verifier queues are refused (503) instead of piling up; and worker
//! routes answer 401 to anything but a valid worker token, 403 to a valid
//! token acting on another token's worker.

use crate::harness::{Resp, Server};
use crate::wire::metric;
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tessera_api::{create_worker_token, new_api_key, Pool};
use tessera_store::Accounts;

const USER_RUNS: &str = "tessera_auth_argon2_total{kind=\"user_key\"}";
const WORKER_RUNS: &str = "tessera_auth_argon2_total{kind=\"worker_token\"}";

/// `key` with its last `n` characters replaced: the same prefix, a wrong secret.
fn wrong(key: &str, i: usize) -> String {
    format!("{}{i:04}", &key[..key.len() - 4])
}

/// Sends every `(path, key)` at once; the answers in the same order.
async fn all_at_once(s: &Arc<Server>, method: Method, calls: Vec<(String, String)>) -> Vec<Resp> {
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|(path, key)| {
            let (s, method) = (s.clone(), method.clone());
            let body = (method == Method::POST)
                .then(|| ("application/json", br#"{"name":"w","slots":1}"#.to_vec()));
            tokio::spawn(async move { s.call(method, &path, Some(&key), body).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn tally(answers: &[Resp]) -> BTreeMap<u16, usize> {
    let mut by = BTreeMap::new();
    for r in answers {
        *by.entry(r.status.as_u16()).or_insert(0) += 1;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            let after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&after), "Retry-After {after}");
        }
    }
    by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_five_wrong_secrets_per_prefix_reach_argon2_however_many_arrive_at_once() {
    let s = Arc::new(Server::start_with("/bin/true", |state| {
        state.with_workers(Pool::new(Duration::from_secs(30)))
    }));
    let admin = s.admin_key.clone();
    assert_eq!(s.get("/api/v1/me", &admin).await.status, StatusCode::OK);
    let (_, ana) = s.user("ana", false).await;
    let before = metric(&s, USER_RUNS).await;

    // 30 wrong secrets for ana's prefix, all at once.
    let calls = (0..30)
        .map(|i| ("/api/v1/me".to_string(), wrong(&ana, i)))
        .collect();
    let answers = all_at_once(&s, Method::GET, calls).await;
    let by = tally(&answers);
    assert_eq!(by, BTreeMap::from([(401, 5), (429, 25)]), "{by:?}");
    assert_eq!(metric(&s, USER_RUNS).await - before, 5.0);
    let throttled = "tessera_auth_throttled_total{kind=\"user_key\"}";
    assert_eq!(metric(&s, throttled).await, 25.0);

    // 30 requests with one right key nobody used yet: argon2 runs once.
    let (_, bea) = s.user("bea", false).await;
    let before = metric(&s, USER_RUNS).await;
    let calls = (0..30)
        .map(|_| ("/api/v1/me".to_string(), bea.clone()))
        .collect();
    let by = tally(&all_at_once(&s, Method::GET, calls).await);
    assert_eq!(by, BTreeMap::from([(200, 30)]), "{by:?}");
    assert_eq!(metric(&s, USER_RUNS).await - before, 1.0);

    // The same for a worker token, on the route a worker registers with.
    std::fs::create_dir_all(&s.data).unwrap();
    let token = create_worker_token(&s.data, "rack").unwrap();
    let before = metric(&s, WORKER_RUNS).await;
    let calls = (0..30)
        .map(|i| ("/api/v1/workers".to_string(), wrong(&token, i)))
        .collect();
    let answers = all_at_once(&s, Method::POST, calls).await;
    let by = tally(&answers);
    assert_eq!(by, BTreeMap::from([(401, 5), (429, 25)]), "{by:?}");
    assert!(
        answers
            .iter()
            .any(|r| r.message().contains("too many wrong worker tokens")),
        "{}",
        answers[29].text()
    );
    assert_eq!(metric(&s, WORKER_RUNS).await - before, 5.0);
    // A burst of another, right, token not verified yet: argon2 runs once.
    let fresh = create_worker_token(&s.data, "rack2").unwrap();
    let before = metric(&s, WORKER_RUNS).await;
    let calls = (0..30)
        .map(|_| ("/api/v1/workers".to_string(), fresh.clone()))
        .collect();
    let by = tally(&all_at_once(&s, Method::POST, calls).await);
    assert_eq!(by, BTreeMap::from([(200, 30)]), "{by:?}");
    assert_eq!(metric(&s, WORKER_RUNS).await - before, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_checks_than_the_verifier_queues_are_refused_with_503() {
    let s = Arc::new(Server::start());
    let admin = s.admin_key.clone();
    assert_eq!(s.get("/api/v1/me", &admin).await.status, StatusCode::OK);
    // 100 users' keys, each tried once with a wrong secret, all at once:
    // no prefix is throttled, so only the verifier's queue (2 running, 64
    // waiting) bounds them.
    let mut store = s.store();
    let keys: Vec<String> = (0..100)
        .map(|i| {
            let user = store.create_user(&format!("u{i}"), false, 1).unwrap();
            let (key, prefix, hash) = new_api_key();
            store.create_key(user.id, "k", &prefix, &hash, 1).unwrap();
            key
        })
        .collect();
    let before = metric(&s, USER_RUNS).await;
    let calls = keys
        .iter()
        .map(|k| ("/api/v1/me".to_string(), wrong(k, 0)))
        .collect();
    let answers = all_at_once(&s, Method::GET, calls).await;
    let by = tally(&answers);
    let (refused, busy) = (
        by.get(&401).copied().unwrap_or(0),
        by.get(&503).copied().unwrap_or(0),
    );
    assert_eq!(refused + busy, 100, "{by:?}");
    assert!(busy > 0, "no check was refused: {by:?}");
    for r in answers
        .iter()
        .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
    {
        assert_eq!(r.code(), "busy");
        assert_eq!(r.headers["retry-after"], "1");
        assert!(r
            .message()
            .contains("too many credential checks are waiting"));
    }
    assert_eq!(metric(&s, USER_RUNS).await - before, refused as f64);
    let busy_metric = "tessera_auth_busy_total{kind=\"user_key\"}";
    assert_eq!(metric(&s, busy_metric).await, busy as f64);
    // A refused check is not a failure: each of those keys still works.
    assert_eq!(s.get("/api/v1/me", &keys[99]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn worker_routes_answer_401_to_anything_but_a_worker_token_and_403_to_anothers_worker() {
    let s = Server::start_with("/bin/true", |state| {
        state.with_workers(Pool::new(Duration::from_secs(30)))
    });
    std::fs::create_dir_all(&s.data).unwrap();
    let mine = create_worker_token(&s.data, "mine").unwrap();
    let theirs = create_worker_token(&s.data, "theirs").unwrap();
    let register = serde_json::to_vec(&json!({"name": "box", "slots": 1})).unwrap();
    let r = s
        .call(
            Method::POST,
            "/api/v1/workers",
            Some(&mine),
            Some(("application/json", register)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let worker = r.json()["id"].as_str().unwrap().to_string();
    let heartbeat = format!("/api/v1/workers/{worker}/heartbeat");
    let unknown = format!("twk_{}_{}", "Q".repeat(12), "Q".repeat(32));
    for (label, key) in [
        ("malformed", "garbage"),
        ("short", "twk_abc_def"),
        ("unknown", unknown.as_str()),
        ("api key", s.admin_key.as_str()),
    ] {
        let r = s
            .call(
                Method::POST,
                &heartbeat,
                Some(key),
                Some(("application/json", b"{}".to_vec())),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{label}: {}", r.text());
        assert_eq!(r.headers["www-authenticate"], "Bearer", "{label}");
        assert!(
            r.message().contains("worker token"),
            "{label}: {}",
            r.message()
        );
    }
    let r = s
        .call(
            Method::POST,
            &heartbeat,
            Some(&theirs),
            Some(("application/json", b"{}".to_vec())),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(
        r.message().contains("registered with another worker token"),
        "{}",
        r.message()
    );
    let r = s
        .call(
            Method::POST,
            &heartbeat,
            Some(&mine),
            Some(("application/json", b"{}".to_vec())),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The token file is parsed again when it changes: a revocation counts
    // at the next request, though the token was verified and cached.
    assert!(tessera_api::revoke_worker_token(&s.data, "mine").unwrap());
    let r = s
        .call(
            Method::POST,
            &heartbeat,
            Some(&mine),
            Some(("application/json", b"{}".to_vec())),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}
