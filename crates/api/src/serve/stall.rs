//! Noticing a peer that stopped: a connection whose writes make no progress
//! ([`Watched`]), and a request body that stopped sending ([`IdleBody`]).
//! Both time only the waiting: a handler busy with its own work, or a
//! client reading a long response at its own pace, is never cut off.

use crate::metrics::{Metrics, Timeout};
use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A timer armed while something waits, disarmed when it moves.
struct Stopwatch {
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Stopwatch {
    fn new(limit: Duration) -> Self {
        Self { limit, timer: None }
    }

    /// Whether the wait that `pending` reports has lasted `limit` (and
    /// registers for a wake-up when it will).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_ready() {
            self.timer = None;
            return true;
        }
        false
    }

    fn moved(&mut self) {
        self.timer = None;
    }
}

/// An accepted connection whose writes fail once one has waited
/// `write_stall` without progress: the client stopped reading.
pub(crate) struct Watched<T> {
    io: T,
    stall: Stopwatch,
    metrics: Arc<Metrics>,
}

impl<T> Watched<T> {
    pub(crate) fn new(io: T, write_stall: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            io,
            stall: Stopwatch::new(write_stall),
            metrics,
        }
    }

    fn wait<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(r) => {
                self.stall.moved();
                Poll::Ready(r)
            }
            Poll::Pending if self.stall.expired(cx) => {
                self.metrics.doors.timed_out(Timeout::Write);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading the response",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wait(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wait(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.wait(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_shutdown(cx);
        self.wait(cx, polled)
    }
}

/// The error a request body ends with when it stopped sending.
#[derive(Debug)]
pub(crate) struct BodyIdle(pub Duration);

impl std::fmt::Display for BodyIdle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&body_idle_message(self.0))
    }
}

/// What a client whose body stopped sending for `idle` is told.
pub(crate) fn body_idle_message(idle: Duration) -> String {
    format!(
        "the request body sent nothing for {} s; keep sending, or send it again",
        idle.as_secs()
    )
}

impl std::error::Error for BodyIdle {}

/// The first `E` in `e`'s chain of causes, `e` included.
pub(crate) fn find_cause<'a, E: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// How long the body was idle, if `e` was caused by a [`BodyIdle`].
pub(crate) fn is_body_idle(e: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    find_cause::<BodyIdle>(e).map(|idle| idle.0)
}

/// A request body that fails with [`BodyIdle`] once its reader has waited
/// `idle` for a frame.
pub(crate) struct IdleBody<B> {
    inner: B,
    idle: Stopwatch,
    metrics: Arc<Metrics>,
}

impl<B> IdleBody<B> {
    pub(crate) fn new(inner: B, idle: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            idle: Stopwatch::new(idle),
            metrics,
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.idle.moved();
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.idle.expired(cx) {
                    return Poll::Pending;
                }
                this.metrics.doors.timed_out(Timeout::Body);
                let limit = this.idle.limit;
                Poll::Ready(Some(Err(Box::new(BodyIdle(limit)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
