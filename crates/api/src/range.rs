//! Serving a file with HTTP range requests: one `Range: bytes=...` range
//! (`a-b`, `a-`, `-n`) gets a 206, an unsatisfiable one a 416, anything else
//! (no header, several ranges, a malformed one) the whole file, as RFC 9110
//! allows. The file is streamed from a task, never read into memory.

use crate::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

/// What a request's `Range` header asks of a file of some length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wanted {
    Whole,
    /// Bytes `first..=last`.
    Part {
        first: u64,
        last: u64,
    },
    Unsatisfiable,
}

/// Reads a `Range` header value against a file of `len` bytes.
pub(crate) fn parse_range(value: Option<&str>, len: u64) -> Wanted {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim().is_empty(), num(a), b.trim().is_empty(), num(b)) {
        // bytes=-n: the last n bytes.
        (true, _, false, Some(n)) => {
            if n == 0 || len == 0 {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part {
                    first: len.saturating_sub(n),
                    last: len - 1,
                }
            }
        }
        // bytes=a-
        (false, Some(first), true, _) => {
            if first >= len {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part {
                    first,
                    last: len - 1,
                }
            }
        }
        // bytes=a-b
        (false, Some(first), false, Some(last)) if first <= last => {
            if first >= len {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part {
                    first,
                    last: last.min(len - 1),
                }
            }
        }
        _ => Wanted::Whole,
    }
}

/// The response for `path` (already known to exist) under the request's
/// headers: 200 with the whole file, 206 with one range, or 416.
pub(crate) async fn serve_file(
    path: &Path,
    content_type: &str,
    download_name: &str,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ApiError::internal(format!("opening {}: {e}", path.display())))?;
    serve_opened(file, path, content_type, download_name, request).await
}

/// [`serve_file`] for a file its caller opened (confined, say); `path`
/// names it in errors only.
pub(crate) async fn serve_opened(
    mut file: tokio::fs::File,
    path: &Path,
    content_type: &str,
    download_name: &str,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(format!("reading {}: {e}", path.display())))?
        .len();
    let range = request.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, first, count) = match parse_range(range, len) {
        Wanted::Whole => (StatusCode::OK, 0, len),
        Wanted::Part { first, last } => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        Wanted::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable { len }),
    };
    file.seek(std::io::SeekFrom::Start(first))
        .await
        .map_err(|e| ApiError::internal(format!("seeking in {}: {e}", path.display())))?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(pump(file, count, tx));
    let mut response = (status, Body::new(FileBody { rx, left: count })).into_response();
    let headers = response.headers_mut();
    let value = |s: String| HeaderValue::from_str(&s).map_err(ApiError::internal);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, value(count.to_string())?);
    headers.insert(header::CONTENT_TYPE, value(content_type.to_string())?);
    headers.insert(
        header::CONTENT_DISPOSITION,
        value(format!("attachment; filename=\"{download_name}\""))?,
    );
    if status == StatusCode::PARTIAL_CONTENT {
        let last = first + count - 1;
        headers.insert(
            header::CONTENT_RANGE,
            value(format!("bytes {first}-{last}/{len}"))?,
        );
    }
    Ok(response)
}

/// Reads `count` bytes of `file` into `tx`, a chunk at a time; stops when
/// the client goes away.
async fn pump(mut file: tokio::fs::File, mut count: u64, tx: mpsc::Sender<std::io::Result<Bytes>>) {
    let mut buf = vec![0u8; 64 << 10];
    while count > 0 {
        let want = buf.len().min(usize::try_from(count).unwrap_or(usize::MAX));
        let sent = match file.read(&mut buf[..want]).await {
            Ok(0) => {
                let e = std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file shrank while it was being sent",
                );
                tx.send(Err(e)).await
            }
            Ok(n) => {
                count -= n as u64;
                tx.send(Ok(Bytes::copy_from_slice(&buf[..n]))).await
            }
            Err(e) => tx.send(Err(e)).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// A response body fed by [`pump`], with an exact size.
struct FileBody {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    left: u64,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.rx.poll_recv(cx).map(|chunk| {
            chunk.map(|r| {
                r.map(|bytes| {
                    self.left = self.left.saturating_sub(bytes.len() as u64);
                    Frame::data(bytes)
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_range, Wanted};

    fn part(first: u64, last: u64) -> Wanted {
        Wanted::Part { first, last }
    }

    #[test]
    fn single_ranges_are_read_against_the_length() {
        let table = [
            (Some("bytes=0-99"), 1000, part(0, 99)),
            (Some("bytes=990-2000"), 1000, part(990, 999)),
            (Some("bytes=500-"), 1000, part(500, 999)),
            (Some("bytes=-100"), 1000, part(900, 999)),
            (Some("bytes=-5000"), 1000, part(0, 999)),
            (Some("bytes=0-0"), 1, part(0, 0)),
            (Some(" bytes=10-19 "), 1000, part(10, 19)),
        ];
        for (header, len, want) in table {
            assert_eq!(parse_range(header, len), want, "{header:?} of {len}");
        }
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        for (header, len) in [
            ("bytes=1000-", 1000),
            ("bytes=1000-1999", 1000),
            ("bytes=-0", 1000),
            ("bytes=-10", 0),
            ("bytes=0-", 0),
        ] {
            assert_eq!(
                parse_range(Some(header), len),
                Wanted::Unsatisfiable,
                "{header} of {len}"
            );
        }
    }

    #[test]
    fn other_range_headers_get_the_whole_file() {
        for header in [
            None,
            Some("bytes=0-1,5-6"),
            Some("items=0-5"),
            Some("bytes=5-2"),
            Some("bytes=a-b"),
            Some("bytes=-"),
            Some("bytes=+1-2"),
            Some("bytes=99999999999999999999999-"),
        ] {
            assert_eq!(parse_range(header, 1000), Wanted::Whole, "{header:?}");
        }
    }
}
