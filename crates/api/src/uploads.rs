//! Uploads: videos streamed to disk (a raw body or the `file` part of a
//! `multipart/form-data` body), probed before they are accepted, listed
//! and deleted.
//!
//! ```text
//! uploads/<project id>/<upload id>/.incoming        while it arrives and is probed
//! uploads/<project id>/<upload id>/<safe name>      once accepted
//! uploads/<project id>/<upload id>/.upload.json     name, bytes, created, duration
//! uploads/<project id>/<upload id>/.encodes/<id>    one mark per encode that read it
//! ```
//!
//! Nothing is ever held whole in memory, a body past the limit is a 413,
//! and whatever is refused (too large, not a video, interrupted) is removed
//! with its directory. The probe decides what a file is, never its name.

use crate::encodes::{is_id, media_error, remove_dir, JOB_KEY_PREFIX};
use crate::form::{self, Form};
use crate::state::now_ms;
use crate::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::multipart::Field;
use axum::extract::Request;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tessera_media::{self as media, MediaInfo, StreamInfo};
use tessera_store::ProjectRecord;
use tokio::io::AsyncWriteExt;

/// The name an upload has while it arrives.
const INCOMING: &str = ".incoming";
/// An accepted upload's facts, beside it.
const META: &str = ".upload.json";
/// The directory of marks left by the encodes that read an upload.
const MARKS: &str = ".encodes";

/// An accepted upload.
#[derive(Serialize)]
pub(crate) struct UploadView {
    pub upload: String,
    pub name: String,
    pub bytes: u64,
    /// Milliseconds since the Unix epoch.
    pub created: u64,
    /// Seconds, when the container says.
    pub duration: Option<f64>,
    pub streams: Vec<StreamInfo>,
}

/// An upload in a list (and its `.upload.json`).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct UploadItem {
    pub upload: String,
    pub name: String,
    pub bytes: u64,
    pub created: u64,
    pub duration: Option<f64>,
}

/// Where an upload's bytes come from.
pub(crate) enum Incoming<'a> {
    Body(Body),
    /// A form's file part (its bytes counted as the file's).
    Part(Box<Field<'a>>, form::FileData),
}

impl Incoming<'_> {
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        match self {
            Self::Body(body) => loop {
                let frame = std::future::poll_fn(|cx| {
                    http_body::Body::poll_frame(std::pin::Pin::new(&mut *body), cx)
                })
                .await;
                let Some(frame) = frame else {
                    return Ok(None);
                };
                let frame = frame.map_err(|e| match crate::serve::is_body_idle(&e) {
                    Some(idle) => ApiError::RequestTimeout(crate::serve::body_idle_message(idle)),
                    None => ApiError::BadRequest(format!("the upload was interrupted: {e}")),
                })?;
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            },
            Self::Part(field, file) => {
                let chunk = field.chunk().await.map_err(form::multipart_error)?;
                file.read(chunk.as_ref().map_or(0, Bytes::len));
                Ok(chunk)
            }
        }
    }
}

pub(crate) fn too_large(state: &AppState) -> ApiError {
    ApiError::PayloadTooLarge {
        limit: usize::try_from(state.max_upload_bytes).unwrap_or(usize::MAX),
    }
}

/// `e`, with the server's upload limit if it is a 413.
pub(crate) fn with_limit(state: &AppState, e: ApiError) -> ApiError {
    match e {
        ApiError::PayloadTooLarge { .. } => too_large(state),
        other => other,
    }
}

/// An upload from a whole request: the raw body, or the part named `file`
/// of a `multipart/form-data` body. `name` (the query's) wins over the
/// part's file name.
pub(crate) async fn accept(
    state: &AppState,
    project: ProjectRecord,
    name: Option<String>,
    req: Request,
) -> Result<UploadView, ApiError> {
    form::check_declared(state, req.headers())?;
    if !form::is_multipart(req.headers()) {
        let body = Incoming::Body(req.into_body());
        return receive(state, &project, name.as_deref(), body).await;
    }
    let mut form = Form::from_request(state, req).await?;
    let file_data = form.file_data();
    while let Some(mut field) = form.next().await.map_err(|e| with_limit(state, e))? {
        if field.name() == Some("file") {
            let name = name.or_else(|| field.file_name().map(str::to_owned));
            let part = Incoming::Part(Box::new(field), file_data);
            return receive(state, &project, name.as_deref(), part).await;
        }
        // Another field: read and dropped, within the form's limits.
        form::skip(&mut field).await?;
    }
    Err(ApiError::BadRequest(
        "the multipart body has no part named `file`; send the video in a part named file".into(),
    ))
}

/// Streams `incoming` to a new upload of `project`, then probes it:
/// anything but a readable video is refused and removed, as is a body over
/// the limit or one that breaks off.
pub(crate) async fn receive(
    state: &AppState,
    project: &ProjectRecord,
    name: Option<&str>,
    mut incoming: Incoming<'_>,
) -> Result<UploadView, ApiError> {
    let id = crate::keys::random_alphanumeric(20);
    let dir = upload_dir(&state.data_dir, project, &id);
    let name = safe_name(name);
    let tmp = dir.join(INCOMING);
    let bytes = match store(&dir, &tmp, &mut incoming, state.max_upload_bytes).await {
        Ok(Some(n)) => n,
        Ok(None) => {
            remove_dir(&dir).await;
            return Err(too_large(state));
        }
        Err(e) => {
            remove_dir(&dir).await;
            return Err(with_limit(state, e));
        }
    };
    let user = state.project_user(project.id)?;
    let root = state.data_dir.join("uploads");
    let accepted = {
        let (dir, tmp, name) = (dir.clone(), tmp.clone(), name.clone());
        tokio::task::spawn_blocking(move || {
            let settled = settle(&dir, &tmp, &name, bytes)?;
            // Its project's tasks read it; no other project's can.
            crate::tenancy::share_read(&dir.join(&name), &root, user.as_ref()).map_err(|e| {
                ApiError::internal(format!(
                    "upload: sharing {} with its project: {e}",
                    dir.display()
                ))
            })?;
            Ok(settled)
        })
        .await?
    };
    match accepted {
        Ok((item, info)) => Ok(UploadView {
            upload: id,
            name,
            bytes,
            created: item.created,
            duration: item.duration,
            streams: info.streams,
        }),
        Err(e) => {
            remove_dir(&dir).await;
            Err(e)
        }
    }
}

/// Probes the arrived file and, if it is a video, gives it its name and
/// writes its facts beside it.
fn settle(
    dir: &Path,
    tmp: &Path,
    name: &str,
    bytes: u64,
) -> Result<(UploadItem, MediaInfo), ApiError> {
    let info = media::probe(tmp).map_err(|e| media_error(e, tmp, name))?;
    check_moving_picture(&info, name)?;
    let path = dir.join(name);
    std::fs::rename(tmp, &path)
        .map_err(|e| ApiError::internal(format!("upload: renaming {}: {e}", tmp.display())))?;
    let item = UploadItem {
        upload: file_name(dir),
        name: name.to_string(),
        bytes,
        created: now_ms(),
        duration: info.duration,
    };
    let json = serde_json::to_vec(&item).map_err(ApiError::internal)?;
    std::fs::write(dir.join(META), json)
        .map_err(|e| ApiError::internal(format!("upload: writing {}: {e}", dir.display())))?;
    Ok((item, info))
}

/// ffprobe reads a still image (PNG, JPEG...) as a one-frame video; those
/// are refused too.
pub(crate) fn check_moving_picture(info: &MediaInfo, name: &str) -> Result<(), ApiError> {
    let format = info.format_name.as_str();
    if format == "image2" || format.ends_with("_pipe") {
        return Err(ApiError::Invalid(format!(
            "{name}: this is a still image ({format}), not a video; upload a video file"
        )));
    }
    Ok(())
}

/// Writes `incoming` to `path` (creating `dir`); `None` when it exceeds `limit`.
async fn store(
    dir: &Path,
    path: &Path,
    incoming: &mut Incoming<'_>,
    limit: u64,
) -> Result<Option<u64>, ApiError> {
    let io = |what: &str, e: std::io::Error| {
        ApiError::internal(format!("upload: {what} {}: {e}", path.display()))
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io("creating the directory of", e))?;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| io("creating", e))?;
    let mut written = 0u64;
    while let Some(data) = incoming.next_chunk().await? {
        written += data.len() as u64;
        if written > limit {
            return Ok(None);
        }
        file.write_all(&data).await.map_err(|e| io("writing", e))?;
    }
    file.flush().await.map_err(|e| io("writing", e))?;
    Ok(Some(written))
}

/// `project`'s accepted uploads, newest first.
pub(crate) async fn list(
    state: &AppState,
    project: &ProjectRecord,
) -> Result<Vec<UploadItem>, ApiError> {
    let root = state
        .data_dir
        .join("uploads")
        .join(project.id.0.to_string());
    tokio::task::spawn_blocking(move || {
        let entries = match std::fs::read_dir(&root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ApiError::internal(format!("{}: {e}", root.display()))),
        };
        let mut items: Vec<UploadItem> = entries
            .flatten()
            .filter(|e| is_id(&e.file_name().to_string_lossy()))
            .filter_map(|e| item(&e.path()))
            .collect();
        items.sort_by(|a, b| b.created.cmp(&a.created).then(b.upload.cmp(&a.upload)));
        Ok(items)
    })
    .await?
}

/// The list entry of the upload in `dir`, if it was accepted (an upload
/// from before `.upload.json` existed is described from its file).
fn item(dir: &Path) -> Option<UploadItem> {
    let file = visible_file(dir)?;
    if let Ok(json) = std::fs::read(dir.join(META)) {
        if let Ok(item) = serde_json::from_slice::<UploadItem>(&json) {
            return Some(item);
        }
    }
    let meta = std::fs::metadata(&file).ok()?;
    let created = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    Some(UploadItem {
        upload: file_name(dir),
        name: file_name(&file),
        bytes: meta.len(),
        created,
        duration: None,
    })
}

/// Deletes one of `project`'s uploads; refused (409) while an encode that
/// reads it has not ended.
pub(crate) async fn delete(
    state: &AppState,
    project: &ProjectRecord,
    id: &str,
) -> Result<(), ApiError> {
    let dir = find(&state.data_dir, project, id).await?.0;
    let marks = {
        let marks = dir.join(MARKS);
        tokio::task::spawn_blocking(move || -> Vec<String> {
            let Ok(entries) = std::fs::read_dir(marks) else {
                return Vec::new();
            };
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| is_id(n))
                .collect()
        })
        .await?
    };
    let busy = state
        .db(move |db| {
            for mark in marks {
                if let Some(job) = db.find_job_by_key(&format!("{JOB_KEY_PREFIX}{mark}"))? {
                    if !job.state.is_terminal() {
                        return Ok(Some(job));
                    }
                }
            }
            Ok(None)
        })
        .await?;
    if let Some(job) = busy {
        return Err(ApiError::Conflict(format!(
            "upload {id} is the input of job {}, which is still {}; cancel it or wait for it to end",
            job.id, job.state
        )));
    }
    remove_dir(&dir).await;
    Ok(())
}

/// Marks upload `dir` as read by encode `encode` (see [`delete`]).
pub(crate) async fn mark_use(dir: &Path, encode: &str) -> Result<(), ApiError> {
    let marks = dir.join(MARKS);
    let io = |e: std::io::Error| ApiError::internal(format!("{}: {e}", marks.display()));
    tokio::fs::create_dir_all(&marks).await.map_err(io)?;
    tokio::fs::write(marks.join(encode), b"").await.map_err(io)
}

/// The directory and the file of one of `project`'s accepted uploads, or a 404.
pub(crate) async fn find(
    data_dir: &Path,
    project: &ProjectRecord,
    id: &str,
) -> Result<(PathBuf, PathBuf), ApiError> {
    let missing = || {
        ApiError::NotFound(format!(
            "upload {id:?} does not exist in project {}",
            project.name
        ))
    };
    if !is_id(id) {
        return Err(missing());
    }
    let dir = upload_dir(data_dir, project, id);
    let found = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || visible_file(&dir)).await?
    };
    found.map(|file| (dir, file)).ok_or_else(missing)
}

/// The one visible regular file of an upload's directory.
fn visible_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let visible = !e.file_name().to_string_lossy().starts_with('.');
        (visible && e.file_type().is_ok_and(|t| t.is_file())).then(|| e.path())
    })
}

fn upload_dir(data_dir: &Path, project: &ProjectRecord, id: &str) -> PathBuf {
    data_dir
        .join("uploads")
        .join(project.id.0.to_string())
        .join(id)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

/// A client's file name reduced to a safe one: its last path component,
/// letters, digits, `.`, `-` and `_` only, no leading dot; `input` if
/// nothing is left.
pub(crate) fn safe_name(name: Option<&str>) -> String {
    let last = name.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.is_empty() {
        "input".into()
    } else {
        cleaned.into()
    }
}

#[cfg(test)]
mod tests {
    use super::safe_name;

    #[test]
    fn upload_names_cannot_leave_their_directory() {
        let table = [
            (None, "input"),
            (Some("clip.mkv"), "clip.mkv"),
            (Some("../../etc/passwd"), "passwd"),
            (Some("..\\..\\boot.ini"), "boot.ini"),
            (Some(".."), "input"),
            (Some(".hidden.mp4"), "hidden.mp4"),
            (Some(".incoming"), "incoming"),
            (Some("a b/ç.mp4"), "_.mp4"),
            (Some("dir/"), "input"),
        ];
        for (name, want) in table {
            assert_eq!(safe_name(name), want, "{name:?}");
        }
    }
}
