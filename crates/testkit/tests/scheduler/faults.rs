//! Losses, numbers at the edge of u64, and the scheduler's own bugs.

use super::t;
use tessera_core::{Command, Event, Quota, Scheduler, Step, WaitReason, MAX_LOST};
use tessera_testkit::Shadow;
use tessera_types::{
    AttemptUsage, Change, JobId, JobSpec, JobState, ProjectId, TaskRef, TaskSpec, TaskState,
};

fn lost(task: TaskRef, attempt: u32) -> Event {
    Event::Lost {
        task,
        attempt,
        reason: "node gone".into(),
    }
}

fn exited(task: TaskRef, attempt: u32, result: Result<(), String>) -> Event {
    Event::Exited {
        task,
        attempt,
        result,
        usage: AttemptUsage::default(),
        expansion: None,
    }
}

fn started(step: &Step) -> Vec<(TaskRef, u32)> {
    step.commands
        .iter()
        .filter_map(|c| match c {
            Command::Start { task, attempt, .. } => Some((*task, *attempt)),
            _ => None,
        })
        .collect()
}

fn reason_of(step: &Step, task: TaskRef) -> Option<String> {
    step.changes.iter().rev().find_map(|c| match c {
        Change::Task {
            task: t, reason, ..
        } if *t == task => reason.clone(),
        _ => None,
    })
}

#[test]
fn a_task_lost_max_lost_times_fails_saying_so() {
    let mut s = Scheduler::new(1);
    let job = JobId(1);
    s.submit(job, &JobSpec::new("j", vec![t("a")]), 0).unwrap();
    let task = TaskRef::new(job, 0);
    for attempt in 1..MAX_LOST {
        let step = s.handle(lost(task, attempt), 1);
        assert_eq!(started(&step), [(task, attempt + 1)], "loss {attempt}");
    }
    let step = s.handle(lost(task, MAX_LOST), 2);
    assert!(started(&step).is_empty());
    assert_eq!(s.task_state(task), Some(TaskState::Failed));
    assert_eq!(s.job_state(job), Some(JobState::Failed));
    assert_eq!(
        reason_of(&step, task).as_deref(),
        Some("lost: node gone (10 attempts lost; giving up)")
    );
}

#[test]
fn failures_do_not_count_as_losses() {
    let mut s = Scheduler::new(1);
    let job = JobId(1);
    let spec = JobSpec::new("j", vec![t("a").with_retries(40, 0)]);
    s.submit(job, &spec, 0).unwrap();
    let task = TaskRef::new(job, 0);
    // 30 failures and 9 losses, interleaved: still going.
    let mut attempt = 1;
    for i in 0..39 {
        let event = if i % 4 == 3 {
            lost(task, attempt)
        } else {
            exited(task, attempt, Err("exit 1".into()))
        };
        let step = s.handle(event, 10 + i);
        assert_eq!(started(&step).len(), 1, "event {i}");
        attempt += 1;
    }
    assert_eq!(s.task_state(task), Some(TaskState::Running));
    // The tenth loss ends it.
    let step = s.handle(lost(task, attempt), 100);
    assert_eq!(s.task_state(task), Some(TaskState::Failed));
    assert!(reason_of(&step, task).unwrap().contains("10 attempts lost"));
}

#[test]
fn a_retried_job_does_not_count_its_earlier_failures_as_losses() {
    let mut s = Scheduler::new(1);
    let job = JobId(1);
    let spec = JobSpec::new("j", vec![t("a").with_retries(12, 0)]);
    s.submit(job, &spec, 0).unwrap();
    let task = TaskRef::new(job, 0);
    for attempt in 1..=13 {
        s.handle(exited(task, attempt, Err("exit 1".into())), 1);
    }
    assert_eq!(s.job_state(job), Some(JobState::Failed));
    s.handle(Event::RetryJob { job }, 2);
    assert_eq!(s.task_state(task), Some(TaskState::Running));
    // 13 attempts, 0 failures since the retry: one loss is one loss.
    let step = s.handle(lost(task, 14), 3);
    assert_eq!(started(&step), [(task, 15)]);
}

#[test]
fn a_backoff_near_u64_max_saturates_instead_of_wrapping() {
    let mut s = Scheduler::new(1);
    let job = JobId(1);
    // Submitted as compiled (compile refuses backoffs over a day): a job
    // stored before that check, restored, may still hold one.
    let mut task = t("a").with_retries(1, 0);
    task.retry.backoff_ms = u64::MAX - 5;
    task.retry.backoff_max_ms = u64::MAX;
    s.submit(job, &JobSpec::new("j", vec![task]), 1_000)
        .unwrap();
    let a = TaskRef::new(job, 0);
    let step = s.handle(exited(a, 1, Err("exit 1".into())), 2_000);
    assert!(started(&step).is_empty(), "wrapped into the past: {step:?}");
    assert_eq!(
        s.why_waiting(a, 3_000),
        Some(WaitReason::BackingOff { until: u64::MAX })
    );
    assert_eq!(s.next_wakeup(), Some(u64::MAX));
    assert!(started(&s.tick(u64::MAX - 1)).is_empty());
}

#[test]
fn time_limits_and_pauses_near_u64_max_saturate() {
    let mut s = Scheduler::new(1);
    let job = JobId(1);
    let spec = JobSpec::new("j", vec![t("a").with_time_limit_ms(u64::MAX - 1)]);
    s.submit(job, &spec, 10).unwrap();
    s.handle(Event::SuspendJob { job }, 20);
    s.handle(Event::ResumeJob { job }, u64::MAX - 2);
    let step = s.tick(u64::MAX - 1);
    assert!(step.commands.is_empty(), "no kill: {step:?}");
    assert_eq!(s.task_state(TaskRef::new(job, 0)), Some(TaskState::Running));
}

#[test]
fn memory_and_usage_near_u64_max_saturate_in_the_accounts() {
    let mut s = Scheduler::new(4);
    let p = Some(ProjectId(1));
    s.set_quota(
        ProjectId(1),
        Quota {
            max_memory_mb: Some(u64::MAX),
            cpu_ms_per_window: Some(u64::MAX),
            ..Quota::default()
        },
    );
    let big = |name: &str| {
        let mut task: TaskSpec = t(name);
        task.resources.memory_mb = u64::MAX - 1;
        task
    };
    let job = JobId(1);
    let step = s
        .submit_in(job, p, &JobSpec::new("j", vec![big("a"), big("b")]), 0)
        .unwrap();
    assert_eq!(started(&step).len(), 2);
    for i in 0..2 {
        let usage = AttemptUsage {
            cpu_ms: u64::MAX - 1,
            ..AttemptUsage::default()
        };
        let task = TaskRef::new(job, i);
        let end = Event::Exited {
            task,
            attempt: 1,
            result: Ok(()),
            usage,
            expansion: None,
        };
        s.handle(end, 10);
    }
    assert_eq!(s.job_state(job), Some(JobState::Succeeded));
    assert_eq!(s.project_usage(p, 10).window_cpu_ms, u64::MAX);
}

#[test]
fn an_illegal_move_stops_its_job_which_fails_with_the_reason() {
    let mut s = Scheduler::new(2);
    let mut shadow = Shadow::default();
    let (job, other) = (JobId(1), JobId(2));
    let spec = JobSpec::new("j", vec![t("a"), t("b").after("a"), t("c").after("a")]);
    for (id, spec) in [(job, &spec), (other, &JobSpec::new("o", vec![t("x")]))] {
        shadow.create(id, spec);
        shadow.apply(&s.submit(id, spec, 0).unwrap().changes);
    }
    let (a, b, c) = (
        TaskRef::new(job, 0),
        TaskRef::new(job, 1),
        TaskRef::new(job, 2),
    );
    // b waits for a: waiting -> running is refused.
    let step = s.force_move_for_tests(b, TaskState::Running, 5);
    shadow.apply(&step.changes); // panics on an illegal transition recorded
    let fault = step.commands.iter().find_map(|c| match c {
        Command::Fault { job: j, message } if *j == job => Some(message.clone()),
        _ => None,
    });
    let fault = fault.expect("the driver is told to log it");
    assert!(
        fault.contains("task \"b\" (1.1): illegal transition from waiting to running"),
        "{fault}"
    );
    assert!(step.commands.contains(&Command::Kill {
        task: a,
        attempt: 1
    }));
    assert_eq!(reason_of(&step, b), Some(fault.clone()));
    assert_eq!(reason_of(&step, c), Some(fault));
    // The killed attempt's end closes the job: failed, not cancelled.
    let step = s.handle(exited(a, 1, Err("killed by signal 9".into())), 6);
    shadow.apply(&step.changes);
    assert_eq!(shadow.job_state(job), Some(JobState::Failed));
    assert_eq!(shadow.task_state(a), Some(TaskState::Cancelled));
    // Nothing else was touched; the job may be retried and then succeeds.
    assert_eq!(
        s.task_state(TaskRef::new(other, 0)),
        Some(TaskState::Running)
    );
    let mut step = s.handle(Event::RetryJob { job }, 7);
    for at in 8..20 {
        shadow.apply(&step.changes);
        let Some(&(task, attempt)) = started(&step).first() else {
            break;
        };
        step = s.handle(exited(task, attempt, Ok(())), at);
    }
    assert_eq!(shadow.job_state(job), Some(JobState::Succeeded));
}
