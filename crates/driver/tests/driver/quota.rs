//! Projects: a quota holds a project's tasks back (and says why), and the
//! usage that fair share and cpu-time quotas count survives a restart.

use crate::{quote, sh, wait_for_gate, Rig};
use tessera_driver::{Exit, SystemClock};
use tessera_store::Accounts;
use tessera_types::{JobSpec, JobState, ProjectId, Quota, TaskSpec};

/// A project in the rig's database, made before any driver opens it.
fn project(rig: &Rig, name: &str) -> ProjectId {
    let mut store = rig.store();
    let owner = store.create_user("owner", false, 1).unwrap();
    store.create_project(name, owner.id, 1).unwrap().id
}

#[test]
fn a_project_at_its_cpu_quota_waits_and_says_why_until_the_quota_is_raised() {
    let rig = Rig::new();
    let film = project(&rig, "film");
    let gated = |name: &str| {
        let script = wait_for_gate(&rig.file(&format!("started-{name}")), &rig.file("gate"));
        TaskSpec::new(name, sh(&script)).with_time_limit_ms(15_000)
    };
    let spec = JobSpec::new("two", vec![gated("a"), gated("b")]);
    let mut driver = rig.local(4);
    let one_cpu = Quota {
        max_cpu: Some(1),
        ..Quota::default()
    };
    driver.set_quota(film, one_cpu).unwrap();
    let job = driver.submit_in(Some(film), &spec, None).unwrap();

    let why = driver.why_waiting(job, SystemClock::now());
    assert_eq!(
        why,
        [(1, format!("project {film} is at its cpu quota (1 of 1)"))]
    );
    let usage = driver
        .scheduler()
        .project_usage(Some(film), SystemClock::now());
    assert_eq!(usage.running_cpu, 1);

    driver.set_quota(film, Quota::default()).unwrap();
    assert!(driver.why_waiting(job, SystemClock::now()).is_empty());
    assert_eq!(
        driver
            .scheduler()
            .project_usage(Some(film), SystemClock::now())
            .running_cpu,
        2,
        "raising the quota starts the held task at once"
    );
    std::fs::write(rig.file("gate"), "").unwrap();
    let exit = driver.run_job(job, &mut ()).unwrap();
    assert_eq!(exit, Exit::Finished(JobState::Succeeded));
}

#[test]
fn usage_of_past_attempts_is_restored_after_a_restart() {
    let rig = Rig::new();
    let film = project(&rig, "film");
    let marker = rig.file("ran");
    let script = format!("sleep 0.2; touch {}", quote(&marker));
    let spec = JobSpec::new(
        "used",
        vec![
            TaskSpec::new("a", sh(&script)),
            TaskSpec::new("b", sh("sleep 0.1")),
        ],
    );
    let before = {
        let mut driver = rig.local(2);
        driver.recover(None).unwrap();
        let job = driver.submit_in(Some(film), &spec, None).unwrap();
        let exit = driver.run_job(job, &mut ()).unwrap();
        assert_eq!(exit, Exit::Finished(JobState::Succeeded));
        driver
            .scheduler()
            .project_usage(Some(film), SystemClock::now())
    };
    assert!(before.window_cpu_ms > 0, "{before:?}");

    let mut driver = rig.local(2);
    let fresh = driver
        .scheduler()
        .project_usage(Some(film), SystemClock::now());
    assert_eq!(fresh.window_cpu_ms, 0, "nothing is charged before recover");
    driver.recover(None).unwrap();
    let after = driver
        .scheduler()
        .project_usage(Some(film), SystemClock::now());
    assert_eq!(after.window_cpu_ms, before.window_cpu_ms);
    assert!(after.decayed_cpu_ms > 0.0, "{after:?}");
    assert!(after.decayed_cpu_ms <= before.window_cpu_ms as f64);
    // A second recover (the encode command resumes one job) charges nothing twice.
    driver.recover(None).unwrap();
    let again = driver
        .scheduler()
        .project_usage(Some(film), SystemClock::now());
    assert_eq!(again.window_cpu_ms, before.window_cpu_ms);
    let none = driver.scheduler().project_usage(None, SystemClock::now());
    assert_eq!(
        none.window_cpu_ms, 0,
        "another project's usage stays its own"
    );
}
