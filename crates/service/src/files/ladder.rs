//! A ladder encode's published folder (`outputs/<encode id>/ladder/`),
//! read file by file for players: the HLS and DASH manifests, the CMAF
//! segments, subtitles, thumbnails and `ladder.json`.
//!
//! The folder is written by the project's tasks (as its task user, with
//! local slots), so it is not trusted: a path is checked by its words
//! first ([`ladder_path`]: plain names only, no `..`, no hidden file, a
//! known kind of file), then opened through `tessera_confine` inside the
//! folder, so no symbolic link a task left there is followed and nothing
//! but a regular file is read.

use super::encodes::{encode_id, output_dir, LADDER_DIR};
use crate::access::{JobAccess, Need};
use crate::{Service, ServiceError};
use std::path::{Path, PathBuf};
use tessera_media::ladder::{LadderReport, LADDER_REPORT};
use tessera_store::JobRecord;
use tessera_types::{Grant, JobState, Reach};

/// The longest path into a ladder folder a client may name (the longest
/// Tessera writes is about 40 bytes: `audio-und-0/seg-00001.m4s`).
pub const MAX_LADDER_PATH: usize = 200;
/// The most folders deep a ladder file lies (`720p/seg-00001.m4s`).
const MAX_DEPTH: usize = 3;
/// `ladder.json` is read whole for the job page: at most this many bytes
/// (a report of 12 renditions with their checks is a few KiB).
const MAX_REPORT: u64 = 1 << 20;

/// An opened file of a published ladder, its path inside the ladder and
/// its media type.
#[derive(Debug)]
pub struct LadderFile {
    pub file: std::fs::File,
    pub path: String,
    pub content_type: &'static str,
}

/// The media type of a ladder file by its extension, or `None` for a kind
/// of file a ladder does not hold.
pub fn ladder_content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "m4s" => "video/iso.segment",
        "mp4" => "video/mp4",
        "vtt" => "text/vtt; charset=utf-8",
        "jpg" => "image/jpeg",
        "json" => "application/json",
        _ => return None,
    })
}

/// Checks a client's path into a ladder folder by its words: 1 to
/// [`MAX_DEPTH`] plain names of ASCII letters, digits, `-`, `_` and `.`,
/// none hidden (so none is `..`), ending in a kind of file a ladder holds.
pub fn ladder_path(path: &str) -> Result<&'static str, ServiceError> {
    let refuse = |why: &str| {
        ServiceError::Invalid(format!(
            "{:?} is not a file of a ladder: {why}; name one like master.m3u8 or 720p/index.m3u8",
            path.chars().take(60).collect::<String>()
        ))
    };
    if path.is_empty() || path.len() > MAX_LADDER_PATH {
        return Err(refuse(&format!("a path is 1 to {MAX_LADDER_PATH} bytes")));
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > MAX_DEPTH {
        return Err(refuse(&format!(
            "a ladder is at most {MAX_DEPTH} folders deep"
        )));
    }
    for part in &parts {
        let plain = part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if part.is_empty() || part.starts_with('.') || !plain {
            return Err(refuse(
                "each part is a plain name (letters, digits, - _ .), never empty, hidden or ..",
            ));
        }
    }
    ladder_content_type(path)
        .ok_or_else(|| refuse("a ladder holds .m3u8, .mpd, .mp4, .m4s, .vtt, .jpg and .json files"))
}

/// The published ladder folder of a succeeded ladder encode job, or
/// `NotFound` saying why there is none.
async fn ladder_dir(data_dir: &Path, job: &JobRecord) -> Result<PathBuf, ServiceError> {
    let id = encode_id(job)?;
    if job.state != JobState::Succeeded {
        return Err(ServiceError::NotFound(format!(
            "job {} is {}; its ladder exists once it has succeeded",
            job.id, job.state
        )));
    }
    let dir = output_dir(data_dir, id).join(LADDER_DIR);
    match tokio::fs::symlink_metadata(&dir).await {
        Ok(m) if m.is_dir() => Ok(dir),
        Ok(_) => Err(ServiceError::NotFound(format!(
            "job {} has no ladder",
            job.id
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let out = output_dir(data_dir, id);
            let why = if tokio::fs::try_exists(&out).await.unwrap_or(false) {
                "it encoded one file; download it from its output"
            } else {
                "its output was deleted"
            };
            Err(ServiceError::NotFound(format!(
                "job {} has no ladder: {why}",
                job.id
            )))
        }
        Err(e) => Err(ServiceError::internal(format!("{}: {e}", dir.display()))),
    }
}

impl Service {
    /// Opens `path` (as [`ladder_path`] takes it) in the published ladder
    /// of a succeeded ladder encode job.
    pub async fn ladder_file<R: Need>(
        &self,
        job: &JobAccess<R>,
        path: &str,
    ) -> Result<LadderFile, ServiceError> {
        let content_type = ladder_path(path)?;
        let job = job.job();
        let dir = ladder_dir(&self.data_dir, job).await?;
        let full = dir.join(path);
        // From `outputs/`, the server's own: the encode's folder and its
        // `ladder` are the project's, so they are walked like the rest,
        // never followed if a task swapped a link in after the check above.
        let reach = Reach::new(vec![Grant::read(self.data_dir.join("outputs")).folder()]);
        let id = job.id;
        let shown = path.to_string();
        let file = tokio::task::spawn_blocking(move || tessera_confine::open(&reach, &full))
            .await?
            .map_err(|e| match e {
                tessera_confine::ConfineError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    ServiceError::NotFound(format!("the ladder of job {id} has no file {shown}"))
                }
                tessera_confine::ConfineError::Io { .. } => ServiceError::internal(e),
                // A link, a FIFO or a folder where a file should be: not
                // something Tessera published.
                _ => ServiceError::NotFound(format!(
                    "{shown} in the ladder of job {id} is not a regular file; it was not published by Tessera"
                )),
            })?;
        Ok(LadderFile {
            file,
            path: path.to_string(),
            content_type,
        })
    }

    /// The `ladder.json` of a succeeded ladder encode job, if it has one
    /// (for its job page).
    pub async fn ladder_report<R: Need>(&self, job: &JobAccess<R>) -> Option<LadderReport> {
        let opened = self.ladder_file(job, LADDER_REPORT).await.ok()?;
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut bytes = Vec::new();
            opened.file.take(MAX_REPORT).read_to_end(&mut bytes).ok()?;
            serde_json::from_slice(&bytes).ok()
        })
        .await
        .ok()
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_paths_are_plain_names_of_known_kinds() {
        for ok in [
            "master.m3u8",
            "manifest.mpd",
            "720p/init.mp4",
            "720p/seg-00001.m4s",
            "audio-und-0/index.m3u8",
            "subs/eng-0.vtt",
            "thumbs/poster.jpg",
            "ladder.json",
        ] {
            assert!(ladder_path(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            ladder_path("master.m3u8").unwrap(),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(ladder_path("a/b.m4s").unwrap(), "video/iso.segment");
        let long = format!("{}.m4s", "a".repeat(MAX_LADDER_PATH));
        for bad in [
            "",
            "..",
            "../x.json",
            "720p/../../x.json",
            "./master.m3u8",
            "/etc/passwd.json",
            "720p//init.mp4",
            ".hidden.json",
            "a/b/c/d.m4s",
            "720p/seg 1.m4s",
            "720p\\..\\x.json",
            "master.m3u8\0",
            "request.sh",
            "720p",
            long.as_str(),
        ] {
            let e = ladder_path(bad).unwrap_err().to_string();
            assert!(e.contains("is not a file of a ladder"), "{bad:?}: {e}");
        }
    }
}
