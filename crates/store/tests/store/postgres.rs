//! PostgreSQL: the conformance suite, the PostgreSQL-specific behaviour
//! (the scheduler lock, schema versions, secondaries) and a throughput
//! benchmark, against a real server.
//!
//! `TESSERA_TEST_POSTGRES` is the URL of a database the tests may create
//! schemas in (e.g. `postgres://tessera:tessera@127.0.0.1/tessera_test`).
//! Each test works in a schema of its own, dropped at its end, so they run in
//! parallel. Without the variable the tests say they skip and pass, except
//! under CI, where they fail (`tessera_testkit::env`): CI must exercise
//! PostgreSQL.

use postgres::{Client, NoTls};
use std::sync::atomic::{AtomicU32, Ordering};
use tessera_store::conformance::{Backend, Database};
use tessera_store::{Accounts, PostgresStore, SqliteStore, Store, StoreError, SCHEMA_VERSION};
use tessera_types::{
    Action, AttemptOutcome, AttemptUsage, Change, JobId, JobSpec, JobState, NodeId, TaskRef,
    TaskSpec, TaskState,
};

const URL_VAR: &str = "TESSERA_TEST_POSTGRES";

/// The server's URL, or `None` (after saying so) when the tests should
/// skip; under CI a failure (`tessera_testkit::env`).
fn server_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            tessera_testkit::env::skip(
                &format!("{URL_VAR} is not set"),
                &format!("set {URL_VAR} to the URL of a PostgreSQL database the tests may create schemas in (.ci/run does)"),
            );
            None
        }
    }
}

/// A fresh schema on the test server, dropped with the value.
struct Schema {
    admin: Client,
    name: String,
    /// The server URL with this schema as its `search_path`.
    url: String,
}

impl Schema {
    fn new(server: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tessera_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = Client::connect(server, NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}: {e}"));
        admin
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .expect("create schema");
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options=-c%20search_path%3D{name}");
        Self { admin, name, url }
    }

    fn execute(&mut self, sql: &str) {
        let sql = sql.replace("$schema", &self.name);
        self.admin.batch_execute(&sql).expect(&sql);
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let _ = self.admin.batch_execute(&sql);
    }
}

/// Each `create` makes a new schema; `reopen` connects to the last again.
struct Schemas {
    server: String,
    current: Option<Schema>,
}

impl Backend for Schemas {
    fn create(&mut self) -> Box<dyn Database> {
        // The previous schema (if any) is dropped here.
        self.current = None;
        let schema = self.current.insert(Schema::new(&self.server));
        Box::new(PostgresStore::connect(&schema.url).expect("connect to a new schema"))
    }
    fn reopen(&mut self) -> Box<dyn Database> {
        let schema = self.current.as_ref().expect("create first");
        Box::new(PostgresStore::connect(&schema.url).expect("reconnect"))
    }
}

fn schemas() -> Option<Schemas> {
    Some(Schemas {
        server: server_url()?,
        current: None,
    })
}

conformance_tests!(schemas);

#[test]
fn a_second_scheduler_is_refused_while_the_first_holds_the_schema() {
    let Some(server) = server_url() else { return };
    let schema = Schema::new(&server);
    let first = PostgresStore::connect(&schema.url).unwrap();
    let err = PostgresStore::connect(&schema.url)
        .err()
        .expect("second connect must fail");
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "database {} is used by another tessera scheduler",
            first.database()
        )
    );
    assert!(
        first
            .database()
            .ends_with(&format!("(schema {})", schema.name)),
        "{}",
        first.database()
    );
    // Another schema of the same database is another installation.
    let other = Schema::new(&server);
    PostgresStore::connect(&other.url).expect("a different schema is free");
    drop(first);
    PostgresStore::connect(&schema.url).expect("free again at once when the first is dropped");
}

#[test]
fn a_secondary_writes_accounts_beside_the_scheduler() {
    let Some(server) = server_url() else { return };
    let schema = Schema::new(&server);
    let mut scheduler = PostgresStore::connect(&schema.url).unwrap();
    let mut api = PostgresStore::connect_secondary(&schema.url).expect("no lock needed");
    let ana = api.create_user("ana", true, 1).unwrap();
    let project = api.create_project("p", ana.id, 1).unwrap();
    let spec = JobSpec::new("j", vec![TaskSpec::new("a", Action::Noop)]);
    let job = scheduler
        .create_job(Some(project.id), &spec, None, 2)
        .expect("the scheduler sees the secondary's project");
    assert_eq!(api.jobs_of_project(project.id, 5).unwrap()[0].id, job);
    drop(scheduler);
    let again = PostgresStore::connect(&schema.url).expect("the secondary holds no lock");
    assert_eq!(again.user(ana.id).unwrap(), Some(ana));
}

#[test]
fn a_secondary_needs_a_schema_the_scheduler_made() {
    let Some(server) = server_url() else { return };
    let schema = Schema::new(&server);
    let err = PostgresStore::connect_secondary(&schema.url)
        .err()
        .expect("empty schema");
    let msg = err.to_string();
    assert!(
        msg.starts_with("could not open database ")
            && msg.contains("connect a scheduler to it first"),
        "{msg}"
    );
}

#[test]
fn a_schema_from_a_newer_tessera_is_refused() {
    let Some(server) = server_url() else { return };
    let mut schema = Schema::new(&server);
    let database = PostgresStore::connect(&schema.url)
        .unwrap()
        .database()
        .to_string();
    let newer = SCHEMA_VERSION + 6;
    schema.execute(&format!(
        "UPDATE $schema.schema_version SET version = {newer}"
    ));
    let err = PostgresStore::connect(&schema.url).err().expect("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "database {database} has schema version {newer}, newer than this tessera ({SCHEMA_VERSION}); upgrade tessera"
        )
    );
    assert!(matches!(
        PostgresStore::connect_secondary(&schema.url),
        Err(StoreError::SchemaTooNew { .. })
    ));
}

#[test]
fn an_unreachable_server_is_named_without_its_password() {
    // Port 1 on the loopback: refused at once, no server needed.
    let err = PostgresStore::connect("postgres://ana:s3cret@127.0.0.1:1/tessera")
        .err()
        .expect("nothing listens there");
    let msg = err.to_string();
    assert!(
        msg.starts_with("could not open database tessera on 127.0.0.1:1: "),
        "{msg}"
    );
    assert!(!msg.contains("s3cret"), "{msg}");
}

/// Random batches, most of them good and many not, applied to PostgreSQL
/// (batched, falling back to one by one) and to SQLite (one by one): the
/// same answer (the same error for a failing batch) and the same records
/// after each. Protects the batched `apply` from meaning anything else.
#[test]
fn random_batches_mean_on_postgres_what_they_mean_on_sqlite() {
    let Some(server) = server_url() else { return };
    let schema = Schema::new(&server);
    let mut pg = PostgresStore::connect(&schema.url).unwrap();
    let mut lite = SqliteStore::open_in_memory().unwrap();
    let names = ["a", "b", "c", "d"];
    let spec = JobSpec::new(
        "random",
        names.map(|n| TaskSpec::new(n, Action::Noop)).to_vec(),
    );
    let job = pg.create_job(None, &spec, None, 1).unwrap();
    assert_eq!(lite.create_job(None, &spec, None, 1).unwrap(), job);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut taken, mut refused) = (0, 0);
    for round in 0..400u64 {
        let count = u32::try_from(pg.tasks(job).unwrap().len()).unwrap();
        let mut planned = count;
        let batch: Vec<Change> = (0..1 + rng.below(6))
            .map(|_| random_change(&mut rng, job, &mut planned))
            .collect();
        let now = 10 + round;
        let got = pg.apply(&batch, now).map_err(|e| e.to_string());
        let want = lite.apply(&batch, now).map_err(|e| e.to_string());
        assert_eq!(got, want, "round {round}: {batch:?}");
        if got.is_ok() {
            taken += 1;
        } else {
            refused += 1;
        }
        let records = |s: &dyn Store| {
            format!(
                "{:?}\n{:?}\n{:?}\n{:?}",
                s.job(job).unwrap(),
                s.tasks(job).unwrap(),
                s.attempts(job).unwrap(),
                s.load_unfinished().unwrap()
            )
        };
        assert_eq!(records(&pg), records(&lite), "round {round}: {batch:?}");
    }
    assert!(
        taken > 100 && refused > 100,
        "{taken} taken, {refused} refused"
    );
}

/// xorshift64: a fixed sequence, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A change to `job` (now and then another job), mostly one that applies:
/// `planned` is the task count once the batch's earlier additions apply.
fn random_change(rng: &mut Rng, job: JobId, planned: &mut u32) -> Change {
    // Now and then a task one past the end (unknown unless added later).
    let index = u32::try_from(rng.below(u64::from(*planned) + 1)).unwrap();
    let task = TaskRef::new(job, index);
    let attempt = 1 + u32::try_from(rng.below(3)).unwrap();
    let pick = |rng: &mut Rng, n: usize| usize::try_from(rng.below(n as u64)).unwrap();
    match rng.below(9) {
        0 | 1 => Change::Task {
            task,
            state: TaskState::ALL[pick(rng, TaskState::ALL.len())],
            attempt,
            failures: u32::try_from(rng.below(3)).unwrap(),
            not_before: rng.below(100),
            reason: (rng.below(2) == 0).then(|| format!("reason {}", rng.below(5))),
        },
        2 | 3 => Change::AttemptStarted {
            task,
            attempt,
            node: NodeId::LOCAL,
            at: rng.below(50),
        },
        4 | 5 => {
            let outcomes = [
                AttemptOutcome::Succeeded,
                AttemptOutcome::Failed {
                    message: "boom".into(),
                },
                AttemptOutcome::Lost {
                    reason: "gone".into(),
                },
                AttemptOutcome::TimedOut,
            ];
            Change::AttemptEnded {
                task,
                attempt,
                outcome: outcomes[pick(rng, outcomes.len())].clone(),
                usage: AttemptUsage {
                    wall_ms: rng.below(1000),
                    cpu_ms: rng.below(1000),
                    max_rss_kb: rng.below(1000),
                    ..Default::default()
                },
                at: 50 + rng.below(50),
            }
        }
        6 => {
            let states = [JobState::Pending, JobState::Running, JobState::Failed];
            Change::JobState {
                job: JobId(job.0 + i64::from(rng.below(8) == 0)),
                state: states[pick(rng, states.len())],
            }
        }
        7 => match rng.below(2) {
            0 => Change::JobSuspended {
                job,
                suspended: rng.below(2) == 0,
            },
            _ => Change::JobPriority {
                job,
                priority: i32::try_from(rng.below(7)).unwrap() - 3,
            },
        },
        _ => {
            // Mostly right after the last task; names often taken.
            let first_index = *planned + u32::from(rng.below(6) == 0);
            let n = rng.below(3);
            let tasks: Vec<TaskSpec> = (0..n)
                .map(|_| TaskSpec::new(format!("t{}", rng.below(40)), Action::Noop))
                .collect();
            *planned = first_index + u32::try_from(n).unwrap();
            Change::TasksAdded {
                job: JobId(job.0 + i64::from(rng.below(10) == 0)),
                first_index,
                tasks,
            }
        }
    }
}

/// As the SQLite benchmark: changes per second `apply` commits, in batches
/// of 1000 shaped like a real run; then the time `create_job` takes for a
/// job of 100,000 tasks. Run it with
/// `TESSERA_TEST_POSTGRES=... cargo test -p tessera-store --release --test store -- --ignored --nocapture postgres::bench_apply_throughput`.
#[test]
#[ignore]
fn bench_apply_throughput() {
    let Some(server) = server_url() else { return };
    let schema = Schema::new(&server);
    let mut store = PostgresStore::connect(&schema.url).unwrap();
    super::bench_apply("postgres", &mut store);
    let tasks: Vec<TaskSpec> = (0..100_000)
        .map(|i| TaskSpec::new(format!("enc-{i}"), Action::Noop))
        .collect();
    let spec = JobSpec::new("huge", tasks);
    let start = std::time::Instant::now();
    store.create_job(None, &spec, None, 0).unwrap();
    println!(
        "create_job (postgres): 100000 tasks in {:.3}s",
        start.elapsed().as_secs_f64()
    );
}
