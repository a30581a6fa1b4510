//! Who may do what: users, projects, project members with roles, and API
//! keys. Kept beside the job store so one database (and one backend choice)
//! holds everything, and tested by the same [`conformance`](crate::conformance) suite.
//!
//! Keys are never stored in the clear: the API layer generates a key, stores
//! its public `prefix` (for lookup) and an argon2 `hash` of the whole key,
//! and shows the key once.

use crate::StoreError;
use tessera_types::{KeyId, Millis, ProjectId, Quota, Role, UserId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub name: String,
    pub admin: bool,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectRecord {
    pub id: ProjectId,
    pub name: String,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: KeyId,
    pub user: UserId,
    /// A label the user chose ("laptop", "ci").
    pub name: String,
    /// The public part of the key, unique, used to find the row.
    pub prefix: String,
    /// argon2 PHC string of the whole key.
    pub hash: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

/// Users, projects, members and keys. Names are unique (users among users,
/// projects among projects, key prefixes among keys); a duplicate is
/// [`StoreError::Conflict`], a blank name [`StoreError::Invalid`], a missing
/// user or project [`StoreError::UnknownUser`] /
/// [`StoreError::UnknownProject`]. Lists come in id order.
pub trait Accounts: Send {
    fn create_user(
        &mut self,
        name: &str,
        admin: bool,
        now: Millis,
    ) -> Result<UserRecord, StoreError>;
    fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError>;
    fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    fn users(&self) -> Result<Vec<UserRecord>, StoreError>;

    /// Creates a project with `owner` as its first member (role owner).
    fn create_project(
        &mut self,
        name: &str,
        owner: UserId,
        now: Millis,
    ) -> Result<ProjectRecord, StoreError>;
    fn project(&self, id: ProjectId) -> Result<Option<ProjectRecord>, StoreError>;
    fn project_by_name(&self, name: &str) -> Result<Option<ProjectRecord>, StoreError>;
    fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError>;
    /// The projects `user` belongs to, with their role in each.
    fn projects_of(&self, user: UserId) -> Result<Vec<(ProjectRecord, Role)>, StoreError>;

    /// Adds or changes a member (`Some(role)`) or removes one (`None`;
    /// removing a non-member does nothing). An unknown project is an error
    /// either way.
    fn set_member(
        &mut self,
        project: ProjectId,
        user: UserId,
        role: Option<Role>,
        now: Millis,
    ) -> Result<(), StoreError>;
    fn members(&self, project: ProjectId) -> Result<Vec<(UserRecord, Role)>, StoreError>;
    fn role(&self, project: ProjectId, user: UserId) -> Result<Option<Role>, StoreError>;

    /// Replaces a project's quota (every limit at once; `None` is
    /// unlimited). The store only keeps it: the scheduler enforces it.
    fn set_quota(&mut self, project: ProjectId, quota: Quota) -> Result<(), StoreError>;
    /// A project's quota (unlimited until set).
    fn quota(&self, project: ProjectId) -> Result<Quota, StoreError>;

    fn create_key(
        &mut self,
        user: UserId,
        name: &str,
        prefix: &str,
        hash: &str,
        now: Millis,
    ) -> Result<KeyRecord, StoreError>;
    fn key_by_prefix(&self, prefix: &str) -> Result<Option<KeyRecord>, StoreError>;
    fn keys_of(&self, user: UserId) -> Result<Vec<KeyRecord>, StoreError>;
    /// Returns false if the key did not exist or was already revoked.
    fn revoke_key(&mut self, id: KeyId, now: Millis) -> Result<bool, StoreError>;
    /// Records a successful use (at most as precise as the caller cares).
    /// Touching an unknown key does nothing.
    fn touch_key(&mut self, id: KeyId, now: Millis) -> Result<(), StoreError>;
}

/// Refuses a blank name before it reaches the database. `what` reads like
/// "a user's name".
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() {
        return Err(StoreError::Invalid(format!("{what} must not be empty")));
    }
    Ok(())
}

pub(crate) fn user_taken(name: &str) -> StoreError {
    StoreError::Conflict {
        what: format!("a user named {name:?} already exists"),
    }
}

pub(crate) fn project_taken(name: &str) -> StoreError {
    StoreError::Conflict {
        what: format!("a project named {name:?} already exists"),
    }
}

pub(crate) fn prefix_taken(prefix: &str) -> StoreError {
    StoreError::Conflict {
        what: format!("an API key with prefix {prefix:?} already exists"),
    }
}

/// The checks `create_key` makes on its arguments, shared by the backends.
pub(crate) fn check_key(name: &str, prefix: &str, hash: &str) -> Result<(), StoreError> {
    check_name("an API key's name", name)?;
    check_name("an API key's prefix", prefix)?;
    check_name("an API key's hash", hash)
}
