use crate::{AttemptRecord, JobRecord, NodeUsage, StartedAttempt, StoreError, TaskRecord};
use tessera_types::{Change, JobId, JobSnapshot, JobSpec, JobState, Millis, ProjectId, TaskState};

/// One ended attempt's charge, for [`Store::usage_since`]: its job's project,
/// the cpu-milliseconds it is charged, and when it ended.
pub type UsageRow = (Option<ProjectId>, u64, Millis);

/// The durable record of jobs, tasks and attempts.
///
/// Writers (the driver) create jobs and apply batches of [`Change`]s; each
/// call is one transaction, committed before it returns. Readers (the CLI,
/// the API) ask for rows. Backends: [`SqliteStore`](crate::SqliteStore) and
/// [`PostgresStore`](crate::PostgresStore); both pass the same
/// [`conformance`](crate::conformance) suite.
pub trait Store: Send {
    /// Inserts a job (state `pending`) and its initial tasks (all `waiting`,
    /// attempt 0) in one transaction. `key` lets a caller find the job again
    /// with [`find_job_by_key`](Store::find_job_by_key). A job belongs to
    /// `project` if given (an unknown one is
    /// [`StoreError::UnknownProject`]).
    fn create_job(
        &mut self,
        project: Option<ProjectId>,
        spec: &JobSpec,
        key: Option<&str>,
        now: Millis,
    ) -> Result<JobId, StoreError>;

    /// Applies a batch of changes in one transaction: all or nothing. A
    /// change naming an unknown job, task or attempt fails the whole batch.
    fn apply(&mut self, changes: &[Change], now: Millis) -> Result<(), StoreError>;

    /// Every job not in a terminal state, oldest first, with its full task
    /// list (including tasks added by expansion, in index order) and each
    /// task's snapshot: what the scheduler needs to carry on after a restart.
    fn load_unfinished(&self) -> Result<Vec<JobSnapshot>, StoreError>;

    /// One job's snapshot, whatever its state, shaped exactly as
    /// [`load_unfinished`](Store::load_unfinished) gives it (tasks in index
    /// order, batch starts, project, suspension, priority); `None` for an
    /// unknown job. A scheduler takes back a job that ended before it
    /// started with this (to retry it).
    fn load_job(&self, id: JobId) -> Result<Option<JobSnapshot>, StoreError>;

    /// A job's own spec (name, params, grants, job dependencies with the
    /// ids they resolved to) without its tasks; `None` for an unknown job.
    /// One row: cheap for a job of any size.
    fn job_spec(&self, id: JobId) -> Result<Option<JobSpec>, StoreError>;

    /// The ids and names of `project`'s jobs (of the jobs of no project
    /// when `None`), ascending id; only those named exactly `name` when it
    /// is given (an index lookup). What job dependencies resolve against.
    fn job_names(
        &self,
        project: Option<ProjectId>,
        name: Option<&str>,
    ) -> Result<Vec<(JobId, String)>, StoreError>;

    /// The newest job created with this key.
    fn find_job_by_key(&self, key: &str) -> Result<Option<JobRecord>, StoreError>;

    fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError>;

    /// The newest jobs first, at most `limit` of them.
    fn recent_jobs(&self, limit: u32) -> Result<Vec<JobRecord>, StoreError>;

    /// A project's newest jobs first, at most `limit` of them.
    fn jobs_of_project(&self, project: ProjectId, limit: u32)
        -> Result<Vec<JobRecord>, StoreError>;

    /// How many jobs, and how many tasks (of every job, finished or not),
    /// are in each state: one `GROUP BY` each, for metrics. States with none
    /// are left out; the order is not promised.
    #[allow(clippy::type_complexity)]
    fn count_by_state(&self) -> Result<(Vec<(JobState, u64)>, Vec<(TaskState, u64)>), StoreError>;

    /// How many jobs of each project are in each state (one `GROUP BY`),
    /// by project id. Jobs without a project and empty groups are left out.
    fn count_jobs_by_project(&self) -> Result<Vec<(ProjectId, JobState, u64)>, StoreError>;

    /// A job's tasks in index order (empty for an unknown job).
    fn tasks(&self, job: JobId) -> Result<Vec<TaskRecord>, StoreError>;

    /// How many of a job's tasks are in each state (one `GROUP BY`, no task
    /// specs read), by state. Empty states and unknown jobs are left out.
    fn task_counts(&self, job: JobId) -> Result<Vec<(TaskState, u64)>, StoreError>;

    /// At most `limit` of a job's tasks in index order, skipping the first
    /// `offset`: one page of [`Store::tasks`].
    fn tasks_page(
        &self,
        job: JobId,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<TaskRecord>, StoreError>;

    /// At most `limit` of a job's attempts by task index then attempt number,
    /// skipping the first `offset`: one page of [`Store::attempts`].
    fn attempts_page(
        &self,
        job: JobId,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError>;

    /// A job's attempts, by task index then attempt number.
    fn attempts(&self, job: JobId) -> Result<Vec<AttemptRecord>, StoreError>;

    /// Attempts of any job whose end was never recorded: after a crash, the
    /// ones whose processes may still be running (see `pid`).
    fn open_attempts(&self) -> Result<Vec<AttemptRecord>, StoreError>;

    /// Records where started attempts run: each one's OS process id (so a
    /// restarted scheduler can kill orphans on this machine) and its node.
    /// One transaction for them all (one statement on PostgreSQL); an
    /// attempt that was never stored fails the whole call
    /// ([`StoreError::UnknownAttempt`]) and nothing is written. An attempt
    /// named twice keeps its last entry.
    fn set_attempts_started(&mut self, started: &[StartedAttempt]) -> Result<(), StoreError>;

    /// Attempts that ended at or after `since`, oldest end first (ties in
    /// task and attempt order), each with its job's project and what it is
    /// charged: its measured `cpu_ms`, or when that is 0 (unmeasured) its
    /// `wall_ms` times its task's cpu, as the scheduler charges a live
    /// attempt. Attempts charged nothing are left out. A restarted driver
    /// feeds these to `Scheduler::record_usage`, so fair share and cpu-time
    /// quotas remember what ran before.
    fn usage_since(&self, since: Millis) -> Result<Vec<UsageRow>, StoreError>;

    /// Per node, what the attempts that ended at or after `since` cost:
    /// how many, their measured cpu time and their transfers (one `GROUP
    /// BY`). This machine's attempts are the row whose node is `None`;
    /// nodes with no such attempt are left out; ordered by node, `None`
    /// first.
    fn node_usage_since(&self, since: Millis) -> Result<Vec<NodeUsage>, StoreError>;
}
