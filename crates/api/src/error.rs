//! The one place where errors become HTTP, the service's included: a
//! status, a stable machine code and a message that says what happened
//! and what to do. Internal details are logged here and never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_service::ServiceError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is malformed (a bad query string, bad JSON syntax).
    #[error("{0}")]
    BadRequest(String),
    /// No key, or a key that is unknown, wrong or revoked.
    #[error("{0}")]
    Unauthorized(String),
    /// The thing exists but the caller may not do this to it.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A name is taken, or the change would leave things inconsistent.
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {limit} bytes; send a smaller one")]
    PayloadTooLarge { limit: usize },
    /// Too large, with its own explanation (a YAML spec, a form's fields).
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A `Range` that starts past the end of a file of `len` bytes.
    #[error("the requested range is outside the file ({len} bytes)")]
    RangeNotSatisfiable { len: u64 },
    /// The body parsed but says something the API refuses (unknown field,
    /// wrong type).
    #[error("{0}")]
    Invalid(String),
    /// A job spec the scheduler refuses (cycle, selector matching nothing...).
    #[error("{0}")]
    InvalidSpec(String),
    /// Too many wrong secrets with one prefix: checks wait `retry_after` seconds.
    #[error("{message}; wait {retry_after} s and try again")]
    TooManyRequests { message: String, retry_after: u64 },
    /// The scheduler or the database cannot answer right now.
    #[error("{0}")]
    Unavailable(String),
    /// A bounded queue (connections, secret checks, spec parses) is full:
    /// try again after `retry_after` seconds.
    #[error("{message}")]
    Busy { message: String, retry_after: u64 },
    /// The request took too long: its body stopped sending, or it passed
    /// the request deadline.
    #[error("{0}")]
    RequestTimeout(String),
    /// A bug or an environment failure: logged, never described to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } | Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Invalid(_) | Self::InvalidSpec(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge { .. } | Self::TooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Self::Invalid(_) => "invalid_request",
            Self::InvalidSpec(_) => "invalid_spec",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Unavailable(_) => "unavailable",
            Self::Busy { .. } => "busy",
            Self::RequestTimeout(_) => "request_timeout",
            Self::Internal(_) => "internal",
        }
    }

    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        Self::Internal(what.to_string())
    }
}

impl ApiError {
    /// The JSON body every error is sent as.
    fn body(&self) -> serde_json::Value {
        let message = match self {
            Self::Internal(detail) => {
                eprintln!("tessera-api: internal error: {detail}");
                "internal error; the server's log has the details".to_string()
            }
            other => other.to_string(),
        };
        json!({ "error": { "code": self.code(), "message": message } })
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManyRequests { retry_after, .. } | Self::Busy { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

/// `e` as a whole HTTP/1.1 response that closes the connection, for a
/// connection refused before any request was read.
pub(crate) fn raw_response(e: ApiError) -> Vec<u8> {
    let body = e.body().to_string();
    let status = e.status();
    let retry = e
        .retry_after()
        .map_or(String::new(), |s| format!("retry-after: {s}\r\n"));
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         {retry}connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status(), axum::Json(body)).into_response();
        if matches!(self, Self::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(retry_after) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        if let Self::RangeNotSatisfiable { len } = self {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(m) => Self::NotFound(m),
            ServiceError::Unauthorized(m) => Self::Unauthorized(m),
            ServiceError::Forbidden(m) => Self::Forbidden(m),
            ServiceError::Conflict(m) => Self::Conflict(m),
            ServiceError::Invalid(m) => Self::Invalid(m),
            ServiceError::InvalidSpec(m) => Self::InvalidSpec(m),
            ServiceError::TooLarge(m) => Self::TooLarge(m),
            ServiceError::TooMany {
                message,
                retry_after,
            } => Self::TooManyRequests {
                message,
                retry_after,
            },
            ServiceError::Busy {
                message,
                retry_after,
            } => Self::Busy {
                message,
                retry_after,
            },
            ServiceError::Unavailable(m) => Self::Unavailable(m),
            ServiceError::Internal(m) => Self::Internal(m),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(format!("a blocking task failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of service error has one HTTP status, and the API sends
    /// the service's own stable code and words.
    #[test]
    fn service_errors_become_http_in_this_one_place() {
        let m = || "what happened; what to do".to_string();
        let table = [
            (ServiceError::NotFound(m()), 404),
            (ServiceError::Unauthorized(m()), 401),
            (ServiceError::Forbidden(m()), 403),
            (ServiceError::Conflict(m()), 409),
            (ServiceError::Invalid(m()), 422),
            (ServiceError::InvalidSpec(m()), 422),
            (ServiceError::TooLarge(m()), 413),
            (
                ServiceError::TooMany {
                    message: m(),
                    retry_after: 7,
                },
                429,
            ),
            (
                ServiceError::Busy {
                    message: m(),
                    retry_after: 1,
                },
                503,
            ),
            (ServiceError::Unavailable(m()), 503),
            (ServiceError::Internal(m()), 500),
        ];
        for (e, status) in table {
            let (code, words) = (e.code(), e.to_string());
            let api = ApiError::from(e);
            assert_eq!(api.status().as_u16(), status, "{api:?}");
            assert_eq!(api.code(), code, "{api:?}");
            assert_eq!(api.to_string(), words);
        }
        let throttled = ApiError::from(ServiceError::TooMany {
            message: m(),
            retry_after: 7,
        })
        .into_response();
        assert_eq!(throttled.headers()[header::RETRY_AFTER], "7");
        let refused = ApiError::from(ServiceError::Unauthorized(m())).into_response();
        assert_eq!(refused.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
