//! Thin handlers: extract (the extractor's type authorizes), call a
//! service, return a view.

use crate::auth::{Admin, AsMember, AsOwner, AsViewer, Caller, JobAccess, ProjectAccess};
use crate::body::{JsonBody, QueryArgs, SpecBody};
use crate::control::{self, Control};
use crate::jobs::Stream;
use crate::views::{
    AttemptView, JobView, KeyView, MeView, MemberView, NewKeyView, NewUserView, ProjectView,
    QuotaView, TaskView, UsageView, UserView,
};
use crate::{accounts, jobs, metrics, openapi, quota, ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_types::{Quota, Role};

type Answer<T> = Result<Json<T>, ApiError>;
type Created<T> = Result<(StatusCode, Json<T>), ApiError>;

pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(crate) async fn readyz(State(s): State<AppState>) -> Answer<Value> {
    s.db(|db| Ok(db.recent_jobs(1)?)).await.map_err(|e| {
        eprintln!("tessera-api: readiness check failed: {e}");
        ApiError::Unavailable("the database does not answer; see the server's log".into())
    })?;
    Ok(Json(json!({ "status": "ready" })))
}

/// `/metrics` names every project, so it takes an admin's key (Prometheus:
/// `authorization: {credentials_file: ...}`).
pub(crate) async fn metrics(State(s): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let text = metrics::render(&s).await?;
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

pub(crate) async fn openapi() -> Json<Value> {
    Json(openapi::document())
}

pub(crate) async fn me(State(s): State<AppState>, caller: Caller) -> Answer<MeView> {
    Ok(Json(accounts::me(&s, caller).await?))
}

pub(crate) async fn users(State(s): State<AppState>, _: Admin) -> Answer<Vec<UserView>> {
    Ok(Json(accounts::users(&s).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    name: String,
    #[serde(default)]
    admin: bool,
}

pub(crate) async fn create_user(
    State(s): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<NewUser>,
) -> Created<NewUserView> {
    let created = accounts::create_user(&s, body.name, body.admin).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(crate) async fn projects(
    State(s): State<AppState>,
    caller: Caller,
) -> Answer<Vec<ProjectView>> {
    Ok(Json(accounts::projects(&s, caller).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Named {
    name: String,
}

pub(crate) async fn create_project(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Named>,
) -> Created<ProjectView> {
    let project = accounts::create_project(&s, caller, body.name).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

pub(crate) async fn project(
    State(s): State<AppState>,
    access: ProjectAccess<AsViewer>,
) -> Answer<ProjectView> {
    Ok(Json(
        accounts::project_view(&s, access.caller, access.project).await?,
    ))
}

pub(crate) async fn members(
    State(s): State<AppState>,
    access: ProjectAccess<AsViewer>,
) -> Answer<Vec<MemberView>> {
    Ok(Json(accounts::members(&s, access.project).await?))
}

pub(crate) async fn quota(
    State(s): State<AppState>,
    access: ProjectAccess<AsViewer>,
) -> Answer<QuotaView> {
    Ok(Json(quota::get(&s, access.project).await?))
}

/// A whole quota: a limit left out or `null` is unlimited.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuotaBody {
    #[serde(default)]
    max_cpu: Option<u32>,
    #[serde(default)]
    max_memory_mb: Option<u64>,
    #[serde(default)]
    cpu_ms_per_window: Option<u64>,
}

pub(crate) async fn put_quota(
    State(s): State<AppState>,
    _: Admin,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<QuotaBody>,
) -> Answer<QuotaView> {
    let q = Quota {
        max_cpu: body.max_cpu,
        max_memory_mb: body.max_memory_mb,
        cpu_ms_per_window: body.cpu_ms_per_window,
    };
    Ok(Json(quota::set(&s, project, q).await?))
}

pub(crate) async fn usage(
    State(s): State<AppState>,
    access: ProjectAccess<AsViewer>,
) -> Answer<UsageView> {
    Ok(Json(quota::usage(&s, access.project).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    role: Role,
}

pub(crate) async fn put_member(
    State(s): State<AppState>,
    access: ProjectAccess<AsOwner>,
    Path((_, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<RoleBody>,
) -> Answer<Option<MemberView>> {
    let member = accounts::set_member(&s, access.project, user, Some(body.role)).await?;
    Ok(Json(member))
}

pub(crate) async fn delete_member(
    State(s): State<AppState>,
    access: ProjectAccess<AsOwner>,
    Path((_, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    accounts::set_member(&s, access.project, user, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn keys(State(s): State<AppState>, caller: Caller) -> Answer<Vec<KeyView>> {
    Ok(Json(accounts::keys(&s, caller).await?))
}

pub(crate) async fn create_key(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Named>,
) -> Created<NewKeyView> {
    let key = accounts::create_key(&s, caller, body.name).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

pub(crate) async fn revoke_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("key {id} does not exist")))?;
    accounts::revoke_key(&s, caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    limit: Option<u32>,
}

pub(crate) async fn jobs(
    State(s): State<AppState>,
    access: ProjectAccess<AsViewer>,
    QueryArgs(q): QueryArgs<ListQuery>,
) -> Answer<Vec<JobView>> {
    let limit = q.limit.unwrap_or(100);
    Ok(Json(jobs::list(&s, access.project, limit).await?))
}

pub(crate) async fn submit(
    State(s): State<AppState>,
    access: ProjectAccess<AsMember>,
    SpecBody(spec): SpecBody,
) -> Created<JobView> {
    let job = jobs::submit(&s, access.project, spec).await?;
    Ok((StatusCode::CREATED, Json(job)))
}

pub(crate) async fn job(State(s): State<AppState>, access: JobAccess<AsViewer>) -> Answer<JobView> {
    Ok(Json(jobs::view(&s, access.job).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    offset: Option<u32>,
    limit: Option<u32>,
}

/// A page as a plain JSON array; when another page follows, a
/// `Link: <...?offset=N&limit=L>; rel="next"` header names it and
/// `X-Next-Offset: N` gives its offset alone.
fn paged<T: serde::Serialize>(uri: &Uri, limit: u32, page: jobs::Page<T>) -> Response {
    let mut response = Json(page.items).into_response();
    if let Some(next) = page.next_offset {
        let link = format!("<{}?offset={next}&limit={limit}>; rel=\"next\"", uri.path());
        let headers = response.headers_mut();
        if let Ok(link) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, link);
        }
        headers.insert("x-next-offset", HeaderValue::from(next));
    }
    response
}

pub(crate) async fn tasks(
    State(s): State<AppState>,
    access: JobAccess<AsViewer>,
    uri: Uri,
    QueryArgs(q): QueryArgs<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = (q.offset.unwrap_or(0), jobs::page_limit(q.limit));
    let page = jobs::tasks(&s, access.job, offset, limit).await?;
    Ok(paged::<TaskView>(&uri, limit, page))
}

pub(crate) async fn attempts(
    State(s): State<AppState>,
    access: JobAccess<AsViewer>,
    uri: Uri,
    QueryArgs(q): QueryArgs<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = (q.offset.unwrap_or(0), jobs::page_limit(q.limit));
    let page = jobs::attempts(&s, access.job, offset, limit).await?;
    Ok(paged::<AttemptView>(&uri, limit, page))
}

pub(crate) async fn cancel(
    State(s): State<AppState>,
    access: JobAccess<AsMember>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(jobs::cancel(&s, &access.job)?)))
}

pub(crate) async fn suspend(
    State(s): State<AppState>,
    access: JobAccess<AsMember>,
) -> Answer<JobView> {
    Ok(Json(
        control::control(&s, access.job, Control::Suspend).await?,
    ))
}

pub(crate) async fn resume(
    State(s): State<AppState>,
    access: JobAccess<AsMember>,
) -> Answer<JobView> {
    Ok(Json(
        control::control(&s, access.job, Control::Resume).await?,
    ))
}

pub(crate) async fn retry(
    State(s): State<AppState>,
    access: JobAccess<AsMember>,
) -> Answer<JobView> {
    Ok(Json(
        control::control(&s, access.job, Control::Retry).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PriorityBody {
    priority: i32,
}

pub(crate) async fn put_priority(
    State(s): State<AppState>,
    access: JobAccess<AsMember>,
    JsonBody(body): JsonBody<PriorityBody>,
) -> Answer<JobView> {
    let what = Control::Priority(body.priority);
    Ok(Json(control::control(&s, access.job, what).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogQuery {
    attempt: Option<u32>,
    stream: Option<Stream>,
    /// Keep the response open and send what the attempt writes until it ends.
    #[serde(default)]
    follow: bool,
}

pub(crate) async fn logs(
    State(s): State<AppState>,
    access: JobAccess<AsViewer>,
    Path((_, index)): Path<(String, String)>,
    QueryArgs(q): QueryArgs<LogQuery>,
) -> Result<Response, ApiError> {
    let index = index
        .parse()
        .map_err(|_| ApiError::NotFound(format!("job {} has no task {index}", access.job.id)))?;
    let stream = q.stream.unwrap_or(Stream::Stdout);
    if q.follow {
        return crate::events::follow_log(s, access.job, index, q.attempt, stream).await;
    }
    let bytes = jobs::log(&s, access.job, index, q.attempt, stream).await?;
    let content_type = "text/plain; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    name: Option<String>,
}

pub(crate) async fn upload(
    State(s): State<AppState>,
    access: ProjectAccess<AsMember>,
    QueryArgs(q): QueryArgs<UploadQuery>,
    req: axum::extract::Request,
) -> Created<crate::uploads::UploadView> {
    let view = crate::uploads::accept(&s, access.project, q.name, req).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub(crate) async fn uploads(
    State(s): State<AppState>,
    access: ProjectAccess<AsViewer>,
) -> Answer<Vec<crate::uploads::UploadItem>> {
    Ok(Json(crate::uploads::list(&s, &access.project).await?))
}

pub(crate) async fn delete_upload(
    State(s): State<AppState>,
    access: ProjectAccess<AsMember>,
    Path((_, upload)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    crate::uploads::delete(&s, &access.project, &upload).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn volumes(State(s): State<AppState>, _: Caller) -> Answer<Vec<Value>> {
    Ok(Json(
        s.volumes.names().map(|n| json!({ "name": n })).collect(),
    ))
}

pub(crate) async fn encode(
    State(s): State<AppState>,
    access: ProjectAccess<AsMember>,
    JsonBody(body): JsonBody<crate::encodes::EncodeOptions>,
) -> Created<JobView> {
    let job = crate::encodes::encode(&s, access.project, body).await?;
    Ok((StatusCode::CREATED, Json(job)))
}

pub(crate) async fn output(
    State(s): State<AppState>,
    access: JobAccess<AsViewer>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    crate::encodes::output(&s, &access.job, &headers).await
}

pub(crate) async fn delete_output(
    State(s): State<AppState>,
    access: JobAccess<AsMember>,
) -> Result<StatusCode, ApiError> {
    crate::encodes::delete_output(&s, &access.job).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn events(State(s): State<AppState>, access: JobAccess<AsViewer>) -> Response {
    crate::events::job_events(s, access.job).await
}
