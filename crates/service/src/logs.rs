//! Task logs: an attempt's log read whole (its tail), or followed as it
//! grows until the attempt ends. The path is built from the stored task
//! name only, never from a request.

use crate::access::{JobAccess, Need};
use crate::events::shutting_down;
use crate::{Service, ServiceError};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tessera_driver::FeedItem;
use tessera_store::TaskRecord;
use tessera_types::{AttemptNo, JobId, TaskRef, TaskState};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// The most of a log one read returns: its last this many bytes.
pub const LOG_LIMIT: u64 = 16 << 20;

/// How often a followed log is read again while its attempt runs (the feed
/// says when it ends; the file says nothing when it grows).
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// Bytes read from a followed log per step at most.
const FOLLOW_CHUNK: usize = 256 << 10;

/// Chunks of a followed log buffered before the reader waits for the client.
const FOLLOW_BUFFER: usize = 16;

/// Which of an attempt's logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A log being followed: its bytes in order, until the attempt ends, the
/// server closes or this is dropped.
pub struct FollowedLog {
    rx: mpsc::Receiver<Vec<u8>>,
}

impl FollowedLog {
    /// The next bytes; `None` once the log is over.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }

    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        self.rx.poll_recv(cx)
    }
}

impl Service {
    /// An attempt's log (its last [`LOG_LIMIT`] bytes) of task `index`, as
    /// the executor wrote it. `attempt` defaults to the task's latest.
    pub async fn log<R: Need>(
        &self,
        job: &JobAccess<R>,
        index: u32,
        attempt: Option<AttemptNo>,
        stream: Stream,
    ) -> Result<Vec<u8>, ServiceError> {
        let job = job.job();
        let task = self.task(job.id, index).await?;
        let tref = TaskRef::new(job.id, index);
        let attempt = attempt.unwrap_or(task.attempt);
        if attempt == 0 || attempt > task.attempt {
            return Err(ServiceError::NotFound(match task.attempt {
                0 => format!("task {tref} ({}) has not started yet", task.name),
                n => format!(
                    "task {tref} ({}) has no attempt {attempt}; its attempts are 1 to {n}",
                    task.name
                ),
            }));
        }
        let path = self.log_path(job.id, &task.name, attempt, stream);
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_tail(&path, LOG_LIMIT)).await?
        };
        match read {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ServiceError::NotFound(format!(
                    "attempt {attempt} of task {tref} ({}) has no {} log (it ran no process, \
                     or its logs were removed)",
                    task.name,
                    stream.as_str()
                )))
            }
            Err(e) => Err(ServiceError::internal(format!(
                "reading {}: {e}",
                path.display()
            ))),
        }
    }

    /// The log of one attempt of task `index` (the latest, or `attempt`)
    /// from its start, then what it writes, until the attempt ends. A task
    /// that has not started yet is waited for; one that ends without
    /// running (skipped, cancelled) ends the log at once.
    pub async fn follow_log<R: Need>(
        &self,
        job: &JobAccess<R>,
        index: u32,
        attempt: Option<AttemptNo>,
        stream: Stream,
    ) -> Result<FollowedLog, ServiceError> {
        let id = job.id();
        let tref = TaskRef::new(id, index);
        let mut feed = self.driver.subscribe();
        let mut closing = self.closing();
        let task = self.task(id, index).await?;
        if let Some(a) = attempt {
            if a == 0 || a > task.attempt {
                return Err(ServiceError::NotFound(format!(
                    "task {tref} ({}) has no attempt {a}; it has had {}",
                    task.name, task.attempt
                )));
            }
        }
        let (tx, rx) = mpsc::channel::<Vec<u8>>(FOLLOW_BUFFER);
        let service = self.clone();
        tokio::spawn(async move {
            let name = task.name.clone();
            // Which attempt: the one asked for, else the latest, else the
            // first one to start.
            let mut number = attempt.unwrap_or(task.attempt);
            let mut ended = attempt_over(&task, number);
            let mut offset = 0u64;
            loop {
                if number > 0 {
                    let path = service.log_path(id, &name, number, stream);
                    match read_from(path, offset).await {
                        Some(bytes) if !bytes.is_empty() => {
                            offset += bytes.len() as u64;
                            if tx.send(bytes).await.is_err() {
                                return;
                            }
                            continue; // more may be waiting
                        }
                        _ if ended => return,
                        _ => {}
                    }
                } else if ended {
                    return;
                }
                // Wait for the attempt to end (or start), or for the file to grow.
                let wait = tokio::time::sleep(FOLLOW_POLL);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        () = &mut wait => break,
                        () = tx.closed() => return,
                        () = shutting_down(&mut closing) => return,
                        item = feed.recv() => match item {
                            Ok(item) => {
                                if let Some(seen) = watch(&item, tref, number) {
                                    match seen {
                                        Watch::Started(n) => number = n,
                                        Watch::Ended => ended = true,
                                    }
                                    break;
                                }
                            }
                            Err(RecvError::Lagged(_)) => {
                                // Ask the store what we missed.
                                let Ok(t) = service.task(id, index).await else { return };
                                if number == 0 && t.attempt > 0 {
                                    number = t.attempt;
                                }
                                ended = attempt_over(&t, number);
                                break;
                            }
                            Err(RecvError::Closed) => {
                                ended = true;
                                break;
                            }
                        },
                    }
                }
            }
        });
        Ok(FollowedLog { rx })
    }

    /// Task `index` of `job` (`NotFound` if it has none).
    async fn task(&self, job: JobId, index: u32) -> Result<TaskRecord, ServiceError> {
        self.db(move |db| {
            db.tasks_page(job, index, 1)?
                .pop()
                .filter(|t| t.task.index == index)
                .ok_or_else(|| ServiceError::NotFound(format!("job {job} has no task {index}")))
        })
        .await
    }

    fn log_path(&self, job: JobId, task_name: &str, attempt: u32, stream: Stream) -> PathBuf {
        tessera_driver::attempt_log_path(&self.data_dir, job, task_name, attempt, stream.as_str())
    }
}

enum Watch {
    Started(AttemptNo),
    Ended,
}

/// What a feed item means for following attempt `number` of `task` (0: the
/// first attempt that starts).
fn watch(item: &Arc<FeedItem>, task: TaskRef, number: AttemptNo) -> Option<Watch> {
    let FeedItem::Changes { changes, .. } = item.as_ref() else {
        return None;
    };
    let mut seen = None;
    for change in changes {
        use tessera_types::Change;
        match change {
            Change::AttemptStarted {
                task: t, attempt, ..
            } if *t == task && number == 0 => seen = Some(Watch::Started(*attempt)),
            Change::AttemptEnded {
                task: t, attempt, ..
            } if *t == task && *attempt == number => return Some(Watch::Ended),
            // Ended without (another) attempt: skipped or cancelled.
            Change::Task { task: t, state, .. }
                if *t == task && number == 0 && state.is_terminal() =>
            {
                return Some(Watch::Ended)
            }
            _ => {}
        }
    }
    seen
}

/// Whether attempt `number` of a task is over, as its row tells.
fn attempt_over(task: &TaskRecord, number: AttemptNo) -> bool {
    if number == 0 {
        return task.state.is_terminal();
    }
    task.attempt > number || task.state != TaskState::Running
}

/// Up to [`FOLLOW_CHUNK`] bytes of `path` from `offset`; `None` while the
/// file does not exist.
async fn read_from(path: PathBuf, offset: u64) -> Option<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path).ok()?;
        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut buf = Vec::with_capacity(FOLLOW_CHUNK.min(64 << 10));
        file.take(FOLLOW_CHUNK as u64).read_to_end(&mut buf).ok()?;
        Some(buf)
    })
    .await
    .ok()
    .flatten()
}

/// The whole file, or its last `limit` bytes when it is longer.
fn read_tail(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(limit)))?;
    let mut out = Vec::with_capacity(len.min(limit) as usize);
    file.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_names_cannot_leave_the_log_directory() {
        let root = std::path::Path::new("/data");
        let p = tessera_driver::attempt_log_path(
            root,
            tessera_types::JobId(4),
            "../../etc/passwd",
            2,
            "stdout",
        );
        assert_eq!(
            p,
            std::path::Path::new("/data/jobs/4/logs/%2E.%2F..%2Fetc%2Fpasswd.2.stdout.log")
        );
        let p = tessera_driver::attempt_log_path(root, tessera_types::JobId(4), "..", 1, "stderr");
        assert_eq!(p.parent(), Some(std::path::Path::new("/data/jobs/4/logs")));
    }

    #[test]
    fn long_logs_are_cut_to_their_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(super::read_tail(&path, 4).unwrap(), b"6789");
        assert_eq!(super::read_tail(&path, 100).unwrap(), b"0123456789");
    }
}
