//! An upload from an HTTP request: the raw body, or the part named `file`
//! of a `multipart/form-data` body, handed to the service chunk by chunk
//! as it arrives ([`Incoming`] is the service's [`Source`]).

use crate::auth::ProjectAccess;
use crate::form::{self, Form};
use crate::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::multipart::Field;
use axum::extract::Request;
use tessera_service::{MayAct, Source, Upload};

/// Where an upload's bytes come from.
pub(crate) enum Incoming<'a> {
    Body(Body),
    /// A form's file part (its bytes counted as the file's).
    Part(Box<Field<'a>>, form::FileData),
}

impl Incoming<'_> {
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        match self {
            Self::Body(body) => loop {
                let frame = std::future::poll_fn(|cx| {
                    http_body::Body::poll_frame(std::pin::Pin::new(&mut *body), cx)
                })
                .await;
                let Some(frame) = frame else {
                    return Ok(None);
                };
                let frame = frame.map_err(|e| match crate::serve::is_body_idle(&e) {
                    Some(idle) => ApiError::RequestTimeout(crate::serve::body_idle_message(idle)),
                    None => ApiError::BadRequest(format!("the upload was interrupted: {e}")),
                })?;
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            },
            Self::Part(field, file) => {
                let chunk = field.chunk().await.map_err(form::multipart_error)?;
                file.read(chunk.as_ref().map_or(0, Bytes::len));
                Ok(chunk)
            }
        }
    }
}

impl Source for Incoming<'_> {
    type Error = ApiError;
    type Chunk = Bytes;

    fn next_chunk(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<Bytes>, ApiError>> + Send {
        Incoming::next_chunk(self)
    }
}

pub(crate) fn too_large(state: &AppState) -> ApiError {
    ApiError::PayloadTooLarge {
        limit: usize::try_from(state.service.max_upload_bytes()).unwrap_or(usize::MAX),
    }
}

/// `e`, with the server's upload limit if it is a 413.
pub(crate) fn with_limit(state: &AppState, e: ApiError) -> ApiError {
    match e {
        ApiError::PayloadTooLarge { .. } => too_large(state),
        other => other,
    }
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
    form::check_declared(state, req.headers())?;
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
