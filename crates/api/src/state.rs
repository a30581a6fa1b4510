//! What every handler shares: the API's store connection, the driver's
//! handle, the data directory (job logs), the key cache and the metrics.

use crate::keys::KeyCache;
use crate::metrics::Metrics;
use crate::volumes::Volumes;
use crate::ApiError;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
use tessera_driver::DriverHandle;
use tessera_store::{Accounts, Store};
use tessera_types::Millis;

/// A store the API can use: jobs (read) and accounts (read and write).
pub trait ApiStore: Store + Accounts + Send {}

impl<T: Store + Accounts + Send> ApiStore for T {}

/// The shared state of the router. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Arc<Mutex<Box<dyn ApiStore>>>,
    pub(crate) driver: DriverHandle,
    pub(crate) data_dir: PathBuf,
    pub(crate) keys: Arc<KeyCache>,
    pub(crate) metrics: Arc<Metrics>,
    /// Runs every argon2 verification, bounded (see [`crate::verify`]).
    pub(crate) verifier: Arc<crate::verify::Verifier>,
    /// Bounds the spec parses that run at once, and those that wait.
    pub(crate) spec_parses: Arc<crate::body::ParseGate>,
    /// Connection and request limits (used by [`crate::serve`]).
    pub(crate) limits: crate::HttpLimits,
    /// The largest upload accepted, in bytes.
    pub(crate) max_upload_bytes: u64,
    /// Directories whose files encodes may read in place, by name.
    pub(crate) volumes: Arc<Volumes>,
    /// Becomes `true` when the server starts shutting down, so long-lived
    /// responses (event streams, followed logs) end instead of holding the
    /// drain up.
    pub(crate) closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// The uids projects' tasks run as (the server runs as root): the
    /// folders the API prepares for a project are that project's user's.
    pub(crate) task_uids: Option<tessera_exec::TaskUids>,
    /// Workers and their leases, when tasks run on workers.
    pub(crate) workers: Option<Arc<crate::workers::Pool>>,
    pub(crate) worker_tokens: Arc<crate::workers::Verified>,
}

impl AppState {
    /// `store` is the API's own connection (reads and account writes); jobs
    /// are submitted and cancelled only through `driver`. `data_dir` is the
    /// driver's workspace root (`<data_dir>/jobs/<id>/logs/...`).
    pub fn new(store: Box<dyn ApiStore>, driver: DriverHandle, data_dir: PathBuf) -> Self {
        let metrics = Arc::new(Metrics::default());
        crate::metrics::follow(driver.subscribe(), metrics.clone());
        Self {
            store: Arc::new(Mutex::new(store)),
            driver,
            data_dir,
            keys: Arc::new(KeyCache::default()),
            metrics: metrics.clone(),
            verifier: Arc::new(crate::verify::Verifier::start(metrics.clone())),
            spec_parses: Arc::default(),
            limits: crate::HttpLimits::default(),
            max_upload_bytes: crate::encodes::DEFAULT_MAX_UPLOAD,
            volumes: Arc::new(Volumes::default()),
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
            task_uids: None,
            workers: None,
            worker_tokens: Arc::default(),
        }
    }

    /// Sets the largest upload accepted (default 8 GiB); a larger one is a 413.
    pub fn with_max_upload_bytes(mut self, bytes: u64) -> Self {
        self.max_upload_bytes = bytes;
        self
    }

    /// Sets the connection and request limits [`crate::serve`] holds
    /// clients to (default: [`crate::HttpLimits::default`]).
    pub fn with_http_limits(mut self, limits: crate::HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the uids projects' tasks run as (the driver's `task_uids`),
    /// so the folders a project's tasks use are given to its user.
    pub fn with_task_uids(mut self, uids: Option<tessera_exec::TaskUids>) -> Self {
        self.task_uids = uids;
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
        self.volumes = Arc::new(volumes);
        self
    }

    /// Runs `f` on the store on a blocking thread.
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn ApiStore) -> Result<T, ApiError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().unwrap_or_else(PoisonError::into_inner);
            f(guard.as_mut())
        })
        .await?
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}
