//! How values become columns and back, the same for every backend: states
//! as their stable strings, specs as JSON text, outcomes as a kind and a
//! message.

use crate::StoreError;
use tessera_types::AttemptOutcome;

/// Parses a column with `FromStr` (states, roles); `what` names the row.
pub(crate) fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

/// Reads a JSON column; `what` names the row.
pub(crate) fn json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Specs are plain data (strings, numbers, maps with string keys): they
    // always serialise.
    serde_json::to_string(value).expect("specs serialise to JSON")
}

/// An outcome as the `outcome` (kind) and `message` columns.
pub(crate) fn outcome_columns(outcome: &AttemptOutcome) -> (&'static str, Option<&str>) {
    let message = match outcome {
        AttemptOutcome::Failed { message } => Some(message.as_str()),
        AttemptOutcome::Lost { reason } => Some(reason.as_str()),
        AttemptOutcome::Succeeded | AttemptOutcome::TimedOut | AttemptOutcome::Cancelled => None,
    };
    (outcome.kind(), message)
}

/// The inverse of [`outcome_columns`]; `Err` carries an unknown kind.
pub(crate) fn outcome_from(kind: &str, message: Option<String>) -> Result<AttemptOutcome, String> {
    let message = message.unwrap_or_default();
    Ok(match kind {
        "succeeded" => AttemptOutcome::Succeeded,
        "failed" => AttemptOutcome::Failed { message },
        "timed_out" => AttemptOutcome::TimedOut,
        "cancelled" => AttemptOutcome::Cancelled,
        "lost" => AttemptOutcome::Lost { reason: message },
        other => return Err(other.to_string()),
    })
}
