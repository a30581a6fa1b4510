//! Job control from the job page: cancel, suspend, resume, retry and
//! priority, for the members who may act on the job. The form posts to
//! `/ui/jobs/{id}/control` (same origin only); a refusal (the service's
//! 409s and 422s, in the API's words) is shown above the form on the job
//! page, with what was entered kept.

use super::html::escape;
use super::job::{render, Said};
use super::UiError;
use crate::auth::{AsMember, AsViewer, Caller, JobAccess};
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_service::{Control, ServiceError, PRIORITY_RANGE};
use tessera_store::JobRecord;

#[derive(Deserialize)]
pub(crate) struct ControlForm {
    /// `cancel`, `suspend`, `resume`, `retry` or `priority`.
    action: String,
    #[serde(default)]
    priority: String,
}

/// The controls, as a card of buttons; `said` is a refusal to show.
pub(crate) fn form(job: &JobRecord, said: Option<&Said>) -> String {
    let id = job.id.0;
    let ended = job.state.is_terminal();
    let mut buttons = String::new();
    let button = |action: &str, label: &str, confirm: Option<&str>| {
        let check = confirm.map_or(String::new(), |c| {
            format!(r#" onclick="return confirm('{}')""#, escape(c))
        });
        format!(
            r#"<button type="submit" name="action" value="{action}" id="do-{action}"{check}>{label}</button> "#
        )
    };
    if !ended {
        buttons.push_str(&button(
            "cancel",
            "Cancel job",
            Some(
                "Cancel this job? Its running attempts are killed and nothing of it starts again.",
            ),
        ));
        if job.suspended {
            buttons.push_str(&button("resume", "Resume", None));
        } else {
            buttons.push_str(&button(
                "suspend",
                "Suspend",
                Some("Suspend this job? Its running attempts are stopped until you resume it."),
            ));
        }
    } else if job.state != tessera_types::JobState::Succeeded {
        buttons.push_str(&button(
            "retry",
            "Retry what failed",
            Some("Run again the failed, cancelled and skipped tasks? What succeeded is kept."),
        ));
    }
    let error = said.map_or(String::new(), |s| {
        format!(
            r#"<p class="error" id="control-error">{}</p>"#,
            escape(&s.error)
        )
    });
    let priority = said.map_or_else(|| job.priority.to_string(), |s| s.priority.clone());
    format!(
        r#"<form class="card row" id="control" method="post" action="/ui/jobs/{id}/control">{error}{buttons}<label for="priority">Priority</label>
<input type="number" id="priority" name="priority" min="{min}" max="{max}" value="{priority}">
<button type="submit" name="action" value="priority" id="do-priority">Set priority</button></form>"#,
        priority = escape(&priority),
        min = PRIORITY_RANGE.start(),
        max = PRIORITY_RANGE.end(),
    )
}

pub(crate) async fn submit(
    State(s): State<AppState>,
    caller: Caller,
    viewer: Result<JobAccess<AsViewer>, ApiError>,
    member: Result<JobAccess<AsMember>, ApiError>,
    Form(f): Form<ControlForm>,
) -> Result<Response, UiError> {
    let viewer = viewer?;
    let member = member?;
    let done = match f.action.as_str() {
        "cancel" => s.service.cancel(&member).map(drop),
        "suspend" => control(&s, &member, Control::Suspend).await,
        "resume" => control(&s, &member, Control::Resume).await,
        "retry" => control(&s, &member, Control::Retry).await,
        "priority" => match f.priority.trim().parse::<i32>() {
            Ok(p) => control(&s, &member, Control::Priority(p)).await,
            Err(_) => Err(ServiceError::Invalid(format!(
                "priority {:?} is not a whole number; give {} to {}",
                f.priority,
                PRIORITY_RANGE.start(),
                PRIORITY_RANGE.end()
            ))),
        },
        other => Err(ServiceError::Invalid(format!(
            "{other:?} is not something this page can do to a job"
        ))),
    };
    let id = viewer.id();
    match done {
        Ok(()) => Ok(Redirect::to(&format!("/ui/jobs/{id}")).into_response()),
        Err(e) => {
            let e = ApiError::from(e);
            let status = e.status();
            let said = Said {
                error: e.to_string(),
                priority: f.priority,
            };
            let page = render(&s, &caller, &viewer, true, Some(said)).await?;
            Ok((status, page).into_response())
        }
    }
}

async fn control(
    s: &AppState,
    job: &JobAccess<AsMember>,
    what: Control,
) -> Result<(), ServiceError> {
    s.service.control(job, what).await.map(drop)
}
