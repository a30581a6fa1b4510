//! Jobs and tasks: creation, expansion, batches, task changes.

use super::{sample_spec, task_change, waiting, Backend};
use crate::StoreError;
use tessera_types::{
    Action, AttemptOutcome, AttemptUsage, Change, JobId, JobState, NodeId, TaskRef, TaskSnapshot,
    TaskSpec, TaskState,
};

pub fn create_and_load_round_trip(b: &mut dyn Backend) {
    let mut s = b.create();
    let spec = sample_spec("round-trip");
    let job = s
        .create_job(None, &spec, Some("k1"), 1_000)
        .expect("create_job");
    let snaps = s.load_unfinished().expect("load_unfinished");
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].id, job);
    assert_eq!(snaps[0].spec, spec, "spec JSON round trip");
    assert_eq!(snaps[0].state, JobState::Pending);
    assert_eq!(snaps[0].tasks, vec![waiting(); 3]);

    let rec = s.job(job).expect("job").expect("job exists");
    assert_eq!(
        (rec.name.as_str(), rec.key.as_deref()),
        ("round-trip", Some("k1"))
    );
    assert_eq!(
        (rec.created_at, rec.updated_at, rec.finished_at),
        (1_000, 1_000, None)
    );
    assert_eq!(s.job(JobId(job.0 + 100)).expect("job"), None);

    let tasks = s.tasks(job).expect("tasks");
    let names: Vec<_> = tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["probe", "encode-0", "merge"]);
    for (i, t) in tasks.iter().enumerate() {
        assert_eq!(t.task, TaskRef::new(job, i as u32));
        assert_eq!(t.spec, spec.tasks[i]);
        assert_eq!(
            (t.state, t.attempt, t.failures, t.reason.as_deref()),
            (TaskState::Waiting, 0, 0, None)
        );
        assert_eq!((t.created_at, t.updated_at), (1_000, 1_000));
    }
    assert!(s.attempts(job).expect("attempts").is_empty());
}

pub fn expansion_appends_tasks(b: &mut dyn Backend) {
    let mut s = b.create();
    let spec = sample_spec("expand");
    let job = s.create_job(None, &spec, None, 1).expect("create_job");
    let added = vec![
        TaskSpec::new("chunk-0", Action::Noop),
        TaskSpec::new("chunk-1", Action::Noop).after("chunk-0"),
    ];
    s.apply(
        &[Change::TasksAdded {
            job,
            first_index: 3,
            tasks: added.clone(),
        }],
        5,
    )
    .expect("add");
    let snap = s.load_unfinished().expect("load").remove(0);
    assert_eq!(snap.spec.tasks.len(), 5);
    assert_eq!(
        snap.spec.tasks[3..],
        added[..],
        "added tasks follow in index order"
    );
    assert_eq!(snap.tasks.len(), 5);
    assert_eq!(
        snap.batch_starts,
        vec![0, 3],
        "each batch's first index is kept"
    );
    assert_eq!(s.job(job).expect("job").expect("exists").updated_at, 5);

    let gap = Change::TasksAdded {
        job,
        first_index: 9,
        tasks: vec![TaskSpec::new("x", Action::Noop)],
    };
    let err = s.apply(&[gap], 6).expect_err("a gap in indices is refused");
    assert!(
        matches!(
            err,
            StoreError::TaskIndexGap {
                first_index: 9,
                count: 5,
                ..
            }
        ),
        "{err}"
    );
    let dup = Change::TasksAdded {
        job,
        first_index: 5,
        tasks: vec![TaskSpec::new("merge", Action::Noop)],
    };
    let err = s
        .apply(&[dup], 6)
        .expect_err("a second task named merge is refused");
    assert!(matches!(err, StoreError::DuplicateTaskName { .. }), "{err}");
    let stranger = Change::TasksAdded {
        job: JobId(job.0 + 1),
        first_index: 0,
        tasks: vec![],
    };
    assert!(matches!(
        s.apply(&[stranger], 6),
        Err(StoreError::UnknownJob(_))
    ));
    assert_eq!(
        s.tasks(job).expect("tasks").len(),
        5,
        "refused additions left nothing behind"
    );
}

pub fn apply_is_all_or_nothing(b: &mut dyn Backend) {
    let mut s = b.create();
    let job = s
        .create_job(None, &sample_spec("atomic"), None, 1)
        .expect("create_job");
    let t0 = TaskRef::new(job, 0);
    let before = s.load_unfinished().expect("load");
    let good = vec![
        Change::JobState {
            job,
            state: JobState::Running,
        },
        task_change(t0, TaskState::Ready, 0),
        task_change(t0, TaskState::Running, 1),
        Change::AttemptStarted {
            task: t0,
            attempt: 1,
            node: NodeId::LOCAL,
            at: 2,
        },
        Change::TasksAdded {
            job,
            first_index: 3,
            tasks: vec![TaskSpec::new("late", Action::Noop)],
        },
    ];
    let bad_changes = [
        (
            task_change(TaskRef::new(job, 42), TaskState::Ready, 0),
            "unknown task",
        ),
        (
            Change::JobState {
                job: JobId(job.0 + 7),
                state: JobState::Failed,
            },
            "unknown job",
        ),
        (
            Change::AttemptStarted {
                task: TaskRef::new(job, 42),
                attempt: 1,
                node: NodeId::LOCAL,
                at: 2,
            },
            "attempt of unknown task",
        ),
        (
            Change::AttemptStarted {
                task: t0,
                attempt: 1,
                node: NodeId::LOCAL,
                at: 2,
            },
            "attempt started twice",
        ),
        (
            Change::AttemptEnded {
                task: t0,
                attempt: 9,
                outcome: AttemptOutcome::Succeeded,
                usage: AttemptUsage::default(),
                at: 3,
            },
            "end of an unknown attempt",
        ),
    ];
    for (bad, what) in bad_changes {
        let mut batch = good.clone();
        batch.push(bad);
        batch.push(task_change(TaskRef::new(job, 1), TaskState::Ready, 0));
        let err = s.apply(&batch, 10).expect_err(what);
        assert!(!err.to_string().is_empty());
        assert_eq!(
            s.load_unfinished().expect("load"),
            before,
            "{what}: nothing of the batch applied"
        );
        assert!(
            s.attempts(job).expect("attempts").is_empty(),
            "{what}: no attempt recorded"
        );
        assert_eq!(
            s.job(job).expect("job").expect("exists").state,
            JobState::Pending,
            "{what}"
        );
    }
    s.apply(&good, 10).expect("the good part alone applies");
    assert_eq!(
        s.load_unfinished().expect("load")[0].tasks[0].state,
        TaskState::Running
    );
}

pub fn task_changes_are_recorded(b: &mut dyn Backend) {
    let mut s = b.create();
    let job = s
        .create_job(None, &sample_spec("changes"), None, 1)
        .expect("create_job");
    let t1 = TaskRef::new(job, 1);
    let change = Change::Task {
        task: t1,
        state: TaskState::Ready,
        attempt: 2,
        failures: 1,
        not_before: 77_000,
        reason: Some("exited with status 1: boom".into()),
    };
    s.apply(&[change], 50).expect("apply");
    let snap = s.load_unfinished().expect("load").remove(0);
    let want = TaskSnapshot {
        state: TaskState::Ready,
        attempt: 2,
        failures: 1,
        not_before: 77_000,
    };
    assert_eq!(snap.tasks, vec![waiting(), want, waiting()]);
    let rec = s.tasks(job).expect("tasks").remove(1);
    assert_eq!(rec.reason.as_deref(), Some("exited with status 1: boom"));
    assert_eq!((rec.created_at, rec.updated_at), (1, 50));
    s.apply(&[task_change(t1, TaskState::Running, 2)], 60)
        .expect("apply");
    assert_eq!(
        s.tasks(job).expect("tasks")[1].reason,
        None,
        "reason is replaced, not kept"
    );
}

pub fn load_unfinished_excludes_terminal_jobs(b: &mut dyn Backend) {
    let mut s = b.create();
    let mut ids = Vec::new();
    for (i, state) in [
        JobState::Succeeded,
        JobState::Running,
        JobState::Failed,
        JobState::Pending,
        JobState::Cancelled,
    ]
    .into_iter()
    .enumerate()
    {
        let job = s
            .create_job(None, &sample_spec(&format!("j{i}")), None, 1)
            .expect("create_job");
        s.apply(&[Change::JobState { job, state }], 100)
            .expect("apply");
        ids.push(job);
    }
    let snaps = s.load_unfinished().expect("load");
    let got: Vec<_> = snaps.iter().map(|j| (j.id, j.state)).collect();
    assert_eq!(
        got,
        [(ids[1], JobState::Running), (ids[3], JobState::Pending)]
    );
    let done = s.job(ids[0]).expect("job").expect("exists");
    assert_eq!(
        (done.state, done.finished_at, done.updated_at),
        (JobState::Succeeded, Some(100), 100)
    );
    // A job brought back to life (a user retry) loses its finish time.
    s.apply(
        &[Change::JobState {
            job: ids[2],
            state: JobState::Running,
        }],
        200,
    )
    .expect("apply");
    assert_eq!(
        s.job(ids[2]).expect("job").expect("exists").finished_at,
        None
    );
    assert_eq!(s.load_unfinished().expect("load").len(), 3);
}

pub fn suspension_and_priority_persist(b: &mut dyn Backend) {
    let mut s = b.create();
    let job = s
        .create_job(None, &sample_spec("control"), None, 1_000)
        .expect("create_job");
    let rec = s.job(job).expect("job").expect("exists");
    assert_eq!((rec.suspended, rec.priority), (false, 0), "defaults");
    s.apply(
        &[
            Change::JobSuspended {
                job,
                suspended: true,
            },
            Change::JobPriority { job, priority: 7 },
        ],
        2_000,
    )
    .expect("apply");
    let rec = s.job(job).expect("job").expect("exists");
    assert_eq!(
        (rec.suspended, rec.priority, rec.updated_at),
        (true, 7, 2_000)
    );
    let snap = &s.load_unfinished().expect("load_unfinished")[0];
    assert_eq!(
        (snap.suspended, snap.priority),
        (true, 7),
        "what a restart restores"
    );
    let missing = JobId(job.0 + 100);
    let err = s
        .apply(
            &[Change::JobPriority {
                job: missing,
                priority: 1,
            }],
            3_000,
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownJob(j) if j == missing),
        "{err:?}"
    );
}
