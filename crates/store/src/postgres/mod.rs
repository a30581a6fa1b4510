//! The PostgreSQL backend, over the synchronous `postgres` client (no TLS).
//!
//! Tessera's tables live in the connection's current schema (the first on
//! its `search_path`; `public` unless the URL says otherwise, e.g.
//! `postgres://u:p@host/db?options=-c%20search_path%3Dtessera`), so one
//! database can hold several installations. The schema is created and
//! migrated by [`PostgresStore::connect`], with the same `schema_version`
//! bookkeeping as SQLite.
//!
//! One scheduler per schema: `connect` takes a session-level advisory lock
//! (`pg_try_advisory_lock`, keyed by a constant and the schema's name) and
//! holds it for the connection's life; the server releases it when the
//! connection ends, however the process ends. [`PostgresStore::connect_secondary`]
//! opens a second connection without it, for the API beside the scheduler.
//!
//! Statements are prepared once per connection and cached; every write is
//! one transaction (`READ COMMITTED`, the default).

mod accounts;
mod batch;
mod read;
mod schema;
mod write;

use crate::{
    AttemptRecord, JobRecord, NodeUsage, StartedAttempt, Store, StoreError, TaskRecord, UsageRow,
};
use postgres::config::Host;
use postgres::{Client, Config, GenericClient, NoTls, Statement};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use tessera_types::{Change, JobId, JobSnapshot, JobSpec, JobState, Millis, ProjectId, TaskState};

/// The first key of the scheduler's advisory lock ("tessera" on a phone pad,
/// truncated); the second is a hash of the schema's name.
const LOCK_CLASS: i32 = 8_377_372;

/// A [`Store`] (and [`Accounts`](crate::Accounts)) in a PostgreSQL schema.
pub struct PostgresStore {
    /// `RefCell` because the client needs `&mut` even to read, and readers
    /// take `&self`. The store is `Send`, not `Sync`: one thread at a time.
    conn: RefCell<Conn>,
    /// The database and schema, for messages (never the password).
    database: String,
    /// The advisory lock's second key, when this store holds the lock.
    lock: Option<i32>,
}

/// A connection and its prepared statements.
struct Conn {
    client: Client,
    statements: Statements,
}

/// Prepared statements by their SQL.
type Statements = HashMap<&'static str, Statement>;

impl PostgresStore {
    /// Connects as the one scheduler of the database (schema) at `url`,
    /// creating or migrating its tables. Fails with [`StoreError::InUse`]
    /// while another scheduler is connected to it.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let (mut client, database, schema) = open(url, "tessera-scheduler")?;
        let key = lock_key(&schema);
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LOCK_CLASS, &key])
            .and_then(|r| r.try_get(0))
            .map_err(|e| open_err(&database, e))?;
        if !got {
            return Err(StoreError::InUse { database });
        }
        // From here on, dropping the store releases the lock.
        let mut store = Self::new(client, database, Some(key));
        schema::migrate(&mut store.conn.get_mut().client, &store.database)?;
        Ok(store)
    }

    /// Connects beside the scheduler, without its lock: the server's API
    /// thread uses this for reads and account writes. It neither creates nor
    /// migrates tables (connect the scheduler first) and must not drive a
    /// scheduler.
    pub fn connect_secondary(url: &str) -> Result<Self, StoreError> {
        let (mut client, database, _schema) = open(url, "tessera")?;
        schema::check_current(&mut client, &database)?;
        Ok(Self::new(client, database, None))
    }

    fn new(client: Client, database: String, lock: Option<i32>) -> Self {
        Self {
            conn: RefCell::new(Conn {
                client,
                statements: HashMap::new(),
            }),
            database,
            lock,
        }
    }

    /// The database and schema, as messages name them (`tessera on
    /// 127.0.0.1:5432 (schema public)`).
    pub fn database(&self) -> &str {
        &self.database
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // The server frees the lock when it notices the connection is gone;
        // unlocking first makes it free *now*, for a scheduler that
        // reconnects at once. A failure leaves it to the server.
        if let Some(key) = self.lock {
            let client = &mut self.conn.get_mut().client;
            let _ = client.execute("SELECT pg_advisory_unlock($1, $2)", &[&LOCK_CLASS, &key]);
        }
    }
}

/// Connects and names what it connected to: (client, description, schema).
fn open(url: &str, application: &str) -> Result<(Client, String, String), StoreError> {
    let mut config: Config = url.parse().map_err(|e| StoreError::Open {
        path: PathBuf::from(redact(url)),
        source: Box::new(e),
    })?;
    if config.get_application_name().is_none() {
        config.application_name(application);
    }
    let mut database = describe(&config, None);
    let mut client = config.connect(NoTls).map_err(|e| open_err(&database, e))?;
    let schema: Option<String> = client
        .query_one("SELECT current_schema()", &[])
        .and_then(|r| r.try_get(0))
        .map_err(|e| open_err(&database, e))?;
    let schema = schema.ok_or_else(|| StoreError::Open {
        path: PathBuf::from(&database),
        source: "no schema on the search_path exists (create it, or fix `options`)".into(),
    })?;
    database = describe(&config, Some(&schema));
    Ok((client, database, schema))
}

/// `db on host:port (schema s)`: enough to find the database, never a password.
fn describe(config: &Config, schema: Option<&str>) -> String {
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match schema {
        Some(s) => format!("{db} on {host}:{port} (schema {s})"),
        None => format!("{db} on {host}:{port}"),
    }
}

/// A URL without its password, for a message about a URL that did not parse.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        // A `key=value` string may hold a password anywhere.
        _ => "the PostgreSQL connection string".into(),
    }
}

/// The advisory lock's second key: FNV-1a of the schema name, so that
/// installations in different schemas of one database do not exclude each
/// other (and the tests, one schema each, run in parallel).
fn lock_key(schema: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in schema.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h as i32
}

fn open_err(database: &str, e: postgres::Error) -> StoreError {
    StoreError::Open {
        path: PathBuf::from(database),
        source: Box::new(e),
    }
}

/// Any other database error.
pub(crate) fn backend(e: postgres::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// The violated constraint's name, if `e` is a violation of `state`.
fn violated<'e>(e: &'e postgres::Error, state: &postgres::error::SqlState) -> Option<&'e str> {
    let db = e.as_db_error()?;
    (db.code() == state).then(|| db.constraint().unwrap_or(""))
}

fn unique_violation(e: &postgres::Error) -> Option<&str> {
    violated(e, &postgres::error::SqlState::UNIQUE_VIOLATION)
}

fn foreign_key_violation(e: &postgres::Error) -> Option<&str> {
    violated(e, &postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
}

/// `sql` prepared on this connection, from the cache when it was before.
/// Statements are per connection, not per transaction, so one prepared in
/// a transaction that rolls back stays valid.
fn prepared(
    statements: &mut Statements,
    client: &mut impl GenericClient,
    sql: &'static str,
) -> Result<Statement, StoreError> {
    if let Some(s) = statements.get(sql) {
        return Ok(s.clone());
    }
    let s = client.prepare(sql).map_err(backend)?;
    statements.insert(sql, s.clone());
    Ok(s)
}

/// Milliseconds as the `BIGINT` they are stored as.
fn ms(v: Millis) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store for PostgresStore {
    fn create_job(
        &mut self,
        project: Option<ProjectId>,
        spec: &JobSpec,
        key: Option<&str>,
        now: Millis,
    ) -> Result<JobId, StoreError> {
        write::create_job(self.conn.get_mut(), project, spec, key, now)
    }

    fn apply(&mut self, changes: &[Change], now: Millis) -> Result<(), StoreError> {
        write::apply(self.conn.get_mut(), changes, now)
    }

    fn load_unfinished(&self) -> Result<Vec<JobSnapshot>, StoreError> {
        read::load_unfinished(&mut self.conn.borrow_mut())
    }

    fn load_job(&self, id: JobId) -> Result<Option<JobSnapshot>, StoreError> {
        read::load_job(&mut self.conn.borrow_mut(), id)
    }

    fn find_job_by_key(&self, key: &str) -> Result<Option<JobRecord>, StoreError> {
        read::find_job_by_key(&mut self.conn.borrow_mut(), key)
    }

    fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        read::job(&mut self.conn.borrow_mut(), id)
    }

    fn job_spec(&self, id: JobId) -> Result<Option<JobSpec>, StoreError> {
        read::job_spec(&mut self.conn.borrow_mut(), id)
    }

    fn job_names(
        &self,
        project: Option<ProjectId>,
        name: Option<&str>,
    ) -> Result<Vec<(JobId, String)>, StoreError> {
        read::job_names(&mut self.conn.borrow_mut(), project, name)
    }

    fn recent_jobs(&self, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        read::recent_jobs(&mut self.conn.borrow_mut(), limit)
    }

    fn jobs_of_project(
        &self,
        project: ProjectId,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        read::jobs_of_project(&mut self.conn.borrow_mut(), project, limit)
    }

    fn count_by_state(&self) -> Result<(Vec<(JobState, u64)>, Vec<(TaskState, u64)>), StoreError> {
        read::count_by_state(&mut self.conn.borrow_mut())
    }

    fn count_jobs_by_project(&self) -> Result<Vec<(ProjectId, JobState, u64)>, StoreError> {
        read::count_jobs_by_project(&mut self.conn.borrow_mut())
    }

    fn tasks(&self, job: JobId) -> Result<Vec<TaskRecord>, StoreError> {
        read::tasks(&mut self.conn.borrow_mut(), job)
    }

    fn task_counts(&self, job: JobId) -> Result<Vec<(TaskState, u64)>, StoreError> {
        read::task_counts(&mut self.conn.borrow_mut(), job)
    }

    fn tasks_page(
        &self,
        job: JobId,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<TaskRecord>, StoreError> {
        read::tasks_page(&mut self.conn.borrow_mut(), job, offset, limit)
    }

    fn attempts_page(
        &self,
        job: JobId,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        read::attempts_page(&mut self.conn.borrow_mut(), job, offset, limit)
    }

    fn attempts(&self, job: JobId) -> Result<Vec<AttemptRecord>, StoreError> {
        read::attempts(&mut self.conn.borrow_mut(), job)
    }

    fn open_attempts(&self) -> Result<Vec<AttemptRecord>, StoreError> {
        read::open_attempts(&mut self.conn.borrow_mut())
    }

    fn set_attempts_started(&mut self, started: &[StartedAttempt]) -> Result<(), StoreError> {
        write::set_attempts_started(self.conn.get_mut(), started)
    }

    fn usage_since(&self, since: Millis) -> Result<Vec<UsageRow>, StoreError> {
        read::usage_since(&mut self.conn.borrow_mut(), since)
    }

    fn node_usage_since(&self, since: Millis) -> Result<Vec<NodeUsage>, StoreError> {
        read::node_usage_since(&mut self.conn.borrow_mut(), since)
    }
}

/// The PostgreSQL server of this crate's unit tests (`TESSERA_TEST_POSTGRES`),
/// or `None` after saying why they skip (a failure under CI:
/// `tessera_testkit::env`).
#[cfg(test)]
pub(crate) fn test_server() -> Option<String> {
    match std::env::var("TESSERA_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            tessera_testkit::env::skip(
                "TESSERA_TEST_POSTGRES is not set",
                "set it to the URL of a PostgreSQL database the tests may create schemas in \
                 (.ci/run does)",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_never_show_the_password() {
        assert_eq!(
            redact("postgres://ana:s3cret@db.example/t"),
            "postgres://ana:***@db.example/t"
        );
        assert_eq!(
            redact("host=x password=y"),
            "the PostgreSQL connection string"
        );
        let config: Config = "postgres://ana:s3cret@db.example:6543/t".parse().unwrap();
        assert_eq!(
            describe(&config, Some("public")),
            "t on db.example:6543 (schema public)"
        );
    }

    #[test]
    fn schemas_get_different_lock_keys() {
        assert_ne!(lock_key("public"), lock_key("tessera"));
        assert_eq!(lock_key("public"), lock_key("public"));
    }
}
