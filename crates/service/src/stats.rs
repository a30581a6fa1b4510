//! Counts over the whole server: readiness, what `/metrics` reports, what
//! the dashboard shows, what nodes got done lately.

use crate::access::{Admin, Caller};
use crate::{Service, ServiceError};
use std::collections::HashMap;
use tessera_core::ProjectUsage;
use tessera_store::{JobRecord, NodeUsage, ProjectRecord};
use tessera_types::{JobState, Millis, ProjectId, Role, TaskState};

/// Jobs and tasks by state, each project's jobs by state and what each
/// project uses now: read with `GROUP BY` queries (never a scan of every
/// job) and asked of the driver.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub jobs: HashMap<JobState, u64>,
    pub tasks: HashMap<TaskState, u64>,
    /// Every project's name, with its jobs by state.
    pub projects: Vec<(String, HashMap<JobState, u64>)>,
    /// Every project's name and what it uses now.
    pub usage: Vec<(String, ProjectUsage)>,
}

/// What a dashboard shows a caller: each of its projects (every project
/// for an admin) with its role and newest jobs, every task by state, and
/// the scheduler's slots.
#[derive(Clone, Debug)]
pub struct Dashboard {
    pub projects: Vec<(ProjectRecord, Option<Role>, Vec<JobRecord>)>,
    pub tasks: Vec<(TaskState, u64)>,
    pub slots: u32,
}

impl Service {
    /// Whether the store answers.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.db(|db| Ok(db.recent_jobs(1)?)).await.map(drop)
    }

    /// The counts `/metrics` exports; they name every project, so an
    /// admin's.
    pub async fn stats(&self, _: &Admin) -> Result<Stats, ServiceError> {
        let (mut stats, ids) = self
            .db(|db| {
                let (jobs, tasks) = db.count_by_state()?;
                let mut by_project: HashMap<ProjectId, HashMap<JobState, u64>> = HashMap::new();
                for (project, s, n) in db.count_jobs_by_project()? {
                    by_project.entry(project).or_default().insert(s, n);
                }
                let all = db.projects()?;
                let ids: Vec<(ProjectId, String)> =
                    all.iter().map(|p| (p.id, p.name.clone())).collect();
                let projects = all
                    .into_iter()
                    .map(|p| (p.name, by_project.remove(&p.id).unwrap_or_default()))
                    .collect();
                let stats = Stats {
                    jobs: jobs.into_iter().collect(),
                    tasks: tasks.into_iter().collect(),
                    projects,
                    usage: Vec::new(),
                };
                Ok((stats, ids))
            })
            .await?;
        let driver = self.driver.clone();
        stats.usage = tokio::task::spawn_blocking(move || {
            ids.into_iter()
                .filter_map(|(id, name)| Some((name, driver.project_usage(Some(id)).ok()?)))
                .collect()
        })
        .await?;
        Ok(stats)
    }

    /// What each node ended since `since` (one `GROUP BY`), for admins.
    pub async fn node_usage(
        &self,
        _: &Admin,
        since: Millis,
    ) -> Result<Vec<NodeUsage>, ServiceError> {
        self.db(move |db| Ok(db.node_usage_since(since)?)).await
    }

    /// The caller's dashboard, with at most `jobs` jobs per project.
    pub async fn dashboard(&self, caller: &Caller, jobs: u32) -> Result<Dashboard, ServiceError> {
        let projects = self.recent_jobs(caller, jobs).await?;
        let (_, tasks) = self.db(|db| Ok(db.count_by_state()?)).await?;
        Ok(Dashboard {
            projects,
            tasks,
            slots: self.slots(),
        })
    }
}
