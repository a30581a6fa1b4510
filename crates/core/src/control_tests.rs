use super::*;
use tessera_types::{Action, AttemptNo, AttemptUsage, JobSpec, TaskSnapshot, TaskSpec};

/// What the store holds for a job `a -> b -> c` that failed at `b`: `a`
/// succeeded, `b` failed on its second attempt, `c` was skipped.
fn failed_job(id: JobId) -> JobSnapshot {
    let spec = JobSpec::new(
        "j",
        vec![
            TaskSpec::new("a", Action::Noop),
            TaskSpec::new("b", Action::Noop).after("a"),
            TaskSpec::new("c", Action::Noop).after("b"),
        ],
    );
    let ended = |state, attempt| TaskSnapshot {
        state,
        attempt,
        failures: attempt,
        not_before: 0,
    };
    JobSnapshot {
        id,
        spec,
        state: JobState::Failed,
        tasks: vec![
            ended(TaskState::Succeeded, 1),
            ended(TaskState::Failed, 2),
            ended(TaskState::Skipped, 0),
        ],
        batch_starts: vec![0],
        project: None,
        suspended: false,
        priority: 3,
    }
}

fn started(step: &Step) -> Vec<(TaskRef, AttemptNo)> {
    step.commands
        .iter()
        .filter_map(|c| match c {
            Command::Start { task, attempt, .. } => Some((*task, *attempt)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_adopted_failed_job_retries_what_failed_and_keeps_what_succeeded() {
    let mut s = Scheduler::new(2);
    let job = JobId(7);
    let step = s.adopt(&failed_job(job), 100).unwrap();
    assert!(step.is_empty(), "adopting runs nothing: {step:?}");
    assert_eq!(s.job_state(job), Some(JobState::Failed));
    assert_eq!(s.job_priority(job), Some(3));
    assert!(s.is_idle(), "an ended job keeps nothing busy");

    assert_eq!(s.check(&Event::RetryJob { job }), Ok(()));
    let step = s.handle(Event::RetryJob { job }, 200);
    let b = TaskRef::new(job, 1);
    assert_eq!(started(&step), [(b, 3)], "b runs again as attempt 3");
    assert!(step.changes.contains(&Change::JobState {
        job,
        state: JobState::Running
    }));
    assert_eq!(
        s.task_state(TaskRef::new(job, 0)),
        Some(TaskState::Succeeded)
    );
    assert!(!s.is_idle());

    let exited = |task, attempt| Event::Exited {
        task,
        attempt,
        result: Ok(()),
        usage: AttemptUsage::default(),
        expansion: None,
    };
    let step = s.handle(exited(b, 3), 300);
    let c = TaskRef::new(job, 2);
    assert_eq!(started(&step), [(c, 1)]);
    s.handle(exited(c, 1), 400);
    assert_eq!(s.job_state(job), Some(JobState::Succeeded));
    assert!(s.is_idle());
}

#[test]
fn adopt_refuses_held_unended_and_inconsistent_jobs() {
    let mut s = Scheduler::new(2);
    let job = JobId(7);
    s.adopt(&failed_job(job), 0).unwrap();
    let again = s.adopt(&failed_job(job), 0).unwrap_err();
    assert_eq!(
        again.to_string(),
        "job 7 cannot be taken back by the scheduler: it already holds it"
    );

    let mut running = failed_job(JobId(8));
    running.state = JobState::Running;
    let err = s.adopt(&running, 0).unwrap_err();
    assert!(
        err.to_string().ends_with("it has not ended (running)"),
        "{err}"
    );

    let mut odd = failed_job(JobId(9));
    odd.tasks[2].state = TaskState::Waiting;
    let err = s.adopt(&odd, 0).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("its task \"c\" is waiting though it ended"),
        "{err}"
    );
    assert_eq!(s.job_state(JobId(8)), None, "nothing of a refusal is kept");
    assert_eq!(s.job_state(JobId(9)), None);
}

#[test]
fn adopting_clears_a_suspension_the_record_kept() {
    let mut s = Scheduler::new(1);
    let job = JobId(3);
    let mut snap = failed_job(job);
    snap.suspended = true;
    let step = s.adopt(&snap, 0).unwrap();
    assert_eq!(
        step.changes,
        [Change::JobSuspended {
            job,
            suspended: false
        }]
    );
    assert_eq!(s.job_suspended(job), Some(false));
    assert_eq!(
        s.check(&Event::SuspendJob { job }),
        Err(ControlError::Ended {
            job,
            state: JobState::Failed
        })
    );
}

#[test]
fn capacity_follows_the_workers_and_submissions_stay_admitted_at_zero() {
    let mut s = Scheduler::new(0);
    s.set_capacity(0);
    let spec = JobSpec::new(
        "j",
        (0..3)
            .map(|i| TaskSpec::new(format!("t{i}"), Action::Noop))
            .collect(),
    );
    // No worker yet: the job is taken, nothing starts.
    let step = s.submit(JobId(1), &spec, 0).unwrap();
    assert!(started(&step).is_empty());
    // Two slots join: two attempts start at the next tick.
    s.set_capacity(2);
    assert_eq!(started(&s.tick(1)).len(), 2);
    // They leave: the running attempts go on, nothing more starts.
    s.set_capacity(0);
    let lost = s.handle(
        Event::Lost {
            task: TaskRef::new(JobId(1), 0),
            attempt: 1,
            reason: "worker gone".into(),
        },
        2,
    );
    assert!(started(&lost).is_empty());
    assert_eq!(s.used(), 1);
    // One slot, held by the attempt still running: nothing starts yet.
    s.set_capacity(1);
    assert!(started(&s.tick(3)).is_empty());
    s.set_capacity(2);
    assert_eq!(started(&s.tick(4)).len(), 1);
}
