//! A Docker Engine API endpoint (API 1.41, what the docker CLI negotiates)
//! over Tessera's service layer, so the plain docker CLI drives Tessera:
//! `tessera server --docker --docker-api 127.0.0.1:2375`, then
//!
//! ```text
//! docker --config DIR -H tcp://127.0.0.1:2375 run -d --name split IMAGE sh -c '...'
//! docker --config DIR -H tcp://127.0.0.1:2375 run -d --name encode1 -e waitfor:container==split IMAGE ...
//! docker --config DIR -H tcp://127.0.0.1:2375 run -d --name merge -e 'waitfor:container==encode*' IMAGE ...
//! ```
//!
//! with `DIR/config.json` holding `{"HttpHeaders": {"Authorization":
//! "Bearer tsk_...", "X-Tessera-Project": "video"}}`.
//!
//! Each container is a job of one task running its image (the docker
//! executor: the server's engine with `--docker`, or workers offering
//! docker); its id is the job's id, its name the job's name. Swarm
//! classic's `-e waitfor:container==NAME` (exact, glob, `/regex/`) become
//! job dependencies on the project's containers matched at create
//! ([`create`] says what is mapped and what refused); the job waits
//! durably, so containers and their waits survive a restart of the
//! server. Exit codes, times and states come from the job's attempts
//! ([`state`]). Nothing here schedules: everything goes through
//! [`tessera_service::Service`].

mod containers;
pub mod create;
mod engine;
pub mod http;
mod listen;
mod routes;
mod run;
pub mod state;
mod streams;
mod system;
mod views;

pub use containers::{MAX_LISTED, PROJECT_HEADER};
pub use engine::Engine;
pub use listen::{serve, Bound, Listen, HEADER_TIMEOUT, MAX_CONNECTIONS};
pub use routes::MAX_BODY;
pub use system::{Cluster, API_VERSION};

use std::sync::Arc;
use tessera_service::Service;
use tessera_types::JobId;

/// The endpoint: the service it translates to, the engine it asks about
/// images and pulls, and how to tell the cluster's size.
#[derive(Clone)]
pub struct DockerApi {
    pub(crate) service: Service,
    pub(crate) engine: Engine,
    pub(crate) cluster: Arc<dyn Fn() -> Cluster + Send + Sync>,
    /// Why no node takes a job's queued attempt, when placement says no
    /// ready node ever could (see [`DockerApi::with_unplaced`]).
    pub(crate) unplaced: Arc<dyn Fn(JobId) -> Option<String> + Send + Sync>,
}

impl DockerApi {
    pub fn new(
        service: Service,
        engine: Engine,
        cluster: impl Fn() -> Cluster + Send + Sync + 'static,
    ) -> Self {
        Self {
            service,
            engine,
            cluster: Arc::new(cluster),
            unplaced: Arc::new(|_| None),
        }
    }

    /// Tells `docker ps` and `inspect` why a container handed to placement
    /// runs nowhere (`unplaced(job)`: the reason placement gives, if any):
    /// it is shown waiting for a node, with that reason.
    pub fn with_unplaced(
        mut self,
        unplaced: impl Fn(JobId) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.unplaced = Arc::new(unplaced);
        self
    }
}
