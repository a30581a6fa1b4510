//! Jobs through the service: refusals and their kinds, control, why tasks
//! wait, and a job's events as the driver commits them.

use super::{spec, World};
use crate::{AsMember, AsViewer, Control, JobEvent, ServiceError};
use tessera_types::{Change, JobState, TaskState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_refused_with_their_kind_and_the_schedulers_words() {
    let w = World::new(1).await;
    let s = &w.service;
    let member = s.project::<AsMember>(&w.member, "video").await.unwrap();
    let mut granted = spec("noop");
    granted.grants = vec![tessera_types::Grant::read("/etc")];
    let e = s.submit(&member, granted).await.unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    assert!(
        e.to_string().contains("`grants` are given by the server"),
        "{e}"
    );
    let cyclic: tessera_types::JobSpec = serde_json::from_value(serde_json::json!({
        "name": "loop", "tasks": [
            {"name": "a", "action": {"kind": "noop"}, "deps": [{"selector": "b"}]},
            {"name": "b", "action": {"kind": "noop"}, "deps": [{"selector": "a"}]},
        ],
    }))
    .unwrap();
    let e = s.submit(&member, cyclic).await.unwrap_err();
    assert!(matches!(e, ServiceError::InvalidSpec(_)), "{e:?}");
    assert!(e.to_string().starts_with("invalid job: "), "{e}");
    // What was refused left no job behind.
    let viewer = s.project::<AsViewer>(&w.viewer, "video").await.unwrap();
    assert!(s.jobs(&viewer, 10).await.unwrap().is_empty());
    // A job that the service made gets its project's uploads granted.
    let id = w.submit(spec("noop")).await;
    assert_eq!(w.ended(id).await.state, JobState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_jobs_refuse_control_and_failed_ones_retry() {
    let w = World::new(1).await;
    let s = &w.service;
    let ok = w.submit(spec("noop")).await;
    let failed = w.submit(spec("command")).await;
    assert_eq!(w.ended(ok).await.state, JobState::Succeeded);
    assert_eq!(w.ended(failed).await.state, JobState::Failed);
    let ok = s
        .job::<AsMember>(&w.member, &ok.0.to_string())
        .await
        .unwrap();
    let e = s.cancel(&ok).unwrap_err();
    assert_eq!(e.code(), "conflict");
    assert!(e.to_string().contains("has already ended"), "{e}");
    for what in [Control::Suspend, Control::Resume, Control::Retry] {
        let e = s.control(&ok, what).await.unwrap_err();
        assert_eq!(e.code(), "conflict", "{what:?}: {e}");
    }
    let e = s.control(&ok, Control::Priority(101)).await.unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    let failed = s
        .job::<AsMember>(&w.member, &failed.0.to_string())
        .await
        .unwrap();
    let retried = s.control(&failed, Control::Retry).await.unwrap();
    assert_eq!(retried.job.id, failed.id());
    assert_ne!(retried.job.state, JobState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_tasks_say_why_and_events_follow_a_job_to_its_end() {
    // A project whose quota is no cpu: nothing of it starts, and its
    // tasks say why.
    let w = World::new(1).await;
    let s = &w.service;
    let none = tessera_types::Quota {
        max_cpu: Some(0),
        ..Default::default()
    };
    let admin = w.admin.admin().unwrap();
    s.set_quota(&admin, "video".into(), none).await.unwrap();
    let id = w.submit(spec("noop")).await;
    let viewer = s
        .job::<AsViewer>(&w.viewer, &id.0.to_string())
        .await
        .unwrap();
    let page = s.tasks(&viewer, 0, 10).await.unwrap();
    assert_eq!(page.next_offset, None);
    let task = &page.items[0];
    assert!(
        matches!(task.record.state, TaskState::Ready | TaskState::Waiting),
        "{task:?}"
    );
    let why = task.waiting.as_deref().unwrap_or("");
    assert!(why.contains("quota"), "{task:?}");
    let mut events = s.job_events(&viewer);
    let Some(JobEvent::Snapshot(first)) = events.next().await else {
        panic!("a stream starts with a snapshot");
    };
    assert_eq!(first.job.id, id);
    assert_eq!(first.counts.iter().map(|(_, n)| n).sum::<u64>(), 1);
    let member = s
        .job::<AsMember>(&w.member, &id.0.to_string())
        .await
        .unwrap();
    let suspended = s.control(&member, Control::Suspend).await.unwrap();
    assert!(suspended.job.suspended);
    s.cancel(&member).unwrap();
    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        seen.push(event);
    }
    assert!(
        seen.iter().any(|e| matches!(
            e,
            JobEvent::Change(Change::JobSuspended {
                suspended: true,
                ..
            })
        )),
        "{seen:?}"
    );
    assert!(
        matches!(
            seen.last(),
            Some(JobEvent::End {
                state: JobState::Cancelled
            })
        ),
        "{seen:?}"
    );
    // An ended job's stream is its snapshot and its end.
    let viewer = s
        .job::<AsViewer>(&w.viewer, &id.0.to_string())
        .await
        .unwrap();
    let mut again = s.job_events(&viewer);
    assert!(matches!(again.next().await, Some(JobEvent::Snapshot(_))));
    assert!(matches!(again.next().await, Some(JobEvent::End { .. })));
    assert!(again.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_rules_may_name_only_jobs_of_the_project() {
    let w = World::new(1).await;
    let s = &w.service;
    let member = s.project::<AsMember>(&w.member, "video").await.unwrap();
    let first = w.submit(spec("noop")).await;
    let naming = |job: i64| {
        let mut named = spec("noop");
        named.tasks[0].resources.rules = vec![tessera_types::PlaceRule {
            near: tessera_types::Near::Jobs(vec![tessera_types::JobId(job)]),
            not: true,
            soft: false,
        }];
        named
    };
    let e = s.submit(&member, naming(first.0 + 1000)).await.unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    assert!(e.to_string().contains("no job of this project"), "{e}");
    let ok = s.submit(&member, naming(first.0)).await.unwrap();
    assert_eq!(ok.project, Some(w.project));
}
