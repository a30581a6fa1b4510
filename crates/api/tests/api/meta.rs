//! The routes that need no key: health, readiness, OpenAPI; metrics, which
//! need an admin's key; and serving on a real listener with graceful
//! shutdown.

use crate::harness::Server;
use axum::http::{Method, StatusCode};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;
use tessera_api::ROUTES;

#[tokio::test]
async fn openapi_lists_exactly_the_route_table() {
    let s = Server::start();
    let r = s
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut listed = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(op["summary"].is_string());
            listed.insert((method.to_uppercase(), path.clone()));
        }
    }
    // axum's `{*rest}` (the rest of the path) is OpenAPI's `{rest}`.
    let table: BTreeSet<_> = ROUTES
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.replace("{*", "{")))
        .collect();
    assert_eq!(listed, table);
    assert_eq!(table.len(), ROUTES.len(), "ROUTES lists a route twice");
    let logs = &doc["paths"]["/api/v1/jobs/{id}/tasks/{index}/logs"]["get"];
    let params: Vec<&str> = logs["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["id", "index"]);
    let ladder = &doc["paths"]["/api/v1/jobs/{id}/ladder/{path}"]["get"];
    let params: Vec<&str> = ladder["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["id", "path"]);
    let ladder = &doc["components"]["schemas"]["EncodeBody"]["properties"]["ladder"];
    assert!(ladder["oneOf"].is_array(), "{ladder}");
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_key_and_metrics_only_to_admins() {
    let s = Server::start();
    assert_eq!(
        s.call(Method::GET, "/healthz", None, None).await.status,
        StatusCode::OK
    );
    let r = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    s.project("m", &s.admin_key.clone()).await;
    let r = s
        .post_yaml(
            "/api/v1/projects/m/jobs",
            &s.admin_key,
            "name: j\ntasks: [{name: a, action: {kind: noop}}]",
        )
        .await;
    let id = r.json()["id"].as_i64().unwrap();
    s.wait_job(id, &s.admin_key).await;
    let r = s.call(Method::GET, "/nope", None, None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "not_found".to_string())
    );
    let r = s.call(Method::DELETE, "/healthz", None, None).await;
    assert_eq!(
        (r.status, r.code()),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed".to_string()
        )
    );

    // /metrics names every project: no key is a 401, a user's a 403.
    let r = s.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(!r.text().contains("tessera_"), "{}", r.text());
    let (_, user) = s.user("not-an-admin", false).await;
    let r = s.get("/metrics", &user).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.message().contains("is not an admin"), "{}", r.message());
    let r = s.get("/metrics", &s.admin_key).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(
        text.contains("tessera_jobs{state=\"succeeded\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("tessera_tasks{state=\"running\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "tessera_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"/api/v1/projects/{project}/jobs\",status=\"201\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("route=\"unmatched\",status=\"404\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("tessera_submit_seconds_count 1\n"), "{text}");
    assert!(
        text.contains("tessera_submit_seconds_bucket{le=\"+Inf\"} 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn serve_answers_on_a_real_listener_and_stops_when_told() {
    let s = Server::start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tessera_api::serve(listener, s.state.clone(), async move {
        let _ = stopped.await;
    }));
    let response = tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), server).await;
    result.expect("serve stops within 5 s").unwrap().unwrap();
}
