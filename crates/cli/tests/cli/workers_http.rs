//! The no-shared-filesystem data plane (`tessera worker --data http`).
//!
//! - The file routes at the API level, with a real server process and a
//!   worker played by hand over raw HTTP: resumed uploads and downloads,
//!   a checksum mismatch (422, nothing at the target), a fenced attempt's
//!   upload (409, nothing at the target), paths outside the plan (403) and
//!   hostile ones (400).
//! - A real encode on this machine's Docker engine: the server in a
//!   container with the data directory, two `--data http` workers in
//!   containers with nothing mounted (each has only its own filesystem).
//!   The output is frame-exact, every chunk attempt moved bytes, and the
//!   server's chunk files came from the workers.

use crate::server::Server;
use crate::support::{
    argv, bootstrap, docker, docker_engine_present, docker_logs, docker_remove, docker_user,
    local_image, long_clip, published_url, run, tessera, tessera_run,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A server with `--slots 0` and a worker token, on loopback.
pub(crate) struct Api {
    _dir: tempfile::TempDir,
    pub(crate) data: PathBuf,
    pub(crate) server: Server,
    pub(crate) key: String,
    pub(crate) token: String,
}

impl Api {
    pub(crate) fn start(lease_ms: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Task users (as root) pass through the test's folder.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let key = bootstrap(&data);
        let mut cmd = tessera();
        cmd.args(["admin", "create-worker-token", "rack", "--data-dir"])
            .arg(&data);
        let token = run(&mut cmd).expect_code(0).stdout.trim().to_string();
        let lease = lease_ms.to_string();
        let server = Server::start_with(&data, &["--slots", "0", "--lease-ms", &lease]);
        Self {
            _dir: dir,
            data,
            server,
            key,
            token,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server.url)
    }

    pub(crate) fn worker_post(&self, path: &str, body: Value) -> Value {
        ureq::post(&self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token))
            .timeout(Duration::from_secs(20))
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
            .into_json()
            .unwrap()
    }

    pub(crate) fn submit(&self, yaml: &str) -> i64 {
        let v: Value = ureq::post(&self.url("/projects/video/jobs"))
            .set("Authorization", &format!("Bearer {}", self.key))
            .set("Content-Type", "application/yaml")
            .send_string(yaml)
            .unwrap()
            .into_json()
            .unwrap();
        v["id"].as_i64().unwrap()
    }

    /// Leases (bounded) until one attempt comes.
    pub(crate) fn lease_one(&self, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let got = self.worker_post(
                &format!("/workers/{id}/lease"),
                json!({"wait_ms": 2000, "holds": []}),
            );
            if let Some(a) = got["attempts"].as_array().and_then(|a| a.first()) {
                return a.clone();
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no attempt came");
        }
    }
}

/// One attempt's file routes, spoken by hand.
pub(crate) struct Files<'a> {
    api: &'a Api,
    base: String,
}

impl<'a> Files<'a> {
    pub(crate) fn of(api: &'a Api, id: &str, a: &Value) -> Self {
        let base = format!(
            "/workers/{id}/attempts/{}/{}/{}/files",
            a["job"], a["index"], a["attempt"]
        );
        Self { api, base }
    }

    pub(crate) fn req(&self, method: &str, tail: &str, path: &str) -> ureq::Request {
        ureq::request(method, &self.api.url(&format!("{}{tail}", self.base)))
            .set("Authorization", &format!("Bearer {}", self.api.token))
            .query("path", path)
            .timeout(Duration::from_secs(20))
    }

    /// PUT of `piece` at `offset` of a file of `whole`: (status, body).
    pub(crate) fn put(
        &self,
        path: &str,
        offset: usize,
        piece: &[u8],
        whole: &[u8],
    ) -> (u16, Value) {
        let r = self
            .req("PUT", "", path)
            .query("offset", &offset.to_string())
            .set("X-Tessera-Sha256", &sha(whole))
            .set("X-Tessera-Size", &whole.len().to_string())
            .send_bytes(piece);
        status_of(r)
    }

    fn received(&self, path: &str) -> u64 {
        let (status, v) = status_of(self.req("GET", "/status", path).call());
        assert_eq!(status, 200, "{v}");
        v["received"].as_u64().unwrap()
    }
}

pub(crate) fn status_of(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(s, r)) => (s, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn file_routes_resume_check_sums_fence_and_keep_to_the_plan() {
    let api = Api::start(20_000);
    let reg = api.worker_post(
        "/workers",
        json!({"name": "board", "slots": 1, "data": "http"}),
    );
    let id = reg["id"].as_str().unwrap().to_string();
    assert_eq!(reg["data_dir"], json!(api.data), "{reg}");
    let job = api.submit(
        "name: files\ntasks:\n  - name: make\n    action: { kind: command, argv: [\"true\"] }\n  - name: use\n    action: { kind: command, argv: [\"true\"] }\n    deps: [{ selector: make }]\n",
    );
    let job_dir = api.data.join("jobs").join(job.to_string());
    let first = api.lease_one(&id);
    let plan = &first["files"];
    assert!(
        plan["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["kind"] == "children" && o["path"] == json!(job_dir)),
        "{plan}"
    );

    // An upload in two pieces, the second resumed from the server's count.
    let f = Files::of(&api, &id, &first);
    let target = job_dir.join("made.bin");
    let t = target.to_str().unwrap();
    let whole: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (status, v) = f.put(t, 0, &whole[..100_000], &whole);
    assert_eq!((status, &v["complete"]), (200, &json!(false)), "{v}");
    assert!(!target.exists(), "a half upload is not at the target");
    assert_eq!(f.received(t), 100_000);
    // A small piece: the server answers before reading a body it refuses,
    // and a big one could still be on its way (a broken pipe, not a 400).
    let (status, v) = f.put(t, 50, &whole[50..150], &whole);
    assert_eq!(status, 400, "an offset that does not follow: {v}");
    let (status, v) = f.put(t, 100_000, &whole[100_000..], &whole);
    assert_eq!((status, &v["complete"]), (200, &json!(true)), "{v}");
    assert_eq!(std::fs::read(&target).unwrap(), whole);

    // A checksum mismatch: 422, and nothing lands.
    let bad = job_dir.join("bad.bin");
    let r = f
        .req("PUT", "", bad.to_str().unwrap())
        .set("X-Tessera-Sha256", &sha(b"something else"))
        .set("X-Tessera-Size", "5")
        .send_bytes(b"hello");
    let (status, v) = status_of(r);
    assert_eq!(status, 422, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("checksum mismatch"));
    assert!(!bad.exists());
    assert_eq!(
        f.received(bad.to_str().unwrap()),
        0,
        "the partial was deleted"
    );

    // Paths outside the plan, relative or with `..`.
    let outside = api.data.join("state.db");
    let (status, _) = f.put(outside.to_str().unwrap(), 0, b"x", b"x");
    assert_eq!(status, 403);
    let (status, _) = status_of(f.req("GET", "", "/etc/passwd").call());
    assert_eq!(status, 403);
    let (status, _) = f.put("jobs/1/x", 0, b"x", b"x");
    assert_eq!(status, 400);
    let sneaky = format!("{}/../../escape", job_dir.display());
    let (status, _) = f.put(&sneaky, 0, b"x", b"x");
    assert_eq!(status, 400);

    let done = format!("/workers/{id}/attempts/{job}/0/{}/events", first["attempt"]);
    api.worker_post(&done, json!({"events": [{"kind": "exited"}]}));
    // The attempt ended: its routes are fenced, and nothing lands.
    let late = job_dir.join("late.bin");
    let (status, v) = f.put(late.to_str().unwrap(), 0, b"late", b"late");
    assert_eq!(status, 409, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("fenced"));
    assert!(!late.exists());

    // The next task reads what the first made: a download with its sum,
    // resumed with Range.
    let second = api.lease_one(&id);
    let input = second["files"]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"] == json!(target))
        .unwrap_or_else(|| panic!("{second}"))
        .clone();
    assert_eq!(input["sha256"], sha(&whole));
    assert_eq!(input["size"], whole.len());
    let g = Files::of(&api, &id, &second);
    let r = g
        .req("GET", "", t)
        .set("Range", "bytes=120000-")
        .call()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.header("x-tessera-sha256").unwrap(), sha(&whole));
    let mut rest = Vec::new();
    r.into_reader().read_to_end(&mut rest).unwrap();
    assert_eq!(rest, whole[120_000..]);

    // An upload half done when the attempt is given up never lands.
    let out2 = job_dir.join("second.bin");
    let o2 = out2.to_str().unwrap();
    let (status, _) = g.put(o2, 0, &whole[..10], &whole[..20]);
    assert_eq!(status, 200);
    let lost = format!(
        "/workers/{id}/attempts/{job}/1/{}/events",
        second["attempt"]
    );
    api.worker_post(
        &lost,
        json!({"events": [{"kind": "lost", "reason": "worker board could not fetch: test"}]}),
    );
    let (status, _) = g.put(o2, 10, &whole[10..20], &whole[..20]);
    assert_eq!(status, 409);
    assert!(!out2.exists());
    // The lost attempt is retried without using up a retry.
    let third = api.lease_one(&id);
    assert_eq!(third["index"], 1);
    assert_eq!(
        third["attempt"].as_u64().unwrap(),
        second["attempt"].as_u64().unwrap() + 1
    );
    let attempts: Value = ureq::get(&api.url(&format!("/jobs/{job}/attempts")))
        .set("Authorization", &format!("Bearer {}", api.key))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let lost = attempts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["outcome"] == "lost")
        .unwrap_or_else(|| panic!("{attempts}"));
    assert!(
        lost["message"].as_str().unwrap().contains("worker board"),
        "{lost}"
    );
}

/// Containers and a network, removed on drop.
struct Boxes {
    prefix: String,
    names: Vec<String>,
}

impl Boxes {
    fn logs(&self) -> String {
        docker_logs(self.names.iter().map(String::as_str), "30")
    }
}

impl Drop for Boxes {
    fn drop(&mut self) {
        let net = format!("{}-net", self.prefix);
        docker_remove(self.names.iter().map(String::as_str), &net);
    }
}

#[test]
fn http_workers_in_containers_without_the_data_directory_encode_frame_exact() {
    if !docker_engine_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let clip = long_clip(dir.path(), 4);
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    let mut make = tessera();
    make.args(["admin", "create-worker-token", "boards", "--data-dir"])
        .arg(&data);
    let token = run(&mut make).expect_code(0).stdout.trim().to_string();
    let prefix = format!("tessera-http-{}", std::process::id());
    let net = format!("{prefix}-net");
    let image = local_image();
    docker(&["network", "create", &net]);
    let mut boxes = Boxes {
        prefix: prefix.clone(),
        names: Vec::new(),
    };
    let user = docker_user();
    let d = data.to_str().unwrap();
    let mount = format!("{d}:{d}");
    let server = format!("{prefix}-server");
    boxes.names.push(server.clone());
    docker(&[
        "run",
        "-d",
        "--name",
        &server,
        "--network",
        &net,
        "--user",
        &user,
        "-v",
        &mount,
        "-p",
        "127.0.0.1::6543",
        image,
        "tessera",
        "server",
        "--listen",
        "0.0.0.0:6543",
        "--data-dir",
        d,
        "--slots",
        "0",
        "--lease-ms",
        "3000",
    ]);
    let url = published_url(&server).unwrap_or_else(|| panic!("{server}: no port on loopback"));
    let inside = format!("http://{server}:6543");
    for n in ["b1", "b2"] {
        let name = format!("{prefix}-{n}");
        boxes.names.push(name.clone());
        // Nothing mounted: the worker has only its container's filesystem.
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &net,
            image,
            "tessera",
            "worker",
            "--server",
            &inside,
            "--token",
            &token,
            "--name",
            n,
            "--slots",
            "1",
            "--grace",
            "0",
            "--data",
            "http",
            "--min-free-mb",
            "1",
        ]);
    }
    let get = |path: &str| -> Value {
        ureq::get(&format!("{url}/api/v1{path}"))
            .set("Authorization", &format!("Bearer {key}"))
            .timeout(Duration::from_secs(10))
            .call()
            .map(|r| r.into_json().unwrap_or(Value::Null))
            .unwrap_or(Value::Null)
    };
    let start = Instant::now();
    loop {
        let nodes = get("/nodes");
        let ready = nodes["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["state"] == "ready" && n["data"] == "http")
            .count();
        if ready == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "workers not ready: {nodes}\n{}",
            boxes.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let up: Value = ureq::post(&format!("{url}/api/v1/projects/video/uploads"))
        .set("Authorization", &format!("Bearer {key}"))
        .query("name", "clip.mp4")
        .send_bytes(&std::fs::read(&clip).unwrap())
        .unwrap()
        .into_json()
        .unwrap();
    let body =
        json!({"upload": up["upload"], "codec": "ffv1", "container": "mkv", "chunk_seconds": 1.0});
    let job: Value = ureq::post(&format!("{url}/api/v1/projects/video/encodes"))
        .set("Authorization", &format!("Bearer {key}"))
        .send_json(body)
        .unwrap()
        .into_json()
        .unwrap();
    let job = job["id"].as_i64().unwrap();
    let start = Instant::now();
    loop {
        let v = get(&format!("/jobs/{job}"));
        match v["state"].as_str().unwrap_or("") {
            "succeeded" => break,
            "failed" | "cancelled" => panic!(
                "the encode ended badly: {v}\n{}\n{}",
                get(&format!("/jobs/{job}/attempts")),
                boxes.logs()
            ),
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "job {job} did not succeed: {v}\n{}",
            boxes.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Frame-exact against the source.
    let mut whole = Vec::new();
    ureq::get(&format!("{url}/api/v1/jobs/{job}/output"))
        .set("Authorization", &format!("Bearer {key}"))
        .call()
        .unwrap_or_else(|e| {
            let files = Command::new("find").arg(&data).output().unwrap();
            panic!(
                "download: {e}\n{}\n{}\n{}",
                String::from_utf8_lossy(&files.stdout),
                get(&format!("/jobs/{job}/attempts")),
                boxes.logs()
            )
        })
        .into_reader()
        .read_to_end(&mut whole)
        .unwrap();
    let out = dir.path().join("out.mkv");
    std::fs::write(&out, &whole).unwrap();
    tessera_run(argv!["verify", &clip, &out]).expect_code(0);

    let tasks = get(&format!("/jobs/{job}/tasks"));
    let chunks: Vec<u64> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["name"]
                .as_str()
                .unwrap_or("")
                .starts_with("encode-chunk-")
        })
        .map(|t| t["index"].as_u64().unwrap())
        .collect();
    assert!(chunks.len() >= 3, "{tasks}");
    // Every attempt's row says which worker ran it and what moving its
    // files cost, beside its run time.
    let attempts = get(&format!("/jobs/{job}/attempts"));
    let mut moved: BTreeMap<u64, (String, u64, u64, u64)> = BTreeMap::new();
    for a in attempts.as_array().unwrap() {
        if a["outcome"] != "succeeded" {
            continue;
        }
        let u = &a["usage"];
        let num = |k: &str| u[k].as_u64().unwrap_or(0);
        moved.insert(
            a["task"].as_u64().unwrap(),
            (
                a["node"].as_str().unwrap_or("").to_string(),
                num("wall_ms"),
                num("transfer_ms"),
                num("transfer_bytes"),
            ),
        );
    }
    eprintln!("chunk  node  encode_wall_ms  transfer_ms  transfer_bytes");
    for index in &chunks {
        let (node, wall, ms, bytes) = moved
            .get(index)
            .unwrap_or_else(|| panic!("no succeeded attempt of task {index}: {attempts}"));
        assert!(*bytes > 0, "chunk {index} moved nothing");
        eprintln!("{index:>5}  {node:>4}  {wall:>14}  {ms:>11}  {bytes:>14}");
    }
    let nodes: std::collections::BTreeSet<_> = chunks.iter().map(|i| moved[i].0.clone()).collect();
    assert_eq!(nodes.len(), 2, "both workers encoded chunks: {moved:?}");
    // The server's chunk files came from the workers: the server ran nothing.
    let encodes = data.join("encodes");
    let mut chunk_files = Vec::new();
    for e in std::fs::read_dir(&encodes).unwrap().flatten() {
        if let Ok(c) = std::fs::read_dir(e.path().join("chunks")) {
            chunk_files.extend(c.flatten().map(|f| f.file_name()));
        }
    }
    assert_eq!(chunk_files.len(), chunks.len(), "{chunk_files:?}");
    assert!(
        chunk_files
            .iter()
            .all(|n| !n.to_string_lossy().starts_with('.')),
        "no partial upload left: {chunk_files:?}"
    );
}

#[test]
fn an_http_worker_refuses_a_path_map() {
    let out = tessera_run(argv![
        "worker",
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "twk_x",
        "--data",
        "http",
        "--map",
        "/srv/a=/mnt/a"
    ]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("--map"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}
