//! An upload's bytes as they arrive over HTTP: a request body, or a form's
//! file part. An [`Incoming`] is the service's [`Source`]: the service
//! writes it to disk chunk by chunk, and its read errors (an interrupted
//! or idle body, a malformed form) come back as they were.

use crate::form;
use crate::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::multipart::Field;
use tessera_service::Source;

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
                let frame = frame.map_err(|e| match crate::serve::stall::is_body_idle(&e) {
                    Some(idle) => {
                        ApiError::RequestTimeout(crate::serve::stall::body_idle_message(idle))
                    }
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

/// A 413 naming the upload limit, `limit` bytes.
pub(crate) fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge {
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    }
}
