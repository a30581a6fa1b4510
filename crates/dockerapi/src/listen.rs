//! The endpoint's own listener (`--docker-api tcp:HOST:PORT`, `HOST:PORT`
//! or `unix:PATH`): HTTP/1 with upgrades (for attach), a cap on
//! connections, a time limit on request headers.

use crate::DockerApi;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

/// Connections held at once at most (each `wait` of a detached `docker
/// run` holds one until its container ends); over it, new ones wait in
/// the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long a client may take to send a request's headers (also the idle
/// time of a kept-alive connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request head read.
const MAX_HEADER_BYTES: usize = 64 << 10;

/// Where the endpoint listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Tcp(String),
    Unix(PathBuf),
}

impl std::str::FromStr for Listen {
    type Err = String;

    /// `HOST:PORT`, `tcp://HOST:PORT`, `unix:PATH` or `unix://PATH`.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
        {
            if path.is_empty() {
                return Err("--docker-api unix:PATH needs a socket path".into());
            }
            return Ok(Listen::Unix(path.into()));
        }
        let addr = s.strip_prefix("tcp://").unwrap_or(s);
        if !addr.contains(':') {
            return Err(format!(
                "--docker-api {s}: give HOST:PORT (e.g. 127.0.0.1:2375) or unix:PATH"
            ));
        }
        Ok(Listen::Tcp(addr.to_string()))
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "tcp://{a}"),
            Listen::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// A bound listener.
pub enum Bound {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Bound {
    /// Binds `at`; a leftover unix socket file is replaced.
    pub async fn bind(at: &Listen) -> std::io::Result<Self> {
        match at {
            Listen::Tcp(a) => Ok(Bound::Tcp(tokio::net::TcpListener::bind(a).await?)),
            Listen::Unix(p) => {
                if std::fs::symlink_metadata(p)
                    .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                {
                    std::fs::remove_file(p)?;
                }
                Ok(Bound::Unix(tokio::net::UnixListener::bind(p)?, p.clone()))
            }
        }
    }

    /// Where it listens, for the status line (the port a `:0` got).
    pub fn address(&self) -> String {
        match self {
            Bound::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp://?".into(), |a| format!("tcp://{a}")),
            Bound::Unix(_, p) => format!("unix://{}", p.display()),
        }
    }
}

/// Serves `api` on `bound` until `shutdown` completes; connections still
/// open are then dropped (their clients see the stream end).
pub async fn serve(bound: Bound, api: DockerApi, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = accept(&bound) => a,
        };
        while conns.try_join_next().is_some() {}
        match accepted {
            Ok(io) => {
                let api = api.clone();
                conns.spawn(async move {
                    connection(io, api).await;
                    drop(permit);
                });
            }
            Err(e) => {
                eprintln!("tessera-dockerapi: cannot accept a connection: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    conns.abort_all();
    if let Bound::Unix(_, path) = &bound {
        let _ = std::fs::remove_file(path);
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

async fn accept(bound: &Bound) -> std::io::Result<Box<dyn Io>> {
    Ok(match bound {
        Bound::Tcp(l) => {
            let (s, _) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Box::new(s)
        }
        Bound::Unix(l, _) => Box::new(l.accept().await?.0),
    })
}

async fn connection(io: Box<dyn Io>, api: DockerApi) {
    let service = hyper::service::service_fn(move |req| {
        let api = api.clone();
        async move { Ok::<_, std::convert::Infallible>(api.answer(req).await) }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    let _ = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_tcp_or_unix() {
        assert_eq!(
            "127.0.0.1:2375".parse(),
            Ok(Listen::Tcp("127.0.0.1:2375".into()))
        );
        assert_eq!(
            "tcp://0.0.0.0:2375".parse(),
            Ok(Listen::Tcp("0.0.0.0:2375".into()))
        );
        assert_eq!(
            "unix:/run/t.sock".parse(),
            Ok(Listen::Unix("/run/t.sock".into()))
        );
        assert!("2375".parse::<Listen>().unwrap_err().contains("HOST:PORT"));
        assert!("unix:".parse::<Listen>().is_err());
    }
}
