//! Archiving a job, closing a project, shutting a user out.

use super::{spec, World};
use crate::{AsMember, AsOwner, ServiceError};

#[tokio::test(flavor = "multi_thread")]
async fn an_ended_jobs_files_go_its_record_stays_and_links_are_not_followed() {
    let w = World::new(1).await;
    let id = w.submit(spec("noop")).await;
    w.ended(id).await;
    let dir = w.service.data_dir().join("jobs").join(id.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("out.txt"), "x").unwrap();
    let outside = w.service.data_dir().join("precious");
    std::fs::write(&outside, "keep").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
    let job = w
        .service
        .job::<AsMember>(&w.member, &id.to_string())
        .await
        .unwrap();
    assert_eq!(w.service.archived_at(&job).await, None);
    let at = w.service.archive_job(&job).await.unwrap();
    assert!(!dir.exists());
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    assert_eq!(w.service.archived_at(&job).await, Some(at));
    assert_eq!(w.service.archive_job(&job).await.unwrap(), at, "once");
    assert!(w.service.reload(id).await.unwrap().is_some(), "record kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_with_active_jobs_is_not_closed_then_loses_its_members() {
    // A quota of no cpu: the job waits.
    let w = World::new(1).await;
    let none = tessera_types::Quota {
        max_cpu: Some(0),
        ..Default::default()
    };
    let admin = w.admin.admin().unwrap();
    w.service
        .set_quota(&admin, "video".into(), none)
        .await
        .unwrap();
    let id = w.submit(spec("noop")).await;
    let job = w
        .service
        .job::<AsMember>(&w.member, &id.to_string())
        .await
        .unwrap();
    assert!(!job.job().state.is_terminal(), "{:?}", job.job());
    let refused = w.service.archive_job(&job).await.unwrap_err();
    assert!(matches!(refused, ServiceError::Conflict(_)), "{refused}");
    let p = w
        .service
        .project::<AsOwner>(&w.owner, "video")
        .await
        .unwrap();
    let refused = w.service.close_project(&p).await.unwrap_err();
    assert!(
        refused.to_string().contains("1 jobs that have not ended"),
        "{refused}"
    );
    w.service.cancel(&job).unwrap();
    w.ended(id).await;
    assert_eq!(w.service.close_project(&p).await.unwrap(), 3);
    assert!(w.service.members(&p).await.unwrap().is_empty());
    let gone = w.service.project::<AsMember>(&w.member, "video").await;
    assert!(matches!(gone, Err(ServiceError::Forbidden(_))), "{gone:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shut_out_user_cannot_authenticate_and_leaves_projects() {
    let w = World::new(1).await;
    let refused = w
        .service
        .shut_out_user(&w.owner, "member".into())
        .await
        .unwrap_err();
    assert!(matches!(refused, ServiceError::Forbidden(_)), "{refused}");
    let refused = w
        .service
        .shut_out_user(&w.admin, "admin".into())
        .await
        .unwrap_err();
    assert!(matches!(refused, ServiceError::Conflict(_)), "{refused}");
    let out = w
        .service
        .shut_out_user(&w.admin, "member".into())
        .await
        .unwrap();
    assert_eq!((out.keys, out.projects_left), (1, 1));
    assert!(out.kept_as_last_owner.is_empty());
    assert!(w.service.authenticate(w.key("member")).await.is_err());
    let out = w
        .service
        .shut_out_user(&w.admin, "owner".into())
        .await
        .unwrap();
    assert_eq!(out.kept_as_last_owner, ["video"]);
    assert!(w.service.authenticate(w.key("owner")).await.is_err());
}
