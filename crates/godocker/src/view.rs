//! A Tessera job as Go-Docker's job document, the fields godocker-cli
//! reads: `status.primary` (pending, running, over), `status.secondary`
//! (what it waits for, suspended, success, failed: why, killed),
//! `date_running` and `date_over` (seconds; `date_running` present once it
//! started or ended), the exit code in `container.meta.State.ExitCode`.

use crate::reply::Reply;
use crate::spec::{
    META_ARRAY, META_DESCRIPTION, META_IMAGE, META_PARENTS, META_REQ, META_TAGS, META_TMP,
    META_USER, META_VOLUMES,
};
use crate::Gd;
use serde_json::{json, Value};
use tessera_service::{JobAccess, Need};
use tessera_types::{AttemptOutcome, JobState};

/// How much of a job to read: a listing reads its spec and status; `show`
/// also its tasks and attempts (the exit code, why it failed).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    List,
    Show,
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The exit code an attempt's end means: its status, 137 when it was
/// killed (as Docker reports a SIGKILL).
fn exit_code(outcome: &AttemptOutcome) -> i64 {
    match outcome {
        AttemptOutcome::Succeeded => 0,
        AttemptOutcome::Failed { message } => message
            .split("status ")
            .nth(1)
            .and_then(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .unwrap_or(1),
        AttemptOutcome::TimedOut | AttemptOutcome::Cancelled | AttemptOutcome::Lost { .. } => 137,
    }
}

/// The job document of `job`, in project `project`.
pub(crate) async fn job_json<R: Need>(
    gd: &Gd,
    job: &JobAccess<R>,
    project: &str,
    depth: Depth,
) -> Reply<Value> {
    let record = job.job();
    let spec = gd.service.job_spec(job).await?;
    let status = gd.service.job_status(job).await?;
    let first = gd.service.attempts(job, 0, 1).await?.items;
    let meta = |k: &str| spec.meta.get(k).cloned().unwrap_or_default();
    let parsed = |k: &str| serde_json::from_str::<Value>(&meta(k)).unwrap_or(Value::Null);
    let state = status.job.state;
    let (mut code, mut reason, mut cmd) = (None, None, String::new());
    if depth == Depth::Show {
        let (tasks, _) = gd.service.task_states(job, 100).await?;
        if let Some(t) = tasks.first() {
            if let Some(c) = t.spec.env.get("GODOCKER_CMD") {
                cmd = c.clone();
            }
        }
        reason = tasks.iter().find_map(|t| t.reason.clone());
        let attempts = gd.service.attempts(job, 0, 1000).await?.items;
        code = attempts
            .iter()
            .rev()
            .find_map(|a| a.outcome.as_ref().map(exit_code));
    }
    if code.is_none() && state.is_terminal() {
        code = Some(match state {
            JobState::Succeeded => 0,
            JobState::Cancelled => 137,
            _ => 1,
        });
    }
    let primary = match state {
        JobState::Pending => "pending",
        JobState::Running => "running",
        _ => "over",
    };
    let archived = gd.service.archived_at(job).await;
    let secondary = match state {
        _ if archived.is_some() => Some("archived".to_string()),
        _ if record.suspended && !state.is_terminal() => Some("suspended".to_string()),
        JobState::Pending => Some(status.waiting.clone().unwrap_or_else(|| "pending".into())),
        JobState::Running => None,
        JobState::Succeeded => Some("success".into()),
        JobState::Failed => Some(match &reason {
            Some(r) => format!("failed: {r}"),
            None => "failed".into(),
        }),
        JobState::Cancelled => Some(match &reason {
            Some(r) => format!("killed: {r}"),
            None => "killed".into(),
        }),
    };
    let mut status_json = json!({
        "primary": primary,
        "secondary": secondary,
        "date_over": record.finished_at.map(secs),
        "exitcode": code,
    });
    if let Some(at) = archived {
        status_json["date_archived"] = json!(secs(at));
    }
    // Present once it ran, or ended without running (so `--wait` ends).
    let ran = first.first().map(|a| secs(a.started_at));
    if let Some(t) = ran.or_else(|| record.finished_at.map(secs)) {
        status_json["date_running"] = json!(t);
    }
    let tags = match parsed(META_TAGS) {
        Value::Array(t) => Value::Array(t),
        _ => json!([]),
    };
    let mut requirements = match parsed(META_REQ) {
        Value::Object(o) => Value::Object(o),
        _ => json!({"cpu": 1, "ram": 1, "gpus": 0}),
    };
    let parents: Vec<String> = meta(META_PARENTS)
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    requirements["tasks"] = json!(parents);
    requirements["array"] = json!({ "values": spec.meta.get(META_ARRAY) });
    requirements["tmpstorage"] = match spec.meta.get(META_TMP) {
        Some(size) => json!({ "size": size, "path": "tmp-data" }),
        None => Value::Null,
    };
    let volumes = match parsed(META_VOLUMES) {
        Value::Array(v) => Value::Array(v),
        _ => json!([]),
    };
    let image = spec
        .meta
        .get(META_IMAGE)
        .cloned()
        .unwrap_or_else(|| "-".into());
    Ok(json!({
        "id": record.id.0,
        "user": { "id": spec.meta.get(META_USER).cloned().unwrap_or_else(|| "-".into()),
                  "uid": 0, "gid": 0, "project": project },
        "date": secs(record.created_at),
        "meta": { "name": record.name, "description": meta(META_DESCRIPTION), "tags": tags },
        "requirements": requirements,
        "container": {
            "image": image,
            "volumes": volumes,
            "network": true,
            "id": null,
            "meta": code.map(|c| json!({ "State": { "ExitCode": c } })),
            "stats": null,
            "ports": [],
            "root": false,
        },
        "command": { "interactive": false, "cmd": cmd },
        "status": status_json,
    }))
}
