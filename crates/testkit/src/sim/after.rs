//! Job dependencies in the simulation: resolved against the shadow store as
//! the driver resolves them against the store, parents' ends told to the
//! scheduler when it does not hold them (after a crash), retries that take
//! back ended jobs, and the check made at every start.

use super::Sim;
use tessera_core::{match_jobs, ControlError, Event, Step};
use tessera_types::{Condition, JobDependency, JobId, JobSelector, JobSpec, JobState, ProjectId};

impl Sim {
    /// `spec` with its job dependencies resolved against the shadow
    /// store's jobs of `project` (panics when one matches nothing: tests
    /// submit valid specs), and the scheduler told how parents it does not
    /// hold ended.
    pub(super) fn resolve_after(&mut self, project: Option<ProjectId>, spec: &JobSpec) -> JobSpec {
        let mut spec = spec.clone();
        let jobs: Vec<(JobId, String)> = self
            .shadow
            .jobs
            .iter()
            .filter(|(_, j)| j.project == project)
            .map(|(id, j)| (*id, j.spec.name.clone()))
            .collect();
        for d in &mut spec.after {
            if !d.resolved.is_empty() {
                continue;
            }
            d.resolved = match &d.job {
                JobSelector::Id(id) if jobs.iter().any(|(j, _)| j == id) => vec![*id],
                JobSelector::Id(_) => Vec::new(),
                JobSelector::Name(sel) => {
                    match_jobs(&[sel], &jobs).expect("valid selector")[0].clone()
                }
            };
            assert!(
                !d.resolved.is_empty(),
                "job dependency {} matches no job",
                d.job
            );
        }
        self.tell_ended(&spec.after);
        spec
    }

    /// Tells the scheduler how the parents in `after` it does not hold
    /// ended (the shadow store's record), as the driver does from the store.
    pub(super) fn tell_ended(&mut self, after: &[JobDependency]) {
        let parents = self.sched.unknown_parents(after);
        self.tell(&parents);
    }

    fn tell(&mut self, parents: &[JobId]) {
        for p in parents {
            if let Some(j) = self.shadow.jobs.get(p) {
                self.sched.set_ended(*p, &j.spec.name, j.state);
            }
        }
    }

    /// Retries a job as the driver does: takes it back from the shadow
    /// store when the scheduler does not hold it (it ended before a
    /// crash), tells it how its parents ended, and asks first.
    pub fn retry(&mut self, job: JobId) -> Result<Step, ControlError> {
        if self.sched.job_state(job).is_none() {
            let snap = self.shadow.snapshot(job).expect("job exists");
            let step = self.sched.adopt(&snap, self.now)?;
            self.apply(step);
        }
        let parents = self.sched.unknown_parents_of(job);
        self.tell(&parents);
        self.sched.check(&Event::RetryJob { job })?;
        self.retried.insert(job);
        Ok(self.event(Event::RetryJob { job }))
    }

    /// A task of `job` starts only once each of its parent jobs has ended
    /// as its condition accepts (a parent retried since its child was
    /// released is spared: the child keeps what it was released by).
    pub(super) fn check_parent_jobs_allow(&self, job: JobId) {
        let j = &self.shadow.jobs[&job];
        for d in &j.spec.after {
            for p in d.resolved.iter().filter(|p| !self.retried.contains(p)) {
                let state = self.shadow.jobs[p].state;
                let ok = match d.condition {
                    Condition::Success => state == JobState::Succeeded,
                    Condition::Failure => state == JobState::Failed,
                    Condition::Any => state.is_terminal(),
                };
                assert!(
                    ok,
                    "a task of job {job} started while its parent job {p} is {state} \
                     (condition {:?})",
                    d.condition
                );
            }
        }
    }
}
