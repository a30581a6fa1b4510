//! Jobs: list, submit (through the driver only), show, tasks with why they
//! wait, attempts, cancel.

use crate::access::{Caller, JobAccess, MayAct, Need, ProjectAccess};
use crate::{Service, ServiceError};
use std::time::Instant;
use tessera_store::{AttemptRecord, JobRecord, ProjectRecord, TaskRecord};
use tessera_types::{JobId, JobSpec, Role, TaskState};

/// Jobs listed at most per request.
pub const MAX_LIST: u32 = 1000;

/// Tasks or attempts per page when the request names no `limit`.
pub const PAGE_DEFAULT: u32 = 1000;

/// Tasks or attempts per page at most (a larger `limit` is cut to this).
pub const PAGE_MAX: u32 = 10_000;

/// One page of a job's tasks or attempts, and where the next one starts
/// (`None`: this is the last).
#[derive(Clone, Debug)]
pub struct Page<T> {
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
pub fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX)
}

/// A job and its task counts by state (counted by the store: no task is
/// read).
#[derive(Clone, Debug)]
pub struct JobStatus {
    pub job: JobRecord,
    pub counts: Vec<(TaskState, u64)>,
    /// The jobs it waits on, as written with what each matched.
    pub after: Vec<tessera_types::JobDependency>,
    /// What it waits for while its job dependencies hold it back.
    pub waiting: Option<String>,
}

/// A task, and why it has not started if it waits or is ready
/// (dependencies, backoff, its project's quota, no free slot).
#[derive(Clone, Debug)]
pub struct Task {
    pub record: TaskRecord,
    pub waiting: Option<String>,
}

/// What a job's page shows: its project, its first tasks, their attempts
/// and the counts of all its tasks by state.
#[derive(Clone, Debug)]
pub struct JobDetail {
    pub project: Option<ProjectRecord>,
    pub tasks: Vec<TaskRecord>,
    pub attempts: Vec<AttemptRecord>,
    pub counts: Vec<(TaskState, u64)>,
    /// The jobs it waits on, as written with what each matched.
    pub after: Vec<tessera_types::JobDependency>,
    /// What it waits for while its job dependencies hold it back.
    pub waiting: Option<String>,
    /// Why each of the shown tasks that waits or is ready has not started,
    /// by task index (as [`Service::tasks`] gives it).
    pub why: Vec<(u32, String)>,
}

impl Service {
    /// The project's jobs, newest first, at most `limit` (1 to [`MAX_LIST`]).
    pub async fn jobs<R: Need>(
        &self,
        project: &ProjectAccess<R>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, ServiceError> {
        let (id, limit) = (project.id(), limit.clamp(1, MAX_LIST));
        self.db(move |db| Ok(db.jobs_of_project(id, limit)?)).await
    }

    /// Submits a job to the driver; answers once it is committed. The
    /// driver compiles and validates the spec (once, off the async threads)
    /// and its refusal is an `InvalidSpec` with the scheduler's exact words.
    pub async fn submit<R: MayAct>(
        &self,
        project: &ProjectAccess<R>,
        mut spec: JobSpec,
    ) -> Result<JobRecord, ServiceError> {
        if !spec.grants.is_empty() {
            return Err(ServiceError::Invalid(
                "`grants` are given by the server (an encode grants its files), never by a job \
                 spec; remove them: a job's tasks may use its own folder and its project's uploads"
                    .into(),
            ));
        }
        let project = project.id();
        self.rules_in_project(project, &spec).await?;
        spec.grants = self.project_grants(project);
        let id = self.hand_over(project, spec, None).await?;
        self.submitted(id).await
    }

    /// Refuses placement rules that name jobs of another project (or none):
    /// where those ran is not the submitter's to know or follow.
    async fn rules_in_project(
        &self,
        project: tessera_types::ProjectId,
        spec: &JobSpec,
    ) -> Result<(), ServiceError> {
        let mut named: Vec<JobId> = spec
            .tasks
            .iter()
            .flat_map(|t| &t.resources.rules)
            .flat_map(|r| match &r.near {
                tessera_types::Near::Jobs(jobs) => jobs.as_slice(),
                tessera_types::Near::Label { .. } => &[],
            })
            .copied()
            .collect();
        named.sort();
        named.dedup();
        if named.len() > tessera_types::MAX_RULE_JOBS {
            return Err(ServiceError::Invalid(format!(
                "placement rules name {} jobs; name at most {} in all",
                named.len(),
                tessera_types::MAX_RULE_JOBS
            )));
        }
        let outside = self
            .db(move |db| {
                for id in named {
                    if db.job(id)?.is_none_or(|j| j.project != Some(project)) {
                        return Ok(Some(id));
                    }
                }
                Ok(None)
            })
            .await?;
        match outside {
            Some(id) => Err(ServiceError::Invalid(format!(
                "a placement rule names job {id}, which is no job of this project; name jobs of \
                 the project you submit to"
            ))),
            None => Ok(()),
        }
    }

    /// Hands `spec` to the driver; its id once it is committed.
    pub(crate) async fn hand_over(
        &self,
        project: tessera_types::ProjectId,
        spec: JobSpec,
        key: Option<String>,
    ) -> Result<JobId, ServiceError> {
        let started = Instant::now();
        let driver = self.driver.clone();
        let submitted =
            tokio::task::spawn_blocking(move || driver.submit(Some(project), spec, key)).await?;
        self.observer.submitted(started.elapsed());
        Ok(submitted?)
    }

    /// A job just submitted, read back.
    pub(crate) async fn submitted(&self, id: JobId) -> Result<JobRecord, ServiceError> {
        self.db(move |db| {
            db.job(id)?.ok_or_else(|| {
                ServiceError::internal(format!("job {id} vanished after submission"))
            })
        })
        .await
    }

    /// The job's spec as it was submitted, without its tasks (its name,
    /// params, `after` and `meta`).
    pub async fn job_spec<R: Need>(&self, job: &JobAccess<R>) -> Result<JobSpec, ServiceError> {
        let id = job.id();
        let head = self.db(move |db| Ok(db.job_spec(id)?)).await?;
        Ok(head.unwrap_or_else(|| JobSpec::new(job.job().name.clone(), Vec::new())))
    }

    /// The job with its task counts by state.
    pub async fn job_status<R: Need>(&self, job: &JobAccess<R>) -> Result<JobStatus, ServiceError> {
        self.status_of(job.job().clone()).await
    }

    pub(crate) async fn status_of(&self, job: JobRecord) -> Result<JobStatus, ServiceError> {
        let id = job.id;
        let counts = self.db(move |db| Ok(db.task_counts(id)?)).await?;
        let (after, waiting) = self.after_of(&job).await?;
        Ok(JobStatus {
            job,
            counts,
            after,
            waiting,
        })
    }

    /// The jobs `job` waits on (its own spec's `after`) and, while they
    /// hold it back, what for (asked of the driver only then).
    async fn after_of(
        &self,
        job: &JobRecord,
    ) -> Result<(Vec<tessera_types::JobDependency>, Option<String>), ServiceError> {
        let id = job.id;
        let head = self.db(move |db| Ok(db.job_spec(id)?)).await?;
        let after = head.map(|h| h.after).unwrap_or_default();
        let waiting = if after.is_empty() || job.state.is_terminal() {
            None
        } else {
            let driver = self.driver.clone();
            tokio::task::spawn_blocking(move || driver.job_waiting(id)).await??
        };
        Ok((after, waiting))
    }

    /// The job as the store has it now (`None` once it is gone).
    pub(crate) async fn reload(&self, id: JobId) -> Result<Option<JobRecord>, ServiceError> {
        self.db(move |db| Ok(db.job(id)?)).await
    }

    /// A page of a job's tasks in index order, with why each waiting or
    /// ready one has not started (asked of the driver, only when there is
    /// such a task).
    pub async fn tasks<R: Need>(
        &self,
        job: &JobAccess<R>,
        offset: u32,
        limit: u32,
    ) -> Result<Page<Task>, ServiceError> {
        let id = job.id();
        let rows = self
            .db(move |db| Ok(db.tasks_page(id, offset, limit.saturating_add(1))?))
            .await?;
        let Page { items, next_offset } = Page::new(rows, offset, limit);
        let mut tasks: Vec<Task> = items
            .into_iter()
            .map(|record| Task {
                record,
                waiting: None,
            })
            .collect();
        let held = |t: &Task| matches!(t.record.state, TaskState::Waiting | TaskState::Ready);
        if tasks.iter().any(held) {
            let reasons = self.ask(move |d| d.why_waiting(id)).await?;
            for (index, reason) in reasons {
                let Some(i) = index.checked_sub(offset) else {
                    continue;
                };
                if let Some(t) = tasks.get_mut(i as usize).filter(|t| held(t)) {
                    t.waiting = Some(reason);
                }
            }
        }
        Ok(Page {
            items: tasks,
            next_offset,
        })
    }

    /// A page of a job's attempts, by task index then attempt number.
    pub async fn attempts<R: Need>(
        &self,
        job: &JobAccess<R>,
        offset: u32,
        limit: u32,
    ) -> Result<Page<AttemptRecord>, ServiceError> {
        let id = job.id();
        let mut rows = self
            .db(move |db| Ok(db.attempts_page(id, offset, limit.saturating_add(1))?))
            .await?;
        self.name_nodes(&mut rows);
        Ok(Page::new(rows, offset, limit))
    }

    /// The job's first `shown` tasks (no reasons asked of the driver) and
    /// their task counts by state.
    pub async fn task_states<R: Need>(
        &self,
        job: &JobAccess<R>,
        shown: u32,
    ) -> Result<(Vec<TaskRecord>, Vec<(TaskState, u64)>), ServiceError> {
        let id = job.id();
        self.db(move |db| Ok((db.tasks_page(id, 0, shown)?, db.task_counts(id)?)))
            .await
    }

    /// What a job's page shows: its project, its first `shown` tasks, their
    /// attempts (at most [`PAGE_MAX`]) and the counts of all its tasks.
    pub async fn job_detail<R: Need>(
        &self,
        job: &JobAccess<R>,
        shown: u32,
    ) -> Result<JobDetail, ServiceError> {
        let (id, project) = (job.id(), job.job().project);
        let mut detail = self
            .db(move |db| {
                let project = match project {
                    Some(p) => db.project(p)?,
                    None => None,
                };
                let tasks = db.tasks_page(id, 0, shown)?;
                let mut attempts = db.attempts_page(id, 0, PAGE_MAX)?;
                let last = tasks.last().map_or(0, |t| t.task.index);
                attempts.retain(|a| a.task.index <= last);
                Ok(JobDetail {
                    project,
                    tasks,
                    attempts,
                    counts: db.task_counts(id)?,
                    after: Vec::new(),
                    waiting: None,
                    why: Vec::new(),
                })
            })
            .await?;
        (detail.after, detail.waiting) = self.after_of(job.job()).await?;
        let held = |t: &TaskRecord| matches!(t.state, TaskState::Waiting | TaskState::Ready);
        if detail.tasks.iter().any(held) {
            let last = detail.tasks.last().map_or(0, |t| t.task.index);
            detail.why = self.ask(move |d| d.why_waiting(id)).await?;
            detail.why.retain(|(i, _)| *i <= last);
        }
        self.name_nodes(&mut detail.attempts);
        Ok(detail)
    }

    /// Gives the attempts the store records started without a node (those
    /// of the server's own slots) the server's node name, so every page
    /// names it as the nodes list does. One whose start is not reported
    /// yet (no pid) keeps none: it may be on its way to a worker.
    fn name_nodes(&self, attempts: &mut [AttemptRecord]) {
        let here = |a: &&mut AttemptRecord| a.node.is_none() && a.pid.is_some();
        for a in attempts.iter_mut().filter(here) {
            a.node = Some(self.node_name.to_string());
        }
    }

    /// Asks the driver to cancel the job (it happens asynchronously); the
    /// job as it was.
    pub fn cancel<R: MayAct>(&self, job: &JobAccess<R>) -> Result<JobRecord, ServiceError> {
        let job = job.job();
        if job.state.is_terminal() {
            return Err(ServiceError::Conflict(format!(
                "job {} has already ended ({}); there is nothing to cancel",
                job.id, job.state
            )));
        }
        self.driver.cancel(job.id);
        Ok(job.clone())
    }

    /// Each of the caller's projects (every project for an admin) with its
    /// role and its newest jobs, at most `limit` each.
    pub async fn recent_jobs(
        &self,
        caller: &Caller,
        limit: u32,
    ) -> Result<Vec<(ProjectRecord, Option<Role>, Vec<JobRecord>)>, ServiceError> {
        let projects = self.projects(caller).await?;
        self.db(move |db| {
            projects
                .into_iter()
                .map(|(p, role)| {
                    let jobs = db.jobs_of_project(p.id, limit)?;
                    Ok((p, role, jobs))
                })
                .collect()
        })
        .await
    }
}
