//! Queries and the mapping of rows back into records.

use super::{backend, prepared, Conn};
use crate::codec::{charged_cpu_ms, json, outcome_from, parse};
use crate::{AttemptRecord, JobRecord, NodeUsage, StoreError, TaskRecord, UsageRow};
use postgres::types::{FromSql, ToSql};
use postgres::Row;
use tessera_types::{
    AttemptUsage, JobId, JobSnapshot, JobSpec, JobState, Millis, ProjectId, TaskRef, TaskSnapshot,
    TaskSpec, TaskState,
};

const JOB: &str = "SELECT id, name, key, state, created_at, updated_at, finished_at, project_id, \
    suspended, priority FROM jobs WHERE id = $1";
const JOB_BY_KEY: &str = "SELECT id, name, key, state, created_at, updated_at, finished_at, \
    project_id, suspended, priority FROM jobs WHERE key = $1 ORDER BY id DESC LIMIT 1";
const RECENT_JOBS: &str = "SELECT id, name, key, state, created_at, updated_at, finished_at, \
    project_id, suspended, priority FROM jobs ORDER BY id DESC LIMIT $1";
const JOBS_OF_PROJECT: &str = "SELECT id, name, key, state, created_at, updated_at, finished_at, \
    project_id, suspended, priority FROM jobs WHERE project_id = $1 ORDER BY id DESC LIMIT $2";
const TASKS: &str = "SELECT job_id, idx, name, spec_json, state, attempt, failures, not_before, \
    reason, created_at, updated_at FROM tasks WHERE job_id = $1 ORDER BY idx";
const ATTEMPTS: &str = "SELECT job_id, idx, number, node, outcome, message, started_at, \
    ended_at, wall_ms, cpu_ms, max_rss_kb, pid, transfer_ms, transfer_bytes FROM attempts WHERE job_id = $1 \
    ORDER BY idx, number";
const TASKS_PAGE: &str = "SELECT job_id, idx, name, spec_json, state, attempt, failures, \
    not_before, reason, created_at, updated_at FROM tasks WHERE job_id = $1 ORDER BY idx \
    LIMIT $2 OFFSET $3";
const ATTEMPTS_PAGE: &str = "SELECT job_id, idx, number, node, outcome, message, started_at, \
    ended_at, wall_ms, cpu_ms, max_rss_kb, pid, transfer_ms, transfer_bytes FROM attempts WHERE job_id = $1 \
    ORDER BY idx, number LIMIT $2 OFFSET $3";
const TASK_COUNTS: &str =
    "SELECT state, COUNT(*) FROM tasks WHERE job_id = $1 GROUP BY state ORDER BY state";
const OPEN_ATTEMPTS: &str = "SELECT job_id, idx, number, node, outcome, message, started_at, \
    ended_at, wall_ms, cpu_ms, max_rss_kb, pid, transfer_ms, transfer_bytes FROM attempts WHERE outcome IS NULL \
    ORDER BY job_id, idx, number";
const UNFINISHED: &str = "SELECT id, spec_json, state, project_id, suspended, priority FROM jobs \
    WHERE state NOT IN ($1, $2, $3) ORDER BY id";
const SNAPSHOT: &str =
    "SELECT id, spec_json, state, project_id, suspended, priority FROM jobs WHERE id = $1";
const JOBS_BY_STATE: &str = "SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state";
const TASKS_BY_STATE: &str = "SELECT state, COUNT(*) FROM tasks GROUP BY state ORDER BY state";
const JOBS_BY_PROJECT: &str = "SELECT project_id, state, COUNT(*) FROM jobs \
    WHERE project_id IS NOT NULL GROUP BY project_id, state ORDER BY project_id, state";
/// The task's spec (for its cpu) only when the attempt's cpu time is unmeasured.
const USAGE_SINCE: &str = "SELECT j.project_id, a.cpu_ms, a.wall_ms, \
    CASE WHEN COALESCE(a.cpu_ms, 0) > 0 THEN NULL ELSE t.spec_json END, \
    a.ended_at, a.job_id, a.idx \
    FROM attempts a \
    JOIN tasks t ON t.job_id = a.job_id AND t.idx = a.idx \
    JOIN jobs j ON j.id = a.job_id \
    WHERE a.ended_at IS NOT NULL AND a.ended_at >= $1 \
    ORDER BY a.ended_at, a.job_id, a.idx, a.number";
/// Per node (NULL first), the attempts that ended at or after `$1`.
const NODE_USAGE: &str = "SELECT node, COUNT(*), COALESCE(SUM(cpu_ms), 0)::bigint, \
    COALESCE(SUM(transfer_ms), 0)::bigint, COALESCE(SUM(transfer_bytes), 0)::bigint \
    FROM attempts WHERE ended_at IS NOT NULL AND ended_at >= $1 \
    GROUP BY node ORDER BY node IS NOT NULL, node";
const JOB_SPEC: &str = "SELECT spec_json FROM jobs WHERE id = $1";
const NAMES_OF: &str = "SELECT id, name FROM jobs WHERE project_id = $1 ORDER BY id";
const NAMED_IN: &str = "SELECT id, name FROM jobs WHERE project_id = $1 AND name = $2 ORDER BY id";
const NAMES_OF_NONE: &str = "SELECT id, name FROM jobs WHERE project_id IS NULL ORDER BY id";
const NAMED_IN_NONE: &str =
    "SELECT id, name FROM jobs WHERE project_id IS NULL AND name = $1 ORDER BY id";
const BATCH_STARTS: &str = "SELECT DISTINCT batch FROM tasks WHERE job_id = $1 ORDER BY batch";

/// Runs a cached statement and maps its rows.
pub(super) fn query<T>(
    conn: &mut Conn,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
    map: impl FnMut(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let stmt = prepared(&mut conn.statements, &mut conn.client, sql)?;
    let rows = conn.client.query(&stmt, params).map_err(backend)?;
    rows.iter().map(map).collect()
}

/// Column `i`, which the schema guarantees has this type.
pub(super) fn get<'r, T: FromSql<'r>>(row: &'r Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(backend)
}

/// A `BIGINT` column that holds an unsigned Rust number (`u32`, `u64`).
pub(super) fn unsigned<T: TryFrom<i64>>(row: &Row, i: usize) -> Result<T, StoreError> {
    let v: i64 = get(row, i)?;
    T::try_from(v).map_err(|_| {
        let column = row.columns()[i].name();
        StoreError::corrupt(format!("{column} {v} is out of range"))
    })
}

/// A nullable [`unsigned`] column.
pub(super) fn unsigned_opt<T: TryFrom<i64>>(row: &Row, i: usize) -> Result<Option<T>, StoreError> {
    match get::<Option<i64>>(row, i)? {
        None => Ok(None),
        Some(_) => unsigned(row, i).map(Some),
    }
}

fn job_row(r: &Row) -> Result<JobRecord, StoreError> {
    let id = JobId(get(r, 0)?);
    let state: String = get(r, 3)?;
    Ok(JobRecord {
        id,
        project: get::<Option<i64>>(r, 7)?.map(ProjectId),
        name: get(r, 1)?,
        key: get(r, 2)?,
        state: parse(&format!("state of job {id}"), &state)?,
        created_at: unsigned(r, 4)?,
        updated_at: unsigned(r, 5)?,
        finished_at: unsigned_opt(r, 6)?,
        suspended: get(r, 8)?,
        priority: get(r, 9)?,
    })
}

fn task_row(r: &Row) -> Result<TaskRecord, StoreError> {
    let task = TaskRef::new(JobId(get(r, 0)?), unsigned(r, 1)?);
    let spec_json: &str = get(r, 3)?;
    let state: &str = get(r, 4)?;
    Ok(TaskRecord {
        task,
        name: get(r, 2)?,
        spec: json::<TaskSpec>(&format!("spec of task {task}"), spec_json)?,
        state: parse(&format!("state of task {task}"), state)?,
        attempt: unsigned(r, 5)?,
        failures: unsigned(r, 6)?,
        not_before: unsigned(r, 7)?,
        reason: get(r, 8)?,
        created_at: unsigned(r, 9)?,
        updated_at: unsigned(r, 10)?,
    })
}

fn attempt_row(r: &Row) -> Result<AttemptRecord, StoreError> {
    let task = TaskRef::new(JobId(get(r, 0)?), unsigned(r, 1)?);
    let number = unsigned(r, 2)?;
    let kind: Option<String> = get(r, 4)?;
    let outcome = match kind {
        None => None,
        Some(kind) => Some(outcome_from(&kind, get(r, 5)?).map_err(|kind| {
            StoreError::corrupt(format!(
                "outcome {kind:?} of attempt {number} of task {task}"
            ))
        })?),
    };
    let usage = match (
        unsigned_opt(r, 8)?,
        unsigned_opt(r, 9)?,
        unsigned_opt(r, 10)?,
    ) {
        (Some(wall_ms), Some(cpu_ms), Some(max_rss_kb)) => Some(AttemptUsage {
            wall_ms,
            cpu_ms,
            max_rss_kb,
            transfer_ms: unsigned(r, 12)?,
            transfer_bytes: unsigned(r, 13)?,
        }),
        _ => None,
    };
    Ok(AttemptRecord {
        task,
        number,
        node: get(r, 3)?,
        started_at: unsigned(r, 6)?,
        ended_at: unsigned_opt(r, 7)?,
        outcome,
        usage,
        pid: unsigned_opt(r, 11)?,
    })
}

pub(super) fn job(conn: &mut Conn, id: JobId) -> Result<Option<JobRecord>, StoreError> {
    Ok(query(conn, JOB, &[&id.0], job_row)?.pop())
}

pub(super) fn job_spec(conn: &mut Conn, id: JobId) -> Result<Option<JobSpec>, StoreError> {
    let what = format!("spec of job {id}");
    let rows = query(conn, JOB_SPEC, &[&id.0], |r| get::<String>(r, 0))?;
    rows.first().map(|s| json(&what, s)).transpose()
}

pub(super) fn job_names(
    conn: &mut Conn,
    project: Option<ProjectId>,
    name: Option<&str>,
) -> Result<Vec<(JobId, String)>, StoreError> {
    let row = |r: &Row| Ok((JobId(get(r, 0)?), get(r, 1)?));
    // Four statements, so each uses the index on (project_id, name, id).
    match (project, name) {
        (Some(p), Some(n)) => query(conn, NAMED_IN, &[&p.0, &n], row),
        (Some(p), None) => query(conn, NAMES_OF, &[&p.0], row),
        (None, Some(n)) => query(conn, NAMED_IN_NONE, &[&n], row),
        (None, None) => query(conn, NAMES_OF_NONE, &[], row),
    }
}

pub(super) fn find_job_by_key(conn: &mut Conn, key: &str) -> Result<Option<JobRecord>, StoreError> {
    Ok(query(conn, JOB_BY_KEY, &[&key], job_row)?.pop())
}

pub(super) fn recent_jobs(conn: &mut Conn, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
    query(conn, RECENT_JOBS, &[&i64::from(limit)], job_row)
}

pub(super) fn jobs_of_project(
    conn: &mut Conn,
    project: ProjectId,
    limit: u32,
) -> Result<Vec<JobRecord>, StoreError> {
    let params: [&(dyn ToSql + Sync); 2] = [&project.0, &i64::from(limit)];
    query(conn, JOBS_OF_PROJECT, &params, job_row)
}

#[allow(clippy::type_complexity)]
pub(super) fn count_by_state(
    conn: &mut Conn,
) -> Result<(Vec<(JobState, u64)>, Vec<(TaskState, u64)>), StoreError> {
    let jobs = query(conn, JOBS_BY_STATE, &[], |r| {
        Ok((parse("state of a job", get(r, 0)?)?, unsigned(r, 1)?))
    })?;
    let tasks = query(conn, TASKS_BY_STATE, &[], |r| {
        Ok((parse("state of a task", get(r, 0)?)?, unsigned(r, 1)?))
    })?;
    Ok((jobs, tasks))
}

pub(super) fn count_jobs_by_project(
    conn: &mut Conn,
) -> Result<Vec<(ProjectId, JobState, u64)>, StoreError> {
    query(conn, JOBS_BY_PROJECT, &[], |r| {
        let project = ProjectId(get(r, 0)?);
        let state = parse(&format!("state of a job of project {project}"), get(r, 1)?)?;
        Ok((project, state, unsigned(r, 2)?))
    })
}

pub(super) fn tasks(conn: &mut Conn, job: JobId) -> Result<Vec<TaskRecord>, StoreError> {
    query(conn, TASKS, &[&job.0], task_row)
}

pub(super) fn attempts(conn: &mut Conn, job: JobId) -> Result<Vec<AttemptRecord>, StoreError> {
    query(conn, ATTEMPTS, &[&job.0], attempt_row)
}

pub(super) fn task_counts(
    conn: &mut Conn,
    job: JobId,
) -> Result<Vec<(TaskState, u64)>, StoreError> {
    query(conn, TASK_COUNTS, &[&job.0], |r| {
        let what = format!("state of a task of job {job}");
        Ok((parse(&what, get(r, 0)?)?, unsigned(r, 1)?))
    })
}

pub(super) fn tasks_page(
    conn: &mut Conn,
    job: JobId,
    offset: u32,
    limit: u32,
) -> Result<Vec<TaskRecord>, StoreError> {
    let (limit, offset) = (i64::from(limit), i64::from(offset));
    query(conn, TASKS_PAGE, &[&job.0, &limit, &offset], task_row)
}

pub(super) fn attempts_page(
    conn: &mut Conn,
    job: JobId,
    offset: u32,
    limit: u32,
) -> Result<Vec<AttemptRecord>, StoreError> {
    let (limit, offset) = (i64::from(limit), i64::from(offset));
    query(conn, ATTEMPTS_PAGE, &[&job.0, &limit, &offset], attempt_row)
}

pub(super) fn open_attempts(conn: &mut Conn) -> Result<Vec<AttemptRecord>, StoreError> {
    query(conn, OPEN_ATTEMPTS, &[], attempt_row)
}

pub(super) fn usage_since(conn: &mut Conn, since: Millis) -> Result<Vec<UsageRow>, StoreError> {
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let rows = query(conn, USAGE_SINCE, &[&since], |r| {
        let task = TaskRef::new(JobId(get(r, 5)?), unsigned(r, 6)?);
        let spec: Option<&str> = get(r, 3)?;
        let what = format!("spec of task {task}");
        let charged = charged_cpu_ms(&what, get(r, 1)?, get(r, 2)?, spec)?;
        let project = get::<Option<i64>>(r, 0)?.map(ProjectId);
        Ok((project, charged, unsigned(r, 4)?))
    })?;
    Ok(rows.into_iter().filter(|&(_, c, _)| c > 0).collect())
}

pub(super) fn node_usage_since(
    conn: &mut Conn,
    since: Millis,
) -> Result<Vec<NodeUsage>, StoreError> {
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    query(conn, NODE_USAGE, &[&since], |r| {
        Ok(NodeUsage {
            node: get(r, 0)?,
            attempts: unsigned(r, 1)?,
            cpu_ms: unsigned(r, 2)?,
            transfer_ms: unsigned(r, 3)?,
            transfer_bytes: unsigned(r, 4)?,
        })
    })
}

/// A job row's snapshot columns, parsed: id, spec, state, project,
/// suspended, priority.
type SnapshotRow = (JobId, JobSpec, JobState, Option<ProjectId>, bool, i32);

fn snapshot_row(r: &Row) -> Result<SnapshotRow, StoreError> {
    let id = JobId(get(r, 0)?);
    let spec: JobSpec = json(&format!("spec of job {id}"), get(r, 1)?)?;
    let state: JobState = parse(&format!("state of job {id}"), get(r, 2)?)?;
    let project = get::<Option<i64>>(r, 3)?.map(ProjectId);
    let (suspended, priority): (bool, i32) = (get(r, 4)?, get(r, 5)?);
    Ok((id, spec, state, project, suspended, priority))
}

pub(super) fn load_unfinished(conn: &mut Conn) -> Result<Vec<JobSnapshot>, StoreError> {
    let terminal = [JobState::Succeeded, JobState::Failed, JobState::Cancelled].map(|s| s.as_str());
    let params: [&(dyn ToSql + Sync); 3] = [&terminal[0], &terminal[1], &terminal[2]];
    let jobs = query(conn, UNFINISHED, &params, snapshot_row)?;
    jobs.into_iter().map(|row| snapshot(conn, row)).collect()
}

pub(super) fn load_job(conn: &mut Conn, id: JobId) -> Result<Option<JobSnapshot>, StoreError> {
    match query(conn, SNAPSHOT, &[&id.0], snapshot_row)?.pop() {
        Some(row) => snapshot(conn, row).map(Some),
        None => Ok(None),
    }
}

/// A job's snapshot from its row, its tasks and its batches.
fn snapshot(conn: &mut Conn, row: SnapshotRow) -> Result<JobSnapshot, StoreError> {
    let (id, mut spec, state, project, suspended, priority) = row;
    let rows = tasks(conn, id)?;
    let mut tasks = Vec::with_capacity(rows.len());
    spec.tasks = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        if row.task.index as usize != i {
            let what = format!("job {id} has no task {i} but has task {}", row.task.index);
            return Err(StoreError::corrupt(what));
        }
        tasks.push(TaskSnapshot {
            state: row.state,
            attempt: row.attempt,
            failures: row.failures,
            not_before: row.not_before,
        });
        spec.tasks.push(row.spec);
    }
    // Where each batch (the job's first tasks, then each expansion)
    // begins, so selectors resolve again as they did when added.
    let batch_starts = query(conn, BATCH_STARTS, &[&id.0], |r| unsigned(r, 0))?;
    Ok(JobSnapshot {
        id,
        spec,
        state,
        tasks,
        batch_starts,
        project,
        suspended,
        priority,
    })
}
