//! What the service tells whoever counts: submissions and secret checks.

use std::time::Duration;

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

/// Whose secret argon2 runs for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    /// A user's API key being checked.
    UserKey = 0,
    /// A worker token being checked.
    WorkerToken = 1,
    /// A new API key being hashed.
    NewKey = 2,
}
