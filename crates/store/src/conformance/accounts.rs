//! Accounts: users, projects, members, API keys; and jobs in projects.

use super::{sample_spec, Backend};
use crate::StoreError;
use tessera_types::{KeyId, ProjectId, Role, UserId};

fn assert_conflict(result: Result<impl std::fmt::Debug, StoreError>, want: &str) {
    match result {
        Err(StoreError::Conflict { what }) => assert_eq!(what, want),
        other => panic!("expected a conflict ({want}), got {other:?}"),
    }
}

fn assert_invalid(result: Result<impl std::fmt::Debug, StoreError>, want: &str) {
    match result {
        Err(e @ StoreError::Invalid(_)) => assert_eq!(e.to_string(), want),
        other => panic!("expected {want:?}, got {other:?}"),
    }
}

pub fn names_are_unique_and_not_blank(b: &mut dyn Backend) {
    let mut s = b.create();
    let ana = s.create_user("ana", true, 10).expect("create ana");
    assert_eq!(
        (ana.name.as_str(), ana.admin, ana.created_at),
        ("ana", true, 10)
    );
    assert_conflict(
        s.create_user("ana", false, 11),
        "a user named \"ana\" already exists",
    );
    assert_invalid(
        s.create_user("", false, 11),
        "a user's name must not be empty",
    );
    assert_invalid(
        s.create_user("  ", false, 11),
        "a user's name must not be empty",
    );
    let bob = s.create_user("bob", false, 12).expect("create bob");
    assert!(bob.id != ana.id);
    assert_eq!(s.users().expect("users"), [ana.clone(), bob.clone()]);
    assert_eq!(s.user(bob.id).expect("user"), Some(bob.clone()));
    assert_eq!(s.user_by_name("ana").expect("by name"), Some(ana.clone()));
    assert_eq!(s.user_by_name("Ana").expect("by name"), None);
    assert_eq!(s.user(UserId(bob.id.0 + 100)).expect("user"), None);

    let film = s.create_project("film", ana.id, 20).expect("project");
    assert_conflict(
        s.create_project("film", bob.id, 21),
        "a project named \"film\" already exists",
    );
    assert_invalid(
        s.create_project("", ana.id, 21),
        "a project's name must not be empty",
    );
    // A project may share a user's name: they are different namespaces.
    let named_ana = s.create_project("ana", ana.id, 22).expect("project ana");
    let stranger = UserId(bob.id.0 + 100);
    let err = s
        .create_project("orphan", stranger, 23)
        .expect_err("unknown owner");
    assert!(
        matches!(err, StoreError::UnknownUser(u) if u == stranger),
        "{err}"
    );
    assert_eq!(
        s.project_by_name("orphan").expect("by name"),
        None,
        "a refused project leaves nothing behind"
    );
    assert_eq!(s.projects().expect("projects"), [film.clone(), named_ana]);
    assert_eq!(s.project(film.id).expect("project"), Some(film.clone()));
    assert_eq!(s.project_by_name("film").expect("by name"), Some(film));
    assert_eq!(s.project(ProjectId(-1)).expect("project"), None);
}

pub fn projects_start_with_their_owner(b: &mut dyn Backend) {
    let mut s = b.create();
    let ana = s.create_user("ana", false, 1).expect("ana");
    let bob = s.create_user("bob", false, 2).expect("bob");
    let p1 = s.create_project("p1", ana.id, 3).expect("p1");
    let p2 = s.create_project("p2", bob.id, 4).expect("p2");
    assert_eq!(s.role(p1.id, ana.id).expect("role"), Some(Role::Owner));
    assert_eq!(s.role(p1.id, bob.id).expect("role"), None);
    assert_eq!(s.role(p2.id, bob.id).expect("role"), Some(Role::Owner));
    assert_eq!(
        s.members(p1.id).expect("members"),
        [(ana.clone(), Role::Owner)]
    );
    assert_eq!(
        s.projects_of(ana.id).expect("projects_of"),
        [(p1.clone(), Role::Owner)]
    );
    assert_eq!(
        s.projects_of(bob.id).expect("projects_of"),
        [(p2, Role::Owner)]
    );
    assert!(s
        .projects_of(UserId(bob.id.0 + 50))
        .expect("projects_of")
        .is_empty());
}

pub fn members_are_added_changed_and_removed(b: &mut dyn Backend) {
    let mut s = b.create();
    let ana = s.create_user("ana", false, 1).expect("ana");
    let bob = s.create_user("bob", false, 2).expect("bob");
    let p = s.create_project("p", ana.id, 3).expect("p");
    let q = s.create_project("q", ana.id, 4).expect("q");

    s.set_member(p.id, bob.id, Some(Role::Viewer), 5)
        .expect("add");
    assert_eq!(s.role(p.id, bob.id).expect("role"), Some(Role::Viewer));
    s.set_member(p.id, bob.id, Some(Role::Member), 6)
        .expect("change");
    assert_eq!(s.role(p.id, bob.id).expect("role"), Some(Role::Member));
    assert_eq!(
        s.members(p.id).expect("members"),
        [(ana.clone(), Role::Owner), (bob.clone(), Role::Member)]
    );
    s.set_member(q.id, bob.id, Some(Role::Owner), 7)
        .expect("add to q");
    assert_eq!(
        s.projects_of(bob.id).expect("projects_of"),
        [(p.clone(), Role::Member), (q.clone(), Role::Owner)]
    );

    s.set_member(p.id, bob.id, None, 8).expect("remove");
    assert_eq!(s.role(p.id, bob.id).expect("role"), None);
    assert_eq!(
        s.members(p.id).expect("members"),
        [(ana.clone(), Role::Owner)]
    );
    s.set_member(p.id, bob.id, None, 9)
        .expect("removing a non-member does nothing");
    assert_eq!(
        s.projects_of(bob.id).expect("projects_of"),
        [(q.clone(), Role::Owner)]
    );

    let nowhere = ProjectId(q.id.0 + 100);
    let err = s
        .set_member(nowhere, bob.id, Some(Role::Viewer), 10)
        .expect_err("unknown project");
    assert!(
        matches!(err, StoreError::UnknownProject(x) if x == nowhere),
        "{err}"
    );
    let err = s
        .set_member(nowhere, bob.id, None, 10)
        .expect_err("unknown project");
    assert!(matches!(err, StoreError::UnknownProject(_)), "{err}");
    let nobody = UserId(bob.id.0 + 100);
    let err = s
        .set_member(p.id, nobody, Some(Role::Viewer), 10)
        .expect_err("unknown user");
    assert!(
        matches!(err, StoreError::UnknownUser(x) if x == nobody),
        "{err}"
    );
    assert_eq!(s.members(p.id).expect("members").len(), 1);
}

pub fn api_keys_are_created_found_revoked_and_touched(b: &mut dyn Backend) {
    let mut s = b.create();
    let ana = s.create_user("ana", false, 1).expect("ana");
    let bob = s.create_user("bob", false, 2).expect("bob");
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    let laptop = s
        .create_key(ana.id, "laptop", "tsk_aaaa", hash, 10)
        .expect("key");
    assert_eq!(
        (
            laptop.user,
            laptop.name.as_str(),
            laptop.prefix.as_str(),
            laptop.hash.as_str()
        ),
        (ana.id, "laptop", "tsk_aaaa", hash)
    );
    assert_eq!(
        (laptop.created_at, laptop.last_used_at, laptop.revoked_at),
        (10, None, None)
    );
    let ci = s
        .create_key(ana.id, "ci", "tsk_bbbb", hash, 11)
        .expect("key");
    assert_conflict(
        s.create_key(bob.id, "mine", "tsk_aaaa", hash, 12),
        "an API key with prefix \"tsk_aaaa\" already exists",
    );
    assert_invalid(
        s.create_key(bob.id, "", "tsk_cccc", hash, 12),
        "an API key's name must not be empty",
    );
    let nobody = UserId(bob.id.0 + 100);
    let err = s
        .create_key(nobody, "x", "tsk_dddd", hash, 12)
        .expect_err("unknown user");
    assert!(
        matches!(err, StoreError::UnknownUser(x) if x == nobody),
        "{err}"
    );

    assert_eq!(
        s.key_by_prefix("tsk_aaaa").expect("by prefix"),
        Some(laptop.clone())
    );
    assert_eq!(s.key_by_prefix("tsk_dddd").expect("by prefix"), None);
    assert_eq!(
        s.keys_of(ana.id).expect("keys_of"),
        [laptop.clone(), ci.clone()]
    );
    assert!(s.keys_of(bob.id).expect("keys_of").is_empty());

    assert!(s.revoke_key(laptop.id, 20).expect("revoke"));
    assert!(
        !s.revoke_key(laptop.id, 21).expect("revoke again"),
        "a second revocation reports false"
    );
    assert!(!s
        .revoke_key(KeyId(ci.id.0 + 100), 21)
        .expect("revoke unknown"));
    let revoked = s
        .key_by_prefix("tsk_aaaa")
        .expect("by prefix")
        .expect("kept");
    assert_eq!(
        revoked.revoked_at,
        Some(20),
        "the first revocation's time is kept"
    );

    s.touch_key(ci.id, 30).expect("touch");
    assert_eq!(
        s.key_by_prefix("tsk_bbbb")
            .expect("by prefix")
            .expect("ci")
            .last_used_at,
        Some(30)
    );
    s.touch_key(ci.id, 40).expect("touch");
    s.touch_key(KeyId(ci.id.0 + 100), 40)
        .expect("touching an unknown key does nothing");
    let keys = s.keys_of(ana.id).expect("keys_of");
    assert_eq!(
        keys.iter()
            .map(|k| (k.last_used_at, k.revoked_at))
            .collect::<Vec<_>>(),
        [(None, Some(20)), (Some(40), None)]
    );
}

pub fn jobs_belong_to_projects(b: &mut dyn Backend) {
    let mut s = b.create();
    let ana = s.create_user("ana", false, 1).expect("ana");
    let p1 = s.create_project("p1", ana.id, 2).expect("p1").id;
    let p2 = s.create_project("p2", ana.id, 3).expect("p2").id;
    let spec = sample_spec("in-project");
    let j1 = s.create_job(Some(p1), &spec, Some("k1"), 10).expect("j1");
    let j2 = s.create_job(Some(p2), &spec, None, 11).expect("j2");
    let j3 = s.create_job(None, &spec, None, 12).expect("j3");
    let j4 = s.create_job(Some(p1), &spec, None, 13).expect("j4");
    let ids = |jobs: Vec<crate::JobRecord>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(ids(s.jobs_of_project(p1, 10).expect("of p1")), [j4, j1]);
    assert_eq!(ids(s.jobs_of_project(p1, 1).expect("of p1")), [j4]);
    assert_eq!(ids(s.jobs_of_project(p2, 10).expect("of p2")), [j2]);
    let p3 = s.create_project("p3", ana.id, 4).expect("p3").id;
    assert!(s.jobs_of_project(p3, 10).expect("of p3").is_empty());

    assert_eq!(s.job(j1).expect("job").expect("j1").project, Some(p1));
    assert_eq!(s.job(j3).expect("job").expect("j3").project, None);
    let projects: Vec<_> = s
        .recent_jobs(10)
        .expect("recent")
        .into_iter()
        .map(|j| (j.id, j.project))
        .collect();
    assert_eq!(
        projects,
        [(j4, Some(p1)), (j3, None), (j2, Some(p2)), (j1, Some(p1))]
    );
    assert_eq!(
        s.find_job_by_key("k1").expect("find").expect("j1").project,
        Some(p1)
    );

    let nowhere = ProjectId(p3.0 + 100);
    let err = s
        .create_job(Some(nowhere), &spec, Some("lost"), 20)
        .expect_err("unknown project");
    assert!(
        matches!(err, StoreError::UnknownProject(x) if x == nowhere),
        "{err}"
    );
    assert_eq!(s.find_job_by_key("lost").expect("find"), None);
    assert_eq!(s.recent_jobs(10).expect("recent").len(), 4);
    // The scheduler is rebuilt with each job's project (quotas, fair share).
    let restored: Vec<_> = s
        .load_unfinished()
        .expect("load")
        .into_iter()
        .map(|j| (j.id, j.project))
        .collect();
    assert_eq!(
        restored,
        [(j1, Some(p1)), (j2, Some(p2)), (j3, None), (j4, Some(p1))]
    );
}
