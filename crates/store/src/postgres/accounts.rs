//! [`Accounts`](crate::Accounts) on PostgreSQL: users, projects, members, keys.

use super::read::{get, query, unsigned, unsigned_opt};
use super::{backend, foreign_key_violation, ms, prepared, unique_violation, PostgresStore};
use crate::accounts::{check_key, check_name, prefix_taken, project_taken, user_taken};
use crate::codec::{parse, quota_columns, quota_from};
use crate::{Accounts, KeyRecord, ProjectRecord, StoreError, UserRecord};
use postgres::types::ToSql;
use postgres::Row;
use tessera_types::{KeyId, Millis, ProjectId, Quota, Role, UserId};

const INSERT_USER: &str =
    "INSERT INTO users (name, admin, created_at) VALUES ($1, $2, $3) RETURNING id";
const USER: &str = "SELECT id, name, admin, created_at FROM users WHERE id = $1";
const USER_BY_NAME: &str = "SELECT id, name, admin, created_at FROM users WHERE name = $1";
const USERS: &str = "SELECT id, name, admin, created_at FROM users ORDER BY id";

const INSERT_PROJECT: &str = "INSERT INTO projects (name, created_at) VALUES ($1, $2) RETURNING id";
const PROJECT: &str = "SELECT id, name, created_at FROM projects WHERE id = $1";
const PROJECT_BY_NAME: &str = "SELECT id, name, created_at FROM projects WHERE name = $1";
const PROJECTS: &str = "SELECT id, name, created_at FROM projects ORDER BY id";
const PROJECTS_OF: &str = "SELECT p.id, p.name, p.created_at, m.role FROM members m \
    JOIN projects p ON p.id = m.project_id WHERE m.user_id = $1 ORDER BY p.id";
/// Locks the project's row, so a concurrent delete (none today) cannot
/// slip between the check and the write.
const PROJECT_EXISTS: &str = "SELECT 1 FROM projects WHERE id = $1 FOR KEY SHARE";

const UPSERT_MEMBER: &str = "INSERT INTO members (project_id, user_id, role, created_at) \
    VALUES ($1, $2, $3, $4) \
    ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role";
const DELETE_MEMBER: &str = "DELETE FROM members WHERE project_id = $1 AND user_id = $2";
const MEMBERS: &str = "SELECT u.id, u.name, u.admin, u.created_at, m.role FROM members m \
    JOIN users u ON u.id = m.user_id WHERE m.project_id = $1 ORDER BY u.id";
const SET_QUOTA: &str = "UPDATE projects SET max_cpu = $2, max_memory_mb = $3, \
    cpu_ms_per_window = $4 WHERE id = $1";
const QUOTA: &str = "SELECT max_cpu, max_memory_mb, cpu_ms_per_window FROM projects WHERE id = $1";
const ROLE: &str = "SELECT role FROM members WHERE project_id = $1 AND user_id = $2";

const INSERT_KEY: &str = "INSERT INTO api_keys (user_id, name, prefix, hash, created_at) \
    VALUES ($1, $2, $3, $4, $5) RETURNING id";
const KEY_BY_PREFIX: &str = "SELECT id, user_id, name, prefix, hash, created_at, last_used_at, \
    revoked_at FROM api_keys WHERE prefix = $1";
const KEYS_OF: &str = "SELECT id, user_id, name, prefix, hash, created_at, last_used_at, \
    revoked_at FROM api_keys WHERE user_id = $1 ORDER BY id";
const REVOKE_KEY: &str = "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const TOUCH_KEY: &str = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1";

fn user_row(r: &Row) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: UserId(get(r, 0)?),
        name: get(r, 1)?,
        admin: get(r, 2)?,
        created_at: unsigned(r, 3)?,
    })
}

fn project_row(r: &Row) -> Result<ProjectRecord, StoreError> {
    Ok(ProjectRecord {
        id: ProjectId(get(r, 0)?),
        name: get(r, 1)?,
        created_at: unsigned(r, 2)?,
    })
}

fn key_row(r: &Row) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        id: KeyId(get(r, 0)?),
        user: UserId(get(r, 1)?),
        name: get(r, 2)?,
        prefix: get(r, 3)?,
        hash: get(r, 4)?,
        created_at: unsigned(r, 5)?,
        last_used_at: unsigned_opt(r, 6)?,
        revoked_at: unsigned_opt(r, 7)?,
    })
}

fn role_at(r: &Row, i: usize, what: impl FnOnce() -> String) -> Result<Role, StoreError> {
    parse(&what(), get::<&str>(r, i)?)
}

impl PostgresStore {
    fn rows<T>(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        map: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        query(&mut self.conn.borrow_mut(), sql, params, map)
    }

    /// Runs a cached statement that returns one id, mapping its error.
    fn insert_returning_id(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        on_err: impl FnOnce(postgres::Error) -> StoreError,
    ) -> Result<i64, StoreError> {
        let conn = self.conn.get_mut();
        let stmt = prepared(&mut conn.statements, &mut conn.client, sql)?;
        conn.client
            .query_one(&stmt, params)
            .and_then(|r| r.try_get(0))
            .map_err(on_err)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let conn = self.conn.get_mut();
        let stmt = prepared(&mut conn.statements, &mut conn.client, sql)?;
        conn.client.execute(&stmt, params).map_err(backend)
    }
}

impl Accounts for PostgresStore {
    fn create_user(
        &mut self,
        name: &str,
        admin: bool,
        now: Millis,
    ) -> Result<UserRecord, StoreError> {
        check_name("a user's name", name)?;
        let id = self.insert_returning_id(INSERT_USER, &[&name, &admin, &ms(now)], |e| {
            match unique_violation(&e) {
                Some(_) => user_taken(name),
                None => backend(e),
            }
        })?;
        Ok(UserRecord {
            id: UserId(id),
            name: name.to_string(),
            admin,
            created_at: now,
        })
    }

    fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.rows(USER, &[&id.0], user_row)?.pop())
    }

    fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.rows(USER_BY_NAME, &[&name], user_row)?.pop())
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.rows(USERS, &[], user_row)
    }

    fn create_project(
        &mut self,
        name: &str,
        owner: UserId,
        now: Millis,
    ) -> Result<ProjectRecord, StoreError> {
        check_name("a project's name", name)?;
        let conn = self.conn.get_mut();
        let mut tx = conn.client.transaction().map_err(backend)?;
        let insert = prepared(&mut conn.statements, &mut tx, INSERT_PROJECT)?;
        let id: i64 = tx
            .query_one(&insert, &[&name, &ms(now)])
            .and_then(|r| r.try_get(0))
            .map_err(|e| match unique_violation(&e) {
                Some(_) => project_taken(name),
                None => backend(e),
            })?;
        let member = prepared(&mut conn.statements, &mut tx, UPSERT_MEMBER)?;
        tx.execute(&member, &[&id, &owner.0, &Role::Owner.as_str(), &ms(now)])
            .map_err(|e| match foreign_key_violation(&e) {
                Some(_) => StoreError::UnknownUser(owner),
                None => backend(e),
            })?;
        tx.commit().map_err(backend)?;
        Ok(ProjectRecord {
            id: ProjectId(id),
            name: name.to_string(),
            created_at: now,
        })
    }

    fn project(&self, id: ProjectId) -> Result<Option<ProjectRecord>, StoreError> {
        Ok(self.rows(PROJECT, &[&id.0], project_row)?.pop())
    }

    fn project_by_name(&self, name: &str) -> Result<Option<ProjectRecord>, StoreError> {
        Ok(self.rows(PROJECT_BY_NAME, &[&name], project_row)?.pop())
    }

    fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        self.rows(PROJECTS, &[], project_row)
    }

    fn projects_of(&self, user: UserId) -> Result<Vec<(ProjectRecord, Role)>, StoreError> {
        self.rows(PROJECTS_OF, &[&user.0], |r| {
            let project = project_row(r)?;
            let role = role_at(r, 3, || {
                format!("role of user {user} in project {}", project.id)
            })?;
            Ok((project, role))
        })
    }

    fn set_member(
        &mut self,
        project: ProjectId,
        user: UserId,
        role: Option<Role>,
        now: Millis,
    ) -> Result<(), StoreError> {
        let conn = self.conn.get_mut();
        let mut tx = conn.client.transaction().map_err(backend)?;
        let exists = prepared(&mut conn.statements, &mut tx, PROJECT_EXISTS)?;
        if tx
            .query_opt(&exists, &[&project.0])
            .map_err(backend)?
            .is_none()
        {
            return Err(StoreError::UnknownProject(project));
        }
        match role {
            Some(role) => {
                let upsert = prepared(&mut conn.statements, &mut tx, UPSERT_MEMBER)?;
                tx.execute(&upsert, &[&project.0, &user.0, &role.as_str(), &ms(now)])
                    .map_err(|e| match foreign_key_violation(&e) {
                        Some(_) => StoreError::UnknownUser(user),
                        None => backend(e),
                    })?
            }
            None => {
                let delete = prepared(&mut conn.statements, &mut tx, DELETE_MEMBER)?;
                tx.execute(&delete, &[&project.0, &user.0])
                    .map_err(backend)?
            }
        };
        tx.commit().map_err(backend)
    }

    fn members(&self, project: ProjectId) -> Result<Vec<(UserRecord, Role)>, StoreError> {
        self.rows(MEMBERS, &[&project.0], |r| {
            let user = user_row(r)?;
            let role = role_at(r, 4, || {
                format!("role of user {} in project {project}", user.id)
            })?;
            Ok((user, role))
        })
    }

    fn role(&self, project: ProjectId, user: UserId) -> Result<Option<Role>, StoreError> {
        let what = || format!("role of user {user} in project {project}");
        Ok(self
            .rows(ROLE, &[&project.0, &user.0], |r| role_at(r, 0, what))?
            .pop())
    }

    fn set_quota(&mut self, project: ProjectId, quota: Quota) -> Result<(), StoreError> {
        let [cpu, memory, cpu_ms] = quota_columns(&quota)?;
        if self.execute(SET_QUOTA, &[&project.0, &cpu, &memory, &cpu_ms])? == 0 {
            return Err(StoreError::UnknownProject(project));
        }
        Ok(())
    }

    fn quota(&self, project: ProjectId) -> Result<Quota, StoreError> {
        let what = format!("quota of project {project}");
        self.rows(QUOTA, &[&project.0], |r| {
            quota_from(&what, [get(r, 0)?, get(r, 1)?, get(r, 2)?])
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
        let params: [&(dyn ToSql + Sync); 5] = [&user.0, &name, &prefix, &hash, &ms(now)];
        let id = self.insert_returning_id(INSERT_KEY, &params, |e| {
            if unique_violation(&e).is_some() {
                prefix_taken(prefix)
            } else if foreign_key_violation(&e).is_some() {
                StoreError::UnknownUser(user)
            } else {
                backend(e)
            }
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
        Ok(self.rows(KEY_BY_PREFIX, &[&prefix], key_row)?.pop())
    }

    fn keys_of(&self, user: UserId) -> Result<Vec<KeyRecord>, StoreError> {
        self.rows(KEYS_OF, &[&user.0], key_row)
    }

    fn revoke_key(&mut self, id: KeyId, now: Millis) -> Result<bool, StoreError> {
        Ok(self.execute(REVOKE_KEY, &[&id.0, &ms(now)])? > 0)
    }

    fn touch_key(&mut self, id: KeyId, now: Millis) -> Result<(), StoreError> {
        self.execute(TOUCH_KEY, &[&id.0, &ms(now)])?;
        Ok(())
    }
}
