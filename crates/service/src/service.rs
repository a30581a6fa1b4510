//! The [`Service`] itself: what every operation shares.

use crate::auth::keys::KeyCache;
use crate::auth::verify::Verifier;
use crate::files::volumes::Volumes;
use crate::observe::Observer;
use crate::ServiceError;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
use tessera_driver::DriverHandle;
use tessera_store::{Accounts, Store};
use tessera_types::Millis;

/// The default of `max_upload_bytes`: 8 GiB.
pub const DEFAULT_MAX_UPLOAD: u64 = 8 << 30;

/// The server's own node's name when none is given.
pub const DEFAULT_NODE_NAME: &str = "server";

/// A store the service can use: jobs (read) and accounts (read and write).
pub trait ServiceStore: Store + Accounts + Send {}

impl<T: Store + Accounts + Send> ServiceStore for T {}

/// The service: cheap to clone (every part is shared), one per server, and
/// the same one under every API.
#[derive(Clone)]
pub struct Service {
    pub(crate) store: Arc<Mutex<Box<dyn ServiceStore>>>,
    pub(crate) driver: DriverHandle,
    pub(crate) data_dir: Arc<Path>,
    pub(crate) keys: Arc<KeyCache>,
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) observer: Arc<dyn Observer>,
    /// The largest upload accepted, in bytes.
    pub(crate) max_upload_bytes: u64,
    /// Directories whose files encodes may read in place, by name.
    pub(crate) volumes: Arc<Volumes>,
    /// Becomes `true` when the server starts shutting down, so long-lived
    /// streams (job events, followed logs) end instead of holding it up.
    pub(crate) closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// The uids projects' tasks run as (the server runs as root): the
    /// folders the service prepares for a project are that project's user's.
    pub(crate) task_uids: Option<tessera_exec::TaskUids>,
    /// The name of the server's own node (its slots), as the nodes list
    /// shows it: attempts that ran there carry it.
    pub(crate) node_name: Arc<str>,
}

impl Service {
    /// `store` is the service's own connection (reads and account writes);
    /// jobs are submitted and controlled only through `driver`. `data_dir`
    /// is the driver's workspace root (`<data_dir>/jobs/<id>/logs/...`),
    /// and holds uploads, encodes and outputs. `observer` is told of
    /// submissions and secret checks.
    pub fn new(
        store: Box<dyn ServiceStore>,
        driver: DriverHandle,
        data_dir: PathBuf,
        observer: Arc<dyn Observer>,
    ) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            driver,
            data_dir: data_dir.into(),
            keys: Arc::default(),
            verifier: Arc::new(Verifier::start(observer.clone())),
            observer,
            max_upload_bytes: DEFAULT_MAX_UPLOAD,
            volumes: Arc::default(),
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
            task_uids: None,
            node_name: Arc::from(DEFAULT_NODE_NAME),
        }
    }

    /// Names the server's own node (default [`DEFAULT_NODE_NAME`]).
    pub fn with_node_name(mut self, name: &str) -> Self {
        self.node_name = Arc::from(name);
        self
    }

    /// The server's own node's name.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Sets the largest upload accepted (default 8 GiB).
    pub fn with_max_upload_bytes(mut self, bytes: u64) -> Self {
        self.max_upload_bytes = bytes;
        self
    }

    /// Sets the uids projects' tasks run as (the driver's `task_uids`),
    /// so the folders a project's tasks use are given to its user.
    pub fn with_task_uids(mut self, uids: Option<tessera_exec::TaskUids>) -> Self {
        self.task_uids = uids;
        self
    }

    /// Sets the volumes encodes may read from (default: none).
    pub fn with_volumes(mut self, volumes: Volumes) -> Self {
        self.volumes = Arc::new(volumes);
        self
    }

    /// The volumes the operator configured.
    pub fn volumes(&self) -> &Volumes {
        &self.volumes
    }

    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_bytes
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The scheduler's slots (on this machine, or its workers' sum).
    pub fn slots(&self) -> u32 {
        self.driver.slots()
    }

    /// Ends every long-lived stream: the server is shutting down.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Becomes `true` when [`Service::close`] is called.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Runs `f` on the store on a blocking thread.
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn ServiceStore) -> Result<T, ServiceError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().unwrap_or_else(PoisonError::into_inner);
            f(guard.as_mut())
        })
        .await?
    }

    /// Asks the driver on a blocking thread (its calls wait for the
    /// scheduler's answer).
    pub(crate) async fn ask<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&DriverHandle) -> Result<T, tessera_driver::DriverError> + Send + 'static,
    {
        let driver = self.driver.clone();
        Ok(tokio::task::spawn_blocking(move || f(&driver)).await??)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}
