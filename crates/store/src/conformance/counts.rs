//! Aggregates for metrics and job views: rows counted by state, by project
//! and state, and by state within one job; and reads of one job a page at a
//! time.

use super::{sample_spec, task_change, Backend};
use std::collections::BTreeMap;
use tessera_types::{
    Action, Change, JobId, JobSpec, JobState, NodeId, ProjectId, TaskRef, TaskSpec, TaskState,
};

/// A list of counts as a sorted map, since the order is not promised.
fn by_name<S: std::fmt::Display>(counts: Vec<(S, u64)>) -> BTreeMap<String, u64> {
    let mut map = BTreeMap::new();
    for (state, n) in counts {
        let previous = map.insert(state.to_string(), n);
        assert_eq!(previous, None, "state {state} counted twice");
    }
    map
}

fn named<const N: usize>(pairs: [(&str, u64); N]) -> BTreeMap<String, u64> {
    pairs.into_iter().map(|(s, n)| (s.to_string(), n)).collect()
}

pub fn counts_group_by_state_and_project(b: &mut dyn Backend) {
    let mut s = b.create();
    let (jobs, tasks) = s.count_by_state().expect("count an empty store");
    assert!(jobs.is_empty() && tasks.is_empty(), "{jobs:?} {tasks:?}");
    assert!(s.count_jobs_by_project().expect("by project").is_empty());

    let ana = s.create_user("ana", false, 1).expect("ana");
    let p1 = s.create_project("p1", ana.id, 2).expect("p1").id;
    let p2 = s.create_project("p2", ana.id, 3).expect("p2").id;
    let spec = sample_spec("counted"); // three tasks each
    let j1 = s.create_job(Some(p1), &spec, None, 10).expect("j1");
    let j2 = s.create_job(Some(p1), &spec, None, 11).expect("j2");
    let j3 = s.create_job(Some(p2), &spec, None, 12).expect("j3");
    let j4 = s.create_job(None, &spec, None, 13).expect("j4");
    let changes = [
        Change::JobState {
            job: j1,
            state: JobState::Running,
        },
        task_change(TaskRef::new(j1, 0), TaskState::Running, 1),
        Change::JobState {
            job: j3,
            state: JobState::Running,
        },
        task_change(TaskRef::new(j3, 0), TaskState::Succeeded, 1),
        task_change(TaskRef::new(j3, 1), TaskState::Running, 1),
        Change::JobState {
            job: j4,
            state: JobState::Cancelled,
        },
        task_change(TaskRef::new(j4, 0), TaskState::Cancelled, 0),
        task_change(TaskRef::new(j4, 1), TaskState::Cancelled, 0),
        task_change(TaskRef::new(j4, 2), TaskState::Cancelled, 0),
    ];
    s.apply(&changes, 20).expect("apply");
    let _ = j2;

    // Tasks of finished jobs count too.
    let (jobs, tasks) = s.count_by_state().expect("count");
    assert_eq!(
        by_name(jobs),
        named([("pending", 1), ("running", 2), ("cancelled", 1)])
    );
    assert_eq!(
        by_name(tasks),
        named([
            ("waiting", 6),
            ("running", 2),
            ("succeeded", 1),
            ("cancelled", 3)
        ])
    );

    let mut projects = s.count_jobs_by_project().expect("by project");
    projects.sort_by_key(|(p, state, _)| (p.0, state.to_string()));
    let want: Vec<(ProjectId, JobState, u64)> = vec![
        (p1, JobState::Pending, 1),
        (p1, JobState::Running, 1),
        (p2, JobState::Running, 1),
    ];
    assert_eq!(projects, want, "jobs without a project are left out");

    // One job's tasks by state: only that job's, empty states left out.
    assert_eq!(
        by_name(s.task_counts(j3).expect("j3 counts")),
        named([("waiting", 1), ("running", 1), ("succeeded", 1)])
    );
    assert_eq!(
        by_name(s.task_counts(j4).expect("j4 counts")),
        named([("cancelled", 3)])
    );
    assert_eq!(
        by_name(s.task_counts(j2).expect("j2 counts")),
        named([("waiting", 3)])
    );
    assert!(s.task_counts(JobId(9_999)).expect("unknown").is_empty());
}

pub fn pages_follow_index_order(b: &mut dyn Backend) {
    let mut s = b.create();
    // Inserted out of name order, so a page ordered by anything but the
    // index would show.
    let tasks = (0..7)
        .map(|i| TaskSpec::new(format!("t{}", 7 - i), Action::Noop))
        .collect();
    let job = s
        .create_job(None, &JobSpec::new("paged", tasks), None, 1)
        .expect("create");
    let other = s
        .create_job(None, &sample_spec("other"), None, 2)
        .expect("other");
    // Attempts out of order too: task 2 twice, task 0 once, task 5 once.
    let started = |index, attempt, at| Change::AttemptStarted {
        task: TaskRef::new(job, index),
        attempt,
        node: NodeId::LOCAL,
        at,
    };
    let changes = [
        started(5, 1, 10),
        started(2, 1, 11),
        started(0, 1, 12),
        started(2, 2, 13),
        Change::AttemptStarted {
            task: TaskRef::new(other, 0),
            attempt: 1,
            node: NodeId::LOCAL,
            at: 14,
        },
    ];
    s.apply(&changes, 10).expect("attempts");

    let indexes = |offset, limit| -> Vec<u32> {
        let page = s.tasks_page(job, offset, limit).expect("tasks page");
        assert!(page.iter().all(|t| t.task.job == job), "another job's task");
        page.iter().map(|t| t.task.index).collect()
    };
    assert_eq!(indexes(0, 3), [0, 1, 2]);
    assert_eq!(indexes(3, 3), [3, 4, 5]);
    assert_eq!(indexes(6, 3), [6], "the last page is short");
    assert!(indexes(7, 3).is_empty(), "past the end");
    assert!(indexes(0, 0).is_empty(), "limit 0");
    assert_eq!(indexes(0, u32::MAX).len(), 7);
    let all = s.tasks(job).expect("all tasks");
    assert_eq!(s.tasks_page(job, 0, 100).expect("page"), all);
    assert!(s
        .tasks_page(JobId(9_999), 0, 10)
        .expect("unknown")
        .is_empty());

    let numbers = |offset, limit| -> Vec<(u32, u32)> {
        let page = s.attempts_page(job, offset, limit).expect("attempts page");
        page.iter().map(|a| (a.task.index, a.number)).collect()
    };
    assert_eq!(numbers(0, 2), [(0, 1), (2, 1)]);
    assert_eq!(numbers(2, 2), [(2, 2), (5, 1)]);
    assert!(numbers(4, 2).is_empty());
    assert_eq!(
        s.attempts_page(job, 0, 100).expect("page"),
        s.attempts(job).expect("all attempts")
    );
}
