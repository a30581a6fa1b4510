//! The durable record of Tessera's jobs, tasks and attempts.
//!
//! The scheduler core is pure: with every step it returns the
//! [`Change`](tessera_types::Change)s it made, and the driver commits them
//! here, one transaction per batch, *before* it acts on them. After a crash
//! the driver calls [`Store::load_unfinished`] and the core carries on from
//! exactly what was committed. Readers (the CLI, the API) get plain rows:
//! [`JobRecord`], [`TaskRecord`], [`AttemptRecord`].
//!
//! [`Store`] is the interface; [`SqliteStore`] is the default backend (one
//! file, WAL, one scheduler per file enforced by a lock file) and
//! [`PostgresStore`] the one for a shared server (one scheduler per schema,
//! enforced by an advisory lock). Beside jobs, the same database holds
//! [`Accounts`]: users, projects (every job may belong to one), members and
//! API keys. Every backend must pass the [`conformance`] suite.
//!
//! ```
//! use tessera_store::{SqliteStore, Store};
//! use tessera_types::{Action, Change, JobSpec, JobState, TaskSpec};
//!
//! let mut store = SqliteStore::open_in_memory()?;
//! let spec = JobSpec::new("hello", vec![TaskSpec::new("a", Action::Noop)]);
//! let job = store.create_job(None, &spec, Some("hello-key"), 1_000)?;
//! store.apply(&[Change::JobState { job, state: JobState::Running }], 2_000)?;
//! let unfinished = store.load_unfinished()?;
//! assert_eq!(unfinished[0].spec, spec);
//! assert_eq!(store.find_job_by_key("hello-key")?.unwrap().id, job);
//! # Ok::<(), tessera_store::StoreError>(())
//! ```

mod accounts;
mod boxed;
mod codec;
pub mod conformance;
mod error;
mod postgres;
mod record;
mod sqlite;
mod store;

pub use self::postgres::PostgresStore;
pub use accounts::{Accounts, KeyRecord, ProjectRecord, UserRecord};
pub use error::StoreError;
pub use record::{AttemptRecord, JobRecord, NodeUsage, StartedAttempt, TaskRecord};
pub use sqlite::{SqliteStore, SCHEMA_VERSION};
pub use store::{Store, UsageRow};
