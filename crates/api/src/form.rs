//! `multipart/form-data` bodies (the upload route's multipart form, the
//! encode page's form), held to limits besides their one file:
//!
//! - at most [`FORM_PARTS`] parts, the file's included;
//! - a field other than the file at most [`FIELD_BYTES`] (see [`text`],
//!   [`skip`]);
//! - at most [`FORM_OVERHEAD`] bytes of the body that are not the file's
//!   data (boundaries, part headers, fields, and what the parser reads
//!   ahead), counted as the body arrives: the parser keeps whatever it has
//!   not matched yet, so a part header that never ends would otherwise be
//!   held in memory whole.
//!
//! The file's data is limited by `max_upload_bytes` where it is written
//! (by the service, [`tessera_service::Service::upload`]).

use crate::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, HeaderMap, StatusCode};
use http_body::Frame;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// Parts of a form at most, its file included. The encode page sends 8.
pub(crate) const FORM_PARTS: usize = 16;
/// Bytes of a form's body that are not its file's data at most: 16 parts
/// of 4 KiB with their headers and boundaries are 70 KiB, and the parser
/// reads up to three [`FRAME`]s ahead per part.
pub(crate) const FORM_OVERHEAD: usize = 1 << 20;
/// Bytes of one text field at most.
pub(crate) const FIELD_BYTES: usize = 4 << 10;

/// The most the multipart parser is handed per poll: it reads whatever
/// its stream has ready into its buffer, so frames are cut to this size and
/// the stream yields after each one.
const FRAME: usize = 16 << 10;

/// What a form's body carried in all, and as its file's data.
#[derive(Default)]
struct Budget {
    received: AtomicUsize,
    file: AtomicUsize,
}

/// The error a form's body ends with past [`FORM_OVERHEAD`].
#[derive(Debug)]
struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a form may hold at most {FORM_OVERHEAD} bytes besides its file's data (fields, part \
             headers); send less"
        )
    }
}

impl std::error::Error for OverBudget {}

/// A request body handed out in frames of at most [`FRAME`], one per
/// poll, which fails once more than [`FORM_OVERHEAD`] of it was not read
/// out as the file's data.
struct Counted {
    inner: Body,
    rest: Bytes,
    /// A frame went out on the last poll: this one yields.
    gave: bool,
    budget: Arc<Budget>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        if this.gave {
            this.gave = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this.rest.is_empty() {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.rest = data,
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
            }
        }
        let chunk = this.rest.split_to(this.rest.len().min(FRAME));
        let received = this
            .budget
            .received
            .fetch_add(chunk.len(), Ordering::Relaxed);
        let outside =
            (received + chunk.len()).saturating_sub(this.budget.file.load(Ordering::Relaxed));
        if outside > FORM_OVERHEAD {
            return Poll::Ready(Some(Err(Box::new(OverBudget))));
        }
        this.gave = true;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }
}

/// A form being read, part by part.
pub(crate) struct Form {
    multipart: Multipart,
    budget: Arc<Budget>,
    parts: usize,
}

/// Counts the bytes read out of a form's file part (which do not count
/// toward [`FORM_OVERHEAD`]).
#[derive(Clone)]
pub(crate) struct FileData(Arc<Budget>);

impl FileData {
    pub(crate) fn read(&self, bytes: usize) {
        self.0.file.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl Form {
    pub(crate) async fn from_request<S: Send + Sync>(
        state: &S,
        req: Request,
    ) -> Result<Self, ApiError> {
        let budget = Arc::<Budget>::default();
        let counting = budget.clone();
        let req = req.map(|inner| {
            Body::new(Counted {
                inner,
                rest: Bytes::new(),
                gave: false,
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

/// Reads a field other than the file and drops it; at most [`FIELD_BYTES`].
pub(crate) async fn skip(field: &mut Field<'_>) -> Result<(), ApiError> {
    text_or_skip(field, false).await.map(drop)
}

/// A text field's value, at most [`FIELD_BYTES`].
pub(crate) async fn text(field: &mut Field<'_>) -> Result<String, ApiError> {
    text_or_skip(field, true).await
}

async fn text_or_skip(field: &mut Field<'_>, keep: bool) -> Result<String, ApiError> {
    let name = field.name().unwrap_or("").to_string();
    let (mut bytes, mut len) = (Vec::new(), 0);
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        len += chunk.len();
        if keep {
            bytes.extend_from_slice(&chunk);
        }
        if len > FIELD_BYTES {
            return Err(ApiError::TooLarge(format!(
                "form field {name:?} is longer than {FIELD_BYTES} bytes"
            )));
        }
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::BadRequest(format!("form field {name:?} is not UTF-8 text")))
}

/// A multipart failure as the client sees it (an upload's 413 is given its
/// limit where the form is read, see `crate::upload`).
pub(crate) fn multipart_error(e: MultipartError) -> ApiError {
    if crate::serve::stall::find_cause::<OverBudget>(&e).is_some() {
        return ApiError::TooLarge(OverBudget.to_string());
    }
    if let Some(idle) = crate::serve::stall::is_body_idle(&e) {
        return ApiError::RequestTimeout(crate::serve::stall::body_idle_message(idle));
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
