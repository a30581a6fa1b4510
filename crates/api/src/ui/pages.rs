//! The dashboard and the project page.

use super::html::{badge, escape, page, table, time};
use super::manage::Said;
use super::{chart, UiError};
use crate::auth::{AsOwner, AsViewer, Caller, ProjectAccess};
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::response::Html;
use std::fmt::Write;
use tessera_service::now_ms;
use tessera_store::JobRecord;
use tessera_types::{JobState, TaskState};

/// Jobs read per project for the dashboard's counts and chart.
const DASHBOARD_JOBS: u32 = 500;
/// Jobs listed per project on the dashboard.
const RECENT: usize = 8;
/// The chart: this many buckets of this many minutes.
const BUCKETS: usize = 24;
const BUCKET_MIN: u32 = 15;

const JOB_STATES: [JobState; 5] = [
    JobState::Pending,
    JobState::Running,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Cancelled,
];

fn job_rows(jobs: &[JobRecord]) -> Vec<Vec<String>> {
    jobs.iter()
        .map(|j| {
            vec![
                format!(r#"<a href="/ui/jobs/{0}">#{0}</a>"#, j.id.0),
                format!(r#"<a href="/ui/jobs/{}">{}</a>"#, j.id.0, escape(&j.name)),
                badge(j.state.as_str(), None),
                time(j.created_at),
                j.finished_at.map(time).unwrap_or_default(),
            ]
        })
        .collect()
}

fn counts_html(jobs: &[&JobRecord]) -> String {
    let mut out = String::from(r#"<div class="row">"#);
    for state in JOB_STATES {
        let n = jobs.iter().filter(|j| j.state == state).count();
        let label = match state {
            JobState::Pending => "queued",
            other => other.as_str(),
        };
        let _ = write!(
            out,
            r#"<div class="stat" id="count-{label}"><b>{n}</b>{label}</div>"#
        );
    }
    out.push_str("</div>");
    out
}

pub(crate) async fn dashboard(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Html<String>, UiError> {
    let name = caller.user().name.clone();
    let caller_admin = caller.is_admin();
    let board = s.service.dashboard(&caller, DASHBOARD_JOBS).await?;
    let count = |state: TaskState| {
        board
            .tasks
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    };
    let (running, queued) = (count(TaskState::Running), count(TaskState::Ready));
    let slots = board.slots;
    let all: Vec<&JobRecord> = board.projects.iter().flat_map(|(_, _, j)| j).collect();
    let finished: Vec<u64> = all.iter().filter_map(|j| j.finished_at).collect();
    let counts = chart::buckets(&finished, now_ms(), u64::from(BUCKET_MIN) * 60_000, BUCKETS);
    let nodes_link = if caller_admin {
        r#"<p><a class="action" id="nodes-link" href="/ui/nodes">Nodes</a></p>"#
    } else {
        ""
    };
    let mut body = format!(
        r#"<h1>Dashboard</h1>
<h2>Worker slots</h2>{nodes_link}<p class="card" id="slots"><meter min="0" max="{slots}" value="{running}"></meter> <b>{running}</b> of {slots} slots busy · <b>{queued}</b> tasks queued <span class="muted">(all projects)</span></p>
<h2>All your projects</h2>{}
<h2>Throughput</h2><div class="scroll" id="throughput" data-end>{}</div>
<p class="muted">Jobs finished per {BUCKET_MIN} minutes over the last {} hours.</p>"#,
        counts_html(&all),
        chart::throughput_svg(&counts, BUCKET_MIN),
        BUCKETS as u32 * BUCKET_MIN / 60,
    );
    if board.projects.is_empty() {
        body.push_str(r#"<p class="card">You are not a member of any project yet.</p>"#);
    }
    for (p, role, jobs) in &board.projects {
        let role = role.map_or("admin".to_string(), |r| r.to_string());
        let refs: Vec<&JobRecord> = jobs.iter().collect();
        let recent = &jobs[..jobs.len().min(RECENT)];
        let list = if recent.is_empty() {
            r#"<p class="muted">No jobs yet.</p>"#.to_string()
        } else {
            table(
                &["id", "job", "state", "created (UTC)", "finished (UTC)"],
                &job_rows(recent),
            )
        };
        let _ = write!(
            body,
            r#"<section class="card project"><h2><a href="/ui/projects/{id}">{name}</a> <span class="muted">· {role}</span> <a class="action" href="/ui/projects/{id}/encode">Encode a video</a></h2>{counts}<h2>Recent jobs</h2>{list}</section>"#,
            id = p.id.0,
            name = escape(&p.name),
            role = escape(&role),
            counts = counts_html(&refs),
        );
    }
    Ok(page("Dashboard", Some(&name), &body))
}

pub(crate) async fn project(
    State(s): State<AppState>,
    access: Result<ProjectAccess<AsViewer>, ApiError>,
    owner: Result<ProjectAccess<AsOwner>, ApiError>,
) -> Result<Html<String>, UiError> {
    render_project(&s, &access?, owner.is_ok(), &Said::default()).await
}

/// The project page; with the member forms for its owners (and admins),
/// and a form's refusal shown above it with what was entered kept.
pub(crate) async fn render_project(
    s: &AppState,
    access: &ProjectAccess<AsViewer>,
    owns: bool,
    said: &Said,
) -> Result<Html<String>, UiError> {
    let (caller, project) = (access.caller(), access.project());
    let name = caller.user().name.clone();
    let members = s.service.members(access).await?;
    let keys = s.service.keys(caller).await?;
    let jobs = s.service.jobs(access, 50).await?;
    let uploads = s.service.uploads(access).await?;
    // Members and up may delete uploads; viewers only see them.
    let may_act = owns
        || caller.is_admin()
        || access
            .role()
            .is_some_and(|r| r.allows(tessera_types::Role::Member));
    let usage: crate::views::UsageView = s.service.usage(access).await?.into();
    let since = now_ms().saturating_sub(u64::from(BUCKET_MIN) * 60_000 * BUCKETS as u64);
    let charged: Vec<(f64, u64)> = s
        .service
        .charges(access, since)
        .await?
        .into_iter()
        .map(|(ms, at)| (ms as f64 / 1000.0, at))
        .collect();
    let cpu = chart::sums(&charged, now_ms(), u64::from(BUCKET_MIN) * 60_000, BUCKETS);
    let limit =
        |v: Option<u64>, unit: &str| v.map_or("unlimited".to_string(), |n| format!("{n}{unit}"));
    let quota_html = format!(
        r#"<p class="card" id="usage">Running now: <b>{}</b> cpu, <b>{}</b> MiB · {:.1} cpu-seconds this quota window, {:.1} recent (decayed, what fair share compares)<br>Quota: {} cpu at once · {} memory at once · {} per window</p>"#,
        usage.running_cpu,
        usage.running_memory_mb,
        usage.window_cpu_seconds,
        usage.decayed_cpu_seconds,
        limit(usage.quota.max_cpu.map(u64::from), ""),
        limit(usage.quota.max_memory_mb, " MiB"),
        limit(
            usage.quota.cpu_ms_per_window.map(|ms| ms / 1000),
            " cpu-seconds"
        ),
    );
    let pid = project.id.0;
    let member_rows: Vec<Vec<String>> = members
        .iter()
        .map(|(user, role)| {
            let mut row = vec![
                escape(&user.name),
                badge(&role.to_string(), None),
                if user.admin { "admin" } else { "" }.to_string(),
            ];
            if owns {
                row.push(super::manage::member_buttons(pid, &user.name, *role));
            }
            row
        })
        .collect();
    let key_rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                escape(&k.name),
                format!("<code>tsk_{}_…</code>", escape(&k.prefix)),
                time(k.created_at),
                k.last_used_at.map(time).unwrap_or_else(|| "never".into()),
                match k.revoked_at {
                    Some(t) => format!("revoked {}", time(t)),
                    None => super::manage::revoke_button(pid, k.id.0, &k.name),
                },
            ]
        })
        .collect();
    let job_rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                format!(r#"<a href="/ui/jobs/{0}">#{0}</a>"#, j.id.0),
                format!(r#"<a href="/ui/jobs/{}">{}</a>"#, j.id.0, escape(&j.name)),
                badge(j.state.as_str(), None),
                time(j.created_at),
            ]
        })
        .collect();
    let body = format!(
        r#"<h1>Project {pname}</h1>
<p class="muted">Created {created} UTC · <a class="action" id="encode-link" href="/ui/projects/{id}/encode">Encode a video</a> <a class="action" id="submit-link" href="/ui/projects/{id}/submit">Submit a job</a></p>
<h2>Usage</h2>{quota_html}<div class="scroll" id="usage-chart" data-end>{usage_chart}</div>
<p class="muted">Cpu-seconds of ended attempts per {BUCKET_MIN} minutes over the last {hours} hours.</p>
<h2>Members</h2>{error}{members}{add_member}
<h2>Your API keys</h2><p class="muted">Only names and prefixes: a key's secret is shown once, when it is created.</p>{keys}{new_key}
<h2>Jobs</h2>{jobs}
<h2>Uploads</h2>{uploads}"#,
        pname = escape(&project.name),
        id = project.id.0,
        created = time(project.created_at),
        error = said.error_html(),
        members = if owns {
            table(&["user", "role", "", "change"], &member_rows)
        } else {
            table(&["user", "role", ""], &member_rows)
        },
        add_member = if owns {
            super::manage::add_member_form(pid, said)
        } else {
            String::new()
        },
        new_key = super::manage::new_key_form(pid, said),
        keys = table(
            &["name", "prefix", "created", "last used", "status"],
            &key_rows
        ),
        jobs = table(&["id", "job", "state", "created (UTC)"], &job_rows),
        uploads = super::manage::uploads_table(pid, &uploads, may_act),
        usage_chart = chart::line_svg(&cpu, BUCKET_MIN, &format!("cpu-s / {BUCKET_MIN} min")),
        hours = BUCKETS as u32 * BUCKET_MIN / 60,
    );
    Ok(page(
        &format!("Project {}", project.name),
        Some(&name),
        &body,
    ))
}
