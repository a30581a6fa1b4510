//! The web UI: sessions and authorization in-process, then the whole flow
//! in real headless Chromium (log in, dashboard, job page watched live
//! until the job succeeds, a task's log), with screenshots.

use crate::harness::Server;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tessera_store::Accounts;
use tower::ServiceExt;

/// Members control a job from its page; refusals read as the API's, with
/// what was entered kept; viewers see no controls.
#[tokio::test]
async fn the_job_page_controls_the_job() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    let project = s.project("ctl", &admin).await;
    let spec = "name: long\ntasks:\n  - {name: a, action: {kind: command, argv: [sleep, '30']}}\n";
    let r = s
        .post_yaml(&format!("/api/v1/projects/{project}/jobs"), &admin, spec)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();
    let c = login(&s, &admin).await;
    let url = format!("/ui/jobs/{job}");
    let page = ui(&s, Method::GET, &url, Some(&c), None).await;
    for control in ["do-cancel", "do-suspend", "do-priority"] {
        assert!(
            page.body.contains(&format!(r#"id="{control}""#)),
            "{control}"
        );
    }
    let ctl = format!("/ui/jobs/{job}/control");
    // A refusal in the API's words, the entered value kept.
    let p = ui(
        &s,
        Method::POST,
        &ctl,
        Some(&c),
        Some("action=priority&priority=900"),
    )
    .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert!(
        p.body
            .contains("priority 900 is out of range; give 0 to 100"),
        "{}",
        p.body
    );
    assert!(p.body.contains(r#"value="900""#), "{}", p.body);
    let p = ui(&s, Method::POST, &ctl, Some(&c), Some("action=resume")).await;
    assert_eq!(p.status, StatusCode::CONFLICT, "{}", p.body);
    assert!(p.body.contains(r#"id="control-error""#), "{}", p.body);
    // Done: back to the page, the job changed.
    let p = ui(
        &s,
        Method::POST,
        &ctl,
        Some(&c),
        Some("action=priority&priority=40"),
    )
    .await;
    assert_eq!(p.location.as_deref(), Some(url.as_str()), "{}", p.body);
    let p = ui(&s, Method::POST, &ctl, Some(&c), Some("action=suspend")).await;
    assert_eq!(p.location.as_deref(), Some(url.as_str()), "{}", p.body);
    let shown = s.get(&format!("/api/v1/jobs/{job}"), &admin).await.json();
    assert_eq!(shown["priority"], 40, "{shown}");
    assert_eq!(shown["suspended"], true, "{shown}");
    let page = ui(&s, Method::GET, &url, Some(&c), None).await;
    assert!(page.body.contains(r#"id="do-resume""#), "{}", page.body);
    let p = ui(&s, Method::POST, &ctl, Some(&c), Some("action=cancel")).await;
    assert_eq!(p.location.as_deref(), Some(url.as_str()), "{}", p.body);
    // Once cancelled, the page offers a retry, which runs it again.
    let mut ended = false;
    for _ in 0..200 {
        let j = s.get(&format!("/api/v1/jobs/{job}"), &admin).await.json();
        if j["state"] == "cancelled" {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ended, "job {job} was not cancelled");
    let page = ui(&s, Method::GET, &url, Some(&c), None).await;
    assert!(page.body.contains(r#"id="do-retry""#), "{}", page.body);
    let p = ui(&s, Method::POST, &ctl, Some(&c), Some("action=retry")).await;
    assert_eq!(p.location.as_deref(), Some(url.as_str()), "{}", p.body);
    let again = s.get(&format!("/api/v1/jobs/{job}"), &admin).await.json();
    assert_ne!(again["state"], "cancelled", "{again}");
    let p = ui(&s, Method::POST, &ctl, Some(&c), Some("action=cancel")).await;
    assert_eq!(p.location.as_deref(), Some(url.as_str()), "{}", p.body);
    // A viewer sees the job but no controls, and is refused if it posts.
    let (_, viewer) = s.user("vera", false).await;
    let r = s
        .send_json(
            Method::PUT,
            &format!("/api/v1/projects/{project}/members/vera"),
            &admin,
            json!({"role": "viewer"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let v = login(&s, &viewer).await;
    let page = ui(&s, Method::GET, &url, Some(&v), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains(r#"id="control""#), "{}", page.body);
    let p = ui(&s, Method::POST, &ctl, Some(&v), Some("action=cancel")).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
}

/// Keys and members are managed from the project page, through the same
/// service checks as the REST API.
#[tokio::test]
async fn keys_and_members_are_managed_from_the_project_page() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    let project = s.project("crew", &admin).await;
    let c = login(&s, &admin).await;
    let page_url = format!("/ui/projects/{project}");
    let page = ui(&s, Method::GET, &page_url, Some(&c), None).await;
    assert!(page.body.contains(r#"id="add-member""#), "{}", page.body);
    assert!(page.body.contains(r#"id="new-key""#), "{}", page.body);

    // A key made on the page is shown once and works; revoked, it does not.
    let made = ui(
        &s,
        Method::POST,
        "/ui/keys",
        Some(&c),
        Some(&format!("name=phone&back={project}")),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let secret = made
        .body
        .split(r#"<pre class="log" id="new-secret">"#)
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .unwrap()
        .to_string();
    assert!(secret.starts_with("tsk_"), "{secret}");
    assert_eq!(s.get("/api/v1/me", &secret).await.status, StatusCode::OK);
    let keys = s.get("/api/v1/keys", &admin).await.json();
    let id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "phone")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let page = ui(&s, Method::GET, &page_url, Some(&c), None).await;
    assert!(
        page.body.contains(&format!(r#"id="revoke-{id}""#)),
        "{}",
        page.body
    );
    let r = ui(
        &s,
        Method::POST,
        &format!("/ui/keys/{id}/revoke"),
        Some(&c),
        Some(&format!("back={project}")),
    )
    .await;
    assert_eq!(r.location.as_deref(), Some(page_url.as_str()));
    assert_eq!(
        s.get("/api/v1/me", &secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    // `back` names a project by id, never a URL.
    let r = ui(
        &s,
        Method::POST,
        "/ui/keys",
        Some(&c),
        Some("name=x&back=https://evil.example"),
    )
    .await;
    assert!(!r.body.contains("evil.example"), "{}", r.body);

    // Members: add, change the role, remove; an unknown user is refused on
    // the page with what was typed kept.
    let (_, vera) = s.user("vera", false).await;
    let members = format!("/ui/projects/{project}/members");
    let r = ui(
        &s,
        Method::POST,
        &members,
        Some(&c),
        Some("action=set&user=vera&role=viewer"),
    )
    .await;
    assert_eq!(r.location.as_deref(), Some(page_url.as_str()), "{}", r.body);
    let v = login(&s, &vera).await;
    let seen = ui(&s, Method::GET, &page_url, Some(&v), None).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(
        !seen.body.contains(r#"id="add-member""#),
        "viewers get no member forms"
    );
    let r = ui(
        &s,
        Method::POST,
        &members,
        Some(&v),
        Some("action=set&user=vera&role=owner"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = ui(
        &s,
        Method::POST,
        &members,
        Some(&c),
        Some("action=set&user=vera&role=member"),
    )
    .await;
    assert_eq!(r.location.as_deref(), Some(page_url.as_str()), "{}", r.body);
    let listed = s
        .get(&format!("/api/v1/projects/{project}/members"), &admin)
        .await
        .json();
    assert!(listed.to_string().contains(r#""member""#), "{listed}");
    let r = ui(
        &s,
        Method::POST,
        &members,
        Some(&c),
        Some("action=set&user=ghost&role=owner"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(
        r.body.contains(r#"id="form-error""#) && r.body.contains("ghost"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(r#"value="ghost""#),
        "the name typed is kept: {}",
        r.body
    );
    let r = ui(
        &s,
        Method::POST,
        &members,
        Some(&c),
        Some("action=remove&user=vera"),
    )
    .await;
    assert_eq!(r.location.as_deref(), Some(page_url.as_str()), "{}", r.body);
    let seen = ui(&s, Method::GET, &page_url, Some(&v), None).await;
    assert_eq!(seen.status, StatusCode::FORBIDDEN, "vera is out");
}

/// A job spec typed into a page: submitted, or refused with the line the
/// error points at and the text kept.
#[tokio::test]
async fn a_job_spec_is_submitted_from_a_page() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    let project = s.project("typed", &admin).await;
    let c = login(&s, &admin).await;
    let url = format!("/ui/projects/{project}/submit");
    let page = ui(&s, Method::GET, &url, Some(&c), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains(r#"<textarea id="spec""#),
        "{}",
        page.body
    );
    let form = |spec: &str| format!("spec={}", crate::walk_world::form_encode(spec));
    let typo = "name: t\ntasks:\n  - name: a\n    acton: {kind: noop}\n";
    let r = ui(&s, Method::POST, &url, Some(&c), Some(&form(typo))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("unknown field `acton`"), "{}", r.body);
    assert!(
        r.body
            .contains(r#"<code id="spec-line">    acton: {kind: noop}</code>"#),
        "the line is shown: {}",
        r.body
    );
    assert!(
        r.body.contains("    acton: {kind: noop}\n</textarea>"),
        "the text is kept: {}",
        r.body
    );
    let cycle = "name: c\ntasks:\n  - {name: a, action: {kind: noop}, deps: [{selector: b}]}\n  - {name: b, action: {kind: noop}, deps: [{selector: a}]}\n";
    let r = ui(&s, Method::POST, &url, Some(&c), Some(&form(cycle))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("form a cycle"), "{}", r.body);
    let good = "{\"name\": \"typed-job\", \"tasks\": [{\"name\": \"a\", \"action\": {\"kind\": \"noop\"}}]}";
    let r = ui(&s, Method::POST, &url, Some(&c), Some(&form(good))).await;
    let to = r
        .location
        .unwrap_or_else(|| panic!("no redirect: {}", r.body));
    let id: i64 = to.strip_prefix("/ui/jobs/").unwrap().parse().unwrap();
    let job = s.get(&format!("/api/v1/jobs/{id}"), &admin).await.json();
    assert_eq!(job["name"], "typed-job", "{job}");
}

/// Uploads are listed on the project page and deleted from it (members);
/// viewers see them without the button.
#[tokio::test]
async fn uploads_are_deleted_from_the_project_page() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = std::fs::read(crate::uploads::clip(tmp.path())).unwrap();
    let s = Server::start();
    let admin = s.admin_key.clone();
    let project = s.project("shelf", &admin).await;
    let r = s
        .call(
            Method::POST,
            &format!("/api/v1/projects/{project}/uploads?name=keep.mp4"),
            Some(&admin),
            Some(("video/mp4", clip)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["upload"].as_str().unwrap().to_string();
    let c = login(&s, &admin).await;
    let url = format!("/ui/projects/{project}");
    let page = ui(&s, Method::GET, &url, Some(&c), None).await;
    assert!(page.body.contains("keep.mp4"), "{}", page.body);
    assert!(
        page.body.contains(&format!(r#"id="delete-upload-{id}""#)),
        "{}",
        page.body
    );
    let (_, vera) = s.user("vera", false).await;
    let r = s
        .send_json(
            Method::PUT,
            &format!("/api/v1/projects/{project}/members/vera"),
            &admin,
            json!({"role": "viewer"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let v = login(&s, &vera).await;
    let seen = ui(&s, Method::GET, &url, Some(&v), None).await;
    assert!(
        seen.body.contains("keep.mp4") && !seen.body.contains("delete-upload-"),
        "{}",
        seen.body
    );
    let delete = format!("/ui/projects/{project}/uploads/{id}/delete");
    let r = ui(&s, Method::POST, &delete, Some(&v), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = ui(&s, Method::POST, &delete, Some(&c), None).await;
    assert_eq!(r.location.as_deref(), Some(url.as_str()), "{}", r.body);
    let listed = s
        .get(&format!("/api/v1/projects/{project}/uploads"), &admin)
        .await
        .json();
    assert_eq!(listed, json!([]), "{listed}");
    assert!(!s.data.join(format!("uploads/{project}/{id}")).exists());
}

/// The job page says why a task has not started, as the CLI does.
#[tokio::test]
async fn the_job_page_says_why_tasks_wait() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    let p = s.project("why", &admin).await;
    let spec = "name: held\ntasks:\n  - {name: a, action: {kind: command, argv: [sleep, '30']}}\n  - {name: b, action: {kind: noop}, deps: [{selector: a}]}\n";
    let r = s
        .post_yaml(&format!("/api/v1/projects/{p}/jobs"), &admin, spec)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();
    let c = login(&s, &admin).await;
    let page = ui(&s, Method::GET, &format!("/ui/jobs/{job}"), Some(&c), None).await;
    assert!(
        page.body
            .contains(r#"<span class="why">waiting for 1 dependency: a</span>"#),
        "{}",
        page.body
    );
    let r = s
        .send_json(
            Method::POST,
            &format!("/api/v1/jobs/{job}/cancel"),
            &admin,
            json!(null),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) cookie: Option<String>,
    pub(crate) body: String,
}

pub(crate) async fn ui(
    s: &Server,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Page {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(f.to_string())
        }
        None => Body::empty(),
    };
    let r = s
        .app
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let text = |name| {
        r.headers()
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap().to_string())
    };
    let (location, cookie) = (text(header::LOCATION), text(header::SET_COOKIE));
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    Page {
        status,
        location,
        cookie,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Logs in with `key`; returns the `name=value` cookie.
pub(crate) async fn login(s: &Server, key: &str) -> String {
    let p = ui(
        s,
        Method::POST,
        "/ui/login",
        None,
        Some(&format!("key={key}")),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.location.as_deref(), Some("/ui"));
    let set = p.cookie.expect("a session cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn ui_sessions_follow_the_key_and_pages_authorize_like_the_api() {
    let s = Server::start();
    let admin = s.admin_key.clone();
    let alpha = s.project("alpha<b>", &admin).await;
    let (_, outsider) = s.user("outsider", false).await;
    let spec = "name: '<script>x</script>'\ntasks:\n  - name: a\n    action: {kind: noop}\n";
    let r = s
        .post_yaml(&format!("/api/v1/projects/{alpha}/jobs"), &admin, spec)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();

    // No session: pages redirect to the login; / goes to /ui.
    let p = ui(&s, Method::GET, "/", None, None).await;
    assert_eq!(p.location.as_deref(), Some("/ui"));
    for path in ["/ui", &format!("/ui/jobs/{job}"), "/ui/projects/1"] {
        let p = ui(&s, Method::GET, path, None, None).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(p.location.as_deref(), Some("/ui/login"), "{path}");
    }
    let p = ui(&s, Method::GET, "/ui", Some("tessera_session=forged"), None).await;
    assert_eq!(p.location.as_deref(), Some("/ui/login"));

    // A wrong key is refused on the login page, escaped.
    let mut wrong = admin.clone();
    wrong.replace_range(
        wrong.len() - 1..,
        if wrong.ends_with('x') { "y" } else { "x" },
    );
    let p = ui(
        &s,
        Method::POST,
        "/ui/login",
        None,
        Some(&format!("key={wrong}")),
    )
    .await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.cookie.is_none());
    assert!(p.body.contains("login-error"), "{}", p.body);
    // The message is about the form, not the REST API's headers.
    assert!(p.body.contains("Paste the whole key"), "{}", p.body);
    assert!(!p.body.contains("Authorization"), "{}", p.body);

    // The admin sees the dashboard and the job, with user strings escaped.
    let c = login(&s, &admin).await;
    let p = ui(&s, Method::GET, "/ui", Some(&c), None).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("alpha&lt;b&gt;"), "{}", p.body);
    assert!(!p.body.contains("<script>x</script>"));
    assert!(p.body.contains("&lt;script&gt;x&lt;/script&gt;"));
    assert!(p.body.contains("<svg"), "the throughput chart");
    // The harness's driver has 2 slots.
    assert!(
        p.body.contains("of 2 slots busy"),
        "worker slots: {}",
        p.body
    );
    assert!(p.body.contains(r#"id="nodes-link""#), "{}", p.body);
    let n = ui(&s, Method::GET, "/ui/nodes", Some(&c), None).await;
    assert_eq!(n.status, StatusCode::OK, "{}", n.body);
    assert!(n.body.contains("its own 2 slots"), "{}", n.body);
    let p = ui(&s, Method::GET, &format!("/ui/jobs/{job}"), Some(&c), None).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains(r#"id="dag""#));
    let p = ui(
        &s,
        Method::GET,
        &format!("/ui/jobs/{job}/state.json"),
        Some(&c),
        None,
    )
    .await;
    let state: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    assert_eq!(state["total"], 1);
    let p = ui(
        &s,
        Method::GET,
        &format!("/ui/projects/{alpha}"),
        Some(&c),
        None,
    )
    .await;
    assert!(
        p.body.contains("bootstrap"),
        "the admin's key by name: {}",
        p.body
    );
    // Usage now, the quota (none set: unlimited) and the cpu-seconds chart.
    assert!(p.body.contains(r#"id="usage""#), "{}", p.body);
    assert!(
        p.body.contains("unlimited cpu at once") || p.body.contains("Quota: unlimited"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains(r#"id="usage-chart" data-end><svg"#),
        "a plotted usage chart: {}",
        p.body
    );

    // An outsider: 403 on another project's job and project, 404 on none.
    let o = login(&s, &outsider).await;
    let n = ui(&s, Method::GET, "/ui/nodes", Some(&o), None).await;
    assert_eq!(
        n.status,
        StatusCode::FORBIDDEN,
        "the nodes page is for admins"
    );
    let d = ui(&s, Method::GET, "/ui", Some(&o), None).await;
    assert!(!d.body.contains(r#"id="nodes-link""#));
    let p = ui(&s, Method::GET, &format!("/ui/jobs/{job}"), Some(&o), None).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = ui(
        &s,
        Method::GET,
        &format!("/ui/projects/{alpha}"),
        Some(&o),
        None,
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = ui(&s, Method::GET, "/ui/jobs/999999", Some(&o), None).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let p = ui(
        &s,
        Method::GET,
        &format!("/ui/jobs/{job}/tasks/0/logs"),
        Some(&o),
        None,
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    // Logout ends the session; so does revoking the key it was opened with.
    let p = ui(&s, Method::POST, "/ui/logout", Some(&o), None).await;
    assert_eq!(p.location.as_deref(), Some("/ui/login"));
    let p = ui(&s, Method::GET, "/ui", Some(&o), None).await;
    assert_eq!(p.location.as_deref(), Some("/ui/login"));
    let r = s
        .send_json(Method::POST, "/api/v1/keys", &admin, json!({"name": "ui"}))
        .await;
    let (key, key_id) = (
        r.json()["secret"].as_str().unwrap().to_string(),
        r.json()["key"]["id"].as_i64().unwrap(),
    );
    let c2 = login(&s, &key).await;
    assert_eq!(
        ui(&s, Method::GET, "/ui", Some(&c2), None).await.status,
        StatusCode::OK
    );
    let r = s
        .call(
            Method::DELETE,
            &format!("/api/v1/keys/{key_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let p = ui(&s, Method::GET, "/ui", Some(&c2), None).await;
    assert_eq!(
        p.location.as_deref(),
        Some("/ui/login"),
        "a revoked key's session ends"
    );
}

/// chromedriver, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_in_headless_chromium_logs_in_and_watches_a_job_finish() {
    use fantoccini::{ClientBuilder, Locator};

    if !(on_path("chromium") && on_path("chromedriver")) {
        tessera_testkit::env::skip(
            "chromium or chromedriver is not on PATH",
            "apt-get install chromium chromium-driver (.ci/run does)",
        );
        return;
    }
    let s = Server::start();
    let admin = s.admin_key.clone();
    let mut store = s.store();
    let now = 1;
    let owner = store.create_user("ada", false, now).unwrap();
    let (key, prefix, hash) = tessera_api::new_api_key();
    store
        .create_key(owner.id, "laptop", &prefix, &hash, now)
        .unwrap();
    let project = store.create_project("films", owner.id, now).unwrap();
    store.create_user("bruno", false, now).unwrap();
    drop(store);
    // chunk-0 runs until `go` exists: the job is still running when the
    // page opens, whatever the machine's load.
    let gate = tempfile::tempdir().unwrap();
    let go = gate.path().join("go");
    let wait_go = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; echo chunk 0",
        go.display()
    );
    // `plan` adds a task once `go` exists (as an encode's plan adds its
    // chunks): the open page must show it live. It runs until `go2`.
    let go2 = gate.path().join("go2");
    let late = json!([{"name": "late-part", "action": {"kind": "command", "argv": [
        "sh", "-c", format!("echo started late; echo to stderr >&2; while [ ! -e {} ]; do sleep 0.05; done; echo late done", go2.display())]}}]);
    let plan = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; printf '%s' '{late}' > \"$TESSERA_EXPAND\"",
        go.display()
    );
    let spec = json!({
        "name": "encode-trailer",
        "tasks": [
            {"name": "probe", "action": {"kind": "command", "argv": ["sh", "-c", "echo probed-ok"]}},
            {"name": "plan", "expands": true, "action": {"kind": "command", "argv": ["sh", "-c", plan]}, "deps": [{"selector": "probe"}]},
            {"name": "chunk-0", "action": {"kind": "command", "argv": ["sh", "-c", wait_go]}, "deps": [{"selector": "probe"}]},
            {"name": "chunk-1", "action": {"kind": "command", "argv": ["sh", "-c", "echo chunk 1"]}, "deps": [{"selector": "probe"}]},
            {"name": "concat", "action": {"kind": "command", "argv": ["sh", "-c", "echo joined"]}, "deps": [{"selector": "chunk-*"}]}
        ]
    });
    let r = s
        .send_json(
            Method::POST,
            &format!("/api/v1/projects/{}/jobs", project.id.0),
            &key,
            spec,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();
    let _ = admin;

    // The real server on a real port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tessera_api::serve(listener, s.state.clone(), async move {
        let _ = stopped.await;
    }));

    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let _driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"]}),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromedriver session");
    let shots = screenshots_dir();
    let shot = |name: &str, png: Vec<u8>| {
        let path = shots.join(name);
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
    };

    // Log in.
    c.goto(&format!("{base}/ui")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/ui/login"));
    c.find(Locator::Css("#key"))
        .await
        .unwrap()
        .send_keys(&key)
        .await
        .unwrap();
    shot("login.png", c.screenshot().await.unwrap());
    c.find(Locator::Css("#login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The dashboard lists the project and the job; click through to it.
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("section.project"))
        .await
        .unwrap();
    let dash = c.source().await.unwrap();
    assert!(
        dash.contains("films") && dash.contains("encode-trailer"),
        "{dash}"
    );
    shot("dashboard.png", c.screenshot().await.unwrap());
    c.find(Locator::LinkText("encode-trailer"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Live updates: the page shows the job running, then, once chunk-0 is
    // let go, the badge turns to succeeded without a manual reload.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = match c.find(Locator::Css("#job-state")).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if state == "running" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "job {job} is {state:?} on the page, not running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = |css: &'static str| {
        let c = c.clone();
        async move {
            match c.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        }
    };
    assert!(!text("#tasks-box").await.contains("late-part"));
    std::fs::write(&go, "").unwrap();
    // The task `plan` adds appears without a reload: in the table, the
    // graph and (once it runs) the timeline, while the job still runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (table, graph) = (
            text("#tasks-box").await,
            c.find_all(Locator::Css("#graph-box g.node"))
                .await
                .map_or(0, |n| n.len()),
        );
        let bar = c
            .find_all(Locator::Css("#timeline-box rect.bar.o-running"))
            .await
            .map_or(0, |b| b.len());
        if table.contains("late-part") && graph == 6 && bar == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the added task is not on the page after 30 s: {graph} boxes, {bar} running bars, table:\n{table}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        text("#job-state").await,
        "running",
        "shown live, not by the final reload"
    );
    shot("job-live.png", c.screenshot().await.unwrap());
    // The running task's logs, in the page, followed live: what it writes
    // after the page opened appears without a reload.
    c.goto(&format!("{base}/ui/jobs/{job}/tasks/5/log"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !text("#stdout").await.contains("started late")
        || !text("#stderr").await.contains("to stderr")
    {
        assert!(
            Instant::now() < deadline,
            "the log page shows no log: {}",
            text("#stdout").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::write(&go2, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !text("#stdout").await.contains("late done") {
        assert!(
            Instant::now() < deadline,
            "the log was not followed: {}",
            text("#stdout").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot("log-live.png", c.screenshot().await.unwrap());
    c.goto(&format!("{base}/ui/jobs/{job}")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = text("#job-state").await;
        if state == "succeeded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "job {job} still {state:?} on the page after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The page followed the job through its event stream (not by polling).
    let metrics = s.get("/metrics", &s.admin_key).await.text();
    assert!(
        metrics.contains(r#"route="/ui/jobs/{id}/events",status="200""#),
        "the page never opened the event stream:\n{metrics}"
    );
    // After the final reload the page shows every task and its bars.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let bars = c
            .find_all(Locator::Css("#gantt rect.bar.o-succeeded"))
            .await
            .map_or(0, |b| b.len());
        if bars == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{bars} succeeded bars after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let nodes = c.find_all(Locator::Css("#dag g.node")).await.unwrap();
    assert_eq!(nodes.len(), 6, "one DAG node per task");
    let edges = c.find_all(Locator::Css("#dag line.edge")).await.unwrap();
    assert_eq!(
        edges.len(),
        5,
        "probe->plan, probe->chunk-0, probe->chunk-1, chunk-*->concat"
    );
    let bars = c
        .find_all(Locator::Css("#gantt rect.bar.o-succeeded"))
        .await
        .unwrap();
    assert_eq!(bars.len(), 6, "one succeeded attempt bar per task");
    shot("job.png", c.screenshot().await.unwrap());

    // A task's stdout, through the session.
    c.find(Locator::Css(
        r#"a[href$="/tasks/0/logs?attempt=1&stream=stdout"]"#,
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let text = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("probed-ok"), "{text}");

    // At phone width (420 px) no page scrolls sideways: wide tables and
    // charts scroll inside their boxes, and charts along time open at
    // their recent end.
    // The pages' forms, clicked as a person would (confirmations accepted).
    let pid = project.id.0;
    c.goto(&format!("{base}/ui/projects/{pid}")).await.unwrap();
    c.find(Locator::Css("#key-name"))
        .await
        .unwrap()
        .send_keys("browser")
        .await
        .unwrap();
    c.find(Locator::Css("#do-new-key"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let secret = c
        .find(Locator::Css("#new-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        secret.starts_with("tsk_"),
        "a new key, shown once: {secret}"
    );
    c.goto(&format!("{base}/ui/projects/{pid}")).await.unwrap();
    c.find(Locator::Css("#member-user"))
        .await
        .unwrap()
        .send_keys("bruno")
        .await
        .unwrap();
    c.find(Locator::Css("#member-role"))
        .await
        .unwrap()
        .select_by_value("viewer")
        .await
        .unwrap();
    c.find(Locator::Css("#do-add-member"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let members = s
        .get(&format!("/api/v1/projects/{pid}/members"), &key)
        .await
        .json();
    assert!(members.to_string().contains("bruno"), "{members}");
    c.goto(&format!("{base}/ui/projects/{pid}/submit"))
        .await
        .unwrap();
    let spec = c.find(Locator::Css("#spec")).await.unwrap();
    spec.clear().await.unwrap();
    spec.send_keys(
        "name: from-page\ntasks:\n  - {name: nap, action: {kind: command, argv: [sleep, '60']}}\n",
    )
    .await
    .unwrap();
    c.find(Locator::Css("#do-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let typed: i64 = loop {
        let url = c.current_url().await.unwrap();
        if let Some(id) = url
            .path()
            .strip_prefix("/ui/jobs/")
            .and_then(|i| i.parse().ok())
        {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no job page after submitting: {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let api_state = |field: &'static str| {
        let (s, key) = (&s, key.clone());
        async move { s.get(&format!("/api/v1/jobs/{typed}"), &key).await.json()[field].clone() }
    };
    c.find(Locator::Css("#do-suspend"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.accept_alert().await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#do-resume"))
        .await
        .unwrap();
    assert_eq!(api_state("suspended").await, true);
    c.find(Locator::Css("#do-cancel"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.accept_alert().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while api_state("state").await != "cancelled" {
        assert!(
            Instant::now() < deadline,
            "the page's cancel did not cancel job {typed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot("controlled.png", c.screenshot().await.unwrap());

    c.set_window_size(420, 900).await.unwrap();
    for (path, name) in [
        ("/ui".to_string(), "phone-dashboard.png"),
        (
            format!("/ui/projects/{}", project.id.0),
            "phone-project.png",
        ),
        // Last: its timeline is checked below.
        (format!("/ui/jobs/{job}"), "phone-job.png"),
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        let widths = c
            .execute(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                vec![],
            )
            .await
            .unwrap();
        let (doc, view) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
        assert!(view <= 420, "{path}: the window is {view} px wide");
        assert!(
            doc <= view,
            "{path} overflows at phone width: {doc} px in {view} px"
        );
        shot(name, c.screenshot().await.unwrap());
    }
    let scrolled = c
        .execute(
            "var e = document.getElementById('timeline-box'); return [e.scrollLeft, e.scrollWidth - e.clientWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        scrolled[1].as_i64().unwrap() > 0
            && scrolled[0].as_i64().unwrap() >= scrolled[1].as_i64().unwrap() - 2,
        "the timeline opens at its recent end: {scrolled}"
    );

    c.close().await.unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
