//! The long answers: `wait` (headers at once, the exit code when the job
//! ends, as the engine does so the CLI can start the container meanwhile),
//! `logs` (whole or followed) and `attach` (a hijacked connection carrying
//! the container's output in the multiplexed format until it ends).

use crate::http::{self, frames, Answer, ApiError, Out};
use crate::state::Container;
use crate::DockerApi;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tessera_service::{AsViewer, FollowedLog, JobAccess, JobEvent, Stream};
use tokio::io::AsyncWriteExt;

impl DockerApi {
    /// `POST /containers/{id}/wait`: answers 200 at once, then
    /// `{"StatusCode": N}` when the container's job ends (whatever the
    /// condition asked: a job runs once, so its next exit is its exit).
    pub(crate) fn wait(&self, job: JobAccess<AsViewer>) -> Answer {
        let (tx, body) = http::streamed();
        let api = self.clone();
        tokio::spawn(async move {
            let mut events = api.service.job_events(&job);
            loop {
                let event = tokio::select! {
                    e = events.next() => e,
                    // The client went away: stop following the job.
                    () = tx.closed() => return,
                };
                match event {
                    Some(JobEvent::End { .. }) => break,
                    Some(_) => {}
                    // The server is closing: the client sees the stream end.
                    None => return,
                }
            }
            // Read again: the access holds the job as it was when asked.
            let now = api
                .service
                .job_by_id::<AsViewer>(job.caller(), job.id())
                .await;
            let code = match now {
                Ok(now) => match api.load(&now).await {
                    Ok(Some(c)) => c.exit_code().unwrap_or(-1),
                    _ => -1,
                },
                Err(_) => -1,
            };
            let line = serde_json::json!({"StatusCode": code, "Error": null});
            let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
            bytes.push(b'\n');
            let _ = tx.send(bytes.into()).await;
        });
        let mut r = Response::new(body);
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        Ok(r)
    }

    /// `GET /containers/{id}/logs`: both logs of its latest attempt in the
    /// multiplexed format (standard output first, then standard error);
    /// followed until the attempt ends with `follow=1`.
    pub(crate) async fn logs(
        &self,
        job: JobAccess<AsViewer>,
        container: &Container,
        follow: bool,
        (stdout, stderr): (bool, bool),
    ) -> Answer {
        if follow {
            let (tx, body) = http::streamed();
            let streams = self.follow(&job, stdout, stderr).await?;
            tokio::spawn(async move {
                pump(streams, |bytes| {
                    let tx = tx.clone();
                    async move { tx.send(bytes.into()).await.is_ok() }
                })
                .await;
            });
            return Ok(raw_stream(body));
        }
        let mut out = Vec::new();
        if container.task.attempt > 0 {
            for (wanted, stream, kind) in [
                (stdout, Stream::Stdout, Out::Stdout),
                (stderr, Stream::Stderr, Out::Stderr),
            ] {
                if !wanted {
                    continue;
                }
                match self.service.log(&job, 0, None, stream).await {
                    Ok(bytes) => out.extend(frames(kind, &bytes)),
                    Err(tessera_service::ServiceError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(raw_stream(http::full(out)))
    }

    /// The followed logs asked for.
    async fn follow(
        &self,
        job: &JobAccess<AsViewer>,
        stdout: bool,
        stderr: bool,
    ) -> Result<Followed, ApiError> {
        let mut f = Followed::default();
        if stdout {
            f.out = Some(
                self.service
                    .follow_log(job, 0, None, Stream::Stdout)
                    .await?,
            );
        }
        if stderr {
            f.err = Some(
                self.service
                    .follow_log(job, 0, None, Stream::Stderr)
                    .await?,
            );
        }
        Ok(f)
    }

    /// `POST /containers/{id}/attach`: switches the connection to a raw
    /// stream (101, `Upgrade: tcp`) and writes the container's output on
    /// it, from its start, until it ends. Standard input is not read.
    pub(crate) async fn attach(
        &self,
        job: JobAccess<AsViewer>,
        req: &mut Parts,
        (stdout, stderr): (bool, bool),
    ) -> Answer {
        let upgrade = req.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let (Some(upgrade), true) = (upgrade, req.headers.contains_key(hyper::header::UPGRADE))
        else {
            return Err(ApiError::bad(
                "attach needs an upgraded connection (Upgrade: tcp), as the docker CLI sends",
            ));
        };
        let streams = self.follow(&job, stdout, stderr).await?;
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else {
                return;
            };
            let mut io = TokioIo::new(upgraded);
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
            let writer = async move {
                while let Some(bytes) = rx.recv().await {
                    if io.write_all(&bytes).await.is_err() || io.flush().await.is_err() {
                        return;
                    }
                }
                let _ = io.shutdown().await;
            };
            let reader = pump(streams, move |bytes| {
                let tx = tx.clone();
                async move { tx.send(bytes).await.is_ok() }
            });
            tokio::join!(reader, writer);
        });
        let mut r = Response::new(http::full(Vec::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/vnd.docker.multiplexed-stream"),
        );
        h.insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("Upgrade"),
        );
        h.insert(
            hyper::header::UPGRADE,
            hyper::header::HeaderValue::from_static("tcp"),
        );
        Ok(r)
    }
}

/// The logs being followed.
#[derive(Default)]
struct Followed {
    out: Option<FollowedLog>,
    err: Option<FollowedLog>,
}

/// Sends both logs' chunks, framed, as they come, until both end or the
/// receiver is gone (`send` answers false).
async fn pump<F, Fut>(mut f: Followed, send: F)
where
    F: Fn(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        let (bytes, kind) = tokio::select! {
            Some(b) = next(&mut f.out) => (b, Out::Stdout),
            Some(b) = next(&mut f.err) => (b, Out::Stderr),
            else => return,
        };
        if !send(frames(kind, &bytes)).await {
            return;
        }
    }
}

/// The next chunk of a log, or `None` once it is over (and from then on).
async fn next(log: &mut Option<FollowedLog>) -> Option<Vec<u8>> {
    let chunk = log.as_mut()?.next().await;
    if chunk.is_none() {
        *log = None;
    }
    chunk
}

fn raw_stream(body: http::Body) -> Response<http::Body> {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/vnd.docker.multiplexed-stream"),
    );
    r
}
