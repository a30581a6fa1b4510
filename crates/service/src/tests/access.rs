//! Who may do what, decided by the service: every role against every
//! proof, the order of refusals (the thing, then the role), keys.

use super::{spec, World};
use crate::{AsMember, AsOwner, AsViewer, Caller, ServiceError};
use tessera_types::Role;

fn kind<T>(r: Result<T, ServiceError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_gets_the_proofs_it_reaches_and_a_missing_thing_is_not_found_first() {
    let w = World::new(1).await;
    let s = &w.service;
    let job = w.submit(spec("noop")).await;
    let job = job.0.to_string();
    // (caller, viewer, member, owner) on the project, then on its job.
    let table: [(&str, &Caller, [&str; 3]); 5] = [
        ("admin", &w.admin, ["ok", "ok", "ok"]),
        ("owner", &w.owner, ["ok", "ok", "ok"]),
        ("member", &w.member, ["ok", "ok", "forbidden"]),
        ("viewer", &w.viewer, ["ok", "forbidden", "forbidden"]),
        (
            "outsider",
            &w.outsider,
            ["forbidden", "forbidden", "forbidden"],
        ),
    ];
    for (name, caller, want) in table {
        for segment in ["video", &w.project.0.to_string()] {
            let got = [
                kind(s.project::<AsViewer>(caller, segment).await),
                kind(s.project::<AsMember>(caller, segment).await),
                kind(s.project::<AsOwner>(caller, segment).await),
            ];
            assert_eq!(got, want, "{name} on project {segment}");
        }
        let got = [
            kind(s.job::<AsViewer>(caller, &job).await),
            kind(s.job::<AsMember>(caller, &job).await),
            kind(s.job::<AsOwner>(caller, &job).await),
        ];
        assert_eq!(got, want, "{name} on job {job}");
        // What does not exist is "not found" to everyone, even to those
        // who could see nothing there: the thing is looked up first.
        assert_eq!(
            kind(s.project::<AsOwner>(caller, "nope").await),
            "not_found"
        );
        assert_eq!(kind(s.job::<AsOwner>(caller, "999999").await), "not_found");
        // Ids are canonical decimals: `0<id>` is a name, and no job's.
        let padded = format!("0{job}");
        assert_eq!(kind(s.job::<AsViewer>(caller, &padded).await), "not_found");
    }
    let refused = s.project::<AsMember>(&w.viewer, "video").await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "you are a viewer of project \"video\"; this needs member or higher"
    );
    // The proof carries the caller's own role (an admin outside: none).
    let p = s.project::<AsViewer>(&w.member, "video").await.unwrap();
    assert_eq!(p.role(), Some(Role::Member));
    let p = s.project::<AsViewer>(&w.admin, "video").await.unwrap();
    assert_eq!(p.role(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_outside_any_project_is_an_admins_alone() {
    let w = World::new(1).await;
    let driver = w.service.driver.clone();
    let id = tokio::task::spawn_blocking(move || driver.submit(None, spec("noop"), None))
        .await
        .unwrap()
        .unwrap();
    let segment = id.0.to_string();
    assert!(w.service.job::<AsOwner>(&w.admin, &segment).await.is_ok());
    let refused = w
        .service
        .job::<AsViewer>(&w.owner, &segment)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "forbidden");
    assert!(
        refused.to_string().contains("outside any project"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_throttled_and_revoked_the_same_for_every_api() {
    let w = World::new(1).await;
    let s = &w.service;
    let good = w.key("viewer").to_string();
    for bad in ["", "Bearer x", "tsk_short_key"] {
        assert_eq!(kind(s.authenticate(bad).await), "unauthorized", "{bad:?}");
    }
    // A well-formed key nobody has.
    let (unknown, _, _) = crate::new_api_key();
    assert_eq!(kind(s.authenticate(&unknown).await), "unauthorized");
    // The viewer's prefix with wrong secrets: argon2 runs for the first
    // few, then the prefix waits, its right key too (until the window ends).
    let wrong = |i: usize| format!("{}{:0>32}", &good[..17], i);
    for i in 0..crate::auth::FAILURE_LIMIT as usize {
        assert_eq!(kind(s.authenticate(&wrong(i)).await), "unauthorized");
    }
    let throttled = s.authenticate(&wrong(99)).await.unwrap_err();
    assert!(
        matches!(throttled, ServiceError::TooMany { retry_after, .. } if retry_after > 0),
        "{throttled:?}"
    );
    // The member's key was verified once: remembered, it needs no argon2.
    let member = s.authenticate(w.key("member")).await.unwrap();
    assert_eq!(member.user().name, "member");
    // A revoked key stops working at once, sessions made with it too.
    let new = s.create_key(&w.member, "laptop".into()).await.unwrap();
    let caller = s.authenticate(&new.secret).await.unwrap();
    let prefix = new.key.prefix.clone();
    let session = s.session_caller(caller.user().id, prefix.clone()).await;
    assert!(session.unwrap().is_some());
    // Another user's key is "not found" to anyone but an admin.
    let e = s.revoke_key(&w.owner, new.key.id).await.unwrap_err();
    assert_eq!(e.code(), "not_found");
    s.revoke_key(&w.admin, new.key.id).await.unwrap();
    let e = s.authenticate(&new.secret).await.unwrap_err();
    assert!(e.to_string().contains("revoked"), "{e}");
    let session = s.session_caller(caller.user().id, prefix).await;
    assert!(session.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_change_only_by_owners_and_a_project_keeps_an_owner() {
    let w = World::new(1).await;
    let s = &w.service;
    let owner = s.project::<AsOwner>(&w.owner, "video").await.unwrap();
    let e = s
        .set_member(&owner, "owner".into(), Some(Role::Member))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "conflict");
    assert!(e.to_string().contains("last owner"), "{e}");
    let added = s
        .set_member(&owner, "outsider".into(), Some(Role::Viewer))
        .await
        .unwrap();
    assert_eq!(
        added.map(|(u, r)| (u.name, r)),
        Some(("outsider".into(), Role::Viewer))
    );
    assert!(s.project::<AsViewer>(&w.outsider, "video").await.is_ok());
    s.set_member(&owner, "outsider".into(), None).await.unwrap();
    let e = s
        .set_member(&owner, "outsider".into(), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found");
    // Names: unique, never a number.
    let admin = w.admin.admin().unwrap();
    let e = s
        .create_user(&admin, "owner".into(), false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "conflict");
    let e = s.create_project(&w.member, "42".into()).await.unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    let e = s
        .create_project(&w.member, "video".into())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "conflict");
    // Only an admin holds the proof quotas are set with.
    assert!(w.owner.admin().is_err());
    let quota = tessera_types::Quota {
        max_cpu: Some(2),
        ..Default::default()
    };
    s.set_quota(&admin, "video".into(), quota).await.unwrap();
    let viewer = s.project::<AsViewer>(&w.viewer, "video").await.unwrap();
    assert_eq!(s.quota(&viewer).await.unwrap().max_cpu, Some(2));
    assert_eq!(s.usage(&viewer).await.unwrap().quota.max_cpu, Some(2));
}
