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
//! the driver's [`DriverHandle`](tessera_driver::DriverHandle).

pub mod access;
mod accounts;
pub mod auth;
mod control;
mod error;
mod events;
mod files;
mod jobs;
mod logs;
mod observe;
mod quota;
mod service;
mod stats;

pub use access::{
    parse_id, Admin, AsMember, AsOwner, AsViewer, Caller, JobAccess, MayAct, Need, ProjectAccess,
};
pub use accounts::{check_name, Me, NewKey, NewUser, ShutOut};
pub use auth::new_api_key;
pub use control::{Control, PRIORITY_RANGE};
pub use error::ServiceError;
pub use events::{JobEvent, JobEvents};
pub use files::encode_view::EncodeView;
pub use files::encodes::{EncodeOptions, Output};
pub use files::ladder::{ladder_content_type, ladder_path, LadderFile, MAX_LADDER_PATH};
pub use files::uploads::{Source, Upload, UploadItem};
pub use files::volumes::Volumes;
pub use jobs::{page_limit, JobDetail, JobStatus, Page, Task, MAX_LIST, PAGE_DEFAULT, PAGE_MAX};
pub use logs::{FollowedLog, Stream, LOG_LIMIT};
pub use observe::{Observer, Secret};
pub use quota::Usage;
pub use service::{now_ms, Service, ServiceStore, DEFAULT_MAX_UPLOAD, DEFAULT_NODE_NAME};
pub use stats::{Dashboard, Stats};

#[cfg(test)]
mod tests;
