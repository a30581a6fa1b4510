//! What this endpoint asks of the server's own Docker engine: an image's
//! default entrypoint and command (so `docker run IMAGE` runs what the
//! engine would), and `docker pull`, passed through.

use crate::http::{self, Answer, ApiError};
use bollard::errors::Error as EngineError;
use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use hyper::StatusCode;
use std::time::Duration;

/// How long an image lookup may take.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a pull may take in all.
const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// The engine, or why there is none.
#[derive(Clone)]
pub struct Engine {
    docker: Result<Docker, String>,
}

impl Engine {
    /// The engine of `DOCKER_HOST` (or the local socket). A failure is kept
    /// and told to whoever needs the engine.
    pub fn local() -> Self {
        Self {
            docker: Docker::connect_with_defaults().map_err(|e| e.to_string()),
        }
    }

    /// No engine on this machine (containers run on workers that offer
    /// docker): images' defaults are unknown, pulls are refused.
    pub fn none(why: impl Into<String>) -> Self {
        Self {
            docker: Err(why.into()),
        }
    }

    fn docker(&self) -> Result<&Docker, ApiError> {
        self.docker.as_ref().map_err(|why| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("this server has no Docker engine to ask ({why}); give the command after the image name"),
            )
        })
    }

    /// The image's `(Entrypoint, Cmd)`; `No such image` (404, upon which
    /// the docker CLI pulls) when the engine does not have it. Without an
    /// engine, empty: the request must name its command.
    pub async fn defaults(&self, image: &str) -> Result<(Vec<String>, Vec<String>), ApiError> {
        let Ok(docker) = self.docker.as_ref() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let found = tokio::time::timeout(INSPECT_TIMEOUT, docker.inspect_image(image))
            .await
            .map_err(|_| unreachable("no answer about the image in 10 s"))?;
        match found {
            Ok(info) => {
                let config = info.config.unwrap_or_default();
                Ok((
                    config.entrypoint.unwrap_or_default(),
                    config.cmd.unwrap_or_default(),
                ))
            }
            Err(EngineError::DockerResponseServerError {
                status_code: 404, ..
            }) => Err(ApiError::not_found(format!("No such image: {image}"))),
            Err(e) => Err(unreachable(&e.to_string())),
        }
    }

    /// `POST /images/create?fromImage=..&tag=..`: the engine's pull, its
    /// progress passed on as JSON lines; a failure ends the stream with an
    /// `errorDetail` the docker CLI prints.
    pub fn pull(&self, image: String, tag: Option<String>) -> Answer {
        let docker = self.docker()?.clone();
        let (tx, body) = http::streamed();
        tokio::spawn(async move {
            let mut options = CreateImageOptionsBuilder::new().from_image(&image);
            if let Some(tag) = &tag {
                options = options.tag(tag);
            }
            let mut stream = docker.create_image(Some(options.build()), None, None);
            let shown = match &tag {
                Some(t) => format!("{image}:{t}"),
                None => image.clone(),
            };
            let deadline = tokio::time::sleep(PULL_TIMEOUT);
            tokio::pin!(deadline);
            loop {
                let item = tokio::select! {
                    item = stream.next() => item,
                    () = &mut deadline => Some(Err(EngineError::RequestTimeoutError)),
                };
                let line = match item {
                    None => break,
                    Some(Ok(info)) => serde_json::json!({
                        "status": info.status.unwrap_or_default(),
                        "id": info.id.unwrap_or_default(),
                    }),
                    Some(Err(e)) => {
                        let message = pull_failure(&shown, &e);
                        serde_json::json!({"errorDetail": {"message": message}, "error": message})
                    }
                };
                let failed = line.get("error").is_some();
                let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
                bytes.push(b'\n');
                if tx.send(bytes.into()).await.is_err() || failed {
                    break;
                }
            }
        });
        let mut r = hyper::Response::new(body);
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        Ok(r)
    }
}

/// Why a pull failed, and what to do.
fn pull_failure(image: &str, e: &EngineError) -> String {
    let why = match e {
        EngineError::DockerResponseServerError { message, .. } => message.clone(),
        EngineError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    };
    format!(
        "the server's Docker engine could not pull {image}: {why}; if it reaches no registry, \
         load the image on it instead (docker load)"
    )
}

fn unreachable(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the server's Docker engine does not answer ({why}); try again later"),
    )
}
