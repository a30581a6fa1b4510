//! Serving on a listener the caller bound, until the caller's shutdown
//! future completes; in-flight requests then get [`DRAIN_TIMEOUT`] to finish.

use crate::{router, AppState};
use std::future::{Future, IntoFuture};
use std::time::Duration;

/// How long in-flight requests may take to finish after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the API on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish (at most [`DRAIN_TIMEOUT`])
/// and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let closing = state.closing.clone();
    let server = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .into_future();
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        () = shutdown => {}
    }
    closing.send_replace(true);
    let _ = stop.send(());
    match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
        Ok(result) => result,
        Err(_) => {
            eprintln!(
                "tessera-api: requests still running after {}s of shutdown; stopping anyway",
                DRAIN_TIMEOUT.as_secs()
            );
            Ok(())
        }
    }
}
