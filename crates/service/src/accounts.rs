//! Accounts: users, projects, members and keys. Each call takes the proof
//! of what the caller may do (see [`crate::access`]).

use crate::access::{parse_id, Admin, AsOwner, Caller, Need, ProjectAccess};
use crate::auth::new_key_parts;
use crate::{now_ms, Service, ServiceError, ServiceStore};
use std::collections::HashMap;
use tessera_store::{KeyRecord, ProjectRecord, UserRecord};
use tessera_types::{KeyId, Role, UserId};

/// The caller and its projects with its role in each.
#[derive(Clone, Debug)]
pub struct Me {
    pub user: UserRecord,
    pub projects: Vec<(ProjectRecord, Role)>,
}

/// A key just made: the only time `secret` (the whole key) is known.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub key: KeyRecord,
    pub secret: String,
}

/// A user just made, with its first key.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub user: UserRecord,
    pub key: NewKey,
}

impl Service {
    pub async fn me(&self, caller: &Caller) -> Result<Me, ServiceError> {
        let user = caller.user().clone();
        let id = user.id;
        let projects = self.db(move |db| Ok(db.projects_of(id)?)).await?;
        Ok(Me { user, projects })
    }

    pub async fn users(&self, _: &Admin) -> Result<Vec<UserRecord>, ServiceError> {
        self.db(|db| Ok(db.users()?)).await
    }

    /// Creates a user and its first key (shown once).
    pub async fn create_user(
        &self,
        _: &Admin,
        name: String,
        admin: bool,
    ) -> Result<NewUser, ServiceError> {
        check_name("user", &name).map_err(ServiceError::Invalid)?;
        let (secret, prefix) = new_key_parts();
        let hash = self.verifier.hash(secret.clone()).await?;
        self.db(move |db| {
            if db.user_by_name(&name)?.is_some() {
                return Err(ServiceError::Conflict(format!(
                    "a user named {name:?} already exists; choose another name"
                )));
            }
            let user = db.create_user(&name, admin, now_ms())?;
            let key = db.create_key(user.id, "first key", &prefix, &hash, now_ms())?;
            Ok(NewUser {
                user,
                key: NewKey { key, secret },
            })
        })
        .await
    }

    /// The caller's projects with its role in each; every project for an
    /// admin (the role `None` where it is not a member).
    pub async fn projects(
        &self,
        caller: &Caller,
    ) -> Result<Vec<(ProjectRecord, Option<Role>)>, ServiceError> {
        let user = caller.user().id;
        let admin = caller.is_admin();
        self.db(move |db| {
            let mine: Vec<(ProjectRecord, Role)> = db.projects_of(user)?;
            if !admin {
                return Ok(mine.into_iter().map(|(p, r)| (p, Some(r))).collect());
            }
            let roles: HashMap<_, _> = mine.iter().map(|(p, r)| (p.id, *r)).collect();
            let all = db.projects()?;
            Ok(all
                .into_iter()
                .map(|p| {
                    let role = roles.get(&p.id).copied();
                    (p, role)
                })
                .collect())
        })
        .await
    }

    /// Creates a project; the caller becomes its owner.
    pub async fn create_project(
        &self,
        caller: &Caller,
        name: String,
    ) -> Result<ProjectRecord, ServiceError> {
        check_name("project", &name).map_err(ServiceError::Invalid)?;
        let owner = caller.user().id;
        self.db(move |db| {
            if db.project_by_name(&name)?.is_some() {
                return Err(ServiceError::Conflict(format!(
                    "a project named {name:?} already exists; choose another name"
                )));
            }
            Ok(db.create_project(&name, owner, now_ms())?)
        })
        .await
    }

    pub async fn members<R: Need>(
        &self,
        project: &ProjectAccess<R>,
    ) -> Result<Vec<(UserRecord, Role)>, ServiceError> {
        let id = project.id();
        self.db(move |db| Ok(db.members(id)?)).await
    }

    /// Adds, changes (`Some(role)`) or removes (`None`) the member named
    /// `user` (id or name). A project always keeps at least one owner.
    pub async fn set_member(
        &self,
        project: &ProjectAccess<AsOwner>,
        user: String,
        role: Option<Role>,
    ) -> Result<Option<(UserRecord, Role)>, ServiceError> {
        let project = project.project().clone();
        self.db(move |db| {
            let user = find_user(db, &user)?;
            let members = db.members(project.id)?;
            let current = members.iter().find(|(u, _)| u.id == user.id).map(|m| m.1);
            if role.is_none() && current.is_none() {
                return Err(ServiceError::NotFound(format!(
                    "user {:?} is not a member of project {:?}",
                    user.name, project.name
                )));
            }
            let owners = members.iter().filter(|(_, r)| *r == Role::Owner).count();
            if current == Some(Role::Owner) && role != Some(Role::Owner) && owners == 1 {
                return Err(ServiceError::Conflict(format!(
                    "user {:?} is the last owner of project {:?}; make someone else owner first",
                    user.name, project.name
                )));
            }
            db.set_member(project.id, user.id, role, now_ms())?;
            Ok(role.map(|role| (user, role)))
        })
        .await
    }

    /// Closes a project (its owner or an admin): refused while any of its
    /// jobs has not ended; then every member is removed, so that nobody
    /// but an admin sees it or submits to it. Its jobs, their history and
    /// files stay (admins read them); its name stays taken. Answers how
    /// many members were removed.
    pub async fn close_project(
        &self,
        project: &ProjectAccess<AsOwner>,
    ) -> Result<usize, ServiceError> {
        let project = project.project().clone();
        self.db(move |db| {
            let active: u64 = db
                .count_jobs_by_project()?
                .into_iter()
                .filter(|(p, s, _)| *p == project.id && !s.is_terminal())
                .map(|(_, _, n)| n)
                .sum();
            if active > 0 {
                return Err(ServiceError::Conflict(format!(
                    "project {:?} still has {active} jobs that have not ended; kill them (or \
                     wait for their end) before closing it",
                    project.name
                )));
            }
            let members = db.members(project.id)?;
            for (user, _) in &members {
                db.set_member(project.id, user.id, None, now_ms())?;
            }
            Ok(members.len())
        })
        .await
    }

    /// Shuts a user out (admins): every key of theirs revoked (so no token
    /// or session of theirs works any more), and their memberships removed,
    /// except in projects where they are the last owner (those are named:
    /// give them another owner first). Their record and jobs stay. An admin
    /// may not shut themselves out.
    pub async fn shut_out_user(
        &self,
        caller: &Caller,
        name: String,
    ) -> Result<ShutOut, ServiceError> {
        caller.admin()?;
        let me = caller.user().id;
        let (revoked, out) = self
            .db(move |db| {
                let user = find_user(db, &name)?;
                if user.id == me {
                    return Err(ServiceError::Conflict(
                        "you may not remove yourself; another admin may".into(),
                    ));
                }
                let mut revoked = Vec::new();
                for key in db.keys_of(user.id)? {
                    if key.revoked_at.is_none() {
                        db.revoke_key(key.id, now_ms())?;
                        revoked.push(key.id);
                    }
                }
                let mut out = ShutOut {
                    keys: revoked.len(),
                    ..ShutOut::default()
                };
                for (project, role) in db.projects_of(user.id)? {
                    let owners = db
                        .members(project.id)?
                        .iter()
                        .filter(|(_, r)| *r == Role::Owner)
                        .count();
                    if role == Role::Owner && owners == 1 {
                        out.kept_as_last_owner.push(project.name);
                        continue;
                    }
                    db.set_member(project.id, user.id, None, now_ms())?;
                    out.projects_left += 1;
                }
                Ok((revoked, out))
            })
            .await?;
        for id in revoked {
            self.keys.forget(id);
        }
        Ok(out)
    }

    /// The caller's own keys (never their secrets: only hashes are kept).
    pub async fn keys(&self, caller: &Caller) -> Result<Vec<KeyRecord>, ServiceError> {
        let user = caller.user().id;
        self.db(move |db| Ok(db.keys_of(user)?)).await
    }

    pub async fn create_key(&self, caller: &Caller, name: String) -> Result<NewKey, ServiceError> {
        check_text("key", &name).map_err(ServiceError::Invalid)?;
        let (secret, prefix) = new_key_parts();
        let hash = self.verifier.hash(secret.clone()).await?;
        let user = caller.user().id;
        let key = self
            .db(move |db| Ok(db.create_key(user, &name, &prefix, &hash, now_ms())?))
            .await?;
        Ok(NewKey { key, secret })
    }

    /// Revokes one of the caller's keys (an admin: anyone's); another
    /// user's key is "not found" to anyone else. Revoking a revoked key
    /// again is fine.
    pub async fn revoke_key(&self, caller: &Caller, id: KeyId) -> Result<(), ServiceError> {
        let (user, admin) = (caller.user().id, caller.is_admin());
        self.db(move |db| {
            let owners: Vec<UserId> = if admin {
                db.users()?.iter().map(|u| u.id).collect()
            } else {
                vec![user]
            };
            let mut found = false;
            for owner in owners {
                if db.keys_of(owner)?.iter().any(|k| k.id == id) {
                    found = true;
                    break;
                }
            }
            if !found {
                return Err(ServiceError::NotFound(format!(
                    "key {} does not exist or is not yours; GET /api/v1/keys lists yours",
                    id.0
                )));
            }
            db.revoke_key(id, now_ms())?;
            Ok(())
        })
        .await?;
        self.keys.forget(id);
        Ok(())
    }
}

/// What [`Service::shut_out_user`] did.
#[derive(Clone, Debug, Default)]
pub struct ShutOut {
    /// Keys revoked.
    pub keys: usize,
    /// Projects the user was removed from.
    pub projects_left: usize,
    /// Projects where the user stays, as their last owner.
    pub kept_as_last_owner: Vec<String>,
}

fn find_user(db: &dyn ServiceStore, segment: &str) -> Result<UserRecord, ServiceError> {
    let found = match parse_id(segment) {
        Some(id) => db.user(UserId(id))?,
        None => db.user_by_name(segment)?,
    };
    found.ok_or_else(|| ServiceError::NotFound(format!("user {segment} does not exist")))
}

fn check_text(what: &str, name: &str) -> Result<(), String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed != name || name.len() > 100 || name.contains(['/', '\0']) {
        return Err(format!(
            "{what} name {name:?} is not allowed: use 1 to 100 characters, no '/', \
             no leading or trailing spaces"
        ));
    }
    Ok(())
}

/// Checks the name of a user or a project, which paths name by id or by
/// name: besides the rules of every name, one that reads as a number in
/// any way (`2`, `002`, `+2`, `-2`) is refused, so a path segment is never
/// both a name and an id. (`tessera admin` checks the same.)
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    check_text(what, name)?;
    let digits = name.strip_prefix(['+', '-']).unwrap_or(name);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{what} name {name:?} reads as a number, which paths take as a {what} id; add a letter"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_never_read_as_numbers() {
        for name in ["2", "+2", "-2", "002", "99999999999999999999"] {
            assert!(check_name("project", name).is_err(), "{name:?}");
        }
        for name in ["a2", "2a", "+", "1e3", "v1.2"] {
            assert_eq!(check_name("project", name), Ok(()), "{name:?}");
        }
        assert!(
            check_name("project", " 2").is_err(),
            "spaces are refused anyway"
        );
    }
}
