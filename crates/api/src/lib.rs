//! The native HTTP API of `tessera server` (projects, members, API keys,
//! DAG jobs, task logs, uploads, encodes), its web UI, metrics and an
//! OpenAPI document, on axum; and the worker pool's routes.
//!
//! A translation over the service layer ([`tessera_service`]), which does
//! the work and decides who may do it. Handlers are thin: an extractor
//! authenticates and asks the service for the proof a route needs (its
//! type says who may call: a user, an admin, a project member with at
//! least some role), a service call does the work, a view goes back as
//! JSON. Errors become HTTP in one place, [`ApiError`] (service errors
//! included), as `{"error":{"code":"not_found","message":"job 42 does not
//! exist"}}`. Every route is listed once in [`ROUTES`], from which the
//! router and the OpenAPI document are built.
//!
//! Keys look like `tsk_<prefix>_<secret>`; the store keeps the prefix and an
//! argon2 hash ([`new_api_key`]). Send them as `Authorization: Bearer <key>`.
//!
//! ```no_run
//! # async fn run(store: Box<dyn tessera_api::ApiStore>, driver: tessera_driver::DriverHandle) -> std::io::Result<()> {
//! let state = tessera_api::AppState::new(store, driver, "data".into());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! tessera_api::serve(listener, state, std::future::pending()).await
//! # }
//! ```

mod auth;
mod body;
mod error;
mod events;
mod form;
mod handlers;
mod incoming;
mod metrics;
mod nesting;
mod openapi;
mod range;
mod router;
mod routes;
mod serve;
mod state;
mod ui;
mod upload;
mod views;
mod workers;

pub use body::{BODY_LIMIT, SPEC_LIMIT, SPEC_PARSES, SPEC_QUEUE, YAML_SPEC_LIMIT};
pub use error::ApiError;
pub use nesting::MAX_SPEC_DEPTH;
pub use openapi::document as openapi_document;
pub use router::router;
pub use routes::{Auth, ROUTES};
pub use serve::limits::{self, HttpLimits};
pub use serve::{serve, DRAIN_TIMEOUT};
pub use state::AppState;
pub use tessera_service::{
    check_name, new_api_key, ServiceStore as ApiStore, Volumes, DEFAULT_MAX_UPLOAD,
    DEFAULT_NODE_NAME,
};
pub use workers::{
    create_worker_token, revoke_worker_token, token_file, NodeInfo, NodeState, Placed, Pool,
};
