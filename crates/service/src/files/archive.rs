//! Archiving an ended job: its folder (`<data>/jobs/<id>`: what its tasks
//! wrote, their logs) is removed from disk; the job's record stays, and an
//! empty folder holding only [`ARCHIVED`] (the time, in ms) says it was
//! archived and when. A job that has not ended is refused: its tasks still
//! write there.

use crate::access::{JobAccess, MayAct, Need};
use crate::{now_ms, Service, ServiceError};
use tessera_types::Millis;

/// The marker left in an archived job's folder.
pub const ARCHIVED: &str = ".archived";

impl Service {
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
        super::encodes::remove_dir(&dir).await;
        let at = now_ms();
        let marked = async {
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::write(dir.join(ARCHIVED), at.to_string()).await
        };
        marked.await.map_err(|e| {
            ServiceError::internal(format!("cannot mark {} archived: {e}", dir.display()))
        })?;
        Ok(at)
    }

    /// When the job was archived, if it was.
    pub async fn archived_at<R: Need>(&self, job: &JobAccess<R>) -> Option<Millis> {
        let marker = self
            .data_dir
            .join("jobs")
            .join(job.id().to_string())
            .join(ARCHIVED);
        let text = tokio::fs::read_to_string(marker).await.ok()?;
        text.trim().parse().ok()
    }
}
