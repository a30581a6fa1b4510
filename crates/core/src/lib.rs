//! The pure heart of Tessera: a scheduler state machine for DAG jobs.
//!
//! It does no I/O and reads no clock. The driver feeds it events (an attempt
//! exited, a job was cancelled) and the current time; it returns a [`Step`]:
//! the durable [`Change`](tessera_types::Change)s to commit, then the
//! [`Command`]s to carry out (start an attempt, kill one). Because it is pure,
//! the same code runs in production, in property tests and in a simulation
//! with a fake clock and thousands of virtual tasks.
//!
//! What it decides:
//! - **Dependencies**: selectors (name, glob, regex) resolve to concrete
//!   tasks when tasks are added; a task becomes ready when every task its
//!   selectors matched has ended in a way its condition accepts (`success`,
//!   `any`, `failure`) and is skipped as soon as one ends in a way it
//!   rejects. Each distinct selector of a batch is one shared *fan-in* (a
//!   barrier with a count), so N tasks waiting on a glob over M tasks cost
//!   N + M links, not N·M; a job's links are bounded ([`MAX_LINKS`]). Work
//!   per finished task is proportional to the fan-ins it belongs to (and the
//!   waiters of those it closes); there is no scheduling tick.
//! - **Job dependencies**: a job may wait for other jobs of its project
//!   (`JobSpec::after`, resolved to job ids before submission; see
//!   [`match_jobs`]). Each dependency is a fan-in over parent jobs, on the
//!   same barrier as task fan-ins: nothing of the job is decided until all
//!   have closed, and a parent that ends as a condition rejects skips the
//!   whole job (it ends cancelled, its tasks skipped with the reason). A
//!   job that ends wakes the jobs waiting on it at once. Parents it does
//!   not hold are told with [`Scheduler::set_ended`].
//! - **Retries** with exponential backoff; lost attempts do not count.
//! - **Time limits**: an attempt past its limit is killed and counts as a failure.
//! - **Cancellation** cascades: queued tasks end at once, running ones are killed.
//! - **Job control**: a job may be suspended (a flag: nothing of it starts,
//!   its running attempts are stopped and their time limits pause) and
//!   resumed; a failed or cancelled job may be retried (what ended badly
//!   waits again, what succeeded is kept; one that ended before the
//!   scheduler started is first taken back with [`Scheduler::adopt`]); its
//!   priority offset may change.
//! - **Expansion**: a task may add tasks to its job when it succeeds (the
//!   encode planner adds one task per chunk).
//! - **Projects**: every job belongs to a project (or to the implicit one).
//!   Each project has its own ready queue (priority, then job age) and may
//!   have a [`Quota`] on concurrent cpu, memory, and cpu time per window; a
//!   project at its quota waits while others go on.
//! - **Fair share**: when a slot frees, the project with the least recent
//!   usage (decayed cpu time, charged as attempts end) per weight starts its
//!   next task; slots are taken while they are free.
//! - **Why waiting**: [`Scheduler::why_waiting`] names what holds a task back
//!   (dependencies, backoff, a quota, no free slot).
//! - **Compilation**: [`compile`] turns a spec as written into the one the
//!   scheduler runs: array tasks become one task per index (a dependency on
//!   the array's name waits for all of them), `${params.NAME}` templates are
//!   substituted, and the job is validated. It runs once, at submission.
//! - **Fencing**: a report for an attempt that is not the task's current one is ignored.
//! - **Faults**: a move the task state machine refuses is never made; it
//!   stops that job, which ends failed with the reason on its tasks, and
//!   the step carries a [`Command::Fault`] for the driver to log.
//!
//! ```
//! use tessera_core::{Scheduler, Event, Command};
//! use tessera_types::{JobId, JobSpec, TaskSpec, Action, AttemptUsage, JobState};
//! let mut s = Scheduler::new(2);
//! let spec = JobSpec::new("j", vec![
//!     TaskSpec::new("a", Action::Noop),
//!     TaskSpec::new("b", Action::Noop).after("a"),
//! ]);
//! let step = s.submit(JobId(1), &spec, 0).unwrap();
//! let Command::Start { task, attempt, .. } = step.commands[0].clone() else { panic!() };
//! let step = s.handle(Event::Exited { task, attempt, result: Ok(()),
//!     usage: AttemptUsage::default(), expansion: None }, 5);
//! assert_eq!(step.commands.len(), 1); // b starts
//! ```
//!
//! A project at its quota waits, and says so:
//!
//! ```
//! use tessera_core::{Scheduler, Quota};
//! use tessera_types::{Action, JobId, JobSpec, ProjectId, TaskRef, TaskSpec};
//! let mut s = Scheduler::new(4);
//! s.set_quota(ProjectId(7), Quota { max_cpu: Some(1), ..Quota::default() });
//! let spec = JobSpec::new("j", vec![
//!     TaskSpec::new("a", Action::Noop),
//!     TaskSpec::new("b", Action::Noop),
//! ]);
//! let step = s.submit_in(JobId(1), Some(ProjectId(7)), &spec, 0).unwrap();
//! assert_eq!(step.commands.len(), 1); // one slot of four: the quota allows one
//! let why = s.why_waiting(TaskRef::new(JobId(1), 1), 0).unwrap();
//! assert_eq!(why.to_string(), "project 7 is at its cpu quota (1 of 1)");
//! ```

mod after;
mod compile;
mod control;
mod dag;
mod dispatch;
mod error;
mod fair;
mod fault;
mod glob;
mod graph;
mod lifecycle;
mod limits;
mod restore;
mod sched;
mod step;
mod why;

pub use after::match_jobs;
pub use compile::{compile, ARRAY_COUNT_ENV, ARRAY_INDEX_ENV};
pub use control::ControlError;
pub use error::SpecError;
pub use fair::{Policy, ProjectUsage, Quota, QuotaKind};
pub use glob::glob_match;
pub use limits::{
    MAX_ARRAY, MAX_BACKOFF_MS, MAX_FOLDER_NAME, MAX_JOB_DEPS, MAX_JOB_PARENTS, MAX_JOB_PATTERNS,
    MAX_LINKS, MAX_MEMORY_MB, MAX_PATTERN_MATCHES, MAX_RETRIES,
};
pub use sched::{Scheduler, MAX_LOST};
pub use step::{Command, Event, Step};
pub use why::{FanInWait, JobWait, WaitReason, MAX_NAMED};
