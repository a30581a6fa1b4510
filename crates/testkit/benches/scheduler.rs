//! Pure scheduler throughput: task transitions per second, no I/O.
//!
//! `cargo bench -p tessera-testkit --bench scheduler`
//!
//! Shapes: a wide fan-out/fan-in (split -> N encodes -> merge), long
//! chains, and fan-outs in 20 projects (fair share picks among them, two
//! under a cpu quota). Each run feeds completions straight back into the core (an
//! instant executor) and counts the task state changes it emits. Prints the
//! median of 5 runs.

use std::time::Instant;
use tessera_core::{Command, Event, Quota, Scheduler};
use tessera_types::{Action, AttemptUsage, Change, JobId, JobSpec, ProjectId, TaskSpec};

fn fan(n: usize) -> JobSpec {
    let mut tasks = vec![TaskSpec::new("split", Action::Noop)];
    tasks.extend((0..n).map(|i| TaskSpec::new(format!("enc-{i}"), Action::Noop).after("split")));
    tasks.push(TaskSpec::new("merge", Action::Noop).after("enc-*"));
    JobSpec::new("fan", tasks)
}

fn chains(chains: usize, len: usize) -> JobSpec {
    let mut tasks = Vec::new();
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

/// Runs the job in each of `projects` projects (one job if 0, of no
/// project) to the end; returns (transitions, seconds).
fn drive(spec: &JobSpec, slots: u32, projects: i64) -> (u64, f64) {
    let mut s = Scheduler::new(slots);
    let quota = Quota {
        max_cpu: Some(4),
        ..Quota::default()
    };
    s.set_quota(ProjectId(0), quota);
    s.set_quota(ProjectId(1), quota);
    let t0 = Instant::now();
    let mut pending = Vec::new();
    if projects == 0 {
        pending = s.submit(JobId(1), spec, 0).expect("valid").commands;
    }
    for p in 0..projects {
        let step = s.submit_in(JobId(p + 1), Some(ProjectId(p)), spec, 0);
        pending.extend(step.expect("valid").commands);
    }
    let mut transitions = 0u64;
    let mut now = 0;
    while let Some(cmd) = pending.pop() {
        if let Command::Start { task, attempt, .. } = cmd {
            now += 1;
            let ev = Event::Exited {
                task,
                attempt,
                result: Ok(()),
                usage: AttemptUsage {
                    wall_ms: 1,
                    ..AttemptUsage::default()
                },
                expansion: None,
            };
            let step = s.handle(ev, now);
            transitions += step
                .changes
                .iter()
                .filter(|c| matches!(c, Change::Task { .. }))
                .count() as u64;
            pending.extend(step.commands);
        }
    }
    (transitions, t0.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let cases = [
        ("fan-out 100k + fan-in", fan(100_000), 64, 0),
        ("1k chains x 100", chains(1_000, 100), 64, 0),
        ("20 projects x fan 5k", fan(5_000), 64, 20),
    ];
    for (name, spec, slots, projects) in cases {
        let mut rates = Vec::new();
        let mut count = 0;
        for _ in 0..5 {
            let (n, secs) = drive(&spec, slots, projects);
            count = n;
            rates.push(n as f64 / secs);
        }
        println!(
            "{name:<24} {count:>8} transitions   median {:>12.0} transitions/s",
            median(rates)
        );
    }
}
