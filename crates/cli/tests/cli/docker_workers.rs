//! `tessera worker --docker` against a `tessera server --slots 0` without
//! `--docker`: the server accepts a task that names an image, lists it
//! `unplaceable` (with the reason) while only a worker without docker is
//! there, and it runs once a worker that offers docker registers, in a
//! container on that worker's engine, handing a file to a host task
//! through the job's folder. A worker asked for `--docker` with no engine
//! stops with one line.

use crate::support::{client_of, docker_engine_present, image_flow, local_image, run, tessera};
use crate::workers::Cluster;
use std::time::Duration;

/// `inside` writes its node and the hostname it sees (a container's is its
/// id) into the job's folder; `outside`, a host process, reads it back.
fn boxed() -> String {
    image_flow(r#"echo \"$TESSERA_NODE $(cat /etc/hostname)\" > \"$TESSERA_JOB_DIR/handoff\""#)
}

/// This machine's host name, as a host process sees it.
fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn an_image_task_waits_unplaceable_then_runs_in_a_container_on_a_docker_worker_only() {
    if !docker_engine_present() {
        return;
    }
    local_image();
    let c = Cluster::start_with(2000, &["--slots", "0"]);
    let _plain = c.worker("plain", 2);
    let job = c.submit(&boxed());

    // Only a worker without docker: the attempt waits, and says why.
    let (u, v) = c.wait_unplaceable();
    let plain = &v["nodes"].as_array().unwrap()[0];
    assert_eq!(plain["executors"], serde_json::json!(["local"]), "{v}");
    assert_eq!(
        (u["job"].as_i64(), u["index"].as_u64()),
        (Some(job), Some(0)),
        "{v}"
    );
    let reason = u["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "{}, and no ready node offers docker; start a worker with --docker",
            local_image()
        )),
        "{reason}"
    );
    // It stays waiting (plain has free slots all along and never gets it):
    // a window for what must not happen, which a slow machine only shortens.
    std::thread::sleep(Duration::from_millis(1500));
    let (_, v) = c.api("GET", &format!("/jobs/{job}"), None);
    assert_eq!(v["state"], "running", "{v}");
    let inside = |c: &Cluster| -> Vec<serde_json::Value> {
        c.attempts(job)
            .into_iter()
            .filter(|a| a["task"] == 0)
            .collect()
    };
    let waiting = inside(&c);
    assert!(
        waiting.len() <= 1 && waiting.iter().all(|a| a["outcome"].is_null()),
        "{waiting:?}"
    );

    let _boxed = c.worker_with("boxed", 1, &["--grace", "0", "--docker"]);
    let (_, v) = c.api("GET", "/nodes", None);
    let boxed = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "boxed")
        .cloned();
    assert_eq!(
        boxed.map(|b| b["executors"].clone()),
        Some(serde_json::json!(["local", "docker"])),
        "{v}"
    );
    let state = c.wait_job(job, Duration::from_secs(60));
    let job_arg = job.to_string();
    let logs = |task: &str, more: &[&str]| {
        let mut args = vec!["job", "logs", job_arg.as_str(), task];
        args.extend_from_slice(more);
        run(&mut client_of(&c.server.url, &c.key, &args)).stdout
    };
    assert_eq!(state, "succeeded", "{}", logs("inside", &["--stderr"]));
    // The host task read what the container wrote, through the job's folder.
    let handoff = logs("outside", &[]);
    let (node, hostname) = handoff
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("{handoff:?}"));
    assert_eq!(node, "boxed", "only the docker worker runs it: {handoff:?}");
    assert_ne!(hostname, host_name(), "ran in a container: {handoff:?}");
    assert!(
        hostname.len() == 12 && hostname.chars().all(|ch| ch.is_ascii_hexdigit()),
        "a container's hostname is its short id: {handoff:?}"
    );
    // One attempt of `inside`, which succeeded: plain never started it.
    let ran = inside(&c);
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(ran[0]["outcome"], "succeeded", "{ran:?}");
    let (_, v) = c.api("GET", "/nodes", None);
    assert_eq!(v["unplaceable"], serde_json::json!([]), "{v}");
}

#[test]
fn a_worker_asked_for_docker_without_an_engine_stops_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tessera();
    cmd.args([
        "worker",
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "twk_none",
    ])
    .args(["--name", "w", "--docker"])
    .env(
        "DOCKER_HOST",
        format!("unix://{}/no.sock", dir.path().display()),
    );
    let out = run(&mut cmd);
    assert_eq!(out.code, Some(4), "an environment failure: {out:?}");
    assert_eq!(out.stderr_lines().len(), 1, "{out:?}");
    let line = out.stderr_lines()[0];
    assert!(line.starts_with("tessera: --docker: "), "{line}");
    assert!(
        line.contains("start the Docker engine, or run this worker without --docker"),
        "{line}"
    );
}
