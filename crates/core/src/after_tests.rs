use super::*;
use crate::{Command, ControlError, Event};
use tessera_types::{Action, AttemptUsage, Change, JobSnapshot, JobSpec, TaskSnapshot, TaskSpec};

/// A one-task job, waiting for `after` (resolved by hand).
fn job(name: &str, after: Vec<JobDependency>) -> JobSpec {
    let mut spec = JobSpec::new(name, vec![TaskSpec::new("t", Action::Noop)]);
    spec.after = after;
    spec
}

fn on(ids: &[i64], condition: Condition) -> JobDependency {
    let mut d = JobDependency::on_id(JobId(ids[0])).with_condition(condition);
    d.resolved = ids.iter().map(|&i| JobId(i)).collect();
    d
}

fn on_name(selector: &str, ids: &[i64]) -> JobDependency {
    let mut d = JobDependency::on_name(selector).unwrap();
    d.resolved = ids.iter().map(|&i| JobId(i)).collect();
    d
}

/// Task 0 of `job`: the attempt the step started, if it did.
fn started(step: &Step, job: i64) -> Option<u32> {
    step.commands.iter().find_map(|c| match c {
        Command::Start { task, attempt, .. } if task.job == JobId(job) => Some(*attempt),
        _ => None,
    })
}

fn exit(s: &mut Scheduler, job: i64, ok: bool, now: u64) -> Step {
    let task = TaskRef::new(JobId(job), 0);
    let attempt = s.task(task).expect("task").attempt;
    let result = if ok { Ok(()) } else { Err("exit 1".into()) };
    s.handle(
        Event::Exited {
            task,
            attempt,
            result,
            usage: AttemptUsage::default(),
            expansion: None,
        },
        now,
    )
}

fn reason(step: &Step, job: i64) -> Option<String> {
    step.changes.iter().find_map(|c| match c {
        Change::Task { task, reason, .. } if task.job == JobId(job) => reason.clone(),
        _ => None,
    })
}

#[test]
fn a_child_waits_for_its_parent_and_starts_when_it_succeeds() {
    let mut s = Scheduler::new(4);
    let step = s.submit(JobId(1), &job("split", vec![]), 0).unwrap();
    assert_eq!(started(&step, 1), Some(1));
    let step = s
        .submit(
            JobId(2),
            &job("merge", vec![on(&[1], Condition::Success)]),
            0,
        )
        .unwrap();
    assert_eq!(started(&step, 2), None, "nothing of it starts");
    let why = s.why_waiting(TaskRef::new(JobId(2), 0), 0).unwrap();
    assert_eq!(why.to_string(), "waiting for job 1 (split) to succeed");
    assert_eq!(s.why_job_waiting(JobId(2)), Some(why));
    let step = exit(&mut s, 1, true, 5);
    assert_eq!(started(&step, 2), Some(1), "released in the parent's step");
    assert_eq!(s.why_job_waiting(JobId(2)), None);
    assert!(s.job_waiters.is_empty(), "the index is empty once released");
}

#[test]
fn a_rejected_child_is_skipped_with_a_reason_and_skips_cascade() {
    let mut s = Scheduler::new(4);
    s.submit(JobId(1), &job("split", vec![]), 0).unwrap();
    s.submit(
        JobId(2),
        &job("encode", vec![on(&[1], Condition::Success)]),
        0,
    )
    .unwrap();
    s.submit(
        JobId(3),
        &job("merge", vec![on(&[2], Condition::Success)]),
        0,
    )
    .unwrap();
    s.submit(JobId(4), &job("report", vec![on(&[2], Condition::Any)]), 0)
        .unwrap();
    s.submit(
        JobId(5),
        &job("alarm", vec![on(&[2], Condition::Failure)]),
        0,
    )
    .unwrap();
    let step = exit(&mut s, 1, false, 5);
    assert_eq!(s.job_state(JobId(2)), Some(JobState::Cancelled));
    assert_eq!(
        reason(&step, 2).as_deref(),
        Some("job 1 (split) ended failed and this job waits for it to succeed")
    );
    assert_eq!(
        s.task_state(TaskRef::new(JobId(2), 0)),
        Some(TaskState::Skipped)
    );
    assert_eq!(s.job_state(JobId(3)), Some(JobState::Cancelled), "cascade");
    assert_eq!(
        reason(&step, 3).as_deref(),
        Some("job 2 (encode) ended cancelled and this job waits for it to succeed")
    );
    assert_eq!(
        s.job_state(JobId(5)),
        Some(JobState::Cancelled),
        "not failed"
    );
    assert_eq!(started(&step, 4), Some(1), "`any` accepts a skipped parent");
    assert!(s.job_waiters.is_empty());
}

#[test]
fn parents_that_ended_before_count_at_once() {
    let mut s = Scheduler::new(4);
    s.submit(JobId(1), &job("a", vec![]), 0).unwrap();
    exit(&mut s, 1, true, 1);
    // Job 9 ended before this scheduler started: the driver tells it.
    assert_eq!(
        s.unknown_parents(&[on(&[1, 9], Condition::Success)]),
        vec![JobId(9)]
    );
    let err = s
        .submit(
            JobId(10),
            &job("b", vec![on(&[1, 9], Condition::Success)]),
            2,
        )
        .unwrap_err();
    assert_eq!(
        err,
        SpecError::UnknownParent {
            selector: "1".into(),
            job: JobId(9)
        }
    );
    assert!(
        s.job_state(JobId(10)).is_none(),
        "nothing held of a refusal"
    );
    s.set_ended(JobId(9), "old", JobState::Failed);
    let step = s
        .submit(JobId(10), &job("b", vec![on(&[1, 9], Condition::Any)]), 2)
        .unwrap();
    assert_eq!(started(&step, 10), Some(1));
    let step = s
        .submit(JobId(11), &job("c", vec![on(&[9], Condition::Success)]), 2)
        .unwrap();
    assert_eq!(s.job_state(JobId(11)), Some(JobState::Cancelled));
    assert_eq!(
        reason(&step, 11).as_deref(),
        Some("job 9 (old) ended failed and this job waits for it to succeed")
    );
}

#[test]
fn unresolved_self_naming_and_oversized_dependencies_are_refused() {
    let mut s = Scheduler::new(1);
    s.submit(JobId(1), &job("a", vec![]), 0).unwrap();
    let unresolved = JobDependency::on_name("a").unwrap();
    let err = s.submit(JobId(2), &job("b", vec![unresolved]), 0);
    assert_eq!(
        err.unwrap_err(),
        SpecError::Unresolved {
            selector: "a".into()
        }
    );
    s.set_ended(JobId(3), "x", JobState::Succeeded);
    let err = s.submit(JobId(3), &job("c", vec![on(&[3], Condition::Any)]), 0);
    assert_eq!(err.unwrap_err(), SpecError::JobCycle(JobId(3)));
    let many: Vec<i64> = (1..=MAX_JOB_PARENTS as i64 + 1).collect();
    let err = s.check_after(&[on(&many, Condition::Any)]).unwrap_err();
    assert!(
        err.to_string()
            .contains("match 100001 jobs; at most 100000"),
        "{err}"
    );
    let deps = vec![on(&[1], Condition::Any); MAX_JOB_DEPS + 1];
    let err = s.check_after(&deps).unwrap_err();
    assert!(err.to_string().contains("at most 10000"), "{err}");
}

#[test]
fn a_fan_in_over_a_glob_says_how_many_it_waits_for() {
    let mut s = Scheduler::new(1);
    for (id, name) in [(1, "encode-1"), (2, "encode-2"), (3, "encode-3")] {
        s.submit(JobId(id), &job(name, vec![]), 0).unwrap();
    }
    s.submit(
        JobId(4),
        &job("merge", vec![on_name("encode-*", &[1, 2, 3])]),
        0,
    )
    .unwrap();
    exit(&mut s, 1, true, 1);
    let why = s.why_job_waiting(JobId(4)).unwrap().to_string();
    assert_eq!(
        why,
        "waiting for 2 of 3 jobs matching encode-* to succeed: 2 (encode-2), 3 (encode-3)"
    );
    exit(&mut s, 2, true, 2);
    let step = exit(&mut s, 3, true, 3);
    assert_eq!(started(&step, 4), Some(1));
}

#[test]
fn retries_of_children_recheck_and_retries_of_parents_reopen() {
    let mut s = Scheduler::new(1);
    s.submit(JobId(1), &job("a", vec![]), 0).unwrap();
    s.submit(JobId(2), &job("b", vec![]), 0).unwrap();
    s.submit(JobId(3), &job("c", vec![on(&[1], Condition::Success)]), 0)
        .unwrap();
    let dep_any = on(&[1], Condition::Any);
    let dep_b = on(&[2], Condition::Success);
    s.submit(JobId(4), &job("d", vec![dep_any, dep_b]), 0)
        .unwrap();
    exit(&mut s, 1, false, 1);
    assert_eq!(s.job_state(JobId(3)), Some(JobState::Cancelled));
    // c cannot be retried while a's failure rejects it.
    let err = s.check(&Event::RetryJob { job: JobId(3) }).unwrap_err();
    assert_eq!(
        err,
        ControlError::ParentRejects {
            job: JobId(3),
            why: "job 1 (a) ended failed and this job waits for it to succeed".into()
        }
    );
    // d still waits for b; retrying a re-opens d's fan-in over a.
    s.handle(Event::RetryJob { job: JobId(1) }, 2);
    let step = exit(&mut s, 2, true, 3);
    assert_eq!(started(&step, 4), None, "d waits for a's new end");
    assert_eq!(
        s.why_job_waiting(JobId(4)).unwrap().to_string(),
        "waiting for job 1 (a) to end"
    );
    let step = exit(&mut s, 1, true, 4);
    assert_eq!(started(&step, 4), Some(1));
    assert_eq!(
        s.job_state(JobId(3)),
        Some(JobState::Cancelled),
        "stays skipped"
    );
    // a succeeded now: c's retry releases it (it starts once d frees the slot).
    let step = s.handle(Event::RetryJob { job: JobId(3) }, 5);
    assert_eq!(
        s.task_state(TaskRef::new(JobId(3), 0)),
        Some(TaskState::Ready)
    );
    assert!(step.changes.contains(&Change::JobState {
        job: JobId(3),
        state: JobState::Running
    }));
    let step = exit(&mut s, 4, true, 6);
    assert_eq!(started(&step, 3), Some(1));
}

/// A job as the store holds it: one task in `state`.
fn snapshot(id: i64, name: &str, after: Vec<JobDependency>, state: TaskState) -> JobSnapshot {
    JobSnapshot {
        id: JobId(id),
        spec: job(name, after),
        state: JobState::Pending,
        tasks: vec![TaskSnapshot {
            state,
            attempt: 0,
            failures: 0,
            not_before: 0,
        }],
        batch_starts: vec![0],
        project: None,
        suspended: false,
        priority: 0,
    }
}

#[test]
fn a_restored_child_waits_again_and_hears_of_parents_that_ended_meanwhile() {
    let mut s = Scheduler::new(4);
    s.set_ended(JobId(1), "a", JobState::Succeeded);
    s.set_ended(JobId(2), "b", JobState::Failed);
    let waits = snapshot(
        3,
        "c",
        vec![on(&[1], Condition::Success)],
        TaskState::Waiting,
    );
    let step = s.restore(&waits, &[0], 10).unwrap();
    assert_eq!(started(&step, 3), Some(1), "its parent succeeded meanwhile");
    let skip = snapshot(
        4,
        "d",
        vec![on(&[2], Condition::Success)],
        TaskState::Waiting,
    );
    s.restore(&skip, &[0], 10).unwrap();
    assert_eq!(s.job_state(JobId(4)), Some(JobState::Cancelled));
    // Released before the restart (its task was ready): not held back again.
    let ran = snapshot(5, "e", vec![on(&[6], Condition::Success)], TaskState::Ready);
    let step = s.restore(&ran, &[0], 10).unwrap();
    assert_eq!(started(&step, 5), Some(1));
    // A parent restored after its child: the child waits for it.
    let child = snapshot(
        8,
        "g",
        vec![on(&[7], Condition::Success)],
        TaskState::Waiting,
    );
    s.restore(&child, &[0], 10).unwrap();
    let parent = snapshot(7, "f", vec![], TaskState::Waiting);
    s.restore(&parent, &[0], 10).unwrap();
    assert_eq!(
        s.why_job_waiting(JobId(8)).unwrap().to_string(),
        "waiting for job 7 (f) to succeed"
    );
    let step = exit(&mut s, 7, true, 11);
    assert_eq!(started(&step, 8), Some(1));
}

#[test]
fn names_globs_and_regexes_match_jobs() {
    let jobs: Vec<(JobId, String)> = [(1, "split"), (2, "encode1"), (3, "encode2"), (4, "merge")]
        .iter()
        .map(|&(i, n)| (JobId(i), n.to_string()))
        .collect();
    let sels: Vec<Selector> = ["split", "encode*", "re:^(split|merge)$", "nothing*"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let refs: Vec<&Selector> = sels.iter().collect();
    let got = match_jobs(&refs, &jobs).unwrap();
    let ids = |v: &[i64]| v.iter().map(|&i| JobId(i)).collect::<Vec<_>>();
    assert_eq!(got, vec![ids(&[1]), ids(&[2, 3]), ids(&[1, 4]), ids(&[])]);
    let bad: Selector = "re:(".parse().unwrap();
    let err = match_jobs(&[&bad], &jobs).unwrap_err();
    assert!(
        matches!(&err, SpecError::BadJobRegex { selector, .. } if selector == "re:("),
        "{err:?}"
    );
    let many: Vec<Selector> = (0..=MAX_JOB_PATTERNS)
        .map(|i| format!("x{i}*").parse().unwrap())
        .collect();
    let refs: Vec<&Selector> = many.iter().collect();
    let err = match_jobs(&refs, &jobs).unwrap_err();
    assert!(
        err.to_string()
            .contains("101 distinct job name patterns; at most 100"),
        "{err}"
    );
    // Patterns x names over the budget: a project of many jobs.
    let big: Vec<(JobId, String)> = (0..MAX_PATTERN_MATCHES / 50 + 1)
        .map(|i| (JobId(i as i64 + 1), String::new()))
        .collect();
    let refs: Vec<&Selector> = many[..50].iter().collect();
    let err = match_jobs(&refs, &big).unwrap_err();
    assert!(err.to_string().contains("distinct patterns x"), "{err}");
}

#[test]
fn a_jobs_meta_is_kept_and_bounded() {
    let mut spec = tessera_types::JobSpec::new(
        "j",
        vec![tessera_types::TaskSpec::new(
            "a",
            tessera_types::Action::Noop,
        )],
    );
    spec.meta.insert("godocker.user".into(), "ana".into());
    assert_eq!(crate::compile(&spec).unwrap().meta, spec.meta);
    spec.meta
        .insert("long".into(), "x".repeat(tessera_types::MAX_META_ENTRY));
    assert!(
        crate::compile(&spec)
            .unwrap_err()
            .to_string()
            .contains("meta"),
        "{}",
        crate::compile(&spec).unwrap_err().to_string()
    );
    spec.meta.remove("long");
    for i in 0..tessera_types::MAX_META {
        spec.meta.insert(format!("k{i}"), String::new());
    }
    assert!(crate::compile(&spec)
        .unwrap_err()
        .to_string()
        .contains("at most 32 entries"));
}
