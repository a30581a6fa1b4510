//! What the scheduler keeps across restarts beside jobs: project quotas and
//! the usage of ended attempts.

use super::sample_spec;
use super::Backend;
use crate::StoreError;
use tessera_types::{
    AttemptNo, AttemptOutcome, AttemptUsage, Change, Millis, NodeId, ProjectId, Quota, TaskRef,
};

pub fn quotas_are_kept_per_project(b: &mut dyn Backend) {
    let mut s = b.create();
    let ana = s.create_user("ana", false, 1).expect("ana");
    let film = s.create_project("film", ana.id, 2).expect("film").id;
    let docs = s.create_project("docs", ana.id, 3).expect("docs").id;
    assert_eq!(
        s.quota(film).expect("quota"),
        Quota::default(),
        "unlimited until set"
    );

    let full = Quota {
        max_cpu: Some(4),
        max_memory_mb: Some(8_192),
        cpu_ms_per_window: Some(3_600_000),
    };
    s.set_quota(film, full).expect("set film");
    let partial = Quota {
        max_cpu: Some(1),
        ..Quota::default()
    };
    s.set_quota(docs, partial).expect("set docs");
    assert_eq!(s.quota(film).expect("film"), full);
    assert_eq!(s.quota(docs).expect("docs"), partial);

    // Setting replaces every limit: a `None` clears one.
    let lowered = Quota {
        max_memory_mb: Some(1_024),
        ..Quota::default()
    };
    s.set_quota(film, lowered).expect("lower film");
    assert_eq!(s.quota(film).expect("film"), lowered);

    let stranger = ProjectId(docs.0 + 100);
    let err = s.set_quota(stranger, full).expect_err("unknown project");
    assert!(
        matches!(err, StoreError::UnknownProject(p) if p == stranger),
        "{err}"
    );
    let err = s.quota(stranger).expect_err("unknown project");
    assert!(
        matches!(err, StoreError::UnknownProject(p) if p == stranger),
        "{err}"
    );
    let huge = Quota {
        cpu_ms_per_window: Some(u64::MAX),
        ..Quota::default()
    };
    assert!(matches!(
        s.set_quota(docs, huge),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        s.quota(docs).expect("docs"),
        partial,
        "a refused quota changes nothing"
    );
}

pub fn usage_since_charges_ended_attempts(b: &mut dyn Backend) {
    let mut s = b.create();
    let ana = s.create_user("ana", false, 1).expect("ana");
    let film = s.create_project("film", ana.id, 2).expect("film").id;
    // Task 0 ("probe") holds 1 cpu, task 1 ("encode-0") holds 2.
    let j1 = s
        .create_job(Some(film), &sample_spec("j1"), None, 3)
        .expect("j1");
    let j2 = s.create_job(None, &sample_spec("j2"), None, 4).expect("j2");
    let started = |task, attempt: AttemptNo| Change::AttemptStarted {
        task,
        attempt,
        node: NodeId::LOCAL,
        at: 5,
    };
    let ended = |task, attempt: AttemptNo, cpu_ms, wall_ms, at: Millis| Change::AttemptEnded {
        task,
        attempt,
        outcome: AttemptOutcome::Succeeded,
        usage: AttemptUsage {
            wall_ms,
            cpu_ms,
            max_rss_kb: 1,
            ..Default::default()
        },
        at,
    };
    let (a0, a1) = (TaskRef::new(j1, 0), TaskRef::new(j1, 1));
    let b0 = TaskRef::new(j2, 0);
    s.apply(
        &[
            started(a0, 1),
            started(a0, 2),
            started(a1, 1),
            started(b0, 1),
            started(b0, 2),
            // Ended before the window: left out.
            ended(a0, 1, 700, 900, 90),
            // Measured cpu time counts as is.
            ended(a0, 2, 1_500, 9_000, 200),
            // Unmeasured: wall time times the task's 2 cpu.
            ended(a1, 1, 0, 400, 150),
            // A job of no project.
            ended(b0, 1, 30, 50, 150),
            // Charged nothing (lost at once): left out.
            ended(b0, 2, 0, 0, 160),
        ],
        10,
    )
    .expect("attempts");
    // Still running: left out.
    s.apply(&[started(TaskRef::new(j2, 1), 1)], 11)
        .expect("running");

    let want = vec![
        (Some(film), 800, 150),
        (None, 30, 150),
        (Some(film), 1_500, 200),
    ];
    assert_eq!(s.usage_since(100).expect("usage"), want);
    assert_eq!(s.usage_since(200).expect("usage"), want[2..]);
    assert!(s.usage_since(201).expect("usage").is_empty());
    assert_eq!(s.usage_since(0).expect("usage").len(), 4);
}
