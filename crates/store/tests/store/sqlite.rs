//! SQLite: the conformance suite, the SQLite-specific behaviour (locking,
//! schema versions, readers, secondaries) and a throughput benchmark.

use std::path::PathBuf;
use tessera_store::conformance::{self, Backend, Database};
use tessera_store::{Accounts, SqliteStore, Store, StoreError, SCHEMA_VERSION};
use tessera_types::{Action, Change, JobSpec, JobState, TaskSpec};

/// Each `create` makes a new database file in the test's temporary directory.
struct SqliteFiles {
    dir: tempfile::TempDir,
    n: u32,
}

impl SqliteFiles {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            n: 0,
        }
    }
    fn current(&self) -> PathBuf {
        self.dir.path().join(format!("tessera-{}.db", self.n))
    }
}

impl Backend for SqliteFiles {
    fn create(&mut self) -> Box<dyn Database> {
        self.n += 1;
        Box::new(SqliteStore::open(self.current()).expect("open new database"))
    }
    fn reopen(&mut self) -> Box<dyn Database> {
        Box::new(SqliteStore::open(self.current()).expect("reopen database"))
    }
}

fn files() -> Option<SqliteFiles> {
    Some(SqliteFiles::new())
}

conformance_tests!(files);

#[test]
fn conformance_runs_in_memory_too() {
    struct Memory;
    impl Backend for Memory {
        fn create(&mut self) -> Box<dyn Database> {
            Box::new(SqliteStore::open_in_memory().expect("in-memory store"))
        }
        fn reopen(&mut self) -> Box<dyn Database> {
            unreachable!("in-memory stores do not survive")
        }
    }
    for (name, test) in conformance::TESTS {
        if *name != "state_survives_reopen" {
            test(&mut Memory);
        }
    }
}

#[test]
fn a_second_scheduler_is_refused_while_the_first_holds_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.db");
    let first = SqliteStore::open(&path).unwrap();
    let err = SqliteStore::open(&path)
        .err()
        .expect("second open must fail");
    let msg = err.to_string();
    assert!(
        matches!(err, StoreError::Locked { holder: Some(pid), .. } if pid == std::process::id()),
        "{msg}"
    );
    assert_eq!(
        msg,
        format!(
            "database {} is locked by another tessera process (pid {})",
            path.display(),
            std::process::id()
        )
    );
    drop(first);
    SqliteStore::open(&path).expect("free again once the first is gone");
}

#[test]
fn a_reader_sees_the_schedulers_commits_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let mut writer = SqliteStore::open(&path).unwrap();
    let spec = JobSpec::new("j", vec![TaskSpec::new("a", Action::Noop)]);
    let job = writer.create_job(None, &spec, Some("k"), 1).unwrap();
    let mut reader = SqliteStore::open_reader(&path).unwrap();
    assert_eq!(reader.job(job).unwrap().unwrap().state, JobState::Pending);
    writer
        .apply(
            &[Change::JobState {
                job,
                state: JobState::Running,
            }],
            2,
        )
        .unwrap();
    assert_eq!(reader.job(job).unwrap().unwrap().state, JobState::Running);
    assert!(reader.create_job(None, &spec, None, 3).is_err());
    drop((writer, reader));
    // With no scheduler running (its WAL files cleaned up on close) too.
    let reader = SqliteStore::open_reader(&path).unwrap();
    assert_eq!(reader.find_job_by_key("k").unwrap().unwrap().id, job);
}

#[test]
fn a_reader_of_a_missing_database_says_which_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    let msg = SqliteStore::open_reader(&path)
        .err()
        .expect("no such file")
        .to_string();
    assert!(
        msg.starts_with(&format!("could not open database {}", path.display())),
        "{msg}"
    );
}

#[test]
fn a_database_from_a_newer_tessera_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    drop(SqliteStore::open(&path).unwrap());
    set_schema_version(&path, SCHEMA_VERSION + 6);
    let err = SqliteStore::open(&path).err().expect("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "database {} has schema version {}, newer than this tessera ({SCHEMA_VERSION}); upgrade tessera",
            path.display(),
            SCHEMA_VERSION + 6
        )
    );
    assert!(matches!(
        SqliteStore::open_reader(&path),
        Err(StoreError::SchemaTooNew { .. })
    ));
}

/// Sets the schema version behind the store's back, as a newer tessera would.
fn set_schema_version(path: &std::path::Path, version: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute("UPDATE schema_version SET version = ?1", [version])
        .unwrap();
}

/// Prints how many changes per second `apply` commits to a file database,
/// in batches of 1000 shaped like a real run (a task's life: ready, running,
/// attempt started, attempt ended, succeeded). Not a timed assertion: run it
/// with `cargo test -p tessera-store --release --test store -- --ignored --nocapture sqlite::bench_apply_throughput`.
#[test]
#[ignore]
fn bench_apply_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("bench.db")).unwrap();
    super::bench_apply("sqlite", &mut store);
}

#[test]
fn a_secondary_writes_accounts_beside_the_scheduler() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut scheduler = SqliteStore::open(&path).unwrap();
    let mut api = SqliteStore::open_secondary(&path).expect("no lock needed");
    let ana = api.create_user("ana", true, 1).unwrap();
    let project = api.create_project("p", ana.id, 1).unwrap();
    let spec = JobSpec::new("j", vec![TaskSpec::new("a", Action::Noop)]);
    let job = scheduler
        .create_job(Some(project.id), &spec, None, 2)
        .expect("the scheduler sees the secondary's project");
    assert_eq!(api.jobs_of_project(project.id, 5).unwrap()[0].id, job);
    drop(scheduler);
    // Still a secondary, not a scheduler: the lock stays free for one.
    let again = SqliteStore::open(&path).expect("the secondary holds no lock");
    assert_eq!(again.user(ana.id).unwrap(), Some(ana));
}

#[test]
fn a_secondary_needs_a_database_the_scheduler_made() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.db");
    let msg = SqliteStore::open_secondary(&path)
        .err()
        .expect("no such file")
        .to_string();
    assert!(
        msg.starts_with(&format!("could not open database {}", path.display())),
        "{msg}"
    );
    assert!(!path.exists(), "a secondary does not create the database");
}
