//! Specs the API refuses, with messages precise enough to fix them.

use crate::harness::Server;
use axum::http::{Method, StatusCode};

async fn submit(s: &Server, content_type: &str, body: Vec<u8>) -> crate::harness::Resp {
    s.call(
        Method::POST,
        "/api/v1/projects/v/jobs",
        Some(&s.admin_key),
        Some((content_type, body)),
    )
    .await
}

#[tokio::test]
async fn bad_specs_are_refused_with_precise_messages() {
    let s = Server::start();
    s.project("v", &s.admin_key.clone()).await;

    let cycle = "name: c\ntasks:\n  - {name: a, action: {kind: noop}, deps: [{selector: b}]}\n  - {name: b, action: {kind: noop}, deps: [{selector: a}]}\n";
    let r = submit(&s, "application/yaml", cycle.into()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.code(), "invalid_spec");
    assert!(
        r.message()
            .starts_with("invalid job: the dependencies form a cycle: "),
        "{}",
        r.message()
    );

    let nothing = r#"{"name":"n","tasks":[{"name":"a","action":{"kind":"noop"}},
        {"name":"b","action":{"kind":"noop"},"deps":[{"selector":"encode-*"}]}]}"#;
    let r = submit(&s, "application/json", nothing.into()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(
        r.message(),
        r#"invalid job: task "b": dependency "encode-*" matches no task"#
    );

    let unknown = "name: u\ntasks:\n  - name: a\n    action: {kind: noop}\n    colour: red\n";
    let r = submit(&s, "text/yaml", unknown.into()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.code(), "invalid_request");
    assert!(
        r.message().contains("unknown field `colour`"),
        "{}",
        r.message()
    );

    // Refused by the driver (it knows the machine has 2 slots), reported alike.
    let big = "name: b\ntasks:\n  - {name: a, action: {kind: noop}, resources: {cpu: 64}}\n";
    let r = submit(&s, "application/yaml; charset=utf-8", big.into()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(
        r.message(),
        r#"invalid job: task "a" asks for 64 cpu slots but only 2 exist"#
    );

    let r = submit(&s, "text/plain", b"name: x".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text());
    assert_eq!(r.code(), "unsupported_media_type");

    let r = submit(&s, "application/json", b"{not json".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
}

#[tokio::test]
async fn bodies_over_their_limits_are_refused_with_413() {
    let s = Server::start();
    s.project("v", &s.admin_key.clone()).await;
    // Everything but a job spec: 1 MiB.
    let mut body = br#"{"name":"x"}"#.to_vec();
    body.resize(2 << 20, b' ');
    let key = s.admin_key.clone();
    let r = s
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(&key),
            Some(("application/json", body)),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(r.code(), "payload_too_large");
    assert!(r.message().contains("1048576 bytes"), "{}", r.message());
    // A job spec may be large (a 100,000-task DAG is about 8 MiB of JSON),
    // up to 64 MiB.
    let mut body = b"name: big\ntasks: []\n#".to_vec();
    body.resize(2 << 20, b'x');
    let r = submit(&s, "application/yaml", body).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "2 MiB is fine for a spec: {}",
        r.text()
    );
    let mut body = br#"{"name":"big","tasks":[]}"#.to_vec();
    body.resize((64 << 20) + 1, b' ');
    let r = submit(&s, "application/json", body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.message().contains("67108864 bytes"), "{}", r.message());
    // YAML, which the parser holds whole as events, up to 2 MiB.
    let mut body = b"name: big\ntasks: []\n#".to_vec();
    body.resize((2 << 20) + 1, b'x');
    let r = submit(&s, "application/yaml", body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(
        r.message().contains("at most 2097152 bytes"),
        "{}",
        r.message()
    );
}
