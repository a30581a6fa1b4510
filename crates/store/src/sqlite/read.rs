//! Queries and the mapping of rows back into records.

use super::map_err;
use crate::codec::{charged_cpu_ms, json, outcome_from, parse};
use crate::{AttemptRecord, JobRecord, NodeUsage, StoreError, TaskRecord, UsageRow};
use rusqlite::{Connection, Params, Row};
use std::path::Path;
use tessera_types::{
    AttemptUsage, JobId, JobSnapshot, JobSpec, JobState, Millis, ProjectId, TaskRef, TaskSnapshot,
    TaskSpec, TaskState,
};

const JOB_COLUMNS: &str =
    "id, name, key, state, created_at, updated_at, finished_at, project_id, suspended, priority";
const TASK_COLUMNS: &str =
    "job_id, idx, name, spec_json, state, attempt, failures, not_before, reason, created_at, updated_at";
const ATTEMPT_COLUMNS: &str = "job_id, idx, number, node, outcome, message, started_at, ended_at, \
     wall_ms, cpu_ms, max_rss_kb, pid, transfer_ms, transfer_bytes";

/// A row mapper whose own parse errors (bad state strings, bad JSON) travel
/// beside SQLite's.
pub(super) type Mapped<T> = rusqlite::Result<Result<T, StoreError>>;

pub(super) fn query<T, P: Params>(
    conn: &Connection,
    path: &Path,
    sql: &str,
    params: P,
    map: impl FnMut(&Row<'_>) -> Mapped<T>,
) -> Result<Vec<T>, StoreError> {
    let err = |e| map_err(path, e);
    let mut stmt = conn.prepare_cached(sql).map_err(err)?;
    let rows = stmt.query_map(params, map).map_err(err)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(err)??);
    }
    Ok(out)
}

fn job_row(r: &Row<'_>) -> Mapped<JobRecord> {
    let id = JobId(r.get(0)?);
    let (name, key, state): (String, Option<String>, String) = (r.get(1)?, r.get(2)?, r.get(3)?);
    let (created_at, updated_at, finished_at) = (r.get(4)?, r.get(5)?, r.get(6)?);
    let project = r.get::<_, Option<i64>>(7)?.map(ProjectId);
    let (suspended, priority) = (r.get(8)?, r.get(9)?);
    Ok(
        parse(&format!("state of job {id}"), &state).map(|state| JobRecord {
            id,
            project,
            name,
            key,
            state,
            created_at,
            updated_at,
            finished_at,
            suspended,
            priority,
        }),
    )
}

fn task_row(r: &Row<'_>) -> Mapped<TaskRecord> {
    let task = TaskRef::new(JobId(r.get(0)?), r.get(1)?);
    let spec_json: String = r.get(3)?;
    let state: String = r.get(4)?;
    let parsed = parse::<TaskState>(&format!("state of task {task}"), &state).and_then(|state| {
        Ok((
            state,
            json::<TaskSpec>(&format!("spec of task {task}"), &spec_json)?,
        ))
    });
    let (state, spec) = match parsed {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(TaskRecord {
        task,
        name: r.get(2)?,
        spec,
        state,
        attempt: r.get(5)?,
        failures: r.get(6)?,
        not_before: r.get(7)?,
        reason: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    }))
}

fn attempt_row(r: &Row<'_>) -> Mapped<AttemptRecord> {
    let task = TaskRef::new(JobId(r.get(0)?), r.get(1)?);
    let number = r.get(2)?;
    let outcome: Option<String> = r.get(4)?;
    let message: Option<String> = r.get(5)?;
    let outcome = match outcome.as_deref().map(|kind| outcome_from(kind, message)) {
        None => None,
        Some(Ok(o)) => Some(o),
        Some(Err(kind)) => {
            let what = format!("outcome {kind:?} of attempt {number} of task {task}");
            return Ok(Err(StoreError::corrupt(what)));
        }
    };
    let usage = match (r.get(8)?, r.get(9)?, r.get(10)?) {
        (Some(wall_ms), Some(cpu_ms), Some(max_rss_kb)) => Some(AttemptUsage {
            wall_ms,
            cpu_ms,
            max_rss_kb,
            transfer_ms: r.get(12)?,
            transfer_bytes: r.get(13)?,
        }),
        _ => None,
    };
    Ok(Ok(AttemptRecord {
        task,
        number,
        node: r.get(3)?,
        started_at: r.get(6)?,
        ended_at: r.get(7)?,
        outcome,
        usage,
        pid: r.get(11)?,
    }))
}

pub(super) fn job(
    conn: &Connection,
    path: &Path,
    id: JobId,
) -> Result<Option<JobRecord>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
    Ok(query(conn, path, &sql, [id.0], job_row)?.pop())
}

pub(super) fn job_spec(
    conn: &Connection,
    path: &Path,
    id: JobId,
) -> Result<Option<JobSpec>, StoreError> {
    let what = format!("spec of job {id}");
    let sql = "SELECT spec_json FROM jobs WHERE id = ?1";
    let rows = query(conn, path, sql, [id.0], |r| Ok(Ok(r.get::<_, String>(0)?)))?;
    rows.first().map(|s| json(&what, s)).transpose()
}

pub(super) fn job_names(
    conn: &Connection,
    path: &Path,
    project: Option<ProjectId>,
    name: Option<&str>,
) -> Result<Vec<(JobId, String)>, StoreError> {
    let row = |r: &Row<'_>| Ok(Ok((JobId(r.get(0)?), r.get(1)?)));
    // Four statements, so each uses the index on (project_id, name, id).
    match (project, name) {
        (Some(p), Some(n)) => query(
            conn,
            path,
            "SELECT id, name FROM jobs WHERE project_id = ?1 AND name = ?2 ORDER BY id",
            rusqlite::params![p.0, n],
            row,
        ),
        (Some(p), None) => query(
            conn,
            path,
            "SELECT id, name FROM jobs WHERE project_id = ?1 ORDER BY id",
            [p.0],
            row,
        ),
        (None, Some(n)) => query(
            conn,
            path,
            "SELECT id, name FROM jobs WHERE project_id IS NULL AND name = ?1 ORDER BY id",
            [n],
            row,
        ),
        (None, None) => query(
            conn,
            path,
            "SELECT id, name FROM jobs WHERE project_id IS NULL ORDER BY id",
            [],
            row,
        ),
    }
}

pub(super) fn find_job_by_key(
    conn: &Connection,
    path: &Path,
    key: &str,
) -> Result<Option<JobRecord>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE key = ?1 ORDER BY id DESC LIMIT 1");
    Ok(query(conn, path, &sql, [key], job_row)?.pop())
}

pub(super) fn recent_jobs(
    conn: &Connection,
    path: &Path,
    limit: u32,
) -> Result<Vec<JobRecord>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1");
    query(conn, path, &sql, [limit], job_row)
}

pub(super) fn jobs_of_project(
    conn: &Connection,
    path: &Path,
    project: ProjectId,
    limit: u32,
) -> Result<Vec<JobRecord>, StoreError> {
    let sql =
        format!("SELECT {JOB_COLUMNS} FROM jobs WHERE project_id = ?1 ORDER BY id DESC LIMIT ?2");
    query(
        conn,
        path,
        &sql,
        rusqlite::params![project.0, limit],
        job_row,
    )
}

/// Counts rows of `sql` (`SELECT state, COUNT(*) ... GROUP BY state`).
fn count_states<S: std::str::FromStr>(
    conn: &Connection,
    path: &Path,
    what: &str,
    sql: &str,
) -> Result<Vec<(S, u64)>, StoreError>
where
    S::Err: std::fmt::Display,
{
    query(conn, path, sql, [], |r| {
        let (state, n): (String, u64) = (r.get(0)?, r.get(1)?);
        Ok(parse(&format!("state of a {what}"), &state).map(|s| (s, n)))
    })
}

#[allow(clippy::type_complexity)]
pub(super) fn count_by_state(
    conn: &Connection,
    path: &Path,
) -> Result<(Vec<(JobState, u64)>, Vec<(TaskState, u64)>), StoreError> {
    let jobs = "SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state";
    let tasks = "SELECT state, COUNT(*) FROM tasks GROUP BY state ORDER BY state";
    Ok((
        count_states(conn, path, "job", jobs)?,
        count_states(conn, path, "task", tasks)?,
    ))
}

pub(super) fn count_jobs_by_project(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<(ProjectId, JobState, u64)>, StoreError> {
    let sql = "SELECT project_id, state, COUNT(*) FROM jobs WHERE project_id IS NOT NULL \
        GROUP BY project_id, state ORDER BY project_id, state";
    query(conn, path, sql, [], |r| {
        let (project, state, n): (i64, String, u64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let what = format!("state of a job of project {project}");
        Ok(parse(&what, &state).map(|s| (ProjectId(project), s, n)))
    })
}

pub(super) fn tasks(
    conn: &Connection,
    path: &Path,
    job: JobId,
) -> Result<Vec<TaskRecord>, StoreError> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE job_id = ?1 ORDER BY idx");
    query(conn, path, &sql, [job.0], task_row)
}

pub(super) fn task_counts(
    conn: &Connection,
    path: &Path,
    job: JobId,
) -> Result<Vec<(TaskState, u64)>, StoreError> {
    let sql = "SELECT state, COUNT(*) FROM tasks WHERE job_id = ?1 GROUP BY state ORDER BY state";
    query(conn, path, sql, [job.0], |r| {
        let (state, n): (String, u64) = (r.get(0)?, r.get(1)?);
        Ok(parse(&format!("state of a task of job {job}"), &state).map(|s| (s, n)))
    })
}

pub(super) fn tasks_page(
    conn: &Connection,
    path: &Path,
    job: JobId,
    offset: u32,
    limit: u32,
) -> Result<Vec<TaskRecord>, StoreError> {
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE job_id = ?1 ORDER BY idx LIMIT ?2 OFFSET ?3"
    );
    let params = rusqlite::params![job.0, limit, offset];
    query(conn, path, &sql, params, task_row)
}

pub(super) fn attempts_page(
    conn: &Connection,
    path: &Path,
    job: JobId,
    offset: u32,
    limit: u32,
) -> Result<Vec<AttemptRecord>, StoreError> {
    let sql = format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE job_id = ?1 ORDER BY idx, number \
         LIMIT ?2 OFFSET ?3"
    );
    let params = rusqlite::params![job.0, limit, offset];
    query(conn, path, &sql, params, attempt_row)
}

pub(super) fn attempts(
    conn: &Connection,
    path: &Path,
    job: JobId,
) -> Result<Vec<AttemptRecord>, StoreError> {
    let sql =
        format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE job_id = ?1 ORDER BY idx, number");
    query(conn, path, &sql, [job.0], attempt_row)
}

pub(super) fn open_attempts(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<AttemptRecord>, StoreError> {
    let sql = format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE outcome IS NULL ORDER BY job_id, idx, number"
    );
    query(conn, path, &sql, [], attempt_row)
}

pub(super) fn usage_since(
    conn: &Connection,
    path: &Path,
    since: Millis,
) -> Result<Vec<UsageRow>, StoreError> {
    // The task's spec (for its cpu) only when the attempt's cpu time is unmeasured.
    let sql = "SELECT j.project_id, a.cpu_ms, a.wall_ms, \
               CASE WHEN COALESCE(a.cpu_ms, 0) > 0 THEN NULL ELSE t.spec_json END, \
               a.ended_at, a.job_id, a.idx \
               FROM attempts a \
               JOIN tasks t ON t.job_id = a.job_id AND t.idx = a.idx \
               JOIN jobs j ON j.id = a.job_id \
               WHERE a.ended_at IS NOT NULL AND a.ended_at >= ?1 \
               ORDER BY a.ended_at, a.job_id, a.idx, a.number";
    let rows = query(conn, path, sql, [since], |r| {
        let task = TaskRef::new(JobId(r.get(5)?), r.get(6)?);
        let spec: Option<String> = r.get(3)?;
        let what = format!("spec of task {task}");
        let charged = charged_cpu_ms(&what, r.get(1)?, r.get(2)?, spec.as_deref());
        let project = r.get::<_, Option<i64>>(0)?.map(ProjectId);
        let ended_at: Millis = r.get(4)?;
        Ok(charged.map(|c| (project, c, ended_at)))
    })?;
    Ok(rows.into_iter().filter(|&(_, c, _)| c > 0).collect())
}

pub(super) fn node_usage_since(
    conn: &Connection,
    path: &Path,
    since: Millis,
) -> Result<Vec<NodeUsage>, StoreError> {
    query(conn, path, NODE_USAGE, [since], |r| {
        Ok(Ok(NodeUsage {
            node: r.get(0)?,
            attempts: r.get(1)?,
            cpu_ms: r.get(2)?,
            transfer_ms: r.get(3)?,
            transfer_bytes: r.get(4)?,
        }))
    })
}

/// Per node (NULL first), the attempts that ended at or after `?1`.
const NODE_USAGE: &str = "SELECT node, COUNT(*), COALESCE(SUM(cpu_ms), 0), \
    COALESCE(SUM(transfer_ms), 0), COALESCE(SUM(transfer_bytes), 0) FROM attempts \
    WHERE ended_at IS NOT NULL AND ended_at >= ?1 GROUP BY node ORDER BY node IS NOT NULL, node";

/// A job row's snapshot columns: id, spec, state, project, suspended, priority.
type SnapshotRow = (JobId, String, String, Option<ProjectId>, bool, i32);

const SNAPSHOT_COLUMNS: &str = "id, spec_json, state, project_id, suspended, priority";

fn snapshot_row(r: &Row<'_>) -> Mapped<SnapshotRow> {
    let project = r.get::<_, Option<i64>>(3)?.map(ProjectId);
    let id = JobId(r.get(0)?);
    Ok(Ok((
        id,
        r.get(1)?,
        r.get(2)?,
        project,
        r.get(4)?,
        r.get(5)?,
    )))
}

pub(super) fn load_unfinished(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<JobSnapshot>, StoreError> {
    let (a, b, c) = (JobState::Succeeded, JobState::Failed, JobState::Cancelled);
    let sql =
        format!("SELECT {SNAPSHOT_COLUMNS} FROM jobs WHERE state NOT IN (?1, ?2, ?3) ORDER BY id");
    let jobs = query(
        conn,
        path,
        &sql,
        [a.as_str(), b.as_str(), c.as_str()],
        snapshot_row,
    )?;
    jobs.into_iter()
        .map(|row| snapshot(conn, path, row))
        .collect()
}

pub(super) fn load_job(
    conn: &Connection,
    path: &Path,
    id: JobId,
) -> Result<Option<JobSnapshot>, StoreError> {
    let sql = format!("SELECT {SNAPSHOT_COLUMNS} FROM jobs WHERE id = ?1");
    match query(conn, path, &sql, [id.0], snapshot_row)?.pop() {
        Some(row) => snapshot(conn, path, row).map(Some),
        None => Ok(None),
    }
}

/// A job's snapshot from its row, its tasks and its batches.
fn snapshot(conn: &Connection, path: &Path, row: SnapshotRow) -> Result<JobSnapshot, StoreError> {
    let (id, spec_json, state, project, suspended, priority) = row;
    let mut spec: JobSpec = json(&format!("spec of job {id}"), &spec_json)?;
    let state: JobState = parse(&format!("state of job {id}"), &state)?;
    let rows = tasks(conn, path, id)?;
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
    let batch_starts = query(
        conn,
        path,
        "SELECT DISTINCT batch FROM tasks WHERE job_id = ?1 ORDER BY batch",
        [id.0],
        |r| Ok(Ok(r.get::<_, u32>(0)?)),
    )?;
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
