//! The nodes page (admins): every worker with its state, slots in use, what
//! it offers, when it was last heard from and the attempts it runs.

use super::html::{badge, escape, page, table};
use super::UiError;
use crate::auth::Caller;
use crate::AppState;
use axum::extract::State;
use axum::response::Html;
use serde_json::Value;
use tessera_service::now_ms;

pub(crate) async fn show(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Html<String>, UiError> {
    let Ok(admin) = caller.admin() else {
        return Err(crate::ApiError::Forbidden("the nodes page is for admins".into()).into());
    };
    let recent = crate::workers::recent_node_usage(&s.service, &admin).await?;
    let nodes = crate::workers::node_views(s.workers.as_deref(), &recent);
    let waiting = crate::workers::unplaceable_views(s.workers.as_deref());
    let body = render(&nodes, s.workers.is_some(), s.service.slots(), now_ms());
    let body = format!("{body}{}", render_unplaceable(&waiting));
    Ok(page("Nodes", Some(&caller.user().name), &body))
}

/// Drain a ready node, or undrain a draining one (a lost node has none).
fn drain_button(name: &str, state: Option<&str>) -> String {
    let (action, label, confirm) = match state {
        Some("ready") => (
            "drain",
            "Drain",
            " onclick=\"return confirm('Drain this node? It takes nothing new and finishes what it holds.')\"",
        ),
        Some("draining") => ("undrain", "Undrain", ""),
        _ => return String::new(),
    };
    format!(
        r#" <form class="inline" method="post" action="/ui/nodes/drain"><input type="hidden" name="node" value="{node}"><button type="submit" name="action" value="{action}"{confirm}>{label}</button></form>"#,
        node = escape(name),
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct DrainForm {
    node: String,
    action: String,
}

/// Drains or undrains a node from the nodes page (admins), then back to it.
pub(crate) async fn drain(
    State(s): State<AppState>,
    caller: Caller,
    axum::Form(f): axum::Form<DrainForm>,
) -> Result<axum::response::Response, UiError> {
    use axum::response::IntoResponse;
    caller.admin()?;
    let Some(pool) = s.workers.as_deref() else {
        return Err(crate::ApiError::Conflict(
            "this server runs its tasks itself; it has no nodes to drain".into(),
        )
        .into());
    };
    let drain = match f.action.as_str() {
        "drain" => true,
        "undrain" => false,
        other => {
            return Err(
                crate::ApiError::Invalid(format!("{other:?} is not drain or undrain")).into(),
            )
        }
    };
    crate::workers::set_draining(pool, &f.node, drain)?;
    Ok(axum::response::Redirect::to("/ui/nodes").into_response())
}

/// The page's body: `workers` says whether this server runs tasks on
/// workers at all (else on its own `local_slots`).
pub(crate) fn render(nodes: &[Value], workers: bool, local_slots: u32, now: u64) -> String {
    if !workers {
        return format!(
            r#"<h1>Nodes</h1><p class="card" id="no-workers">This server runs tasks on its own {local_slots} slots; it takes no workers (start it with <code>--workers</code>, or <code>--slots 0</code> for workers only, and run <code>tessera worker</code> on each machine).</p>"#
        );
    }
    if nodes.is_empty() {
        return r#"<h1>Nodes</h1><p class="card" id="no-workers">No worker has registered yet: run <code>tessera worker --server URL --token TOKEN</code> on each machine (<code>tessera admin create-worker-token NAME</code> makes a token).</p>"#.into();
    }
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let s = |k: &str| escape(n[k].as_str().unwrap_or(""));
            let num = |k: &str| n[k].as_u64().unwrap_or(0);
            let labels: Vec<String> = n["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| escape(&format!("{k}={}", v.as_str().unwrap_or(""))))
                        .collect()
                })
                .unwrap_or_default();
            let running: Vec<String> = n["running"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| {
                            format!(
                                r#"<a href="/ui/jobs/{0}">#{0}</a> task {1} (attempt {2})"#,
                                r["job"], r["index"], r["attempt"]
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let ago = now.saturating_sub(num("last_heartbeat_ms")) as f64 / 1000.0;
            let local = if n["local"] == true {
                " (this server)"
            } else {
                ""
            };
            let recent = &n["recent"];
            let recent_num = |k: &str| recent[k].as_u64().unwrap_or(0);
            let mut done = format!(
                r#"<span class="recent">{} attempts · {:.1} cpu-s</span>"#,
                recent_num("attempts"),
                recent_num("cpu_ms") as f64 / 1000.0
            );
            if recent_num("transfer_bytes") > 0 || recent_num("transfer_ms") > 0 {
                done.push_str(&format!(
                    r#"<br><span class="muted">moved {:.1} MB in {:.1} s</span>"#,
                    recent_num("transfer_bytes") as f64 / 1e6,
                    recent_num("transfer_ms") as f64 / 1000.0
                ));
            }
            vec![
                format!("{}{local}", s("name")),
                format!(
                    "{}{}",
                    badge(n["state"].as_str().unwrap_or(""), None),
                    drain_button(n["name"].as_str().unwrap_or(""), n["state"].as_str())
                ),
                format!(
                    r#"<meter min="0" max="{0}" value="{1}"></meter> {1} / {0}"#,
                    num("slots"),
                    num("used")
                ),
                format!(
                    "{} cpus{} · {} MiB · {} MiB free disk{}<br><span class=\"muted\">{} · data {}</span>",
                    num("cpus"),
                    match num("gpus") {
                        0 => String::new(),
                        g => format!(" · {g} GPUs"),
                    },
                    num("memory_mb"),
                    num("disk_free_mb"),
                    if n["disk_low"] == true {
                        r#" <strong class="disk-low">disk low: takes nothing new</strong>"#
                    } else {
                        ""
                    },
                    escape(
                        &n["executors"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|e| e.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default()
                    ),
                    escape(n["data"].as_str().unwrap_or("shared")),
                ),
                labels.join(", "),
                format!("{ago:.1} s ago"),
                running.join("<br>"),
                done,
            ]
        })
        .collect();
    format!(
        r#"<h1>Nodes</h1><div id="nodes">{}</div>"#,
        table(
            &[
                "worker",
                "state",
                "slots",
                "offers",
                "labels",
                "last heartbeat",
                "running",
                "last 10 minutes"
            ],
            &rows
        )
    )
}

/// Queued attempts no ready node could ever take, with the reason (empty
/// when there are none).
pub(crate) fn render_unplaceable(waiting: &[Value]) -> String {
    if waiting.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = waiting
        .iter()
        .map(|w| {
            vec![
                format!(r#"<a href="/ui/jobs/{0}">#{0}</a>"#, w["job"]),
                format!(
                    "{} (task {}, attempt {})",
                    escape(w["name"].as_str().unwrap_or("")),
                    w["index"],
                    w["attempt"]
                ),
                escape(w["reason"].as_str().unwrap_or("")),
            ]
        })
        .collect();
    format!(
        r#"<h2>Waiting for a node that fits</h2><p class="muted">No ready node can take these; they start as soon as one that fits registers.</p><div id="unplaceable">{}</div>"#,
        table(&["job", "task", "why"], &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn workers_show_state_slots_labels_and_running_attempts_escaped() {
        let nodes = vec![json!({
            "id": "w1", "name": "rack<1>", "state": "draining", "slots": 4, "used": 1,
            "cpus": 8, "memory_mb": 16000, "disk_free_mb": 900,
            "labels": {"zone": "eu"}, "executors": ["process"],
            "last_heartbeat_ms": 9_000,
            "running": [{"job": 7, "index": 3, "attempt": 2}],
            "recent": {"window_ms": 600_000, "attempts": 12, "cpu_ms": 34_500,
                       "transfer_ms": 2_500, "transfer_bytes": 7_000_000},
        })];
        let html = render(&nodes, true, 0, 10_500);
        assert!(html.contains("rack&lt;1&gt;"), "{html}");
        assert!(html.contains("draining"), "{html}");
        assert!(html.contains(r#"value="1"></meter> 1 / 4"#), "{html}");
        assert!(html.contains("zone=eu"), "{html}");
        assert!(html.contains("1.5 s ago"), "{html}");
        assert!(html.contains("12 attempts · 34.5 cpu-s"), "{html}");
        assert!(html.contains("moved 7.0 MB in 2.5 s"), "{html}");
        assert!(
            html.contains(r#"<a href="/ui/jobs/7">#7</a> task 3 (attempt 2)"#),
            "{html}"
        );
        assert!(html.contains("data shared"), "{html}");
        assert!(!html.contains("GPUs"), "{html}");
        assert!(!html.contains("disk low"), "{html}");
        let low = vec![
            json!({"name": "board", "state": "ready", "disk_low": true, "cpus": 4, "gpus": 2,
                              "data": "http", "executors": ["local"]}),
        ];
        let html = render(&low, true, 0, 0);
        assert!(html.contains("disk low: takes nothing new"), "{html}");
        assert!(html.contains("4 cpus · 2 GPUs"), "{html}");
        assert!(html.contains("local · data http"), "{html}");
        let waiting = vec![json!({"job": 4, "index": 1, "attempt": 1, "name": "gpu<x>",
                                  "reason": "no ready node carries label gpu=a100"})];
        let html = render_unplaceable(&waiting);
        assert!(html.contains("gpu&lt;x&gt; (task 1, attempt 1)"), "{html}");
        assert!(
            html.contains("no ready node carries label gpu=a100"),
            "{html}"
        );
        assert!(render_unplaceable(&[]).is_empty());
        assert!(render(&[], true, 0, 0).contains("No worker has registered yet"));
        assert!(render(&[], false, 2, 0).contains("its own 2 slots"));
    }
}
