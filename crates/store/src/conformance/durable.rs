//! What survives: reopening, keys, attempts.

use super::{sample_spec, started, task_change, Backend};
use crate::StoreError;
use tessera_types::{
    Action, AttemptOutcome, AttemptUsage, Change, JobState, NodeId, Role, TaskRef, TaskSpec,
    TaskState,
};

pub fn state_survives_reopen(b: &mut dyn Backend) {
    let mut s = b.create();
    let ana = s.create_user("ana", false, 1).expect("user");
    let project = s.create_project("p", ana.id, 1).expect("project");
    let key = s
        .create_key(ana.id, "laptop", "tsk_dur", "hash", 1)
        .expect("key");
    let job = s
        .create_job(Some(project.id), &sample_spec("durable"), Some("dur"), 1)
        .expect("create_job");
    let t0 = TaskRef::new(job, 0);
    s.apply(
        &[
            Change::JobState {
                job,
                state: JobState::Running,
            },
            task_change(t0, TaskState::Ready, 0),
            task_change(t0, TaskState::Running, 1),
            Change::AttemptStarted {
                task: t0,
                attempt: 1,
                node: NodeId(3),
                at: 20,
            },
            Change::TasksAdded {
                job,
                first_index: 3,
                tasks: vec![TaskSpec::new("extra", Action::Noop)],
            },
        ],
        20,
    )
    .expect("apply");
    s.set_attempts_started(&[started(t0, 1, 4242, Some("w1"))])
        .expect("pid");
    let snaps = s.load_unfinished().expect("load");
    let tasks = s.tasks(job).expect("tasks");
    let attempts = s.attempts(job).expect("attempts");
    drop(s);

    let mut s = b.reopen();
    assert_eq!(s.load_unfinished().expect("load"), snaps);
    assert_eq!(s.tasks(job).expect("tasks"), tasks);
    assert_eq!(s.attempts(job).expect("attempts"), attempts);
    assert_eq!(s.open_attempts().expect("open").len(), 1);
    assert_eq!(
        s.find_job_by_key("dur").expect("find").map(|j| j.id),
        Some(job)
    );
    assert_eq!(
        s.job(job).expect("job").expect("kept").project,
        Some(project.id)
    );
    assert_eq!(s.user_by_name("ana").expect("user"), Some(ana.clone()));
    assert_eq!(
        s.projects_of(ana.id).expect("projects"),
        [(project, Role::Owner)]
    );
    assert_eq!(s.key_by_prefix("tsk_dur").expect("key"), Some(key));
    // And it is still writable: new ids do not collide with old ones.
    let next = s
        .create_job(None, &sample_spec("after"), None, 30)
        .expect("create_job");
    assert!(next.0 > job.0);
    let bob = s.create_user("bob", false, 30).expect("user");
    assert!(bob.id.0 > ana.id.0);
}

pub fn find_job_by_key_returns_newest(b: &mut dyn Backend) {
    let mut s = b.create();
    let first = s
        .create_job(None, &sample_spec("a"), Some("same"), 1)
        .expect("create_job");
    let other = s
        .create_job(None, &sample_spec("b"), Some("other"), 2)
        .expect("create_job");
    let second = s
        .create_job(None, &sample_spec("c"), Some("same"), 3)
        .expect("create_job");
    let none = s
        .create_job(None, &sample_spec("d"), None, 4)
        .expect("create_job");
    assert_eq!(
        s.find_job_by_key("same").expect("find").map(|j| j.id),
        Some(second)
    );
    assert_eq!(
        s.find_job_by_key("other").expect("find").map(|j| j.name),
        Some("b".into())
    );
    assert_eq!(s.find_job_by_key("nobody").expect("find"), None);
    let recent: Vec<_> = s
        .recent_jobs(3)
        .expect("recent")
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(recent, [none, second, other]);
    assert!(first.0 < second.0);
}

pub fn attempts_record_outcome_and_usage(b: &mut dyn Backend) {
    let mut s = b.create();
    let job = s
        .create_job(None, &sample_spec("attempts"), None, 1)
        .expect("create_job");
    let (t0, t1) = (TaskRef::new(job, 0), TaskRef::new(job, 1));
    let usage = AttemptUsage {
        wall_ms: 1_500,
        cpu_ms: 2_900,
        max_rss_kb: 81_920,
        ..Default::default()
    };
    s.apply(
        &[
            Change::AttemptStarted {
                task: t0,
                attempt: 1,
                node: NodeId::LOCAL,
                at: 10,
            },
            Change::AttemptStarted {
                task: t1,
                attempt: 1,
                node: NodeId::LOCAL,
                at: 11,
            },
            Change::AttemptStarted {
                task: t1,
                attempt: 2,
                node: NodeId(5),
                at: 40,
            },
            Change::AttemptStarted {
                task: t1,
                attempt: 3,
                node: NodeId(5),
                at: 50,
            },
        ],
        10,
    )
    .expect("start");
    s.set_attempts_started(&[started(t0, 1, 1234, None)])
        .expect("pid");
    let err = s
        .set_attempts_started(&[started(t0, 2, 1, None)])
        .expect_err("no such attempt");
    assert!(
        matches!(err, StoreError::UnknownAttempt { attempt: 2, .. }),
        "{err}"
    );
    let failed = AttemptOutcome::Failed {
        message: "exited with status 3: no space".into(),
    };
    let lost = AttemptOutcome::Lost {
        reason: "scheduler restarted".into(),
    };
    s.apply(
        &[
            Change::AttemptEnded {
                task: t0,
                attempt: 1,
                outcome: AttemptOutcome::Succeeded,
                usage,
                at: 30,
            },
            Change::AttemptEnded {
                task: t1,
                attempt: 1,
                outcome: failed.clone(),
                usage,
                at: 31,
            },
            Change::AttemptEnded {
                task: t1,
                attempt: 2,
                outcome: lost.clone(),
                usage: AttemptUsage::default(),
                at: 45,
            },
        ],
        45,
    )
    .expect("end");
    let all = s.attempts(job).expect("attempts");
    let got: Vec<_> = all
        .iter()
        .map(|a| (a.task.index, a.number, a.outcome.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (0, 1, Some(AttemptOutcome::Succeeded)),
            (1, 1, Some(failed)),
            (1, 2, Some(lost)),
            (1, 3, None)
        ]
    );
    let a = &all[0];
    assert_eq!(
        (a.node.clone(), a.started_at, a.ended_at, a.usage, a.pid),
        (None, 10, Some(30), Some(usage), Some(1234))
    );
    assert_eq!(
        (all[2].node.clone(), all[3].usage, all[3].ended_at),
        (None, None, None)
    );
    let open: Vec<_> = s
        .open_attempts()
        .expect("open")
        .into_iter()
        .map(|a| (a.task, a.number))
        .collect();
    assert_eq!(open, [(t1, 3)]);
    assert!(all[3].is_open() && !all[0].is_open());
    let mut batch = Vec::new();
    for (attempt, outcome) in [
        (2, AttemptOutcome::TimedOut),
        (3, AttemptOutcome::Cancelled),
    ] {
        batch.push(Change::AttemptStarted {
            task: t0,
            attempt,
            node: NodeId::LOCAL,
            at: 60,
        });
        batch.push(Change::AttemptEnded {
            task: t0,
            attempt,
            outcome,
            usage,
            at: 61,
        });
    }
    s.apply(&batch, 61).expect("apply");
    let kinds: Vec<_> = s.attempts(job).expect("attempts")[1..3]
        .iter()
        .map(|a| a.outcome.clone())
        .collect();
    assert_eq!(
        kinds,
        [
            Some(AttemptOutcome::TimedOut),
            Some(AttemptOutcome::Cancelled)
        ]
    );
}

/// A job that has ended loads back by id exactly as `load_unfinished` gave
/// it while it ran, apart from what ending changed (its state and its
/// tasks'): a scheduler retries it from this.
pub fn a_finished_job_loads_back_as_it_was(b: &mut dyn Backend) {
    let mut s = b.create();
    let ana = s.create_user("ana", false, 1).expect("user");
    let project = s.create_project("p", ana.id, 1).expect("project").id;
    let job = s
        .create_job(Some(project), &sample_spec("ends"), None, 1)
        .expect("create_job");
    let other = s
        .create_job(None, &sample_spec("other"), None, 2)
        .expect("create_job");
    s.apply(
        &[
            Change::JobState {
                job,
                state: JobState::Running,
            },
            Change::TasksAdded {
                job,
                first_index: 3,
                tasks: vec![TaskSpec::new("late", Action::Noop).after("merge")],
            },
            Change::JobSuspended {
                job,
                suspended: true,
            },
            Change::JobPriority { job, priority: -4 },
        ],
        10,
    )
    .expect("apply");
    let unfinished = s.load_unfinished().expect("load");
    let running = unfinished
        .iter()
        .find(|j| j.id == job)
        .expect("running job")
        .clone();
    assert_eq!(s.load_job(job).expect("load_job"), Some(running.clone()));

    let ends = [
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Skipped,
        TaskState::Skipped,
    ];
    let mut changes: Vec<Change> = ends
        .iter()
        .enumerate()
        .map(|(i, &state)| task_change(TaskRef::new(job, i as u32), state, 1))
        .collect();
    changes.push(Change::JobState {
        job,
        state: JobState::Failed,
    });
    s.apply(&changes, 20).expect("end");
    assert!(s
        .load_unfinished()
        .expect("load")
        .iter()
        .all(|j| j.id != job));
    let mut want = running;
    want.state = JobState::Failed;
    for (t, &state) in want.tasks.iter_mut().zip(&ends) {
        t.state = state;
        t.attempt = 1;
    }
    assert_eq!(want.batch_starts, [0, 3], "the expansion's batch is kept");
    assert_eq!(
        (want.project, want.suspended, want.priority),
        (Some(project), true, -4)
    );
    assert_eq!(s.load_job(job).expect("load_job"), Some(want));
    let missing = tessera_types::JobId(other.0 + 100);
    assert_eq!(s.load_job(missing).expect("load_job"), None);
    let pending = s.load_job(other).expect("load_job").expect("other job");
    assert_eq!(
        (pending.state, pending.spec.name.as_str(), pending.project),
        (JobState::Pending, "other", None)
    );
}
