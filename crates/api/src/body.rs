//! Request bodies: JSON for everything, JSON or YAML for job specs, with
//! axum's rejections turned into [`ApiError`]s so every error has one shape.

use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use tessera_types::JobSpec;

/// The most a request body may hold.
pub const BODY_LIMIT: usize = 1 << 20;

/// The most a job spec may hold: large DAGs are submitted whole (a
/// 100,000-task fan-out is about 8 MiB of JSON).
pub const SPEC_LIMIT: usize = 64 << 20;

/// A JSON body (`application/json`).
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::JsonDataError(e) => ApiError::Invalid(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(e.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "send the body with `Content-Type: application/json`".into(),
        ),
        JsonRejection::BytesRejection(e) => bytes_rejection(e),
        other => ApiError::BadRequest(other.body_text()),
    }
}

fn bytes_rejection(e: BytesRejection) -> ApiError {
    bytes_rejection_at(e, BODY_LIMIT)
}

fn bytes_rejection_at(e: BytesRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::BadRequest(format!(
            "could not read the request body: {}",
            e.body_text()
        ))
    }
}

/// A query string; unknown or malformed parameters are a 400.
pub(crate) struct QueryArgs<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// A job spec, as JSON (`application/json`) or YAML (`application/yaml`,
/// `text/yaml`, `application/x-yaml`). Unknown fields are refused.
pub(crate) struct SpecBody(pub JobSpec);

#[derive(Clone, Copy)]
enum Format {
    Json,
    Yaml,
}

impl FromRequest<AppState> for SpecBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let media = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let format = match media.as_deref() {
            Some("application/json") => Format::Json,
            Some("application/yaml" | "text/yaml" | "application/x-yaml") => Format::Yaml,
            other => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "a job spec must be sent as application/json or application/yaml, not {}",
                    other.unwrap_or("a body without Content-Type")
                )))
            }
        };
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| bytes_rejection_at(e, SPEC_LIMIT))?;
        parse_spec(format, &bytes).map(SpecBody)
    }
}

fn parse_spec(format: Format, bytes: &[u8]) -> Result<JobSpec, ApiError> {
    let parsed = match format {
        Format::Json => serde_json::from_slice::<JobSpec>(bytes).map_err(|e| e.to_string()),
        Format::Yaml => serde_yaml::from_slice::<JobSpec>(bytes).map_err(|e| e.to_string()),
    };
    parsed.map_err(|e| ApiError::Invalid(format!("the job spec does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_specs_name_unknown_fields() {
        let yaml = b"name: j\ntasks:\n  - name: a\n    action: {kind: noop}\n    colour: red\n";
        let err = parse_spec(Format::Yaml, yaml).unwrap_err().to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
        let json = br#"{"name":"j","tasks":[],"shade":1}"#;
        let err = parse_spec(Format::Json, json).unwrap_err().to_string();
        assert!(err.contains("unknown field `shade`"), "{err}");
    }
}
