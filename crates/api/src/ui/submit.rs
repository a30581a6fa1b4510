//! A job spec (YAML or JSON) typed or pasted into a page and submitted to
//! a project: parsed under the API's bounds, submitted through the
//! service, refusals shown above the text with the line they point at, and
//! the text kept.

use super::html::{escape, page};
use super::UiError;
use crate::auth::{AsMember, Caller, ProjectAccess};
use crate::body::spec_from_text;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

const EXAMPLE: &str = "name: hello-flow
tasks:
  - name: split
    action: { kind: command, argv: [echo, split] }
  - name: work
    array: { count: 3 }
    action: { kind: command, argv: [echo, \"part ${array.index}\"] }
    deps: [{ selector: split }]
  - name: merge
    action: { kind: command, argv: [echo, merged] }
    deps: [{ selector: work }]
";

fn form(project: i64, name: &str, text: &str, error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |e| {
        let at = line_of(e)
            .and_then(|n| text.lines().nth(n - 1).map(|l| (n, l)))
            .map_or(String::new(), |(n, l)| {
                format!(
                    r#"<br><span class="muted">line {n}:</span> <code id="spec-line">{}</code>"#,
                    escape(l)
                )
            });
        format!(r#"<p class="error" id="spec-error">{}{at}</p>"#, escape(e))
    });
    format!(
        r#"<h1>Submit a job to {name}</h1>
<p class="muted">A job spec in YAML or JSON (JSON when it starts with <code>{{</code>), as <code>tessera submit</code> takes it; up to 1 MiB from this page.</p>
<form class="card" id="submit-spec" method="post" action="/ui/projects/{project}/submit">{error}
<textarea id="spec" name="spec" rows="18" spellcheck="false" required>{text}</textarea>
<p><button type="submit" id="do-submit">Submit</button></p></form>"#,
        name = escape(name),
        text = escape(text),
    )
}

/// The line an error message points at (`at line N`, `line N`).
fn line_of(message: &str) -> Option<usize> {
    let rest = message.split("line ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&n| n > 0)
}

pub(crate) async fn show(
    caller: Caller,
    access: Result<ProjectAccess<AsMember>, ApiError>,
) -> Result<Html<String>, UiError> {
    let access = access?;
    let p = access.project();
    let body = form(p.id.0, &p.name, EXAMPLE, None);
    Ok(page("Submit a job", Some(&caller.user().name), &body))
}

#[derive(Deserialize)]
pub(crate) struct SpecForm {
    spec: String,
}

pub(crate) async fn submit(
    State(s): State<AppState>,
    caller: Caller,
    access: Result<ProjectAccess<AsMember>, ApiError>,
    Form(f): Form<SpecForm>,
) -> Result<Response, UiError> {
    let access = access?;
    let submitted = match spec_from_text(&s.spec_parses, &s.metrics, f.spec.clone()).await {
        Ok(spec) => s
            .service
            .submit(&access, spec)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match submitted {
        Ok(job) => Ok(Redirect::to(&format!("/ui/jobs/{}", job.id.0)).into_response()),
        Err(e) => {
            let p = access.project();
            let body = form(p.id.0, &p.name, &f.spec, Some(&e.to_string()));
            let page = page("Submit a job", Some(&caller.user().name), &body);
            Ok((e.status(), page).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::line_of;

    #[test]
    fn errors_point_at_their_line() {
        assert_eq!(
            line_of("tasks[0]: unknown field `nme` at line 3 column 5"),
            Some(3)
        );
        assert_eq!(
            line_of("the job spec nests deeper than 64 levels (line 70)"),
            Some(70)
        );
        assert_eq!(line_of("the dependencies form a cycle"), None);
        assert_eq!(line_of("line 0"), None);
    }
}
