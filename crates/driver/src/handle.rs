//! Requests to a running driver from other threads: what travels over its
//! channel ([`Input`]) and the [`DriverHandle`] that sends it.

use crate::DriverError;
use std::sync::mpsc::{self, Sender};
use tessera_core::{Event, ProjectUsage};
use tessera_exec::ExecEvent;
use tessera_types::{JobId, JobSpec, ProjectId, Quota};

/// Everything the driver's loop takes in.
pub(crate) enum Input {
    Exec(ExecEvent),
    Submit {
        project: Option<ProjectId>,
        spec: Box<JobSpec>,
        key: Option<String>,
        reply: Sender<Result<JobId, DriverError>>,
    },
    Cancel(JobId),
    /// Suspend, resume, retry or a priority change; answered once committed.
    Control {
        event: Event,
        reply: Sender<Result<(), DriverError>>,
    },
    Interrupt,
    SetQuota {
        project: ProjectId,
        quota: Quota,
        reply: Sender<()>,
    },
    /// The slots attempts may use now (workers joined or left).
    SetCapacity(u32),
    WhyWaiting {
        job: JobId,
        reply: Sender<Vec<(u32, String)>>,
    },
    JobWaiting {
        job: JobId,
        reply: Sender<Option<String>>,
    },
    Usage {
        project: Option<ProjectId>,
        reply: Sender<ProjectUsage>,
    },
}

/// Sends requests to a running driver from any thread (a signal handler's
/// thread, an API handler).
#[derive(Clone)]
pub struct DriverHandle {
    pub(crate) tx: Sender<Input>,
    pub(crate) feed: crate::Feed,
    /// The slots now: the configured ones, or the last capacity set.
    pub(crate) slots: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl DriverHandle {
    /// The slots the driver runs attempts in now: its executor's capacity,
    /// or with workers the sum of the live ones' slots
    /// ([`set_capacity`](Self::set_capacity)).
    pub fn slots(&self) -> u32 {
        self.slots.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every change committed and every progress report from now on (see
    /// [`Feed`](crate::Feed)).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<crate::FeedItem>> {
        self.feed.subscribe()
    }

    pub fn cancel(&self, job: JobId) {
        let _ = self.tx.send(Input::Cancel(job));
    }

    /// Suspends a job: nothing of it starts, its running attempts are
    /// stopped (their time limits pause). Waits until committed; refused
    /// ([`DriverError::Control`]) for an ended or already suspended job. Blocks.
    pub fn suspend(&self, job: JobId) -> Result<(), DriverError> {
        self.control(Event::SuspendJob { job })
    }

    /// Resumes a suspended job; refused for a job that is not suspended. Blocks.
    pub fn resume(&self, job: JobId) -> Result<(), DriverError> {
        self.control(Event::ResumeJob { job })
    }

    /// Runs again what ended badly in a failed or cancelled job (what
    /// succeeded is kept); refused for a job that is running or succeeded. Blocks.
    pub fn retry(&self, job: JobId) -> Result<(), DriverError> {
        self.control(Event::RetryJob { job })
    }

    /// Sets a job's priority offset (added to its tasks' own priorities in
    /// the ready queue); refused for an ended job. Blocks.
    pub fn set_priority(&self, job: JobId, priority: i32) -> Result<(), DriverError> {
        self.control(Event::SetPriority { job, priority })
    }

    fn control(&self, event: Event) -> Result<(), DriverError> {
        self.ask(|reply| Input::Control { event, reply })?
    }

    /// Stops cleanly: kills running attempts, records them as interrupted
    /// (back in the queue), starts nothing new.
    pub fn interrupt(&self) {
        let _ = self.tx.send(Input::Interrupt);
    }

    /// Submits a job to a driver running [`Driver::serve`](crate::Driver::serve)
    /// on another thread and waits until it is committed (or refused).
    /// Blocks: call it from a blocking context.
    pub fn submit(
        &self,
        project: Option<ProjectId>,
        spec: JobSpec,
        key: Option<String>,
    ) -> Result<JobId, DriverError> {
        let spec = Box::new(spec);
        self.ask(|reply| Input::Submit {
            project,
            spec,
            key,
            reply,
        })?
    }

    /// Sets a project's quota in the running scheduler and waits until it
    /// has been applied (a raised quota may start tasks at once). It does
    /// not persist it: the caller stores it first
    /// ([`Accounts::set_quota`](tessera_store::Accounts::set_quota)), so a
    /// restart loads it again. Blocks.
    pub fn set_quota(&self, project: ProjectId, quota: Quota) -> Result<(), DriverError> {
        self.ask(|reply| Input::SetQuota {
            project,
            quota,
            reply,
        })
    }

    /// Sets the slots attempts may use (the sum of the live workers'
    /// slots, for a server whose tasks run on workers); new slots are used
    /// at once. Does not wait.
    pub fn set_capacity(&self, slots: u32) {
        self.slots
            .store(slots, std::sync::atomic::Ordering::Relaxed);
        let _ = self.tx.send(Input::SetCapacity(slots));
    }

    /// Why each waiting or ready task of `job` has not started: `(index,
    /// reason)` in index order, as
    /// [`Scheduler::why_waiting`](tessera_core::Scheduler::why_waiting)
    /// words it. Empty for a job the scheduler does not hold (ended before
    /// this process started, or unknown). Blocks.
    pub fn why_waiting(&self, job: JobId) -> Result<Vec<(u32, String)>, DriverError> {
        self.ask(|reply| Input::WhyWaiting { job, reply })
    }

    /// What `job` waits for while its job dependencies hold it back
    /// ("waiting for job 12 (split) to succeed"); `None` once released, for
    /// a job without any, or one the scheduler does not hold. Blocks.
    pub fn job_waiting(&self, job: JobId) -> Result<Option<String>, DriverError> {
        self.ask(|reply| Input::JobWaiting { job, reply })
    }

    /// A project's accounts now (running cpu and memory, decayed and
    /// in-window cpu time); `None` is the implicit project. Blocks.
    pub fn project_usage(&self, project: Option<ProjectId>) -> Result<ProjectUsage, DriverError> {
        self.ask(|reply| Input::Usage { project, reply })
    }

    /// Sends a request and waits for its reply.
    fn ask<T>(&self, input: impl FnOnce(Sender<T>) -> Input) -> Result<T, DriverError> {
        let (reply, rx) = mpsc::channel();
        self.tx
            .send(input(reply))
            .map_err(|_| DriverError::Stopped)?;
        rx.recv().map_err(|_| DriverError::Stopped)
    }
}
