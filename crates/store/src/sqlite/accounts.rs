//! [`Accounts`](crate::Accounts) on SQLite: users, projects, members, keys.

use super::read::{query, Mapped};
use super::write::constraint;
use super::{map_err, SqliteStore};
use crate::accounts::{check_key, check_name, prefix_taken, project_taken, user_taken};
use crate::codec::{parse, quota_columns, quota_from};
use crate::{Accounts, KeyRecord, ProjectRecord, StoreError, UserRecord};
use rusqlite::{ffi, params, Params, Row, TransactionBehavior};
use tessera_types::{KeyId, Millis, ProjectId, Quota, Role, UserId};

const USER_COLUMNS: &str = "id, name, admin, created_at";
const PROJECT_COLUMNS: &str = "id, name, created_at";
const KEY_COLUMNS: &str = "id, user_id, name, prefix, hash, created_at, last_used_at, revoked_at";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: UserId(r.get(0)?),
        name: r.get(1)?,
        admin: r.get(2)?,
        created_at: r.get(3)?,
    })
}

fn project_row(r: &Row<'_>) -> rusqlite::Result<ProjectRecord> {
    Ok(ProjectRecord {
        id: ProjectId(r.get(0)?),
        name: r.get(1)?,
        created_at: r.get(2)?,
    })
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    Ok(KeyRecord {
        id: KeyId(r.get(0)?),
        user: UserId(r.get(1)?),
        name: r.get(2)?,
        prefix: r.get(3)?,
        hash: r.get(4)?,
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

/// A role column at `col`, for the row described by `what`.
fn role_at(r: &Row<'_>, col: usize, what: impl FnOnce() -> String) -> Mapped<Role> {
    let role: String = r.get(col)?;
    Ok(parse(&what(), &role))
}

impl SqliteStore {
    fn rows<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        map: impl FnMut(&Row<'_>) -> Mapped<T>,
    ) -> Result<Vec<T>, StoreError> {
        query(&self.conn, &self.path, sql, params, map)
    }
}

impl Accounts for SqliteStore {
    fn create_user(
        &mut self,
        name: &str,
        admin: bool,
        now: Millis,
    ) -> Result<UserRecord, StoreError> {
        check_name("a user's name", name)?;
        let id: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO users (name, admin, created_at) VALUES (?1, ?2, ?3) RETURNING id",
            )
            .and_then(|mut s| s.query_row(params![name, admin, now], |r| r.get(0)))
            .map_err(|e| match constraint(&e) {
                Some(ffi::SQLITE_CONSTRAINT_UNIQUE) => user_taken(name),
                _ => map_err(&self.path, e),
            })?;
        Ok(UserRecord {
            id: UserId(id),
            name: name.to_string(),
            admin,
            created_at: now,
        })
    }

    fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
        Ok(self.rows(&sql, [id.0], |r| user_row(r).map(Ok))?.pop())
    }

    fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1");
        Ok(self.rows(&sql, [name], |r| user_row(r).map(Ok))?.pop())
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
        self.rows(&sql, [], |r| user_row(r).map(Ok))
    }

    fn create_project(
        &mut self,
        name: &str,
        owner: UserId,
        now: Millis,
    ) -> Result<ProjectRecord, StoreError> {
        check_name("a project's name", name)?;
        let path = &self.path;
        let err = |e| map_err(path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let id: i64 = tx
            .prepare_cached("INSERT INTO projects (name, created_at) VALUES (?1, ?2) RETURNING id")
            .and_then(|mut s| s.query_row(params![name, now], |r| r.get(0)))
            .map_err(|e| match constraint(&e) {
                Some(ffi::SQLITE_CONSTRAINT_UNIQUE) => project_taken(name),
                _ => err(e),
            })?;
        tx.prepare_cached(
            "INSERT INTO members (project_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![id, owner.0, Role::Owner.as_str(), now]))
        .map_err(|e| match constraint(&e) {
            Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::UnknownUser(owner),
            _ => err(e),
        })?;
        tx.commit().map_err(err)?;
        Ok(ProjectRecord {
            id: ProjectId(id),
            name: name.to_string(),
            created_at: now,
        })
    }

    fn project(&self, id: ProjectId) -> Result<Option<ProjectRecord>, StoreError> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1");
        Ok(self.rows(&sql, [id.0], |r| project_row(r).map(Ok))?.pop())
    }

    fn project_by_name(&self, name: &str) -> Result<Option<ProjectRecord>, StoreError> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE name = ?1");
        Ok(self.rows(&sql, [name], |r| project_row(r).map(Ok))?.pop())
    }

    fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects ORDER BY id");
        self.rows(&sql, [], |r| project_row(r).map(Ok))
    }

    fn projects_of(&self, user: UserId) -> Result<Vec<(ProjectRecord, Role)>, StoreError> {
        let sql = "SELECT p.id, p.name, p.created_at, m.role FROM members m \
                   JOIN projects p ON p.id = m.project_id WHERE m.user_id = ?1 ORDER BY p.id";
        self.rows(sql, [user.0], |r| {
            let project = project_row(r)?;
            let what = || format!("role of user {user} in project {}", project.id);
            Ok(role_at(r, 3, what)?.map(|role| (project, role)))
        })
    }

    fn set_member(
        &mut self,
        project: ProjectId,
        user: UserId,
        role: Option<Role>,
        now: Millis,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let err = |e| map_err(path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let exists: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM projects WHERE id = ?1)")
            .and_then(|mut s| s.query_row([project.0], |r| r.get(0)))
            .map_err(err)?;
        if !exists {
            return Err(StoreError::UnknownProject(project));
        }
        match role {
            Some(role) => tx
                .prepare_cached(
                    "INSERT INTO members (project_id, user_id, role, created_at) \
                     VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .and_then(|mut s| s.execute(params![project.0, user.0, role.as_str(), now]))
                .map_err(|e| match constraint(&e) {
                    Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::UnknownUser(user),
                    _ => err(e),
                })?,
            None => tx
                .prepare_cached("DELETE FROM members WHERE project_id = ?1 AND user_id = ?2")
                .and_then(|mut s| s.execute([project.0, user.0]))
                .map_err(err)?,
        };
        tx.commit().map_err(err)
    }

    fn members(&self, project: ProjectId) -> Result<Vec<(UserRecord, Role)>, StoreError> {
        let sql = "SELECT u.id, u.name, u.admin, u.created_at, m.role FROM members m \
                   JOIN users u ON u.id = m.user_id WHERE m.project_id = ?1 ORDER BY u.id";
        self.rows(sql, [project.0], |r| {
            let user = user_row(r)?;
            let what = || format!("role of user {} in project {project}", user.id);
            Ok(role_at(r, 4, what)?.map(|role| (user, role)))
        })
    }

    fn role(&self, project: ProjectId, user: UserId) -> Result<Option<Role>, StoreError> {
        let sql = "SELECT role FROM members WHERE project_id = ?1 AND user_id = ?2";
        let what = || format!("role of user {user} in project {project}");
        Ok(self
            .rows(sql, [project.0, user.0], |r| role_at(r, 0, what))?
            .pop())
    }

    fn set_quota(&mut self, project: ProjectId, quota: Quota) -> Result<(), StoreError> {
        let [cpu, memory, cpu_ms] = quota_columns(&quota)?;
        let n = self
            .conn
            .prepare_cached(
                "UPDATE projects SET max_cpu = ?2, max_memory_mb = ?3, cpu_ms_per_window = ?4 \
                 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![project.0, cpu, memory, cpu_ms]))
            .map_err(|e| map_err(&self.path, e))?;
        if n == 0 {
            return Err(StoreError::UnknownProject(project));
        }
        Ok(())
    }

    fn quota(&self, project: ProjectId) -> Result<Quota, StoreError> {
        let sql = "SELECT max_cpu, max_memory_mb, cpu_ms_per_window FROM projects WHERE id = ?1";
        let what = format!("quota of project {project}");
        self.rows(sql, [project.0], |r| {
            Ok(quota_from(&what, [r.get(0)?, r.get(1)?, r.get(2)?]))
        })?
        .pop()
        .ok_or(StoreError::UnknownProject(project))
    }

    fn create_key(
        &mut self,
        user: UserId,
        name: &str,
        prefix: &str,
        hash: &str,
        now: Millis,
    ) -> Result<KeyRecord, StoreError> {
        check_key(name, prefix, hash)?;
        let id: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO api_keys (user_id, name, prefix, hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )
            .and_then(|mut s| s.query_row(params![user.0, name, prefix, hash, now], |r| r.get(0)))
            .map_err(|e| match constraint(&e) {
                Some(ffi::SQLITE_CONSTRAINT_UNIQUE) => prefix_taken(prefix),
                Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::UnknownUser(user),
                _ => map_err(&self.path, e),
            })?;
        Ok(KeyRecord {
            id: KeyId(id),
            user,
            name: name.to_string(),
            prefix: prefix.to_string(),
            hash: hash.to_string(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        })
    }

    fn key_by_prefix(&self, prefix: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = ?1");
        Ok(self.rows(&sql, [prefix], |r| key_row(r).map(Ok))?.pop())
    }

    fn keys_of(&self, user: UserId) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ?1 ORDER BY id");
        self.rows(&sql, [user.0], |r| key_row(r).map(Ok))
    }

    fn revoke_key(&mut self, id: KeyId, now: Millis) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )
            .and_then(|mut s| s.execute(params![id.0, now]))
            .map_err(|e| map_err(&self.path, e))?;
        Ok(n > 0)
    }

    fn touch_key(&mut self, id: KeyId, now: Millis) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id.0, now]))
            .map_err(|e| map_err(&self.path, e))?;
        Ok(())
    }
}
