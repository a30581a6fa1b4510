//! Bodies built to cost the server: specs nested 40,000 deep (YAML flow,
//! YAML block, JSON), YAML aliases that explode, a YAML spec past its size
//! limit, multipart forms with too many parts, a field too large, a part
//! header that never ends, two files in one encode form; project names
//! that read as ids; encoder settings that are not the encoder's.

use crate::harness::{Resp, Server};
use crate::uploads::{clip, files_under, multipart};
use crate::wire::{healthz, Listening};
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::time::Instant;
use tessera_store::Accounts;

async fn submit(s: &Server, content_type: &str, body: Vec<u8>) -> Resp {
    let key = s.admin_key.clone();
    s.call(
        Method::POST,
        "/api/v1/projects/d/jobs",
        Some(&key),
        Some((content_type, body)),
    )
    .await
}

fn laughs() -> String {
    let mut yaml = String::from("name: j\ntasks: []\nparams:\n  a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    let mut prev = 'a';
    for name in 'b'..='j' {
        let refs = vec![format!("*{prev}"); 10].join(",");
        yaml.push_str(&format!("  {name}: &{name} [{refs}]\n"));
        prev = name;
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specs_nested_too_deep_or_exploding_are_refused_before_they_cost() {
    let s = Server::start();
    s.project("d", &s.admin_key.clone()).await;
    let n = 40_000;
    let deep = [
        (
            "application/yaml",
            format!(
                "name: j\nparams: {}{}\ntasks: []\n",
                "[".repeat(n),
                "]".repeat(n)
            ),
            "line 2",
        ),
        (
            "application/yaml",
            format!(
                "name: j\nparams: {}{}\ntasks: []\n",
                "{a: ".repeat(n),
                "}".repeat(n)
            ),
            "line 2",
        ),
        (
            "application/json",
            format!(
                "{{\"name\":\"j\",\"tasks\":[],\"params\":{}{}}}",
                "[".repeat(n),
                "]".repeat(n)
            ),
            "line 1",
        ),
    ];
    for (content_type, body, at) in deep {
        let started = Instant::now();
        let r = submit(&s, content_type, body.into_bytes()).await;
        let took = started.elapsed();
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert_eq!(r.code(), "invalid_request");
        let message = r.message();
        assert!(
            message.starts_with("the job spec nests deeper than 64 levels (")
                && message.contains(at),
            "{message}"
        );
        eprintln!("{content_type} nested {n} deep: refused in {took:?}");
    }
    // Block nesting costs the YAML parser linear time (it is not measured
    // here): the typed parse refuses it at the first level that does not fit.
    let block = format!("name: j\ntasks: []\nparams:\n  {}x\n", "- ".repeat(n));
    let started = Instant::now();
    let r = submit(&s, "application/yaml", block.into_bytes()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    eprintln!(
        "block YAML nested {n} deep: refused in {:?}",
        started.elapsed()
    );
    // 64 levels are measured and let through to the type check.
    let ok_depth = format!(
        "name: j\nparams: {}{}\ntasks: []\n",
        "[".repeat(63),
        "]".repeat(63)
    );
    let r = submit(&s, "application/yaml", ok_depth.into_bytes()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(!r.message().contains("nests deeper"), "{}", r.message());

    // A billion laughs: aliases are expanded only as far as the spec's types
    // take them, which is the first level (serde_yaml's repetition limit
    // stands behind that).
    let started = Instant::now();
    let r = submit(&s, "application/yaml", laughs().into_bytes()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(
        r.message().starts_with("the job spec does not parse"),
        "{}",
        r.message()
    );
    eprintln!("a billion laughs: refused in {:?}", started.elapsed());

    // YAML is read whole into events: past 2 MiB it is refused, JSON is not.
    let mut yaml = b"name: big\ntasks: []\n#".to_vec();
    yaml.resize(tessera_api::YAML_SPEC_LIMIT + 1, b'x');
    let r = submit(&s, "application/yaml", yaml).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(
        r.message().contains("send a larger one as JSON"),
        "{}",
        r.message()
    );
    let mut json = br#"{"name":"big","tasks":[{"name":"a","action":{"kind":"noop"}}]}"#.to_vec();
    json.resize(tessera_api::YAML_SPEC_LIMIT + 1, b' ');
    let r = submit(&s, "application/json", json).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_stays_quick_while_deep_specs_pour_in() {
    let s = std::sync::Arc::new(Server::start());
    s.project("d", &s.admin_key.clone()).await;
    let api = Listening::start(&s).await;
    let body = format!("name: j\nparams: {}\ntasks: []\n", "[".repeat(40_000)).into_bytes();
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let (s, body) = (s.clone(), body.clone());
            tokio::spawn(async move {
                for _ in 0..5 {
                    let r = submit(&s, "application/yaml", body.clone()).await;
                    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
                }
            })
        })
        .collect();
    let mut worst = std::time::Duration::ZERO;
    for _ in 0..10 {
        let (status, took) = healthz("127.0.0.2", api.addr).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        worst = worst.max(took);
    }
    for t in flood {
        t.await.unwrap();
    }
    eprintln!("/healthz while 40 specs nested 40,000 deep were refused: worst of 10 {worst:?}");
}

#[tokio::test]
async fn forms_with_too_many_parts_large_fields_or_endless_headers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let video = std::fs::read(clip(tmp.path())).unwrap();
    let s = Server::start();
    let key = s.admin_key.clone();
    let p = s.project("forms", &key).await;
    let path = format!("/api/v1/projects/{p}/uploads");
    let post = |content_type: String, body: Vec<u8>| {
        let (s, key, path) = (&s, key.clone(), path.clone());
        async move {
            s.call(Method::POST, &path, Some(&key), Some((&content_type, body)))
                .await
        }
    };

    let filler: Vec<(String, Vec<u8>)> =
        (0..16).map(|i| (format!("f{i}"), b"x".to_vec())).collect();
    let mut parts: Vec<(&str, Option<&str>, &[u8])> = filler
        .iter()
        .map(|(n, v)| (n.as_str(), None, v.as_slice()))
        .collect();
    parts.push(("file", Some("clip.mp4"), &video));
    let (ct, body) = multipart(&parts);
    let r = post(ct, body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.message().contains("at most 16 parts"), "{}", r.message());

    let big = vec![b'x'; 5000];
    let (ct, body) = multipart(&[("note", None, &big), ("file", Some("clip.mp4"), &video)]);
    let r = post(ct, body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(
        r.message().contains("longer than 4096 bytes"),
        "{}",
        r.message()
    );

    // A part header that never ends: refused once 1 MiB went by, never held.
    let mut endless = b"--B\r\nContent-Disposition: form-data; name=\"file\"\r\nX-Pad: ".to_vec();
    endless.resize(3 << 20, b'a');
    let r = post("multipart/form-data; boundary=B".into(), endless).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(
        r.message()
            .contains("at most 1048576 bytes besides its file"),
        "{}",
        r.message()
    );

    assert_eq!(
        files_under(&s.data.join("uploads")),
        Vec::<std::path::PathBuf>::new()
    );
    // The same form with its 15 small fields is fine.
    parts.remove(0);
    let (ct, body) = multipart(&parts);
    let r = post(ct, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    // The encode page's form takes one file.
    let cookie = crate::ui::login(&s, &key).await;
    let (ct, body) = multipart(&[
        ("file", Some("a.mp4"), &video),
        ("file", Some("b.mp4"), &video),
        ("codec", None, b"x264"),
    ]);
    let r = s
        .app
        .clone()
        .oneshot_form(&format!("/ui/projects/{p}/encode"), &cookie, &ct, body)
        .await;
    assert_eq!(r.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.1);
    assert!(r.1.contains("the form holds more than one file"), "{}", r.1);
}

/// Posting a form to the web UI with a session cookie.
trait FormPost {
    async fn oneshot_form(
        self,
        path: &str,
        cookie: &str,
        ct: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String);
}

impl FormPost for axum::Router {
    async fn oneshot_form(
        self,
        path: &str,
        cookie: &str,
        ct: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        use tower::ServiceExt;
        let req = axum::http::Request::post(path)
            .header("cookie", cookie)
            .header("content-type", ct)
            .header("accept", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        let r = self.oneshot(req).await.unwrap();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[tokio::test]
async fn names_that_read_as_numbers_are_refused_and_paths_take_ids_only_in_canonical_form() {
    let s = Server::start();
    let key = s.admin_key.clone();
    for name in ["2", "+2", "-2", "002", "99999999999999999999"] {
        let r = s
            .send_json(
                Method::POST,
                "/api/v1/projects",
                &key,
                json!({ "name": name }),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            r.text()
        );
        assert!(r.message().contains("reads as a number"), "{}", r.message());
        let r = s
            .send_json(
                Method::POST,
                "/api/v1/users",
                &key,
                json!({ "name": name, "admin": false }),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            r.text()
        );
    }
    let one = s.project("one", &key).await;
    let two = s.project("two", &key).await;
    assert_eq!(two, 2, "ids are given in order");
    // A database from before the rule may hold such a name: it stays a name.
    let mut store = s.store();
    let admin = store.user_by_name("root").unwrap().unwrap();
    let plus = store.create_project("+2", admin.id, 1).unwrap();
    let get = |path: String| {
        let (s, key) = (&s, key.clone());
        async move { s.get(&path, &key).await }
    };
    let r = get("/api/v1/projects/+2".into()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        (r.json()["id"].as_i64(), r.json()["name"].as_str()),
        (Some(plus.id.0), Some("+2"))
    );
    assert_eq!(get("/api/v1/projects/2".into()).await.json()["name"], "two");
    for path in [
        "/api/v1/projects/02",
        "/api/v1/projects/%202",
        "/api/v1/jobs/+1",
        "/api/v1/jobs/01",
    ] {
        let r = get(path.into()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text());
    }
    let r = s
        .send_json(
            Method::PUT,
            &format!("/api/v1/projects/{one}/members/+1"),
            &key,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "user +1 is not user 1: {}",
        r.text()
    );
}

#[tokio::test]
async fn encoder_settings_that_are_not_the_encoders_are_refused_before_anything_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let video = std::fs::read(clip(tmp.path())).unwrap();
    let s = Server::start();
    let key = s.admin_key.clone();
    let p = s.project("enc", &key).await;
    let r = s
        .call(
            Method::POST,
            &format!("/api/v1/projects/{p}/uploads?name=c.mp4"),
            Some(&key),
            Some(("application/octet-stream", video)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let upload = r.json()["upload"].as_str().unwrap().to_string();
    let cases = [
        (
            json!({"preset": "-i /etc/passwd"}),
            "use one of ultrafast, superfast, veryfast",
        ),
        (
            json!({"crf": 99}),
            "crf 99 is out of range for x264; use 0 to 51",
        ),
        (
            json!({"codec": "svt-av1", "preset": "14"}),
            "from 0 (slowest) to 13",
        ),
        (
            json!({"codec": "vp9", "preset": "fast"}),
            "from -8 (slowest) to 8",
        ),
        (
            json!({"codec": "ffv1", "container": "mkv", "crf": 0}),
            "ffv1 is lossless and takes no crf",
        ),
        (
            json!({"codec": "ffv1", "container": "mp4"}),
            "the output's container (mp4) cannot hold ffv1 video; use mkv",
        ),
    ];
    for (mut body, want) in cases {
        body["upload"] = json!(upload);
        let r = s
            .send_json(
                Method::POST,
                &format!("/api/v1/projects/{p}/encodes"),
                &key,
                body.clone(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text()
        );
        assert!(r.message().contains(want), "{body}: {}", r.message());
        // Never the server's own paths.
        let data = s.data.display().to_string();
        assert!(!r.message().contains(&data), "{body}: {}", r.message());
    }
    for dir in ["encodes", "outputs", "jobs"] {
        assert_eq!(
            files_under(&s.data.join(dir)),
            Vec::<std::path::PathBuf>::new(),
            "{dir}"
        );
    }
}

#[tokio::test]
async fn made_up_methods_share_one_metrics_series() {
    let s = Server::start();
    for i in 0..50 {
        let method = Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        let r = s.call(method, "/healthz", None, None).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text());
    }
    let text = s.get("/metrics", &s.admin_key).await.text();
    assert!(!text.contains("MADEUP"), "{text}");
    assert!(
        text.contains(
            "tessera_http_requests_total{method=\"OTHER\",route=\"/healthz\",status=\"405\"} 50\n"
        ),
        "{text}"
    );
}
