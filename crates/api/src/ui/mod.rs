//! The web UI: server-rendered HTML pages under `/ui`, readable without
//! JavaScript; the job page polls a small JSON document to update its state
//! badges live.
//!
//! A browser logs in with an API key (checked exactly as the REST API checks
//! a bearer key) and gets a session cookie ([`session`]). The gate in front
//! of every page turns the session into the same `Caller` the REST
//! extractors look for, so pages get the same proofs from the service
//! (`JobAccess`/`ProjectAccess`) and read through the same service calls;
//! no page reads a store.
//! Pages are not REST routes: they are not in `ROUTES` nor in the OpenAPI
//! document.
//!
//! | route | page |
//! | --- | --- |
//! | `GET /` | redirects to `/ui` |
//! | `GET, POST /ui/login`, `POST /ui/logout` | login form, session start and end |
//! | `GET /ui` | dashboard: projects, recent jobs, counts, throughput chart |
//! | `GET /ui/jobs/{id}` | job: DAG, timeline, tasks, log links |
//! | `GET, POST /ui/projects/{project}/submit` | submit a YAML or JSON job spec typed into the page (members; same origin) |
//! | `POST /ui/projects/{project}/members` | add a member, change a role, remove (owners; same origin) |
//! | `POST /ui/jobs/{id}/output/delete`, `POST /ui/projects/{project}/uploads/{upload}/delete` | delete an output, an upload (members; same origin) |
//! | `POST /ui/nodes/drain` | drain or undrain a node (admins; same origin) |
//! | `POST /ui/keys`, `POST /ui/keys/{id}/revoke` | create a key (shown once), revoke one (same origin) |
//! | `POST /ui/jobs/{id}/control` | cancel, suspend, resume, retry, priority (members; same origin) |
//! | `GET /ui/jobs/{id}/state.json` | job and task states, for live updates |
//! | `GET /ui/jobs/{id}/parts.json` | the job page's graph, timeline and task table, redrawn for live updates |
//! | `GET /ui/jobs/{id}/events` | the job's events (Server-Sent Events), for live updates |
//! | `GET /ui/jobs/{id}/tasks/{index}/logs` | an attempt's log as text (`follow=true`: until it ends) |
//! | `GET /ui/jobs/{id}/tasks/{index}/log` | a page with an attempt's stdout and stderr, followed live |
//! | `GET /ui/projects/{project}` | members, the user's keys, jobs |
//! | `GET, POST /ui/projects/{project}/encode` | submit an encode (upload, earlier upload or volume file) |
//! | `POST /ui/projects/{project}/uploads` | the page's upload by script (the API's upload, through the session) |
//! | `GET /ui/jobs/{id}/output` | an encode's output (range requests) |
//! | `GET /ui/jobs/{id}/ladder/{*path}` | a file of a ladder encode's folder, for the page's player (range requests) |

mod chart;
mod control;
mod dag;
mod encode;
mod gantt;
mod html;
mod job;
mod ladder;
mod login;
mod logs;
mod manage;
mod nodes;
mod pages;
mod session;
mod submit;
mod video;

use crate::{ApiError, AppState};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use session::{SessionId, Sessions};
use std::sync::Arc;

/// The UI's routes, to merge into the API's router.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    let sessions = Arc::new(Sessions::default());
    let gate = Gate {
        state,
        sessions: sessions.clone(),
    };
    Router::new()
        .route("/ui", get(pages::dashboard))
        .route("/ui/projects/{project}", get(pages::project))
        .route(
            "/ui/projects/{project}/encode",
            get(encode::form).merge(
                post(encode::submit)
                    .layer(DefaultBodyLimit::disable())
                    .layer(middleware::from_fn(encode::same_origin)),
            ),
        )
        .route(
            "/ui/projects/{project}/uploads",
            post(crate::handlers::upload)
                .layer(DefaultBodyLimit::disable())
                .layer(middleware::from_fn(encode::same_origin)),
        )
        .route("/ui/jobs/{id}/output", get(encode::download))
        .route("/ui/jobs/{id}/ladder/{*path}", get(encode::ladder))
        .route(
            "/ui/projects/{project}/submit",
            get(submit::show)
                .merge(post(submit::submit).layer(middleware::from_fn(encode::same_origin))),
        )
        .route(
            "/ui/projects/{project}/members",
            post(manage::member).layer(middleware::from_fn(encode::same_origin)),
        )
        .route(
            "/ui/keys",
            post(manage::create_key).layer(middleware::from_fn(encode::same_origin)),
        )
        .route(
            "/ui/keys/{id}/revoke",
            post(manage::revoke_key).layer(middleware::from_fn(encode::same_origin)),
        )
        .route(
            "/ui/jobs/{id}/output/delete",
            post(manage::delete_output).layer(middleware::from_fn(encode::same_origin)),
        )
        .route(
            "/ui/projects/{project}/uploads/{upload}/delete",
            post(manage::delete_upload).layer(middleware::from_fn(encode::same_origin)),
        )
        .route("/ui/jobs/{id}", get(job::show))
        .route(
            "/ui/jobs/{id}/control",
            post(control::submit).layer(middleware::from_fn(encode::same_origin)),
        )
        .route("/ui/nodes", get(nodes::show))
        .route(
            "/ui/nodes/drain",
            post(nodes::drain).layer(middleware::from_fn(encode::same_origin)),
        )
        .route("/ui/jobs/{id}/state.json", get(job::state_json))
        .route("/ui/jobs/{id}/parts.json", get(job::parts_json))
        .route("/ui/jobs/{id}/events", get(job::events))
        .route("/ui/jobs/{id}/tasks/{index}/logs", get(logs::raw))
        .route("/ui/jobs/{id}/tasks/{index}/log", get(logs::view))
        .route("/ui/logout", post(login::logout))
        .route_layer(middleware::from_fn_with_state(gate, require_session))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/", get(|| async { Redirect::to("/ui") }))
        .layer(Extension(sessions))
}

#[derive(Clone)]
struct Gate {
    state: AppState,
    sessions: Arc<Sessions>,
}

/// Lets a request through only with a live session whose key is still
/// valid; it then carries the session's `Caller` and [`SessionId`].
async fn require_session(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let Some(id) = session::from_cookies(req.headers()) else {
        return to_login();
    };
    let Some(session) = gate.sessions.get(&id) else {
        return to_login();
    };
    let found = gate
        .state
        .service
        .session_caller(session.user, session.key_prefix.clone())
        .await;
    match found {
        Ok(Some(caller)) => {
            req.extensions_mut().insert(caller);
            req.extensions_mut().insert(SessionId(id));
            next.run(req).await
        }
        Ok(None) => {
            gate.sessions.remove(&id);
            to_login()
        }
        Err(e) => UiError::from(e).into_response(),
    }
}

fn to_login() -> Response {
    Redirect::to("/ui/login").into_response()
}

/// An [`ApiError`] shown as a page (401 sends the browser to the login).
pub(crate) struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<tessera_service::ServiceError> for UiError {
    fn from(e: tessera_service::ServiceError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let message = match &self.0 {
            ApiError::Unauthorized(_) => return to_login(),
            ApiError::Internal(detail) => {
                eprintln!("tessera-api: internal error: {detail}");
                "internal error; the server's log has the details".to_string()
            }
            other => other.to_string(),
        };
        let status = self.0.status();
        let body = format!(
            r#"<h1>{}</h1><p class="error">{}</p><p><a href="/ui">Back to the dashboard</a></p>"#,
            status.as_u16(),
            html::escape(&message)
        );
        (status, html::page(status.as_str(), None, &body)).into_response()
    }
}
