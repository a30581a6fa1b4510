//! The pure scheduler, driven through the simulation harness.

#[path = "scheduler/control.rs"]
mod control;
#[path = "scheduler/fair.rs"]
mod fair;
#[path = "scheduler/fanin.rs"]
mod fanin;
#[path = "scheduler/faults.rs"]
mod faults;
#[path = "scheduler/jobdeps.rs"]
mod jobdeps;
#[path = "scheduler/makespan.rs"]
mod makespan;

use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use tessera_core::{Command, Event, Scheduler};
use tessera_testkit::{sim::Outcome, Behaviour, Sim};
use tessera_types::{
    Action, AttemptUsage, Condition, JobId, JobSpec, JobState, TaskRef, TaskSpec, TaskState,
};

fn t(name: &str) -> TaskSpec {
    TaskSpec::new(name, Action::Noop)
}

fn ok(ms: u64) -> Outcome {
    Outcome {
        duration: ms,
        result: Ok(()),
        expansion: None,
    }
}

fn fail(ms: u64) -> Outcome {
    Outcome {
        duration: ms,
        result: Err("exited with status 1".into()),
        expansion: None,
    }
}

/// Fails the named tasks' first `n` attempts.
fn flaky(names: &[(&str, u32)]) -> Behaviour {
    let map: HashMap<String, u32> = names.iter().map(|(n, k)| (n.to_string(), *k)).collect();
    Behaviour::custom(move |spec, attempt| {
        if map.get(&spec.name).is_some_and(|&k| attempt <= k) {
            fail(10)
        } else {
            ok(10)
        }
    })
}

fn state(sim: &Sim, job: JobId, index: u32) -> TaskState {
    sim.shadow.task_state(TaskRef::new(job, index)).unwrap()
}

#[test]
fn retries_back_off_and_then_succeed() {
    let mut sim = Sim::new(1, flaky(&[("a", 2)]));
    let job = sim.submit(&JobSpec::new(
        "j",
        vec![t("a").with_retries(2, 100), t("b").after("a")],
    ));
    sim.run(1000);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    let a_starts: Vec<u64> = sim
        .starts
        .iter()
        .filter(|s| s.1.index == 0)
        .map(|s| s.0)
        .collect();
    // 10 ms run, 100 ms backoff, 10 ms run, 200 ms backoff, 10 ms run.
    assert_eq!(a_starts, vec![0, 110, 320]);
    sim.assert_log_matches_scheduler();
}

#[test]
fn retries_run_out_and_dependents_are_skipped_but_handlers_run() {
    let mut sim = Sim::new(2, flaky(&[("a", 9)]));
    let job = sim.submit(&JobSpec::new(
        "j",
        vec![
            t("a").with_retries(1, 5),
            t("b").after("a"),
            t("c").after("b"),
            t("on-fail").after_if("a", Condition::Failure),
            t("always").after_if("a", Condition::Any),
        ],
    ));
    sim.run(1000);
    assert_eq!(state(&sim, job, 0), TaskState::Failed);
    assert_eq!(state(&sim, job, 1), TaskState::Skipped);
    assert_eq!(state(&sim, job, 2), TaskState::Skipped, "skips cascade");
    assert_eq!(state(&sim, job, 3), TaskState::Succeeded);
    assert_eq!(state(&sim, job, 4), TaskState::Succeeded);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Failed));
    assert_eq!(
        sim.starts.iter().filter(|s| s.1.index == 0).count(),
        2,
        "one retry"
    );
}

#[test]
fn a_failure_handler_is_skipped_when_its_parent_succeeds() {
    let mut sim = Sim::new(1, Behaviour::fixed(5));
    let job = sim.submit(&JobSpec::new(
        "j",
        vec![t("a"), t("h").after_if("a", Condition::Failure)],
    ));
    sim.run(100);
    assert_eq!(state(&sim, job, 1), TaskState::Skipped);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
}

#[test]
fn time_limits_kill_and_count_as_failures() {
    let mut sim = Sim::new(1, Behaviour::fixed(1_000));
    let job = sim.submit(&JobSpec::new(
        "j",
        vec![t("slow").with_time_limit_ms(50).with_retries(1, 10)],
    ));
    sim.run(100);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Failed));
    assert_eq!(
        sim.starts.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![0, 60]
    );
    assert_eq!(sim.now, 110);
}

#[test]
fn cancelling_a_job_kills_running_attempts_and_ends_the_rest() {
    let mut sim = Sim::new(2, Behaviour::fixed(1_000));
    let job = sim.submit(&JobSpec::new(
        "j",
        vec![t("a"), t("b"), t("c"), t("d").after("*")],
    ));
    // a and b run; c is queued; d waits.
    assert_eq!(sim.starts.len(), 2);
    sim.cancel(job);
    sim.run(100);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Cancelled));
    for i in 0..4 {
        assert_eq!(state(&sim, job, i), TaskState::Cancelled, "task {i}");
    }
    assert_eq!(sim.starts.len(), 2, "nothing new started after the cancel");
    assert_eq!(
        sim.now, 0,
        "kills end attempts at once, not after their run time"
    );
}

#[test]
fn slots_are_never_oversubscribed_and_priority_orders_the_queue() {
    let mut sim = Sim::new(2, Behaviour::fixed(10));
    let tasks: Vec<TaskSpec> = (0..6)
        .map(|i| t(&format!("c{i}")).with_priority(i))
        .collect();
    let job = sim.submit(&JobSpec::new("j", tasks));
    sim.run(100);
    assert_eq!(sim.peak_used, 2);
    let order: Vec<u32> = sim.starts.iter().map(|s| s.1.index).collect();
    assert_eq!(order, vec![5, 4, 3, 2, 1, 0], "highest priority first");
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    assert_eq!(sim.now, 30);
}

#[test]
fn an_expanding_task_adds_a_fan_out_and_fan_in() {
    let behaviour = Behaviour::custom(|spec, _| {
        if spec.name == "plan" {
            let mut tasks: Vec<TaskSpec> = (0..5)
                .map(|i| t(&format!("enc-{i}")).after("plan"))
                .collect();
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
    let mut sim = Sim::new(5, behaviour);
    let job = sim.submit(&JobSpec::new(
        "j",
        vec![t("probe"), t("plan").after("probe").expanding()],
    ));
    sim.run(1000);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    assert_eq!(sim.shadow.jobs[&job].tasks.len(), 8);
    // probe 10, plan 1, the five encodes in parallel 10, join 10.
    assert_eq!(sim.now, 31);
    sim.assert_log_matches_scheduler();
}

#[test]
fn an_invalid_expansion_fails_the_expanding_task() {
    let behaviour = Behaviour::custom(|spec, _| {
        if spec.name == "plan" {
            Outcome {
                duration: 1,
                result: Ok(()),
                expansion: Some(vec![t("x").after("nope-*")]),
            }
        } else {
            ok(1)
        }
    });
    let mut sim = Sim::new(1, behaviour);
    let job = sim.submit(&JobSpec::new("j", vec![t("plan").expanding()]));
    sim.run(100);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Failed));
}

#[test]
fn stale_reports_are_fenced_by_attempt_number() {
    let mut s = Scheduler::new(1);
    let job = JobId(1);
    let spec = JobSpec::new("j", vec![t("a").with_retries(3, 0)]);
    s.submit(job, &spec, 0).unwrap();
    let task = TaskRef::new(job, 0);
    let exited = |attempt, result| Event::Exited {
        task,
        attempt,
        result,
        usage: AttemptUsage::default(),
        expansion: None,
    };
    let step = s.handle(exited(1, Err("boom".into())), 1);
    assert!(step.commands.contains(&Command::Start {
        task,
        attempt: 2,
        spec: step_spec(&step),
        node: tessera_types::NodeId::LOCAL
    }));
    // A late success from attempt 1 must not end the task.
    let step = s.handle(exited(1, Ok(())), 2);
    assert!(step.is_empty(), "stale report ignored: {step:?}");
    assert_eq!(s.task_state(task), Some(TaskState::Running));
    s.handle(exited(2, Ok(())), 3);
    assert_eq!(s.job_state(job), Some(JobState::Succeeded));
}

fn step_spec(step: &tessera_core::Step) -> std::sync::Arc<TaskSpec> {
    step.commands
        .iter()
        .find_map(|c| match c {
            Command::Start { spec, .. } => Some(spec.clone()),
            _ => None,
        })
        .expect("a start")
}

#[test]
fn lost_attempts_are_retried_without_using_up_retries() {
    let mut s = Scheduler::new(1);
    let job = JobId(1);
    s.submit(job, &JobSpec::new("j", vec![t("a")]), 0).unwrap();
    let task = TaskRef::new(job, 0);
    for attempt in 1..=3 {
        let step = s.handle(
            Event::Lost {
                task,
                attempt,
                reason: "node gone".into(),
            },
            1,
        );
        assert_eq!(step.commands.len(), 1, "restarted after loss {attempt}");
    }
    assert_eq!(s.task_state(task), Some(TaskState::Running));
}

#[test]
fn a_crash_mid_job_is_recovered_from_the_change_log() {
    let mut sim = Sim::new(2, Behaviour::fixed(10));
    let tasks: Vec<TaskSpec> = (0..10)
        .map(|i| t(&format!("c{i}")))
        .chain([t("merge").after("c*")])
        .collect();
    let job = sim.submit(&JobSpec::new("j", tasks));
    sim.run(3); // a few chunks done, two running
    let done_before = (0..10)
        .filter(|&i| state(&sim, job, i) == TaskState::Succeeded)
        .count();
    assert!(done_before >= 2);
    sim.crash_and_restore();
    sim.run(1000);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    // Finished work is not redone: 11 tasks, plus one restart for each of the
    // (at most two) attempts that were running at the crash.
    assert!(sim.starts.len() <= 13, "{} starts", sim.starts.len());
    sim.assert_log_matches_scheduler();
}

#[test]
fn specs_are_validated_before_anything_is_committed() {
    let s = Scheduler::new(2);
    let err = s
        .validate(&JobSpec::new("j", vec![t("a").after("b")]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "task \"a\": dependency \"b\" matches no task"
    );
    assert!(s.validate(&JobSpec::new("j", vec![])).is_err());
}

/// A random DAG: each task may depend on earlier ones (so it is acyclic),
/// with random conditions and retry counts.
fn arb_job() -> impl Strategy<Value = (Vec<TaskSpec>, Vec<u8>)> {
    (2usize..25).prop_flat_map(|n| {
        let deps =
            proptest::collection::vec(proptest::collection::vec((any::<u16>(), 0u8..6), 0..3), n);
        let fates = proptest::collection::vec(any::<u8>(), n * 4);
        (deps, fates).prop_map(move |(deps, fates)| {
            let mut tasks = Vec::new();
            for (i, ds) in deps.into_iter().enumerate() {
                let mut task = t(&format!("t{i}"))
                    .with_retries((i % 3) as u32, 7)
                    .with_priority((i % 5) as i32);
                if i > 0 {
                    for (p, c) in ds {
                        let parent = p as usize % i;
                        let cond = match c {
                            0 => Condition::Any,
                            1 => Condition::Failure,
                            _ => Condition::Success,
                        };
                        task = task.after_if(&format!("t{parent}"), cond);
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

    /// Whatever fails and whenever the scheduler crashes: every task ends,
    /// slots are respected, dependencies are honoured (checked at every start
    /// by the harness), the change log agrees with the scheduler, and the job
    /// state follows from the task states.
    #[test]
    fn every_job_ends_consistently(
        (tasks, fates) in arb_job(),
        slots in 1u32..4,
        crash_after in proptest::option::of(1usize..20),
    ) {
        let fates = Rc::new(RefCell::new(fates.into_iter().cycle()));
        let f = fates.clone();
        let behaviour = Behaviour::custom(move |_, _| {
            let x = f.borrow_mut().next().unwrap_or(0);
            if x % 4 == 0 { fail(1 + u64::from(x % 7)) } else { ok(1 + u64::from(x % 13)) }
        });
        let mut sim = Sim::new(slots, behaviour);
        let job = sim.submit(&JobSpec::new("j", tasks.clone()));
        if let Some(k) = crash_after {
            sim.run(k);
            sim.crash_and_restore();
        }
        sim.run(100_000);
        let j = &sim.shadow.jobs[&job];
        prop_assert!(j.state.is_terminal(), "job ended: {:?}", j.state);
        prop_assert!(j.tasks.iter().all(|t| t.state.is_terminal()));
        let any_failed = j.tasks.iter().any(|t| t.state == TaskState::Failed);
        prop_assert_eq!(j.state == JobState::Failed, any_failed);
        for (i, snap) in j.tasks.iter().enumerate() {
            prop_assert!(snap.failures <= tasks[i].retry.retries + 1);
        }
        prop_assert!(sim.peak_used <= slots);
        sim.assert_log_matches_scheduler();
    }

    /// Cancelling at any moment ends the job cancelled with nothing running.
    #[test]
    fn cancel_at_any_moment_ends_everything((tasks, _) in arb_job(), at in 0usize..10) {
        let mut sim = Sim::new(2, Behaviour::fixed(5));
        let job = sim.submit(&JobSpec::new("j", tasks));
        sim.run(at);
        let before = sim.shadow.job_state(job).unwrap();
        sim.cancel(job);
        sim.run(10_000);
        let after = sim.shadow.job_state(job).unwrap();
        if before.is_terminal() {
            prop_assert_eq!(after, before);
        } else {
            prop_assert_eq!(after, JobState::Cancelled);
        }
        prop_assert!(sim.shadow.jobs[&job].tasks.iter().all(|t| t.state.is_terminal()));
    }
}
