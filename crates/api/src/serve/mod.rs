//! Serving on a listener the caller bound, until the caller's shutdown
//! future completes; in-flight requests then get [`DRAIN_TIMEOUT`] to finish.
//!
//! Every connection is held to the [`HttpLimits`] of the state: a cap per
//! client address and in all (over it: a 503 and the connection closed),
//! a time limit on request headers (hyper's), on a request body that stops
//! sending ([`stall::IdleBody`]), on a response write that makes no
//! progress ([`stall::Watched`]), TCP keep-alive probes for peers that
//! vanished, and (in the router, [`crate::router::deadline`]) a time from
//! headers to response.

mod gate;
pub mod limits;
pub(crate) mod stall;

use crate::metrics::{Metrics, Timeout};
use crate::{router, ApiError, AppState};
use axum::body::Body;
use gate::{Full, Gate};
use hyper_util::rt::{TokioIo, TokioTimer};
use limits::{
    HttpLimits, MAX_HEADER_BYTES, TCP_KEEPALIVE, TCP_KEEPALIVE_INTERVAL, TCP_KEEPALIVE_PROBES,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long in-flight requests may take to finish after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the accept loop pauses after a failed accept (out of file
/// descriptors, most likely) before trying again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Serves the API on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish (at most [`DRAIN_TIMEOUT`])
/// and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    let metrics = state.metrics.clone();
    let service = state.service.clone();
    let app = router(state);
    let gate = Gate::new(limits.max_connections, limits.max_connections_per_address);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut accept_failing = false;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => {
                accept_failing = false;
                a
            }
            Err(e) => {
                if !accept_failing {
                    eprintln!("tessera-api: cannot accept connections: {e}; retrying");
                    accept_failing = true;
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let ticket = match gate.enter(peer.ip()) {
            Ok(ticket) => ticket,
            Err(full) => {
                metrics.doors.refused(full == Full::Address);
                refuse(&stream, full, &limits);
                continue;
            }
        };
        let conn = Connection {
            app: app.clone(),
            limits: limits.clone(),
            metrics: metrics.clone(),
            stop: stopped.clone(),
        };
        connections.spawn(async move {
            conn.run(stream).await;
            drop(ticket);
        });
    }
    drop(listener);
    service.close();
    let _ = stop.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        eprintln!(
            "tessera-api: requests still running after {}s of shutdown; stopping anyway",
            DRAIN_TIMEOUT.as_secs()
        );
        connections.abort_all();
    }
    Ok(())
}

/// Answers a connection over a cap with a 503, without waiting for
/// anything (a full socket buffer just loses the answer), and closes it.
fn refuse(stream: &TcpStream, full: Full, limits: &HttpLimits) {
    let why = match full {
        Full::Address => format!(
            "too many connections from your address (at most {}); close some and try again",
            limits.max_connections_per_address
        ),
        Full::Server => format!(
            "the server holds as many connections as it may ({}); try again in a moment",
            limits.max_connections
        ),
    };
    let _ = stream.try_write(&crate::error::raw_response(ApiError::Busy {
        message: why,
        retry_after: 1,
    }));
}

/// What each connection's task needs.
struct Connection {
    app: axum::Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        self.metrics.doors.opened();
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(TCP_KEEPALIVE)
            .with_interval(TCP_KEEPALIVE_INTERVAL)
            .with_retries(TCP_KEEPALIVE_PROBES);
        if let Err(e) = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive) {
            eprintln!("tessera-api: cannot set TCP keep-alive on a connection: {e}");
        }
        let io = stall::Watched::new(
            stream,
            self.limits.write_stall_timeout,
            self.metrics.clone(),
        );
        let (app, idle, metrics) = (
            self.app.clone(),
            self.limits.body_idle_timeout,
            self.metrics.clone(),
        );
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let req = req.map(|b| Body::new(stall::IdleBody::new(b, idle, metrics.clone())));
                app.clone().oneshot(req)
            });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_header_size(MAX_HEADER_BYTES);
        let conn = http.serve_connection(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let ended = tokio::select! {
            ended = conn.as_mut() => ended,
            () = stopped(&mut self.stop) => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = ended {
            if e.is_timeout() {
                self.metrics.doors.timed_out(Timeout::Header);
            }
        }
        self.metrics.doors.closed();
    }
}

/// Returns once the server stops.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
