//! The job page and its live-state documents.

use super::html::{badge, duration, escape, page, table, time};
use super::{dag, gantt, UiError};
use crate::auth::{AsMember, AsViewer, Caller, JobAccess};
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::response::{Html, Response};
use axum::Json;
use serde_json::{json, Value};
use std::fmt::Write;
use tessera_service::{now_ms, JobDetail};
use tessera_store::{AttemptRecord, TaskRecord};
use tessera_types::TaskState;

const LIVE_JS: &str = include_str!("../../assets/live.js");

/// Tasks the job page shows (and its live document follows) at most: the
/// first, in index order. The graph and timeline draw fewer still.
const SHOWN_TASKS: u32 = 1000;

pub(crate) async fn show(
    State(s): State<AppState>,
    caller: Caller,
    access: Result<JobAccess<AsViewer>, ApiError>,
    member: Result<JobAccess<AsMember>, ApiError>,
) -> Result<Html<String>, UiError> {
    render(&s, &caller, &access?, member.is_ok(), None).await
}

/// What the control form said back: the refusal, and what was entered.
pub(crate) struct Said {
    pub error: String,
    pub priority: String,
}

/// The job page; with the job's controls for those who may act on it, and
/// a refusal of the control form above them.
pub(crate) async fn render(
    s: &AppState,
    caller: &Caller,
    access: &JobAccess<AsViewer>,
    may_act: bool,
    said: Option<Said>,
) -> Result<Html<String>, UiError> {
    let JobDetail {
        project,
        tasks,
        attempts,
        counts,
        after,
        waiting,
        why,
    } = s.service.job_detail(access, SHOWN_TASKS).await?;
    let (job, id) = (access.job(), access.id());
    let (done, total) = done_and_total(&counts);
    let view = s.service.encode_view(access).await;
    let parts = Parts::render(job, &tasks, &attempts, &why, total, view.as_ref());
    let project_html = project.map_or("no project".to_string(), |p| {
        format!(
            r#"<a href="/ui/projects/{}">{}</a>"#,
            p.id.0,
            escape(&p.name)
        )
    });
    let ended = job
        .finished_at
        .map(|f| {
            format!(
                ", ended {} UTC after {}",
                time(f),
                duration(f - job.created_at)
            )
        })
        .unwrap_or_default();
    let state = job.state.as_str();
    let info = s.service.output_info(access).await;
    let video = view.as_ref().map_or(String::new(), |v| {
        let done = super::video::frames_done(v, &tasks);
        super::video::card(id.0, v, &parts.chunks, done, info.as_ref())
    });
    let ladder = match &view {
        Some(v) if v.ladder => {
            let report = s.service.ladder_report(access).await;
            super::ladder::card(id.0, report.as_ref())
        }
        _ => String::new(),
    };
    let output = match info {
        Some((file, bytes)) => format!(
            r#"<div class="card" id="output">Output: <a id="download" href="/ui/jobs/{id}/output" download="{file}">Download {file}</a> <span class="muted" id="output-size">{size}</span>{delete}</div>"#,
            file = escape(&file),
            size = super::encode::size(bytes),
            delete = if may_act {
                super::manage::delete_output_button(id.0)
            } else {
                String::new()
            },
        ),
        None => String::new(),
    };
    let body = format!(
        r#"<h1>Job #{id} · {name}</h1>
<p class="row"><span id="job-state" class="badge s-{state}" data-state="{state}" data-poll="/ui/jobs/{id}/state.json" data-events="/ui/jobs/{id}/events">{state}</span>
<span>project {project_html}</span><span class="muted">created {created} UTC{ended}</span></p>
{controls}{output}{after}<p>Progress: <progress id="progress" max="{total}" value="{done}"></progress> <span id="progress-text">{done} / {total}</span> tasks ended <span id="fps" class="muted"></span></p>
{video}{ladder}<h2>Graph</h2><div class="scroll" id="graph-box">{dag}</div>
<h2>Timeline</h2><div class="scroll" id="timeline-box" data-end>{gantt}</div>
<h2>Tasks</h2><div id="tasks-box" data-parts="/ui/jobs/{id}/parts.json">{tasks}</div>
<script>{LIVE_JS}</script>"#,
        name = escape(&job.name),
        controls = if may_act {
            super::control::form(job, said.as_ref())
        } else {
            String::new()
        },
        after = after_line(&after, waiting.as_deref()),
        created = time(job.created_at),
        dag = parts.dag,
        gantt = parts.gantt,
        tasks = parts.tasks,
    );
    Ok(page(
        &format!("Job #{id} {}", job.name),
        Some(&caller.user().name),
        &body,
    ))
}

/// One line for a job that waits on jobs: each dependency as written,
/// the jobs it matched (linked), and what it still waits for.
fn after_line(after: &[tessera_types::JobDependency], waiting: Option<&str>) -> String {
    if after.is_empty() {
        return String::new();
    }
    let deps: Vec<String> = after
        .iter()
        .map(|d| {
            let jobs: Vec<String> = d
                .resolved
                .iter()
                .map(|j| format!(r#"<a href="/ui/jobs/{j}">#{j}</a>"#))
                .collect();
            let condition = serde_json::to_value(d.condition).unwrap_or_default();
            format!(
                "{} ({}): {}",
                escape(&d.job.to_string()),
                condition.as_str().unwrap_or(""),
                jobs.join(" ")
            )
        })
        .collect();
    let waiting = waiting.map_or(String::new(), |w| {
        format!(
            r#" <span id="after-waiting" class="muted">{}</span>"#,
            escape(w)
        )
    });
    format!(
        r#"<p class="card" id="after">After jobs: {}.{waiting}</p>"#,
        deps.join("; ")
    )
}

fn task_table(
    record: &tessera_store::JobRecord,
    tasks: &[TaskRecord],
    attempts: &[AttemptRecord],
    why: &[(u32, String)],
) -> String {
    let (job, created, now) = (record.id.0, record.created_at, now_ms());
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let mine: Vec<&AttemptRecord> = attempts.iter().filter(|a| a.task == t.task).collect();
            let usage = mine.iter().filter_map(|a| a.usage);
            let cpu: u64 = usage.clone().map(|u| u.cpu_ms).sum();
            let peak = usage.map(|u| u.max_rss_kb).max();
            let i = t.task.index;
            // Each attempt: where it ran (the service names the server's
            // own node as the nodes list does), when it started after the
            // job was made, and how long it ran (so far).
            let mut runs = String::new();
            for a in &mine {
                let took = a.ended_at.unwrap_or(now).saturating_sub(a.started_at);
                let _ = write!(
                    runs,
                    r#"<span class="node">#{} {} · +{} · {}{}</span><br>"#,
                    a.number,
                    escape(a.node.as_deref().unwrap_or("-")),
                    duration(a.started_at.saturating_sub(created)),
                    duration(took),
                    if a.ended_at.is_none() { " so far" } else { "" },
                );
            }
            let mut logs = String::new();
            for n in 1..=t.attempt {
                let _ = write!(
                    logs,
                    r#"#{n} <a href="/ui/jobs/{job}/tasks/{i}/log?attempt={n}">logs</a> · <a href="/ui/jobs/{job}/tasks/{i}/logs?attempt={n}&amp;stream=stdout">stdout</a> <a href="/ui/jobs/{job}/tasks/{i}/logs?attempt={n}&amp;stream=stderr">stderr</a><br>"#
                );
            }
            vec![
                format!(r#"<span id="task-{i}">{i}</span>"#),
                escape(&t.name),
                badge(t.state.as_str(), Some(i)),
                t.attempt.to_string(),
                // Why it has not started (waiting or ready), as the CLI
                // says it; else how it ended.
                match why.iter().find(|(w, _)| *w == i) {
                    Some((_, w)) => format!(r#"<span class="why">{}</span>"#, escape(w)),
                    None => t.reason.as_deref().map(escape).unwrap_or_default(),
                },
                runs,
                if mine.iter().any(|a| a.usage.is_some()) {
                    duration(cpu)
                } else {
                    String::new()
                },
                peak.map(|kb| super::encode::size(kb * 1024)).unwrap_or_default(),
                logs,
            ]
        })
        .collect();
    table(
        &[
            "#",
            "task",
            "state",
            "attempts",
            "reason",
            "node · started · took",
            "cpu",
            "peak memory",
            "logs",
        ],
        &rows,
    )
}

/// The parts of the job page that grow while it runs (tasks an expansion
/// or a retry adds, bars of running attempts): drawn with the page, and
/// again for its live script ([`parts_json`]).
struct Parts {
    dag: String,
    gantt: String,
    /// The task table, after a line saying how many are not shown.
    tasks: String,
    /// An encode's chunk map (empty for other jobs).
    chunks: String,
}

impl Parts {
    fn render(
        record: &tessera_store::JobRecord,
        tasks: &[TaskRecord],
        attempts: &[AttemptRecord],
        why: &[(u32, String)],
        total: u64,
        view: Option<&tessera_service::EncodeView>,
    ) -> Self {
        let job = record.id.0;
        let more = match total.saturating_sub(tasks.len() as u64) {
            0 => String::new(),
            n => format!(
                r#"<p class="muted">The first {} tasks are shown; {n} more are not (GET /api/v1/jobs/{job}/tasks pages through all).</p>"#,
                tasks.len()
            ),
        };
        Self {
            dag: dag::render(tasks),
            gantt: gantt::render(tasks, attempts, now_ms()),
            tasks: more + &task_table(record, tasks, attempts, why),
            chunks: view.map_or(String::new(), |v| {
                super::video::chunk_map(v, tasks, attempts)
            }),
        }
    }
}

/// The page's growing parts, for its live script: `{"dag", "gantt",
/// "tasks"}` as HTML, drawn as the page draws them.
pub(crate) async fn parts_json(
    State(s): State<AppState>,
    access: Result<JobAccess<AsViewer>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let access = access?;
    let d = s.service.job_detail(&access, SHOWN_TASKS).await?;
    let (_, total) = done_and_total(&d.counts);
    let view = s.service.encode_view(&access).await;
    let parts = Parts::render(
        access.job(),
        &d.tasks,
        &d.attempts,
        &d.why,
        total,
        view.as_ref(),
    );
    Ok(Json(json!({
        "dag": parts.dag,
        "gantt": parts.gantt,
        "tasks": parts.tasks,
        "chunks": parts.chunks,
    })))
}

/// Tasks ended and tasks in all, from the job's counts by state.
fn done_and_total(counts: &[(TaskState, u64)]) -> (u64, u64) {
    let done = counts
        .iter()
        .filter(|(s, _)| s.is_terminal())
        .map(|(_, n)| n);
    (done.sum(), counts.iter().map(|(_, n)| n).sum())
}

/// The job's and its first [`SHOWN_TASKS`] tasks' states:
/// `{"state", "done", "total", "tasks": [[index, state]...]}` (`done` and
/// `total` count all of the job's tasks).
pub(crate) async fn state_json(
    State(s): State<AppState>,
    access: Result<JobAccess<AsViewer>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let access = access?;
    let job = access.job();
    let (tasks, counts) = s.service.task_states(&access, SHOWN_TASKS).await?;
    let (done, total) = done_and_total(&counts);
    let states: Vec<Value> = tasks
        .iter()
        .map(|t| json!([t.task.index, t.state.as_str()]))
        .collect();
    Ok(Json(json!({
        "state": job.state.as_str(),
        "done": done,
        "total": total,
        "tasks": states,
    })))
}

/// The job's events as Server-Sent Events (see `crate::events`).
pub(crate) async fn events(
    State(s): State<AppState>,
    access: Result<JobAccess<AsViewer>, ApiError>,
) -> Result<Response, ApiError> {
    Ok(crate::events::job_events(&s, &access?))
}
