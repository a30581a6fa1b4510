//! The file routes of an attempt on an http worker: its inputs served
//! (with Range and their sha256), its outputs received in pieces into a
//! partial file and renamed into place while the attempt is still held,
//! removals; fenced like every attempt route, confined to its reach.

use super::{is_partial, lock, AttemptFiles, Key};
use crate::body::QueryArgs;
use crate::workers::{Pool, WorkerToken, Workers};
use crate::ApiError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use tessera_confine::{self as confine, ConfineError};
use tessera_types::{AttemptNo, JobId, Reach, TaskRef};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileQuery {
    path: PathBuf,
    #[serde(default)]
    offset: Option<u64>,
}

type AttemptPath = Path<(String, i64, u32, AttemptNo)>;

/// The attempt's plan, if `token`'s worker `id` still holds the attempt
/// (else 409 fenced), and `path` is plain and absolute (else 400).
fn checked(
    pool: &Pool,
    id: &str,
    token: &WorkerToken,
    key: Key,
    path: &FsPath,
) -> Result<Arc<AttemptFiles>, ApiError> {
    if !tessera_media::is_plain_absolute(path) {
        return Err(ApiError::BadRequest(format!(
            "{}: give an absolute path without . or .. components",
            path.display()
        )));
    }
    let mut inner = pool.lock();
    crate::workers::holds_attempt(&mut inner, id, token, key)?;
    drop(inner);
    pool.files.plan(key).ok_or_else(|| {
        ApiError::Forbidden(format!(
            "attempt {} of {} has no file plan (its worker shares the server's filesystem)",
            key.1, key.0
        ))
    })
}

fn not_planned(path: &FsPath, what: &str) -> ApiError {
    ApiError::Forbidden(format!(
        "{} is not {what} of this attempt; only the files in its plan are served",
        path.display()
    ))
}

pub(super) fn key(job: i64, index: u32, attempt: AttemptNo) -> Key {
    (TaskRef::new(JobId(job), index), attempt)
}

/// `GET .../files?path=ABS`: an input of the attempt, with `Range` and
/// `X-Tessera-Sha256`.
pub(crate) async fn download(
    State(s): State<Workers>,
    token: WorkerToken,
    Path((id, job, index, attempt)): AttemptPath,
    QueryArgs(q): QueryArgs<FileQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pool = s.pool()?;
    let plan = checked(&pool, &id, &token, key(job, index, attempt), &q.path)?;
    if !plan.inputs.iter().any(|f| f.path == q.path) {
        return Err(not_planned(&q.path, "an input"));
    }
    let (p, pl) = (q.path.clone(), pool.clone());
    let (sum, file) = tokio::task::spawn_blocking(move || {
        let sum = pl.files.sum(&plan.reach, &p)?;
        Ok::<_, ConfineError>((sum, confine::open(&plan.reach, &p)?))
    })
    .await?
    .map_err(|e| confine_error(e, "the input is gone"))?;
    let file = tokio::fs::File::from_std(file);
    let mut r =
        crate::range::serve_opened(file, &q.path, "application/octet-stream", "input", &headers)
            .await?;
    let v = HeaderValue::from_str(&sum.2).map_err(ApiError::internal)?;
    r.headers_mut().insert("x-tessera-sha256", v);
    Ok(r)
}

/// A confined file operation's failure as the worker sees it: a path the
/// attempt may not use is a 403, a missing file a 404 (`gone` says what it
/// means), the rest internal.
fn confine_error(e: ConfineError, gone: &str) -> ApiError {
    match e {
        ConfineError::OutOfReach(_) | ConfineError::Refused { .. } => {
            ApiError::Forbidden(e.to_string())
        }
        e if e.is_not_found() => ApiError::NotFound(format!("{e}; {gone}")),
        e => ApiError::internal(e),
    }
}

/// Runs a confined file operation off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ConfineError> + Send + 'static,
    gone: &'static str,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await?
        .map_err(|e| confine_error(e, gone))
}

/// The attempt's reach with the partial file of one of its outputs (beside
/// it: outside the grant when the output is a granted file itself).
fn partial_reach(plan: &AttemptFiles, part: &FsPath) -> Reach {
    plan.reach.and(tessera_types::Grant::write(part))
}

pub(super) fn partial_of(path: &FsPath, k: Key) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part-{}-{}-{}", k.0.job.0, k.0.index, k.1))
}

/// The pool, the attempt's key and its plan, once `token`'s worker `id`
/// holds the attempt and `path` is one of its outputs.
fn output_checked(
    s: &Workers,
    token: &WorkerToken,
    (id, job, index, attempt): &(String, i64, u32, AttemptNo),
    path: &FsPath,
) -> Result<(Arc<Pool>, Key, Arc<AttemptFiles>), ApiError> {
    let pool = s.pool()?;
    let k = key(*job, *index, *attempt);
    let plan = checked(&pool, id, token, k, path)?;
    if plan.outputs.iter().any(|o| o.covers(path)) && !is_partial(path) {
        Ok((pool, k, plan))
    } else {
        Err(not_planned(path, "an output"))
    }
}

/// `GET .../files/status?path=ABS`: how many bytes of an upload arrived.
pub(crate) async fn upload_status(
    State(s): State<Workers>,
    token: WorkerToken,
    Path(at): AttemptPath,
    QueryArgs(q): QueryArgs<FileQuery>,
) -> Result<Json<Value>, ApiError> {
    let (_, k, plan) = output_checked(&s, &token, &at, &q.path)?;
    let part = partial_of(&q.path, k);
    let received: u64 = blocking(
        move || match confine::stamp(&partial_reach(&plan, &part), &part) {
            Err(e) if e.is_not_found() => Ok(0),
            other => other.map(|(len, _)| len),
        },
        "",
    )
    .await?;
    Ok(Json(json!({ "received": received })))
}

fn header_of<'a>(h: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest(format!("send the {name} header")))
}

/// Opens the partial file of an upload for writing at `offset` (created,
/// and given to the attempt's user, if new); the bytes it holds.
fn open_partial(
    plan: &AttemptFiles,
    part: &FsPath,
    offset: u64,
) -> Result<(std::fs::File, u64), ApiError> {
    let reach = partial_reach(plan, part);
    let have = match confine::stamp(&reach, part) {
        Ok((len, _)) => len,
        Err(e) if e.is_not_found() => 0,
        Err(e) => return Err(confine_error(e, "")),
    };
    if offset != have && offset != 0 {
        return Err(ApiError::BadRequest(format!(
            "offset {offset} does not follow the {have} bytes received; resume from {have}"
        )));
    }
    let how = if offset == 0 {
        confine::Write::Truncate
    } else {
        confine::Write::Append
    };
    // Given to the attempt's user: its project's later tasks read it (and
    // write beside it, in the folders made on its way).
    let make = confine::Make {
        owner: plan.owner,
        ..confine::Make::output(how)
    };
    let file = confine::create(&reach, part, make).map_err(|e| confine_error(e, ""))?;
    Ok((file, offset))
}

/// `PUT .../files?path=ABS&offset=N`: a piece of an output.
pub(crate) async fn upload(
    State(s): State<Workers>,
    token: WorkerToken,
    Path(at): AttemptPath,
    QueryArgs(q): QueryArgs<FileQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (pool, k, plan) = output_checked(&s, &token, &at, &q.path)?;
    let sha = header_of(&headers, "x-tessera-sha256")?.to_ascii_lowercase();
    let size: u64 = header_of(&headers, "x-tessera-size")?
        .parse()
        .map_err(|_| ApiError::BadRequest("X-Tessera-Size is not a number".into()))?;
    if size > s.service.max_upload_bytes() {
        return Err(crate::incoming::too_large(s.service.max_upload_bytes()));
    }
    let offset = q.offset.unwrap_or(0);
    let part = partial_of(&q.path, k);
    let (file, _) = {
        let (plan, part) = (plan.clone(), part.clone());
        tokio::task::spawn_blocking(move || open_partial(&plan, &part, offset)).await??
    };
    let mut file = tokio::fs::File::from_std(file);
    let mut got = offset;
    let mut incoming = crate::incoming::Incoming::Body(body);
    let written: Result<(), ApiError> = async {
        use tokio::io::AsyncWriteExt;
        while let Some(chunk) = incoming.next_chunk().await? {
            got += chunk.len() as u64;
            if got > size {
                return Err(ApiError::BadRequest(format!(
                    "the body goes past the announced size of {size} bytes"
                )));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::internal(format!("writing {}: {e}", part.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| ApiError::internal(format!("writing {}: {e}", part.display())))
    }
    .await;
    let file = file.into_std().await;
    let remove_part = {
        let (plan, part) = (plan.clone(), part.clone());
        move || drop(confine::remove(&partial_reach(&plan, &part), &part))
    };
    if let Err(e) = written {
        if matches!(e, ApiError::BadRequest(ref m) if m.contains("announced size")) {
            tokio::task::spawn_blocking(remove_part).await?;
        }
        return Err(e);
    }
    if got < size {
        return Ok(Json(json!({ "received": got, "complete": false })));
    }
    // The whole partial, read back through the descriptor it was written
    // with (no second open by path).
    let actual = tokio::task::spawn_blocking(move || {
        use std::io::Seek;
        let mut f = file;
        f.rewind()?;
        tessera_media::sha256_of(&mut f)
    })
    .await?
    .map_err(|e| ApiError::internal(format!("reading {}: {e}", part.display())))?;
    if actual != sha {
        tokio::task::spawn_blocking(remove_part).await?;
        return Err(ApiError::Invalid(format!(
            "checksum mismatch for {}: the {size} bytes received have sha256 {actual}, the \
             worker said {sha}; the partial upload was deleted, send it again",
            q.path.display()
        )));
    }
    // Lands only while the attempt is still held.
    let mut inner = pool.lock();
    if let Err(e) = crate::workers::holds_attempt(&mut inner, &at.0, &token, k) {
        drop(inner);
        remove_part();
        return Err(e);
    }
    confine::rename_in_place(&partial_reach(&plan, &part), &part, &q.path)
        .map_err(|e| confine_error(e, ""))?;
    drop(inner);
    if let Ok((sz, mtime)) = confine::stamp(&plan.reach, &q.path) {
        lock(&pool.files.sums).insert(q.path.clone(), (sz, mtime, actual));
    }
    Ok(Json(json!({ "received": got, "complete": true })))
}

/// `DELETE .../files?path=ABS`: an output the attempt removed.
pub(crate) async fn remove(
    State(s): State<Workers>,
    token: WorkerToken,
    Path(at): AttemptPath,
    QueryArgs(q): QueryArgs<FileQuery>,
) -> Result<Json<Value>, ApiError> {
    let (pool, _, plan) = output_checked(&s, &token, &at, &q.path)?;
    let inner = pool.lock();
    let removed = confine::remove(&plan.reach, &q.path).map_err(|e| confine_error(e, ""));
    drop(inner);
    let removed = removed?;
    Ok(Json(json!({ "removed": removed })))
}
