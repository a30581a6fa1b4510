//! The jobs service: list, submit (through the driver only), read, cancel,
//! and task logs.

use crate::views::{AfterView, AttemptView, JobView, TaskView};
use crate::{ApiError, AppState};
use std::path::PathBuf;
use std::time::Instant;
use tessera_store::{JobRecord, ProjectRecord};
use tessera_types::{JobSpec, TaskRef, TaskState};

/// The most of a log one request returns: its last this many bytes.
pub(crate) const LOG_LIMIT: u64 = 16 << 20;

/// Jobs listed at most per request.
pub(crate) const MAX_LIST: u32 = 1000;

/// Tasks or attempts per page when the request names no `limit`.
pub(crate) const PAGE_DEFAULT: u32 = 1000;

/// Tasks or attempts per page at most (a larger `limit` is cut to this).
pub(crate) const PAGE_MAX: u32 = 10_000;

/// One page of a job's tasks or attempts, and where the next one starts
/// (`None`: this is the last).
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub next_offset: Option<u32>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` rows read at `offset`: the extra row,
    /// dropped here, says whether another page follows.
    fn new(mut rows: Vec<T>, offset: u32, limit: u32) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Self {
            items: rows,
            next_offset: more.then(|| offset.saturating_add(limit)),
        }
    }
}

/// The page size a request gets for its `limit`.
pub(crate) fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX)
}

pub(crate) async fn list(
    state: &AppState,
    project: ProjectRecord,
    limit: u32,
) -> Result<Vec<JobView>, ApiError> {
    let limit = limit.clamp(1, MAX_LIST);
    let jobs = state
        .db(move |db| Ok(db.jobs_of_project(project.id, limit)?))
        .await?;
    Ok(jobs.iter().map(|j| JobView::new(j, None)).collect())
}

/// Submits a job to the driver; answers once it is committed. The driver
/// compiles and validates the spec (once, off the async threads) and its
/// refusal becomes a 422 with the scheduler's exact message.
pub(crate) async fn submit(
    state: &AppState,
    project: ProjectRecord,
    mut spec: JobSpec,
) -> Result<JobView, ApiError> {
    if !spec.grants.is_empty() {
        return Err(ApiError::Invalid(
            "`grants` are given by the server (an encode grants its files), never by a job \
             spec; remove them: a job's tasks may use its own folder and its project's uploads"
                .into(),
        ));
    }
    spec.grants = state.project_grants(project.id);
    let started = Instant::now();
    let driver = state.driver.clone();
    let submitted =
        tokio::task::spawn_blocking(move || driver.submit(Some(project.id), spec, None)).await?;
    state.metrics.observe_submit(started.elapsed());
    let id = submitted?;
    let job = state
        .db(move |db| {
            db.job(id)?
                .ok_or_else(|| ApiError::internal(format!("job {id} vanished after submission")))
        })
        .await?;
    Ok(JobView::new(&job, Some(&[])))
}

/// The job with its task counts by state (counted by the store: no task is
/// read), the jobs it waits on and, while they hold it back, what for.
pub(crate) async fn view(state: &AppState, job: JobRecord) -> Result<JobView, ApiError> {
    let id = job.id;
    let (counts, head) = state
        .db(move |db| Ok((db.task_counts(id)?, db.job_spec(id)?)))
        .await?;
    let mut view = JobView::new(&job, Some(&counts));
    if let Some(head) = head.filter(|h| !h.after.is_empty()) {
        view.after = Some(head.after.iter().map(AfterView::from).collect());
        if !job.state.is_terminal() {
            let driver = state.driver.clone();
            view.waiting = tokio::task::spawn_blocking(move || driver.job_waiting(id)).await??;
        }
    }
    Ok(view)
}

/// A page of a job's tasks in index order, with why each waiting or ready
/// one has not started (asked of the driver, only when there is such a task).
pub(crate) async fn tasks(
    state: &AppState,
    job: JobRecord,
    offset: u32,
    limit: u32,
) -> Result<Page<TaskView>, ApiError> {
    let id = job.id;
    let rows = state
        .db(move |db| Ok(db.tasks_page(id, offset, limit.saturating_add(1))?))
        .await?;
    let Page { items, next_offset } = Page::new(rows, offset, limit);
    let mut views: Vec<TaskView> = items.iter().map(TaskView::from).collect();
    let held = |v: &TaskView| matches!(v.state, TaskState::Waiting | TaskState::Ready);
    if views.iter().any(held) {
        let driver = state.driver.clone();
        let reasons = tokio::task::spawn_blocking(move || driver.why_waiting(id)).await??;
        for (index, reason) in reasons {
            let Some(i) = index.checked_sub(offset) else {
                continue;
            };
            if let Some(v) = views.get_mut(i as usize).filter(|v| held(v)) {
                v.waiting = Some(reason);
            }
        }
    }
    Ok(Page {
        items: views,
        next_offset,
    })
}

/// A page of a job's attempts, by task index then attempt number.
pub(crate) async fn attempts(
    state: &AppState,
    job: JobRecord,
    offset: u32,
    limit: u32,
) -> Result<Page<AttemptView>, ApiError> {
    let rows = state
        .db(move |db| Ok(db.attempts_page(job.id, offset, limit.saturating_add(1))?))
        .await?;
    let Page { items, next_offset } = Page::new(rows, offset, limit);
    Ok(Page {
        items: items.iter().map(AttemptView::from).collect(),
        next_offset,
    })
}

/// Asks the driver to cancel the job (it happens asynchronously).
pub(crate) fn cancel(state: &AppState, job: &JobRecord) -> Result<JobView, ApiError> {
    if job.state.is_terminal() {
        return Err(ApiError::Conflict(format!(
            "job {} has already ended ({}); there is nothing to cancel",
            job.id, job.state
        )));
    }
    state.driver.cancel(job.id);
    Ok(JobView::new(job, None))
}

/// Which of an attempt's logs.
#[derive(Clone, Copy, Debug, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A task attempt's log (its last [`LOG_LIMIT`] bytes), as the local
/// executor wrote it. `attempt` defaults to the task's latest. The path is
/// built from the stored task name only, never from the request.
pub(crate) async fn log(
    state: &AppState,
    job: JobRecord,
    index: u32,
    attempt: Option<u32>,
    stream: Stream,
) -> Result<Vec<u8>, ApiError> {
    let task = task(state, job.id, index).await?;
    let tref = TaskRef::new(job.id, index);
    let attempt = attempt.unwrap_or(task.attempt);
    if attempt == 0 || attempt > task.attempt {
        return Err(ApiError::NotFound(match task.attempt {
            0 => format!("task {tref} ({}) has not started yet", task.name),
            n => format!(
                "task {tref} ({}) has no attempt {attempt}; its attempts are 1 to {n}",
                task.name
            ),
        }));
    }
    let path = log_path(state, &job, &task.name, attempt, stream);
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || read_tail(&path, LOG_LIMIT)).await?
    };
    match read {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError::NotFound(format!(
            "attempt {attempt} of task {tref} ({}) has no {} log (it ran no process, \
             or its logs were removed)",
            task.name,
            stream.as_str()
        ))),
        Err(e) => Err(ApiError::internal(format!(
            "reading {}: {e}",
            path.display()
        ))),
    }
}

/// Task `index` of `job` (404 if it has none).
pub(crate) async fn task(
    state: &AppState,
    job: tessera_types::JobId,
    index: u32,
) -> Result<tessera_store::TaskRecord, ApiError> {
    state
        .db(move |db| {
            db.tasks_page(job, index, 1)?
                .pop()
                .filter(|t| t.task.index == index)
                .ok_or_else(|| ApiError::NotFound(format!("job {job} has no task {index}")))
        })
        .await
}

/// The whole file, or its last `limit` bytes when it is longer.
fn read_tail(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(limit)))?;
    let mut out = Vec::with_capacity(len.min(limit) as usize);
    file.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

pub(crate) fn log_path(
    state: &AppState,
    job: &JobRecord,
    task_name: &str,
    attempt: u32,
    stream: Stream,
) -> PathBuf {
    tessera_driver::attempt_log_path(&state.data_dir, job.id, task_name, attempt, stream.as_str())
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
