//! A job's events: the driver's feed ([`tessera_driver::Feed`]) narrowed to
//! one job, as a stream of [`JobEvent`]s from now until the job ends. The
//! store stays the truth: a listener that falls behind is told how much it
//! missed and gets a fresh snapshot rather than a guess.

use crate::access::{JobAccess, Need};
use crate::jobs::JobStatus;
use crate::Service;
use std::task::{Context, Poll};
use tessera_driver::FeedItem;
use tessera_types::{AttemptNo, Change, JobId, JobState, Progress};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// Events buffered per stream before the sender waits for the listener.
const STREAM_BUFFER: usize = 256;

/// One thing that happened to a job.
#[derive(Clone, Debug)]
pub enum JobEvent {
    /// The job as the store has it: first, and after [`JobEvent::Lagged`].
    Snapshot(JobStatus),
    /// A committed change of the job (its state, a task, an attempt, tasks
    /// added by an expansion, suspended, priority).
    Change(Change),
    /// An attempt reported progress (not durable).
    Progress {
        index: u32,
        attempt: AttemptNo,
        progress: Progress,
    },
    /// This many feed items were dropped: a snapshot follows.
    Lagged { missed: u64 },
    /// The job has ended; nothing follows.
    End { state: JobState },
}

/// A job's events, until it ends, the server closes or this is dropped.
pub struct JobEvents {
    rx: mpsc::Receiver<JobEvent>,
}

impl JobEvents {
    pub async fn next(&mut self) -> Option<JobEvent> {
        self.rx.recv().await
    }

    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<JobEvent>> {
        self.rx.poll_recv(cx)
    }
}

impl Service {
    /// The job's events from now until it ends (a job that has ended gives
    /// its snapshot and its end).
    pub fn job_events<R: Need>(&self, job: &JobAccess<R>) -> JobEvents {
        // Subscribe before reading the snapshot, so nothing falls between
        // them (an event may then repeat what the snapshot shows, which is
        // harmless).
        let mut feed = self.driver.subscribe();
        let mut closing = self.closing();
        let (tx, rx) = mpsc::channel::<JobEvent>(STREAM_BUFFER);
        let (service, job) = (self.clone(), job.job().clone());
        tokio::spawn(async move {
            let mut out = Out { tx };
            let id = job.id;
            if !out.snapshot(&service, job).await {
                return;
            }
            loop {
                let item = tokio::select! {
                    item = feed.recv() => item,
                    () = out.tx.closed() => return,
                    () = shutting_down(&mut closing) => return,
                };
                match item {
                    Ok(item) => {
                        if !out.item(id, &item).await {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        if !out.send(JobEvent::Lagged { missed }).await {
                            return;
                        }
                        let Ok(Some(job)) = service.reload(id).await else {
                            return;
                        };
                        if !out.snapshot(&service, job).await {
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        JobEvents { rx }
    }
}

/// The sending end of one stream. Each method returns `false` once the
/// stream is over (the listener went away, or the job ended).
struct Out {
    tx: mpsc::Sender<JobEvent>,
}

impl Out {
    async fn send(&mut self, event: JobEvent) -> bool {
        self.tx.send(event).await.is_ok()
    }

    /// Sends the job as the store has it; ends the stream if it has ended.
    async fn snapshot(&mut self, service: &Service, job: tessera_store::JobRecord) -> bool {
        let state = job.state;
        let Ok(status) = service.status_of(job).await else {
            return false;
        };
        if !self.send(JobEvent::Snapshot(status)).await {
            return false;
        }
        if state.is_terminal() {
            self.send(JobEvent::End { state }).await;
            return false;
        }
        true
    }

    async fn item(&mut self, job: JobId, item: &FeedItem) -> bool {
        match item {
            FeedItem::Progress {
                task,
                attempt,
                progress,
            } if task.job == job => {
                let event = JobEvent::Progress {
                    index: task.index,
                    attempt: *attempt,
                    progress: *progress,
                };
                self.send(event).await
            }
            FeedItem::Progress { .. } | FeedItem::Running { .. } => true,
            FeedItem::Changes { changes, .. } => {
                for change in changes.iter().filter(|c| c.job() == job) {
                    if !self.send(JobEvent::Change(change.clone())).await {
                        return false;
                    }
                    if let Change::JobState { state, .. } = change {
                        if state.is_terminal() {
                            self.send(JobEvent::End { state: *state }).await;
                            return false;
                        }
                    }
                }
                true
            }
        }
    }
}

/// Completes when the server starts shutting down.
pub(crate) async fn shutting_down(closing: &mut tokio::sync::watch::Receiver<bool>) {
    // An error means the state is gone: as good as shut down.
    let _ = closing.wait_for(|c| *c).await;
}
