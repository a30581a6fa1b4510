//! The Go-Docker API over HTTP against a real service, store and driver
//! whose executor ends every attempt at once (successfully): the paths
//! godocker-cli takes, their refusals, and (ignored, run by hand) the
//! benchmark of 1,000 jobs chained by `--parent`.
//!
//! `cargo test -p tessera-godocker --release --test api -- --ignored --nocapture`

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_driver::{Driver, DriverConfig, DriverHandle};
use tessera_exec::{EventSink, ExecEvent, Executor, StartRequest};
use tessera_service::Service;
use tessera_store::{Accounts, SqliteStore};
use tessera_types::{AttemptNo, AttemptUsage, Role, TaskRef};

/// Set to let the attempts of jobs whose command is `hold` end.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// Ends every attempt at once, successfully (the container's run is not
/// what is measured), except those of command `hold`: they end once
/// [`RELEASED`] is set.
struct Instantly(EventSink);

impl Executor for Instantly {
    fn start(&mut self, req: StartRequest) {
        let sink = self.0.clone();
        let exited = move || {
            sink(ExecEvent::Exited {
                task: req.task,
                attempt: req.attempt,
                result: Ok(()),
                usage: AttemptUsage::default(),
            })
        };
        if req.env.get("GODOCKER_CMD").map(String::as_str) != Some("hold") {
            return exited();
        }
        std::thread::spawn(move || {
            let start = Instant::now();
            while !RELEASED.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(120) {
                std::thread::sleep(Duration::from_millis(1));
            }
            exited()
        });
    }
    fn kill(&mut self, _: TaskRef, _: AttemptNo) {}
    fn kill_all(&mut self) {}
}

struct World {
    url: String,
    key: String,
    driver: DriverHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        self.driver.interrupt();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let (db, data) = (dir.path().join("t.db"), dir.path().join("data"));
    let (tx, rx) = std::sync::mpsc::channel();
    let (db2, data2) = (db.clone(), data.clone());
    let thread = std::thread::spawn(move || {
        let store = SqliteStore::open(&db2).unwrap();
        let mut config = DriverConfig::new(8, data2);
        config.images = true;
        let mut driver = Driver::new(store, Instantly, config);
        driver.recover(None).unwrap();
        tx.send(driver.handle()).unwrap();
        driver.serve(&mut ()).unwrap();
    });
    let driver = rx.recv().unwrap();
    let mut store = SqliteStore::open_secondary(&db).unwrap();
    let user = store.create_user("ana", false, 1).unwrap();
    let other = store.create_user("bob", false, 1).unwrap();
    let (key, prefix, hash) = tessera_service::new_api_key();
    store.create_key(user.id, "k", &prefix, &hash, 1).unwrap();
    let project = store.create_project("video", user.id, 1).unwrap();
    store.create_project("other", other.id, 1).unwrap();
    store
        .set_member(project.id, user.id, Some(Role::Owner), 1)
        .unwrap();
    // Not a whole number of GB: shown rounded down (4).
    let quota = tessera_types::Quota {
        max_memory_mb: Some(5000),
        ..Default::default()
    };
    store.set_quota(project.id, quota).unwrap();
    let service = Service::new(Box::new(store), driver.clone(), data, Arc::new(()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .nest_service(tessera_godocker::PREFIX, tessera_godocker::router(service));
    runtime.spawn(async move { axum::serve(listener, app).await });
    World {
        url,
        key,
        driver,
        thread: Some(thread),
        _runtime: runtime,
        _dir: dir,
    }
}

/// What a request answered: its status and its JSON.
fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}")).unwrap_or_default();
    let req = ureq::request(method, url).set("Authorization", &auth);
    let res = match method {
        "GET" | "DELETE" => req.call(),
        _ => req.send_json(body.unwrap_or(json!({}))),
    };
    let res = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = res.status();
    let text = res.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl World {
    fn api(&self, path: &str) -> String {
        format!("{}/api/1.0{path}", self.url)
    }

    fn token(&self) -> String {
        let (status, body) = call(
            "POST",
            &self.api("/authenticate"),
            None,
            Some(json!({"user": "ana", "apikey": self.key})),
        );
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// `godjob create` of a job named `name` after `parents`.
    fn create(&self, token: &str, name: &str, parents: &str) -> (u16, Value) {
        self.create_cmd(token, name, parents, "true")
    }

    fn create_cmd(&self, token: &str, name: &str, parents: &str, cmd: &str) -> (u16, Value) {
        let job = json!({
            "user": {"id": "ana", "uid": 0, "gid": 0, "project": "video"},
            "meta": {"name": name, "description": "", "tags": []},
            "requirements": {"cpu": 1, "ram": 1, "gpus": 0, "array": {"values": null},
                "label": [], "failure_policy": 0, "tasks": parents.split(',').collect::<Vec<_>>(),
                "tmpstorage": null, "executor": null},
            "container": {"image": "tessera-local:dev", "volumes": [], "network": true,
                "id": null, "meta": null, "stats": null, "ports": [], "root": false},
            "command": {"interactive": false, "cmd": cmd},
            "status": {"primary": null, "secondary": null},
        });
        call("POST", &self.api("/task"), Some(token), Some(job))
    }
}

#[test]
fn tokens_come_from_a_valid_key_and_refusals_are_json_messages() {
    let w = world();
    let (status, body) = call(
        "POST",
        &w.api("/authenticate"),
        None,
        Some(json!({"user": "ana", "apikey": "tsk_x_y"})),
    );
    assert_eq!(status, 401);
    assert!(body["msg"]
        .as_str()
        .unwrap()
        .contains("tessera admin create-user"));
    let (status, body) = call(
        "POST",
        &w.api("/authenticate"),
        None,
        Some(json!({"user": "bob", "apikey": w.key})),
    );
    assert_eq!(status, 401, "ana's key is not bob's: {body}");
    let (status, _) = call("GET", &w.api("/task/active"), Some("gdt_forged"), None);
    assert_eq!(status, 401);
    let token = w.token();
    let (status, body) = call("GET", &w.api("/user/ana/project"), Some(&token), None);
    assert_eq!(status, 200);
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "video"]);
    // A parent that is not a job of the project; a project not the caller's.
    let (status, body) = w.create(&token, "orphan", "41");
    assert_eq!(status, 400);
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("parent job 41 does not exist"),
        "{body}"
    );
    let (status, body) = call(
        "POST",
        &w.api("/task"),
        Some(&token),
        Some(json!({"user": {"project": "other"}, "meta": {"name": "x"},
            "container": {"image": "i"}, "command": {"cmd": "true"}})),
    );
    assert_eq!(status, 400);
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("not a member of project \"other\""),
        "{body}"
    );
    let (status, body) = call("GET", &w.api("/ssh/1"), Some(&token), None);
    assert_eq!(status, 404);
    assert!(body["msg"].as_str().unwrap().contains("not offered"));
    let (status, body) = call("POST", &w.api("/task"), Some(&token), Some(json!([1, 2])));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn a_child_runs_after_its_parents_and_shows_them() {
    let w = world();
    let token = w.token();
    let (_, a) = w.create(&token, "a", "");
    let (_, b) = w.create(&token, "b", "");
    let parents = format!("{},{},", a["id"], b["id"]);
    let (status, c) = w.create(&token, "c", &parents);
    assert_eq!(status, 200, "{c}");
    let shown = wait_over(&w, &token, c["id"].as_i64().unwrap());
    assert_eq!(shown["status"]["secondary"], "success");
    assert_eq!(
        shown["requirements"]["tasks"],
        json!([a["id"].to_string(), b["id"].to_string()])
    );
    assert!(shown["status"]["date_running"].as_f64().unwrap() >= 0.0);
    assert_eq!(shown["container"]["meta"]["State"]["ExitCode"], 0);
    let (_, over) = call("POST", &w.api("/task/over/0/0"), Some(&token), None);
    assert_eq!(over.as_array().unwrap().len(), 3);
}

fn wait_over(w: &World, token: &str, id: i64) -> Value {
    let start = Instant::now();
    loop {
        let (status, job) = call("GET", &w.api(&format!("/task/{id}")), Some(token), None);
        assert_eq!(status, 200, "{job}");
        if job["status"]["primary"] == "over" {
            return job;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{job}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// 1,000 jobs, each `--parent` the one before, the first after a held
/// gate job, submitted through the API; then the gate is released and the
/// chain runs (instantly ending tasks): jobs per second submitted and run,
/// and the hop from a parent's end to its child's start.
#[test]
#[ignore = "a benchmark: run it by hand with --ignored --nocapture"]
fn bench_a_thousand_chained_jobs() {
    const N: usize = 1000;
    let w = world();
    let token = w.token();
    let (_, gate) = w.create_cmd(&token, "gate", "", "hold");
    let start = Instant::now();
    let mut ids: Vec<i64> = Vec::with_capacity(N);
    for i in 0..N {
        let parent = ids.last().map_or(gate["id"].to_string(), i64::to_string);
        let (status, body) = w.create(&token, &format!("chain-{i}"), &parent);
        assert_eq!(status, 200, "{body}");
        ids.push(body["id"].as_i64().unwrap());
    }
    let submitted = start.elapsed();
    let released = Instant::now();
    RELEASED.store(true, Ordering::SeqCst);
    let last = wait_over(&w, &token, *ids.last().unwrap());
    let ran = released.elapsed();
    let total = start.elapsed();
    assert_eq!(last["status"]["secondary"], "success");
    let mut hops = Vec::with_capacity(N);
    let mut prev_over: Option<f64> = None;
    for id in &ids {
        let (_, job) = call("GET", &w.api(&format!("/task/{id}")), Some(&token), None);
        let started = job["status"]["date_running"].as_f64().unwrap();
        if let Some(over) = prev_over {
            hops.push(((started - over) * 1000.0_f64).max(0.0));
        }
        prev_over = job["status"]["date_over"].as_f64();
    }
    hops.sort_by(f64::total_cmp);
    let pct = |p: f64| hops[((hops.len() - 1) as f64 * p) as usize];
    println!(
        "{N} Go-Docker jobs chained by --parent: submitted in {:.2} s ({:.0} jobs/s), run in \
         {:.2} s ({:.0} jobs/s), {:.0} jobs/s end to end; hop parent over -> child running: \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (store times, ms resolution)",
        submitted.as_secs_f64(),
        N as f64 / submitted.as_secs_f64(),
        ran.as_secs_f64(),
        N as f64 / ran.as_secs_f64(),
        N as f64 / total.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        hops.last().unwrap()
    );
}

/// `msg` of a refusal.
fn msg(body: &Value) -> &str {
    body["msg"].as_str().unwrap_or_default()
}

#[test]
fn archive_delete_reset_and_users_refuse_what_they_must() {
    let w = world();
    let token = w.token();
    let t = Some(token.as_str());
    // Archive: a running job is refused; an ended one is archived, kept.
    let (_, held) = w.create_cmd(&token, "held", "", "hold");
    let (_, done) = w.create(&token, "done", "");
    let done = done["id"].as_i64().unwrap();
    wait_over(&w, &token, done);
    let start = Instant::now();
    let held = held["id"].as_i64().unwrap();
    loop {
        let (_, job) = call("GET", &w.api(&format!("/task/{held}")), t, None);
        if job["status"]["primary"] == "running" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{job}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (status, body) = call("GET", &w.api(&format!("/task/{held}/archive")), t, None);
    assert_eq!(status, 400);
    assert!(
        msg(&body).contains("only an ended job is archived"),
        "{body}"
    );
    let (status, body) = call("DELETE", &w.api(&format!("/task/{done}/archive")), t, None);
    assert_eq!(status, 400);
    assert!(msg(&body).contains("--purge is not offered"), "{body}");
    let (status, body) = call("GET", &w.api(&format!("/task/{done}/archive")), t, None);
    assert_eq!(status, 200, "{body}");
    let (_, job) = call("GET", &w.api(&format!("/task/{done}")), t, None);
    assert_eq!(job["status"]["secondary"], "archived", "{job}");
    assert!(job["status"]["date_archived"].as_f64().is_some(), "{job}");
    let (status, body) = call(
        "GET",
        &w.api(&format!("/task/{done}/files/god.log")),
        t,
        None,
    );
    assert_eq!(status, 400);
    assert!(msg(&body).contains("was archived"), "{body}");
    let (status, body) = call("GET", &w.api("/archive/soon"), t, None);
    assert_eq!(status, 400);
    assert!(msg(&body).contains("not a number of days"), "{body}");
    let (status, body) = call("GET", &w.api("/archive/0"), t, None);
    assert_eq!(status, 200, "{body}");

    // Delete: refused while a job has not ended, and to a non-owner.
    let (status, body) = call("DELETE", &w.api("/project/video"), t, None);
    assert_eq!(status, 400);
    assert!(
        msg(&body).contains("still has 1 jobs that have not ended"),
        "{body}"
    );
    let (status, body) = call("DELETE", &w.api("/project/other"), t, None);
    assert_eq!(status, 400);
    assert!(
        msg(&body).contains("only an owner of project other"),
        "{body}"
    );
    let (status, _) = call("POST", &w.api("/project"), t, Some(json!({"id": "spare"})));
    assert_eq!(status, 200);
    let (status, body) = call("DELETE", &w.api("/project/spare"), t, None);
    assert_eq!(status, 200, "{body}");
    let (status, _) = call("GET", &w.api("/project/spare"), t, None);
    assert_eq!(status, 403, "its owner is no longer a member");
    let (_, mine) = call("GET", &w.api("/user/ana/project"), t, None);
    assert!(!mine.to_string().contains("spare"), "{mine}");

    // The owner (no admin) updates the project as the client sends it back:
    // the quota shown rounded (4 GB) keeps its exact limit.
    let (_, mut video) = call("GET", &w.api("/project/video"), t, None);
    assert_eq!(video["quota_ram"], 4, "{video}");
    video["description"] = json!("videos");
    let (status, body) = call("POST", &w.api("/project/video"), t, Some(video));
    assert_eq!(status, 200, "{body}");
    let (_, video) = call("GET", &w.api("/project/video"), t, None);
    assert_eq!(video["description"], "videos", "{video}");
    assert_eq!(video["quota_ram"], 4, "{video}");
    let mut more = video.clone();
    more["quota_ram"] = json!(8);
    let (status, body) = call("POST", &w.api("/project/video"), t, Some(more));
    assert_eq!(status, 400, "{body}");
    assert!(msg(&body).contains("only an admin sets quotas"), "{body}");

    // Admins only: quota reset, user update and removal.
    let (status, body) = call("DELETE", &w.api("/project/video/quota"), t, None);
    assert_eq!(status, 400);
    assert!(msg(&body).contains("only an admin"), "{body}");
    let (status, body) = call("PUT", &w.api("/user/bob"), t, Some(json!({"usage": {}})));
    assert_eq!(status, 400);
    assert!(msg(&body).contains("only an admin"), "{body}");
    let (status, body) = call("DELETE", &w.api("/user/bob"), t, None);
    assert_eq!(status, 400);
    assert!(msg(&body).contains("only an admin"), "{body}");
    // Without workers, no label is offered.
    let (_, config) = call("GET", &w.api("/config"), None, None);
    assert_eq!(config["constraints"], json!([]), "{config}");
}
