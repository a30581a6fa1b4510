//! The batched path on a real server (`TESSERA_TEST_POSTGRES`; skipped
//! without it, except under CI): it takes whole the batches a run sends and
//! leaves what applying them one by one (SQLite) leaves; it refuses, having
//! written nothing, every batch that would fail one by one, and the store
//! then names the failing change.

use super::{apply, Refused};
use crate::{PostgresStore, SqliteStore, Store, StoreError};
use postgres::{Client, NoTls};
use tessera_types::{
    Action, AttemptOutcome, AttemptUsage, Change, JobId, JobSpec, JobState, Millis, NodeId,
    TaskRef, TaskSpec, TaskState,
};

/// A store in a fresh schema, dropped with the value.
struct Schema {
    admin: Client,
    name: String,
    store: PostgresStore,
}

impl Schema {
    fn new() -> Option<Self> {
        let server = crate::postgres::test_server()?;
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tessera_batch_{}_{n}", std::process::id());
        let mut admin = Client::connect(&server, NoTls).expect("connect");
        admin
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .expect("create schema");
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options=-c%20search_path%3D{name}");
        let store = PostgresStore::connect(&url).expect("connect to the schema");
        Some(Self { admin, name, store })
    }

    /// The batched path alone, without the one-by-one fallback.
    fn batched(&mut self, changes: &[Change], now: Millis) -> Result<(), Refused> {
        let conn = self.store.conn.get_mut();
        apply(&mut conn.statements, &mut conn.client, changes, now)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = self
            .admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

fn spec() -> JobSpec {
    let tasks = ["a", "b", "c"].map(|n| TaskSpec::new(n, Action::Noop));
    JobSpec::new("batch", tasks.to_vec())
}

fn task(t: TaskRef, state: TaskState, attempt: u32) -> Change {
    Change::Task {
        task: t,
        state,
        attempt,
        failures: 0,
        not_before: 0,
        reason: None,
    }
}

fn start(t: TaskRef, attempt: u32) -> Change {
    Change::AttemptStarted {
        task: t,
        attempt,
        node: NodeId::LOCAL,
        at: 7,
    }
}

fn end(t: TaskRef, attempt: u32, outcome: AttemptOutcome) -> Change {
    let usage = AttemptUsage {
        wall_ms: 5,
        cpu_ms: 4,
        max_rss_kb: 3,
        ..Default::default()
    };
    Change::AttemptEnded {
        task: t,
        attempt,
        outcome,
        usage,
        at: 9,
    }
}

/// Everything the store reads back about `job`.
fn state(s: &dyn Store, job: JobId) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}",
        s.job(job).unwrap(),
        s.tasks(job).unwrap(),
        s.attempts(job).unwrap(),
        s.load_unfinished().unwrap()
    )
}

#[test]
fn a_run_is_written_batched_as_one_by_one() {
    let Some(mut pg) = Schema::new() else { return };
    let mut sqlite = SqliteStore::open_in_memory().unwrap();
    let job = pg.store.create_job(None, &spec(), None, 1).unwrap();
    assert_eq!(sqlite.create_job(None, &spec(), None, 1).unwrap(), job);
    let [a, b, d] = [0, 1, 3].map(|i| TaskRef::new(job, i));
    let batches = [
        vec![
            Change::JobState {
                job,
                state: JobState::Running,
            },
            task(a, TaskState::Ready, 0),
            task(a, TaskState::Running, 1),
            start(a, 1),
            task(b, TaskState::Ready, 0),
            Change::JobPriority { job, priority: 5 },
        ],
        vec![
            end(
                a,
                1,
                AttemptOutcome::Failed {
                    message: "boom".into(),
                },
            ),
            Change::Task {
                task: a,
                state: TaskState::Ready,
                attempt: 1,
                failures: 1,
                not_before: 100,
                reason: Some("exited with status 1".into()),
            },
            task(a, TaskState::Running, 2),
            start(a, 2),
            end(a, 2, AttemptOutcome::Succeeded),
            end(
                a,
                2,
                AttemptOutcome::Lost {
                    reason: "again".into(),
                },
            ),
            Change::JobSuspended {
                job,
                suspended: true,
            },
        ],
        vec![
            Change::TasksAdded {
                job,
                first_index: 3,
                tasks: vec![TaskSpec::new("d", Action::Noop)],
            },
            Change::TasksAdded {
                job,
                first_index: 4,
                tasks: vec![TaskSpec::new("e", Action::Noop)],
            },
            task(d, TaskState::Running, 1),
            start(d, 1),
            Change::JobSuspended {
                job,
                suspended: false,
            },
        ],
        vec![
            end(d, 1, AttemptOutcome::Succeeded),
            Change::JobState {
                job,
                state: JobState::Succeeded,
            },
        ],
    ];
    for (i, batch) in batches.iter().enumerate() {
        let now = 10 * (i as Millis + 2);
        pg.batched(batch, now)
            .unwrap_or_else(|_| panic!("batch {i} refused"));
        sqlite.apply(batch, now).unwrap();
        assert_eq!(
            state(&pg.store, job),
            state(&sqlite, job),
            "after batch {i}"
        );
    }
    let attempts = pg.store.attempts(job).unwrap();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
}

#[test]
fn batches_that_fail_one_by_one_are_refused_and_leave_nothing() {
    let Some(mut pg) = Schema::new() else { return };
    let job = pg.store.create_job(None, &spec(), None, 1).unwrap();
    let [a, c, new] = [0, 2, 3].map(|i| TaskRef::new(job, i));
    pg.batched(&[start(c, 1)], 2).expect("a good batch");
    let before = state(&pg.store, job);
    let add = |first_index, names: &[&str]| Change::TasksAdded {
        job,
        first_index,
        tasks: names
            .iter()
            .map(|n| TaskSpec::new(*n, Action::Noop))
            .collect(),
    };
    let cases: Vec<(Vec<Change>, &str)> = vec![
        (
            vec![task(TaskRef::new(job, 9), TaskState::Ready, 0)],
            "no task",
        ),
        (
            vec![task(new, TaskState::Ready, 0), add(3, &["x"])],
            "no task",
        ),
        (vec![start(new, 1), add(3, &["x"])], "no task"),
        (
            vec![end(a, 1, AttemptOutcome::Succeeded), start(a, 1)],
            "no attempt",
        ),
        (vec![start(a, 1), start(a, 1)], "already recorded"),
        (vec![start(c, 1)], "already recorded"),
        (vec![end(a, 7, AttemptOutcome::Succeeded)], "no attempt"),
        (
            vec![Change::JobPriority {
                job: JobId(job.0 + 7),
                priority: 1,
            }],
            "no job",
        ),
        (vec![add(4, &["x"])], "it has 3 tasks"),
        (vec![add(3, &["a"])], "two tasks named"),
        (vec![add(3, &["x", "x"])], "two tasks named"),
        (vec![add(3, &["x"]), add(3, &["y"])], "it has 4 tasks"),
    ];
    for (bad, error) in cases {
        // A good change first: it must not be kept either.
        let mut batch = vec![
            Change::JobState {
                job,
                state: JobState::Running,
            },
            task(a, TaskState::Ready, 0),
        ];
        batch.extend(bad);
        assert!(pg.batched(&batch, 3).is_err(), "{batch:?} was taken");
        assert_eq!(state(&pg.store, job), before, "{batch:?} left something");
        let err = pg.store.apply(&batch, 3).expect_err("one by one fails too");
        assert!(err.to_string().contains(error), "{batch:?}: {err}");
        assert!(!matches!(err, StoreError::Backend(_)), "{err}");
        assert_eq!(state(&pg.store, job), before, "{batch:?} left something");
    }
}
