use std::path::PathBuf;
use tessera_types::{AttemptNo, JobId, ProjectId, TaskRef, UserId};

/// What went wrong in the store. Every message names the thing it is about,
/// so it can be shown to a person as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the database (a second scheduler, or a long
    /// write that outlasted the busy timeout).
    #[error("database {} is locked by another tessera process{}", path.display(), holder_suffix(*holder))]
    Locked { path: PathBuf, holder: Option<u32> },
    /// The database was written by a newer tessera.
    #[error(
        "database {} has schema version {found}, newer than this tessera ({supported}); upgrade tessera",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// The PostgreSQL database (schema) is driven by another scheduler: a
    /// session advisory lock is held on it.
    #[error("database {database} is used by another tessera scheduler")]
    InUse { database: String },
    #[error("could not open database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("no job {0}")]
    UnknownJob(JobId),
    #[error("no task {0}")]
    UnknownTask(TaskRef),
    #[error("no attempt {attempt} of task {task}")]
    UnknownAttempt { task: TaskRef, attempt: AttemptNo },
    #[error("attempt {attempt} of task {task} is already recorded")]
    DuplicateAttempt { task: TaskRef, attempt: AttemptNo },
    /// Tasks must be appended right after the job's last task.
    #[error("cannot add tasks to job {job} at index {first_index}: it has {count} tasks")]
    TaskIndexGap {
        job: JobId,
        first_index: u32,
        count: u32,
    },
    #[error("job {job} would have two tasks named {name:?}")]
    DuplicateTaskName { job: JobId, name: String },
    #[error("no user {0}")]
    UnknownUser(UserId),
    #[error("no project {0}")]
    UnknownProject(ProjectId),
    /// A unique name (or key prefix) is taken, e.g. `a user named "ana"
    /// already exists`.
    #[error("{what}")]
    Conflict { what: String },
    /// An argument the store refuses before touching the database, e.g. an
    /// empty name.
    #[error("{0}")]
    Invalid(String),
    /// A row the store cannot read back (a bad state string, bad spec JSON).
    #[error("corrupt record in database: {0}")]
    Corrupt(String),
    /// Any other failure of the database itself.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn holder_suffix(holder: Option<u32>) -> String {
    holder
        .map(|pid| format!(" (pid {pid})"))
        .unwrap_or_default()
}

impl StoreError {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}
