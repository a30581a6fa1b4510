//! Authorization, decided here and nowhere else. A [`Caller`] is a user
//! whose credential was checked ([`Service::authenticate`]); from it an API
//! asks for the proof an operation takes:
//!
//! - [`Admin`]: the caller is an admin (`Caller::admin`);
//! - [`ProjectAccess<R>`]: the project exists and the caller holds at least
//!   role `R` in it (`Service::project`);
//! - [`JobAccess<R>`]: the job exists and the caller holds at least `R` in
//!   its project (`Service::job`); a job of no project is an admin's.
//!
//! Admins may do everything. Each operation names the proof it needs in its
//! signature (reads any role, [`MayAct`] a member or an owner, member
//! changes [`AsOwner`]), and the proofs can only be made here, so no API
//! can skip a check or weaken one. An API asks for the proof before it
//! reads a request's body, so the order is fixed for every API: the
//! credential (401), then the thing (404), then the role (403), then the
//! request itself.

use crate::{Service, ServiceError};
use std::marker::PhantomData;
use tessera_store::{JobRecord, ProjectRecord, UserRecord};
use tessera_types::{JobId, ProjectId, Role};

/// The authenticated user behind a request. Only the service makes one
/// (see [`Service::authenticate`], [`Service::session_caller`]).
#[derive(Clone, Debug)]
pub struct Caller {
    user: UserRecord,
}

impl Caller {
    pub(crate) fn new(user: UserRecord) -> Self {
        Self { user }
    }

    pub fn user(&self) -> &UserRecord {
        &self.user
    }

    pub fn is_admin(&self) -> bool {
        self.user.admin
    }

    /// The proof that the caller is an admin, or a 403-kind refusal.
    pub fn admin(&self) -> Result<Admin, ServiceError> {
        if !self.is_admin() {
            return Err(ServiceError::Forbidden(format!(
                "user {:?} is not an admin; ask an admin to do this",
                self.user.name
            )));
        }
        Ok(Admin { _made_here: () })
    }
}

/// Proof that the caller is an admin.
#[derive(Debug)]
pub struct Admin {
    _made_here: (),
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::AsViewer {}
    impl Sealed for super::AsMember {}
    impl Sealed for super::AsOwner {}
}

/// The least role an operation needs.
pub trait Need: sealed::Sealed + Send + Sync + 'static {
    const ROLE: Role;
}

/// Roles that may change a project's jobs and files: member and owner.
pub trait MayAct: Need {}

#[derive(Debug)]
pub struct AsViewer;
#[derive(Debug)]
pub struct AsMember;
#[derive(Debug)]
pub struct AsOwner;
impl Need for AsViewer {
    const ROLE: Role = Role::Viewer;
}
impl Need for AsMember {
    const ROLE: Role = Role::Member;
}
impl Need for AsOwner {
    const ROLE: Role = Role::Owner;
}
impl MayAct for AsMember {}
impl MayAct for AsOwner {}

/// A project the caller may act on with at least role `R`.
#[derive(Debug)]
pub struct ProjectAccess<R> {
    caller: Caller,
    project: ProjectRecord,
    /// The caller's own role (`None`: an admin who is not a member).
    role: Option<Role>,
    _need: PhantomData<R>,
}

impl<R> ProjectAccess<R> {
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn project(&self) -> &ProjectRecord {
        &self.project
    }

    pub fn id(&self) -> ProjectId {
        self.project.id
    }

    pub fn role(&self) -> Option<Role> {
        self.role
    }
}

/// A job whose project the caller may act on with at least role `R`.
#[derive(Debug)]
pub struct JobAccess<R> {
    caller: Caller,
    job: JobRecord,
    _need: PhantomData<R>,
}

impl<R> JobAccess<R> {
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn job(&self) -> &JobRecord {
        &self.job
    }

    pub fn id(&self) -> JobId {
        self.job.id
    }
}

/// Whether `caller` may act with role `need` in `project`, where it holds
/// `role`: `Ok`, or the 403-kind refusal that says why.
pub(crate) fn check_role(
    caller: &Caller,
    project: &ProjectRecord,
    role: Option<Role>,
    need: Role,
) -> Result<(), ServiceError> {
    if caller.is_admin() || role.is_some_and(|r| r.allows(need)) {
        return Ok(());
    }
    Err(ServiceError::Forbidden(match role {
        None => format!(
            "you are not a member of project {:?}; ask one of its owners to add you",
            project.name
        ),
        Some(r) => format!(
            "you are a {r} of project {:?}; this needs {need} or higher",
            project.name
        ),
    }))
}

/// Finds a project by id (canonical decimal) or by name.
pub(crate) fn find_project(
    db: &dyn crate::ServiceStore,
    segment: &str,
) -> Result<ProjectRecord, ServiceError> {
    let found = match parse_id(segment) {
        Some(id) => db.project(ProjectId(id))?,
        None => db.project_by_name(segment)?,
    };
    found.ok_or_else(|| ServiceError::NotFound(format!("project {segment} does not exist")))
}

/// The id a path segment names: canonical decimal only (no sign, no
/// leading zero, no spaces), so `+2` or `02` is a name, never id 2.
pub fn parse_id(segment: &str) -> Option<i64> {
    let canonical = !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'));
    canonical.then(|| segment.parse().ok()).flatten()
}

impl Service {
    /// The project named `segment` (id or name), if `caller` holds at
    /// least `R` in it: 404 if there is no such project, then 403.
    pub async fn project<R: Need>(
        &self,
        caller: &Caller,
        segment: &str,
    ) -> Result<ProjectAccess<R>, ServiceError> {
        let user = caller.user.id;
        let segment = segment.to_string();
        let (project, role) = self
            .db(move |db| {
                let project = find_project(db, &segment)?;
                let role = db.role(project.id, user)?;
                Ok((project, role))
            })
            .await?;
        check_role(caller, &project, role, R::ROLE)?;
        Ok(ProjectAccess {
            caller: caller.clone(),
            project,
            role,
            _need: PhantomData,
        })
    }

    /// The job named `segment` (a canonical decimal id), if `caller` holds
    /// at least `R` in its project: 404 if there is no such job, then 403.
    pub async fn job<R: Need>(
        &self,
        caller: &Caller,
        segment: &str,
    ) -> Result<JobAccess<R>, ServiceError> {
        let id = parse_id(segment)
            .map(JobId)
            .ok_or_else(|| ServiceError::NotFound(format!("job {segment} does not exist")))?;
        self.job_by_id(caller, id).await
    }

    /// [`Service::job`] by id.
    pub async fn job_by_id<R: Need>(
        &self,
        caller: &Caller,
        id: JobId,
    ) -> Result<JobAccess<R>, ServiceError> {
        let user = caller.user.id;
        let (job, access) = self
            .db(move |db| {
                let job = db
                    .job(id)?
                    .ok_or_else(|| ServiceError::NotFound(format!("job {id} does not exist")))?;
                let access = match job.project {
                    Some(p) => {
                        let project = db.project(p)?.ok_or_else(|| {
                            ServiceError::internal(format!("job {id} names missing project {p}"))
                        })?;
                        let role = db.role(p, user)?;
                        Some((project, role))
                    }
                    None => None,
                };
                Ok((job, access))
            })
            .await?;
        match &access {
            Some((project, role)) => check_role(caller, project, *role, R::ROLE)?,
            None if caller.is_admin() => {}
            None => {
                return Err(ServiceError::Forbidden(format!(
                    "job {id} was run outside any project; only admins can see it"
                )))
            }
        }
        Ok(JobAccess {
            caller: caller.clone(),
            job,
            _need: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_types::UserId;

    fn user(admin: bool) -> Caller {
        Caller::new(UserRecord {
            id: UserId(3),
            name: "ann".into(),
            admin,
            created_at: 0,
        })
    }

    fn project() -> ProjectRecord {
        ProjectRecord {
            id: ProjectId(1),
            name: "video".into(),
            created_at: 0,
        }
    }

    #[test]
    fn roles_allow_what_they_reach_and_admins_everything() {
        let (ann, p) = (user(false), project());
        let table = [
            (None, Role::Viewer, false),
            (Some(Role::Viewer), Role::Viewer, true),
            (Some(Role::Viewer), Role::Member, false),
            (Some(Role::Member), Role::Member, true),
            (Some(Role::Member), Role::Owner, false),
            (Some(Role::Owner), Role::Owner, true),
            (Some(Role::Owner), Role::Viewer, true),
        ];
        for (role, need, allowed) in table {
            let got = check_role(&ann, &p, role, need);
            assert_eq!(got.is_ok(), allowed, "{role:?} for {need:?}");
            if let Err(e) = got {
                assert_eq!(e.code(), "forbidden");
            }
        }
        for need in [Role::Viewer, Role::Member, Role::Owner] {
            assert!(check_role(&user(true), &p, None, need).is_ok());
        }
        let e = check_role(&ann, &p, None, Role::Viewer).unwrap_err();
        assert_eq!(
            e.to_string(),
            "you are not a member of project \"video\"; ask one of its owners to add you"
        );
        let e = check_role(&ann, &p, Some(Role::Viewer), Role::Member).unwrap_err();
        assert_eq!(
            e.to_string(),
            "you are a viewer of project \"video\"; this needs member or higher"
        );
    }

    #[test]
    fn only_admins_get_the_admin_proof() {
        assert!(user(true).admin().is_ok());
        let e = user(false).admin().unwrap_err();
        assert_eq!(e.code(), "forbidden");
        assert!(e.to_string().contains("\"ann\" is not an admin"), "{e}");
    }

    #[test]
    fn ids_are_canonical_decimals() {
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
    }
}
