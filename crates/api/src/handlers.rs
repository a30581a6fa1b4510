//! Thin handlers: extract (the extractor authenticates and gets the
//! service's proof of what the caller may do), call the service, return a
//! view.

use crate::auth::{Admin, AsMember, AsOwner, AsViewer, Caller, JobAccess, ProjectAccess};
use crate::body::{JsonBody, QueryArgs, SpecBody};
use crate::views::{
    AttemptView, JobView, KeyView, MeView, MemberView, NewKeyView, NewUserView, ProjectView,
    QuotaView, TaskView, UploadView, UsageView, UserView,
};
use crate::{metrics, openapi, ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_service::{page_limit, Control, EncodeOptions, Page, Stream, UploadItem};
use tessera_types::{KeyId, Quota, Role};

type Answer<T> = Result<Json<T>, ApiError>;
type Created<T> = Result<(StatusCode, Json<T>), ApiError>;

pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(crate) async fn readyz(State(s): State<AppState>) -> Answer<Value> {
    s.service.ready().await.map_err(|e| {
        eprintln!("tessera-api: readiness check failed: {e}");
        ApiError::Unavailable("the database does not answer; see the server's log".into())
    })?;
    Ok(Json(json!({ "status": "ready" })))
}

/// `/metrics` names every project, so it takes an admin's key (Prometheus:
/// `authorization: {credentials_file: ...}`).
pub(crate) async fn metrics(State(s): State<AppState>, a: Admin) -> Result<Response, ApiError> {
    let stats = s.service.stats(&a).await?;
    let text = metrics::render(&stats, &s.metrics);
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

pub(crate) async fn openapi() -> Json<Value> {
    Json(openapi::document())
}

pub(crate) async fn me(State(s): State<AppState>, caller: Caller) -> Answer<MeView> {
    Ok(Json(s.service.me(&caller).await?.into()))
}

pub(crate) async fn users(State(s): State<AppState>, a: Admin) -> Answer<Vec<UserView>> {
    let users = s.service.users(&a).await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
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
    a: Admin,
    JsonBody(body): JsonBody<NewUser>,
) -> Created<NewUserView> {
    let created = s.service.create_user(&a, body.name, body.admin).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

pub(crate) async fn projects(
    State(s): State<AppState>,
    caller: Caller,
) -> Answer<Vec<ProjectView>> {
    let projects = s.service.projects(&caller).await?;
    Ok(Json(
        projects
            .iter()
            .map(|(p, r)| ProjectView::new(p, *r))
            .collect(),
    ))
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
    let project = s.service.create_project(&caller, body.name).await?;
    let view = ProjectView::new(&project, Some(Role::Owner));
    Ok((StatusCode::CREATED, Json(view)))
}

pub(crate) async fn project(access: ProjectAccess<AsViewer>) -> Answer<ProjectView> {
    Ok(Json(ProjectView::new(access.project(), access.role())))
}

pub(crate) async fn members(
    State(s): State<AppState>,
    access: ProjectAccess<AsViewer>,
) -> Answer<Vec<MemberView>> {
    let members = s.service.members(&access).await?;
    Ok(Json(members.iter().map(MemberView::from).collect()))
}

pub(crate) async fn quota(
    State(s): State<AppState>,
    access: ProjectAccess<AsViewer>,
) -> Answer<QuotaView> {
    Ok(Json(s.service.quota(&access).await?.into()))
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
    a: Admin,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<QuotaBody>,
) -> Answer<QuotaView> {
    let q = Quota {
        max_cpu: body.max_cpu,
        max_memory_mb: body.max_memory_mb,
        cpu_ms_per_window: body.cpu_ms_per_window,
    };
    Ok(Json(s.service.set_quota(&a, project, q).await?.into()))
}

pub(crate) async fn usage(
    State(s): State<AppState>,
    access: ProjectAccess<AsViewer>,
) -> Answer<UsageView> {
    Ok(Json(s.service.usage(&access).await?.into()))
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
    let member = s.service.set_member(&access, user, Some(body.role)).await?;
    Ok(Json(member.as_ref().map(MemberView::from)))
}

pub(crate) async fn delete_member(
    State(s): State<AppState>,
    access: ProjectAccess<AsOwner>,
    Path((_, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.service.set_member(&access, user, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn keys(State(s): State<AppState>, caller: Caller) -> Answer<Vec<KeyView>> {
    let keys = s.service.keys(&caller).await?;
    Ok(Json(keys.iter().map(KeyView::from).collect()))
}

pub(crate) async fn create_key(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Named>,
) -> Created<NewKeyView> {
    let key = s.service.create_key(&caller, body.name).await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

pub(crate) async fn revoke_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("key {id} does not exist")))?;
    s.service.revoke_key(&caller, KeyId(id)).await?;
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
    let jobs = s.service.jobs(&access, limit).await?;
    Ok(Json(jobs.iter().map(|j| JobView::new(j, None)).collect()))
}

pub(crate) async fn submit(
    State(s): State<AppState>,
    access: ProjectAccess<AsMember>,
    SpecBody(spec): SpecBody,
) -> Created<JobView> {
    let job = s.service.submit(&access, spec).await?;
    Ok((StatusCode::CREATED, Json(JobView::new(&job, Some(&[])))))
}

pub(crate) async fn job(State(s): State<AppState>, access: JobAccess<AsViewer>) -> Answer<JobView> {
    Ok(Json(JobView::status(&s.service.job_status(&access).await?)))
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
fn paged<T: serde::Serialize>(uri: &Uri, limit: u32, page: Page<T>) -> Response {
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
    let (offset, limit) = (q.offset.unwrap_or(0), page_limit(q.limit));
    let page = s.service.tasks(&access, offset, limit).await?;
    let page = Page {
        items: page.items.iter().map(TaskView::from).collect::<Vec<_>>(),
        next_offset: page.next_offset,
    };
    Ok(paged(&uri, limit, page))
}

pub(crate) async fn attempts(
    State(s): State<AppState>,
    access: JobAccess<AsViewer>,
    uri: Uri,
    QueryArgs(q): QueryArgs<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = (q.offset.unwrap_or(0), page_limit(q.limit));
    let page = s.service.attempts(&access, offset, limit).await?;
    let page = Page {
        items: page.items.iter().map(AttemptView::from).collect::<Vec<_>>(),
        next_offset: page.next_offset,
    };
    Ok(paged(&uri, limit, page))
}

pub(crate) async fn cancel(
    State(s): State<AppState>,
    access: JobAccess<AsMember>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let job = s.service.cancel(&access)?;
    Ok((StatusCode::ACCEPTED, Json(JobView::new(&job, None))))
}

async fn control(s: &AppState, access: &JobAccess<AsMember>, what: Control) -> Answer<JobView> {
    Ok(Json(JobView::status(
        &s.service.control(access, what).await?,
    )))
}

pub(crate) async fn suspend(
    State(s): State<AppState>,
    access: JobAccess<AsMember>,
) -> Answer<JobView> {
    control(&s, &access, Control::Suspend).await
}

pub(crate) async fn resume(
    State(s): State<AppState>,
    access: JobAccess<AsMember>,
) -> Answer<JobView> {
    control(&s, &access, Control::Resume).await
}

pub(crate) async fn retry(
    State(s): State<AppState>,
    access: JobAccess<AsMember>,
) -> Answer<JobView> {
    control(&s, &access, Control::Retry).await
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
    control(&s, &access, Control::Priority(body.priority)).await
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
        .map_err(|_| ApiError::NotFound(format!("job {} has no task {index}", access.id())))?;
    let stream = q.stream.unwrap_or(Stream::Stdout);
    log_response(&s, &access, index, q.attempt, stream, q.follow).await
}

/// An attempt's log as text (never as HTML: the bytes are the task's), or
/// with `follow`, from its start and then what it writes until it ends.
/// The REST API's route and the web UI's serve it alike.
pub(crate) async fn log_response(
    s: &AppState,
    access: &JobAccess<AsViewer>,
    index: u32,
    attempt: Option<u32>,
    stream: Stream,
    follow: bool,
) -> Result<Response, ApiError> {
    if follow {
        let log = s.service.follow_log(access, index, attempt, stream).await?;
        return Ok(crate::events::followed_log(log));
    }
    let bytes = s.service.log(access, index, attempt, stream).await?;
    let headers = [
        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    Ok((headers, bytes).into_response())
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
) -> Created<UploadView> {
    let upload = crate::upload::accept(&s, &access, q.name, req).await?;
    Ok((StatusCode::CREATED, Json(upload.into())))
}

pub(crate) async fn uploads(
    State(s): State<AppState>,
    access: ProjectAccess<AsViewer>,
) -> Answer<Vec<UploadItem>> {
    Ok(Json(s.service.uploads(&access).await?))
}

pub(crate) async fn delete_upload(
    State(s): State<AppState>,
    access: ProjectAccess<AsMember>,
    Path((_, upload)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.service.delete_upload(&access, &upload).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn volumes(State(s): State<AppState>, caller: Caller) -> Answer<Vec<Value>> {
    let names = s.service.volume_names(&caller);
    Ok(Json(names.iter().map(|n| json!({ "name": n })).collect()))
}

pub(crate) async fn encode(
    State(s): State<AppState>,
    access: ProjectAccess<AsMember>,
    JsonBody(body): JsonBody<EncodeOptions>,
) -> Created<JobView> {
    let job = s.service.encode(&access, body).await?;
    Ok((StatusCode::CREATED, Json(JobView::new(&job, Some(&[])))))
}

/// An encode's output, with range requests.
pub(crate) async fn output(
    State(s): State<AppState>,
    access: JobAccess<AsViewer>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let out = s.service.output(&access).await?;
    crate::range::serve_file(&out.path, out.content_type, &out.name, &headers).await
}

/// A file of a ladder encode's published folder, with range requests.
pub(crate) async fn ladder_file(
    State(s): State<AppState>,
    access: JobAccess<AsViewer>,
    Path((_, path)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    ladder_response(&s, &access, &path, &headers).await
}

/// Serves `path` of the job's ladder inline (players fetch it; the API and
/// the web UI share this).
pub(crate) async fn ladder_response(
    s: &AppState,
    access: &JobAccess<AsViewer>,
    path: &str,
    headers: &axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let f = s.service.ladder_file(access, path).await?;
    let shown = std::path::PathBuf::from(&f.path);
    let name = f.path.rsplit('/').next().unwrap_or("ladder").to_string();
    let file = tokio::fs::File::from_std(f.file);
    let mut r = crate::range::serve_opened(file, &shown, f.content_type, &name, headers).await?;
    r.headers_mut().insert(
        axum::http::header::CONTENT_DISPOSITION,
        axum::http::HeaderValue::from_static("inline"),
    );
    Ok(r)
}

pub(crate) async fn delete_output(
    State(s): State<AppState>,
    access: JobAccess<AsMember>,
) -> Result<StatusCode, ApiError> {
    s.service.delete_output(&access).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn events(State(s): State<AppState>, access: JobAccess<AsViewer>) -> Response {
    crate::events::job_events(&s, &access)
}
