//! The route table: method and path (with or without a `/v1.NN` prefix)
//! to the call that answers it. Everything but `/_ping` needs a key.

use crate::http::{self, Answer, ApiError};
use crate::DockerApi;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode};
use std::collections::HashMap;
use tessera_service::{AsMember, AsViewer};

/// The largest request body read (a create request is a few KiB).
pub const MAX_BODY: usize = 1 << 20;

/// How long a request body may take to arrive.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Query parameters kept at most (the rest are ignored).
const MAX_PARAMS: usize = 64;

impl DockerApi {
    /// Answers one request; never fails (refusals are answers).
    pub async fn answer(&self, req: Request<Incoming>) -> hyper::Response<http::Body> {
        let (mut parts, body) = req.into_parts();
        let answered = self.route(&mut parts, body).await;
        answered.unwrap_or_else(ApiError::into_response)
    }

    async fn route(&self, req: &mut Parts, body: Incoming) -> Answer {
        let path = strip_version(req.uri.path()).to_string();
        let query = params(req.uri.query().unwrap_or(""));
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let method = req.method.clone();
        if segments == ["_ping"] && matches!(method, Method::GET | Method::HEAD) {
            return Ok(crate::system::ping());
        }
        let caller = self.caller(&req.headers).await?;
        let headers = req.headers.clone();
        let flag = |k: &str| matches!(query.get(k).map(String::as_str), Some("1" | "true"));
        match (&method, &segments[..]) {
            (&Method::GET, ["version"]) => crate::system::version(),
            (&Method::GET, ["info"]) => {
                let project = self.project::<AsViewer>(&caller, &headers).await?;
                self.info(&project).await
            }
            (&Method::GET, ["containers", "json"]) => {
                let project = self.project::<AsViewer>(&caller, &headers).await?;
                let filters = query.get("filters").map(String::as_str);
                self.ps(&project, flag("all"), filters).await
            }
            (&Method::POST, ["containers", "create"]) => {
                let project = self.project::<AsMember>(&caller, &headers).await?;
                let body = read_json(body).await?;
                self.create(&project, query.get("name").cloned(), &body)
                    .await
            }
            (&Method::POST, ["images", "create"]) => {
                // Only a member of a project makes the engine pull.
                self.project::<AsMember>(&caller, &headers).await?;
                let image = query
                    .get("fromImage")
                    .cloned()
                    .ok_or_else(|| ApiError::bad("give the image to pull (fromImage)"))?;
                if query.contains_key("fromSrc") {
                    return Err(ApiError::bad("docker import is not offered; pull an image"));
                }
                self.engine.pull(image, query.get("tag").cloned())
            }
            (_, ["containers", id, rest @ ..]) => {
                let id = id.to_string();
                let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
                self.container(req, &caller, &headers, &id, &rest, &query)
                    .await
            }
            _ => Err(ApiError::not_found(format!(
                "{method} {path} is not offered by Tessera's Docker endpoint (containers, logs, \
                 wait, pull, version and info are)"
            ))),
        }
    }

    async fn container(
        &self,
        req: &mut Parts,
        caller: &tessera_service::Caller,
        headers: &hyper::HeaderMap,
        id: &str,
        rest: &[String],
        query: &HashMap<String, String>,
    ) -> Answer {
        let flag = |k: &str| matches!(query.get(k).map(String::as_str), Some("1" | "true"));
        let outputs = (flag("stdout"), flag("stderr"));
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        let method = req.method.clone();
        if matches!(method, Method::GET) || matches!(&rest[..], ["wait"] | ["attach"]) {
            let project = self.project::<AsViewer>(caller, headers).await?;
            let (job, c) = self.find(&project, id).await?;
            return match (&method, &rest[..]) {
                (&Method::GET, ["json"]) => http::ok(&crate::views::inspect(&c)),
                (&Method::GET, ["logs"]) => self.logs(job, &c, flag("follow"), outputs).await,
                (&Method::POST, ["wait"]) => self.wait(job),
                (&Method::POST, ["attach"]) => self.attach(job, req, outputs).await,
                _ => Err(unoffered(&method, id, &rest)),
            };
        }
        let project = self.project::<AsMember>(caller, headers).await?;
        let (job, c) = self.find(&project, id).await?;
        match (&method, &rest[..]) {
            (&Method::POST, ["start"]) if c.job.state.is_terminal() => {
                http::empty(StatusCode::NOT_MODIFIED)
            }
            (&Method::POST, ["start"]) => http::empty(StatusCode::NO_CONTENT),
            (&Method::POST, ["stop"]) if c.job.state.is_terminal() => {
                http::empty(StatusCode::NOT_MODIFIED)
            }
            (&Method::POST, ["stop" | "kill"]) if c.job.state.is_terminal() => {
                Err(ApiError::conflict(format!("Container {id} is not running")))
            }
            (&Method::POST, ["stop" | "kill"]) => {
                self.service.cancel(&job)?;
                http::empty(StatusCode::NO_CONTENT)
            }
            (&Method::DELETE, []) => {
                if !c.job.state.is_terminal() {
                    // As the engine: a created container (here: waiting or
                    // queued) goes without -f; a started one needs it.
                    let started = c.task.state == tessera_types::TaskState::Running;
                    if !flag("force") && started {
                        return Err(ApiError::conflict(format!(
                            "You cannot remove a running container {id}. Stop the container \
                             before attempting removal or force remove"
                        )));
                    }
                    self.service.cancel(&job)?;
                }
                self.mark(job.id(), crate::containers::Mark::Removed)?;
                http::empty(StatusCode::NO_CONTENT)
            }
            _ => Err(unoffered(&method, id, &rest)),
        }
    }
}

fn unoffered(method: &Method, id: &str, rest: &[&str]) -> ApiError {
    ApiError::not_found(format!(
        "{method} /containers/{id}/{} is not offered by Tessera's Docker endpoint",
        rest.join("/")
    ))
}

/// The path without its `/v1.41` prefix.
fn strip_version(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    match rest.find('/') {
        Some(i) if rest[..i].chars().all(|c| c.is_ascii_digit() || c == '.') => &rest[i..],
        _ => path,
    }
}

/// The query's parameters, percent-decoded, at most [`MAX_PARAMS`].
fn params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .take(MAX_PARAMS)
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The request's JSON body, at most [`MAX_BODY`] bytes (serde_json
/// refuses nesting deeper than 128).
async fn read_json(body: Incoming) -> Result<serde_json::Value, ApiError> {
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect());
    let bytes: Bytes = read
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body took over {}s to arrive",
                    BODY_TIMEOUT.as_secs()
                ),
            )
        })?
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is over {MAX_BODY} bytes, or broke off"),
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad(format!("the body is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_stripped_and_queries_decoded() {
        assert_eq!(strip_version("/v1.41/containers/json"), "/containers/json");
        assert_eq!(strip_version("/_ping"), "/_ping");
        assert_eq!(strip_version("/volumes/x"), "/volumes/x");
        let q = params("name=a%2Fb&all=1&x=%zz&filters=%7B%7D");
        assert_eq!(q["name"], "a/b");
        assert_eq!(q["all"], "1");
        assert_eq!(q["x"], "%zz");
        assert_eq!(q["filters"], "{}");
        assert_eq!(decode("%4"), "%4");
    }
}
