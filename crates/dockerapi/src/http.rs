//! Answers as the Docker Engine API writes them: JSON bodies, errors as
//! `{"message": "..."}` (which the docker CLI prints after "Error response
//! from daemon:"), and the multiplexed stream format of logs and attach.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use std::convert::Infallible;
use tessera_service::ServiceError;
use tokio::sync::mpsc;

/// Every answer's body: whole, or streamed from a channel.
pub type Body = BoxBody<Bytes, Infallible>;

/// Chunks buffered in a streamed answer before its writer waits.
const STREAM_BUFFER: usize = 64;

/// A refusal: its status and the one line the client shows.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// The Docker Engine's words for a container it does not know.
    pub fn no_container(name: &str) -> Self {
        Self::not_found(format!("No such container: {name}"))
    }

    pub fn into_response(self) -> Response<Body> {
        if self.status.is_server_error() {
            eprintln!("tessera-dockerapi: {}", self.message);
        }
        let message = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal error in tessera; the server's log says more".to_string()
        } else {
            self.message
        };
        json(self.status, &serde_json::json!({ "message": message }))
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Invalid(_) | ServiceError::InvalidSpec(_) => StatusCode::BAD_REQUEST,
            ServiceError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Busy { .. } | ServiceError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

pub type Answer = Result<Response<Body>, ApiError>;

/// A JSON answer.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    let mut r = Response::new(full(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

pub fn ok(value: &serde_json::Value) -> Answer {
    Ok(json(StatusCode::OK, value))
}

/// An answer without a body.
pub fn empty(status: StatusCode) -> Answer {
    let mut r = Response::new(full(Vec::new()));
    *r.status_mut() = status;
    Ok(r)
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A body streamed from what is sent on the returned channel; it ends when
/// the sender is dropped. The headers go out at once.
pub fn streamed() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    (tx, BodyExt::boxed(StreamBody::new(stream)))
}

/// Which stream a frame of the multiplexed format carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    Stdout = 1,
    Stderr = 2,
}

/// One frame of Docker's multiplexed stream format: the stream (1 or 2),
/// three zero bytes, the payload's length (big-endian u32), the payload.
/// Longer payloads become several frames.
pub fn frames(out: Out, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    for piece in payload.chunks(u32::MAX as usize) {
        v.extend_from_slice(&[out as u8, 0, 0, 0]);
        v.extend_from_slice(&(piece.len() as u32).to_be_bytes());
        v.extend_from_slice(piece);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_stream_and_big_endian_length() {
        assert_eq!(
            frames(Out::Stderr, b"hi"),
            [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']
        );
        assert!(frames(Out::Stdout, b"").is_empty());
    }

    #[test]
    fn service_refusals_keep_their_words_and_internal_ones_do_not() {
        let e = ApiError::from(ServiceError::Unauthorized("no key".into()));
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert_eq!(e.message, "no key");
        let r = ApiError::from(ServiceError::internal("db path /x")).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
