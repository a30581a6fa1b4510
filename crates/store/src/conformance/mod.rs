//! The behaviour every backend ([`Store`] and [`Accounts`]) must show, as
//! plain functions that panic on a failure. A backend's tests run each entry of [`TESTS`]:
//!
//! ```no_run
//! use tessera_store::conformance::{Backend, TESTS};
//! # fn backend() -> Box<dyn Backend> { unimplemented!() }
//! for (name, test) in TESTS {
//!     eprintln!("conformance: {name}");
//!     test(&mut *backend());
//! }
//! ```

mod accounts;
mod after;
mod counts;
mod durable;
mod jobs;
mod nodes;
mod usage;

pub use accounts::{
    api_keys_are_created_found_revoked_and_touched, jobs_belong_to_projects,
    members_are_added_changed_and_removed, names_are_unique_and_not_blank,
    projects_start_with_their_owner,
};
pub use after::job_dependencies_and_names_round_trip;
pub use counts::{counts_group_by_state_and_project, pages_follow_index_order};
pub use durable::{
    a_finished_job_loads_back_as_it_was, attempts_record_outcome_and_usage,
    find_job_by_key_returns_newest, state_survives_reopen,
};
pub use jobs::{
    apply_is_all_or_nothing, create_and_load_round_trip, expansion_appends_tasks,
    load_unfinished_excludes_terminal_jobs, suspension_and_priority_persist,
    task_changes_are_recorded,
};
pub use nodes::{
    attempts_record_their_node_and_transfers, node_usage_groups_ended_attempts_by_node,
    starts_are_written_all_or_nothing,
};
pub use usage::{quotas_are_kept_per_project, usage_since_charges_ended_attempts};

use crate::{Accounts, StartedAttempt, Store};
use tessera_types::{
    Action, Change, Condition, JobSpec, TaskRef, TaskSnapshot, TaskSpec, TaskState,
};

/// What a backend is: a [`Store`] and [`Accounts`] over one database.
pub trait Database: Store + Accounts {}
impl<T: Store + Accounts> Database for T {}

/// Makes stores for the suite.
pub trait Backend {
    /// A store over a new, empty database.
    fn create(&mut self) -> Box<dyn Database>;
    /// A store over the database of the last [`create`](Backend::create),
    /// opened afresh as after a restart. The suite drops the previous store
    /// first.
    fn reopen(&mut self) -> Box<dyn Database>;
}

/// A conformance test.
pub type Test = fn(&mut dyn Backend);

/// Every conformance test, by name.
pub const TESTS: &[(&str, Test)] = &[
    ("create_and_load_round_trip", create_and_load_round_trip),
    ("expansion_appends_tasks", expansion_appends_tasks),
    ("apply_is_all_or_nothing", apply_is_all_or_nothing),
    ("task_changes_are_recorded", task_changes_are_recorded),
    (
        "suspension_and_priority_persist",
        suspension_and_priority_persist,
    ),
    (
        "load_unfinished_excludes_terminal_jobs",
        load_unfinished_excludes_terminal_jobs,
    ),
    ("state_survives_reopen", state_survives_reopen),
    (
        "a_finished_job_loads_back_as_it_was",
        a_finished_job_loads_back_as_it_was,
    ),
    (
        "find_job_by_key_returns_newest",
        find_job_by_key_returns_newest,
    ),
    (
        "attempts_record_outcome_and_usage",
        attempts_record_outcome_and_usage,
    ),
    (
        "names_are_unique_and_not_blank",
        names_are_unique_and_not_blank,
    ),
    (
        "projects_start_with_their_owner",
        projects_start_with_their_owner,
    ),
    (
        "members_are_added_changed_and_removed",
        members_are_added_changed_and_removed,
    ),
    (
        "api_keys_are_created_found_revoked_and_touched",
        api_keys_are_created_found_revoked_and_touched,
    ),
    ("jobs_belong_to_projects", jobs_belong_to_projects),
    (
        "counts_group_by_state_and_project",
        counts_group_by_state_and_project,
    ),
    ("pages_follow_index_order", pages_follow_index_order),
    ("quotas_are_kept_per_project", quotas_are_kept_per_project),
    (
        "usage_since_charges_ended_attempts",
        usage_since_charges_ended_attempts,
    ),
    (
        "attempts_record_their_node_and_transfers",
        attempts_record_their_node_and_transfers,
    ),
    (
        "starts_are_written_all_or_nothing",
        starts_are_written_all_or_nothing,
    ),
    (
        "node_usage_groups_ended_attempts_by_node",
        node_usage_groups_ended_attempts_by_node,
    ),
    (
        "job_dependencies_and_names_round_trip",
        job_dependencies_and_names_round_trip,
    ),
];

/// A job with a bit of everything a spec can hold.
pub fn sample_spec(name: &str) -> JobSpec {
    JobSpec::new(
        name,
        vec![
            TaskSpec::new("probe", Action::op("probe", ["in.mkv"])).with_env("LANG", "C"),
            TaskSpec::new("encode-0", Action::command(["ffmpeg", "-i", "x"]))
                .after("probe")
                .with_retries(3, 500)
                .with_time_limit_ms(60_000)
                .with_cpu(2)
                .with_priority(7),
            TaskSpec::new("merge", Action::Noop)
                .after_if("encode-*", Condition::Any)
                .expanding(),
        ],
    )
}

pub(crate) fn waiting() -> TaskSnapshot {
    TaskSnapshot {
        state: TaskState::Waiting,
        attempt: 0,
        failures: 0,
        not_before: 0,
    }
}

pub(crate) fn started(task: TaskRef, attempt: u32, pid: u32, node: Option<&str>) -> StartedAttempt {
    StartedAttempt {
        task,
        attempt,
        pid,
        node: node.map(str::to_string),
    }
}

pub(crate) fn task_change(task: TaskRef, state: TaskState, attempt: u32) -> Change {
    Change::Task {
        task,
        state,
        attempt,
        failures: 0,
        not_before: 0,
        reason: None,
    }
}
