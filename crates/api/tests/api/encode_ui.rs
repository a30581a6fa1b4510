//! The submit-an-encode page in-process: the form without JavaScript (a
//! plain multipart post streamed to an upload, then a 303 to the job), the
//! script's two steps (upload through the session, then the form with
//! `Accept: application/json`), refusals shown on the form, cross-site
//! posts refused, and roles.

use crate::harness::Server;
use crate::ui::login;
use crate::uploads::{big_clip, clip, files_under, multipart};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn send(
    s: &Server,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let r = s
        .app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The form's fields as a browser sends them, `file` first.
fn form(file: Option<(&str, &[u8])>, fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![match file {
        Some((name, bytes)) => ("file", Some(name), bytes),
        None => ("file", Some(""), b""),
    }];
    for (name, value) in fields {
        parts.push((name, None, value.as_bytes()));
    }
    multipart(&parts)
}

#[tokio::test]
async fn the_encode_form_works_with_and_without_javascript() {
    let tmp = tempfile::tempdir().unwrap();
    let src = clip(tmp.path());
    let bytes = std::fs::read(&src).unwrap();
    let media = tmp.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::copy(&src, media.join("ep1.mp4")).unwrap();
    let volumes = tessera_api::Volumes::new([("media".to_string(), media)]).unwrap();
    let s = Server::start_with("/bin/true", move |state| state.with_volumes(volumes));
    let admin = s.admin_key.clone();
    let p = s.project("films", &admin).await;
    let (viewer, viewer_key) = s.user("vic", false).await;
    let r = s
        .send_json(
            Method::PUT,
            &format!("/api/v1/projects/{p}/members/{viewer}"),
            &admin,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = format!("/ui/projects/{p}/encode");

    // Without a session: the login.
    let a = send(&s, Method::GET, &page, &[], vec![]).await;
    assert_eq!(
        (a.status, a.location()),
        (StatusCode::SEE_OTHER, "/ui/login")
    );

    let c = login(&s, &admin).await;
    let cookie = [("cookie", c.as_str())];
    let a = send(&s, Method::GET, &page, &cookie, vec![]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for want in [
        r#"id="encode-form""#,
        r#"enctype="multipart/form-data""#,
        r#"<input type="file" id="file" name="file""#,
        r#"<option value="media">media</option>"#,
        r#"<option value="ffv1" data-crf="">ffv1</option>"#,
        r#"<option value="x264" data-crf="0-51">x264</option>"#,
        r#"<option value="svt-av1" data-crf="0-63">svt-av1</option>"#,
        "x264 0 to 51 · x265 0 to 51 · svt-av1 0 to 63 · vp9 0 to 63 · ffv1 none (lossless)",
        r#"<progress id="upload-bar""#,
        "tesseraNavigate",
    ] {
        assert!(a.body.contains(want), "{want} in {}", a.body);
    }
    for path in [format!("/ui/projects/{p}"), "/ui".to_string()] {
        let a = send(&s, Method::GET, &path, &cookie, vec![]).await;
        assert!(
            a.body.contains(&format!(r#"href="{page}""#)),
            "{path}: {}",
            a.body
        );
    }

    // Without JavaScript: the whole form, file included, in one post.
    let settings = [
        ("upload", ""),
        ("volume", ""),
        ("path", ""),
        ("codec", "ffv1"),
        ("container", "mkv"),
        ("crf", ""),
        ("preset", ""),
        ("chunk_seconds", "1"),
    ];
    let big = big_clip(tmp.path());
    let (ct, body) = form(Some(("my clip.mp4", &big)), &settings);
    let headers = [("cookie", c.as_str()), ("content-type", &ct)];
    let a = send(&s, Method::POST, &page, &headers, body).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let job: i64 = a
        .location()
        .strip_prefix("/ui/jobs/")
        .unwrap()
        .parse()
        .unwrap();
    let shown = s.get(&format!("/api/v1/jobs/{job}"), &admin).await.json();
    assert_eq!(shown["name"], "encode my_clip.mp4", "{shown}");

    // With JavaScript: the file alone through the session, then the form.
    let upload = format!("/ui/projects/{p}/uploads?name=js.mp4");
    let raw = [
        ("cookie", c.as_str()),
        ("content-type", "application/octet-stream"),
    ];
    let a = send(&s, Method::POST, &upload, &raw, bytes.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = a.json()["upload"].as_str().unwrap().to_string();
    let mut fields = settings;
    fields[0] = ("upload", &id);
    let (ct, body) = form(None, &fields);
    let headers = [
        ("cookie", c.as_str()),
        ("content-type", &ct),
        ("accept", "application/json"),
    ];
    let a = send(&s, Method::POST, &page, &headers, body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let job = a.json()["job"].as_i64().unwrap();
    assert_eq!(a.json()["url"], format!("/ui/jobs/{job}"));
    let shown = s.get(&format!("/api/v1/jobs/{job}"), &admin).await.json();
    assert_eq!(shown["name"], "encode js.mp4", "{shown}");

    // A volume's file.
    let mut fields = settings;
    fields[1] = ("volume", "media");
    fields[2] = ("path", "ep1.mp4");
    let (ct, body) = form(None, &fields);
    let headers = [("cookie", c.as_str()), ("content-type", &ct)];
    let a = send(&s, Method::POST, &page, &headers, body).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);

    // Refusals come back on the form, the new upload kept and chosen.
    let mut fields = settings;
    fields[5] = ("crf", "best");
    let (ct, body) = form(Some(("again.mp4", &bytes)), &fields);
    let headers = [("cookie", c.as_str()), ("content-type", &ct)];
    let a = send(&s, Method::POST, &page, &headers, body).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("crf must be a number"), "{}", a.body);
    assert!(a.body.contains("selected>again.mp4"), "{}", a.body);
    let mut fields = settings;
    fields[1] = ("volume", "media");
    fields[2] = ("path", "../ep1.mp4");
    let (ct, body) = form(None, &fields);
    let headers = [
        ("cookie", c.as_str()),
        ("content-type", &ct),
        ("accept", "application/json"),
    ];
    let a = send(&s, Method::POST, &page, &headers, body).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(
        a.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("contains `..`"),
        "{}",
        a.body
    );
    let (ct, body) = form(Some(("notes.mp4", b"plain text")), &settings);
    let headers = [("cookie", c.as_str()), ("content-type", &ct)];
    let a = send(&s, Method::POST, &page, &headers, body).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("notes.mp4: "), "{}", a.body);
    assert_eq!(
        files_under(&s.data.join("uploads"))
            .iter()
            .filter(|f| f.ends_with("notes.mp4"))
            .count(),
        0
    );

    // Cross-site posts are refused before anything is read.
    let (ct, body) = form(Some(("x.mp4", &bytes)), &settings);
    for extra in [
        [("origin", "http://evil.example"), ("host", "tessera.local")],
        [("sec-fetch-site", "cross-site"), ("host", "tessera.local")],
    ] {
        let headers = [
            ("cookie", c.as_str()),
            ("content-type", &ct),
            extra[0],
            extra[1],
        ];
        for path in [page.as_str(), upload.as_str()] {
            let a = send(&s, Method::POST, path, &headers, body.clone()).await;
            assert_eq!(
                a.status,
                StatusCode::FORBIDDEN,
                "{path} {extra:?}: {}",
                a.body
            );
        }
    }
    let headers = [
        ("cookie", c.as_str()),
        ("content-type", &ct),
        ("origin", "http://tessera.local:6543"),
        ("host", "tessera.local:6543"),
    ];
    let a = send(&s, Method::POST, &page, &headers, body.clone()).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "same origin: {}", a.body);

    // The job page of an encode with no output has no download link, and
    // the download route says why.
    let done = s.wait_job(job, &admin).await;
    let a = send(&s, Method::GET, &format!("/ui/jobs/{job}"), &cookie, vec![]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.body.contains(r#"id="download""#), "{done}: {}", a.body);
    let a = send(
        &s,
        Method::GET,
        &format!("/ui/jobs/{job}/output"),
        &cookie,
        vec![],
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert!(a.body.contains("<h1>404</h1>"), "{}", a.body);

    // A viewer may not encode.
    let v = login(&s, &viewer_key).await;
    let a = send(&s, Method::GET, &page, &[("cookie", v.as_str())], vec![]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    let headers = [("cookie", v.as_str()), ("content-type", &ct)];
    let a = send(&s, Method::POST, &page, &headers, body).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
}
