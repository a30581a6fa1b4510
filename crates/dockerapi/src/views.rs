//! Containers as the Engine API (1.41) shows them: one entry of `GET
//! /containers/json` and `GET /containers/{id}/json`.

use crate::state::{rfc3339, Container};
use serde_json::{json, Value};
use tessera_types::{Action, Millis};

/// The container's name as the engine writes it (`/split`).
fn name(c: &Container) -> String {
    format!("/{}", c.job.name)
}

fn argv(c: &Container) -> Vec<String> {
    match &c.task.spec.action {
        Action::Command { argv } => argv.clone(),
        _ => Vec::new(),
    }
}

fn image(c: &Container) -> String {
    c.task.spec.image.clone().unwrap_or_default()
}

fn env(c: &Container) -> Vec<String> {
    c.task
        .spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

fn mounts(c: &Container) -> Value {
    c.task
        .spec
        .mounts
        .iter()
        .map(|m| {
            json!({
                "Type": "volume",
                "Name": m.volume,
                "Source": m.subpath.clone().unwrap_or_default(),
                "Destination": m.target,
                "RW": !m.read_only,
            })
        })
        .collect()
}

/// `docker ps`'s row.
pub fn summary(c: &Container, now: Millis) -> Value {
    json!({
        "Id": c.id(),
        "Names": [name(c)],
        "Image": image(c),
        "ImageID": "",
        "Command": argv(c).join(" "),
        "Created": c.job.created_at / 1000,
        "Ports": [],
        "Labels": c.task.spec.resources.labels,
        "State": c.status(),
        "Status": c.status_line(now),
        "HostConfig": {"NetworkMode": "default"},
        "NetworkSettings": {"Networks": {}},
        "Mounts": mounts(c),
    })
}

/// `docker inspect`'s object.
pub fn inspect(c: &Container) -> Value {
    let status = c.status();
    let argv = argv(c);
    let (path, args) = argv
        .split_first()
        .map_or((String::new(), Vec::new()), |(p, a)| {
            (p.clone(), a.to_vec())
        });
    let node = c.last.as_ref().and_then(|a| a.node.clone());
    json!({
        "Id": c.id(),
        "Created": rfc3339(Some(c.job.created_at)),
        "Path": path,
        "Args": args,
        "State": {
            "Status": status,
            "Running": status == "running" || status == "paused",
            "Paused": status == "paused",
            "Restarting": false,
            "OOMKilled": false,
            "Dead": false,
            "Pid": c.last.as_ref().filter(|a| a.is_open()).and_then(|a| a.pid).unwrap_or(0),
            "ExitCode": c.exit_code().unwrap_or(0),
            "Error": c.error(),
            "StartedAt": rfc3339(c.started_at()),
            "FinishedAt": rfc3339(c.finished_at()),
        },
        "Image": image(c),
        "Name": name(c),
        "RestartCount": c.task.attempt.saturating_sub(1),
        "Driver": "tessera",
        "Platform": "linux",
        "HostConfig": {
            "NetworkMode": "default",
            "NanoCpus": i64::from(c.task.spec.resources.cpu) * 1_000_000_000,
            "Memory": (c.task.spec.resources.memory_mb as i64).saturating_mul(1 << 20),
            "Privileged": false,
        },
        "Mounts": mounts(c),
        "Config": {
            "Hostname": "",
            "User": "",
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "Tty": false,
            "OpenStdin": false,
            "Env": env(c),
            "Cmd": argv,
            "Image": image(c),
            "Entrypoint": null,
            "WorkingDir": "",
            "Labels": c.task.spec.resources.labels,
        },
        "NetworkSettings": {"Networks": {}},
        "Tessera": {
            "Job": c.job.id.0,
            "JobState": c.job.state.as_str(),
            "Waiting": c.waiting,
            "Node": node,
        },
    })
}
