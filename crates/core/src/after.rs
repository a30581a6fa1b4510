//! Dependencies between jobs: a job waits for other jobs of its project
//! (`JobSpec::after`), resolved to job ids before it is submitted (the
//! driver does that against the store; [`match_jobs`] is the pure part).
//!
//! Each dependency is a *job fan-in*: the same [`Barrier`] task fan-ins
//! use, over parent jobs, kept in the waiting (child) job. While one of its
//! fan-ins is open the child is *gated*: its tasks wait and none of them is
//! decided. The scheduler indexes gated jobs by parent (`job_waiters`), so a
//! job that ends updates the fan-ins waiting on it, in work proportional to
//! their number. When a child's last fan-in closes it is *released*: its
//! tasks are decided as at submission (its first tasks become ready). When
//! one rejects (a parent ended in a way the condition refuses) the child is
//! *skipped*: every task it has not ended is skipped with a reason naming
//! the parent and its end, and the job ends **cancelled** (not failed: it
//! did nothing wrong). Its own dependents see a cancelled parent, which only
//! `any` accepts, so skips cascade.
//!
//! Parents the scheduler does not hold (they ended before it started, or it
//! forgot them) are told to it with [`Scheduler::set_ended`] before a job
//! that names them is submitted, restored or retried
//! ([`Scheduler::unknown_parents`] lists them). A restored job waits again
//! unless it had been released before the restart, which shows in its
//! tasks: releasing always makes a first task ready in the same step, and a
//! released job that has not ended always has a task ready or running.
//!
//! Retries: retrying a child counts its parents again as they are now (a
//! retry is refused while one of them ended as its condition rejects: retry
//! that one first). Retrying a parent re-opens the fan-ins of children that
//! still wait; children it released keep running and children it had
//! skipped stay skipped (retry them after it).

use crate::dag::{matches, SpecError};
use crate::graph::Barrier;
use crate::limits::{MAX_JOB_DEPS, MAX_JOB_PARENTS, MAX_JOB_PATTERNS, MAX_PATTERN_MATCHES};
use crate::sched::Scheduler;
use crate::step::Step;
use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use tessera_types::{Condition, JobDependency, JobId, JobState, Selector, TaskRef, TaskState};

/// One job dependency of a job, resolved: a barrier over its parent jobs.
#[derive(Debug)]
pub(crate) struct JobFanIn {
    /// The selector as written (`12`, `encode*`), for `why_waiting`.
    pub(crate) selector: String,
    /// The parent jobs, ascending.
    pub(crate) members: Arc<[JobId]>,
    pub(crate) barrier: Barrier<JobId>,
}

/// A job's end as a barrier member: success, failure and any read a job's
/// end as they read a task's. `None` while it has not ended.
pub(crate) fn as_member(state: JobState) -> Option<TaskState> {
    match state {
        JobState::Succeeded => Some(TaskState::Succeeded),
        JobState::Failed => Some(TaskState::Failed),
        JobState::Cancelled => Some(TaskState::Cancelled),
        JobState::Pending | JobState::Running => None,
    }
}

/// What a condition waits for, in words.
pub(crate) fn verb(c: Condition) -> &'static str {
    match c {
        Condition::Success => "succeed",
        Condition::Failure => "fail",
        Condition::Any => "end",
    }
}

/// The index entries of parent `p`.
fn of_parent(p: JobId) -> RangeInclusive<(JobId, JobId, u32)> {
    (p, JobId(i64::MIN), 0)..=(p, JobId(i64::MAX), u32::MAX)
}

/// The fan-ins of `after` (resolved), not yet counted.
pub(crate) fn job_fan_ins(after: &[JobDependency]) -> Vec<JobFanIn> {
    after
        .iter()
        .map(|d| {
            let mut members = d.resolved.clone();
            members.sort_unstable();
            members.dedup();
            JobFanIn {
                selector: d.job.to_string(),
                members: members.into(),
                barrier: Barrier::new(d.condition),
            }
        })
        .collect()
}

/// Resolves job name selectors against a project's jobs (`(id, name)`,
/// ascending id): for each selector, the ids of the jobs it matches,
/// ascending. Exact names, globs and regexes read as task selectors do.
/// Each distinct glob or regex is matched once; there may be at most
/// [`MAX_JOB_PATTERNS`] of them, and their matches are held to
/// [`MAX_PATTERN_MATCHES`] (distinct patterns x jobs).
pub fn match_jobs(
    selectors: &[&Selector],
    jobs: &[(JobId, String)],
) -> Result<Vec<Vec<JobId>>, SpecError> {
    let mut distinct: HashMap<&Selector, usize> = HashMap::new();
    for &s in selectors {
        if !matches!(s, Selector::Name(_)) {
            let next = distinct.len();
            distinct.entry(s).or_insert(next);
        }
    }
    if distinct.len() > MAX_JOB_PATTERNS {
        return Err(SpecError::TooManyJobPatterns {
            count: distinct.len(),
            max: MAX_JOB_PATTERNS,
        });
    }
    let work = distinct.len().saturating_mul(jobs.len());
    if work > MAX_PATTERN_MATCHES {
        return Err(SpecError::TooManyJobMatches {
            patterns: distinct.len(),
            jobs: jobs.len(),
            matches: work,
            max: MAX_PATTERN_MATCHES,
        });
    }
    let names: Vec<&str> = jobs.iter().map(|(_, n)| n.as_str()).collect();
    let mut cache: Vec<Option<Vec<JobId>>> = vec![None; distinct.len()];
    let mut out = Vec::with_capacity(selectors.len());
    for &s in selectors {
        let mut ids = match s {
            Selector::Name(n) => jobs
                .iter()
                .filter(|(_, m)| m == n)
                .map(|(id, _)| *id)
                .collect(),
            _ => {
                let k = distinct[s];
                if cache[k].is_none() {
                    let hits = matches(s, &names, "").map_err(|e| match e {
                        SpecError::BadRegex { error, .. } => SpecError::BadJobRegex {
                            selector: s.to_string(),
                            error,
                        },
                        e => e,
                    })?;
                    cache[k] = Some(hits.iter().map(|&i| jobs[i as usize].0).collect());
                }
                cache[k].clone().unwrap_or_default()
            }
        };
        ids.sort_unstable();
        ids.dedup();
        out.push(ids);
    }
    Ok(out)
}

impl Scheduler {
    /// Tells the scheduler how a job it does not hold ended (the store's
    /// record): a parent of a job about to be submitted, restored or
    /// retried that ended before this scheduler started. Ignored for a job
    /// it holds and for a state that is not an end.
    pub fn set_ended(&mut self, job: JobId, name: &str, state: JobState) {
        if self.jobs.contains_key(&job) || !state.is_terminal() {
            return;
        }
        self.ended.insert(job, (state, Arc::from(name)));
    }

    /// The parents named in `after` that it neither holds nor was told
    /// the end of ([`set_ended`](Self::set_ended)), ascending.
    pub fn unknown_parents(&self, after: &[JobDependency]) -> Vec<JobId> {
        self.unknown(after.iter().flat_map(|d| d.resolved.iter().copied()))
    }

    /// [`unknown_parents`](Self::unknown_parents) of a job it holds (before
    /// a retry); empty for a job it does not hold.
    pub fn unknown_parents_of(&self, job: JobId) -> Vec<JobId> {
        self.jobs.get(&job).map_or_else(Vec::new, |j| {
            self.unknown(j.after.iter().flat_map(|f| f.members.iter().copied()))
        })
    }

    fn unknown(&self, parents: impl Iterator<Item = JobId>) -> Vec<JobId> {
        let mut out: Vec<JobId> = parents.filter(|&p| !self.knows(p)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn knows(&self, p: JobId) -> bool {
        self.jobs.contains_key(&p) || self.ended.contains_key(&p)
    }

    /// Checks the job dependencies of a spec about to be submitted: each
    /// resolved, within [`MAX_JOB_DEPS`] and [`MAX_JOB_PARENTS`], naming
    /// only jobs this scheduler runs or was told the end of.
    pub fn check_after(&self, after: &[JobDependency]) -> Result<(), SpecError> {
        if after.len() > MAX_JOB_DEPS {
            return Err(SpecError::TooManyJobDeps {
                count: after.len(),
                max: MAX_JOB_DEPS,
            });
        }
        let count: usize = after.iter().map(|d| d.resolved.len()).sum();
        if count > MAX_JOB_PARENTS {
            return Err(SpecError::TooManyParentJobs {
                count,
                max: MAX_JOB_PARENTS,
            });
        }
        for d in after {
            let selector = || d.job.to_string();
            if d.resolved.is_empty() {
                return Err(SpecError::Unresolved {
                    selector: selector(),
                });
            }
            if let Some(&job) = d.resolved.iter().find(|&&p| !self.knows(p)) {
                return Err(SpecError::UnknownParent {
                    selector: selector(),
                    job,
                });
            }
        }
        Ok(())
    }

    /// Refuses a new job `id` that names itself, or that a job already
    /// waits for (a job can only name jobs that exist, so neither happens
    /// unless ids were reused; either would be a cycle).
    pub(crate) fn check_acyclic_after(
        &self,
        id: JobId,
        after: &[JobDependency],
    ) -> Result<(), SpecError> {
        let names_itself = after.iter().any(|d| d.resolved.contains(&id));
        if names_itself || self.job_waiters.range(of_parent(id)).next().is_some() {
            return Err(SpecError::JobCycle(id));
        }
        Ok(())
    }

    /// How parent `p` ended, as a barrier member (`None`: not ended, or not known).
    pub(crate) fn parent_end(&self, p: JobId) -> Option<TaskState> {
        match self.jobs.get(&p) {
            Some(j) => as_member(j.state),
            None => self.ended.get(&p).and_then(|(s, _)| as_member(*s)),
        }
    }

    /// "job 12 (split) ended failed and this job waits for it to succeed".
    pub(crate) fn rejection(&self, p: JobId, condition: Condition) -> String {
        let (state, name) = match (self.jobs.get(&p), self.ended.get(&p)) {
            (Some(j), _) => (j.state, j.name.clone()),
            (None, Some((s, n))) => (*s, n.clone()),
            (None, None) => (JobState::Cancelled, Arc::from("?")),
        };
        format!(
            "job {p} ({name}) ended {state} and this job waits for it to {}",
            verb(condition)
        )
    }

    /// The first parent of `job` that ended as its condition rejects, in
    /// words (see [`rejection`](Self::rejection)); a retry is refused then.
    pub(crate) fn rejecting_parent(&self, job: JobId) -> Option<String> {
        let j = self.jobs.get(&job)?;
        j.after.iter().find_map(|f| {
            let c = f.barrier.condition;
            f.members.iter().find_map(|&p| {
                let end = self.parent_end(p)?;
                (!crate::graph::accepts(c, end)).then(|| self.rejection(p, c))
            })
        })
    }

    /// Arms job `id`'s gate (it is `gated`, its tasks in place): counts its
    /// fan-ins from its parents' ends now, indexes it under its parents and
    /// decides it: skipped when a fan-in rejects, released when all have
    /// closed; otherwise it waits.
    pub(crate) fn arm(&mut self, id: JobId, step: &mut Step) {
        let mut after = std::mem::take(&mut self.jobs.get_mut(&id).expect("job").after);
        let (mut held, mut rejected) = (0, None);
        for (f, fan) in after.iter_mut().enumerate() {
            let ends = fan.members.iter().map(|&p| (p, self.parent_end(p)));
            fan.barrier.recount(ends);
            if fan.barrier.open > 0 {
                held += 1;
            }
            if let (None, Some(p)) = (rejected, fan.barrier.rejected_by) {
                rejected = Some((p, fan.barrier.condition));
            }
            for &p in fan.members.iter() {
                self.job_waiters.insert((p, id, f as u32));
            }
        }
        let j = self.jobs.get_mut(&id).expect("job");
        j.after = after;
        j.held = held;
        if let Some((p, condition)) = rejected {
            let reason = self.rejection(p, condition);
            self.skip_job(id, reason, step);
        } else if held == 0 {
            self.release_job(id, step);
        }
    }

    /// Removes a gated job from the index by parent (it no longer waits).
    pub(crate) fn unindex(&mut self, id: JobId) {
        let Scheduler {
            jobs, job_waiters, ..
        } = self;
        let Some(j) = jobs.get_mut(&id).filter(|j| j.gated) else {
            return;
        };
        j.gated = false;
        for (f, fan) in j.after.iter().enumerate() {
            for &p in fan.members.iter() {
                job_waiters.remove(&(p, id, f as u32));
            }
        }
    }

    /// Its parents allow it: its tasks are decided as at submission.
    fn release_job(&mut self, id: JobId, step: &mut Step) {
        self.unindex(id);
        self.jobs.get_mut(&id).expect("job").held = 0;
        self.wake(id, 0, step);
    }

    /// A parent ended as a condition rejects: every task it has not ended
    /// is skipped with `reason`, and the job ends cancelled.
    fn skip_job(&mut self, id: JobId, reason: String, step: &mut Step) {
        self.unindex(id);
        let j = self.jobs.get_mut(&id).expect("job");
        j.skipped = Some(reason.clone());
        for i in 0..j.tasks.len() as u32 {
            let task = TaskRef::new(id, i);
            // A gated job has no ready or running task; its dependents
            // may already have been skipped through their own fan-ins.
            if self.jobs[&id].tasks[i as usize].state == TaskState::Waiting {
                self.finish(task, TaskState::Skipped, Some(reason.clone()), step);
            }
        }
        self.settle(id, step);
    }

    /// Job `p` ended: updates the fan-ins waiting on it and decides their
    /// jobs (work proportional to those fan-ins).
    fn job_ended(&mut self, p: JobId, state: JobState, step: &mut Step) {
        let Some(end) = as_member(state) else { return };
        let waiting: Vec<(JobId, u32)> = self
            .job_waiters
            .range(of_parent(p))
            .map(|&(_, c, f)| (c, f))
            .collect();
        for (c, f) in waiting {
            let Some(child) = self.jobs.get_mut(&c).filter(|j| j.gated) else {
                continue;
            };
            let fan = &mut child.after[f as usize];
            if fan.barrier.open == 0 {
                continue; // counted already
            }
            let (rejects, closed) = fan.barrier.ended(p, end);
            let condition = fan.barrier.condition;
            if rejects {
                let reason = self.rejection(p, condition);
                self.skip_job(c, reason, step);
            } else if closed {
                child.held = child.held.saturating_sub(1);
                if child.held == 0 {
                    self.release_job(c, step);
                }
            }
        }
    }

    /// Job `p` was retried: the fan-ins of jobs still waiting on it count
    /// it open again.
    pub(crate) fn reopen_children(&mut self, p: JobId) {
        let waiting: Vec<(JobId, u32)> = self
            .job_waiters
            .range(of_parent(p))
            .map(|&(_, c, f)| (c, f))
            .collect();
        for (c, f) in waiting {
            let Some(child) = self.jobs.get(&c).filter(|j| j.gated) else {
                continue;
            };
            let fan = &child.after[f as usize];
            let ends: Vec<_> = fan
                .members
                .iter()
                .map(|&m| (m, self.parent_end(m)))
                .collect();
            let child = self.jobs.get_mut(&c).expect("held");
            let fan = &mut child.after[f as usize];
            let was_open = fan.barrier.open > 0;
            fan.barrier.recount(ends.into_iter());
            if !was_open && fan.barrier.open > 0 {
                child.held += 1;
            }
        }
    }

    /// Entries of the index of waiting jobs by parent (one per parent of
    /// each fan-in of a job still held back): 0 once nothing waits, which
    /// the tests pin (nothing leaks when jobs are released, skipped or
    /// cancelled).
    pub fn job_links(&self) -> usize {
        self.job_waiters.len()
    }

    /// Stops the jobs of illegal moves and tells dependents of the jobs
    /// that ended, until neither is left (a skip may end more jobs).
    pub(crate) fn flush(&mut self, step: &mut Step) {
        loop {
            self.flush_faults(step);
            let Some((p, state)) = self.job_ends.pop() else {
                break;
            };
            self.job_ended(p, state, step);
        }
    }
}

#[cfg(test)]
#[path = "after_tests.rs"]
mod tests;
