//! Errors as the user sees them: one line and an exit code that says whose
//! problem it is.

use std::fmt::Display;
use tessera_driver::DriverError;
use tessera_media::MediaError;
use tessera_store::StoreError;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Code {
    Internal = 1,
    Input = 3,
    Environment = 4,
    Interrupted = 130,
}

#[derive(Debug)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Failure>;

impl Failure {
    pub fn input(m: impl Display) -> Self {
        Self {
            code: Code::Input,
            message: m.to_string(),
        }
    }
    pub fn env(m: impl Display) -> Self {
        Self {
            code: Code::Environment,
            message: m.to_string(),
        }
    }
    pub fn internal(m: impl Display) -> Self {
        Self {
            code: Code::Internal,
            message: m.to_string(),
        }
    }
    pub fn interrupted(m: impl Display) -> Self {
        Self {
            code: Code::Interrupted,
            message: m.to_string(),
        }
    }
}

impl From<MediaError> for Failure {
    fn from(e: MediaError) -> Self {
        let code = if e.is_user_error() {
            Code::Input
        } else if matches!(e, MediaError::NotInstalled { .. }) {
            Code::Environment
        } else {
            Code::Internal
        };
        Self {
            code,
            message: one_line(&e.to_string()),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::env(one_line(&e.to_string()))
    }
}

impl From<DriverError> for Failure {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Store(e) => e.into(),
            other => Self::internal(one_line(&other.to_string())),
        }
    }
}

/// Errors are one line: the first line of a multi-line message, trimmed.
pub fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .to_string()
}
