//! Authorization lives in the extractors' types: a handler that takes a
//! [`Caller`] needs a valid key, [`Admin`] an admin's key,
//! `ProjectAccess<AsMember>` a member (or owner) of the project named in the
//! path, `JobAccess<AsViewer>` a viewer of the job's project. Admins may do
//! everything. The order of checks is fixed: 401 (no or bad key), then 404
//! (no such project or job), then 403 (it exists but not for you).

use crate::keys::parse_key;
use crate::metrics::Secret;
use crate::state::now_ms;
use crate::{ApiError, AppState};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::marker::PhantomData;
use tessera_store::{JobRecord, KeyRecord, ProjectRecord, UserRecord};
use tessera_types::{JobId, ProjectId, Role};

/// How often a key's `last_used_at` is written, at most.
const TOUCH_EVERY_MS: u64 = 60_000;

/// The authenticated user behind the request's key.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub user: UserRecord,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.user.admin
    }
}

/// Proof that the caller is an admin.
pub(crate) struct Admin;

/// The least role a route needs.
pub(crate) trait Need: Send + Sync + 'static {
    const ROLE: Role;
}
pub(crate) struct AsViewer;
pub(crate) struct AsMember;
pub(crate) struct AsOwner;
impl Need for AsViewer {
    const ROLE: Role = Role::Viewer;
}
impl Need for AsMember {
    const ROLE: Role = Role::Member;
}
impl Need for AsOwner {
    const ROLE: Role = Role::Owner;
}

/// The project named by the path's `{project}` (id or name), which the
/// caller may act on with at least role `R`.
pub(crate) struct ProjectAccess<R> {
    pub caller: Caller,
    pub project: ProjectRecord,
    _need: PhantomData<R>,
}

/// The job named by the path's `{id}`, whose project the caller may act on
/// with at least role `R`.
pub(crate) struct JobAccess<R> {
    pub job: JobRecord,
    _need: PhantomData<R>,
}

fn unauthorized(why: &str) -> ApiError {
    ApiError::Unauthorized(why.to_string())
}

const BAD_KEY: &str =
    "unknown or wrong API key; send a valid key as `Authorization: Bearer tsk_...`";

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            unauthorized("no API key; send one as `Authorization: Bearer tsk_...`")
        })?;
        let key = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <API key>`"))?
            .to_string();
        let caller = authenticate(state, key).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

async fn authenticate(state: &AppState, key: String) -> Result<Caller, ApiError> {
    let prefix = parse_key(&key)
        .ok_or_else(|| unauthorized(BAD_KEY))?
        .to_string();
    let (record, user): (KeyRecord, UserRecord) = state
        .db(move |db| {
            let record = db
                .key_by_prefix(&prefix)?
                .ok_or_else(|| unauthorized(BAD_KEY))?;
            let user = db.user(record.user)?.ok_or_else(|| unauthorized(BAD_KEY))?;
            Ok((record, user))
        })
        .await?;
    if !state.keys.hit(&key, record.id) {
        let right = state
            .keys
            .guard
            .check(state, Secret::UserKey, &record.prefix, &key, &record.hash)
            .await?;
        if !right {
            return Err(unauthorized(BAD_KEY));
        }
        if record.revoked_at.is_none() {
            state.keys.insert(&key, record.id);
        }
    }
    if record.revoked_at.is_some() {
        state.keys.forget(record.id);
        return Err(unauthorized(
            "this API key has been revoked; create a new one (POST /api/v1/keys) with a valid key",
        ));
    }
    let now = now_ms();
    if record
        .last_used_at
        .is_none_or(|t| now.saturating_sub(t) >= TOUCH_EVERY_MS)
    {
        let id = record.id;
        let touched = state.db(move |db| Ok(db.touch_key(id, now)?)).await;
        if let Err(e) = touched {
            eprintln!("tessera-api: could not record the use of key {}: {e}", id.0);
        }
    }
    Ok(Caller { user })
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.is_admin() {
            return Err(ApiError::Forbidden(format!(
                "user {:?} is not an admin; ask an admin to do this",
                caller.user.name
            )));
        }
        Ok(Admin)
    }
}

/// The value of the path parameter `name` (routes guarantee it exists).
async fn path_param(parts: &mut Parts, state: &AppState, name: &str) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::internal(format!("path parameters: {e}")))?;
    params
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .ok_or_else(|| ApiError::internal(format!("route has no {{{name}}} parameter")))
}

/// Checks that `caller` may act with role `need` in `project`.
fn check_role(
    caller: &Caller,
    project: &ProjectRecord,
    role: Option<Role>,
    need: Role,
) -> Result<(), ApiError> {
    if caller.is_admin() || role.is_some_and(|r| r.allows(need)) {
        return Ok(());
    }
    Err(ApiError::Forbidden(match role {
        None => format!(
            "you are not a member of project {:?}; ask one of its owners to add you",
            project.name
        ),
        Some(r) => format!(
            "you are a {r} of project {:?}; this needs {need} or higher",
            project.name
        ),
    }))
}

/// Finds a project by id (canonical decimal) or by name.
pub(crate) fn find_project(
    db: &dyn crate::ApiStore,
    segment: &str,
) -> Result<ProjectRecord, ApiError> {
    let found = match crate::accounts::parse_id(segment) {
        Some(id) => db.project(ProjectId(id))?,
        None => db.project_by_name(segment)?,
    };
    found.ok_or_else(|| ApiError::NotFound(format!("project {segment} does not exist")))
}

impl<R: Need> FromRequestParts<AppState> for ProjectAccess<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let segment = path_param(parts, state, "project").await?;
        let user = caller.user.id;
        let (project, role) = state
            .db(move |db| {
                let project = find_project(db, &segment)?;
                let role = db.role(project.id, user)?;
                Ok((project, role))
            })
            .await?;
        check_role(&caller, &project, role, R::ROLE)?;
        Ok(Self {
            caller,
            project,
            _need: PhantomData,
        })
    }
}

impl<R: Need> FromRequestParts<AppState> for JobAccess<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let segment = path_param(parts, state, "id").await?;
        let id = crate::accounts::parse_id(&segment)
            .map(JobId)
            .ok_or_else(|| ApiError::NotFound(format!("job {segment} does not exist")))?;
        let user = caller.user.id;
        let (job, access) = state
            .db(move |db| {
                let job = db
                    .job(id)?
                    .ok_or_else(|| ApiError::NotFound(format!("job {id} does not exist")))?;
                let access = match job.project {
                    Some(p) => {
                        let project = db.project(p)?.ok_or_else(|| {
                            ApiError::internal(format!("job {id} names missing project {p}"))
                        })?;
                        let role = db.role(p, user)?;
                        Some((project, role))
                    }
                    None => None,
                };
                Ok((job, access))
            })
            .await?;
        match &access {
            Some((project, role)) => check_role(&caller, project, *role, R::ROLE)?,
            None if caller.is_admin() => {}
            None => {
                return Err(ApiError::Forbidden(format!(
                    "job {id} was run outside any project; only admins can see it"
                )))
            }
        }
        Ok(Self {
            job,
            _need: PhantomData,
        })
    }
}
