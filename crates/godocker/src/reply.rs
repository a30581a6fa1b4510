//! Refusals as godocker-cli shows them: a JSON `{"msg": ...}` body, with a
//! status the client handles. It prints the body only for 400 and 500, so
//! anything a person must read to act is a 400; 401, 403 and 404 keep
//! their meaning (the client prints a canned sentence for them). Nothing
//! internal is ever described.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tessera_service::ServiceError;

/// The largest request body this API reads (a job's script included).
pub const BODY_LIMIT: usize = 1 << 20;

/// A refusal: an HTTP status and a message a person can act on.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) msg: String,
}

pub(crate) type Reply<T = Response> = Result<T, Refusal>;

impl Refusal {
    /// A 400 with `msg` (which the client prints).
    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            msg: msg.into(),
        }
    }

    pub(crate) fn unauthorized(msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            msg: msg.into(),
        }
    }

    pub(crate) fn not_found(msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            msg: msg.into(),
        }
    }

    pub(crate) fn forbidden(msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            msg: msg.into(),
        }
    }
}

impl From<ServiceError> for Refusal {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Internal(what) => {
                eprintln!("tessera-godocker: {what}");
                return Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    msg: "the server failed to answer; its log says why: tell its operator".into(),
                };
            }
            // Conflicts, refused specs, busy or throttled checks: the client
            // shows the message of a 400 only.
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            msg: e.to_string(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({ "status": "error", "msg": self.msg });
        (self.status, Json(body)).into_response()
    }
}

/// A JSON answer.
pub(crate) fn ok(value: Value) -> Reply {
    Ok(Json(value).into_response())
}

/// A request body, or why it could not be read (too large...).
pub(crate) type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

/// The body as `T`, or a 400 saying what is wrong with it.
pub(crate) fn parse<T: DeserializeOwned>(body: &Body, what: &str) -> Reply<T> {
    let body = body.as_ref().map_err(|e| {
        Refusal::bad(format!(
            "the {what} could not be read ({e}); send at most {BODY_LIMIT} bytes"
        ))
    })?;
    if body.len() > BODY_LIMIT {
        return Err(Refusal::bad(format!(
            "the {what} is larger than {BODY_LIMIT} bytes; send a smaller one"
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        Refusal::bad(format!(
            "the {what} is not the JSON godocker-cli sends ({e}); use godocker-cli 1.0.25"
        ))
    })
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
}

pub(crate) async fn no_route(method: Method, uri: Uri) -> Refusal {
    Refusal::not_found(format!(
        "Tessera's Go-Docker API has no {method} {}: this Go-Docker feature is not offered \
         (interactive sessions, godssh and godbatch are not); see the README's \"Go-Docker \
         clients\" section",
        uri.path()
    ))
}

pub(crate) async fn no_method(method: Method, uri: Uri) -> Refusal {
    Refusal::bad(format!(
        "{} does not accept {method} in Tessera's Go-Docker API; use godocker-cli 1.0.25",
        uri.path()
    ))
}
