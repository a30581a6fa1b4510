//! How values become columns and back, the same for every backend: states
//! as their stable strings, specs as JSON text, outcomes as a kind and a
//! message.

use crate::StoreError;
use tessera_types::{AttemptOutcome, Quota, TaskSpec};

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

/// A quota as its three nullable `BIGINT` columns (`max_cpu`,
/// `max_memory_mb`, `cpu_ms_per_window`; `NULL` is unlimited).
pub(crate) fn quota_columns(quota: &Quota) -> Result<[Option<i64>; 3], StoreError> {
    let big = |what: &str, v: Option<u64>| {
        v.map(|v| {
            i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} {v} is too large")))
        })
        .transpose()
    };
    Ok([
        quota.max_cpu.map(i64::from),
        big("a quota's max_memory_mb", quota.max_memory_mb)?,
        big("a quota's cpu_ms_per_window", quota.cpu_ms_per_window)?,
    ])
}

/// The quota in a project's three quota columns; `what` names the row.
pub(crate) fn quota_from(what: &str, columns: [Option<i64>; 3]) -> Result<Quota, StoreError> {
    let [cpu, memory, cpu_ms] = columns;
    let bad = |column: &str, v: i64| StoreError::corrupt(format!("{what}: {column} {v}"));
    let unsigned = |column: &str, v: Option<i64>| {
        v.map(|v| u64::try_from(v).map_err(|_| bad(column, v)))
            .transpose()
    };
    Ok(Quota {
        max_cpu: cpu
            .map(|v| u32::try_from(v).map_err(|_| bad("max_cpu", v)))
            .transpose()?,
        max_memory_mb: unsigned("max_memory_mb", memory)?,
        cpu_ms_per_window: unsigned("cpu_ms_per_window", cpu_ms)?,
    })
}

/// What an ended attempt is charged, as the scheduler charges it: its
/// measured cpu time, or else its wall time times the cpu slots its task
/// holds (from `spec_json`, which the queries select only when needed).
pub(crate) fn charged_cpu_ms(
    what: &str,
    cpu_ms: Option<i64>,
    wall_ms: Option<i64>,
    spec_json: Option<&str>,
) -> Result<u64, StoreError> {
    let cpu_ms = cpu_ms.unwrap_or(0).max(0) as u64;
    if cpu_ms > 0 {
        return Ok(cpu_ms);
    }
    let wall_ms = wall_ms.unwrap_or(0).max(0) as u64;
    let cpu = match spec_json {
        Some(s) if wall_ms > 0 => json::<TaskSpec>(what, s)?.resources.cpu,
        _ => 1,
    };
    Ok(wall_ms.saturating_mul(u64::from(cpu)))
}
