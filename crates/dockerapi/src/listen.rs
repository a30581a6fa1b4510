//! The endpoint's own listener (`--docker-api tcp:HOST:PORT`, `HOST:PORT`
//! or `unix:PATH`): HTTP/1 with upgrades (for attach), a cap on
//! connections, a time limit on request headers.

use crate::DockerApi;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

/// Connections held at once at most (each `wait` of a detached `docker
/// run` holds one until its container ends); over it, new ones wait in
/// the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 1024;

/// Connections from one address (IPv6: one /64) at most, so one client
/// cannot hold them all; over it, the connection gets a 503 and is closed.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;

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
    let per_address = Arc::new(Mutex::new(HashMap::new()));
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
            Ok((mut io, peer)) => {
                let Some(ticket) = Ticket::take(&per_address, peer) else {
                    refuse(&mut io).await;
                    continue;
                };
                let api = api.clone();
                conns.spawn(async move {
                    connection(io, api).await;
                    drop((permit, ticket));
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

/// A connection and its peer's address (`None` on a unix socket).
async fn accept(bound: &Bound) -> std::io::Result<(Box<dyn Io>, Option<IpAddr>)> {
    Ok(match bound {
        Bound::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            let _ = s.set_nodelay(true);
            (Box::new(s), Some(peer.ip()))
        }
        Bound::Unix(l, _) => (Box::new(l.accept().await?.0), None),
    })
}

/// One connection counted against its address.
struct Ticket {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: Option<IpAddr>,
}

impl Ticket {
    /// `None` when the address holds [`MAX_CONNECTIONS_PER_ADDRESS`].
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, peer: Option<IpAddr>) -> Option<Ticket> {
        let key = peer.map(network);
        if let Some(k) = key {
            let mut map = counts.lock().unwrap_or_else(PoisonError::into_inner);
            let n = map.entry(k).or_insert(0);
            if *n >= MAX_CONNECTIONS_PER_ADDRESS {
                return None;
            }
            *n += 1;
        }
        Some(Ticket {
            counts: counts.clone(),
            key,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(k) = self.key else { return };
        let mut map = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                map.remove(&k);
            }
        }
    }
}

/// An address as counted: IPv6 by its /64.
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// A 503 for a connection over its address's cap, written without
/// waiting on the client for long.
async fn refuse(io: &mut Box<dyn Io>) {
    use tokio::io::AsyncWriteExt;
    let body = format!(
        "{{\"message\":\"too many connections from your address (at most {MAX_CONNECTIONS_PER_ADDRESS}); close some and try again\"}}\n"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), io.write_all(answer.as_bytes())).await;
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
    fn each_address_holds_at_most_its_share_and_gives_it_back() {
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let me: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        let held: Vec<Ticket> = (0..MAX_CONNECTIONS_PER_ADDRESS)
            .map(|_| Ticket::take(&counts, me).unwrap())
            .collect();
        assert!(Ticket::take(&counts, me).is_none());
        assert!(Ticket::take(&counts, Some("10.0.0.2".parse().unwrap())).is_some());
        assert!(
            Ticket::take(&counts, None).is_some(),
            "unix peers are not counted"
        );
        drop(held);
        assert!(Ticket::take(&counts, me).is_some());
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert_eq!(network(a), network(b));
    }

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
