//! The accounts service: users, projects, members and keys. Handlers call
//! these after their extractor has authorized the caller.

use crate::auth::Caller;
use crate::state::now_ms;
use crate::views::{KeyView, MeView, MemberView, NewKeyView, NewUserView, ProjectView, UserView};
use crate::{ApiError, ApiStore, AppState};
use std::collections::HashMap;
use tessera_store::{ProjectRecord, UserRecord};
use tessera_types::{KeyId, Role, UserId};

pub(crate) async fn me(state: &AppState, caller: Caller) -> Result<MeView, ApiError> {
    let user = caller.user.id;
    let projects = state.db(move |db| Ok(db.projects_of(user)?)).await?;
    Ok(MeView {
        admin: caller.user.admin,
        user: UserView::from(&caller.user),
        projects: projects
            .iter()
            .map(|(p, r)| ProjectView::new(p, Some(*r)))
            .collect(),
    })
}

pub(crate) async fn users(state: &AppState) -> Result<Vec<UserView>, ApiError> {
    let users = state.db(|db| Ok(db.users()?)).await?;
    Ok(users.iter().map(UserView::from).collect())
}

/// Creates a user and its first key (shown once).
pub(crate) async fn create_user(
    state: &AppState,
    name: String,
    admin: bool,
) -> Result<NewUserView, ApiError> {
    check_name("user", &name).map_err(ApiError::Invalid)?;
    let (secret, prefix) = crate::keys::new_key_parts();
    let hash = state.verifier.hash(secret.clone()).await?;
    state
        .db(move |db| {
            if db.user_by_name(&name)?.is_some() {
                return Err(ApiError::Conflict(format!(
                    "a user named {name:?} already exists; choose another name"
                )));
            }
            let user = db.create_user(&name, admin, now_ms())?;
            let key = db.create_key(user.id, "first key", &prefix, &hash, now_ms())?;
            Ok(NewUserView {
                user: UserView::from(&user),
                key: NewKeyView {
                    key: KeyView::from(&key),
                    secret,
                },
            })
        })
        .await
}

/// The caller's projects; every project for an admin.
pub(crate) async fn projects(
    state: &AppState,
    caller: Caller,
) -> Result<Vec<ProjectView>, ApiError> {
    let user = caller.user.id;
    let admin = caller.is_admin();
    state
        .db(move |db| {
            let mine: Vec<(ProjectRecord, Role)> = db.projects_of(user)?;
            if !admin {
                return Ok(mine
                    .iter()
                    .map(|(p, r)| ProjectView::new(p, Some(*r)))
                    .collect());
            }
            let roles: HashMap<_, _> = mine.iter().map(|(p, r)| (p.id, *r)).collect();
            let all = db.projects()?;
            Ok(all
                .iter()
                .map(|p| ProjectView::new(p, roles.get(&p.id).copied()))
                .collect())
        })
        .await
}

pub(crate) async fn create_project(
    state: &AppState,
    caller: Caller,
    name: String,
) -> Result<ProjectView, ApiError> {
    check_name("project", &name).map_err(ApiError::Invalid)?;
    let owner = caller.user.id;
    state
        .db(move |db| {
            if db.project_by_name(&name)?.is_some() {
                return Err(ApiError::Conflict(format!(
                    "a project named {name:?} already exists; choose another name"
                )));
            }
            let project = db.create_project(&name, owner, now_ms())?;
            Ok(ProjectView::new(&project, Some(Role::Owner)))
        })
        .await
}

pub(crate) async fn project_view(
    state: &AppState,
    caller: Caller,
    project: ProjectRecord,
) -> Result<ProjectView, ApiError> {
    let (pid, user) = (project.id, caller.user.id);
    let role = state.db(move |db| Ok(db.role(pid, user)?)).await?;
    Ok(ProjectView::new(&project, role))
}

pub(crate) async fn members(
    state: &AppState,
    project: ProjectRecord,
) -> Result<Vec<MemberView>, ApiError> {
    let members = state.db(move |db| Ok(db.members(project.id)?)).await?;
    Ok(members
        .iter()
        .map(|(u, r)| MemberView {
            user: UserView::from(u),
            role: *r,
        })
        .collect())
}

/// Adds, changes (`Some(role)`) or removes (`None`) a member. A project
/// always keeps at least one owner.
pub(crate) async fn set_member(
    state: &AppState,
    project: ProjectRecord,
    user: String,
    role: Option<Role>,
) -> Result<Option<MemberView>, ApiError> {
    state
        .db(move |db| {
            let user = find_user(db, &user)?;
            let members = db.members(project.id)?;
            let current = members.iter().find(|(u, _)| u.id == user.id).map(|m| m.1);
            if role.is_none() && current.is_none() {
                return Err(ApiError::NotFound(format!(
                    "user {:?} is not a member of project {:?}",
                    user.name, project.name
                )));
            }
            let owners = members.iter().filter(|(_, r)| *r == Role::Owner).count();
            if current == Some(Role::Owner) && role != Some(Role::Owner) && owners == 1 {
                return Err(ApiError::Conflict(format!(
                    "user {:?} is the last owner of project {:?}; make someone else owner first",
                    user.name, project.name
                )));
            }
            db.set_member(project.id, user.id, role, now_ms())?;
            Ok(role.map(|role| MemberView {
                user: UserView::from(&user),
                role,
            }))
        })
        .await
}

fn find_user(db: &dyn ApiStore, segment: &str) -> Result<UserRecord, ApiError> {
    let found = match parse_id(segment) {
        Some(id) => db.user(UserId(id))?,
        None => db.user_by_name(segment)?,
    };
    found.ok_or_else(|| ApiError::NotFound(format!("user {segment} does not exist")))
}

pub(crate) async fn keys(state: &AppState, caller: Caller) -> Result<Vec<KeyView>, ApiError> {
    let user = caller.user.id;
    let keys = state.db(move |db| Ok(db.keys_of(user)?)).await?;
    Ok(keys.iter().map(KeyView::from).collect())
}

pub(crate) async fn create_key(
    state: &AppState,
    caller: Caller,
    name: String,
) -> Result<NewKeyView, ApiError> {
    check_text("key", &name).map_err(ApiError::Invalid)?;
    let (secret, prefix) = crate::keys::new_key_parts();
    let hash = state.verifier.hash(secret.clone()).await?;
    let user = caller.user.id;
    let key = state
        .db(move |db| Ok(db.create_key(user, &name, &prefix, &hash, now_ms())?))
        .await?;
    Ok(NewKeyView {
        key: KeyView::from(&key),
        secret,
    })
}

/// Revokes one of the caller's keys (an admin: anyone's). Revoking a
/// revoked key again is fine.
pub(crate) async fn revoke_key(state: &AppState, caller: Caller, id: i64) -> Result<(), ApiError> {
    let id = KeyId(id);
    let (user, admin) = (caller.user.id, caller.is_admin());
    state
        .db(move |db| {
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
                return Err(ApiError::NotFound(format!(
                    "key {} does not exist or is not yours; GET /api/v1/keys lists yours",
                    id.0
                )));
            }
            db.revoke_key(id, now_ms())?;
            Ok(())
        })
        .await?;
    state.keys.forget(id);
    Ok(())
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

/// The id a path segment names: canonical decimal only (no sign, no
/// leading zero, no spaces), so `+2` or `02` is a name, never id 2.
pub(crate) fn parse_id(segment: &str) -> Option<i64> {
    let canonical = !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'));
    canonical.then(|| segment.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::{check_name, parse_id};

    #[test]
    fn ids_are_canonical_decimals_and_names_never_read_as_numbers() {
        for (segment, id) in [("2", Some(2)), ("0", Some(0)), ("123", Some(123))] {
            assert_eq!(parse_id(segment), id, "{segment}");
        }
        for segment in [
            "+2",
            "02",
            "-2",
            " 2",
            "2 ",
            "",
            "1e3",
            "99999999999999999999",
        ] {
            assert_eq!(parse_id(segment), None, "{segment:?}");
        }
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
