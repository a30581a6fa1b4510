//! Memory and time of the array-on-array attack: two arrays of N no-op
//! tasks, the second depending on the whole first one. Each element of the
//! second array waits for all N of the first, so a graph of explicit edges
//! holds N² of them; the scheduler shares one fan-in per selector instead.
//!
//! `cargo bench -p tessera-driver --bench fan_in_memory -- [array|glob] [N]`
//!
//! `array`: `deps: [{selector: a}]` (a dependency on the array's name);
//! `glob`: `deps: [{selector: "a-*"}]`. Default: both, N = 3000. Runs the
//! real driver loop with a real SQLite file and the in-process executor,
//! and prints the process's peak resident set (VmHWM) before and after,
//! the time to submit (compile, commit, resolve) and the time to run the
//! job to its end. Run one variant per process for a clean peak.

use std::time::Instant;
use tessera_driver::{Driver, DriverConfig, Exit};
use tessera_exec::InProcessExecutor;
use tessera_store::{SqliteStore, Store};
use tessera_types::{Action, ArraySpec, JobSpec, JobState, TaskSpec, TaskState};

const SLOTS: u32 = 64;

fn attack(variant: &str, n: u64) -> JobSpec {
    let a = TaskSpec::new("a", Action::Noop).with_array(ArraySpec::count(n));
    let dep = if variant == "glob" { "a-*" } else { "a" };
    let b = TaskSpec::new("b", Action::Noop)
        .with_array(ArraySpec::count(n))
        .after(dep);
    JobSpec::new("attack", vec![a, b])
}

/// Peak and current resident set of this process, in MiB.
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let variant = args.first().map_or("array", String::as_str).to_string();
    let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3000);
    let spec = attack(&variant, n);
    let bytes = serde_json::to_string(&spec).expect("json").len();

    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("state.db")).expect("database");
    let config = DriverConfig::new(SLOTS, dir.path().join("work"));
    let mut driver = Driver::new(store, InProcessExecutor::new, config);
    let (peak0, _) = rss();

    let t0 = Instant::now();
    let job = driver.submit(&spec, None).expect("valid job");
    let submit = t0.elapsed();
    let (peak1, _) = rss();
    let t1 = Instant::now();
    let exit = driver.run_job(job, &mut ()).expect("driver runs");
    let run = t1.elapsed();
    let (peak2, now) = rss();

    assert_eq!(exit, Exit::Finished(JobState::Succeeded));
    let tasks = driver.store().tasks(job).expect("tasks");
    let done = tasks
        .iter()
        .filter(|t| t.state == TaskState::Succeeded && t.attempt == 1)
        .count();
    assert_eq!(done as u64, 2 * n, "every task ran exactly once");
    let db = std::fs::metadata(dir.path().join("state.db")).map_or(0, |m| m.len());
    println!(
        "{variant} N={n}: spec {bytes} bytes (JSON), {done} tasks ran once each; \
         submit {:.2} s, run {:.2} s; peak RSS {peak0:.0} MiB before, {peak1:.0} MiB after \
         submit, {peak2:.0} MiB at the end (+{:.0} MiB; {now:.0} MiB resident now); \
         database {:.1} MiB",
        submit.as_secs_f64(),
        run.as_secs_f64(),
        peak2 - peak0,
        db as f64 / 1048576.0,
    );
}
