//! How long a dependency hop takes through the real driver and a real
//! SQLite file: from the moment a parent's last attempt reports its end to
//! the moment the driver hands its child's first attempt to the executor.
//! Two chains of the same length, side by side in one run:
//! - tasks: one job of N tasks, each waiting on the one before;
//! - jobs: N one-task jobs, each waiting on the job before (`after`).
//!
//! `cargo bench -p tessera-driver --bench job_hops`
//!
//! The executor is a stand-in that records times (no processes: a process
//! spawn is not part of a hop): each attempt reports a start (as process
//! executors do) and its end at once. Times are taken with `Instant`, so
//! the figures are in microseconds. Each hop includes the driver's turn:
//! the core's step and the SQLite commit of that step (WAL,
//! synchronous=NORMAL) before the child is started. Target: p99 <= 5 ms.
//! On a quiet machine the slowest hops (about 2.3 ms, one in a hundred or
//! so) are the turns in which SQLite checkpoints its WAL; a job hop writes
//! a few more pages (two job rows change state) than a task hop, so it
//! meets them a little more often. On a loaded machine the tail is the
//! machine's.
//! The slowest hops (about 2.3 ms, every hundred hops or so) are the turns
//! in which SQLite checkpoints its WAL; a job hop writes a few more pages
//! (two job rows change state) than a task hop, so it meets them a little
//! more often.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_driver::{Driver, DriverConfig};
use tessera_exec::{EventSink, ExecEvent, Executor, StartRequest};
use tessera_store::{SqliteStore, Store};
use tessera_types::{
    Action, AttemptNo, AttemptUsage, JobDependency, JobId, JobSpec, JobState, TaskRef, TaskSpec,
};

const HOPS: usize = 2_000;
const RUNS: usize = 3;
const TARGET_P99: Duration = Duration::from_millis(5);

/// When each attempt was started by the driver and when it reported its end.
type Times = Arc<Mutex<HashMap<TaskRef, (Instant, Instant)>>>;

struct Timed {
    sink: EventSink,
    times: Times,
}

impl Executor for Timed {
    fn start(&mut self, req: StartRequest) {
        let started = Instant::now();
        (self.sink)(ExecEvent::Started {
            task: req.task,
            attempt: req.attempt,
            pid: std::process::id(),
            node: None,
        });
        let ended = Instant::now();
        self.times
            .lock()
            .expect("times")
            .insert(req.task, (started, ended));
        (self.sink)(ExecEvent::Exited {
            task: req.task,
            attempt: req.attempt,
            result: Ok(()),
            usage: AttemptUsage::default(),
        });
    }
    fn kill(&mut self, _task: TaskRef, _attempt: AttemptNo) {}
    fn kill_all(&mut self) {}
}

fn driver(dir: &std::path::Path, times: &Times) -> Driver<SqliteStore, Timed> {
    let store = SqliteStore::open(dir.join("state.db")).expect("database");
    let times = times.clone();
    let make = move |sink| Timed { sink, times };
    Driver::new(store, make, DriverConfig::new(4, dir.join("work")))
}

/// Hops of one job of `n` chained tasks, in microseconds.
fn task_chain(n: usize) -> Vec<u64> {
    let dir = tempfile::tempdir().expect("temp dir");
    let times = Times::default();
    let mut driver = driver(dir.path(), &times);
    let tasks = (0..n)
        .map(|i| {
            let t = TaskSpec::new(format!("t{i}"), Action::Noop);
            if i == 0 {
                t
            } else {
                t.after(&format!("t{}", i - 1))
            }
        })
        .collect();
    let job = driver
        .submit(&JobSpec::new("chain", tasks), None)
        .expect("job");
    driver.run_until_idle(&mut ()).expect("runs");
    assert_eq!(
        driver.store().job(job).unwrap().unwrap().state,
        JobState::Succeeded
    );
    let times = times.lock().expect("times");
    let at = |i: u32| times[&TaskRef::new(job, i)];
    // The first hop is left out, as the job chain's is (see `job_chain`).
    (2..n as u32)
        .map(|i| micros(at(i - 1).1, at(i).0))
        .collect()
}

/// Hops of `n` one-task jobs, each waiting on the one before, in microseconds.
fn job_chain(n: usize) -> Vec<u64> {
    let dir = tempfile::tempdir().expect("temp dir");
    let times = Times::default();
    let mut driver = driver(dir.path(), &times);
    let mut jobs: Vec<JobId> = Vec::with_capacity(n);
    for i in 0..n {
        let mut spec = JobSpec::new(format!("j{i}"), vec![TaskSpec::new("t", Action::Noop)]);
        if let Some(&parent) = jobs.last() {
            spec = spec.after_job(JobDependency::on_id(parent));
        }
        jobs.push(driver.submit(&spec, None).expect("job"));
    }
    driver.run_until_idle(&mut ()).expect("runs");
    let last = *jobs.last().expect("jobs");
    assert_eq!(
        driver.store().job(last).unwrap().unwrap().state,
        JobState::Succeeded
    );
    let times = times.lock().expect("times");
    let at = |j: JobId| times[&TaskRef::new(j, 0)];
    // The first job started as it was submitted, and its end waited for
    // the rest of the chain's submissions: that hop is left out.
    jobs.windows(2)
        .skip(1)
        .map(|w| micros(at(w[0]).1, at(w[1]).0))
        .collect()
}

fn micros(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_micros() as u64
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    println!("dependency hops through the driver + SQLite, {HOPS} hops per chain, {RUNS} runs");
    let mut worst_p99 = Duration::ZERO;
    for run in 1..=RUNS {
        for (label, hops) in [
            ("task -> task", task_chain(HOPS + 2)),
            ("job -> job", job_chain(HOPS + 2)),
        ] {
            let mut hops = hops;
            hops.sort_unstable();
            let (p50, p99, max) = (pct(&hops, 0.5), pct(&hops, 0.99), hops[hops.len() - 1]);
            worst_p99 = worst_p99.max(Duration::from_micros(p99));
            println!(
                "run {run}  {label:<13} parent end -> child start: p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>7.3} ms",
                p50 as f64 / 1000.0,
                p99 as f64 / 1000.0,
                max as f64 / 1000.0
            );
        }
    }
    println!(
        "worst p99 {:.3} ms: {}",
        worst_p99.as_secs_f64() * 1000.0,
        if worst_p99 <= TARGET_P99 {
            "ok (<= 5 ms)"
        } else {
            "ABOVE TARGET (5 ms)"
        }
    );
}
