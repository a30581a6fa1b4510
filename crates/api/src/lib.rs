//! The HTTP API of `tessera server`: projects, members, API keys, DAG jobs,
//! task logs, metrics and an OpenAPI document, on axum.
//!
//! Handlers are thin: an extractor authorizes (its type says who may call:
//! a user, an admin, a project member with at least some role), a service
//! function does the work, a view goes back as JSON. Errors become HTTP in
//! one place, [`ApiError`], as `{"error":{"code":"not_found","message":"job
//! 42 does not exist"}}`. Every route is listed once in [`ROUTES`], from
//! which the router and the OpenAPI document are built.
//!
//! Jobs are submitted and cancelled only through the driver's
//! [`DriverHandle`](tessera_driver::DriverHandle) (the driver thread owns
//! scheduling); reads and account changes use the API's own store
//! connection, always on a blocking thread.
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

mod accounts;
mod auth;
mod body;
mod control;
mod encodes;
mod error;
mod events;
mod form;
mod handlers;
mod jobs;
mod keys;
mod metrics;
mod nesting;
mod openapi;
mod quota;
mod range;
mod routes;
mod serve;
mod state;
mod tenancy;
mod ui;
mod uploads;
mod verify;
mod views;
mod volumes;
mod workers;

pub use accounts::check_name;
pub use body::{BODY_LIMIT, SPEC_LIMIT, SPEC_PARSES, SPEC_QUEUE, YAML_SPEC_LIMIT};
pub use encodes::DEFAULT_MAX_UPLOAD;
pub use error::ApiError;
pub use keys::new_api_key;
pub use nesting::MAX_SPEC_DEPTH;
pub use openapi::document as openapi_document;
pub use routes::{router, Auth, ROUTES};
pub use serve::limits::{self, HttpLimits};
pub use serve::{serve, DRAIN_TIMEOUT};
pub use state::{ApiStore, AppState};
pub use volumes::Volumes;
pub use workers::{
    create_worker_token, revoke_worker_token, token_file, NodeInfo, NodeState, Placed, Pool,
};
