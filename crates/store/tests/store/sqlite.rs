//! The store's tests on SQLite: the conformance suite, the SQLite-specific
//! behaviour (locking, schema versions, readers) and a throughput benchmark.

use std::path::PathBuf;
use std::time::Instant;
use tessera_store::conformance::{self, Backend};
use tessera_store::{SqliteStore, Store, StoreError, SCHEMA_VERSION};
use tessera_types::{
    Action, AttemptOutcome, AttemptUsage, Change, JobSpec, JobState, NodeId, TaskRef, TaskSpec,
    TaskState,
};

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
    fn create(&mut self) -> Box<dyn Store> {
        self.n += 1;
        Box::new(SqliteStore::open(self.current()).expect("open new database"))
    }
    fn reopen(&mut self) -> Box<dyn Store> {
        Box::new(SqliteStore::open(self.current()).expect("reopen database"))
    }
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod conformance_sqlite {
            use super::*;
            $(#[test]
            fn $name() {
                conformance::$name(&mut SqliteFiles::new());
            })*

            #[test]
            fn every_conformance_test_is_run_here() {
                let here = [$(stringify!($name)),*];
                let all: Vec<_> = conformance::TESTS.iter().map(|(n, _)| *n).collect();
                assert_eq!(here.as_slice(), all.as_slice());
            }
        }
    };
}

conformance_tests!(
    create_and_load_round_trip,
    expansion_appends_tasks,
    apply_is_all_or_nothing,
    task_changes_are_recorded,
    load_unfinished_excludes_terminal_jobs,
    state_survives_reopen,
    find_job_by_key_returns_newest,
    attempts_record_outcome_and_usage,
);

#[test]
fn conformance_runs_in_memory_too() {
    struct Memory;
    impl Backend for Memory {
        fn create(&mut self) -> Box<dyn Store> {
            Box::new(SqliteStore::open_in_memory().expect("in-memory store"))
        }
        fn reopen(&mut self) -> Box<dyn Store> {
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
    let job = writer.create_job(&spec, Some("k"), 1).unwrap();
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
    assert!(reader.create_job(&spec, None, 3).is_err());
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
/// with `cargo test -p tessera-store --release --test sqlite -- --ignored --nocapture bench_apply_throughput`.
#[test]
#[ignore]
fn bench_apply_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path().join("bench.db")).unwrap();
    let tasks_per_job = 2_000u32;
    let jobs = 10;
    let mut batches = Vec::new();
    for j in 0..jobs {
        let tasks = (0..tasks_per_job)
            .map(|i| TaskSpec::new(format!("t{i}"), Action::Noop))
            .collect();
        let job = store
            .create_job(&JobSpec::new(format!("bench-{j}"), tasks), None, 0)
            .unwrap();
        let mut changes = Vec::new();
        for i in 0..tasks_per_job {
            let task = TaskRef::new(job, i);
            let t = |state, attempt| Change::Task {
                task,
                state,
                attempt,
                failures: 0,
                not_before: 0,
                reason: None,
            };
            changes.push(t(TaskState::Ready, 0));
            changes.push(t(TaskState::Running, 1));
            changes.push(Change::AttemptStarted {
                task,
                attempt: 1,
                node: NodeId::LOCAL,
                at: 1,
            });
            let usage = AttemptUsage {
                wall_ms: 10,
                cpu_ms: 9,
                max_rss_kb: 1000,
            };
            changes.push(Change::AttemptEnded {
                task,
                attempt: 1,
                outcome: AttemptOutcome::Succeeded,
                usage,
                at: 2,
            });
            changes.push(t(TaskState::Succeeded, 1));
        }
        batches.extend(changes.chunks(1_000).map(<[Change]>::to_vec));
    }
    let total: usize = batches.iter().map(Vec::len).sum();
    let start = Instant::now();
    for batch in &batches {
        store.apply(batch, 3).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "bench_apply_throughput: {total} changes in {} batches of 1000 in {secs:.3}s = {:.0} changes/s",
        batches.len(),
        total as f64 / secs
    );
}
