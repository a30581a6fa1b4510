//! Uploads: videos streamed to disk from any [`Source`] (an HTTP body, a
//! form's file part), probed before they are accepted, listed and deleted.
//!
//! ```text
//! uploads/<project id>/<upload id>/.incoming        while it arrives and is probed
//! uploads/<project id>/<upload id>/<safe name>      once accepted
//! uploads/<project id>/<upload id>/.upload.json     name, bytes, created, duration
//! uploads/<project id>/<upload id>/.encodes/<id>    one mark per encode that read it
//! ```
//!
//! Nothing is ever held whole in memory, a source past the limit is
//! refused (`TooLarge`), and whatever is refused (too large, not a video,
//! interrupted) is removed with its directory. The probe decides what a
//! file is, never its name.

use super::encodes::{is_id, media_error, remove_dir, JOB_KEY_PREFIX};
use crate::access::{MayAct, Need, ProjectAccess};
use crate::auth::random_alphanumeric;
use crate::{now_ms, Service, ServiceError};
use serde::{Deserialize, Serialize};
use std::future::Future;
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

/// Where an upload's bytes come from, chunk by chunk: an API's request
/// body, a form's file part. A failure to read is the API's own error
/// (which a [`ServiceError`] converts into), handed back unchanged.
pub trait Source: Send {
    type Error: From<ServiceError> + Send;
    type Chunk: AsRef<[u8]> + Send;
    /// The next chunk; `None` at the end.
    fn next_chunk(
        &mut self,
    ) -> impl Future<Output = Result<Option<Self::Chunk>, Self::Error>> + Send;
}

/// An accepted upload and what the probe found in it.
#[derive(Clone, Debug)]
pub struct Upload {
    pub item: UploadItem,
    pub streams: Vec<StreamInfo>,
}

/// An upload in a list (and its `.upload.json`).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct UploadItem {
    pub upload: String,
    pub name: String,
    pub bytes: u64,
    /// Milliseconds since the Unix epoch.
    pub created: u64,
    /// Seconds, when the container says.
    pub duration: Option<f64>,
}

impl Service {
    /// Streams `source` to a new upload of the project, then probes it:
    /// anything but a readable video is refused and removed, as is a
    /// source over the limit or one that breaks off. `name` is the
    /// client's name for it, reduced to a safe file name.
    pub async fn upload<R: MayAct, S: Source>(
        &self,
        project: &ProjectAccess<R>,
        name: Option<&str>,
        mut source: S,
    ) -> Result<Upload, S::Error> {
        let project = project.project();
        let id = random_alphanumeric(20);
        let dir = upload_dir(&self.data_dir, project, &id);
        let name = safe_name(name);
        let tmp = dir.join(INCOMING);
        let bytes = match store(&dir, &tmp, &mut source, self.max_upload_bytes).await {
            Ok(Some(n)) => n,
            Ok(None) => {
                remove_dir(&dir).await;
                return Err(ServiceError::too_large(self.max_upload_bytes).into());
            }
            Err(e) => {
                remove_dir(&dir).await;
                return Err(e);
            }
        };
        let accepted = self.accept(project, &dir, &tmp, name, bytes).await;
        if accepted.is_err() {
            remove_dir(&dir).await;
        }
        Ok(accepted?)
    }

    /// Probes an arrived upload and shares it with its project's tasks.
    async fn accept(
        &self,
        project: &ProjectRecord,
        dir: &Path,
        tmp: &Path,
        name: String,
        bytes: u64,
    ) -> Result<Upload, ServiceError> {
        let user = self.project_user(project.id)?;
        let root = self.data_dir.join("uploads");
        let (dir, tmp) = (dir.to_path_buf(), tmp.to_path_buf());
        let (item, info) = tokio::task::spawn_blocking(move || {
            let settled = settle(&dir, &tmp, &name, bytes)?;
            // Its project's tasks read it; no other project's can.
            super::tenancy::share_read(&dir.join(&name), &root, user.as_ref()).map_err(|e| {
                ServiceError::internal(format!(
                    "upload: sharing {} with its project: {e}",
                    dir.display()
                ))
            })?;
            Ok::<_, ServiceError>(settled)
        })
        .await??;
        Ok(Upload {
            item,
            streams: info.streams,
        })
    }
}

/// Probes the arrived file and, if it is a video, gives it its name and
/// writes its facts beside it.
fn settle(
    dir: &Path,
    tmp: &Path,
    name: &str,
    bytes: u64,
) -> Result<(UploadItem, MediaInfo), ServiceError> {
    let info = media::probe(tmp).map_err(|e| media_error(e, tmp, name))?;
    check_moving_picture(&info, name)?;
    let path = dir.join(name);
    std::fs::rename(tmp, &path)
        .map_err(|e| ServiceError::internal(format!("upload: renaming {}: {e}", tmp.display())))?;
    let item = UploadItem {
        upload: file_name(dir),
        name: name.to_string(),
        bytes,
        created: now_ms(),
        duration: info.duration,
    };
    let json = serde_json::to_vec(&item).map_err(ServiceError::internal)?;
    std::fs::write(dir.join(META), json)
        .map_err(|e| ServiceError::internal(format!("upload: writing {}: {e}", dir.display())))?;
    Ok((item, info))
}

/// ffprobe reads a still image (PNG, JPEG...) as a one-frame video; those
/// are refused too.
pub(crate) fn check_moving_picture(info: &MediaInfo, name: &str) -> Result<(), ServiceError> {
    let format = info.format_name.as_str();
    if format == "image2" || format.ends_with("_pipe") {
        return Err(ServiceError::Invalid(format!(
            "{name}: this is a still image ({format}), not a video; upload a video file"
        )));
    }
    Ok(())
}

/// Writes `source` to `path` (creating `dir`); `None` when it exceeds `limit`.
async fn store<S: Source>(
    dir: &Path,
    path: &Path,
    source: &mut S,
    limit: u64,
) -> Result<Option<u64>, S::Error> {
    let io = |what: &str, e: std::io::Error| {
        S::Error::from(ServiceError::internal(format!(
            "upload: {what} {}: {e}",
            path.display()
        )))
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io("creating the directory of", e))?;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| io("creating", e))?;
    let mut written = 0u64;
    while let Some(data) = source.next_chunk().await? {
        let data = data.as_ref();
        written += data.len() as u64;
        if written > limit {
            return Ok(None);
        }
        file.write_all(data).await.map_err(|e| io("writing", e))?;
    }
    file.flush().await.map_err(|e| io("writing", e))?;
    Ok(Some(written))
}

impl Service {
    /// The project's accepted uploads, newest first.
    pub async fn uploads<R: Need>(
        &self,
        project: &ProjectAccess<R>,
    ) -> Result<Vec<UploadItem>, ServiceError> {
        let root = self.uploads_of(project.id());
        tokio::task::spawn_blocking(move || list(&root)).await?
    }

    /// Deletes one of the project's uploads; refused (`Conflict`) while an
    /// encode that reads it has not ended.
    pub async fn delete_upload<R: MayAct>(
        &self,
        project: &ProjectAccess<R>,
        id: &str,
    ) -> Result<(), ServiceError> {
        let dir = find(&self.data_dir, project.project(), id).await?.0;
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
        let busy = self
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
            return Err(ServiceError::Conflict(format!(
                "upload {id} is the input of job {}, which is still {}; cancel it or wait for it \
                 to end",
                job.id, job.state
            )));
        }
        remove_dir(&dir).await;
        Ok(())
    }
}

/// The accepted uploads in a project's uploads folder `root`, newest first.
fn list(root: &Path) -> Result<Vec<UploadItem>, ServiceError> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ServiceError::internal(format!("{}: {e}", root.display()))),
    };
    let mut items: Vec<UploadItem> = entries
        .flatten()
        .filter(|e| is_id(&e.file_name().to_string_lossy()))
        .filter_map(|e| item(&e.path()))
        .collect();
    items.sort_by(|a, b| b.created.cmp(&a.created).then(b.upload.cmp(&a.upload)));
    Ok(items)
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

/// Marks upload `dir` as read by encode `encode` (see
/// [`Service::delete_upload`]).
pub(crate) async fn mark_use(dir: &Path, encode: &str) -> Result<(), ServiceError> {
    let marks = dir.join(MARKS);
    let io = |e: std::io::Error| ServiceError::internal(format!("{}: {e}", marks.display()));
    tokio::fs::create_dir_all(&marks).await.map_err(io)?;
    tokio::fs::write(marks.join(encode), b"").await.map_err(io)
}

/// The directory and the file of one of `project`'s accepted uploads, or
/// `NotFound`.
pub(crate) async fn find(
    data_dir: &Path,
    project: &ProjectRecord,
    id: &str,
) -> Result<(PathBuf, PathBuf), ServiceError> {
    let missing = || {
        ServiceError::NotFound(format!(
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
