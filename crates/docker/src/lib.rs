//! Tessera's Docker executor: each attempt runs in a container on a Docker
//! engine.
//!
//! [`DockerExecutor`] implements [`tessera_exec::Executor`] with the same
//! contract as the local executor (events `Started`, `Progress`, `Exited`
//! in order; calls that never block; logs in
//! `<log_dir>/<name>.<attempt>.{stdout,stderr}.log`; the same failure
//! messages), so the driver can use either. Each attempt's container is
//! named and labelled after its instance, job, task and attempt, has the
//! attempt's working directory mounted at the same path inside and out,
//! runs with the attempt's cpu and memory limits, is paused for suspend and
//! unpaused for resume, and is removed when its output has been collected.
//! After a restart, [`DockerExecutor::recover`] clears away the containers
//! of lost attempts.
//!
//! The engine talks HTTP through [bollard](https://docs.rs/bollard); the
//! executor owns a small tokio runtime for it, because the `Executor` trait
//! is synchronous.
//!
//! Images: `deploy/image/Dockerfile` builds the deployment image (Debian
//! with ffmpeg and tessera); `deploy/image/build-rootfs.sh` builds an
//! equivalent [`DEFAULT_IMAGE`] from this machine's own binaries, with no
//! registry, for tests and air-gapped hosts.
//!
//! ```no_run
//! use std::sync::{mpsc, Arc};
//! use tessera_docker::{DockerConfig, DockerExecutor};
//! use tessera_exec::{EventSink, ExecEvent, Executor, StartRequest};
//! use tessera_types::{Action, JobId, TaskRef};
//!
//! let (tx, rx) = mpsc::channel();
//! let sink: EventSink = Arc::new(move |e| drop(tx.send(e)));
//! let mut exec = DockerExecutor::connect(DockerConfig::new("doc", sink)).unwrap();
//! exec.start(StartRequest {
//!     task: TaskRef::new(JobId(1), 0),
//!     attempt: 1,
//!     name: "hello".into(),
//!     action: Action::command(["sh", "-c", "echo '#tessera-progress 1 1'"]),
//!     env: Default::default(),
//!     workdir: "/tmp/tessera-doc/work".into(),
//!     log_dir: "/tmp/tessera-doc/logs".into(),
//!     image: None,
//!     cpu: 1,
//!     memory_mb: 256,
//!     labels: Default::default(),
//!     placement: Default::default(),
//!     reach: Default::default(),
//!     user: None,
//!     mounts: Vec::new(),
//! });
//! let events: Vec<ExecEvent> = rx.iter().take(3).collect();
//! assert!(matches!(events[2], ExecEvent::Exited { result: Ok(()), .. }));
//! ```

mod attempt;
mod container;
mod error;
mod executor;
mod logs;
mod usage;

pub use container::{
    container_name, LABEL_ATTEMPT, LABEL_INSTANCE, LABEL_JOB, LABEL_NAME, LABEL_NODE, LABEL_TASK,
};
pub use error::DockerError;
pub use executor::{
    DockerConfig, DockerExecutor, Leftover, Recovery, DEFAULT_IMAGE, IMAGE_TESSERA,
};
