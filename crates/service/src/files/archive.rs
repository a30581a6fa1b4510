//! Archiving an ended job: its folder (`<data>/jobs/<id>`: what its tasks
//! wrote, their logs) is removed from disk; the job's record stays, and a
//! marker `<data>/archived/<id>` (the time, in ms; outside the folder, so
//! no job can forge it) says it was archived and when. A job that has not
//! ended is refused: its tasks still write there.

use crate::access::{JobAccess, MayAct, Need};
use crate::{now_ms, Service, ServiceError};
use std::path::PathBuf;
use tessera_types::{JobId, Millis};

impl Service {
    fn archive_marker(&self, job: JobId) -> PathBuf {
        self.data_dir.join("archived").join(job.to_string())
    }

    /// Removes an ended job's files, keeps its record; archiving it again
    /// changes nothing and answers when it was first archived.
    pub async fn archive_job<R: MayAct>(&self, job: &JobAccess<R>) -> Result<Millis, ServiceError> {
        let record = job.job();
        if !record.state.is_terminal() {
            return Err(ServiceError::Conflict(format!(
                "job {} is still {}: only an ended job is archived; kill it first, or wait for \
                 its end",
                record.id, record.state
            )));
        }
        if let Some(at) = self.archived_at(job).await {
            return Ok(at);
        }
        let dir = self.data_dir.join("jobs").join(record.id.to_string());
        // `remove_dir_all` never follows a link the job left there.
        match tokio::fs::remove_dir_all(&dir).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ServiceError::internal(format!(
                    "cannot remove {} to archive job {}: {e}",
                    dir.display(),
                    record.id
                )))
            }
            _ => {}
        }
        let at = now_ms();
        let marker = self.archive_marker(record.id);
        let marked = async {
            if let Some(parent) = marker.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::write(&marker, at.to_string()).await
        };
        marked.await.map_err(|e| {
            ServiceError::internal(format!("cannot write {}: {e}", marker.display()))
        })?;
        Ok(at)
    }

    /// When the job was archived, if it was.
    pub async fn archived_at<R: Need>(&self, job: &JobAccess<R>) -> Option<Millis> {
        let text = tokio::fs::read_to_string(self.archive_marker(job.id()))
            .await
            .ok()?;
        text.trim().parse().ok()
    }
}
