//! The encode service: uploads, encode jobs built from them, and their
//! downloadable outputs. Everything lives under the data directory:
//!
//! ```text
//! uploads/<project id>/<upload id>/<safe name>   an uploaded source (probed: a video)
//! encodes/<encode id>/request.json ...           the job's workdir (chunks, plan)
//! outputs/<encode id>/<stem>.<ext>               the verified result
//! ```
//!
//! Both ids are random and made here; the only client-supplied part of any
//! path is an upload's name, reduced to a safe file name. A job is tied to
//! its output by its key, `encode:<encode id>`, so no table is needed.

use crate::views::JobView;
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tessera_media::{self as media, Codec, EncodeRequest, EncodeSettings, MediaError, StreamInfo};
use tessera_store::{JobRecord, ProjectRecord};
use tessera_types::{JobSpec, JobState};
use tokio::io::AsyncWriteExt;

/// The default of `max_upload_bytes`: 8 GiB.
pub const DEFAULT_MAX_UPLOAD: u64 = 8 << 30;

/// Prefix of an encode job's key; the rest is its encode id.
const KEY_PREFIX: &str = "encode:";

/// An accepted upload.
#[derive(Serialize)]
pub(crate) struct UploadView {
    pub upload: String,
    pub name: String,
    pub bytes: u64,
    /// Seconds, when the container says.
    pub duration: Option<f64>,
    pub streams: Vec<StreamInfo>,
}

/// Streams `body` to a new upload of `project`, then probes it: anything
/// but a readable video is refused and removed, as is a body over the limit.
pub(crate) async fn upload(
    state: &AppState,
    project: ProjectRecord,
    name: Option<&str>,
    declared: Option<u64>,
    body: Body,
) -> Result<UploadView, ApiError> {
    let limit = state.max_upload_bytes;
    let too_large = ApiError::PayloadTooLarge {
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    };
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large);
    }
    let id = crate::keys::random_alphanumeric(20);
    let dir = upload_dir(&state.data_dir, &project, &id);
    let name = safe_name(name);
    let path = dir.join(&name);
    let stored = store_body(&dir, &path, body, limit).await;
    let bytes = match stored {
        Ok(Some(n)) => n,
        Ok(None) => {
            remove_dir(&dir).await;
            return Err(too_large);
        }
        Err(e) => {
            remove_dir(&dir).await;
            return Err(e);
        }
    };
    let probed = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || media::probe(&path)).await?
    };
    match probed {
        Ok(info) => Ok(UploadView {
            upload: id,
            name,
            bytes,
            duration: info.duration,
            streams: info.streams,
        }),
        Err(e) => {
            remove_dir(&dir).await;
            Err(media_error(e, &path, &name))
        }
    }
}

/// Writes `body` to `path` (creating `dir`); `None` when it exceeds `limit`.
async fn store_body(
    dir: &Path,
    path: &Path,
    mut body: Body,
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
    loop {
        let frame = std::future::poll_fn(|cx| {
            http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
        })
        .await;
        let Some(frame) = frame else { break };
        let frame =
            frame.map_err(|e| ApiError::BadRequest(format!("the upload was interrupted: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        written += data.len() as u64;
        if written > limit {
            return Ok(None);
        }
        file.write_all(&data).await.map_err(|e| io("writing", e))?;
    }
    file.flush().await.map_err(|e| io("writing", e))?;
    Ok(Some(written))
}

/// The encode options a client may set; the rest is the server's choice.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EncodeOptions {
    upload: String,
    codec: Option<String>,
    crf: Option<u32>,
    preset: Option<String>,
    container: Option<String>,
    chunk_seconds: Option<f64>,
}

/// Builds, checks and submits the encode of one of `project`'s uploads.
pub(crate) async fn encode(
    state: &AppState,
    project: ProjectRecord,
    options: EncodeOptions,
) -> Result<JobView, ApiError> {
    let input = find_upload(&state.data_dir, &project, &options.upload).await?;
    let invalid = |e: MediaError| ApiError::Invalid(e.to_string());
    let codec: Codec = options
        .codec
        .as_deref()
        .unwrap_or("x264")
        .parse()
        .map_err(invalid)?;
    let ext = match options.container.as_deref().unwrap_or("mp4") {
        c @ ("mp4" | "mkv" | "webm") => c,
        other => {
            return Err(ApiError::Invalid(format!(
                "unknown container {other:?}; use mp4, mkv or webm"
            )))
        }
    };
    let id = crate::keys::random_alphanumeric(20);
    let workdir = state.data_dir.join("encodes").join(&id);
    let out_dir = output_dir(&state.data_dir, &id);
    let name = file_name(&input);
    let stem = input
        .file_stem()
        .map_or("output".into(), |s| s.to_string_lossy().into_owned());
    let mut settings = EncodeSettings::new(codec);
    settings.crf = options.crf;
    settings.preset = options.preset;
    let req = EncodeRequest {
        input: input.clone(),
        output: out_dir.join(format!("{stem}.{ext}")),
        settings,
        chunk_seconds: options.chunk_seconds.unwrap_or(10.0),
        slots: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
    };
    let prepared = {
        let (workdir, out_dir, req) = (workdir.clone(), out_dir.clone(), req.clone());
        tokio::task::spawn_blocking(move || prepare(&workdir, &out_dir, &req)).await?
    };
    if let Err(e) = prepared {
        remove_dir(&workdir).await;
        remove_dir(&out_dir).await;
        return Err(media_error(e, &input, &name));
    }
    let spec = JobSpec::new(format!("encode {name}"), media::initial_tasks(&workdir));
    let started = Instant::now();
    let driver = state.driver.clone();
    let key = format!("{KEY_PREFIX}{id}");
    let submitted =
        tokio::task::spawn_blocking(move || driver.submit(Some(project.id), spec, Some(key)))
            .await?;
    state.metrics.observe_submit(started.elapsed());
    let job = match submitted {
        Ok(job) => job,
        Err(e) => {
            remove_dir(&workdir).await;
            remove_dir(&out_dir).await;
            return Err(e.into());
        }
    };
    let job = state
        .db(move |db| {
            db.job(job)?
                .ok_or_else(|| ApiError::internal(format!("job {job} vanished after submission")))
        })
        .await?;
    Ok(JobView::new(&job, Some(&[])))
}

/// Checks the request against the source and writes it into `workdir`.
fn prepare(workdir: &Path, out_dir: &Path, req: &EncodeRequest) -> Result<(), MediaError> {
    let mkdir = |d: &Path| {
        std::fs::create_dir_all(d)
            .map_err(|e| MediaError::Internal(format!("creating {}: {e}", d.display())))
    };
    mkdir(out_dir)?;
    req.validate()?;
    let info = media::probe(&req.input)?;
    media::check_streams(req, &info)?;
    mkdir(workdir)?;
    media::write_request(workdir, req)
}

/// The finished output of an encode job, streamed (with range requests).
pub(crate) async fn output(
    state: &AppState,
    job: &JobRecord,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let path = output_file(state, job).await?;
    let name = file_name(&path);
    let content_type = match path.extension().and_then(|e| e.to_str()) {
        Some("mkv") => "video/x-matroska",
        Some("webm") => "video/webm",
        _ => "video/mp4",
    };
    crate::range::serve_file(&path, content_type, &name, headers).await
}

/// Deletes an encode job's output (and what is left of its workdir).
pub(crate) async fn delete_output(state: &AppState, job: &JobRecord) -> Result<(), ApiError> {
    let id = encode_id(job)?;
    if !job.state.is_terminal() {
        return Err(ApiError::Conflict(format!(
            "job {} is still {}; cancel it before deleting its output",
            job.id, job.state
        )));
    }
    let out_dir = output_dir(&state.data_dir, id);
    let existed = tokio::fs::try_exists(&out_dir).await.unwrap_or(false);
    remove_dir(&out_dir).await;
    remove_dir(&state.data_dir.join("encodes").join(id)).await;
    if !existed && job.state == JobState::Succeeded {
        return Err(ApiError::NotFound(format!(
            "the output of job {} was already deleted",
            job.id
        )));
    }
    Ok(())
}

/// The output file of a succeeded encode job, or a 404 saying why not.
async fn output_file(state: &AppState, job: &JobRecord) -> Result<PathBuf, ApiError> {
    let id = encode_id(job)?;
    if job.state != JobState::Succeeded {
        return Err(ApiError::NotFound(format!(
            "job {} is {}; its output exists once it has succeeded",
            job.id, job.state
        )));
    }
    let dir = output_dir(&state.data_dir, id);
    let gone = || ApiError::NotFound(format!("the output of job {} was deleted", job.id));
    let mut entries = match tokio::fs::read_dir(&dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(gone()),
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", dir.display()))),
    };
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))?
    {
        let visible = !entry.file_name().to_string_lossy().starts_with('.');
        if visible && entry.file_type().await.is_ok_and(|t| t.is_file()) {
            return Ok(entry.path());
        }
    }
    Err(gone())
}

/// The encode id in an encode job's key.
fn encode_id(job: &JobRecord) -> Result<&str, ApiError> {
    job.key
        .as_deref()
        .and_then(|k| k.strip_prefix(KEY_PREFIX))
        .filter(|id| is_id(id))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "job {} is not an encode job; it has no output",
                job.id
            ))
        })
}

async fn find_upload(
    data_dir: &Path,
    project: &ProjectRecord,
    id: &str,
) -> Result<PathBuf, ApiError> {
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
    let mut entries = tokio::fs::read_dir(&dir).await.map_err(|_| missing())?;
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_type().await.is_ok_and(|t| t.is_file()) {
            return Ok(entry.path());
        }
    }
    Err(missing())
}

fn upload_dir(data_dir: &Path, project: &ProjectRecord, id: &str) -> PathBuf {
    data_dir
        .join("uploads")
        .join(project.id.0.to_string())
        .join(id)
}

fn output_dir(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("outputs").join(id)
}

/// Server-made ids: ASCII letters and digits only.
fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
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

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

/// A media error as the client sees it: its own file name, never the
/// server's paths; user errors are 422, the rest internal.
fn media_error(e: MediaError, path: &Path, name: &str) -> ApiError {
    if e.is_user_error() {
        ApiError::Invalid(e.to_string().replace(&path.display().to_string(), name))
    } else {
        ApiError::internal(e)
    }
}

async fn remove_dir(dir: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(dir).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("tessera-api: cannot remove {}: {e}", dir.display());
        }
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
            (Some("a b/ç.mp4"), "_.mp4"),
            (Some("dir/"), "input"),
        ];
        for (name, want) in table {
            assert_eq!(safe_name(name), want, "{name:?}");
        }
    }
}
