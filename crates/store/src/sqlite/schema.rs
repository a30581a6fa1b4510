//! Schema migrations. `MIGRATIONS[i]` takes the schema from version `i` to
//! `i + 1`; the version lives in the one-row `schema_version` table (a plain
//! table rather than SQLite's `user_version`, so the PostgreSQL backend can
//! keep the same bookkeeping). The SQL sticks to what both databases accept
//! where it can: `BIGINT` timestamps (milliseconds), `TEXT` states and JSON.

use super::map_err;
use crate::StoreError;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;

const MIGRATIONS: &[&str] = &[
    // 0 -> 1: accounts (users, projects, members, API keys); jobs, tasks,
    // attempts.
    "
    CREATE TABLE users (
        id         INTEGER PRIMARY KEY,
        name       TEXT    NOT NULL UNIQUE,
        admin      BOOLEAN NOT NULL,
        created_at BIGINT  NOT NULL
    );

    CREATE TABLE projects (
        id         INTEGER PRIMARY KEY,
        name       TEXT    NOT NULL UNIQUE,
        created_at BIGINT  NOT NULL,
        -- The project's quota; NULL is unlimited.
        max_cpu           BIGINT,
        max_memory_mb     BIGINT,
        cpu_ms_per_window BIGINT
    );

    CREATE TABLE members (
        project_id BIGINT NOT NULL REFERENCES projects (id),
        user_id    BIGINT NOT NULL REFERENCES users (id),
        role       TEXT   NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (project_id, user_id)
    );
    CREATE INDEX members_by_user ON members (user_id, project_id);

    CREATE TABLE api_keys (
        id           INTEGER PRIMARY KEY,
        user_id      BIGINT NOT NULL REFERENCES users (id),
        name         TEXT   NOT NULL,
        prefix       TEXT   NOT NULL UNIQUE,
        hash         TEXT   NOT NULL,
        created_at   BIGINT NOT NULL,
        last_used_at BIGINT,
        revoked_at   BIGINT
    );
    CREATE INDEX api_keys_by_user ON api_keys (user_id, id);

    CREATE TABLE jobs (
        id          INTEGER PRIMARY KEY,
        project_id  BIGINT  REFERENCES projects (id),
        name        TEXT    NOT NULL,
        key         TEXT,
        spec_json   TEXT    NOT NULL,
        state       TEXT    NOT NULL,
        created_at  BIGINT  NOT NULL,
        updated_at  BIGINT  NOT NULL,
        finished_at BIGINT,
        suspended   BOOLEAN NOT NULL DEFAULT FALSE,
        priority    INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_by_key ON jobs (key, id);
    CREATE INDEX jobs_by_state ON jobs (state, id);
    CREATE INDEX jobs_by_project ON jobs (project_id, id);

    CREATE TABLE tasks (
        job_id     BIGINT  NOT NULL REFERENCES jobs (id),
        idx        INTEGER NOT NULL,
        name       TEXT    NOT NULL,
        spec_json  TEXT    NOT NULL,
        state      TEXT    NOT NULL,
        attempt    INTEGER NOT NULL,
        failures   INTEGER NOT NULL,
        not_before BIGINT  NOT NULL,
        reason     TEXT,
        batch      INTEGER NOT NULL,
        created_at BIGINT  NOT NULL,
        updated_at BIGINT  NOT NULL,
        PRIMARY KEY (job_id, idx)
    );
    CREATE UNIQUE INDEX tasks_by_name ON tasks (job_id, name);
    CREATE INDEX tasks_by_state ON tasks (job_id, state);

    CREATE TABLE attempts (
        job_id     BIGINT  NOT NULL,
        idx        INTEGER NOT NULL,
        number     INTEGER NOT NULL,
        node       INTEGER NOT NULL,
        outcome    TEXT,
        message    TEXT,
        started_at BIGINT  NOT NULL,
        ended_at   BIGINT,
        wall_ms    BIGINT,
        cpu_ms     BIGINT,
        max_rss_kb BIGINT,
        pid        INTEGER,
        PRIMARY KEY (job_id, idx, number),
        FOREIGN KEY (job_id, idx) REFERENCES tasks (job_id, idx)
    );
    CREATE INDEX attempts_open ON attempts (outcome) WHERE outcome IS NULL;
    CREATE INDEX attempts_by_end ON attempts (ended_at) WHERE ended_at IS NOT NULL;
    ",
    // 1 -> 2: attempts remember the worker that ran them (`node`, NULL for
    // this machine; the core's numeric node id moves to `node_id`) and what
    // a worker spent moving their files.
    "
    ALTER TABLE attempts RENAME COLUMN node TO node_id;
    ALTER TABLE attempts ADD COLUMN node TEXT;
    ALTER TABLE attempts ADD COLUMN transfer_ms BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE attempts ADD COLUMN transfer_bytes BIGINT NOT NULL DEFAULT 0;
    ",
    // 2 -> 3: job dependencies resolve names within a project (exact names
    // by lookup, patterns by a scan of the names alone).
    "
    CREATE INDEX jobs_by_name ON jobs (project_id, name, id);
    ",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`], refusing one that is newer.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = |e| map_err(path, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
        [],
    )
    .map_err(err)?;
    let found: Option<i64> = tx
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()
        .map_err(err)?;
    let found = match found {
        Some(v) => v,
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", [])
                .map_err(err)?;
            0
        }
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let from = usize::try_from(found).map_err(|_| {
        StoreError::corrupt(format!("schema version {found} in {}", path.display()))
    })?;
    for sql in &MIGRATIONS[from..] {
        tx.execute_batch(sql).map_err(err)?;
    }
    tx.execute("UPDATE schema_version SET version = ?1", [SCHEMA_VERSION])
        .map_err(err)?;
    tx.commit().map_err(err)
}

/// The database's schema version (0 for an empty database).
pub(super) fn version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let err = |e| map_err(path, e);
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    if !has_table {
        return Ok(0);
    }
    let found: Option<i64> = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()
        .map_err(err)?;
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_gains_attempt_nodes_and_transfers() {
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1");
        conn.execute_batch(
            "CREATE TABLE schema_version (version BIGINT NOT NULL);
             INSERT INTO schema_version (version) VALUES (1);
             INSERT INTO jobs (id, name, spec_json, state, created_at, updated_at)
                 VALUES (1, 'old', '{}', 'running', 1, 1);
             INSERT INTO tasks (job_id, idx, name, spec_json, state, attempt, failures,
                 not_before, batch, created_at, updated_at)
                 VALUES (1, 0, 't', '{\"name\":\"t\",\"action\":\"noop\"}', 'running', 1, 0, 0, 0, 1, 1);
             INSERT INTO attempts (job_id, idx, number, node, outcome, started_at, ended_at,
                 wall_ms, cpu_ms, max_rss_kb, pid)
                 VALUES (1, 0, 1, 0, 'succeeded', 5, 9, 4, 3, 100, 77);",
        )
        .expect("old rows");
        migrate(&mut conn, path).expect("migrate");
        assert_eq!(version(&conn, path).expect("version"), SCHEMA_VERSION);
        let attempts =
            super::super::read::attempts(&conn, path, tessera_types::JobId(1)).expect("read");
        assert_eq!(attempts.len(), 1);
        let a = &attempts[0];
        assert_eq!((a.node.as_deref(), a.pid), (None, Some(77)));
        let usage = a.usage.expect("ended");
        assert_eq!(
            (usage.cpu_ms, usage.transfer_ms, usage.transfer_bytes),
            (3, 0, 0)
        );
        // The numeric node id kept its value under its new name.
        let node_id: i64 = conn
            .query_row("SELECT node_id FROM attempts", [], |r| r.get(0))
            .expect("node_id");
        assert_eq!(node_id, 0);
        // Version 3: job names are indexed per project.
        let indexed: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'jobs_by_name')",
                [],
                |r| r.get(0),
            )
            .expect("index");
        assert!(indexed);
    }
}
