//! The service layer of `tessera server`: what every API calls (the native
//! REST API and its web UI today, the foreign APIs next), so that an API is
//! a translation and never a second scheduling path.
//!
//! - **Authentication** ([`Service::authenticate`]): API keys
//!   `tsk_<prefix>_<secret>`, argon2 on a few bounded threads, throttled
//!   per prefix, cached for a minute ([`auth`]). Transport-independent: a
//!   key checks the same whatever protocol carried it.
//! - **Authorization**, decided here, once ([`access`]): a [`Caller`] (the
//!   authenticated user) asks for a [`ProjectAccess`] or a [`JobAccess`]
//!   with the least role an operation needs ([`AsViewer`], [`AsMember`],
//!   [`AsOwner`]) or for [`Admin`]; operations take that proof, so no API
//!   can call one without the check. Checks run in a fixed order: the
//!   caller (401), then the thing (404), then the role (403).
//! - **Accounts**: users, projects, members, keys, quotas and usage.
//! - **Jobs**: submit (through the driver only), list, show, tasks with
//!   why they wait, attempts, cancel, suspend, resume, retry, priority;
//!   **logs** (read, follow) and **job events** (the driver's feed as a
//!   stream of [`JobEvent`]s).
//! - **Files**: uploads (streamed from any [`Source`], probed), encodes and
//!   their outputs, volumes, and each project's folders given to its task
//!   user.
//!
//! Plain Rust types in and out (store records, service structs), and one
//! error type, [`ServiceError`], whose kinds each API maps onto its own
//! protocol in one place. Reads and account writes use the service's own
//! store connection, always on a blocking thread; scheduling goes through
//! the driver's [`DriverHandle`].

pub mod access;
mod accounts;
pub mod auth;
mod control;
mod error;
mod events;
mod files;
mod jobs;
mod logs;
mod quota;
mod stats;

pub use access::{
    parse_id, Admin, AsMember, AsOwner, AsViewer, Caller, JobAccess, MayAct, Need, ProjectAccess,
};
pub use accounts::{check_name, Me, NewKey, NewUser};
pub use auth::{new_api_key, Secret};
pub use control::{Control, PRIORITY_RANGE};
pub use error::ServiceError;
pub use events::{JobEvent, JobEvents};
pub use files::encodes::{EncodeOptions, Output, DEFAULT_MAX_UPLOAD};
pub use files::uploads::{Source, Upload, UploadItem};
pub use files::volumes::Volumes;
pub use jobs::{JobDetail, JobStatus, Page, Task, MAX_LIST, PAGE_DEFAULT, PAGE_MAX};
pub use logs::{FollowedLog, Stream, LOG_LIMIT};
pub use quota::Usage;
pub use stats::{Dashboard, Stats};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_driver::DriverHandle;
use tessera_store::{Accounts, Store};
use tessera_types::Millis;

/// A store the service can use: jobs (read) and accounts (read and write).
pub trait ServiceStore: Store + Accounts + Send {}

impl<T: Store + Accounts + Send> ServiceStore for T {}

/// What the service tells whoever counts (the REST API's `/metrics`).
/// Every method does nothing by default.
pub trait Observer: Send + Sync {
    /// A job was handed to the driver and committed (or refused) in `took`.
    fn submitted(&self, _took: Duration) {}
    /// argon2 ran for a secret of this kind.
    fn argon2_run(&self, _kind: Secret) {}
    /// A secret check was refused: its prefix had too many wrong secrets.
    fn throttled(&self, _kind: Secret) {}
    /// A secret check was refused: the verifier's queue was full.
    fn verifier_busy(&self, _kind: Secret) {}
}

impl Observer for () {}

/// The service: cheap to clone (every part is shared), one per server, and
/// the same one under every API.
#[derive(Clone)]
pub struct Service {
    store: Arc<Mutex<Box<dyn ServiceStore>>>,
    driver: DriverHandle,
    data_dir: PathBuf,
    keys: Arc<auth::KeyCache>,
    verifier: Arc<auth::Verifier>,
    observer: Arc<dyn Observer>,
    /// The largest upload accepted, in bytes.
    max_upload_bytes: u64,
    /// Directories whose files encodes may read in place, by name.
    volumes: Arc<Volumes>,
    /// Becomes `true` when the server starts shutting down, so long-lived
    /// streams (job events, followed logs) end instead of holding it up.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// The uids projects' tasks run as (the server runs as root): the
    /// folders the service prepares for a project are that project's user's.
    task_uids: Option<tessera_exec::TaskUids>,
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
            data_dir,
            keys: Arc::default(),
            verifier: Arc::new(auth::Verifier::start(observer.clone())),
            observer,
            max_upload_bytes: DEFAULT_MAX_UPLOAD,
            volumes: Arc::default(),
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
            task_uids: None,
        }
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

    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_bytes
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn driver(&self) -> &DriverHandle {
        &self.driver
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
