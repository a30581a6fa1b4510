//! The encode service: encode jobs built from an upload ([`crate::uploads`])
//! or a file of a configured volume ([`crate::volumes`]), and their
//! downloadable outputs. Everything lives under the data directory:
//!
//! ```text
//! uploads/<project id>/<upload id>/<safe name>   an uploaded source (probed: a video)
//! encodes/<encode id>/request.json ...           the job's workdir (chunks, plan)
//! outputs/<encode id>/<stem>.<ext>               the verified result
//! ```
//!
//! Both ids are random and made here; the only client-supplied parts of any
//! path are an upload's name, reduced to a safe file name, and a volume
//! path, which must resolve inside its volume. A job is tied to its output
//! by its key, `encode:<encode id>`, so no table is needed. Workdirs and
//! outputs are kept (across restarts too) until the output is deleted.

use crate::views::JobView;
use crate::{uploads, ApiError, AppState};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tessera_media::{self as media, Codec, EncodeRequest, EncodeSettings, MediaError, MediaInfo};
use tessera_store::{JobRecord, ProjectRecord};
use tessera_types::{JobSpec, JobState};

/// The default of `max_upload_bytes`: 8 GiB.
pub const DEFAULT_MAX_UPLOAD: u64 = 8 << 30;

/// Prefix of an encode job's key; the rest is its encode id.
pub(crate) const JOB_KEY_PREFIX: &str = "encode:";

/// The encode options a client may set; the rest is the server's choice.
/// The source is an upload or a volume's file, exactly one of them.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct EncodeOptions {
    pub upload: Option<String>,
    pub volume: Option<String>,
    pub path: Option<String>,
    pub codec: Option<String>,
    pub crf: Option<u32>,
    pub preset: Option<String>,
    pub container: Option<String>,
    pub chunk_seconds: Option<f64>,
}

/// The file to encode, the name the client knows it by, and the upload it
/// is, if it is one.
async fn source(
    state: &AppState,
    project: &ProjectRecord,
    options: &EncodeOptions,
) -> Result<(PathBuf, String, Option<PathBuf>), ApiError> {
    match (&options.upload, &options.volume, &options.path) {
        (Some(upload), None, None) => {
            let (dir, file) = uploads::find(&state.data_dir, project, upload).await?;
            let name = file_name(&file);
            Ok((file, name, Some(dir)))
        }
        (None, Some(volume), Some(path)) => {
            let volumes = state.volumes.clone();
            let (volume, path) = (volume.clone(), path.clone());
            let name = format!("{volume}:{path}");
            let file =
                tokio::task::spawn_blocking(move || volumes.resolve(&volume, &path)).await??;
            Ok((file, name, None))
        }
        (None, Some(_), None) => Err(ApiError::Invalid(
            "a volume needs a path: {volume, path} names a file inside it".into(),
        )),
        _ => Err(ApiError::Invalid(
            "name the source: either {upload} or {volume, path}, not both".into(),
        )),
    }
}

/// Builds, checks and submits the encode of one of `project`'s uploads or
/// of a volume's file.
pub(crate) async fn encode(
    state: &AppState,
    project: ProjectRecord,
    options: EncodeOptions,
) -> Result<JobView, ApiError> {
    let invalid = |e: MediaError| ApiError::Invalid(e.to_string());
    let codec: Codec = options
        .codec
        .as_deref()
        .unwrap_or("x264")
        .parse()
        .map_err(invalid)?;
    let mut settings = EncodeSettings::new(codec);
    settings.crf = options.crf;
    settings.preset = options.preset.clone();
    settings.validate().map_err(invalid)?;
    let (input, name, upload_dir) = source(state, &project, &options).await?;
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
    let stem = input
        .file_stem()
        .map_or("output".into(), |s| s.to_string_lossy().into_owned());
    let req = EncodeRequest {
        input: input.clone(),
        output: out_dir.join(format!("{stem}.{ext}")),
        settings,
        chunk_seconds: options.chunk_seconds.unwrap_or(10.0),
        slots: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
    };
    let user = state.project_user(project.id)?;
    let prepared = {
        let (workdir, out_dir, req) = (workdir.clone(), out_dir.clone(), req.clone());
        tokio::task::spawn_blocking(move || prepare(&workdir, &out_dir, &req, user.as_ref()))
            .await?
    };
    let checked = match prepared {
        Ok(info) => uploads::check_moving_picture(&info, &name),
        Err(e) => Err(media_error(e, &input, &name)),
    };
    let marked = match (checked, &upload_dir) {
        (Ok(()), Some(dir)) => uploads::mark_use(dir, &id).await,
        (other, _) => other,
    };
    if let Err(e) = marked {
        remove_dir(&workdir).await;
        remove_dir(&out_dir).await;
        return Err(e);
    }
    let mut spec = JobSpec::new(format!("encode {name}"), media::initial_tasks(&workdir));
    spec.grants = media::encode_grants(&workdir, &req);
    spec.grants.extend(state.project_grants(project.id));
    let started = Instant::now();
    let driver = state.driver.clone();
    let key = format!("{JOB_KEY_PREFIX}{id}");
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
/// With a `user` (the project's), both directories and what is in them
/// are given to it: its tasks write there, no other project's can enter.
fn prepare(
    workdir: &Path,
    out_dir: &Path,
    req: &EncodeRequest,
    user: Option<&tessera_exec::RunAs>,
) -> Result<MediaInfo, MediaError> {
    let mkdir = |d: &Path| {
        std::fs::create_dir_all(d)
            .and_then(|()| crate::tenancy::give_tree(d, user))
            .map_err(|e| MediaError::Internal(format!("creating {}: {e}", d.display())))
    };
    mkdir(out_dir)?;
    req.validate()?;
    let info = media::probe(&req.input)?;
    media::check_streams(req, &info)?;
    media::write_request(workdir, req)?;
    mkdir(workdir)?;
    Ok(info)
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

/// The file name and size of a succeeded encode job's output, if it is
/// there (for the job page's download link).
pub(crate) async fn output_info(state: &AppState, job: &JobRecord) -> Option<(String, u64)> {
    let path = output_file(state, job).await.ok()?;
    let bytes = tokio::fs::metadata(&path).await.ok()?.len();
    Some((file_name(&path), bytes))
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
        .and_then(|k| k.strip_prefix(JOB_KEY_PREFIX))
        .filter(|id| is_id(id))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "job {} is not an encode job; it has no output",
                job.id
            ))
        })
}

fn output_dir(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("outputs").join(id)
}

/// Server-made ids: ASCII letters and digits only.
pub(crate) fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

/// A media error as the client sees it: its own file name, never the
/// server's paths; user errors are 422, the rest internal.
pub(crate) fn media_error(e: MediaError, path: &Path, name: &str) -> ApiError {
    if e.is_user_error() {
        ApiError::Invalid(e.to_string().replace(&path.display().to_string(), name))
    } else {
        ApiError::internal(e)
    }
}

pub(crate) async fn remove_dir(dir: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(dir).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("tessera-api: cannot remove {}: {e}", dir.display());
        }
    }
}
