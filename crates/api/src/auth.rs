//! The extractors that authenticate a request and ask the service for the
//! proof its route needs; the service decides (see
//! [`tessera_service::access`]). A handler that takes a [`Caller`] needs a
//! valid key, [`Admin`] an admin's key, `ProjectAccess<AsMember>` a member
//! (or owner) of the project named in the path, `JobAccess<AsViewer>` a
//! viewer of the job's project. They run before the body is read, so the
//! order of answers is fixed: 401 (no or bad key), then 404 (no such
//! project or job), then 403 (it exists but not for you), then whatever
//! the body is refused for.

use crate::{ApiError, AppState};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
pub(crate) use tessera_service::{
    Admin, AsMember, AsOwner, AsViewer, Caller, JobAccess, Need, ProjectAccess,
};

fn unauthorized(why: &str) -> ApiError {
    ApiError::Unauthorized(why.to_string())
}

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
        let caller = state.service.authenticate(&key).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(caller.admin()?)
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

/// The project of the path's `{project}` (id or name).
impl<R: Need> FromRequestParts<AppState> for ProjectAccess<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let segment = path_param(parts, state, "project").await?;
        Ok(state.service.project(&caller, &segment).await?)
    }
}

/// The job of the path's `{id}`.
impl<R: Need> FromRequestParts<AppState> for JobAccess<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let segment = path_param(parts, state, "id").await?;
        Ok(state.service.job(&caller, &segment).await?)
    }
}
