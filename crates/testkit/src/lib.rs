//! Test support for Tessera.
//!
//! [`Sim`] drives the pure scheduler with a **fake clock** and a **fake
//! executor**: each started attempt "runs" for a duration a [`Behaviour`]
//! picks and then succeeds or fails as it says (injected failures), all in
//! virtual time, so thousands of tasks simulate in milliseconds. Every
//! [`Change`] the core emits is replayed into a [`Shadow`] store that refuses
//! illegal transitions, and the harness checks invariants at every step:
//! slots never oversubscribed, no project over its quota (cpu and memory at
//! every step, cpu time per window at every start), no task starts before
//! its dependencies allow nor before its job's parent jobs (`JobSpec::after`,
//! resolved against the shadow store as the driver resolves them against the
//! store) have ended as its conditions accept, the change log agrees with
//! the scheduler.
//!
//! ```
//! use tessera_testkit::{Sim, Behaviour};
//! use tessera_types::{JobSpec, TaskSpec, Action, JobState};
//! let mut sim = Sim::new(2, Behaviour::fixed(100));
//! let job = sim.submit(&JobSpec::new("j", vec![
//!     TaskSpec::new("a", Action::Noop),
//!     TaskSpec::new("b", Action::Noop).after("a"),
//! ]));
//! sim.run(10_000);
//! assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
//! assert_eq!(sim.now, 200);
//! ```
//!
//! [`makespan`] runs the encode DAG's shape (probe, plan, thousands of chunks,
//! concat, verify) through [`Sim`] and compares its makespan with the lower
//! bound no schedule can beat.
//!
//! [`env`] is the one rule every crate's tests follow when a part they need
//! (Docker, PostgreSQL, Chromium, root...) is missing: fail when `CI` says
//! the run is strict, otherwise say in one line what is missing and skip.

pub mod env;
pub mod makespan;
mod shadow;
pub mod sim;

pub use shadow::Shadow;
pub use sim::{Behaviour, Sim};
