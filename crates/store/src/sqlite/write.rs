//! Writes: creating jobs and applying batches of changes, each in one
//! transaction, with cached statements.

use super::map_err;
use crate::codec::{outcome_columns, to_json};
use crate::{StartedAttempt, StoreError};
use rusqlite::{ffi, params, Connection, ErrorCode, Transaction, TransactionBehavior};
use std::path::Path;
use tessera_types::{Change, JobId, JobSpec, JobState, Millis, ProjectId, TaskSpec, TaskState};

const INSERT_TASK: &str = "INSERT INTO tasks \
    (job_id, idx, name, spec_json, state, attempt, failures, not_before, reason, batch, created_at, updated_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, 0, NULL, ?7, ?6, ?6)";

fn begin<'c>(conn: &'c mut Connection, path: &Path) -> Result<Transaction<'c>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| map_err(path, e))
}

pub(super) fn create_job(
    conn: &mut Connection,
    path: &Path,
    project: Option<ProjectId>,
    spec: &JobSpec,
    key: Option<&str>,
    now: Millis,
) -> Result<JobId, StoreError> {
    let err = |e| map_err(path, e);
    let tx = begin(conn, path)?;
    // The job's own spec is kept without its tasks (they have rows of their
    // own), so job-level fields added later survive a round trip.
    let head = JobSpec {
        name: spec.name.clone(),
        params: spec.params.clone(),
        tasks: Vec::new(),
        grants: spec.grants.clone(),
        after: spec.after.clone(),
        meta: spec.meta.clone(),
    };
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO jobs (name, key, spec_json, state, created_at, updated_at, finished_at, project_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, NULL, ?6) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    spec.name,
                    key,
                    to_json(&head),
                    JobState::Pending.as_str(),
                    now,
                    project.map(|p| p.0)
                ],
                |r| r.get(0),
            )
        })
        .map_err(|e| match (constraint(&e), project) {
            (Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY), Some(p)) => StoreError::UnknownProject(p),
            _ => err(e),
        })?;
    let job = JobId(id);
    insert_tasks(&tx, path, job, 0, &spec.tasks, now)?;
    tx.commit().map_err(err)?;
    Ok(job)
}

pub(super) fn apply(
    conn: &mut Connection,
    path: &Path,
    changes: &[Change],
    now: Millis,
) -> Result<(), StoreError> {
    let tx = begin(conn, path)?;
    for change in changes {
        apply_one(&tx, path, change, now)?;
    }
    // Dropping `tx` on an error above rolls the whole batch back.
    tx.commit().map_err(|e| map_err(path, e))
}

pub(super) fn set_attempts_started(
    conn: &mut Connection,
    path: &Path,
    started: &[StartedAttempt],
) -> Result<(), StoreError> {
    if started.is_empty() {
        return Ok(());
    }
    let err = |e| map_err(path, e);
    let tx = begin(conn, path)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE attempts SET pid = ?4, node = ?5 WHERE job_id = ?1 AND idx = ?2 AND number = ?3",
            )
            .map_err(err)?;
        for s in started {
            let n = stmt
                .execute(params![
                    s.task.job.0,
                    s.task.index,
                    s.attempt,
                    s.pid,
                    s.node
                ])
                .map_err(err)?;
            if n == 0 {
                // Dropping `tx` rolls back the ones before.
                return Err(StoreError::UnknownAttempt {
                    task: s.task,
                    attempt: s.attempt,
                });
            }
        }
    }
    tx.commit().map_err(err)
}

fn apply_one(
    tx: &Transaction<'_>,
    path: &Path,
    change: &Change,
    now: Millis,
) -> Result<(), StoreError> {
    let err = |e| map_err(path, e);
    match change {
        Change::JobState { job, state } => {
            let finished_at = state.is_terminal().then_some(now);
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET state = ?2, updated_at = ?3, finished_at = ?4 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![job.0, state.as_str(), now, finished_at]))
                .map_err(err)?;
            if n == 0 {
                return Err(StoreError::UnknownJob(*job));
            }
        }
        Change::TasksAdded {
            job,
            first_index,
            tasks,
        } => {
            let count: Option<u32> = tx
                .prepare_cached(
                    "SELECT (SELECT COUNT(*) FROM tasks WHERE job_id = ?1) FROM jobs WHERE id = ?1",
                )
                .and_then(|mut s| {
                    let mut rows = s.query_map([job.0], |r| r.get(0))?;
                    rows.next().transpose()
                })
                .map_err(err)?;
            let count = count.ok_or(StoreError::UnknownJob(*job))?;
            if count != *first_index {
                return Err(StoreError::TaskIndexGap {
                    job: *job,
                    first_index: *first_index,
                    count,
                });
            }
            insert_tasks(tx, path, *job, *first_index, tasks, now)?;
            tx.prepare_cached("UPDATE jobs SET updated_at = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![job.0, now]))
                .map_err(err)?;
        }
        Change::Task {
            task,
            state,
            attempt,
            failures,
            not_before,
            reason,
        } => {
            let n = tx
                .prepare_cached(
                    "UPDATE tasks SET state = ?3, attempt = ?4, failures = ?5, not_before = ?6, \
                     reason = ?7, updated_at = ?8 WHERE job_id = ?1 AND idx = ?2",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        task.job.0,
                        task.index,
                        state.as_str(),
                        attempt,
                        failures,
                        not_before,
                        reason,
                        now
                    ])
                })
                .map_err(err)?;
            if n == 0 {
                return Err(StoreError::UnknownTask(*task));
            }
        }
        Change::AttemptStarted {
            task,
            attempt,
            node,
            at,
        } => {
            tx.prepare_cached(
                "INSERT INTO attempts (job_id, idx, number, node_id, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![task.job.0, task.index, attempt, node.0, at]))
            .map_err(|e| match constraint(&e) {
                Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::UnknownTask(*task),
                Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
                    StoreError::DuplicateAttempt { task: *task, attempt: *attempt }
                }
                _ => err(e),
            })?;
        }
        Change::AttemptEnded {
            task,
            attempt,
            outcome,
            usage,
            at,
        } => {
            let (kind, message) = outcome_columns(outcome);
            let n = tx
                .prepare_cached(
                    "UPDATE attempts SET outcome = ?4, message = ?5, ended_at = ?6, wall_ms = ?7, \
                     cpu_ms = ?8, max_rss_kb = ?9, transfer_ms = ?10, transfer_bytes = ?11 \
                     WHERE job_id = ?1 AND idx = ?2 AND number = ?3",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        task.job.0,
                        task.index,
                        attempt,
                        kind,
                        message,
                        at,
                        usage.wall_ms,
                        usage.cpu_ms,
                        usage.max_rss_kb,
                        usage.transfer_ms,
                        usage.transfer_bytes
                    ])
                })
                .map_err(err)?;
            if n == 0 {
                return Err(StoreError::UnknownAttempt {
                    task: *task,
                    attempt: *attempt,
                });
            }
        }
        Change::JobSuspended { job, suspended } => {
            let n = tx
                .prepare_cached("UPDATE jobs SET suspended = ?2, updated_at = ?3 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![job.0, suspended, now]))
                .map_err(err)?;
            if n == 0 {
                return Err(StoreError::UnknownJob(*job));
            }
        }
        Change::JobPriority { job, priority } => {
            let n = tx
                .prepare_cached("UPDATE jobs SET priority = ?2, updated_at = ?3 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![job.0, priority, now]))
                .map_err(err)?;
            if n == 0 {
                return Err(StoreError::UnknownJob(*job));
            }
        }
    }
    Ok(())
}

fn insert_tasks(
    tx: &Transaction<'_>,
    path: &Path,
    job: JobId,
    first_index: u32,
    tasks: &[TaskSpec],
    now: Millis,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(INSERT_TASK)
        .map_err(|e| map_err(path, e))?;
    for (index, spec) in (first_index..).zip(tasks) {
        let waiting = TaskState::Waiting.as_str();
        stmt.execute(params![
            job.0,
            index,
            spec.name,
            to_json(spec),
            waiting,
            now,
            first_index
        ])
        .map_err(|e| match constraint(&e) {
            Some(ffi::SQLITE_CONSTRAINT_UNIQUE) => StoreError::DuplicateTaskName {
                job,
                name: spec.name.clone(),
            },
            Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::UnknownJob(job),
            _ => map_err(path, e),
        })?;
    }
    Ok(())
}

/// The extended result code of a constraint violation.
pub(super) fn constraint(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            Some(f.extended_code)
        }
        _ => None,
    }
}
