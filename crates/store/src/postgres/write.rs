//! Writes: creating jobs and applying batches of changes, each in one
//! transaction, with cached prepared statements.
//!
//! A batch is first written by [`batch`], in one statement; when that is
//! refused, the changes are applied again one statement each, which names
//! the first change that fails.

use super::batch::{self, TASKS_PER_INSERT};
use super::{backend, foreign_key_violation, ms, prepared, unique_violation, Conn, Statements};
use crate::codec::{outcome_columns, to_json};
use crate::StoreError;
use postgres::Transaction;
use std::collections::HashSet;
use tessera_types::{
    AttemptNo, Change, JobId, JobSpec, JobState, Millis, ProjectId, TaskRef, TaskSpec, TaskState,
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
    "INSERT INTO attempts (job_id, idx, number, node, started_at) VALUES ($1, $2, $3, $4, $5)";
const END_ATTEMPT: &str = "UPDATE attempts SET outcome = $4, message = $5, ended_at = $6, \
    wall_ms = $7, cpu_ms = $8, max_rss_kb = $9 WHERE job_id = $1 AND idx = $2 AND number = $3";
const SET_PID: &str = "UPDATE attempts SET pid = $4 WHERE job_id = $1 AND idx = $2 AND number = $3";

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

pub(super) fn set_attempt_pid(
    conn: &mut Conn,
    task: TaskRef,
    attempt: AttemptNo,
    pid: u32,
) -> Result<(), StoreError> {
    let stmt = prepared(&mut conn.statements, &mut conn.client, SET_PID)?;
    let n = conn
        .client
        .execute(
            &stmt,
            &[
                &task.job.0,
                &i64::from(task.index),
                &i64::from(attempt),
                &i64::from(pid),
            ],
        )
        .map_err(backend)?;
    if n == 0 {
        return Err(StoreError::UnknownAttempt { task, attempt });
    }
    Ok(())
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
