//! An attempt's logs: as plain text (never as HTML: the bytes are the
//! task's), followed while the attempt runs (`follow=true`), and a page
//! with its stdout and stderr side by side that follows them live.

use super::html::{escape, page};
use super::UiError;
use crate::auth::{AsViewer, Caller, JobAccess};
use crate::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use serde::Deserialize;
use tessera_service::Stream;

const LOG_JS: &str = include_str!("../../assets/log.js");

#[derive(Deserialize)]
pub(crate) struct LogQuery {
    attempt: Option<u32>,
    stream: Option<Stream>,
    #[serde(default)]
    follow: bool,
}

fn task_index(access: &JobAccess<AsViewer>, index: &str) -> Result<u32, ApiError> {
    index
        .parse()
        .map_err(|_| ApiError::NotFound(format!("job {} has no task {index}", access.id())))
}

/// The log as text; with `follow=true`, from its start and then what the
/// attempt writes, until it ends.
pub(crate) async fn raw(
    State(s): State<AppState>,
    access: Result<JobAccess<AsViewer>, ApiError>,
    Path((_, index)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Result<Response, UiError> {
    let access = access?;
    let index = task_index(&access, &index)?;
    let stream = q.stream.unwrap_or(Stream::Stdout);
    Ok(crate::handlers::log_response(&s, &access, index, q.attempt, stream, q.follow).await?)
}

/// Both logs of an attempt in the page, as they are now; its script
/// follows them while the attempt runs.
pub(crate) async fn view(
    State(s): State<AppState>,
    caller: Caller,
    access: Result<JobAccess<AsViewer>, ApiError>,
    Path((_, index)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Result<Html<String>, UiError> {
    let access = access?;
    let i = task_index(&access, &index)?;
    let job = access.id().0;
    let text = |bytes: Vec<u8>| escape(&String::from_utf8_lossy(&bytes));
    let out = text(s.service.log(&access, i, q.attempt, Stream::Stdout).await?);
    let err = text(s.service.log(&access, i, q.attempt, Stream::Stderr).await?);
    let attempt = q.attempt.map_or(String::new(), |a| format!("&attempt={a}"));
    let name = s
        .service
        .tasks(&access, i, 1)
        .await?
        .items
        .first()
        .map_or(String::new(), |t| format!(" ({})", escape(&t.record.name)));
    let running = !access.job().state.is_terminal();
    let body = format!(
        r#"<h1>Job <a href="/ui/jobs/{job}">#{job}</a> · task {i}{name} logs</h1>
<p class="muted" id="log-state" data-follow="{running}">{said}</p>
<h2>stdout <a class="action" href="/ui/jobs/{job}/tasks/{i}/logs?stream=stdout{attempt}">raw</a></h2>
<pre class="log" id="stdout" data-src="/ui/jobs/{job}/tasks/{i}/logs?stream=stdout&amp;follow=true{attempt}">{out}</pre>
<h2>stderr <a class="action" href="/ui/jobs/{job}/tasks/{i}/logs?stream=stderr{attempt}">raw</a></h2>
<pre class="log" id="stderr" data-src="/ui/jobs/{job}/tasks/{i}/logs?stream=stderr&amp;follow=true{attempt}">{err}</pre>
<script>{LOG_JS}</script>"#,
        said = if running {
            "Followed live while the attempt runs."
        } else {
            "The job has ended; these are the logs as they were left (the last 1 MiB of each)."
        },
    );
    Ok(page(
        &format!("Job {job} task {i} logs"),
        Some(&caller.user().name),
        &body,
    ))
}
