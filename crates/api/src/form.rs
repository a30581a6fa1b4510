//! `multipart/form-data` bodies (the upload route's multipart form, the
//! encode page's form), held to limits besides their one file:
//!
//! - at most [`FORM_PARTS`] parts, the file's included;
//! - at most [`FORM_BYTES`] bytes of everything but the file's data
//!   (boundaries, part headers, the other fields' values), counted as the
//!   body arrives, so a part header that never ends or a field of
//!   gigabytes is refused (413) after that many bytes, never buffered;
//! - a text field at most [`FIELD_BYTES`] (see [`text`]).
//!
//! The file's data is limited by `max_upload_bytes` where it is written
//! ([`crate::uploads`]).

use crate::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, HeaderMap, StatusCode};
use http_body::Frame;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// Parts of a form at most, its file included. The encode page sends 8.
pub(crate) const FORM_PARTS: usize = 16;
/// Bytes of a form besides its file's data at most: 16 parts of a
/// 4 KiB value with their headers and boundaries.
pub(crate) const FORM_BYTES: usize = 96 << 10;
/// Bytes of one text field at most.
pub(crate) const FIELD_BYTES: usize = 4 << 10;

/// What the form's body may still carry outside its file.
#[derive(Default)]
struct Budget {
    /// True while the file's data is being read: it does not count.
    in_file: AtomicBool,
    used: AtomicUsize,
}

/// The error a form's body ends with past [`FORM_BYTES`].
#[derive(Debug)]
struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a form may hold at most {FORM_BYTES} bytes besides its file (fields, part headers); \
             send less"
        )
    }
}

impl std::error::Error for OverBudget {}

/// A request body that counts what passes outside the file.
struct Counted {
    inner: Body,
    budget: Arc<Budget>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            let len = frame.data_ref().map_or(0, Bytes::len);
            if !self.budget.in_file.load(Ordering::Relaxed) {
                let used = self.budget.used.fetch_add(len, Ordering::Relaxed) + len;
                if used > FORM_BYTES {
                    return Poll::Ready(Some(Err(Box::new(OverBudget))));
                }
            }
        }
        polled.map(|f| f.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A form being read, part by part.
pub(crate) struct Form {
    multipart: Multipart,
    budget: Arc<Budget>,
    parts: usize,
}

/// Marks where a form's file data is read (see [`FileData::begin`]).
pub(crate) struct FileData(Arc<Budget>);

impl FileData {
    /// The form's bytes are the file's, and do not count, until the
    /// returned mark is dropped.
    pub(crate) fn begin(&self) -> InFile {
        self.0.in_file.store(true, Ordering::Relaxed);
        InFile(self.0.clone())
    }
}

/// While alive, the form's bytes are the file's and do not count.
pub(crate) struct InFile(Arc<Budget>);

impl Drop for InFile {
    fn drop(&mut self) {
        self.0.in_file.store(false, Ordering::Relaxed);
    }
}

impl Form {
    pub(crate) async fn from_request(state: &AppState, req: Request) -> Result<Self, ApiError> {
        let budget = Arc::<Budget>::default();
        let counting = budget.clone();
        let req = req.map(|inner| {
            Body::new(Counted {
                inner,
                budget: counting,
            })
        });
        let multipart = Multipart::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        Ok(Self {
            multipart,
            budget,
            parts: 0,
        })
    }

    /// The next part; a 413 past [`FORM_PARTS`].
    pub(crate) async fn next(&mut self) -> Result<Option<Field<'_>>, ApiError> {
        let field = self.multipart.next_field().await.map_err(multipart_error)?;
        if field.is_some() {
            self.parts += 1;
            if self.parts > FORM_PARTS {
                return Err(ApiError::TooLarge(format!(
                    "a form may hold at most {FORM_PARTS} parts; send fewer fields"
                )));
            }
        }
        Ok(field)
    }

    /// What marks the file's data (it does not borrow the form).
    pub(crate) fn file_data(&self) -> FileData {
        FileData(self.budget.clone())
    }
}

/// A text field's value, at most [`FIELD_BYTES`].
pub(crate) async fn text(field: &mut Field<'_>) -> Result<String, ApiError> {
    let name = field.name().unwrap_or("").to_string();
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > FIELD_BYTES {
            return Err(ApiError::TooLarge(format!(
                "form field {name:?} is longer than {FIELD_BYTES} bytes"
            )));
        }
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::BadRequest(format!("form field {name:?} is not UTF-8 text")))
}

/// A multipart failure as the client sees it (an upload's 413 is given its
/// limit by [`crate::uploads::with_limit`]).
pub(crate) fn multipart_error(e: MultipartError) -> ApiError {
    if crate::serve::find_cause::<OverBudget>(&e).is_some() {
        return ApiError::TooLarge(OverBudget.to_string());
    }
    if let Some(idle) = crate::serve::is_body_idle(&e) {
        return ApiError::RequestTimeout(crate::serve::body_idle_message(idle));
    }
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit: 0 }
    } else {
        ApiError::BadRequest(format!(
            "the multipart body is malformed or was interrupted: {}",
            e.body_text()
        ))
    }
}

pub(crate) fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// The declared body length is checked before anything is read: over the
/// upload limit (plus [`FORM_BYTES`] for a form) is a 413 at once.
pub(crate) fn check_declared(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let declared: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let slack = if is_multipart(headers) {
        FORM_BYTES as u64
    } else {
        0
    };
    if declared.is_some_and(|n| n > state.max_upload_bytes.saturating_add(slack)) {
        return Err(crate::uploads::too_large(state));
    }
    Ok(())
}
