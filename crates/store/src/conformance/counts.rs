//! Aggregates for metrics: rows counted by state, and by project and state.

use super::{sample_spec, task_change, Backend};
use std::collections::BTreeMap;
use tessera_types::{Change, JobState, ProjectId, TaskRef, TaskState};

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
}
