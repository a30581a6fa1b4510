//! What a service call can fail with: a kind (which every API maps onto its
//! own protocol in one place: the REST API to HTTP statuses), a stable
//! machine code, and a one-line message that says what happened and what to
//! do. Internal details are logged by whoever shows the error, never shown.

use tessera_driver::DriverError;
use tessera_store::StoreError;

/// Everything a service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such thing (or not one the caller may know of).
    #[error("{0}")]
    NotFound(String),
    /// No credential, or one that is unknown, wrong or revoked.
    #[error("{0}")]
    Unauthorized(String),
    /// The thing exists but the caller may not do this to it.
    #[error("{0}")]
    Forbidden(String),
    /// A name is taken, or the change would leave things inconsistent, or
    /// the thing is in a state that refuses it (the job has ended...).
    #[error("{0}")]
    Conflict(String),
    /// The request says something the service refuses (a bad name, an
    /// unknown volume, a file that is no video).
    #[error("{0}")]
    Invalid(String),
    /// A job spec the scheduler refuses (cycle, selector matching nothing...).
    #[error("{0}")]
    InvalidSpec(String),
    /// Something sent is larger than the service takes.
    #[error("{0}")]
    TooLarge(String),
    /// Too many wrong secrets with one prefix: checks wait `retry_after` seconds.
    #[error("{message}; wait {retry_after} s and try again")]
    TooMany { message: String, retry_after: u64 },
    /// A bounded queue (secret checks) is full: try again after
    /// `retry_after` seconds.
    #[error("{message}")]
    Busy { message: String, retry_after: u64 },
    /// The scheduler or the database cannot answer right now.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an environment failure: logged, never described to a client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// The stable machine-readable code of the kind (the REST API sends
    /// the same ones).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(_) => "conflict",
            Self::Invalid(_) => "invalid_request",
            Self::InvalidSpec(_) => "invalid_spec",
            Self::TooLarge(_) => "payload_too_large",
            Self::TooMany { .. } => "too_many_requests",
            Self::Busy { .. } => "busy",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn internal(what: impl std::fmt::Display) -> Self {
        Self::Internal(what.to_string())
    }

    /// A body of more than `limit` bytes.
    pub fn too_large(limit: u64) -> Self {
        Self::TooLarge(format!(
            "request body is larger than {limit} bytes; send a smaller one"
        ))
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { what } => Self::Conflict(what),
            StoreError::Invalid(what) => Self::Invalid(what),
            StoreError::UnknownJob(job) => Self::NotFound(format!("job {job} does not exist")),
            StoreError::UnknownUser(user) => Self::NotFound(format!("user {user} does not exist")),
            StoreError::UnknownProject(p) => Self::NotFound(format!("project {p} does not exist")),
            e @ StoreError::Locked { .. } => {
                eprintln!("tessera-service: {e}");
                Self::Unavailable("the database is busy; try again in a moment".into())
            }
            other => Self::internal(other),
        }
    }
}

impl From<DriverError> for ServiceError {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Spec(spec) => Self::InvalidSpec(format!("invalid job: {spec}")),
            DriverError::Store(store) => store.into(),
            DriverError::NoSuchJob(job) => Self::NotFound(format!("job {job} does not exist")),
            e @ (DriverError::Control(_) | DriverError::NotHeld(_)) => {
                Self::Conflict(e.to_string())
            }
            DriverError::Stopped => Self::Unavailable(
                "the scheduler has stopped (the server is shutting down); try again later".into(),
            ),
        }
    }
}

impl From<tokio::task::JoinError> for ServiceError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(format!("a blocking task failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_driver_refusals_keep_their_kind_and_words() {
        let e: ServiceError = StoreError::UnknownJob(tessera_types::JobId(7)).into();
        assert!(matches!(&e, ServiceError::NotFound(m) if m == "job 7 does not exist"));
        assert_eq!(e.code(), "not_found");
        let e: ServiceError = DriverError::Stopped.into();
        assert_eq!(e.code(), "unavailable");
        let e = ServiceError::TooMany {
            message: "too many wrong API keys with this key's prefix".into(),
            retry_after: 9,
        };
        assert_eq!(
            e.to_string(),
            "too many wrong API keys with this key's prefix; wait 9 s and try again"
        );
        assert_eq!(e.code(), "too_many_requests");
        assert_eq!(
            ServiceError::too_large(10).to_string(),
            "request body is larger than 10 bytes; send a smaller one"
        );
    }
}
