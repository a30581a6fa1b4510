//! Writes: creating jobs and applying batches of changes, each in one
//! transaction, with cached prepared statements.
//!
//! A batch is first written by [`batch`], in one statement; when that is
//! refused, the changes are applied again one statement each, which names
//! the first change that fails.

use super::batch::{self, TASKS_PER_INSERT};
use super::{backend, foreign_key_violation, ms, prepared, unique_violation, Conn, Statements};
use crate::codec::{outcome_columns, to_json};
use crate::{StartedAttempt, StoreError};
use postgres::Transaction;
use std::collections::{HashMap, HashSet};
use tessera_types::{
    Change, JobId, JobSpec, JobState, Millis, ProjectId, TaskRef, TaskSpec, TaskState,
};

const INSERT_JOB: &str = "INSERT INTO jobs \
    (name, key, spec_json, state, created_at, updated_at, finished_at, project_id) \
    VALUES ($1, $2, $3, $4, $5, $5, NULL, $6) RETURNING id";
const INSERT_TASK: &str = "INSERT INTO tasks \
    (job_id, idx, name, spec_json, state, attempt, failures, not_before, reason, batch, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, 0, 0, 0, NULL, $7, $6, $6)";
const SET_JOB_STATE: &str =
    "UPDATE jobs SET state = $2, updated_at = $3, finished_at = $4 WHERE id = $1";
const COUNT_TASKS: &str =
    "SELECT (SELECT COUNT(*) FROM tasks WHERE job_id = $1) FROM jobs WHERE id = $1";
const TOUCH_JOB: &str = "UPDATE jobs SET updated_at = $2 WHERE id = $1";
const SET_SUSPENDED: &str = "UPDATE jobs SET suspended = $2, updated_at = $3 WHERE id = $1";
const SET_PRIORITY: &str = "UPDATE jobs SET priority = $2, updated_at = $3 WHERE id = $1";
const SET_TASK: &str = "UPDATE tasks SET state = $3, attempt = $4, failures = $5, \
    not_before = $6, reason = $7, updated_at = $8 WHERE job_id = $1 AND idx = $2";
const START_ATTEMPT: &str =
    "INSERT INTO attempts (job_id, idx, number, node_id, started_at) VALUES ($1, $2, $3, $4, $5)";
const END_ATTEMPT: &str = "UPDATE attempts SET outcome = $4, message = $5, ended_at = $6, \
    wall_ms = $7, cpu_ms = $8, max_rss_kb = $9, transfer_ms = $10, transfer_bytes = $11 \
    WHERE job_id = $1 AND idx = $2 AND number = $3";
/// Started attempts' pids and nodes, one statement (one transaction): the
/// last line divides by zero, failing it, when an attempt has no row (the
/// keys are distinct, so each must touch one).
const SET_STARTED: &str = "WITH set AS (UPDATE attempts a SET pid = u.pid, node = u.node \
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[]) \
    AS u(job_id, idx, number, pid, node) \
    WHERE a.job_id = u.job_id AND a.idx = u.idx AND a.number = u.number RETURNING 1) \
    SELECT 1 / ((SELECT count(*) FROM set) = cardinality($1::bigint[]))::int";
/// Which of the given attempts have no row (after [`SET_STARTED`] failed).
const MISSING_ATTEMPTS: &str = "SELECT u.job_id, u.idx, u.number \
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS u(job_id, idx, number, o) \
    WHERE NOT EXISTS (SELECT 1 FROM attempts a \
    WHERE a.job_id = u.job_id AND a.idx = u.idx AND a.number = u.number) ORDER BY u.o LIMIT 1";

pub(super) fn create_job(
    conn: &mut Conn,
    project: Option<ProjectId>,
    spec: &JobSpec,
    key: Option<&str>,
    now: Millis,
) -> Result<JobId, StoreError> {
    let mut tx = conn.client.transaction().map_err(backend)?;
    let statements = &mut conn.statements;
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
    let insert = prepared(statements, &mut tx, INSERT_JOB)?;
    let id: i64 = tx
        .query_one(
            &insert,
            &[
                &spec.name,
                &key,
                &to_json(&head),
                &JobState::Pending.as_str(),
                &ms(now),
                &project.map(|p| p.0),
            ],
        )
        .and_then(|r| r.try_get(0))
        .map_err(|e| match (foreign_key_violation(&e), project) {
            (Some(_), Some(p)) => StoreError::UnknownProject(p),
            _ => backend(e),
        })?;
    let job = JobId(id);
    // A new job has no tasks yet, so the only duplicate names are the
    // spec's own: the second task of a name is the one refused.
    let mut names = HashSet::with_capacity(spec.tasks.len());
    if let Some(dup) = spec.tasks.iter().find(|t| !names.insert(t.name.as_str())) {
        return Err(StoreError::DuplicateTaskName {
            job,
            name: dup.name.clone(),
        });
    }
    let rows: Vec<_> = (0..).zip(&spec.tasks).map(|(i, t)| (id, i, t, 0)).collect();
    for chunk in rows.chunks(TASKS_PER_INSERT) {
        batch::insert_tasks(statements, &mut tx, chunk, ms(now))?;
    }
    tx.commit().map_err(backend)?;
    Ok(job)
}

pub(super) fn apply(conn: &mut Conn, changes: &[Change], now: Millis) -> Result<(), StoreError> {
    if batch::apply(&mut conn.statements, &mut conn.client, changes, now).is_ok() {
        return Ok(());
    }
    // Some change fails (or the database did): nothing was written; start
    // again, one change at a time, to learn which.
    let mut tx = conn.client.transaction().map_err(backend)?;
    for change in changes {
        apply_one(&mut conn.statements, &mut tx, change, now)?;
    }
    // Dropping `tx` on an error above rolls the whole batch back.
    tx.commit().map_err(backend)
}

pub(super) fn set_attempts_started(
    conn: &mut Conn,
    started: &[StartedAttempt],
) -> Result<(), StoreError> {
    if started.is_empty() {
        return Ok(());
    }
    // An attempt named twice keeps its last entry (an UPDATE ... FROM would
    // pick one of the two).
    let mut last = HashMap::with_capacity(started.len());
    for (i, s) in started.iter().enumerate() {
        last.insert((s.task, s.attempt), i);
    }
    let rows: Vec<&StartedAttempt> = started
        .iter()
        .enumerate()
        .filter(|(i, s)| last[&(s.task, s.attempt)] == *i)
        .map(|(_, s)| s)
        .collect();
    let jobs: Vec<i64> = rows.iter().map(|s| s.task.job.0).collect();
    let idx: Vec<i64> = rows.iter().map(|s| i64::from(s.task.index)).collect();
    let numbers: Vec<i64> = rows.iter().map(|s| i64::from(s.attempt)).collect();
    let pids: Vec<i64> = rows.iter().map(|s| i64::from(s.pid)).collect();
    let nodes: Vec<Option<&str>> = rows.iter().map(|s| s.node.as_deref()).collect();
    let stmt = prepared(&mut conn.statements, &mut conn.client, SET_STARTED)?;
    let done = conn
        .client
        .query_one(&stmt, &[&jobs, &idx, &numbers, &pids, &nodes]);
    let Err(e) = done else {
        return Ok(());
    };
    // Nothing was written; name the attempt that has no row, if that is why.
    let stmt = prepared(&mut conn.statements, &mut conn.client, MISSING_ATTEMPTS)?;
    let missing = conn
        .client
        .query_opt(&stmt, &[&jobs, &idx, &numbers])
        .map_err(backend)?;
    match missing {
        Some(row) => {
            let job: i64 = row.try_get(0).map_err(backend)?;
            let index: i64 = row.try_get(1).map_err(backend)?;
            let number: i64 = row.try_get(2).map_err(backend)?;
            let (Ok(index), Ok(attempt)) = (u32::try_from(index), u32::try_from(number)) else {
                return Err(backend(e));
            };
            Err(StoreError::UnknownAttempt {
                task: TaskRef::new(JobId(job), index),
                attempt,
            })
        }
        None => Err(backend(e)),
    }
}

fn apply_one(
    statements: &mut Statements,
    tx: &mut Transaction<'_>,
    change: &Change,
    now: Millis,
) -> Result<(), StoreError> {
    match change {
        Change::JobState { job, state } => {
            let finished_at = state.is_terminal().then_some(ms(now));
            let stmt = prepared(statements, tx, SET_JOB_STATE)?;
            let n = tx
                .execute(&stmt, &[&job.0, &state.as_str(), &ms(now), &finished_at])
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::UnknownJob(*job));
            }
        }
        Change::TasksAdded {
            job,
            first_index,
            tasks,
        } => {
            let stmt = prepared(statements, tx, COUNT_TASKS)?;
            let count: i64 = tx
                .query_opt(&stmt, &[&job.0])
                .map_err(backend)?
                .ok_or(StoreError::UnknownJob(*job))?
                .try_get(0)
                .map_err(backend)?;
            if count != i64::from(*first_index) {
                return Err(StoreError::TaskIndexGap {
                    job: *job,
                    first_index: *first_index,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                });
            }
            insert_tasks(statements, tx, *job, *first_index, tasks, now)?;
            let stmt = prepared(statements, tx, TOUCH_JOB)?;
            tx.execute(&stmt, &[&job.0, &ms(now)]).map_err(backend)?;
        }
        Change::Task {
            task,
            state,
            attempt,
            failures,
            not_before,
            reason,
        } => {
            let stmt = prepared(statements, tx, SET_TASK)?;
            let n = tx
                .execute(
                    &stmt,
                    &[
                        &task.job.0,
                        &i64::from(task.index),
                        &state.as_str(),
                        &i64::from(*attempt),
                        &i64::from(*failures),
                        &ms(*not_before),
                        reason,
                        &ms(now),
                    ],
                )
                .map_err(backend)?;
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
            let stmt = prepared(statements, tx, START_ATTEMPT)?;
            tx.execute(
                &stmt,
                &[
                    &task.job.0,
                    &i64::from(task.index),
                    &i64::from(*attempt),
                    &i64::from(node.0),
                    &ms(*at),
                ],
            )
            .map_err(|e| {
                if foreign_key_violation(&e).is_some() {
                    StoreError::UnknownTask(*task)
                } else if unique_violation(&e).is_some() {
                    StoreError::DuplicateAttempt {
                        task: *task,
                        attempt: *attempt,
                    }
                } else {
                    backend(e)
                }
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
            let stmt = prepared(statements, tx, END_ATTEMPT)?;
            let n = tx
                .execute(
                    &stmt,
                    &[
                        &task.job.0,
                        &i64::from(task.index),
                        &i64::from(*attempt),
                        &kind,
                        &message,
                        &ms(*at),
                        &ms(usage.wall_ms),
                        &ms(usage.cpu_ms),
                        &ms(usage.max_rss_kb),
                        &ms(usage.transfer_ms),
                        &ms(usage.transfer_bytes),
                    ],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::UnknownAttempt {
                    task: *task,
                    attempt: *attempt,
                });
            }
        }
        Change::JobSuspended { job, suspended } => {
            let stmt = prepared(statements, tx, SET_SUSPENDED)?;
            let n = tx
                .execute(&stmt, &[&job.0, suspended, &ms(now)])
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::UnknownJob(*job));
            }
        }
        Change::JobPriority { job, priority } => {
            let stmt = prepared(statements, tx, SET_PRIORITY)?;
            let n = tx
                .execute(&stmt, &[&job.0, priority, &ms(now)])
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::UnknownJob(*job));
            }
        }
    }
    Ok(())
}

fn insert_tasks(
    statements: &mut Statements,
    tx: &mut Transaction<'_>,
    job: JobId,
    first_index: u32,
    tasks: &[TaskSpec],
    now: Millis,
) -> Result<(), StoreError> {
    let stmt = prepared(statements, tx, INSERT_TASK)?;
    let waiting = TaskState::Waiting.as_str();
    for (index, spec) in (first_index..).zip(tasks) {
        tx.execute(
            &stmt,
            &[
                &job.0,
                &i64::from(index),
                &spec.name,
                &to_json(spec),
                &waiting,
                &ms(now),
                &i64::from(first_index),
            ],
        )
        .map_err(|e| match unique_violation(&e) {
            Some("tasks_by_name") => StoreError::DuplicateTaskName {
                job,
                name: spec.name.clone(),
            },
            _ if foreign_key_violation(&e).is_some() => StoreError::UnknownJob(job),
            _ => backend(e),
        })?;
    }
    Ok(())
}
