//! Containers are jobs: who calls (a Tessera key), in which project, which
//! job a container's id or name is, what it is now, and which containers
//! a `waitfor` selector or a container affinity matches.

use crate::create::Affinity;
use crate::http::ApiError;
use crate::state::Container;
use crate::DockerApi;
use hyper::header::HeaderMap;
use std::path::PathBuf;
use tessera_service::{AsMember, AsViewer, Caller, JobAccess, Need, ProjectAccess, PAGE_MAX};
use tessera_store::JobRecord;
use tessera_types::TaskState::Running;
use tessera_types::{JobId, Near, PlaceRule, Selector, MAX_RULE_JOBS};

/// The header naming the project containers go to (from the docker CLI's
/// `HttpHeaders` in `config.json`).
pub const PROJECT_HEADER: &str = "x-tessera-project";

/// Containers `docker ps` looks at at most (the project's newest jobs).
pub const MAX_LISTED: u32 = 500;

impl DockerApi {
    /// The caller behind `Authorization: Bearer tsk_...`.
    pub(crate) async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let unauthorized = |why: &str| {
            ApiError::new(
                hyper::StatusCode::UNAUTHORIZED,
                format!(
                    "{why}; put your Tessera key in the HttpHeaders of the docker CLI's \
                     config.json: \"HttpHeaders\": {{\"Authorization\": \"Bearer tsk_...\"}}"
                ),
            )
        };
        let Some(value) = headers.get(hyper::header::AUTHORIZATION) else {
            return Err(unauthorized("no Tessera API key"));
        };
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <API key>`"))?;
        Ok(self.service.authenticate(key.trim()).await?)
    }

    /// The project named by `X-Tessera-Project`, else the caller's only one.
    pub(crate) async fn project<R: Need>(
        &self,
        caller: &Caller,
        headers: &HeaderMap,
    ) -> Result<ProjectAccess<R>, ApiError> {
        if let Some(name) = headers.get(PROJECT_HEADER) {
            let name = name
                .to_str()
                .map_err(|_| ApiError::bad("X-Tessera-Project must be a project's name"))?;
            return Ok(self.service.project::<R>(caller, name.trim()).await?);
        }
        let mine: Vec<_> = self
            .service
            .projects(caller)
            .await?
            .into_iter()
            .filter(|(_, role)| role.is_some())
            .collect();
        match &mine[..] {
            [(p, _)] => Ok(self.service.project::<R>(caller, &p.name).await?),
            [] => Err(ApiError::new(
                hyper::StatusCode::FORBIDDEN,
                "you are in no project; ask an owner to add you to one",
            )),
            _ => {
                let names: Vec<&str> = mine.iter().map(|(p, _)| p.name.as_str()).collect();
                Err(ApiError::bad(format!(
                    "you are in several projects ({}); name one with \"X-Tessera-Project\" in \
                     the HttpHeaders of the docker CLI's config.json",
                    names.join(", ")
                )))
            }
        }
    }

    /// The project's containers, newest first (removed ones left out).
    pub(crate) async fn list<R: Need>(
        &self,
        project: &ProjectAccess<R>,
    ) -> Result<Vec<Container>, ApiError> {
        let jobs = self.service.jobs(project, MAX_LISTED).await?;
        let mut out = Vec::new();
        for job in jobs {
            if self.is_gone(&job) {
                continue;
            }
            let access = self
                .service
                .job_by_id::<AsViewer>(project.caller(), job.id)
                .await?;
            if let Some(c) = self.load(&access).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The project's job a container id (a job id) or name stands for.
    pub(crate) async fn find<R: Need>(
        &self,
        project: &ProjectAccess<R>,
        segment: &str,
    ) -> Result<(JobAccess<R>, Container), ApiError> {
        let name = segment.strip_prefix('/').unwrap_or(segment);
        let id = match tessera_service::parse_id(name) {
            Some(id) => Some(JobId(id)),
            None => self
                .service
                .jobs(project, MAX_LISTED)
                .await?
                .into_iter()
                .find(|j| j.name == name && !self.is_gone(j))
                .map(|j| j.id),
        };
        let id = id.ok_or_else(|| ApiError::no_container(name))?;
        let access = self.service.job_by_id::<R>(project.caller(), id).await?;
        if access.job().project != Some(project.id()) || self.is_gone(access.job()) {
            return Err(ApiError::no_container(name));
        }
        let container = self
            .load(&access)
            .await?
            .ok_or_else(|| ApiError::no_container(name))?;
        Ok((access, container))
    }

    /// A job as a container; `None` for a job that is not one (not a
    /// single task with an image).
    pub(crate) async fn load<R: Need>(
        &self,
        job: &JobAccess<R>,
    ) -> Result<Option<Container>, ApiError> {
        let tasks = self.service.tasks(job, 0, 2).await?;
        let [task] = &tasks.items[..] else {
            return Ok(None);
        };
        if task.record.spec.image.is_none() {
            return Ok(None);
        }
        let status = self.service.job_status(job).await?;
        let attempts = if task.record.attempt > 0 {
            self.service.attempts(job, 0, PAGE_MAX).await?.items
        } else {
            Vec::new()
        };
        Ok(Some(Container {
            job: status.job,
            task: task.record.clone(),
            first: attempts.first().cloned(),
            last: attempts.last().cloned(),
            waiting: status.waiting.or_else(|| task.waiting.clone()).or_else(|| {
                let queued = !job.job().state.is_terminal() && task.record.state == Running;
                let why = queued.then(|| (self.unplaced)(job.job().id)).flatten()?;
                Some(format!("a node: {why}"))
            }),
        }))
    }

    /// The ids of the project's containers each selector matches now
    /// (removed ones left out); a selector that matches none is refused.
    pub(crate) async fn resolve(
        &self,
        project: &ProjectAccess<AsMember>,
        selectors: &[String],
    ) -> Result<Vec<Vec<JobId>>, ApiError> {
        let matched = self.matches(project, selectors).await?;
        for (ids, written) in matched.iter().zip(selectors) {
            if ids.is_empty() {
                return Err(ApiError::bad(format!(
                    "waitfor:container=={} matches no container of project {}; create the \
                     containers it waits for first (docker ps -a lists them)",
                    shown(written),
                    project.project().name
                )));
            }
        }
        Ok(matched)
    }

    /// Container affinities as placement rules on the jobs they match now.
    /// A hard `==` that matches none is refused (there is no node to
    /// join); a `!=` or soft one that matches none asks for nothing.
    pub(crate) async fn affinities(
        &self,
        project: &ProjectAccess<AsMember>,
        affinities: &[Affinity],
    ) -> Result<Vec<PlaceRule>, ApiError> {
        let selectors: Vec<String> = affinities.iter().map(|a| a.selector.clone()).collect();
        let matched = self.matches(project, &selectors).await?;
        let mut rules = Vec::new();
        for (a, jobs) in affinities.iter().zip(matched) {
            if jobs.len() > MAX_RULE_JOBS {
                return Err(ApiError::bad(format!(
                    "-e {}: matches {} containers; an affinity may name at most {MAX_RULE_JOBS}",
                    a.entry,
                    jobs.len()
                )));
            }
            if jobs.is_empty() {
                if a.not || a.soft {
                    continue;
                }
                return Err(ApiError::bad(format!(
                    "-e {}: matches no container of project {}, so there is no node to join; \
                     create that container first (docker ps -a lists them)",
                    a.entry,
                    project.project().name
                )));
            }
            rules.push(PlaceRule {
                near: Near::Jobs(jobs),
                not: a.not,
                soft: a.soft,
            });
        }
        Ok(rules)
    }

    /// The ids of the project's containers each selector matches now
    /// (removed ones left out), possibly none.
    async fn matches(
        &self,
        project: &ProjectAccess<AsMember>,
        selectors: &[String],
    ) -> Result<Vec<Vec<JobId>>, ApiError> {
        if selectors.is_empty() {
            return Ok(Vec::new());
        }
        let parsed: Vec<Selector> = selectors
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|e| ApiError::bad(format!("{}: {e}", shown(s))))
            })
            .collect::<Result<_, _>>()?;
        let jobs: Vec<JobRecord> = self.service.jobs(project, MAX_LISTED).await?;
        let named: Vec<(JobId, String)> = jobs
            .into_iter()
            .filter(|j| !self.is_gone(j))
            .map(|j| (j.id, j.name))
            .collect();
        let refs: Vec<&Selector> = parsed.iter().collect();
        tessera_core::match_jobs(&refs, &named).map_err(|e| ApiError::bad(format!("{e}")))
    }

    /// Marks a container removed (`docker ps -a` no longer lists it, its
    /// name may be used again; the job itself stays in Tessera's history),
    /// or to be removed once it ends (`--rm`). Kept in the data directory,
    /// so a restart keeps them.
    pub(crate) fn mark(&self, id: JobId, mark: Mark) -> Result<(), ApiError> {
        let path = self.mark_path(id, mark);
        let failed = |what: &std::path::Path, e: std::io::Error| {
            ApiError::new(
                hyper::StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot write {}: {e}", what.display()),
            )
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
        }
        std::fs::write(&path, b"").map_err(|e| failed(&path, e))
    }

    /// Whether the job is no container any more: removed, or ended with `--rm`.
    pub(crate) fn is_gone(&self, job: &JobRecord) -> bool {
        self.mark_path(job.id, Mark::Removed).exists()
            || (job.state.is_terminal() && self.mark_path(job.id, Mark::AutoRemove).exists())
    }

    fn mark_path(&self, id: JobId, mark: Mark) -> PathBuf {
        let dir = match mark {
            Mark::Removed => "dockerapi/removed",
            Mark::AutoRemove => "dockerapi/autoremove",
        };
        self.service.data_dir().join(dir).join(id.to_string())
    }
}

/// What a container is marked with.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mark {
    Removed,
    AutoRemove,
}

/// A selector as the user wrote it in Swarm's syntax.
fn shown(selector: &str) -> String {
    match selector.strip_prefix("re:") {
        Some(re) => format!("/{re}/"),
        None => selector.to_string(),
    }
}
