//! Fan-ins: a selector matching many tasks is one shared barrier. The
//! attack (an array waiting for an array) stays linear, and every semantic
//! of a dependency holds through it: conditions, skips with a reason,
//! why-waiting, restore after a crash, expansion, retry, suspend, cancel.

use super::{fail, ok, t};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use tessera_core::{compile, Command, Event, Scheduler, Step};
use tessera_testkit::{sim::Outcome, Behaviour, Sim};
use tessera_types::{
    ArraySpec, AttemptUsage, Condition, JobId, JobSpec, JobState, TaskRef, TaskSpec, TaskState,
};

const N: u64 = 3000;

fn attack(dep: &str) -> JobSpec {
    let spec = JobSpec::new(
        "attack",
        vec![
            t("a").with_array(ArraySpec::count(N)),
            t("b").with_array(ArraySpec::count(N)).after(dep),
        ],
    );
    compile(&spec).unwrap()
}

fn starts(step: &Step) -> impl Iterator<Item = (TaskRef, u32)> + '_ {
    step.commands.iter().filter_map(|c| match c {
        Command::Start { task, attempt, .. } => Some((*task, *attempt)),
        _ => None,
    })
}

fn exit(task: TaskRef, attempt: u32) -> Event {
    Event::Exited {
        task,
        attempt,
        result: Ok(()),
        usage: AttemptUsage::default(),
        expansion: None,
    }
}

#[test]
fn array_on_array_fan_in_stays_linear_and_says_what_it_waits_for() {
    for dep in ["a", "a-*"] {
        let mut s = Scheduler::new(64);
        let job = JobId(1);
        let step = s.submit(job, &attack(dep), 0).unwrap();
        assert_eq!(s.dependency_links(job), Some(2 * N as usize), "{dep}");
        let mut running: Vec<(TaskRef, u32)> = starts(&step).collect();
        running.reverse();
        let mut order = Vec::new();
        let mut now = 0;
        while let Some((task, attempt)) = running.pop() {
            now += 1;
            order.push(task.index);
            let step = s.handle(exit(task, attempt), now);
            running.splice(0..0, starts(&step).collect::<Vec<_>>());
            if order.len() == 2 {
                let why = s.why_waiting(TaskRef::new(job, N as u32), now).unwrap();
                assert_eq!(
                    why.to_string(),
                    "waiting for 2,998 of 3,000 tasks matching a-*: a-0002, a-0003, a-0004, \
                     a-0005, a-0006, …",
                    "{dep}"
                );
                // Every task neither ended (2) nor running (64) says why.
                let all = s.why_waiting_job(job, now);
                assert_eq!(all.len(), 2 * N as usize - 2 - 64, "{dep}");
            }
        }
        assert_eq!(s.job_state(job), Some(JobState::Succeeded), "{dep}");
        assert_eq!(order.len(), 2 * N as usize, "{dep}: each task ran once");
        let first_b = order.iter().position(|&i| i >= N as u32).unwrap();
        assert_eq!(
            first_b, N as usize,
            "{dep}: every a ended before any b started"
        );
    }
}

/// w-0 succeeds at 10 ms, w-1 at 20, w-2 fails at 30, w-3 succeeds at 1000.
fn staggered() -> Behaviour {
    Behaviour::custom(|spec, _| match spec.name.as_str() {
        "w-0" => ok(10),
        "w-1" => ok(20),
        "w-2" => fail(30),
        "w-3" => ok(1000),
        _ => ok(1),
    })
}

fn by_name(sim: &Sim, job: JobId, name: &str) -> (TaskState, Option<String>) {
    let j = &sim.shadow.jobs[&job];
    let i = j.spec.tasks.iter().position(|t| t.name == name).unwrap();
    let reason = sim.shadow.log.iter().rev().find_map(|c| match c {
        tessera_types::Change::Task { task, reason, .. }
            if task.job == job && task.index == i as u32 =>
        {
            Some(reason.clone())
        }
        _ => None,
    });
    (j.tasks[i].state, reason.flatten())
}

#[test]
fn conditions_hold_through_a_fan_in_and_a_rejection_skips_at_once() {
    let mut sim = Sim::new(4, staggered());
    let spec = JobSpec::new(
        "j",
        vec![
            t("w").with_array(ArraySpec::count(4)),
            t("all-ok").after("w"),
            t("whatever").after_if("w-*", Condition::Any),
            t("all-failed").after_if("re:^w-", Condition::Failure),
            t("handler").after_if("w-2", Condition::Failure),
        ],
    );
    let job = sim.submit(&compile(&spec).unwrap());
    sim.run(3); // w-0, w-1 and w-2 have ended; w-3 runs until 1000
    assert_eq!(sim.now, 30);
    assert_eq!(
        by_name(&sim, job, "all-ok"),
        (
            TaskState::Skipped,
            Some("dependency \"w-2\" ended failed and the condition is success".into())
        ),
        "skipped as soon as w-2 failed, while w-3 still runs"
    );
    assert_eq!(by_name(&sim, job, "w-3").0, TaskState::Running);
    assert_eq!(
        by_name(&sim, job, "all-failed"),
        (
            TaskState::Skipped,
            Some("dependency \"w-0\" ended succeeded and the condition is failure".into())
        )
    );
    assert_eq!(by_name(&sim, job, "whatever").0, TaskState::Waiting);
    sim.run(100);
    assert_eq!(by_name(&sim, job, "whatever").0, TaskState::Succeeded);
    assert_eq!(by_name(&sim, job, "handler").0, TaskState::Succeeded);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Failed));
    let whatever = sim.shadow.jobs[&job].spec.tasks.len() - 3;
    let started = sim.starts.iter().find(|s| s.1.index == whatever as u32);
    assert_eq!(
        started.map(|s| s.0),
        Some(1000),
        "after the last member ended"
    );
    sim.assert_log_matches_scheduler();
}

#[test]
fn a_crash_half_way_through_a_fan_in_restores_it_exactly() {
    let mut sim = Sim::new(3, Behaviour::fixed(10));
    let mut tasks: Vec<TaskSpec> = (0..20).map(|i| t(&format!("enc-{i:02}"))).collect();
    tasks.push(
        t("merge")
            .after("enc-*")
            .after_if("re:^enc-1", Condition::Any),
    );
    tasks.push(t("verify").after("merge"));
    let job = sim.submit(&JobSpec::new("j", tasks));
    let links = sim.sched.dependency_links(job);
    sim.run(7);
    sim.crash_and_restore();
    assert_eq!(
        sim.sched.dependency_links(job),
        links,
        "same fan-ins after a restore"
    );
    let why = sim
        .sched
        .why_waiting(TaskRef::new(job, 20), sim.now)
        .unwrap();
    assert!(
        why.to_string().contains("of 20 tasks matching enc-*"),
        "{why}"
    );
    sim.run(1000);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    let merge = sim.starts.iter().find(|s| s.1.index == 20).unwrap().0;
    let last_enc = sim
        .starts
        .iter()
        .filter(|s| s.1.index < 20)
        .map(|s| s.0)
        .max();
    assert!(
        Some(merge) >= last_enc.map(|t| t + 10),
        "merge after every enc"
    );
    sim.assert_log_matches_scheduler();
}

#[test]
fn an_expansion_fans_in_over_tasks_that_ended_and_tasks_it_adds() {
    let behaviour = Behaviour::custom(|spec, _| {
        if spec.name == "plan" {
            let mut tasks: Vec<TaskSpec> = (0..5).map(|i| t(&format!("enc-{i}"))).collect();
            tasks.push(t("join").after("enc-*"));
            Outcome {
                duration: 1,
                result: Ok(()),
                expansion: Some(tasks),
            }
        } else {
            ok(10)
        }
    });
    let mut sim = Sim::new(2, behaviour);
    let job = sim.submit(&JobSpec::new(
        "j",
        vec![t("enc-pre"), t("plan").after("enc-pre").expanding()],
    ));
    sim.run(1000);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    // plan: 1 member + 1; join: enc-* is enc-pre (ended before the
    // expansion) and enc-0..4, 6 members + 1.
    assert_eq!(sim.sched.dependency_links(job), Some(2 + 7));
    let join = sim.starts.iter().find(|s| s.1.index == 7).unwrap().0;
    let encs = sim.starts.iter().filter(|s| (2..7).contains(&s.1.index));
    assert!(encs.map(|s| s.0 + 10).all(|end| end <= join));
    sim.assert_log_matches_scheduler();
}

#[test]
fn retrying_a_failed_job_reopens_its_fan_ins() {
    let tries = Rc::new(RefCell::new(HashMap::<String, u32>::new()));
    let seen = tries.clone();
    let behaviour = Behaviour::custom(move |spec, _| {
        let mut seen = seen.borrow_mut();
        let n = seen.entry(spec.name.clone()).or_default();
        *n += 1;
        // w-1 fails the first time only.
        if spec.name == "w-1" && *n == 1 {
            fail(5)
        } else {
            ok(5)
        }
    });
    let mut sim = Sim::new(2, behaviour);
    let spec = JobSpec::new(
        "j",
        vec![
            t("w").with_array(ArraySpec::count(3)),
            t("merge").after("w"),
        ],
    );
    let job = sim.submit(&compile(&spec).unwrap());
    sim.run(100);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Failed));
    assert_eq!(by_name(&sim, job, "merge").0, TaskState::Skipped);
    sim.event(Event::RetryJob { job });
    sim.run(100);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    assert_eq!(by_name(&sim, job, "merge").0, TaskState::Succeeded);
    assert_eq!(tries.borrow()["w-0"], 1, "what succeeded is kept");
    assert_eq!(tries.borrow()["w-1"], 2);
    sim.assert_log_matches_scheduler();
}

#[test]
fn suspend_holds_and_cancel_ends_tasks_behind_a_fan_in() {
    let spec = JobSpec::new(
        "j",
        vec![
            t("w").with_array(ArraySpec::count(6)),
            t("merge").after("w"),
        ],
    );
    let spec = compile(&spec).unwrap();
    let mut sim = Sim::new(2, Behaviour::fixed(10));
    let job = sim.submit(&spec);
    sim.run(2);
    sim.event(Event::SuspendJob { job });
    let before = sim.starts.len();
    sim.run(100);
    assert_eq!(sim.starts.len(), before, "nothing starts while suspended");
    sim.event(Event::ResumeJob { job });
    sim.run(1000);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));

    let job = sim.submit(&spec);
    sim.run(2);
    sim.cancel(job);
    sim.run(100);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Cancelled));
    assert_eq!(by_name(&sim, job, "merge").0, TaskState::Cancelled);
    sim.assert_log_matches_scheduler();
}

/// A random DAG in groups `g0-*`, `g1-*`...: a task depends on earlier
/// tasks by name or on a whole earlier group by glob, with random conditions.
fn arb_grouped() -> impl Strategy<Value = (Vec<TaskSpec>, Vec<u8>)> {
    (4usize..30, 1usize..5).prop_flat_map(|(n, size)| {
        let deps = proptest::collection::vec(
            proptest::collection::vec((any::<u16>(), 0u8..6, any::<bool>()), 0..3),
            n,
        );
        let fates = proptest::collection::vec(any::<u8>(), n * 4);
        (deps, fates).prop_map(move |(deps, fates)| {
            let mut tasks = Vec::new();
            for (i, ds) in deps.into_iter().enumerate() {
                let group = i / size;
                let mut task = t(&format!("g{group}-{i}")).with_retries((i % 2) as u32, 3);
                for (p, c, glob) in ds {
                    let cond = match c {
                        0 => Condition::Any,
                        1 => Condition::Failure,
                        _ => Condition::Success,
                    };
                    if glob && group > 0 {
                        task = task.after_if(&format!("g{}-*", p as usize % group), cond);
                    } else if i > 0 {
                        let parent = p as usize % i;
                        task = task.after_if(&format!("g{}-{parent}", parent / size), cond);
                    }
                }
                tasks.push(task);
            }
            (tasks, fates)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Through fan-ins over globs, whatever fails and whenever the
    /// scheduler crashes: every task ends, no task starts before its
    /// dependencies allow (the harness checks globs at every start), the
    /// log agrees with the scheduler, and no fault is reported.
    #[test]
    fn fan_ins_over_globs_honour_their_conditions_through_crashes(
        (tasks, fates) in arb_grouped(),
        crash_after in proptest::option::of(1usize..20),
        cancel_at in proptest::option::of(0usize..15),
    ) {
        let fates = Rc::new(RefCell::new(fates.into_iter().cycle()));
        let f = fates.clone();
        let behaviour = Behaviour::custom(move |_, _| {
            let x = f.borrow_mut().next().unwrap_or(0);
            if x % 3 == 0 { fail(1 + u64::from(x % 5)) } else { ok(1 + u64::from(x % 11)) }
        });
        let mut sim = Sim::new(2, behaviour);
        let job = sim.submit(&JobSpec::new("j", tasks));
        if let Some(k) = crash_after {
            sim.run(k);
            sim.crash_and_restore();
        }
        if let Some(k) = cancel_at {
            sim.run(k);
            sim.cancel(job);
        }
        sim.run(100_000);
        let j = &sim.shadow.jobs[&job];
        prop_assert!(j.state.is_terminal(), "job ended: {:?}", j.state);
        prop_assert!(j.tasks.iter().all(|t| t.state.is_terminal()));
        if cancel_at.is_none() {
            let any_failed = j.tasks.iter().any(|t| t.state == TaskState::Failed);
            prop_assert_eq!(j.state == JobState::Failed, any_failed);
        }
        sim.assert_log_matches_scheduler();
    }
}
