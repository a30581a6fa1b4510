//! Encodes: encode jobs built from an upload ([`super::uploads`]) or a file
//! of a configured volume ([`super::volumes`]), and their outputs. Everything lives under the data directory:
//!
//! ```text
//! uploads/<project id>/<upload id>/<safe name>   an uploaded source (probed: a video)
//! encodes/<encode id>/request.json ...           the job's workdir (chunks, plan)
//! outputs/<encode id>/<stem>.<ext>               the verified result
//! outputs/<encode id>/ladder/                     or a published ABR ladder
//! ```
//!
//! Both ids are random and made here; the only client-supplied parts of any
//! path are an upload's name, reduced to a safe file name, and a volume
//! path, which must resolve inside its volume. A job is tied to its output
//! by its key, `encode:<encode id>`, so no table is needed. Workdirs and
//! outputs are kept (across restarts too) until the output is deleted.

use super::uploads;
use crate::access::{JobAccess, MayAct, Need, ProjectAccess};
use crate::auth::random_alphanumeric;
use crate::{Service, ServiceError};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tessera_media::{self as media, Codec, EncodeRequest, EncodeSettings, MediaError, MediaInfo};
use tessera_store::{JobRecord, ProjectRecord};
use tessera_types::{JobSpec, JobState};

/// The folder a ladder encode publishes into, in its output folder.
pub(crate) const LADDER_DIR: &str = "ladder";

/// Prefix of an encode job's key; the rest is its encode id.
pub(crate) const JOB_KEY_PREFIX: &str = "encode:";

/// The encode options a client may set; the rest is the server's choice.
/// The source is an upload or a volume's file, exactly one of them. (The
/// REST API takes them as they are, as JSON: unknown fields are refused.)
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct EncodeOptions {
    pub upload: Option<String>,
    pub volume: Option<String>,
    pub path: Option<String>,
    pub codec: Option<String>,
    pub crf: Option<u32>,
    pub preset: Option<String>,
    pub container: Option<String>,
    pub chunk_seconds: Option<f64>,
    /// An ABR ladder instead of one file: `"default"` or a ladder as
    /// `--ladder FILE` holds it (`{"rungs": [...], "segment_seconds": 2}`).
    /// Its size is bounded by the API's body limit; its rungs by
    /// [`media::ladder::MAX_RUNGS`].
    #[serde(default, deserialize_with = "ladder_option")]
    pub ladder: Option<media::ladder::LadderRequest>,
}

/// Reads `"ladder"`: the word `"default"` or a ladder object.
fn ladder_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<media::ladder::LadderRequest>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Name(String),
        Ladder(media::ladder::LadderRequest),
    }
    let raw = Option::<serde_json::Value>::deserialize(d)?;
    let Some(value) = raw else { return Ok(None) };
    match Raw::deserialize(value) {
        Ok(Raw::Name(n)) if n == "default" => Ok(Some(media::ladder::LadderRequest::default_ladder())),
        Ok(Raw::Name(n)) => Err(serde::de::Error::custom(format!(
            "ladder {:?} is not a ladder; use \"default\" or {{\"rungs\": [{{\"name\": \"720p\", \"height\": 720}}]}}",
            n.chars().take(40).collect::<String>()
        ))),
        Ok(Raw::Ladder(l)) => Ok(Some(l)),
        Err(_) => Err(serde::de::Error::custom(
            "ladder: not a ladder; use \"default\" or an object with rungs (name, height, codec, crf, maxrate, bufsize), segment_seconds and audio_kbps",
        )),
    }
}

/// A succeeded encode's output file, the name to offer it under and its
/// media type.
#[derive(Clone, Debug)]
pub struct Output {
    pub path: PathBuf,
    pub name: String,
    pub content_type: &'static str,
}

/// The file to encode, the name the client knows it by, and the upload it
/// is, if it is one.
async fn source(
    service: &Service,
    project: &ProjectRecord,
    options: &EncodeOptions,
) -> Result<(PathBuf, String, Option<PathBuf>), ServiceError> {
    match (&options.upload, &options.volume, &options.path) {
        (Some(upload), None, None) => {
            let (dir, file) = uploads::find(&service.data_dir, project, upload).await?;
            let name = file_name(&file);
            Ok((file, name, Some(dir)))
        }
        (None, Some(volume), Some(path)) => {
            let volumes = service.volumes.clone();
            let (volume, path) = (volume.clone(), path.clone());
            let name = format!("{volume}:{path}");
            let file =
                tokio::task::spawn_blocking(move || volumes.resolve(&volume, &path)).await??;
            Ok((file, name, None))
        }
        (None, Some(_), None) => Err(ServiceError::Invalid(
            "a volume needs a path: {volume, path} names a file inside it".into(),
        )),
        _ => Err(ServiceError::Invalid(
            "name the source: either {upload} or {volume, path}, not both".into(),
        )),
    }
}

impl Service {
    /// Builds, checks and submits the encode of one of the project's uploads
    /// or of a volume's file.
    pub async fn encode<R: MayAct>(
        &self,
        project: &ProjectAccess<R>,
        options: EncodeOptions,
    ) -> Result<JobRecord, ServiceError> {
        let project = project.project();
        let invalid = |e: MediaError| ServiceError::Invalid(e.to_string());
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
        if let Some(ladder) = &options.ladder {
            ladder.validate().map_err(invalid)?;
            if options.container.is_some() {
                return Err(ServiceError::Invalid(
                    "a ladder is written as CMAF segments with HLS and DASH manifests; leave out container".into(),
                ));
            }
        }
        let (input, name, upload_dir) = source(self, project, &options).await?;
        let ext = match options.container.as_deref().unwrap_or("mp4") {
            c @ ("mp4" | "mkv" | "webm") => c,
            other => {
                return Err(ServiceError::Invalid(format!(
                    "unknown container {other:?}; use mp4, mkv or webm"
                )))
            }
        };
        let id = random_alphanumeric(20);
        let workdir = self.data_dir.join("encodes").join(&id);
        let out_dir = output_dir(&self.data_dir, &id);
        let stem = input
            .file_stem()
            .map_or("output".into(), |s| s.to_string_lossy().into_owned());
        let output = match options.ladder {
            Some(_) => out_dir.join(LADDER_DIR),
            None => out_dir.join(format!("{stem}.{ext}")),
        };
        let req = EncodeRequest {
            input: input.clone(),
            output,
            settings,
            chunk_seconds: options.chunk_seconds.unwrap_or(10.0),
            slots: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            ladder: options.ladder,
            target_vmaf: None,
        };
        let user = self.project_user(project.id)?;
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
        spec.grants.extend(self.project_grants(project.id));
        let key = format!("{JOB_KEY_PREFIX}{id}");
        let job = match self.hand_over(project.id, spec, Some(key)).await {
            Ok(job) => job,
            Err(e) => {
                remove_dir(&workdir).await;
                remove_dir(&out_dir).await;
                return Err(e);
            }
        };
        self.submitted(job).await
    }
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
            .and_then(|()| super::tenancy::give_tree(d, user))
            .map_err(|e| MediaError::Internal(format!("creating {}: {e}", d.display())))
    };
    mkdir(out_dir)?;
    req.validate()?;
    let info = media::probe(&req.input)?;
    if req.ladder.is_some() {
        if info.video().is_none() {
            return Err(MediaError::NoVideo {
                path: req.input.clone(),
            });
        }
        media::ladder::ops::check_ladder(req, &info)?;
    } else {
        media::check_streams(req, &info)?;
    }
    media::write_request(workdir, req)?;
    mkdir(workdir)?;
    Ok(info)
}

impl Service {
    /// The output of a succeeded encode job: `NotFound` for another job,
    /// one that has not succeeded, or an output that was deleted.
    pub async fn output<R: Need>(&self, job: &JobAccess<R>) -> Result<Output, ServiceError> {
        let path = output_file(&self.data_dir, job.job()).await?;
        let content_type = match path.extension().and_then(|e| e.to_str()) {
            Some("mkv") => "video/x-matroska",
            Some("webm") => "video/webm",
            _ => "video/mp4",
        };
        Ok(Output {
            name: file_name(&path),
            path,
            content_type,
        })
    }

    /// The file name and size of a succeeded encode job's output, if it is
    /// there (for a job page's download link).
    pub async fn output_info<R: Need>(&self, job: &JobAccess<R>) -> Option<(String, u64)> {
        let path = output_file(&self.data_dir, job.job()).await.ok()?;
        let bytes = tokio::fs::metadata(&path).await.ok()?.len();
        Some((file_name(&path), bytes))
    }

    /// Deletes an ended encode job's output (and what is left of its
    /// workdir).
    pub async fn delete_output<R: MayAct>(&self, job: &JobAccess<R>) -> Result<(), ServiceError> {
        let job = job.job();
        let id = encode_id(job)?;
        if !job.state.is_terminal() {
            return Err(ServiceError::Conflict(format!(
                "job {} is still {}; cancel it before deleting its output",
                job.id, job.state
            )));
        }
        let out_dir = output_dir(&self.data_dir, id);
        let existed = tokio::fs::try_exists(&out_dir).await.unwrap_or(false);
        remove_dir(&out_dir).await;
        remove_dir(&self.data_dir.join("encodes").join(id)).await;
        if !existed && job.state == JobState::Succeeded {
            return Err(ServiceError::NotFound(format!(
                "the output of job {} was already deleted",
                job.id
            )));
        }
        Ok(())
    }

    /// The names of the server's volumes (directories encodes may read).
    pub fn volume_names(&self, _: &crate::Caller) -> Vec<String> {
        self.volumes.names().map(str::to_string).collect()
    }
}

/// The output file of a succeeded encode job, or `NotFound` saying why not.
async fn output_file(data_dir: &Path, job: &JobRecord) -> Result<PathBuf, ServiceError> {
    let id = encode_id(job)?;
    if job.state != JobState::Succeeded {
        return Err(ServiceError::NotFound(format!(
            "job {} is {}; its output exists once it has succeeded",
            job.id, job.state
        )));
    }
    let dir = output_dir(data_dir, id);
    if tokio::fs::symlink_metadata(dir.join(LADDER_DIR))
        .await
        .is_ok_and(|m| m.is_dir())
    {
        return Err(ServiceError::NotFound(format!(
            "job {} encoded an ABR ladder, not one file; read its files from its ladder (master.m3u8, manifest.mpd, ladder.json)",
            job.id
        )));
    }
    let gone = || ServiceError::NotFound(format!("the output of job {} was deleted", job.id));
    let mut entries = match tokio::fs::read_dir(&dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(gone()),
        Err(e) => return Err(ServiceError::internal(format!("{}: {e}", dir.display()))),
    };
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| ServiceError::internal(format!("{}: {e}", dir.display())))?
    {
        let visible = !entry.file_name().to_string_lossy().starts_with('.');
        if visible && entry.file_type().await.is_ok_and(|t| t.is_file()) {
            return Ok(entry.path());
        }
    }
    Err(gone())
}

/// The encode id in an encode job's key.
pub(crate) fn encode_id(job: &JobRecord) -> Result<&str, ServiceError> {
    job.key
        .as_deref()
        .and_then(|k| k.strip_prefix(JOB_KEY_PREFIX))
        .filter(|id| is_id(id))
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "job {} is not an encode job; it has no output",
                job.id
            ))
        })
}

pub(crate) fn output_dir(data_dir: &Path, id: &str) -> PathBuf {
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
/// server's paths; user errors are `Invalid`, the rest internal.
pub(crate) fn media_error(e: MediaError, path: &Path, name: &str) -> ServiceError {
    if e.is_user_error() {
        ServiceError::Invalid(e.to_string().replace(&path.display().to_string(), name))
    } else {
        ServiceError::internal(e)
    }
}

pub(crate) async fn remove_dir(dir: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(dir).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("tessera-service: cannot remove {}: {e}", dir.display());
        }
    }
}
