//! The words every Tessera crate speaks: ids, job and task specs, states,
//! attempt outcomes, and the small line protocol tasks use to report progress.
//!
//! This crate holds data only (serde, no I/O). The pure scheduler
//! (`tessera-core`) consumes these types, the store persists them, executors
//! and the CLI produce and display them.
//!
//! ```
//! use tessera_types::{JobSpec, TaskSpec, Action};
//! let spec = JobSpec::new("hello", vec![
//!     TaskSpec::new("a", Action::command(["echo", "hi"])),
//!     TaskSpec::new("b", Action::command(["true"])).after("a"),
//! ]);
//! assert_eq!(spec.tasks[1].deps[0].selector.to_string(), "a");
//! ```

mod after;
mod change;
mod folder;
mod ids;
mod mount;
mod place;
mod progress;
mod quota;
mod reach;
mod spec;
mod state;

pub use after::{JobDependency, JobSelector};
pub use change::{Change, JobSnapshot, TaskSnapshot};
pub use folder::folder_name;
pub use ids::{AttemptNo, JobId, KeyId, Millis, NodeId, ProjectId, TaskRef, UserId};
pub use mount::Mount;
pub use place::{Near, PlaceRule, MAX_RULES, MAX_RULE_JOBS};
pub use progress::{parse_progress_line, progress_line, Progress, PROGRESS_PREFIX};
pub use quota::Quota;
pub use reach::{is_plain_absolute, Grant, OutOfReach, Reach, REACH_ENV};
pub use spec::{
    Action, ArraySpec, Condition, Dependency, JobSpec, Resources, RetryPolicy, Selector,
    SelectorError, TaskSpec, DEFAULT_SHELL, MAX_META, MAX_META_ENTRY,
};
pub use state::{
    AttemptOutcome, AttemptUsage, JobState, ParseStateError, Role, TaskState, TransitionError,
};
