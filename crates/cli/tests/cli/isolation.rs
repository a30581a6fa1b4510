//! Issue 9's attacks, performed against a real `tessera server`:
//!
//! - an upload that is an HLS playlist or an ffmpeg concat list naming
//!   another project's upload is refused (422, saying what it is), and
//!   nothing of it stays; `tessera encode` of one exits 3;
//! - as root, each project's tasks run as that project's own uid, and a
//!   task of one project cannot read another's upload, logs or output, nor
//!   the server's database, its write-ahead log or the worker tokens;
//! - an op task whose request.json (written by a member's earlier task)
//!   names another project's upload is refused by the op on the server's
//!   own slot, and by the server's file plan for an http worker, which is
//!   then never served that file.

use crate::server::Server;
use crate::support::{argv, bootstrap, run, tessera, tessera_run};
use crate::workers_http::{status_of, Api, Files};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn call(method: &str, url: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let req = ureq::request(method, url)
        .set("Authorization", &format!("Bearer {key}"))
        .timeout(Duration::from_secs(60));
    status_of(match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    })
}

fn upload(url: &str, key: &str, project: &str, name: &str, body: &[u8]) -> (u16, Value) {
    status_of(
        ureq::post(&format!("{url}/api/v1/projects/{project}/uploads"))
            .set("Authorization", &format!("Bearer {key}"))
            .query("name", name)
            .send_bytes(body),
    )
}

fn submit(url: &str, key: &str, project: &str, yaml: &str) -> i64 {
    let (status, v) = status_of(
        ureq::post(&format!("{url}/api/v1/projects/{project}/jobs"))
            .set("Authorization", &format!("Bearer {key}"))
            .set("Content-Type", "application/yaml")
            .send_string(yaml),
    );
    assert_eq!(status, 201, "{v}");
    v["id"].as_i64().unwrap()
}

/// Waits (120 s at most) for job `id` to end; its tasks.
fn finish(url: &str, key: &str, id: i64) -> (String, Vec<Value>) {
    let start = Instant::now();
    loop {
        let (_, job) = call("GET", &format!("{url}/api/v1/jobs/{id}"), key, None);
        let state = job["state"].as_str().unwrap_or("").to_string();
        if ["succeeded", "failed", "cancelled"].contains(&state.as_str()) {
            let (_, tasks) = call("GET", &format!("{url}/api/v1/jobs/{id}/tasks"), key, None);
            return (state, tasks.as_array().cloned().unwrap_or_default());
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "job {id}: {job}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log(url: &str, key: &str, job: i64, task: u32) -> String {
    let r = ureq::get(&format!("{url}/api/v1/jobs/{job}/tasks/{task}/logs"))
        .set("Authorization", &format!("Bearer {key}"))
        .call()
        .unwrap();
    r.into_string().unwrap()
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A data directory with `ana` (admin, owner of `video`), a server on it,
/// and one of ana's clips uploaded: the file other projects want.
struct World {
    dir: tempfile::TempDir,
    data: PathBuf,
    server: Server,
    ana: String,
    /// ana's upload, on the server's disk.
    secret: PathBuf,
}

impl World {
    fn start(extra: &[&str]) -> World {
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let ana = bootstrap(&data);
        let server = Server::start_with(&data, extra);
        let clip = tessera_media::testclips::cfr_25(dir.path()).unwrap();
        let (status, up) = upload(
            &server.url,
            &ana,
            "video",
            "secret.mp4",
            &std::fs::read(&clip).unwrap(),
        );
        assert_eq!(status, 201, "{up}");
        let secret = files_under(&data.join("uploads"))
            .into_iter()
            .find(|p| p.file_name().is_some_and(|n| n == "secret.mp4"))
            .expect("the upload is on disk");
        World {
            dir,
            data,
            server,
            ana,
            secret,
        }
    }

    /// A user who owns project `name` (and nothing else); their key.
    fn other(&self, user: &str, project: &str) -> String {
        let (status, v) = call(
            "POST",
            &format!("{}/api/v1/users", self.server.url),
            &self.ana,
            Some(json!({"name": user, "admin": false})),
        );
        assert_eq!(status, 201, "{v}");
        let key = v["key"]["secret"].as_str().unwrap().to_string();
        let (status, v) = call(
            "POST",
            &format!("{}/api/v1/projects", self.server.url),
            &key,
            Some(json!({"name": project})),
        );
        assert_eq!(status, 201, "{v}");
        key
    }
}

#[test]
fn playlists_and_lists_posing_as_videos_are_refused_and_leave_nothing() {
    let w = World::start(&[]);
    let before = files_under(&w.data.join("uploads"));
    let bob = w.other("bob", "other");
    let s = w.secret.display();
    let attacks = [
        (
            "hls.mp4",
            format!("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:4,\nfile://{s}\n#EXT-X-ENDLIST\n"),
            "an HLS playlist",
        ),
        (
            "path.m3u8",
            format!("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:4,\n{s}\n#EXT-X-ENDLIST\n"),
            "an HLS playlist",
        ),
        (
            "list.mkv",
            format!("ffconcat version 1.0\nfile '{s}'\n"),
            "an ffmpeg concat list",
        ),
    ];
    for (name, body, what) in &attacks {
        let (status, v) = upload(&w.server.url, &bob, "other", name, body.as_bytes());
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(status, 422, "{name}: {v}");
        assert!(
            message.contains(&format!("it is {what}")) && message.contains("send the video itself"),
            "{name}: {message}"
        );
        assert!(
            !message.contains(&w.data.display().to_string()),
            "the server's paths stay its own: {message}"
        );
    }
    assert_eq!(
        files_under(&w.data.join("uploads")),
        before,
        "nothing of a refused upload stays"
    );

    // The same file given to `tessera encode` on the command line: exit 3.
    let playlist = w.dir.path().join("playlist.m3u8");
    std::fs::write(&playlist, &attacks[0].1).unwrap();
    let out = w.dir.path().join("out.mp4");
    let o = tessera_run(argv![
        "encode",
        &playlist,
        "-o",
        &out,
        "--state-dir",
        w.dir.path().join("state")
    ]);
    o.expect_code(3);
    assert!(
        o.stderr
            .contains("it is an HLS playlist (ffmpeg format hls)"),
        "{}",
        o.stderr
    );
    assert!(!out.exists());
}

#[test]
fn each_projects_tasks_run_as_its_own_user_and_cannot_read_another_projects_data() {
    if !is_root() {
        tessera_testkit::env::skip(
            "per-project task users need a server running as root",
            "run the tests as root (CI does)",
        );
        return;
    }
    let mut cmd = tessera();
    let w = World::start(&[]);
    cmd.args(["admin", "create-worker-token", "rack", "--data-dir"])
        .arg(&w.data);
    run(&mut cmd).expect_code(0);
    // ana's encode leaves logs, a workdir and an output behind.
    let upload_id = w
        .secret
        .parent()
        .and_then(|p| p.file_name())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let (status, enc) = call(
        "POST",
        &format!("{}/api/v1/projects/video/encodes", w.server.url),
        &w.ana,
        Some(
            json!({"upload": upload_id, "codec": "ffv1", "container": "mkv", "chunk_seconds": 2.0}),
        ),
    );
    assert_eq!(status, 201, "{enc}");
    let enc_id = enc["id"].as_i64().unwrap();
    let (state, tasks) = finish(&w.server.url, &w.ana, enc_id);
    assert_eq!(state, "succeeded", "{tasks:?}");
    let output = files_under(&w.data.join("outputs"));
    let logs = files_under(&w.data.join(format!("jobs/{enc_id}/logs")));
    let workdir = files_under(&w.data.join("encodes"));
    assert!(!output.is_empty() && !logs.is_empty() && !workdir.is_empty());

    let db = w.data.join("tessera.db");
    let mut targets = vec![
        w.secret.clone(),
        logs[0].clone(),
        output[0].clone(),
        workdir[0].clone(),
        db.clone(),
        PathBuf::from(format!("{}-wal", db.display())),
        w.data.join("worker-tokens"),
    ];
    targets.sort();
    for t in &targets {
        assert!(
            t.exists(),
            "{} should exist for the attack to mean anything",
            t.display()
        );
    }
    let probes: String = targets
        .iter()
        .map(|t| {
            format!(
                "if cat '{0}' > /dev/null 2>&1; then echo 'READ {0}'; else echo 'denied {0}'; fi; ",
                t.display()
            )
        })
        .collect();
    let listing = format!(
        "if ls '{0}' > /dev/null 2>&1; then echo 'LISTED {0}'; else echo 'denied {0}'; fi",
        w.data.join("uploads/1").display()
    );
    let script = format!("id -u; id -g; {probes}{listing}");
    let spec = format!(
        "name: snoop\ntasks:\n  - name: snoop\n    action: {{ kind: script, script: {} }}\n",
        serde_json::to_string(&script).unwrap()
    );

    let bob = w.other("bob", "other");
    let (_, other) = call(
        "GET",
        &format!("{}/api/v1/projects/other", w.server.url),
        &bob,
        None,
    );
    let other_id = other["id"].as_i64().unwrap();
    let job = submit(&w.server.url, &bob, "other", &spec);
    let (state, tasks) = finish(&w.server.url, &bob, job);
    assert_eq!(state, "succeeded", "{tasks:?}");
    let out = log(&w.server.url, &bob, job, 0);
    let mut lines = out.lines();
    let uid = (200_000 + other_id).to_string();
    assert_eq!(lines.next(), Some(uid.as_str()), "{out}");
    assert_eq!(lines.next(), Some(uid.as_str()), "{out}");
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), targets.len() + 1, "{out}");
    for line in rest {
        assert!(
            line.starts_with("denied "),
            "project other got through: {line}\n{out}"
        );
    }

    // ana's own tasks still read her project's upload (and run as her
    // project's user, not as bob's or the server's).
    let mine = format!(
        "name: mine\ntasks:\n  - name: read\n    action: {{ kind: script, script: {} }}\n",
        serde_json::to_string(&format!(
            "id -u; cat '{}' > /dev/null && echo read-own-upload",
            w.secret.display()
        ))
        .unwrap()
    );
    let job = submit(&w.server.url, &w.ana, "video", &mine);
    let (state, tasks) = finish(&w.server.url, &w.ana, job);
    assert_eq!(state, "succeeded", "{tasks:?}");
    assert_eq!(
        log(&w.server.url, &w.ana, job, 0),
        "200001\nread-own-upload\n"
    );
}

/// A member's flow: a first task writes an encode request naming `input`
/// into its own folder, then adds an op task that probes it.
fn sneaky_flow(input: &Path) -> String {
    let request = json!({
        "input": input,
        "output": "OUT",
        "settings": {"codec": "ffv1"},
        "chunk_seconds": 2.0,
        "slots": 1
    })
    .to_string();
    let script = format!(
        "printf '%s' {req} | sed \"s|OUT|$TESSERA_WORKDIR/out.mkv|\" > \"$TESSERA_WORKDIR/request.json\"; \
         printf '[{{\"name\":\"probe\",\"action\":{{\"kind\":\"op\",\"op\":\"probe\",\"args\":[\"--workdir\",\"%s\"]}}}}]' \
         \"$TESSERA_WORKDIR\" > \"$TESSERA_EXPAND\"",
        req = shell_quote(&request)
    );
    format!(
        "name: sneak\ntasks:\n  - name: write\n    expands: true\n    action: {{ kind: script, script: {} }}\n",
        serde_json::to_string(&script).unwrap()
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn an_op_told_to_read_another_projects_upload_is_refused_on_the_servers_own_slot() {
    let w = World::start(&[]);
    let bob = w.other("bob", "other");
    let job = submit(&w.server.url, &bob, "other", &sneaky_flow(&w.secret));
    let (state, tasks) = finish(&w.server.url, &bob, job);
    assert_eq!(state, "failed", "{tasks:?}");
    let probe = tasks
        .iter()
        .find(|t| t["name"] == "probe")
        .unwrap_or_else(|| panic!("{tasks:?}"));
    let reason = probe["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!(
            "{} is outside what this job may read",
            w.secret.display()
        )),
        "{reason}"
    );
    assert!(
        !w.data
            .join(format!("jobs/{job}/tasks/write/probe.json"))
            .exists(),
        "nothing was probed"
    );
}

#[test]
fn an_http_workers_plan_never_names_nor_serves_another_projects_upload() {
    let api = Api::start(30_000);
    let clip = tessera_media::testclips::cfr_25(&api.data).unwrap();
    let (status, up) = upload(
        &api.server.url,
        &api.key,
        "video",
        "secret.mp4",
        &std::fs::read(&clip).unwrap(),
    );
    assert_eq!(status, 201, "{up}");
    let secret = files_under(&api.data.join("uploads"))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "secret.mp4"))
        .unwrap();
    let (status, v) = call(
        "POST",
        &api.url("/projects"),
        &api.key,
        Some(json!({"name": "other"})),
    );
    assert_eq!(status, 201, "{v}");
    let reg = api.worker_post(
        "/workers",
        json!({"name": "board", "slots": 1, "data": "http"}),
    );
    let id = reg["id"].as_str().unwrap().to_string();
    let job = submit(&api.server.url, &api.key, "other", &sneaky_flow(&secret));

    // Play the first task by hand: its request.json and the follow-on op
    // land through the file routes, as a worker's would.
    let first = api.lease_one(&id);
    let workdir = PathBuf::from(first["workdir"].as_str().unwrap());
    let f = Files::of(&api, &id, &first);
    let request = json!({
        "input": secret,
        "output": workdir.join("out.mkv"),
        "settings": {"codec": "ffv1"},
        "chunk_seconds": 2.0,
        "slots": 1
    })
    .to_string();
    let req_path = workdir.join("request.json");
    let (status, v) = f.put(
        req_path.to_str().unwrap(),
        0,
        request.as_bytes(),
        request.as_bytes(),
    );
    assert_eq!(status, 200, "{v}");
    let expand = json!([{"name": "probe", "action": {"kind": "op", "op": "probe", "args": ["--workdir", workdir]}}]).to_string();
    let expand_path = first["env"]["TESSERA_EXPAND"].as_str().unwrap().to_string();
    let (status, v) = f.put(&expand_path, 0, expand.as_bytes(), expand.as_bytes());
    assert_eq!(status, 200, "{v}");
    api.worker_post(
        &format!("/workers/{id}/attempts/{job}/0/{}/events", first["attempt"]),
        json!({"events": [{"kind": "exited"}]}),
    );

    // The op's plan is refused whole: nothing named, the reason given.
    let second = api.lease_one(&id);
    assert_eq!(second["name"], "probe", "{second}");
    let plan = &second["files"];
    let refused = plan["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains(&format!(
            "{} is outside what this job may read",
            secret.display()
        )),
        "{plan}"
    );
    for part in ["inputs", "outputs", "dirs"] {
        assert!(
            !plan[part].to_string().contains("secret.mp4"),
            "the plan's {part} name the upload: {plan}"
        );
    }
    // And the file routes do not serve it to the attempt.
    let g = Files::of(&api, &id, &second);
    let (status, v) = status_of(g.req("GET", "", secret.to_str().unwrap()).call());
    assert_eq!(status, 403, "{v}");
}

/// The uid a non-root process of this test runs as: `nobody` when the test
/// runs as root, else this user.
fn unprivileged(cmd: &mut std::process::Command) -> u32 {
    use std::os::unix::process::CommandExt;
    if is_root() {
        cmd.uid(65534).gid(65534);
        65534
    } else {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() }
    }
}

#[test]
fn a_server_not_running_as_root_says_what_isolation_it_lacks_and_refuses_task_uids() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let data = dir.path().join("data");

    let mut refused = tessera();
    refused
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--task-uids",
            "300000-300010",
        ])
        .arg("--data-dir")
        .arg(&data);
    unprivileged(&mut refused);
    let out = run(&mut refused);
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("switching tasks to other uids needs a server running as root"),
        "{}",
        out.stderr
    );

    let mut cmd = tessera();
    cmd.args(["server", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data);
    let uid = unprivileged(&mut cmd);
    let mut server = crate::support::Running::spawn_stdout(cmd);
    server.wait_for_line("tessera server listening", Duration::from_secs(30));
    let warning = server.wait_for_line("warning:", Duration::from_secs(30));
    assert!(
        warning.contains(&format!("tessera runs as uid {uid}, not root"))
            && warning.contains("can read each other's uploads"),
        "{warning}"
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
    // Its secrets are its own alone even so.
    use std::os::unix::fs::MetadataExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("tessera.db")), 0o600);
}

#[test]
fn a_workers_tasks_run_as_their_projects_user() {
    if !is_root() {
        tessera_testkit::env::skip(
            "per-project task users on a worker need a worker running as root",
            "run the tests as root (CI does)",
        );
        return;
    }
    let c = crate::workers::Cluster::start(5_000);
    let mut w = c.worker("w", 1);
    let o = c.out.display();
    let job = c.submit(&format!(
        "name: who\ntasks:\n  - name: who\n    action: {{ kind: script, script: \"id -u > {o}/who; id -g >> {o}/who\" }}\n"
    ));
    assert_eq!(c.wait_job(job, Duration::from_secs(60)), "succeeded");
    // The `video` project of the bootstrap is project 1.
    assert_eq!(
        std::fs::read_to_string(c.out.join("who")).unwrap(),
        "200001\n200001\n"
    );
    let _ = w.child.kill();
}
