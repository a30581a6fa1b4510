//! Driver throughput on no-op tasks: the real loop, a real SQLite file and
//! the in-process executor, so what is measured is the driver, the core and
//! the store's commits (no processes).
//!
//! `cargo bench -p tessera-driver --bench noop_throughput`
//!
//! Shapes: a fan-out/fan-in (split -> 20,000 encodes -> merge) and 2,000
//! independent chains of 5, with 64 scheduler slots. Reports tasks
//! completed per second of wall time from submit to the job's end (the
//! submit's own commit included), the median of 5 runs, each on a fresh
//! database.

use std::time::Instant;
use tessera_driver::{Driver, DriverConfig, Exit};
use tessera_exec::InProcessExecutor;
use tessera_store::{SqliteStore, Store};
use tessera_types::{Action, JobSpec, JobState, TaskSpec, TaskState};

const SLOTS: u32 = 64;
const RUNS: usize = 5;
const TARGET: f64 = 10_000.0;

fn fan(n: usize) -> JobSpec {
    let mut tasks = vec![TaskSpec::new("split", Action::Noop)];
    tasks.extend((0..n).map(|i| TaskSpec::new(format!("enc-{i}"), Action::Noop).after("split")));
    tasks.push(TaskSpec::new("merge", Action::Noop).after("enc-*"));
    JobSpec::new("fan", tasks)
}

fn chains(chains: usize, len: usize) -> JobSpec {
    let mut tasks = Vec::with_capacity(chains * len);
    for c in 0..chains {
        for i in 0..len {
            let t = TaskSpec::new(format!("c{c}-{i}"), Action::Noop);
            tasks.push(if i == 0 {
                t
            } else {
                t.after(&format!("c{c}-{}", i - 1))
            });
        }
    }
    JobSpec::new("chains", tasks)
}

/// Runs one job on a fresh database; returns tasks per second.
fn run_once(spec: &JobSpec) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("state.db")).expect("database");
    let config = DriverConfig::new(SLOTS, dir.path().join("work"));
    let mut driver = Driver::new(store, InProcessExecutor::new, config);

    let t0 = Instant::now();
    let job = driver.submit(spec, None).expect("valid job");
    let exit = driver.run_job(job, &mut ()).expect("driver runs");
    let secs = t0.elapsed().as_secs_f64();

    assert_eq!(exit, Exit::Finished(JobState::Succeeded));
    let tasks = driver.store().tasks(job).expect("tasks");
    let done = tasks
        .iter()
        .filter(|t| t.state == TaskState::Succeeded && t.attempt == 1)
        .count();
    assert_eq!(done, spec.tasks.len(), "every task ran exactly once");
    done as f64 / secs
}

fn bench(label: &str, spec: &JobSpec) -> f64 {
    let mut rates: Vec<f64> = (0..RUNS).map(|_| run_once(spec)).collect();
    rates.sort_by(f64::total_cmp);
    let median = rates[RUNS / 2];
    println!(
        "{label:<32} {:>6} tasks  median {median:>9.0} tasks/s  (min {:.0}, max {:.0})  {}",
        spec.tasks.len(),
        rates[0],
        rates[RUNS - 1],
        if median >= TARGET {
            "ok"
        } else {
            "BELOW TARGET"
        },
    );
    median
}

fn main() {
    println!(
        "driver + SqliteStore + InProcessExecutor, {SLOTS} slots, median of {RUNS} runs, target >= {TARGET:.0} tasks/s"
    );
    bench("fan-out/fan-in 1 -> 20000 -> 1", &fan(20_000));
    bench("2000 chains of 5", &chains(2_000, 5));
}
