//! `apply` in one statement: a batch of changes becomes one `UPDATE` or
//! `INSERT` per table and kind, each over array parameters (`unnest`), all
//! in one statement (data-modifying `WITH` clauses), instead of one
//! statement and one round trip per change. One statement is a transaction
//! of its own, so a batch costs one round trip; a batch that adds tasks
//! also counts and inserts them, in an explicit transaction.
//!
//! The plan means the same as applying the changes one by one, in order:
//! repeated updates of a row collapse to the last (each update sets every
//! column it owns), an attempt started and ended in one batch is inserted
//! ended, and rows are created before they are updated. What that
//! reordering could hide is checked as the plan is built: a task touched
//! before the batch adds it, an attempt ended before the batch starts it,
//! an attempt started twice. Every row an update names must exist, or the
//! statement fails and changes nothing.
//!
//! The plan only *detects* a failure; it does not say which change failed.
//! On [`Refused`] the caller applies the changes one by one, in a
//! transaction, which names the first failing change as precisely as
//! before. A failing batch is a bug of the caller (the core checks what it
//! sends), so the slow path costs nothing in practice.

use super::{ms, prepared, Statements};
use crate::codec::{outcome_columns, to_json};
use postgres::types::ToSql;
use postgres::{Client, GenericClient, Transaction};
use std::collections::HashMap;
use std::hash::Hash;
use tessera_types::{AttemptNo, Change, JobId, Millis, TaskRef, TaskSpec, TaskState};

#[cfg(test)]
mod tests;

/// The task count of each job a batch adds tasks to.
const COUNT_TASKS: &str = "SELECT j.id, (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id) \
    FROM jobs j WHERE j.id = ANY($1)";
/// New tasks, waiting: (job, index, name, spec, batch), state, now.
pub(super) const INSERT_TASKS: &str = "INSERT INTO tasks \
    (job_id, idx, name, spec_json, state, attempt, failures, not_before, reason, batch, created_at, updated_at) \
    SELECT u.job_id, u.idx, u.name, u.spec_json, $6::text, 0, 0, 0, NULL, u.batch, $7::bigint, $7::bigint \
    FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) \
    AS u(job_id, idx, name, spec_json, batch)";
/// Every other row a batch writes, `$1` being now: job updates (a NULL
/// leaves a column alone), task updates, started attempts (with their end
/// when the batch ended them too) and ended attempts. The last line divides
/// by zero, failing the statement, when an update missed a row: each key
/// array holds distinct keys, so each update must touch as many rows.
const WRITE: &str = "WITH \
    jobs_set AS (UPDATE jobs j SET state = COALESCE(u.state, j.state), \
        finished_at = CASE WHEN u.state IS NULL THEN j.finished_at ELSE u.finished_at END, \
        suspended = COALESCE(u.suspended, j.suspended), \
        priority = COALESCE(u.priority, j.priority), updated_at = $1 \
        FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::boolean[], $6::integer[]) \
        AS u(id, state, finished_at, suspended, priority) \
        WHERE j.id = u.id RETURNING 1), \
    tasks_set AS (UPDATE tasks t SET state = u.state, attempt = u.attempt, \
        failures = u.failures, not_before = u.not_before, reason = u.reason, updated_at = $1 \
        FROM unnest($7::bigint[], $8::bigint[], $9::text[], $10::bigint[], $11::bigint[], \
        $12::bigint[], $13::text[]) AS u(job_id, idx, state, attempt, failures, not_before, reason) \
        WHERE t.job_id = u.job_id AND t.idx = u.idx RETURNING 1), \
    started AS (INSERT INTO attempts (job_id, idx, number, node_id, started_at, \
        outcome, message, ended_at, wall_ms, cpu_ms, max_rss_kb, transfer_ms, transfer_bytes) \
        SELECT job_id, idx, number, node_id, started_at, outcome, message, ended_at, wall_ms, \
        cpu_ms, max_rss_kb, COALESCE(transfer_ms, 0), COALESCE(transfer_bytes, 0) \
        FROM unnest($14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], \
        $18::bigint[], $19::text[], $20::text[], $21::bigint[], $22::bigint[], $23::bigint[], \
        $24::bigint[], $25::bigint[], $26::bigint[]) AS u(job_id, idx, number, node_id, \
        started_at, outcome, message, ended_at, wall_ms, cpu_ms, max_rss_kb, transfer_ms, \
        transfer_bytes) RETURNING 1), \
    ended AS (UPDATE attempts a SET outcome = u.outcome, message = u.message, \
        ended_at = u.ended_at, wall_ms = u.wall_ms, cpu_ms = u.cpu_ms, max_rss_kb = u.max_rss_kb, \
        transfer_ms = u.transfer_ms, transfer_bytes = u.transfer_bytes \
        FROM unnest($27::bigint[], $28::bigint[], $29::bigint[], $30::text[], $31::text[], \
        $32::bigint[], $33::bigint[], $34::bigint[], $35::bigint[], $36::bigint[], $37::bigint[]) \
        AS u(job_id, idx, number, outcome, message, ended_at, wall_ms, cpu_ms, max_rss_kb, \
        transfer_ms, transfer_bytes) \
        WHERE a.job_id = u.job_id AND a.idx = u.idx AND a.number = u.number RETURNING 1) \
    SELECT 1 / ((SELECT count(*) FROM jobs_set) = cardinality($2::bigint[]) \
        AND (SELECT count(*) FROM tasks_set) = cardinality($7::bigint[]) \
        AND (SELECT count(*) FROM started) = cardinality($14::bigint[]) \
        AND (SELECT count(*) FROM ended) = cardinality($27::bigint[]))::int";

/// The most rows one `INSERT INTO tasks` carries, so that a huge job is a
/// few messages of a few megabytes rather than one enormous one.
pub(super) const TASKS_PER_INSERT: usize = 10_000;

/// The batched plan cannot stand for the changes applied one by one
/// (some change would fail), and nothing of it was kept: apply them one by
/// one to learn which.
#[derive(Debug)]
pub(super) struct Refused;

impl From<postgres::Error> for Refused {
    fn from(_: postgres::Error) -> Self {
        Refused
    }
}

impl From<crate::StoreError> for Refused {
    fn from(_: crate::StoreError) -> Self {
        Refused
    }
}

/// Applies and commits `changes` in one statement, or, when they add
/// tasks, in a transaction of three. On `Err` nothing was written.
pub(super) fn apply(
    statements: &mut Statements,
    client: &mut Client,
    changes: &[Change],
    now: Millis,
) -> Result<(), Refused> {
    if !changes
        .iter()
        .any(|c| matches!(c, Change::TasksAdded { .. }))
    {
        let plan = Plan::build(changes, HashMap::new(), now)?;
        // One statement is one transaction.
        return plan.write(statements, client, now);
    }
    let mut tx = client.transaction()?;
    let counts = task_counts(statements, &mut tx, changes)?;
    let plan = Plan::build(changes, counts, now)?;
    for chunk in plan.added.chunks(TASKS_PER_INSERT) {
        insert_tasks(statements, &mut tx, chunk, ms(now))?;
    }
    plan.write(statements, &mut tx, now)?;
    // Dropping `tx` on an error above rolls it back.
    Ok(tx.commit()?)
}

/// The current task count of each job the batch adds tasks to; a job
/// missing here does not exist.
fn task_counts(
    statements: &mut Statements,
    tx: &mut Transaction<'_>,
    changes: &[Change],
) -> Result<HashMap<JobId, u64>, Refused> {
    let mut jobs: Vec<i64> = changes
        .iter()
        .filter_map(|c| match c {
            Change::TasksAdded { job, .. } => Some(job.0),
            _ => None,
        })
        .collect();
    jobs.sort_unstable();
    jobs.dedup();
    let stmt = prepared(statements, tx, COUNT_TASKS)?;
    let mut counts = HashMap::new();
    for row in tx.query(&stmt, &[&jobs])? {
        let count: i64 = row.try_get(1)?;
        counts.insert(
            JobId(row.try_get(0)?),
            u64::try_from(count).map_err(|_| Refused)?,
        );
    }
    Ok(counts)
}

/// Rows keyed by their primary key, in order of first write.
struct Rows<K, R> {
    at: HashMap<K, usize>,
    rows: Vec<(K, R)>,
}

impl<K: Hash + Eq + Copy, R> Rows<K, R> {
    fn new() -> Self {
        Self {
            at: HashMap::new(),
            rows: Vec::new(),
        }
    }

    /// The row of `key`, made by `new` if the batch has not written it yet.
    fn entry(&mut self, key: K, new: impl FnOnce() -> R) -> &mut R {
        let next = self.rows.len();
        let i = *self.at.entry(key).or_insert(next);
        if i == next {
            self.rows.push((key, new()));
        }
        &mut self.rows[i].1
    }

    /// Sets the row of `key`, replacing what the batch wrote before.
    fn put(&mut self, key: K, row: R) {
        match self.at.get(&key) {
            Some(&i) => self.rows[i].1 = row,
            None => {
                self.at.insert(key, self.rows.len());
                self.rows.push((key, row));
            }
        }
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut R> {
        let i = *self.at.get(key)?;
        Some(&mut self.rows[i].1)
    }

    fn contains(&self, key: &K) -> bool {
        self.at.contains_key(key)
    }
}

/// A job's latest values in the batch; `None` leaves a column as it is.
#[derive(Default)]
struct JobRow {
    state: Option<(&'static str, Option<i64>)>,
    suspended: Option<bool>,
    priority: Option<i32>,
}

struct TaskRow<'c> {
    state: &'static str,
    attempt: i64,
    failures: i64,
    not_before: i64,
    reason: Option<&'c str>,
}

struct EndRow<'c> {
    outcome: &'static str,
    message: Option<&'c str>,
    at: i64,
    wall_ms: i64,
    cpu_ms: i64,
    max_rss_kb: i64,
    transfer_ms: i64,
    transfer_bytes: i64,
}

struct StartRow<'c> {
    node: i64,
    at: i64,
    end: Option<EndRow<'c>>,
}

type TaskKey = (i64, i64);
type AttemptKey = (i64, i64, i64);

fn task_key(task: TaskRef) -> TaskKey {
    (task.job.0, i64::from(task.index))
}

fn attempt_key(task: TaskRef, attempt: AttemptNo) -> AttemptKey {
    (task.job.0, i64::from(task.index), i64::from(attempt))
}

/// A batch of changes as the rows it leaves behind.
struct Plan<'c> {
    jobs: Rows<i64, JobRow>,
    /// New tasks in index order per job: (job, index, spec, batch).
    added: Vec<(i64, i64, &'c TaskSpec, i64)>,
    tasks: Rows<TaskKey, TaskRow<'c>>,
    started: Rows<AttemptKey, StartRow<'c>>,
    ended: Rows<AttemptKey, EndRow<'c>>,
}

impl<'c> Plan<'c> {
    /// Collapses `changes`, refusing what would fail applied one by one and
    /// the reordering would hide. `counts` holds the task counts of the jobs
    /// the batch adds to (see [`task_counts`]), and is advanced as it adds.
    fn build(
        changes: &'c [Change],
        mut counts: HashMap<JobId, u64>,
        now: Millis,
    ) -> Result<Self, Refused> {
        let mut plan = Plan {
            jobs: Rows::new(),
            added: Vec::new(),
            tasks: Rows::new(),
            started: Rows::new(),
            ended: Rows::new(),
        };
        // A task of a job the batch adds to must exist by the time it is
        // named: its index is below the count so far.
        let exists = |counts: &HashMap<JobId, u64>, task: TaskRef| match counts.get(&task.job) {
            Some(n) => u64::from(task.index) < *n,
            None => true,
        };
        for change in changes {
            match change {
                Change::JobState { job, state } => {
                    let finished_at = state.is_terminal().then_some(ms(now));
                    plan.jobs.entry(job.0, JobRow::default).state =
                        Some((state.as_str(), finished_at));
                }
                Change::JobSuspended { job, suspended } => {
                    plan.jobs.entry(job.0, JobRow::default).suspended = Some(*suspended);
                }
                Change::JobPriority { job, priority } => {
                    plan.jobs.entry(job.0, JobRow::default).priority = Some(*priority);
                }
                Change::TasksAdded {
                    job,
                    first_index,
                    tasks,
                } => {
                    let count = counts.get_mut(job).ok_or(Refused)?;
                    if *count != u64::from(*first_index) {
                        return Err(Refused);
                    }
                    *count += tasks.len() as u64;
                    let batch = i64::from(*first_index);
                    plan.added.extend(
                        (batch..)
                            .zip(tasks)
                            .map(|(index, spec)| (job.0, index, spec, batch)),
                    );
                    // Adding touches the job (`updated_at`), nothing else.
                    plan.jobs.entry(job.0, JobRow::default);
                }
                Change::Task {
                    task,
                    state,
                    attempt,
                    failures,
                    not_before,
                    reason,
                } => {
                    if !exists(&counts, *task) {
                        return Err(Refused);
                    }
                    let row = TaskRow {
                        state: state.as_str(),
                        attempt: i64::from(*attempt),
                        failures: i64::from(*failures),
                        not_before: ms(*not_before),
                        reason: reason.as_deref(),
                    };
                    plan.tasks.put(task_key(*task), row);
                }
                Change::AttemptStarted {
                    task,
                    attempt,
                    node,
                    at,
                } => {
                    let key = attempt_key(*task, *attempt);
                    // Twice in the batch, or after the batch ended it.
                    if !exists(&counts, *task)
                        || plan.started.contains(&key)
                        || plan.ended.contains(&key)
                    {
                        return Err(Refused);
                    }
                    let start = StartRow {
                        node: i64::from(node.0),
                        at: ms(*at),
                        end: None,
                    };
                    plan.started.put(key, start);
                }
                Change::AttemptEnded {
                    task,
                    attempt,
                    outcome,
                    usage,
                    at,
                } => {
                    let (outcome, message) = outcome_columns(outcome);
                    let end = EndRow {
                        outcome,
                        message,
                        at: ms(*at),
                        wall_ms: ms(usage.wall_ms),
                        cpu_ms: ms(usage.cpu_ms),
                        max_rss_kb: ms(usage.max_rss_kb),
                        transfer_ms: ms(usage.transfer_ms),
                        transfer_bytes: ms(usage.transfer_bytes),
                    };
                    let key = attempt_key(*task, *attempt);
                    match plan.started.get_mut(&key) {
                        Some(start) => start.end = Some(end),
                        None => plan.ended.put(key, end),
                    }
                }
            }
        }
        Ok(plan)
    }
}

impl Plan<'_> {
    /// Writes every row but new tasks in one statement ([`WRITE`]).
    fn write(
        &self,
        statements: &mut Statements,
        client: &mut impl GenericClient,
        now: Millis,
    ) -> Result<(), Refused> {
        if self.jobs.rows.is_empty()
            && self.tasks.rows.is_empty()
            && self.started.rows.is_empty()
            && self.ended.rows.is_empty()
        {
            return Ok(());
        }
        let jobs = &self.jobs.rows;
        let job_ids: Vec<i64> = jobs.iter().map(|(k, _)| *k).collect();
        let job_states: Vec<Option<&str>> =
            jobs.iter().map(|(_, r)| r.state.map(|s| s.0)).collect();
        let finished: Vec<Option<i64>> = jobs
            .iter()
            .map(|(_, r)| r.state.and_then(|s| s.1))
            .collect();
        let suspended: Vec<Option<bool>> = jobs.iter().map(|(_, r)| r.suspended).collect();
        let priority: Vec<Option<i32>> = jobs.iter().map(|(_, r)| r.priority).collect();

        let tasks = &self.tasks.rows;
        let task_jobs: Vec<i64> = tasks.iter().map(|(k, _)| k.0).collect();
        let task_idx: Vec<i64> = tasks.iter().map(|(k, _)| k.1).collect();
        let task_states: Vec<&str> = tasks.iter().map(|(_, r)| r.state).collect();
        let attempts: Vec<i64> = tasks.iter().map(|(_, r)| r.attempt).collect();
        let failures: Vec<i64> = tasks.iter().map(|(_, r)| r.failures).collect();
        let not_before: Vec<i64> = tasks.iter().map(|(_, r)| r.not_before).collect();
        let reasons: Vec<Option<&str>> = tasks.iter().map(|(_, r)| r.reason).collect();

        let (s_jobs, s_idx, s_numbers) = attempt_keys(&self.started);
        let starts = &self.started.rows;
        let nodes: Vec<i64> = starts.iter().map(|(_, r)| r.node).collect();
        let started_at: Vec<i64> = starts.iter().map(|(_, r)| r.at).collect();
        let ends: Vec<Option<&EndRow>> = starts.iter().map(|(_, r)| r.end.as_ref()).collect();
        let s_outcomes: Vec<Option<&str>> = ends.iter().map(|e| e.map(|e| e.outcome)).collect();
        let s_messages: Vec<Option<&str>> =
            ends.iter().map(|e| e.and_then(|e| e.message)).collect();
        let s_end =
            |f: fn(&EndRow) -> i64| -> Vec<Option<i64>> { ends.iter().map(|e| e.map(f)).collect() };

        let (e_jobs, e_idx, e_numbers) = attempt_keys(&self.ended);
        let ended = &self.ended.rows;
        let e_outcomes: Vec<&str> = ended.iter().map(|(_, e)| e.outcome).collect();
        let e_messages: Vec<Option<&str>> = ended.iter().map(|(_, e)| e.message).collect();
        let e_col =
            |f: fn(&EndRow) -> i64| -> Vec<i64> { ended.iter().map(|(_, e)| f(e)).collect() };

        let now = ms(now);
        let params: [&(dyn ToSql + Sync); 37] = [
            &now,
            &job_ids,
            &job_states,
            &finished,
            &suspended,
            &priority,
            &task_jobs,
            &task_idx,
            &task_states,
            &attempts,
            &failures,
            &not_before,
            &reasons,
            &s_jobs,
            &s_idx,
            &s_numbers,
            &nodes,
            &started_at,
            &s_outcomes,
            &s_messages,
            &s_end(|e| e.at),
            &s_end(|e| e.wall_ms),
            &s_end(|e| e.cpu_ms),
            &s_end(|e| e.max_rss_kb),
            &s_end(|e| e.transfer_ms),
            &s_end(|e| e.transfer_bytes),
            &e_jobs,
            &e_idx,
            &e_numbers,
            &e_outcomes,
            &e_messages,
            &e_col(|e| e.at),
            &e_col(|e| e.wall_ms),
            &e_col(|e| e.cpu_ms),
            &e_col(|e| e.max_rss_kb),
            &e_col(|e| e.transfer_ms),
            &e_col(|e| e.transfer_bytes),
        ];
        let stmt = prepared(statements, client, WRITE)?;
        client.query_one(&stmt, &params)?;
        Ok(())
    }
}

/// The key columns of attempt rows: (jobs, indices, numbers).
fn attempt_keys<R>(rows: &Rows<AttemptKey, R>) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let keys = rows.rows.iter().map(|(k, _)| *k);
    (
        keys.clone().map(|k| k.0).collect(),
        keys.clone().map(|k| k.1).collect(),
        keys.map(|k| k.2).collect(),
    )
}

/// Inserts new tasks, waiting, in one statement: (job, index, spec, batch)
/// rows, at most [`TASKS_PER_INSERT`] of them. A duplicate name fails on
/// the `tasks_by_name` index, an unknown job on the foreign key.
pub(super) fn insert_tasks(
    statements: &mut Statements,
    tx: &mut Transaction<'_>,
    rows: &[(i64, i64, &TaskSpec, i64)],
    now: i64,
) -> Result<(), crate::StoreError> {
    let jobs: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let idx: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.2.name.as_str()).collect();
    let specs: Vec<String> = rows.iter().map(|r| to_json(r.2)).collect();
    let batches: Vec<i64> = rows.iter().map(|r| r.3).collect();
    let stmt = prepared(statements, tx, INSERT_TASKS)?;
    let waiting = TaskState::Waiting.as_str();
    tx.execute(
        &stmt,
        &[&jobs, &idx, &names, &specs, &batches, &waiting, &now],
    )
    .map_err(super::backend)?;
    Ok(())
}
