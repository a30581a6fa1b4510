//! The router: every route of [`ROUTES`] with its handler, the web UI's
//! pages, the fallbacks, and the layers every request passes (body limit,
//! request deadline, metrics).

use crate::body::BODY_LIMIT;
use crate::metrics::Timeout;
use crate::routes::{streams_body, ROUTES};
use crate::{handlers as h, metrics, ApiError, AppState};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use axum::Router;

/// Bounds the time from a request's headers to its response's headers
/// (except on the routes [`streams_body`] names); past it,
/// a 408.
pub(crate) async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if streams_body(&req) {
        return next.run(req).await;
    }
    let limit = state.limits.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            state.metrics.doors.timed_out(Timeout::Request);
            ApiError::RequestTimeout(format!(
                "the request took longer than {} s from its headers to an answer; send its body \
                 faster, or ask for less at once",
                limit.as_secs()
            ))
            .into_response()
        }
    }
}

/// The handler of a route of [`ROUTES`].
fn endpoint(method: &Method, path: &str) -> MethodRouter<AppState> {
    use routing::{delete, get, post, put};
    match (method.as_str(), path) {
        ("GET", "/healthz") => get(h::healthz),
        ("GET", "/readyz") => get(h::readyz),
        ("GET", "/metrics") => get(h::metrics),
        ("GET", "/api/v1/openapi.json") => get(h::openapi),
        ("GET", "/api/v1/me") => get(h::me),
        ("GET", "/api/v1/users") => get(h::users),
        ("POST", "/api/v1/users") => post(h::create_user),
        ("GET", "/api/v1/projects") => get(h::projects),
        ("POST", "/api/v1/projects") => post(h::create_project),
        ("GET", "/api/v1/projects/{project}") => get(h::project),
        ("GET", "/api/v1/projects/{project}/members") => get(h::members),
        ("PUT", "/api/v1/projects/{project}/members/{user}") => put(h::put_member),
        ("DELETE", "/api/v1/projects/{project}/members/{user}") => delete(h::delete_member),
        ("GET", "/api/v1/keys") => get(h::keys),
        ("POST", "/api/v1/keys") => post(h::create_key),
        ("DELETE", "/api/v1/keys/{id}") => delete(h::revoke_key),
        ("GET", "/api/v1/projects/{project}/quota") => get(h::quota),
        ("PUT", "/api/v1/projects/{project}/quota") => put(h::put_quota),
        ("GET", "/api/v1/projects/{project}/usage") => get(h::usage),
        ("GET", "/api/v1/projects/{project}/jobs") => get(h::jobs),
        ("POST", "/api/v1/projects/{project}/jobs") => {
            post(h::submit).layer(DefaultBodyLimit::max(crate::body::SPEC_LIMIT))
        }
        ("GET", "/api/v1/jobs/{id}") => get(h::job),
        ("GET", "/api/v1/jobs/{id}/tasks") => get(h::tasks),
        ("GET", "/api/v1/jobs/{id}/attempts") => get(h::attempts),
        ("POST", "/api/v1/jobs/{id}/cancel") => post(h::cancel),
        ("POST", "/api/v1/jobs/{id}/suspend") => post(h::suspend),
        ("POST", "/api/v1/jobs/{id}/resume") => post(h::resume),
        ("POST", "/api/v1/jobs/{id}/retry") => post(h::retry),
        ("PUT", "/api/v1/jobs/{id}/priority") => put(h::put_priority),
        ("GET", "/api/v1/jobs/{id}/tasks/{index}/logs") => get(h::logs),
        ("GET", "/api/v1/jobs/{id}/events") => get(h::events),
        ("GET", "/api/v1/projects/{project}/uploads") => get(h::uploads),
        ("POST", "/api/v1/projects/{project}/uploads") => {
            post(h::upload).layer(DefaultBodyLimit::disable())
        }
        ("DELETE", "/api/v1/projects/{project}/uploads/{upload}") => delete(h::delete_upload),
        ("GET", "/api/v1/volumes") => get(h::volumes),
        ("POST", "/api/v1/projects/{project}/encodes") => post(h::encode),
        ("GET", "/api/v1/jobs/{id}/output") => get(h::output),
        ("GET", "/api/v1/jobs/{id}/ladder/{*path}") => get(h::ladder_file),
        ("DELETE", "/api/v1/jobs/{id}/output") => delete(h::delete_output),
        ("GET", "/api/v1/nodes") => get(crate::workers::nodes),
        ("POST", "/api/v1/nodes/{node}/drain") => post(crate::workers::drain),
        ("POST", "/api/v1/nodes/{node}/undrain") => post(crate::workers::undrain),
        ("POST", "/api/v1/workers") => post(crate::workers::register),
        ("POST", "/api/v1/workers/{worker}/lease") => post(crate::workers::lease),
        ("POST", "/api/v1/workers/{worker}/heartbeat") => post(crate::workers::heartbeat),
        ("POST", "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/events") => {
            post(crate::workers::attempt_events)
        }
        ("GET", "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files") => {
            get(crate::workers::download)
        }
        ("PUT", "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files") => {
            put(crate::workers::upload).layer(DefaultBodyLimit::disable())
        }
        ("DELETE", "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files") => {
            delete(crate::workers::remove)
        }
        ("GET", "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files/status") => {
            get(crate::workers::upload_status)
        }
        ("POST", "/api/v1/workers/{worker}/release") => post(crate::workers::release),
        (m, p) => panic!("ROUTES lists {m} {p} but no handler serves it"),
    }
}

/// The whole API as an axum router (for tests: drive it in-process), with
/// the web UI's pages (not REST routes, so not in [`ROUTES`]) merged in.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (method, path, _, _) in ROUTES {
        router = router.route(path, endpoint(method, path));
    }
    for (prefix, nested) in &state.nested {
        router = router.nest_service(prefix, nested.clone());
    }
    router
        .merge(crate::ui::router(state.clone()))
        .fallback(|method: Method, uri: Uri| async move {
            ApiError::NotFound(format!(
                "no route {method} {}; GET /api/v1/openapi.json lists them",
                uri.path()
            ))
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError::MethodNotAllowed(format!(
                "{} does not accept {method}; GET /api/v1/openapi.json lists its methods",
                uri.path()
            ))
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}
