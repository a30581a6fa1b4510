//! Request bodies: JSON for everything, JSON or YAML for job specs, with
//! axum's rejections turned into [`ApiError`]s so every error has one shape.
//!
//! Job specs are parsed off the async threads, at most [`SPEC_PARSES`] at
//! once with at most [`SPEC_QUEUE`] waiting (then 503), after their
//! nesting was measured ([`crate::nesting`]); YAML specs are limited to
//! [`YAML_SPEC_LIMIT`].

use crate::metrics::Metrics;
use crate::nesting::{json_too_deep, yaml_too_deep, MAX_SPEC_DEPTH};
use crate::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tessera_types::JobSpec;
use tokio::sync::Semaphore;

/// The most a request body may hold.
pub const BODY_LIMIT: usize = 1 << 20;

/// The most a job spec may hold: large DAGs are submitted whole (a
/// 100,000-task fan-out is about 8 MiB of JSON).
pub const SPEC_LIMIT: usize = 64 << 20;

/// The most a YAML job spec may hold. The YAML parser holds every event
/// of a document in memory before reading it: a flow list of one-letter
/// items costs about 64 bytes of memory per byte of YAML (16 MiB: 1 GB,
/// 3 s). 2 MiB (at most 128 MiB per parse) holds a hand-written spec of
/// thousands of tasks; machine-made DAGs go as JSON, up to [`SPEC_LIMIT`].
pub const YAML_SPEC_LIMIT: usize = 2 << 20;

/// Job specs parsed at once at most (each on a blocking thread).
pub const SPEC_PARSES: usize = 2;

/// Job specs that may wait for a parse; one more is a 503.
pub const SPEC_QUEUE: usize = 16;

/// A JSON body (`application/json`).
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
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
    } else if let Some(idle) = crate::serve::stall::is_body_idle(&e) {
        ApiError::RequestTimeout(crate::serve::stall::body_idle_message(idle))
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

impl<S> FromRequest<S> for SpecBody
where
    S: Send + Sync,
    Arc<ParseGate>: FromRef<S>,
    Arc<Metrics>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
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
        if matches!(format, Format::Yaml) && bytes.len() > YAML_SPEC_LIMIT {
            return Err(ApiError::TooLarge(format!(
                "a YAML job spec may hold at most {YAML_SPEC_LIMIT} bytes; send a larger one as \
                 JSON (up to {SPEC_LIMIT} bytes)"
            )));
        }
        let (gate, metrics) = (Arc::<ParseGate>::from_ref(state), Arc::from_ref(state));
        let parsed = gate
            .run(&metrics, move || parse_spec(format, &bytes))
            .await?;
        parsed.map(SpecBody)
    }
}

/// A job spec typed into a page: JSON when it starts with `{`, else YAML;
/// parsed under the same bounds as [`SpecBody`].
pub(crate) async fn spec_from_text(
    gate: &ParseGate,
    metrics: &Metrics,
    text: String,
) -> Result<JobSpec, ApiError> {
    let format = if text.trim_start().starts_with('{') {
        Format::Json
    } else {
        Format::Yaml
    };
    if matches!(format, Format::Yaml) && text.len() > YAML_SPEC_LIMIT {
        return Err(ApiError::TooLarge(format!(
            "a YAML job spec may hold at most {YAML_SPEC_LIMIT} bytes"
        )));
    }
    gate.run(metrics, move || parse_spec(format, text.as_bytes()))
        .await?
}

/// Bounds spec parses: [`SPEC_PARSES`] at once, [`SPEC_QUEUE`] waiting.
pub(crate) struct ParseGate {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl Default for ParseGate {
    fn default() -> Self {
        Self {
            slots: Arc::new(Semaphore::new(SPEC_PARSES)),
            waiting: AtomicUsize::new(0),
        }
    }
}

/// One place in a [`ParseGate`]'s queue, given back when dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ParseGate {
    /// Runs `parse` on a blocking thread once a slot is free; a 503 if
    /// [`SPEC_QUEUE`] parses wait already.
    async fn run<T: Send + 'static>(
        &self,
        metrics: &Metrics,
        parse: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::Relaxed) >= SPEC_QUEUE {
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    metrics.doors.spec_busy();
                    return Err(ApiError::Busy {
                        message: format!(
                            "too many job specs are being read (at most {SPEC_PARSES} at once, \
                             {SPEC_QUEUE} waiting); try again in a moment"
                        ),
                        retry_after: 1,
                    });
                }
                let _waiting = Waiting(&self.waiting);
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(ApiError::internal)?
            }
        };
        Ok(tokio::task::spawn_blocking(move || {
            let parsed = parse();
            drop(permit);
            parsed
        })
        .await?)
    }
}

fn parse_spec(format: Format, bytes: &[u8]) -> Result<JobSpec, ApiError> {
    let deep = match format {
        Format::Json => json_too_deep(bytes, MAX_SPEC_DEPTH),
        Format::Yaml => yaml_too_deep(bytes, MAX_SPEC_DEPTH),
    };
    if let Some(line) = deep {
        return Err(too_deep(&format!("line {line}")));
    }
    let parsed = match format {
        Format::Json => serde_json::from_slice::<JobSpec>(bytes).map_err(|e| e.to_string()),
        Format::Yaml => serde_yaml::from_slice::<JobSpec>(bytes).map_err(|e| e.to_string()),
    };
    parsed.map_err(|e| {
        if let Some(at) = e.strip_prefix("recursion limit exceeded") {
            too_deep(at.trim_start_matches(" at ").trim())
        } else if e.starts_with("repetition limit exceeded") {
            ApiError::Invalid(
                "the job spec does not parse: its YAML aliases expand to too many nodes (a \
                 \"billion laughs\"); write the values out instead of nesting aliases"
                    .into(),
            )
        } else {
            ApiError::Invalid(format!("the job spec does not parse: {e}"))
        }
    })
}

fn too_deep(at: &str) -> ApiError {
    ApiError::Invalid(format!(
        "the job spec nests deeper than {MAX_SPEC_DEPTH} levels ({at}); a job spec needs fewer \
         than 10"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spec_parses_run_two_at_once_sixteen_wait_and_more_are_refused() {
        let gate = Arc::new(ParseGate::default());
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(std::sync::Mutex::new(held));
        let mut runs = Vec::new();
        for _ in 0..SPEC_PARSES + SPEC_QUEUE {
            let (gate, metrics, held) = (gate.clone(), metrics.clone(), held.clone());
            runs.push(tokio::spawn(async move {
                gate.run(&metrics, move || {
                    let _ = held.lock().unwrap().recv();
                })
                .await
            }));
        }
        // Observable state, not time: both slots taken, the queue full.
        while gate.slots.available_permits() > 0
            || gate.waiting.load(Ordering::Relaxed) < SPEC_QUEUE
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = gate.run(&metrics, || ()).await.unwrap_err();
        assert!(
            matches!(refused, ApiError::Busy { retry_after: 1, .. }),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("2 at once, 16 waiting"),
            "{refused}"
        );
        for _ in 0..SPEC_PARSES + SPEC_QUEUE {
            release.send(()).unwrap();
        }
        for run in runs {
            run.await.unwrap().expect("every waiting parse ran");
        }
        assert_eq!(gate.waiting.load(Ordering::Relaxed), 0);
    }

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
