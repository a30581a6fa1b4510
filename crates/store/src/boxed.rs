//! A boxed store is a store, so a caller can choose the backend at run time
//! (`Driver<Box<dyn Store + Send>>`).

use crate::{
    AttemptRecord, JobRecord, NodeUsage, StartedAttempt, Store, StoreError, TaskRecord, UsageRow,
};
use tessera_types::{Change, JobId, JobSnapshot, JobSpec, JobState, Millis, ProjectId, TaskState};

impl<S: Store + ?Sized> Store for Box<S> {
    fn create_job(
        &mut self,
        project: Option<ProjectId>,
        spec: &JobSpec,
        key: Option<&str>,
        now: Millis,
    ) -> Result<JobId, StoreError> {
        (**self).create_job(project, spec, key, now)
    }
    fn apply(&mut self, changes: &[Change], now: Millis) -> Result<(), StoreError> {
        (**self).apply(changes, now)
    }
    fn load_unfinished(&self) -> Result<Vec<JobSnapshot>, StoreError> {
        (**self).load_unfinished()
    }
    fn load_job(&self, id: JobId) -> Result<Option<JobSnapshot>, StoreError> {
        (**self).load_job(id)
    }
    fn job_spec(&self, id: JobId) -> Result<Option<JobSpec>, StoreError> {
        (**self).job_spec(id)
    }
    fn job_names(
        &self,
        project: Option<ProjectId>,
        name: Option<&str>,
    ) -> Result<Vec<(JobId, String)>, StoreError> {
        (**self).job_names(project, name)
    }
    fn find_job_by_key(&self, key: &str) -> Result<Option<JobRecord>, StoreError> {
        (**self).find_job_by_key(key)
    }
    fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        (**self).job(id)
    }
    fn recent_jobs(&self, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        (**self).recent_jobs(limit)
    }
    fn jobs_of_project(
        &self,
        project: ProjectId,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        (**self).jobs_of_project(project, limit)
    }
    fn count_by_state(&self) -> Result<(Vec<(JobState, u64)>, Vec<(TaskState, u64)>), StoreError> {
        (**self).count_by_state()
    }
    fn count_jobs_by_project(&self) -> Result<Vec<(ProjectId, JobState, u64)>, StoreError> {
        (**self).count_jobs_by_project()
    }
    fn tasks(&self, job: JobId) -> Result<Vec<TaskRecord>, StoreError> {
        (**self).tasks(job)
    }
    fn task_counts(&self, job: JobId) -> Result<Vec<(TaskState, u64)>, StoreError> {
        (**self).task_counts(job)
    }
    fn tasks_page(
        &self,
        job: JobId,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<TaskRecord>, StoreError> {
        (**self).tasks_page(job, offset, limit)
    }
    fn attempts_page(
        &self,
        job: JobId,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        (**self).attempts_page(job, offset, limit)
    }
    fn attempts(&self, job: JobId) -> Result<Vec<AttemptRecord>, StoreError> {
        (**self).attempts(job)
    }
    fn open_attempts(&self) -> Result<Vec<AttemptRecord>, StoreError> {
        (**self).open_attempts()
    }
    fn set_attempts_started(&mut self, started: &[StartedAttempt]) -> Result<(), StoreError> {
        (**self).set_attempts_started(started)
    }
    fn usage_since(&self, since: Millis) -> Result<Vec<UsageRow>, StoreError> {
        (**self).usage_since(since)
    }
    fn node_usage_since(&self, since: Millis) -> Result<Vec<NodeUsage>, StoreError> {
        (**self).node_usage_since(since)
    }
}
