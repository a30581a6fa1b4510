//! Executors run attempts and report what happens to them.
//!
//! The driver hands an [`Executor`] a [`StartRequest`] for each attempt the
//! scheduler starts, and gets [`ExecEvent`]s back on an [`EventSink`]:
//! `Started` (with the pid, which the driver records so a restarted
//! scheduler can clean up), `Progress` (from `#tessera-progress <done>
//! <total>` lines the task prints), and one `Exited` with the result and the
//! attempt's resource use. Calls never block on the attempt.
//!
//! - [`LocalExecutor`] runs each attempt as a process in its own process
//!   group, with its logs in files, optionally as another user ([`RunAs`]);
//!   a [`Spawner`] (a small helper process, started early) forks and reaps
//!   the attempts so each one's peak memory is its own;
//!   [`kill_orphan_group`] cleans up after a crashed predecessor.
//! - [`InProcessExecutor`] completes no-op tasks without any process, for
//!   benchmarks and tests of the scheduler.
//!
//! ```
//! use std::sync::{mpsc, Arc};
//! use tessera_exec::{EventSink, ExecEvent, Executor, LocalConfig, LocalExecutor, StartRequest};
//! use tessera_types::{Action, JobId, TaskRef};
//!
//! let (tx, rx) = mpsc::channel();
//! let sink: EventSink = Arc::new(move |e| drop(tx.send(e)));
//! let mut exec = LocalExecutor::new(LocalConfig { op_program: "tessera".into(), sink });
//! let dir = std::env::temp_dir().join(format!("tessera-exec-doc-{}", std::process::id()));
//! exec.start(StartRequest {
//!     task: TaskRef::new(JobId(1), 0),
//!     attempt: 1,
//!     name: "hello".into(),
//!     action: Action::command(["sh", "-c", "echo '#tessera-progress 1 1'"]),
//!     env: Default::default(),
//!     workdir: dir.join("work"),
//!     log_dir: dir.join("logs"),
//!     image: None,
//!     cpu: 1,
//!     memory_mb: 0,
//!     labels: Default::default(),
//!     placement: Default::default(),
//!     reach: Default::default(),
//!     user: None,
//!     mounts: Vec::new(),
//! });
//! let events: Vec<ExecEvent> = rx.iter().take(3).collect();
//! assert!(matches!(events[2], ExecEvent::Exited { result: Ok(()), .. }));
//! # std::fs::remove_dir_all(dir).unwrap();
//! ```

mod error;
mod executor;
mod inprocess;
mod local;
mod orphan;
mod prepare;
mod spawn;
mod split;
mod user;

pub use error::{signal_name, ExecError};
pub use executor::{Bind, EventSink, ExecEvent, Executor, Placement, StartRequest};
pub use inprocess::InProcessExecutor;
pub use local::{attempt_marker, last_line, log_file, LocalConfig, LocalExecutor, ATTEMPT_ENV};
pub use orphan::kill_orphan_group;
pub use prepare::{prepare_attempt, AttemptFiles};
pub use spawn::Spawner;
pub use split::Split;
pub use user::{private_dir, RunAs, TaskUids};
