//! `tessera worker` processes on loopback against a `tessera server
//! --slots 0` (every task runs on workers; the data directory is shared):
//! a DAG spread over two workers, a SIGKILLed worker whose lease lapses
//! (its attempt lost, not failed, and retried on the other), a SIGSTOPped
//! worker fenced off its attempt when it wakes, and a SIGTERMed worker
//! handing its lease back at once.

use crate::server::Server;
use crate::support::{bootstrap, client_of, run, tessera, Running};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) struct Cluster {
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    /// Where tasks write what the test checks.
    pub out: PathBuf,
    pub server: Server,
    pub key: String,
    pub token: String,
}

impl Cluster {
    pub(crate) fn start(lease_ms: u32) -> Self {
        Self::start_with(lease_ms, &["--slots", "0"])
    }

    /// A server with `extra` flags (its slots among them) and a worker token.
    pub(crate) fn start_with(lease_ms: u32, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        // Tasks run as their project's own user when the test runs as
        // root: they pass through the test's folder and write in `out`.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let key = bootstrap(&data);
        let mut cmd = tessera();
        cmd.args(["admin", "create-worker-token", "rack1", "--data-dir"])
            .arg(&data);
        let made = run(&mut cmd);
        made.expect_code(0);
        let token = made.stdout.trim().to_string();
        assert!(token.starts_with("twk_"), "{token}");
        let lease = lease_ms.to_string();
        let mut args = vec!["--lease-ms", lease.as_str()];
        args.extend_from_slice(extra);
        let server = Server::start_with(&data, &args);
        Self {
            _dir: dir,
            data,
            out,
            server,
            key,
            token,
        }
    }

    pub(crate) fn worker(&self, name: &str, slots: u32) -> Running {
        self.worker_with(name, slots, &["--grace", "0"])
    }

    pub(crate) fn worker_with(&self, name: &str, slots: u32, extra: &[&str]) -> Running {
        let mut cmd: Command = tessera();
        cmd.args(["worker", "--server", &self.server.url])
            .args(["--token", &self.token, "--name", name])
            .args(["--slots", &slots.to_string()])
            .args(extra)
            .arg("--data-dir")
            .arg(&self.data);
        let mut w = Running::spawn(cmd);
        w.wait_for_line("tessera worker: ", Duration::from_secs(20));
        w
    }

    pub(crate) fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let req = ureq::request(method, &format!("{}/api/v1{path}", self.server.url))
            .set("Authorization", &format!("Bearer {}", self.key));
        let r = match body {
            Some(b) => req.set("Content-Type", "application/yaml").send_string(b),
            None => req.call(),
        };
        match r {
            Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(s, r)) => (s, r.into_json().unwrap_or(Value::Null)),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    pub(crate) fn submit(&self, yaml: &str) -> i64 {
        let (status, v) = self.api("POST", "/projects/video/jobs", Some(yaml));
        assert_eq!(status, 201, "{v}");
        v["id"].as_i64().unwrap_or_else(|| panic!("{v}"))
    }

    /// Waits (bounded) for the job to end; its state.
    pub(crate) fn wait_job(&self, job: i64, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let (_, v) = self.api("GET", &format!("/jobs/{job}"), None);
            let state = v["state"].as_str().unwrap_or("").to_string();
            if ["succeeded", "failed", "cancelled"].contains(&state.as_str()) {
                return state;
            }
            assert!(
                start.elapsed() < limit,
                "job {job} still {state} after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn attempts(&self, job: i64) -> Vec<Value> {
        let (_, v) = self.api("GET", &format!("/jobs/{job}/attempts"), None);
        v.as_array().cloned().unwrap_or_default()
    }

    /// Waits (30 s at most) until `GET /nodes` lists an unplaceable
    /// attempt: the first such entry, and the whole answer.
    pub(crate) fn wait_unplaceable(&self) -> (Value, Value) {
        let start = Instant::now();
        loop {
            let (status, v) = self.api("GET", "/nodes", None);
            assert_eq!(status, 200, "{v}");
            if let Some(u) = v["unplaceable"].as_array().and_then(|a| a.first()) {
                return (u.clone(), v);
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "not reported: {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits (bounded) until `path` exists; its contents.
pub(crate) fn wait_file(path: &Path, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(start.elapsed() < limit, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

pub(crate) fn alive(pid: i32) -> bool {
    // A reaped process has no /proc entry; a zombie does but is dead.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.split(") ").nth(1).unwrap_or("").starts_with('Z'))
}

/// Waits (30 s at most) until process `pid` is gone; else fails saying `what`.
pub(crate) fn wait_gone(pid: i32, what: &str) {
    let start = Instant::now();
    while alive(pid) {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One task that records which worker ran it and its shell's pid, then
/// runs an hour on worker `a` (until killed) and ends at once anywhere else.
fn sticky_job(out: &Path) -> String {
    let o = out.display();
    format!(
        r#"
name: sticky
tasks:
  - name: long
    action: {{ kind: command, argv: ["sh", "-c", "echo $$ > {o}/pid.$TESSERA_NODE; echo $TESSERA_NODE >> {o}/ran; if [ $TESSERA_NODE = a ]; then sleep 3600; fi"] }}
"#
    )
}

#[test]
fn two_workers_share_a_ten_task_dag_and_show_as_nodes() {
    let c = Cluster::start(2000);
    let _a = c.worker("a", 2);
    let _b = c.worker("b", 2);
    let o = c.out.display();
    let mut yaml = String::from("name: spread\ntasks:\n");
    for i in 0..9 {
        yaml += &format!(
            "  - name: t{i}\n    action: {{ kind: command, argv: [\"sh\", \"-c\", \"echo $TESSERA_NODE > {o}/t{i}; echo hello from t{i}; sleep 0.4\"] }}\n"
        );
    }
    yaml += &format!(
        "  - name: join\n    action: {{ kind: command, argv: [\"sh\", \"-c\", \"cat {o}/t* > {o}/all\"] }}\n    deps: [{{ selector: \"re:^t\" }}]\n"
    );
    let job = c.submit(&yaml);
    assert_eq!(c.wait_job(job, Duration::from_secs(60)), "succeeded");
    let all = std::fs::read_to_string(c.out.join("all")).unwrap();
    let ran_on = |n: &str| all.lines().filter(|l| *l == n).count();
    assert_eq!(ran_on("a") + ran_on("b"), 9, "{all}");
    assert!(
        ran_on("a") > 0 && ran_on("b") > 0,
        "both workers ran tasks: {all}"
    );
    let attempts = c.attempts(job);
    assert_eq!(attempts.len(), 10);
    assert!(attempts.iter().all(|a| a["outcome"] == "succeeded"));
    // Each attempt row names the worker that ran it (the one its task saw
    // as TESSERA_NODE).
    for (i, a) in attempts.iter().enumerate().take(9) {
        let ran = std::fs::read_to_string(c.out.join(format!("t{i}"))).unwrap();
        assert_eq!(a["node"].as_str(), Some(ran.trim()), "t{i}: {a}");
    }
    assert!(
        matches!(attempts[9]["node"].as_str(), Some("a" | "b")),
        "{}",
        attempts[9]
    );
    // Resource use comes back from the workers (the sleep alone is 400 ms).
    assert!(
        attempts[0]["usage"]["wall_ms"].as_u64().unwrap() >= 400,
        "{attempts:?}"
    );
    // Logs were written where the server reads them (the shared data directory).
    let log = ureq::get(&format!("{}/api/v1/jobs/{job}/tasks/3/logs", c.server.url))
        .set("Authorization", &format!("Bearer {}", c.key))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(log.contains("hello from t3"), "{log}");

    let (status, nodes) = c.api("GET", "/nodes", None);
    assert_eq!(status, 200);
    let nodes = &nodes["nodes"];
    let mut seen: Vec<(String, String, u64)> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap_or("").to_string();
            (s("name"), s("state"), n["slots"].as_u64().unwrap())
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("a".into(), "ready".into(), 2),
            ("b".into(), "ready".into(), 2)
        ]
    );
    // Each says what its machine has (GPUs: as many as /dev/nvidiaN here).
    let gpus = std::fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name().to_str().is_some_and(|n| {
                        n.strip_prefix("nvidia")
                            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                    })
                })
                .count() as u64
        })
        .unwrap_or(0);
    for n in nodes.as_array().unwrap() {
        assert_eq!(n["gpus"].as_u64(), Some(gpus), "{n}");
        assert!(
            n["cpus"].as_u64().unwrap() >= 1 && n["memory_mb"].as_u64().unwrap() > 0,
            "{n}"
        );
    }
    // What each ended lately: the ten attempts between them.
    let recent: u64 = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["recent"]["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(recent, 10, "{nodes}");
    // `tessera nodes` prints the same: a line per worker.
    let out = run(&mut client_of(&c.server.url, &c.key, &["nodes"]))
        .expect_code(0)
        .stdout
        .clone();
    let line = |n: &str| out.lines().find(|l| l.starts_with(&format!("{n} ")));
    for n in ["a", "b"] {
        let l = line(n).unwrap_or_else(|| panic!("no line for {n}: {out}"));
        assert!(l.contains("ready") && l.contains("shared"), "{out}");
    }
    // A user's key is no worker token: bad credentials for this route.
    let r = ureq::post(&format!("{}/api/v1/workers", c.server.url))
        .set("Authorization", &format!("Bearer {}", c.key))
        .send_string("{}");
    assert!(matches!(r, Err(ureq::Error::Status(401, _))), "{r:?}");
    // Another worker token cannot speak for a's registration.
    let mut make = tessera();
    make.args(["admin", "create-worker-token", "rack2", "--data-dir"])
        .arg(&c.data);
    let other = run(&mut make).stdout.trim().to_string();
    let a_id = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "a")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = ureq::post(&format!("{}/api/v1/workers/{a_id}/heartbeat", c.server.url))
        .set("Authorization", &format!("Bearer {other}"))
        .send_json(serde_json::json!({}));
    assert!(matches!(r, Err(ureq::Error::Status(403, _))), "{r:?}");
    // A revoked token is refused at once.
    let mut revoke = tessera();
    revoke
        .args(["admin", "revoke-worker-token", "rack1", "--data-dir"])
        .arg(&c.data);
    run(&mut revoke).expect_code(0);
    let r = ureq::post(&format!("{}/api/v1/workers", c.server.url))
        .set("Authorization", &format!("Bearer {}", c.token))
        .send_string("{}");
    assert!(matches!(r, Err(ureq::Error::Status(401, _))), "{r:?}");
}

#[test]
fn cancelling_a_job_kills_its_attempt_on_the_worker() {
    let c = Cluster::start(2000);
    let _a = c.worker("a", 1);
    let job = c.submit(&sticky_job(&c.out));
    let pid: i32 = wait_file(&c.out.join("pid.a"), Duration::from_secs(20))
        .trim()
        .parse()
        .unwrap();
    let (status, v) = c.api("POST", &format!("/jobs/{job}/cancel"), None);
    assert!(status < 300, "{status} {v}");
    assert_eq!(c.wait_job(job, Duration::from_secs(30)), "cancelled");
    wait_gone(pid, "the worker did not kill it");
}

#[test]
fn a_killed_workers_attempt_is_lost_and_retried_elsewhere_without_using_a_retry() {
    let c = Cluster::start(1500);
    let mut a = c.worker("a", 1);
    let job = c.submit(&sticky_job(&c.out));
    wait_file(&c.out.join("pid.a"), Duration::from_secs(20));
    let _b = c.worker("b", 1);
    a.child.kill().unwrap(); // SIGKILL: no goodbye
    a.child.wait().unwrap();
    // The task has retries: 0, so only a lost attempt may be run again.
    assert_eq!(c.wait_job(job, Duration::from_secs(30)), "succeeded");
    let attempts = c.attempts(job);
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["outcome"], "lost");
    // (The lost one names `a` only if its start report arrived before the kill.)
    assert_eq!(attempts[1]["node"], "b", "{attempts:?}");
    let why = attempts[0]["message"].as_str().unwrap();
    assert!(why.contains("worker a stopped renewing its lease"), "{why}");
    assert_eq!(attempts[1]["outcome"], "succeeded");
    assert_eq!(
        std::fs::read_to_string(c.out.join("ran")).unwrap(),
        "a\nb\n"
    );
}

#[test]
fn a_worker_that_wakes_after_its_lease_lapsed_is_fenced_and_kills_its_copy() {
    let c = Cluster::start(1500);
    let mut a = c.worker("a", 1);
    let job = c.submit(&sticky_job(&c.out));
    let pid: i32 = wait_file(&c.out.join("pid.a"), Duration::from_secs(20))
        .trim()
        .parse()
        .unwrap();
    let _b = c.worker("b", 1);
    signal(&a.child, libc::SIGSTOP);
    // Its lease lapses (1.5 s; an open long-poll of a stopped worker must
    // not keep it alive); b runs the task to success meanwhile.
    assert_eq!(c.wait_job(job, Duration::from_secs(30)), "succeeded");
    assert!(alive(pid), "a's copy still runs while a is stopped");
    signal(&a.child, libc::SIGCONT);
    let line = a.wait_for_line("tessera worker: ", Duration::from_secs(30));
    assert!(line.contains("fenced"), "{line}");
    wait_gone(pid, "a did not kill its copy");
    // Its late word changed nothing.
    assert_eq!(c.wait_job(job, Duration::from_secs(1)), "succeeded");
    let outcomes: Vec<Value> = c
        .attempts(job)
        .iter()
        .map(|a| a["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["lost", "succeeded"]);
    // Its events for the given-up attempt are refused by number.
    let r = ureq::post(&format!(
        "{}/api/v1/workers/1-0/attempts/{job}/0/1/events",
        c.server.url
    ))
    .set("Authorization", &format!("Bearer {}", c.token))
    .send_json(serde_json::json!({"events": [{"kind": "exited"}]}));
    let r = match r {
        Err(ureq::Error::Status(409, r)) => r,
        other => panic!("{other:?}"),
    };
    let v: Value = r.into_json().unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("fenced: attempt 1 of task 0"),
        "{message}"
    );
}

#[test]
fn a_sigtermed_worker_hands_its_lease_back_at_once() {
    // Leases of 60 s: the retry comes from the hand-back (its message says
    // so), not from a lapsed lease.
    let c = Cluster::start(60_000);
    let a = c.worker("a", 1);
    let job = c.submit(&sticky_job(&c.out));
    let pid: i32 = wait_file(&c.out.join("pid.a"), Duration::from_secs(20))
        .trim()
        .parse()
        .unwrap();
    let _b = c.worker("b", 1);
    signal(&a.child, libc::SIGTERM);
    assert_eq!(c.wait_job(job, Duration::from_secs(30)), "succeeded");
    let attempts = c.attempts(job);
    assert_eq!(attempts[0]["outcome"], "lost");
    // (The lost one names `a` only if its start report arrived before the kill.)
    assert_eq!(attempts[1]["node"], "b", "{attempts:?}");
    let why = attempts[0]["message"].as_str().unwrap();
    assert!(why.contains("handed back by worker a"), "{why}");
    let done = a.finish(Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(!alive(pid), "a killed its copy before it left");
}

#[test]
fn a_draining_worker_finishes_what_it_holds_and_takes_nothing_new() {
    let c = Cluster::start(2000);
    let a = c.worker_with("a", 2, &["--grace", "30"]);
    let o = c.out.display();
    let job = c.submit(&format!(
        r#"
name: held
tasks:
  - name: finish-me
    action: {{ kind: command, argv: ["sh", "-c", "echo $TESSERA_NODE > {o}/held.started; while [ ! -e {o}/go ]; do sleep 0.05; done; echo $TESSERA_NODE > {o}/held.done"] }}
"#
    ));
    wait_file(&c.out.join("held.started"), Duration::from_secs(20));
    signal(&a.child, libc::SIGTERM);
    // It holds the task (until `go`) and says it drains.
    let start = Instant::now();
    loop {
        let (_, nodes) = c.api("GET", "/nodes", None);
        if nodes["nodes"][0]["state"] == "draining" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{nodes}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Work submitted now waits: a has a free slot but takes nothing new.
    let later = c.submit(&format!(
        r#"
name: later
tasks:
  - name: after
    action: {{ kind: command, argv: ["sh", "-c", "echo $TESSERA_NODE > {o}/later"] }}
"#
    ));
    // Let the held task end: a finishes it, and leaves (anything it had
    // taken since it drains would have run before it left).
    std::fs::write(c.out.join("go"), "").unwrap();
    let done = a.finish(Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(c.wait_job(job, Duration::from_secs(30)), "succeeded");
    let outcomes: Vec<Value> = c
        .attempts(job)
        .iter()
        .map(|a| a["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["succeeded"], "finished where it ran, not lost");
    assert_eq!(
        std::fs::read_to_string(c.out.join("held.done")).unwrap(),
        "a\n"
    );
    assert!(!c.out.join("later").exists());
    let _b = c.worker("b", 1);
    assert_eq!(c.wait_job(later, Duration::from_secs(20)), "succeeded");
    assert_eq!(std::fs::read_to_string(c.out.join("later")).unwrap(), "b\n");
}

#[test]
fn a_worker_that_sees_the_data_directory_elsewhere_maps_its_paths() {
    let c = Cluster::start(2000);
    let view = c.out.parent().unwrap().join("view");
    std::os::unix::fs::symlink(&c.data, &view).unwrap();
    let map = format!("{}={}", c.data.display(), view.display());
    let _a = c.worker_with("a", 1, &["--grace", "0", "--map", &map]);
    let o = c.out.display();
    let job = c.submit(&format!(
        r#"
name: mapped
tasks:
  - name: where
    action: {{ kind: command, argv: ["sh", "-c", "echo $TESSERA_JOB_DIR > {o}/jobdir; echo mapped log"] }}
"#
    ));
    assert_eq!(c.wait_job(job, Duration::from_secs(20)), "succeeded");
    let seen = std::fs::read_to_string(c.out.join("jobdir")).unwrap();
    assert!(seen.starts_with(&view.display().to_string()), "{seen}");
    let log = ureq::get(&format!("{}/api/v1/jobs/{job}/tasks/0/logs", c.server.url))
        .set("Authorization", &format!("Bearer {}", c.key))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(log.contains("mapped log"), "{log}");
}

#[test]
fn a_lease_the_worker_never_got_is_given_up_by_its_heartbeats() {
    let c = Cluster::start(1500);
    let post = |path: &str, body: Value| -> Value {
        ureq::post(&format!("{}/api/v1{path}", c.server.url))
            .set("Authorization", &format!("Bearer {}", c.token))
            .send_json(body)
            .unwrap()
            .into_json()
            .unwrap()
    };
    // A worker by hand whose lease answer "gets lost": it never runs the attempt.
    let ghost = post("/workers", serde_json::json!({"name": "ghost", "slots": 1}));
    let id = ghost["id"].as_str().unwrap().to_string();
    let job = c.submit(&sticky_job(&c.out));
    let got = post(
        &format!("/workers/{id}/lease"),
        serde_json::json!({"wait_ms": 10_000}),
    );
    assert_eq!(got["attempts"].as_array().unwrap().len(), 1, "{got}");
    let _b = c.worker("b", 1);
    // Its heartbeats keep it alive but say it runs nothing (and something
    // it holds no lease for, which it is told to kill).
    let start = Instant::now();
    let mut told_to_kill = false;
    while c.attempts(job).len() < 2 {
        let beat = post(
            &format!("/workers/{id}/heartbeat"),
            serde_json::json!({"running": [[999, 0, 1]]}),
        );
        told_to_kill |= beat["orders"][0]["order"] == "kill" && beat["orders"][0]["job"] == 999;
        assert!(start.elapsed() < Duration::from_secs(30), "never given up");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(told_to_kill);
    assert_eq!(c.wait_job(job, Duration::from_secs(20)), "succeeded");
    let attempts = c.attempts(job);
    assert_eq!(attempts[0]["outcome"], "lost");
    // (The lost one names `a` only if its start report arrived before the kill.)
    assert_eq!(attempts[1]["node"], "b", "{attempts:?}");
    let why = attempts[0]["message"].as_str().unwrap();
    assert!(why.contains("worker ghost does not run it"), "{why}");
    assert_eq!(std::fs::read_to_string(c.out.join("ran")).unwrap(), "b\n");
}

#[test]
fn an_admin_drains_a_worker_and_new_work_goes_elsewhere() {
    let c = Cluster::start(2000);
    let _a = c.worker("a", 2);
    let (status, v) = c.api("POST", "/nodes/nobody/drain", None);
    assert_eq!(status, 409, "{v}");
    let (status, v) = c.api("POST", "/nodes/a/drain", None);
    assert_eq!(status, 200, "{v}");
    let (_, nodes) = c.api("GET", "/nodes", None);
    assert_eq!(nodes["nodes"][0]["state"], "draining");
    let job = c.submit(&sticky_job(&c.out));
    // A window for what must not happen (a slow machine only shortens it;
    // it cannot fail the test wrongly).
    std::thread::sleep(Duration::from_millis(500));
    assert!(!c.out.join("ran").exists(), "a drained worker took work");
    let _b = c.worker("b", 1);
    assert_eq!(c.wait_job(job, Duration::from_secs(30)), "succeeded");
    assert_eq!(std::fs::read_to_string(c.out.join("ran")).unwrap(), "b\n");
}
