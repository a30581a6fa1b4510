//! What every handler shares: the service (store, driver, keys, files),
//! the metrics, the bounds on spec parses, the HTTP limits and the worker
//! pool.

use crate::body::ParseGate;
use crate::metrics::Metrics;
use crate::serve::limits::HttpLimits;
use axum::extract::FromRef;
use std::path::PathBuf;
use std::sync::Arc;
use tessera_driver::DriverHandle;
use tessera_service::{Service, ServiceStore, Volumes};

/// The shared state of the router. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Everything the routes do, and who may do it.
    pub(crate) service: Service,
    pub(crate) metrics: Arc<Metrics>,
    /// Bounds the spec parses that run at once, and those that wait.
    pub(crate) spec_parses: Arc<ParseGate>,
    /// Connection and request limits (used by [`crate::serve`]).
    pub(crate) limits: HttpLimits,
    /// Workers and their leases, when tasks run on workers.
    pub(crate) workers: Option<Arc<crate::workers::Pool>>,
    pub(crate) worker_tokens: Arc<crate::workers::Verified>,
    /// Other APIs served on the same listener (a foreign API's router,
    /// nested under its own path prefix).
    pub(crate) nested: Vec<(&'static str, axum::Router)>,
}

impl AppState {
    /// `store` is the service's own connection (reads and account writes);
    /// jobs are submitted and controlled only through `driver`. `data_dir`
    /// is the driver's workspace root (`<data_dir>/jobs/<id>/logs/...`).
    pub fn new(store: Box<dyn ServiceStore>, driver: DriverHandle, data_dir: PathBuf) -> Self {
        let metrics = Arc::new(Metrics::default());
        crate::metrics::follow(driver.subscribe(), metrics.clone());
        let service = Service::new(store, driver, data_dir, metrics.clone());
        Self {
            service,
            metrics,
            spec_parses: Arc::default(),
            limits: HttpLimits::default(),
            workers: None,
            worker_tokens: Arc::default(),
            nested: Vec::new(),
        }
    }

    /// Serves `router` under `prefix` (`/api/1.0`) on the same listener,
    /// behind the same connection limits, deadline and body limit.
    pub fn with_nested(mut self, prefix: &'static str, router: axum::Router) -> Self {
        self.nested.push((prefix, router));
        self
    }

    /// The service under this API, to serve other APIs with the same one.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Sets the largest upload accepted (default 8 GiB); a larger one is a 413.
    pub fn with_max_upload_bytes(mut self, bytes: u64) -> Self {
        self.service = self.service.with_max_upload_bytes(bytes);
        self
    }

    /// Sets the connection and request limits [`crate::serve`] holds
    /// clients to (default: [`HttpLimits::default`]).
    pub fn with_http_limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the uids projects' tasks run as (the driver's `task_uids`),
    /// so the folders a project's tasks use are given to its user.
    pub fn with_task_uids(mut self, uids: Option<tessera_exec::TaskUids>) -> Self {
        self.service = self.service.with_task_uids(uids);
        self
    }

    /// Serves the worker routes for `pool` (whose [`Placed`] executor
    /// the driver runs attempts with) and starts its lease timer.
    ///
    /// [`Placed`]: crate::workers::Placed
    pub fn with_workers(mut self, pool: Arc<crate::workers::Pool>) -> Self {
        crate::workers::expire_leases(&pool);
        self.workers = Some(pool);
        self
    }

    /// Sets the volumes encodes may read from (default: none).
    pub fn with_volumes(mut self, volumes: Volumes) -> Self {
        self.service = self.service.with_volumes(volumes);
        self
    }

    /// Names the server's own node (its slots) as the nodes list does, so
    /// its attempts carry that name everywhere.
    pub fn with_node_name(mut self, name: &str) -> Self {
        self.service = self.service.with_node_name(name);
        self
    }
}

impl FromRef<AppState> for Arc<ParseGate> {
    fn from_ref(state: &AppState) -> Self {
        state.spec_parses.clone()
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

impl FromRef<AppState> for crate::workers::Workers {
    fn from_ref(state: &AppState) -> Self {
        Self {
            pool: state.workers.clone(),
            tokens: state.worker_tokens.clone(),
            service: state.service.clone(),
        }
    }
}
