//! An upload from an HTTP request: the raw body, or the part named `file`
//! of a `multipart/form-data` body, handed to the service chunk by chunk
//! as it arrives (an [`Incoming`], the service's `Source`).

use crate::auth::ProjectAccess;
use crate::form::{self, Form};
use crate::incoming::Incoming;
use crate::{ApiError, AppState};
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use tessera_service::{MayAct, Upload};

/// A 413 naming the server's upload limit.
pub(crate) fn too_large(state: &AppState) -> ApiError {
    crate::incoming::too_large(state.service.max_upload_bytes())
}

/// `e`, with the server's upload limit if it is a 413.
pub(crate) fn with_limit(state: &AppState, e: ApiError) -> ApiError {
    match e {
        ApiError::PayloadTooLarge { .. } => too_large(state),
        other => other,
    }
}

/// The declared body length is checked before anything is read: over the
/// upload limit (plus [`FORM_OVERHEAD`] for a form) is a 413 at once.
pub(crate) fn check_declared(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let declared: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let slack = if form::is_multipart(headers) {
        form::FORM_OVERHEAD as u64
    } else {
        0
    };
    if declared.is_some_and(|n| n > state.service.max_upload_bytes().saturating_add(slack)) {
        return Err(too_large(state));
    }
    Ok(())
}

/// Streams `incoming` to a new upload of the project (see
/// [`tessera_service::Service::upload`]).
pub(crate) async fn receive<R: MayAct>(
    state: &AppState,
    project: &ProjectAccess<R>,
    name: Option<&str>,
    incoming: Incoming<'_>,
) -> Result<Upload, ApiError> {
    let upload = state.service.upload(project, name, incoming).await;
    upload.map_err(|e| with_limit(state, e))
}

/// An upload from a whole request: the raw body, or the part named `file`
/// of a `multipart/form-data` body. `name` (the query's) wins over the
/// part's file name.
pub(crate) async fn accept<R: MayAct>(
    state: &AppState,
    project: &ProjectAccess<R>,
    name: Option<String>,
    req: Request,
) -> Result<Upload, ApiError> {
    check_declared(state, req.headers())?;
    if !form::is_multipart(req.headers()) {
        let body = Incoming::Body(req.into_body());
        return receive(state, project, name.as_deref(), body).await;
    }
    let mut form = Form::from_request(state, req).await?;
    let file_data = form.file_data();
    while let Some(mut field) = form.next().await.map_err(|e| with_limit(state, e))? {
        if field.name() == Some("file") {
            let name = name.or_else(|| field.file_name().map(str::to_owned));
            let part = Incoming::Part(Box::new(field), file_data);
            return receive(state, project, name.as_deref(), part).await;
        }
        // Another field: read and dropped, within the form's limits.
        form::skip(&mut field).await?;
    }
    Err(ApiError::BadRequest(
        "the multipart body has no part named `file`; send the video in a part named file".into(),
    ))
}
