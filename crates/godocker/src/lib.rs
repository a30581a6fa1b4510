//! Go-Docker's REST API, as godocker-cli 1.0.25 (`godlogin`, `godproject`,
//! `godjob`, `godimage`, `goduser`, `godfile`) speaks it, served at
//! `/api/1.0/` on the server's own listener. A translation over the service
//! layer, never a second scheduling path:
//!
//! - a Go-Docker job is a Tessera job of one image task (an array job
//!   `start:stop:step`: one task per index) running the user's command in
//!   the image, in the job's own folder (`GODOCKER_PWD`), with Go-Docker's
//!   environment (`GODOCKER_JID`, `GOGOCKER_TASK_ID`...);
//! - `--parent 12,13,` becomes job-level dependencies (`after`, success);
//! - what Go-Docker keeps about a job that Tessera does not (description,
//!   tags, the command as written, parents) lives in the job's `meta`;
//! - what it keeps about a project (description, priority, volumes with
//!   their acl) lives in a small file per project (`projects.rs`);
//! - tokens (`/api/1.0/authenticate`) are kept in memory (`token.rs`).
//!
//! The client exits 0 on HTTP errors and prints a canned sentence, and the
//! body only for 400 and 500: so every refusal a user must read (a refused
//! job, an unknown parent) is a 400 whose JSON `msg` says what to do.

mod closing;
mod files;
mod jobs;
mod projects;
mod reply;
mod spec;
mod token;
mod users;
mod view;

use axum::routing::{delete, get, post};
use axum::Router;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use tessera_service::Service;

pub use projects::Volume;
pub use spec::{translate, Create, MAX_PARENTS};
pub use token::{Tokens, MAX_SESSIONS, TOKEN_TTL};

/// Where Go-Docker's API is mounted on the server's listener.
pub const PREFIX: &str = "/api/1.0";

/// The labels the nodes carry now, each with its values (Go-Docker's
/// label constraints, `-l NAME==VALUE`).
pub type Labels = Arc<dyn Fn() -> BTreeMap<String, BTreeSet<String>> + Send + Sync>;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Gd {
    pub(crate) service: Service,
    pub(crate) tokens: Arc<Tokens>,
    pub(crate) projects: Arc<projects::Sidecar>,
    pub(crate) labels: Labels,
}

/// The routes under [`PREFIX`] (nest them there), over `service`, with no
/// node labels. Go-Docker data of projects is kept under
/// `<data_dir>/godocker/`.
pub fn router(service: Service) -> Router {
    router_with_labels(service, Arc::new(BTreeMap::new))
}

/// [`router`], offering the node labels `labels` gives as constraints.
pub fn router_with_labels(service: Service, labels: Labels) -> Router {
    let dir: PathBuf = service.data_dir().join("godocker");
    let gd = Gd {
        service,
        tokens: Arc::new(Tokens::default()),
        projects: Arc::new(projects::Sidecar::new(dir)),
        labels,
    };
    Router::new()
        .route("/authenticate", post(users::authenticate))
        .route("/config", get(users::config))
        .route("/image", get(users::images))
        .route("/user", get(users::list))
        .route(
            "/user/{login}",
            get(users::show).put(users::update).delete(users::remove),
        )
        .route("/user/{login}/project", get(users::projects))
        .route("/user/{login}/usage", get(users::usage))
        .route("/user/{login}/task", delete(jobs::kill_all))
        .route("/project", get(projects::list).post(projects::create))
        .route(
            "/project/{project}",
            get(projects::show)
                .post(projects::update)
                .delete(closing::remove),
        )
        .route("/project/{project}/quota", delete(closing::quota_reset))
        .route("/project/{project}/usage", get(projects::usage))
        .route("/task", post(jobs::create))
        .route("/task/active", get(jobs::active))
        .route("/task/active/all", get(jobs::active_all))
        .route("/task/over/{skip}/{limit}", post(jobs::over))
        .route("/task/over/all/{skip}/{limit}", post(jobs::over_all))
        .route(
            "/task/{id}",
            get(jobs::show).delete(jobs::kill).put(jobs::update),
        )
        .route("/task/{id}/suspend", get(jobs::suspend))
        .route("/task/{id}/resume", get(jobs::resume))
        .route("/task/{id}/archive", get(jobs::archive).delete(jobs::purge))
        .route(
            "/archive/{days}",
            get(jobs::archive_old).delete(jobs::purge),
        )
        .route("/task/{id}/files/", get(files::root))
        .route("/task/{id}/files/{*path}", get(files::path))
        .fallback(reply::no_route)
        .method_not_allowed_fallback(reply::no_method)
        .with_state(gd)
}
