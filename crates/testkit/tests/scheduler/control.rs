//! Job control: suspend and resume, retry, priority changes.

use std::collections::HashMap;
use tessera_core::{Command, ControlError, Event};
use tessera_testkit::{sim::Outcome, Behaviour, Sim};
use tessera_types::{Action, JobId, JobSpec, JobState, TaskRef, TaskSpec, TaskState};

fn t(name: &str) -> TaskSpec {
    TaskSpec::new(name, Action::Noop)
}

fn independent(n: usize) -> JobSpec {
    JobSpec::new("j", (0..n).map(|i| t(&format!("t{i}"))).collect())
}

fn starts_of(sim: &Sim, job: JobId) -> Vec<(u64, u32)> {
    sim.starts
        .iter()
        .filter(|s| s.1.job == job)
        .map(|s| (s.0, s.1.index))
        .collect()
}

#[test]
fn suspend_stops_new_starts_and_stops_running_attempts_until_resumed() {
    let mut sim = Sim::new(2, Behaviour::fixed(100));
    let job = sim.submit(&independent(4));
    assert_eq!(sim.starts.len(), 2);
    sim.now = 40;
    let step = sim.event(Event::SuspendJob { job });
    let suspended: Vec<&Command> = step
        .commands
        .iter()
        .filter(|c| matches!(c, Command::Suspend { .. }))
        .collect();
    assert_eq!(suspended.len(), 2, "{step:?}");
    assert_eq!(sim.stopped(), 2);
    assert_eq!(sim.sched.job_suspended(job), Some(true));
    assert!(sim.shadow.jobs[&job].suspended);
    assert_eq!(
        sim.sched.check(&Event::SuspendJob { job }),
        Err(ControlError::AlreadySuspended(job))
    );
    // Nothing happens while it is suspended: no exits, no starts.
    sim.run(1000);
    assert_eq!(sim.starts.len(), 2);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Running));
    let why = sim
        .sched
        .why_waiting(TaskRef::new(job, 2), sim.now)
        .unwrap();
    assert_eq!(why.to_string(), "its job is suspended");

    sim.now = 1_000;
    let step = sim.event(Event::ResumeJob { job });
    let resumed = step
        .commands
        .iter()
        .filter(|c| matches!(c, Command::Resume { .. }))
        .count();
    assert_eq!(resumed, 2);
    assert_eq!(
        sim.sched.check(&Event::ResumeJob { job }),
        Err(ControlError::NotSuspended(job))
    );
    sim.run(1000);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    // The stopped attempts needed their last 60 ms after the resume; the
    // other two started when they ended.
    assert_eq!(
        starts_of(&sim, job),
        vec![(0, 0), (0, 1), (1_060, 2), (1_060, 3)]
    );
    sim.assert_log_matches_scheduler();
}

#[test]
fn time_limits_do_not_count_while_suspended() {
    let mut sim = Sim::new(1, Behaviour::fixed(100));
    let job = sim.submit(&JobSpec::new("j", vec![t("a").with_time_limit_ms(150)]));
    sim.now = 50;
    sim.event(Event::SuspendJob { job });
    sim.run(100);
    sim.now = 5_000;
    sim.event(Event::ResumeJob { job });
    sim.run(100);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    assert_eq!(sim.sched.job_suspended(job), Some(false));
}

#[test]
fn cancelling_a_suspended_job_kills_its_stopped_attempts() {
    let mut sim = Sim::new(2, Behaviour::fixed(100));
    let job = sim.submit(&independent(3));
    sim.event(Event::SuspendJob { job });
    sim.cancel(job);
    sim.run(100);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Cancelled));
    assert_eq!(sim.stopped(), 0);
    assert!(
        !sim.shadow.jobs[&job].suspended,
        "an ended job is not suspended"
    );
}

#[test]
fn retry_brings_a_failed_job_back_and_keeps_what_succeeded() {
    // "a" fails its first attempt (no retries), then succeeds.
    let behaviour = Behaviour::custom(|spec, attempt| Outcome {
        duration: 10,
        result: if spec.name == "a" && attempt == 1 {
            Err("exited with status 1".into())
        } else {
            Ok(())
        },
        expansion: None,
    });
    let mut sim = Sim::new(2, behaviour);
    let job = sim.submit(&JobSpec::new("j", vec![t("a"), t("b").after("a"), t("c")]));
    sim.run(1000);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Failed));
    assert_eq!(
        sim.shadow.task_state(TaskRef::new(job, 1)),
        Some(TaskState::Skipped)
    );
    let running = Event::SuspendJob { job };
    assert!(matches!(
        sim.sched.check(&running),
        Err(ControlError::Ended { .. })
    ));

    sim.event(Event::RetryJob { job });
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Running));
    assert!(matches!(
        sim.sched.check(&Event::RetryJob { job }),
        Err(ControlError::NotRetryable { .. })
    ));
    sim.run(1000);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    let mut per_task: HashMap<u32, usize> = HashMap::new();
    for (_, i) in starts_of(&sim, job) {
        *per_task.entry(i).or_default() += 1;
    }
    assert_eq!(per_task[&0], 2, "a ran again");
    assert_eq!(per_task[&1], 1, "b ran once, after the retry");
    assert_eq!(per_task[&2], 1, "c had succeeded and was kept");
    assert!(matches!(
        sim.sched.check(&Event::RetryJob { job }),
        Err(ControlError::NotRetryable {
            state: JobState::Succeeded,
            ..
        })
    ));
    sim.assert_log_matches_scheduler();
}

#[test]
fn retry_of_a_cancelled_job_runs_its_cancelled_tasks() {
    let mut sim = Sim::new(1, Behaviour::fixed(10));
    let job = sim.submit(&JobSpec::new("j", vec![t("a"), t("b").after("a")]));
    sim.cancel(job);
    sim.run(100);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Cancelled));
    sim.event(Event::RetryJob { job });
    sim.run(100);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    sim.assert_log_matches_scheduler();
}

#[test]
fn a_priority_change_reorders_the_queue() {
    let mut sim = Sim::new(1, Behaviour::fixed(10));
    let first = sim.submit(&independent(3));
    let second = sim.submit(&independent(1));
    // Without the change, the older job's tasks would all go first.
    sim.event(Event::SetPriority {
        job: second,
        priority: 10,
    });
    assert_eq!(sim.shadow.jobs[&second].priority, 10);
    sim.run(100);
    let order: Vec<(JobId, u32)> = sim.starts.iter().map(|s| (s.1.job, s.1.index)).collect();
    assert_eq!(order, vec![(first, 0), (second, 0), (first, 1), (first, 2)]);
}

#[test]
fn a_crash_while_suspended_restores_the_flag_and_the_priority() {
    let mut sim = Sim::new(2, Behaviour::fixed(100));
    let job = sim.submit(&independent(3));
    sim.event(Event::SetPriority { job, priority: 5 });
    sim.event(Event::SuspendJob { job });
    sim.crash_and_restore();
    assert_eq!(sim.sched.job_suspended(job), Some(true));
    assert_eq!(sim.sched.job_priority(job), Some(5));
    sim.run(100);
    assert_eq!(sim.starts.len(), 2, "nothing starts after the restore");
    sim.event(Event::ResumeJob { job });
    sim.run(100);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    sim.assert_log_matches_scheduler();
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(64))]

    /// Suspend, resume, priority changes and cancels at random moments never
    /// start anything of a suspended job (the harness asserts it), never
    /// oversubscribe, and once everything is resumed every job ends with the
    /// log agreeing with the scheduler.
    #[test]
    fn control_events_at_random_moments_keep_the_invariants(
        ops in proptest::collection::vec((0u64..400, 1i64..=3, 0u8..5), 0..30),
    ) {
        let mut sim = Sim::new(2, Behaviour::fixed(50));
        let jobs: Vec<JobId> = (0..3)
            .map(|_| sim.submit(&JobSpec::new("j", vec![t("a"), t("b").after("a"), t("c")])))
            .collect();
        let mut ops = ops;
        ops.sort_by_key(|o| o.0);
        for (at, job, op) in ops {
            // Let a few attempts end between events.
            sim.run((at % 3) as usize);
            let job = JobId(job);
            let event = match op {
                0 | 1 => Event::SuspendJob { job },
                2 => Event::ResumeJob { job },
                3 => Event::SetPriority { job, priority: at as i32 % 7 },
                _ => Event::CancelJob { job },
            };
            sim.event(event);
            sim.tick();
        }
        for &job in &jobs {
            sim.event(Event::ResumeJob { job });
        }
        sim.run(10_000);
        for &job in &jobs {
            proptest::prop_assert!(sim.shadow.job_state(job).unwrap().is_terminal());
            proptest::prop_assert!(!sim.shadow.jobs[&job].suspended);
        }
        proptest::prop_assert_eq!(sim.stopped(), 0);
        sim.assert_log_matches_scheduler();
    }
}
