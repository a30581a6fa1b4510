//! The no-shared-filesystem data plane: for each attempt handed to a
//! worker that runs with `--data http`, the server decides which files it
//! reads (`inputs`: path, size, mtime, sha256) and which it may send back
//! (`outputs`), and serves exactly those, fenced by attempt number like
//! every other attempt route.
//!
//! Uploads arrive in pieces at an offset, into a partial file beside the
//! target (`.NAME.part-<job>-<index>-<attempt>`); once the partial holds
//! the announced size its sha256 is checked and it is renamed into place,
//! under the pool's lock so an attempt given up meanwhile cannot land
//! anything. A half file is never at the target path.
//!
//! Every file the server opens, creates, renames or removes here is the
//! attempt's and lies inside its reach (its job folder, its project's
//! uploads, what its job was granted), reached through no symbolic link
//! (`tessera_confine`): a member's task can change what its folders hold,
//! and the server does this work as root. A plan that would name a file
//! outside the reach is refused whole, and the attempt fails saying why.

use super::{Pool, WorkerToken, Workers};
use crate::body::QueryArgs;
use crate::ApiError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use tessera_confine::{self as confine, ConfineError};
use tessera_exec::StartRequest;
use tessera_types::{Action, AttemptNo, JobId, Reach, TaskRef};

/// One file an attempt reads.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct InputFile {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha256: String,
}

/// What an attempt may send back.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub(crate) enum Output {
    /// Exactly this file.
    File(PathBuf),
    /// Any file under this directory.
    Tree(PathBuf),
    /// Any file directly in this directory.
    Children(PathBuf),
}

impl Output {
    fn covers(&self, p: &FsPath) -> bool {
        match self {
            Output::File(f) => f == p,
            Output::Tree(d) => p != d && p.starts_with(d),
            Output::Children(d) => p.parent() == Some(d.as_path()),
        }
    }
}

/// An attempt's files, as the lease answer carries them (`files`).
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct AttemptFiles {
    pub inputs: Vec<InputFile>,
    pub outputs: Vec<Output>,
    /// Directories that must exist before it runs.
    pub dirs: Vec<PathBuf>,
    /// Why the attempt may not run (its op names a file outside its
    /// reach): the worker fails it with this reason, running nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// What every file above lies in (see the module doc); kept for the
    /// file routes.
    #[serde(skip)]
    pub reach: Reach,
    /// The uid and gid that files landed for the attempt are given to (its
    /// project's task user), when it has one.
    #[serde(skip)]
    pub owner: Option<(u32, u32)>,
}

type Key = (TaskRef, AttemptNo);

/// The plans of attempts on http workers and the sha256 of files served.
#[derive(Default)]
pub(crate) struct DataPlane {
    plans: Mutex<HashMap<Key, Arc<AttemptFiles>>>,
    /// sha256 by path, valid while size and mtime match.
    sums: Mutex<HashMap<PathBuf, (u64, i64, String)>>,
}

impl DataPlane {
    fn plan(&self, key: Key) -> Option<Arc<AttemptFiles>> {
        lock(&self.plans).get(&key).cloned()
    }

    /// Keeps the plans of the attempts for which `held` is true.
    pub(crate) fn retain(&self, held: impl Fn(&Key) -> bool) {
        lock(&self.plans).retain(|k, _| held(k));
    }

    /// The sha256 of `path` inside `reach` (cached by size and mtime);
    /// `(size, mtime, sum)`.
    pub(crate) fn sum(
        &self,
        reach: &Reach,
        path: &FsPath,
    ) -> Result<(u64, i64, String), ConfineError> {
        let (size, mtime) = confine::stamp(reach, path)?;
        if let Some((s, m, sum)) = lock(&self.sums).get(path) {
            if (*s, *m) == (size, mtime) {
                return Ok((size, mtime, sum.clone()));
            }
        }
        let mut file = confine::open(reach, path)?;
        let sum = tessera_media::sha256_of(&mut file).map_err(|e| ConfineError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let (size2, mtime2) = confine::stamp(reach, path)?;
        if (size2, mtime2) == (size, mtime) {
            lock(&self.sums).insert(path.to_path_buf(), (size, mtime, sum.clone()));
        }
        Ok((size, mtime, sum))
    }

    /// Works out (hashing inputs; blocking) and keeps an attempt's files.
    pub(crate) fn prepare(&self, req: &StartRequest) -> Arc<AttemptFiles> {
        let mut files = self.files_of(req);
        files.reach = req.reach.clone();
        files.owner = req.user.as_ref().map(|u| (u.uid, u.gid));
        let files = Arc::new(files);
        lock(&self.plans).insert((req.task, req.attempt), files.clone());
        files
    }

    fn files_of(&self, req: &StartRequest) -> AttemptFiles {
        let mut inputs: Vec<PathBuf> = Vec::new();
        let mut outputs = Vec::new();
        let mut dirs = vec![req.log_dir.clone()];
        match &req.action {
            Action::Noop => {}
            Action::Op { op, args } => match tessera_media::op_files(op, args, Some(&req.reach)) {
                Ok(f) => {
                    inputs = f.inputs;
                    outputs = f.outputs.into_iter().map(Output::File).collect();
                    dirs.extend(f.dirs);
                }
                // Outside its reach: refused here, nothing is named.
                Err(e) if e.is_user_error() => {
                    return AttemptFiles {
                        refused: Some(format!("op {op}: {e}")),
                        ..AttemptFiles::default()
                    }
                }
                // The op fails on the worker with the same cause, said there.
                Err(e) => eprintln!(
                    "tessera-api: the files of {} attempt {}: {e}",
                    req.task, req.attempt
                ),
            },
            Action::Command { .. } | Action::Script { .. } => {
                // The job directory: <data>/jobs/<job>/, logs in its logs/.
                if let Some(job_dir) = req.log_dir.parent() {
                    walk(job_dir, &req.log_dir, &mut inputs);
                    outputs.push(Output::Children(job_dir.to_path_buf()));
                    dirs.push(job_dir.to_path_buf());
                }
                outputs.push(Output::Tree(req.workdir.clone()));
                dirs.push(req.workdir.clone());
            }
        }
        // An expanding task's follow-on tasks (read by the driver).
        if let Some(expand) = req.env.get("TESSERA_EXPAND").map(PathBuf::from) {
            if let Some(dir) = expand.parent() {
                dirs.push(dir.to_path_buf());
            }
            outputs.push(Output::File(expand));
        }
        for stream in ["stdout", "stderr"] {
            let log = tessera_exec::log_file(&req.log_dir, &req.name, req.attempt, stream);
            outputs.push(Output::File(log));
        }
        let inputs = inputs
            .into_iter()
            .filter_map(|path| match self.sum(&req.reach, &path) {
                Ok((size, mtime_ns, sha256)) => Some(InputFile {
                    path,
                    size,
                    mtime_ns,
                    sha256,
                }),
                Err(e) => {
                    // A missing input: the attempt fails on the worker saying so.
                    eprintln!("tessera-api: input {} of {}: {e}", path.display(), req.task);
                    None
                }
            })
            .collect();
        AttemptFiles {
            inputs,
            outputs,
            dirs,
            ..AttemptFiles::default()
        }
    }
}

/// Every regular file under `dir`, except under `skip` (symbolic links are
/// left out; each file is opened confined later anyway).
fn walk(dir: &FsPath, skip: &FsPath, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() && p != skip => walk(&p, skip, into),
            Ok(t) if t.is_file() && !is_partial(&p) => into.push(p),
            _ => {}
        }
    }
}

fn is_partial(p: &FsPath) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.contains(".part-"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

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
    super::holds_attempt(&mut inner, id, token, key)?;
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

fn key(job: i64, index: u32, attempt: AttemptNo) -> Key {
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

fn partial_of(path: &FsPath, k: Key) -> PathBuf {
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
    if let Err(e) = super::holds_attempt(&mut inner, &at.0, &token, k) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_cover_their_files_only() {
        let f = Output::File("/d/jobs/1/a".into());
        assert!(f.covers(FsPath::new("/d/jobs/1/a")));
        assert!(!f.covers(FsPath::new("/d/jobs/1/b")));
        let t = Output::Tree("/d/jobs/1/tasks/x".into());
        assert!(t.covers(FsPath::new("/d/jobs/1/tasks/x/deep/f")));
        assert!(!t.covers(FsPath::new("/d/jobs/1/tasks/x")));
        assert!(!t.covers(FsPath::new("/d/jobs/1/tasks/xy/f")));
        let c = Output::Children("/d/jobs/1".into());
        assert!(c.covers(FsPath::new("/d/jobs/1/f")));
        assert!(!c.covers(FsPath::new("/d/jobs/1/logs/f")));
    }

    #[test]
    fn partial_names_sit_beside_the_target() {
        let k = key(7, 2, 3);
        let p = partial_of(FsPath::new("/d/chunks/c.nut"), k);
        assert_eq!(p, FsPath::new("/d/chunks/.c.nut.part-7-2-3"));
        assert!(is_partial(&p));
    }
}
