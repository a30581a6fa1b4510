//! Job dependencies at the driver: resolved against the store when a job
//! is submitted, and the ends of parents the scheduler does not hold read
//! from it (see `tessera_core`'s `after.rs` for what the core does with them).

use super::{Driver, DriverError};
use tessera_core::{SpecError, MAX_JOB_DEPS};
use tessera_exec::Executor;
use tessera_store::Store;
use tessera_types::{JobDependency, JobId, JobSelector, JobState, ProjectId, Selector};

impl<S: Store, E: Executor> Driver<S, E> {
    /// Resolves job dependencies to the ids of jobs of `project` (the jobs
    /// of no project for `None`) that exist now: a job id must name one of
    /// them, a name or pattern must match at least one (a selector that
    /// matches nothing is refused, never taken as met). Then tells the
    /// scheduler how the parents it does not hold ended.
    pub(super) fn resolve_after(
        &mut self,
        project: Option<ProjectId>,
        after: &mut [JobDependency],
    ) -> Result<(), DriverError> {
        if after.len() > MAX_JOB_DEPS {
            return Err(SpecError::TooManyJobDeps {
                count: after.len(),
                max: MAX_JOB_DEPS,
            }
            .into());
        }
        let mut patterns = Vec::new();
        for (i, d) in after.iter_mut().enumerate() {
            if !d.resolved.is_empty() {
                let selector = d.job.to_string();
                return Err(SpecError::ResolvedGiven { selector }.into());
            }
            d.resolved = match &d.job {
                // Another project's job is as invisible as one that does not exist.
                JobSelector::Id(id) => match self.store.job(*id)? {
                    Some(r) if r.project == project => vec![*id],
                    _ => Vec::new(),
                },
                JobSelector::Name(Selector::Name(name)) => {
                    let named = self.store.job_names(project, Some(name))?;
                    named.into_iter().map(|(id, _)| id).collect()
                }
                JobSelector::Name(_) => {
                    patterns.push(i);
                    continue;
                }
            };
        }
        if !patterns.is_empty() {
            let jobs = self.store.job_names(project, None)?;
            let selectors: Vec<&Selector> = patterns
                .iter()
                .filter_map(|&i| match &after[i].job {
                    JobSelector::Name(s) => Some(s),
                    JobSelector::Id(_) => None,
                })
                .collect();
            let matched = tessera_core::match_jobs(&selectors, &jobs)?;
            for (&i, ids) in patterns.iter().zip(matched) {
                after[i].resolved = ids;
            }
        }
        if let Some(d) = after.iter().find(|d| d.resolved.is_empty()) {
            let selector = d.job.to_string();
            return Err(SpecError::NoJobMatch { selector }.into());
        }
        let parents = self.sched.unknown_parents(after);
        self.tell_ended(&parents)?;
        Ok(self.sched.check_after(after)?)
    }

    /// Tells the scheduler how `jobs`, which it does not hold, ended (from
    /// the store). One that has not ended is left unknown (this scheduler
    /// does not run it); one the store no longer has counts as cancelled,
    /// so nothing waits for it forever.
    pub(super) fn tell_ended(&mut self, jobs: &[JobId]) -> Result<(), DriverError> {
        for &p in jobs {
            match self.store.job(p)? {
                Some(r) => self.sched.set_ended(p, &r.name, r.state),
                None => self
                    .sched
                    .set_ended(p, "no longer stored", JobState::Cancelled),
            }
        }
        Ok(())
    }
}
