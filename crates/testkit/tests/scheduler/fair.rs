//! Projects: quotas, fair share, priority within a project, and why a task waits.

use super::{arb_job, fail, ok, t};
use proptest::prelude::*;
use std::collections::BTreeSet;
use tessera_core::{Event, Policy, Quota, QuotaKind, Scheduler, WaitReason};
use tessera_testkit::{Behaviour, Sim};
use tessera_types::{
    AttemptUsage, JobId, JobSpec, JobState, ProjectId, TaskRef, TaskSpec, TaskState,
};

/// A task that runs for `ms` in the simulation.
fn timed(name: &str, ms: u64) -> TaskSpec {
    t(name).with_env("SIM_MS", ms.to_string())
}

/// Attempts last what their task's `SIM_MS` says (10 ms by default).
fn by_env() -> Behaviour {
    Behaviour::custom(|spec, _| ok(spec.env.get("SIM_MS").map_or(10, |v| v.parse().unwrap())))
}

/// A small deterministic generator (xorshift), so runs are repeatable.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn p(n: i64) -> Option<ProjectId> {
    Some(ProjectId(n))
}

/// The project of each start, in order.
fn started_projects(sim: &Sim) -> Vec<Option<ProjectId>> {
    sim.starts
        .iter()
        .map(|s| sim.shadow.jobs[&s.1.job].project)
        .collect()
}

#[test]
fn many_projects_all_finish_within_their_quotas() {
    let mut rng = Rng(0x5eed);
    let mut sim = Sim::new(8, by_env());
    for n in 0..5 {
        let quota = Quota {
            max_cpu: Some(2),
            max_memory_mb: Some(1024),
            ..Quota::default()
        };
        sim.set_quota(ProjectId(n), quota);
    }
    let mut jobs = Vec::new();
    sim.sched.set_paused(true); // all submit at once
    for n in 0..20 {
        let tasks = (0..50)
            .map(|i| {
                let mut task = timed(&format!("t{i}"), 10 + rng.below(490));
                task.resources.memory_mb = 256 * rng.below(3);
                task.with_cpu(1 + (rng.below(4) == 0) as u32)
            })
            .collect();
        jobs.push(sim.submit_in(p(n), &JobSpec::new(format!("p{n}"), tasks)));
    }
    sim.sched.set_paused(false);
    sim.tick();
    // The harness asserts at every step that no quota is exceeded.
    sim.run(100_000);
    for job in jobs {
        assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    }
    // Nobody is starved at the start: the first 20 starts go to 20 projects.
    let first: BTreeSet<_> = started_projects(&sim).into_iter().take(20).collect();
    assert_eq!(first.len(), 20, "one start per project first");
    assert_eq!(sim.starts.len(), 20 * 50);
    sim.assert_log_matches_scheduler();
}

#[test]
fn a_project_at_its_cpu_quota_waits_while_others_go_on_and_then_finishes() {
    let mut sim = Sim::new(8, Behaviour::fixed(100));
    sim.set_quota(
        ProjectId(1),
        Quota {
            max_cpu: Some(2),
            ..Quota::default()
        },
    );
    let tasks = |k: &str| (0..10).map(|i| t(&format!("{k}{i}"))).collect();
    let held = sim.submit_in(p(1), &JobSpec::new("held", tasks("a")));
    let free = sim.submit_in(p(2), &JobSpec::new("free", tasks("b")));
    assert_eq!(sim.running_cpu(p(1)), 2, "at its quota");
    assert_eq!(sim.running_cpu(p(2)), 6, "the rest of the slots");
    let waiting = TaskRef::new(held, 9);
    let why = sim.sched.why_waiting(waiting, sim.now).expect("waiting");
    assert_eq!(
        why,
        WaitReason::Quota {
            project: p(1),
            what: QuotaKind::Cpu,
            used: 2,
            limit: 2
        }
    );
    assert_eq!(why.to_string(), "project 1 is at its cpu quota (2 of 2)");
    sim.run(10_000);
    assert_eq!(sim.shadow.job_state(held), Some(JobState::Succeeded));
    assert_eq!(sim.shadow.job_state(free), Some(JobState::Succeeded));
    assert_eq!(sim.shadow.task_state(waiting), Some(TaskState::Succeeded));
}

#[test]
fn two_projects_with_equal_work_get_equal_cpu_time() {
    let mut rng = Rng(42);
    let mut sim = Sim::new(8, by_env());
    let mut total = 0;
    let mut specs = Vec::new();
    for n in 1..=2 {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let ms = 50 + rng.below(450);
                total += ms;
                timed(&format!("t{i}"), ms)
            })
            .collect();
        specs.push((n, JobSpec::new(format!("p{n}"), tasks)));
    }
    sim.sched.set_paused(true); // both submit at once
    let jobs: Vec<JobId> = specs
        .iter()
        .map(|(n, spec)| sim.submit_in(p(*n), spec))
        .collect();
    sim.sched.set_paused(false);
    sim.tick();
    let done = |sim: &Sim, n| sim.cpu_done.get(&p(n)).copied().unwrap_or(0) as f64;
    let mut checked = 0;
    while sim.run(1) > 0 {
        let (a, b) = (done(&sim, 1), done(&sim, 2));
        // From a tenth of the work until one project runs dry.
        let (low, high) = (total as f64 * 0.1, total as f64 * 0.9);
        if a + b >= low && a + b <= high {
            let ratio = a / b;
            assert!(
                (0.8..=1.25).contains(&ratio),
                "at {} ms: {a} vs {b} cpu-ms",
                sim.now
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "the ratio was checked along the run");
    for job in jobs {
        assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    }
}

#[test]
fn a_project_with_heavy_recent_usage_yields_to_a_fresh_one() {
    let mut sim = Sim::new(2, Behaviour::fixed(100));
    let busy = (0..100).map(|i| t(&format!("b{i}"))).collect();
    sim.submit_in(p(1), &JobSpec::new("busy", busy));
    sim.run(20); // project 1 alone: 2000 cpu-ms used
    let before = sim.starts.len();
    let fresh = (0..10).map(|i| t(&format!("f{i}"))).collect();
    let fresh = sim.submit_in(p(2), &JobSpec::new("fresh", fresh));
    sim.run(20);
    let next: Vec<_> = started_projects(&sim)[before..before + 10].to_vec();
    assert_eq!(
        next,
        vec![p(2); 10],
        "every freed slot went to the fresh project"
    );
    assert_eq!(sim.shadow.job_state(fresh), Some(JobState::Succeeded));
}

#[test]
fn priority_orders_tasks_within_a_project_not_across_projects() {
    let mut sim = Sim::new(2, Behaviour::fixed(10));
    let tasks = |k: &str, base: i32| {
        (0..4)
            .map(|i| t(&format!("{k}{i}")).with_priority(base + i))
            .collect()
    };
    let high = sim.submit_in(p(1), &JobSpec::new("high", tasks("h", 90)));
    let low = sim.submit_in(p(2), &JobSpec::new("low", tasks("l", 10)));
    sim.run(1000);
    let order = |job: JobId| -> Vec<u32> {
        sim.starts
            .iter()
            .filter(|s| s.1.job == job)
            .map(|s| s.1.index)
            .collect()
    };
    assert_eq!(order(high), vec![3, 2, 1, 0], "highest priority first");
    assert_eq!(order(low), vec![3, 2, 1, 0]);
    // Across projects fair share decides: `high` took both slots at 0 ms
    // (alone then), so both freed slots go to `low` despite its priority.
    let at_ten: Vec<_> = sim
        .starts
        .iter()
        .filter(|s| s.0 == 10)
        .map(|s| s.1.job)
        .collect();
    assert_eq!(at_ten, vec![low, low]);
}

#[test]
fn a_cpu_time_quota_delays_starts_until_the_window_frees() {
    let mut sim = Sim::new(4, Behaviour::fixed(100));
    sim.set_policy(Policy {
        quota_window_ms: 1000,
        ..Policy::default()
    });
    sim.set_quota(
        ProjectId(1),
        Quota {
            cpu_ms_per_window: Some(300),
            ..Quota::default()
        },
    );
    let tasks = (0..10).map(|i| t(&format!("c{i}"))).collect();
    let job = sim.submit_in(p(1), &JobSpec::new("metered", tasks));
    sim.run(4); // the first four end at 100 ms
    let why = sim.sched.why_waiting(TaskRef::new(job, 9), sim.now);
    assert_eq!(
        why.as_ref().map(ToString::to_string).as_deref(),
        Some("project 1 is at its cpu-time quota (0.4 of 0.3 cpu-seconds this window)")
    );
    sim.run(10_000);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    let at: Vec<u64> = sim.starts.iter().map(|s| s.0).collect();
    // 4 start; at 100 ms two more fit before 300 cpu-ms are charged; the
    // rest wait for the first charges to leave the window (100 + 1000).
    assert_eq!(at, vec![0, 0, 0, 0, 100, 100, 1100, 1100, 1100, 1100]);
}

#[test]
fn why_waiting_names_dependencies_slots_backoff_and_pause() {
    let mut s = Scheduler::new(2);
    let mut tasks: Vec<_> = (0..10).map(|i| t(&format!("encode-{i:04}"))).collect();
    tasks[0] = tasks[0].clone().with_retries(1, 500);
    tasks.push(t("merge").after("encode-*"));
    let job = JobId(1);
    s.submit(job, &JobSpec::new("j", tasks), 0).unwrap();
    let task = |i| TaskRef::new(job, i);

    let deps = s.why_waiting(task(10), 0).unwrap();
    assert_eq!(
        deps.to_string(),
        "waiting for 10 of 10 tasks matching encode-*: encode-0000, encode-0001, \
         encode-0002, encode-0003, encode-0004, …"
    );
    let slot = s.why_waiting(task(5), 0).unwrap();
    assert_eq!(slot, WaitReason::NoSlot { free: 0, needed: 1 });
    assert_eq!(slot.to_string(), "no slot free: it needs 1 cpu, 0 free");
    assert_eq!(s.why_waiting(task(0), 0), None, "running");

    // encode-0000 fails once: it backs off for 500 ms.
    s.handle(exit(task(0), 1, Err("boom".into())), 10);
    assert_eq!(
        s.why_waiting(task(0), 10),
        Some(WaitReason::BackingOff { until: 510 })
    );
    s.set_paused(true);
    s.handle(exit(task(1), 1, Ok(())), 20);
    assert_eq!(s.why_waiting(task(3), 20), Some(WaitReason::Paused));
    assert_eq!(
        s.why_waiting(task(3), 20).unwrap().to_string(),
        "the scheduler is paused"
    );
}

fn exit(task: TaskRef, attempt: u32, result: Result<(), String>) -> Event {
    Event::Exited {
        task,
        attempt,
        result,
        usage: AttemptUsage::default(),
        expansion: None,
    }
}

#[test]
fn usage_recorded_before_a_restart_still_counts() {
    let mut s = Scheduler::new(2);
    s.set_quota(
        ProjectId(1),
        Quota {
            cpu_ms_per_window: Some(1_000),
            ..Quota::default()
        },
    );
    s.record_usage(p(1), 1_500, 100);
    let job = JobId(1);
    let step = s
        .submit_in(job, p(1), &JobSpec::new("j", vec![t("a")]), 200)
        .unwrap();
    assert!(step.commands.is_empty(), "the window is used up");
    let window = s.policy().quota_window_ms;
    assert_eq!(s.next_wakeup(), Some(100 + window));
    assert_eq!(s.tick(100 + window).commands.len(), 1);
}

/// A random job: its tasks and a byte per task (and more) to vary them.
type ArbJob = (Vec<TaskSpec>, Vec<u8>);

/// A project's quota and jobs, for the property below.
fn arb_project() -> impl Strategy<Value = (Quota, Vec<ArbJob>)> {
    let quota = (
        proptest::option::of(2u32..5),
        proptest::option::of(512u64..2048),
        proptest::option::of(5u64..100),
    )
        .prop_map(|(max_cpu, max_memory_mb, cpu_ms_per_window)| Quota {
            max_cpu,
            max_memory_mb,
            cpu_ms_per_window,
        });
    (quota, proptest::collection::vec(arb_job(), 1..3))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the quotas, failures and crashes: no quota is ever exceeded
    /// (the harness checks at every step) and every job still ends.
    #[test]
    fn quotas_hold_and_every_job_ends(
        projects in proptest::collection::vec(arb_project(), 1..5),
        slots in 2u32..6,
        crash_after in proptest::option::of(1usize..40),
    ) {
        let mut sim = Sim::new(slots, Behaviour::custom(|spec, attempt| {
            let x = spec.name.len() as u64 * 7 + u64::from(attempt) * 13 + spec.priority as u64;
            if x.is_multiple_of(5) { fail(1 + x % 7) } else { ok(1 + x % 13) }
        }));
        sim.set_policy(Policy { quota_window_ms: 50, usage_half_life_ms: 100 });
        let mut jobs = Vec::new();
        for (n, (quota, specs)) in projects.into_iter().enumerate() {
            let id = ProjectId(n as i64 + 1);
            sim.set_quota(id, quota);
            for (k, (mut tasks, sizes)) in specs.into_iter().enumerate() {
                for (task, size) in tasks.iter_mut().zip(sizes) {
                    task.resources.cpu = 1 + u32::from(size % 2);
                    task.resources.memory_mb = u64::from(size) * 2;
                }
                jobs.push(sim.submit_in(Some(id), &JobSpec::new(format!("j{k}"), tasks)));
            }
        }
        if let Some(k) = crash_after {
            sim.run(k);
            sim.crash_and_restore();
        }
        sim.run(1_000_000);
        for job in jobs {
            let j = &sim.shadow.jobs[&job];
            prop_assert!(j.state.is_terminal(), "job {} ended: {:?}", job, j.state);
            prop_assert!(j.tasks.iter().all(|t| t.state.is_terminal()));
        }
        prop_assert!(sim.sched.is_idle());
        sim.assert_log_matches_scheduler();
    }
}
