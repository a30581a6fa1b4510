//! The driver: the one loop that does I/O around the pure scheduler.
//!
//! Each turn it takes every event that has arrived (attempts exiting, a
//! cancel, a shutdown), feeds them to [`tessera_core::Scheduler`] with the
//! current time, **commits the resulting changes to the store in one
//! transaction**, and only then carries out the commands (start or kill
//! attempts on the executor). A crash at any point leaves the store with a
//! state the scheduler can be rebuilt from ([`Driver::recover`]).
//!
//! There is no scheduling tick: the loop sleeps until an event arrives or the
//! core's next timer (a retry backoff, a time limit) is due.
//!
//! ```no_run
//! use tessera_driver::{Driver, DriverConfig};
//! use tessera_exec::InProcessExecutor;
//! use tessera_store::SqliteStore;
//! use tessera_types::{JobSpec, TaskSpec, Action};
//! let store = SqliteStore::open("state.db").unwrap();
//! let config = DriverConfig::new(2, "work");
//! let mut driver = Driver::new(store, InProcessExecutor::new, config);
//! driver.recover(None).unwrap();
//! let job = driver.submit(&JobSpec::new("j", vec![TaskSpec::new("a", Action::Noop)]), None).unwrap();
//! let state = driver.run_job(job, &mut ()).unwrap();
//! ```

mod driver;
mod feed;
mod handle;
mod volumes;

pub use driver::{
    attempt_log_path, usage_horizon, Driver, DriverConfig, DriverError, Exit, Observer, SystemClock,
};
pub use feed::{Feed, FeedItem};
pub use handle::DriverHandle;
pub use volumes::{Volume, Volumes};
