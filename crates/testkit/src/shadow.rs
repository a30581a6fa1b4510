//! An in-memory store that replays the core's changes and refuses illegal
//! ones. It stands in for the real store in simulations and doubles as a
//! check that the change log alone is enough to rebuild the scheduler.

use std::collections::BTreeMap;
use tessera_types::{
    Change, JobId, JobSnapshot, JobSpec, JobState, ProjectId, TaskRef, TaskSnapshot, TaskState,
};

#[derive(Default, Clone)]
pub struct Shadow {
    pub jobs: BTreeMap<JobId, ShadowJob>,
    /// Every change applied, in order.
    pub log: Vec<Change>,
}

#[derive(Clone)]
pub struct ShadowJob {
    pub spec: JobSpec,
    pub state: JobState,
    pub tasks: Vec<TaskSnapshot>,
    pub batch_starts: Vec<u32>,
    pub project: Option<ProjectId>,
    pub suspended: bool,
    pub priority: i32,
}

impl Shadow {
    pub fn create(&mut self, id: JobId, spec: &JobSpec) {
        self.create_in(id, None, spec);
    }

    pub fn create_in(&mut self, id: JobId, project: Option<ProjectId>, spec: &JobSpec) {
        let tasks = spec.tasks.iter().map(|_| fresh()).collect();
        self.jobs.insert(
            id,
            ShadowJob {
                spec: spec.clone(),
                state: JobState::Pending,
                tasks,
                batch_starts: vec![0],
                project,
                suspended: false,
                priority: 0,
            },
        );
    }

    /// Applies changes; panics on an illegal transition (that is a core bug).
    pub fn apply(&mut self, changes: &[Change]) {
        for c in changes {
            match c {
                Change::JobState { job, state } => {
                    self.jobs.get_mut(job).expect("job").state = *state
                }
                Change::TasksAdded {
                    job,
                    first_index,
                    tasks,
                } => {
                    let j = self.jobs.get_mut(job).expect("job");
                    assert_eq!(*first_index as usize, j.tasks.len(), "expansion appends");
                    j.batch_starts.push(*first_index);
                    j.spec.tasks.extend(tasks.iter().cloned());
                    j.tasks.extend(tasks.iter().map(|_| fresh()));
                }
                Change::Task {
                    task,
                    state,
                    attempt,
                    failures,
                    not_before,
                    ..
                } => {
                    let t = self.task_mut(*task);
                    if let Err(e) = t.state.transition(*state) {
                        panic!("task {task}: {e}");
                    }
                    *t = TaskSnapshot {
                        state: *state,
                        attempt: *attempt,
                        failures: *failures,
                        not_before: *not_before,
                    };
                }
                Change::AttemptStarted { task, attempt, .. } => {
                    let t = self.task_mut(*task);
                    assert_eq!(
                        t.attempt, *attempt,
                        "attempt {attempt} of {task} starts as recorded"
                    );
                }
                Change::AttemptEnded { .. } => {}
                Change::JobSuspended { job, suspended } => {
                    let j = self.jobs.get_mut(job).expect("job");
                    assert!(
                        !(*suspended && j.state.is_terminal()),
                        "job {job} suspended after it ended"
                    );
                    j.suspended = *suspended;
                }
                Change::JobPriority { job, priority } => {
                    self.jobs.get_mut(job).expect("job").priority = *priority
                }
            }
            self.log.push(c.clone());
        }
    }

    fn task_mut(&mut self, t: TaskRef) -> &mut TaskSnapshot {
        &mut self.jobs.get_mut(&t.job).expect("job").tasks[t.index as usize]
    }

    pub fn task_state(&self, t: TaskRef) -> Option<TaskState> {
        Some(self.jobs.get(&t.job)?.tasks.get(t.index as usize)?.state)
    }

    pub fn job_state(&self, job: JobId) -> Option<JobState> {
        self.jobs.get(&job).map(|j| j.state)
    }

    /// What a store would hand back after a crash, with batch boundaries.
    pub fn snapshots(&self) -> Vec<JobSnapshot> {
        self.jobs
            .iter()
            .filter(|(_, j)| !j.state.is_terminal())
            .filter_map(|(id, _)| self.snapshot(*id))
            .collect()
    }

    /// One job as a store's `load_job` gives it, whatever its state.
    pub fn snapshot(&self, id: JobId) -> Option<JobSnapshot> {
        let j = self.jobs.get(&id)?;
        Some(JobSnapshot {
            id,
            spec: j.spec.clone(),
            state: j.state,
            tasks: j.tasks.clone(),
            batch_starts: j.batch_starts.clone(),
            project: j.project,
            suspended: j.suspended,
            priority: j.priority,
        })
    }
}

fn fresh() -> TaskSnapshot {
    TaskSnapshot {
        state: TaskState::Waiting,
        attempt: 0,
        failures: 0,
        not_before: 0,
    }
}
