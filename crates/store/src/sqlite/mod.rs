//! The SQLite backend: one file, WAL journal, `synchronous = NORMAL` (a
//! committed batch survives a crash of the process; a power cut may lose the
//! last few), foreign keys on, a busy timeout, and an advisory lock file so
//! that only one scheduler drives a database at a time. Other processes and
//! threads read beside it ([`SqliteStore::open_reader`]) or read and write
//! accounts beside it ([`SqliteStore::open_secondary`]).

mod accounts;
mod lock;
mod read;
mod schema;
mod write;

pub use schema::SCHEMA_VERSION;

use crate::{
    AttemptRecord, JobRecord, NodeUsage, StartedAttempt, Store, StoreError, TaskRecord, UsageRow,
};
use lock::LockFile;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_types::{Change, JobId, JobSnapshot, JobSpec, JobState, Millis, ProjectId, TaskState};

/// How long a statement waits for another connection's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Held for the store's life by a scheduler's store; `None` for readers
    /// and in-memory stores.
    _lock: Option<LockFile>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` for the one
    /// scheduler that drives it, and brings its schema up to date. Fails with
    /// [`StoreError::Locked`] while another process has it open this way.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let lock = LockFile::acquire(&path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags).map_err(|e| open_err(&path, e))?;
        configure(&conn, &path)?;
        schema::migrate(&mut conn, &path)?;
        Ok(Self {
            conn,
            path,
            _lock: Some(lock),
        })
    }

    /// Opens an existing database read-only, beside a scheduler that may be
    /// running on it (for status commands). Write methods fail.
    pub fn open_reader(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::open_beside(path.as_ref(), flags)
    }

    /// Opens an existing, up-to-date database for reading and writing
    /// *without* the one-scheduler lock, beside the scheduler's own
    /// [`open`](SqliteStore::open) store: the server's API thread uses it for
    /// account writes and reads. Concurrency rests on WAL (readers never
    /// block the writer) and the busy timeout (the two connections' write
    /// transactions take turns). It neither creates nor migrates the schema:
    /// open the database with [`open`](SqliteStore::open) first.
    ///
    /// Do not drive a scheduler (apply changes) through it: that is what the
    /// lock is for.
    pub fn open_secondary(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let store = Self::open_beside(path.as_ref(), flags)?;
        store
            .conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| map_err(&store.path, e))?;
        store.conn.set_prepared_statement_cache_capacity(64);
        Ok(store)
    }

    /// Opens an existing database of the current schema version without the
    /// lock.
    fn open_beside(path: &Path, flags: OpenFlags) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| open_err(&path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| map_err(&path, e))?;
        let found = schema::version(&conn, &path)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            let msg = format!("schema version {found} is older than this tessera ({SCHEMA_VERSION}); open it once for writing to upgrade it");
            return Err(StoreError::Open {
                path,
                source: msg.into(),
            });
        }
        Ok(Self {
            conn,
            path,
            _lock: None,
        })
    }

    /// A fresh database in memory, for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|e| open_err(&path, e))?;
        configure(&conn, &path)?;
        schema::migrate(&mut conn, &path)?;
        Ok(Self {
            conn,
            path,
            _lock: None,
        })
    }

    /// The database file's path (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let err = |e| map_err(path, e);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    // `journal_mode` answers with the mode it ended up in; in-memory
    // databases stay in `memory`, which is fine.
    let _mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(err)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Turns a SQLite error into a [`StoreError`] that names the database.
pub(crate) fn map_err(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
            path: path.to_path_buf(),
            holder: None,
        },
        _ => StoreError::Backend(Box::new(e)),
    }
}

fn open_err(path: &Path, e: rusqlite::Error) -> StoreError {
    match map_err(path, e) {
        StoreError::Backend(source) => StoreError::Open {
            path: path.to_path_buf(),
            source,
        },
        other => other,
    }
}

impl Store for SqliteStore {
    fn create_job(
        &mut self,
        project: Option<ProjectId>,
        spec: &JobSpec,
        key: Option<&str>,
        now: Millis,
    ) -> Result<JobId, StoreError> {
        write::create_job(&mut self.conn, &self.path, project, spec, key, now)
    }

    fn apply(&mut self, changes: &[Change], now: Millis) -> Result<(), StoreError> {
        write::apply(&mut self.conn, &self.path, changes, now)
    }

    fn load_unfinished(&self) -> Result<Vec<JobSnapshot>, StoreError> {
        read::load_unfinished(&self.conn, &self.path)
    }

    fn load_job(&self, id: JobId) -> Result<Option<JobSnapshot>, StoreError> {
        read::load_job(&self.conn, &self.path, id)
    }

    fn find_job_by_key(&self, key: &str) -> Result<Option<JobRecord>, StoreError> {
        read::find_job_by_key(&self.conn, &self.path, key)
    }

    fn job_spec(&self, id: JobId) -> Result<Option<JobSpec>, StoreError> {
        read::job_spec(&self.conn, &self.path, id)
    }

    fn job_names(
        &self,
        project: Option<ProjectId>,
        name: Option<&str>,
    ) -> Result<Vec<(JobId, String)>, StoreError> {
        read::job_names(&self.conn, &self.path, project, name)
    }

    fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        read::job(&self.conn, &self.path, id)
    }

    fn recent_jobs(&self, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        read::recent_jobs(&self.conn, &self.path, limit)
    }

    fn jobs_of_project(
        &self,
        project: ProjectId,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        read::jobs_of_project(&self.conn, &self.path, project, limit)
    }

    fn count_by_state(&self) -> Result<(Vec<(JobState, u64)>, Vec<(TaskState, u64)>), StoreError> {
        read::count_by_state(&self.conn, &self.path)
    }

    fn count_jobs_by_project(&self) -> Result<Vec<(ProjectId, JobState, u64)>, StoreError> {
        read::count_jobs_by_project(&self.conn, &self.path)
    }

    fn tasks(&self, job: JobId) -> Result<Vec<TaskRecord>, StoreError> {
        read::tasks(&self.conn, &self.path, job)
    }

    fn task_counts(&self, job: JobId) -> Result<Vec<(TaskState, u64)>, StoreError> {
        read::task_counts(&self.conn, &self.path, job)
    }

    fn tasks_page(
        &self,
        job: JobId,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<TaskRecord>, StoreError> {
        read::tasks_page(&self.conn, &self.path, job, offset, limit)
    }

    fn attempts_page(
        &self,
        job: JobId,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        read::attempts_page(&self.conn, &self.path, job, offset, limit)
    }

    fn attempts(&self, job: JobId) -> Result<Vec<AttemptRecord>, StoreError> {
        read::attempts(&self.conn, &self.path, job)
    }

    fn open_attempts(&self) -> Result<Vec<AttemptRecord>, StoreError> {
        read::open_attempts(&self.conn, &self.path)
    }

    fn set_attempts_started(&mut self, started: &[StartedAttempt]) -> Result<(), StoreError> {
        write::set_attempts_started(&mut self.conn, &self.path, started)
    }

    fn usage_since(&self, since: Millis) -> Result<Vec<UsageRow>, StoreError> {
        read::usage_since(&self.conn, &self.path, since)
    }

    fn node_usage_since(&self, since: Millis) -> Result<Vec<NodeUsage>, StoreError> {
        read::node_usage_since(&self.conn, &self.path, since)
    }
}
