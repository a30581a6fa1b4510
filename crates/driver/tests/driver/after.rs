//! Jobs that wait on jobs (`JobSpec::after`) through the real driver and
//! SQLite: resolution at submission and its refusals, parents that ended
//! before, a restart while children wait, and retries across a restart.

use crate::{attempts_of, interrupt_when, quote, sh, wait_for_gate, Rig};
use std::sync::mpsc;
use std::time::Duration;
use tessera_core::{ControlError, SpecError};
use tessera_driver::{DriverError, Exit};
use tessera_store::{Accounts, SqliteStore, Store};
use tessera_types::{
    Condition, JobDependency, JobId, JobSelector, JobSpec, JobState, ProjectId, TaskSpec, TaskState,
};

/// A one-task job whose task appends `name` to `runs`.
fn logged(rig: &Rig, name: &str) -> JobSpec {
    let script = format!("echo {name} >> {}", quote(&rig.file("runs")));
    JobSpec::new(name, vec![TaskSpec::new(name, sh(&script))])
}

/// A one-task job that fails.
fn failing(name: &str) -> JobSpec {
    JobSpec::new(name, vec![TaskSpec::new(name, sh("exit 3"))])
}

/// The names in `runs`, in the order the tasks ran.
fn runs(rig: &Rig) -> Vec<String> {
    std::fs::read_to_string(rig.file("runs"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn on(id: JobId) -> JobDependency {
    JobDependency::on_id(id)
}

fn named(selector: &str) -> JobDependency {
    JobDependency::on_name(selector).unwrap()
}

fn state(store: &impl Store, job: JobId) -> JobState {
    store.job(job).unwrap().unwrap().state
}

/// The one task's state and reason.
fn task(store: &impl Store, job: JobId) -> (TaskState, Option<String>) {
    let t = store.tasks(job).unwrap().remove(0);
    (t.state, t.reason)
}

/// Two projects made through the accounts connection the API would use.
fn projects(rig: &Rig) -> (ProjectId, ProjectId) {
    let mut accounts = SqliteStore::open_secondary(rig.db()).unwrap();
    let ana = accounts.create_user("ana", false, 1).unwrap();
    let p1 = accounts.create_project("video", ana.id, 2).unwrap().id;
    let p2 = accounts.create_project("other", ana.id, 3).unwrap().id;
    (p1, p2)
}

#[test]
fn a_child_job_starts_after_its_parents_and_the_store_keeps_the_ids() {
    let rig = Rig::new();
    let mut driver = rig.local(4);
    let (video, _) = projects(&rig);
    let split = driver
        .submit_in(Some(video), &logged(&rig, "split"), None)
        .unwrap();
    let e1 = driver
        .submit_in(
            Some(video),
            &logged(&rig, "encode1").after_job(on(split)),
            None,
        )
        .unwrap();
    let e2 = driver
        .submit_in(
            Some(video),
            &logged(&rig, "encode2").after_job(on(split)),
            None,
        )
        .unwrap();
    let merge_spec = logged(&rig, "merge").after_job(named("encode*"));
    let merge = driver.submit_in(Some(video), &merge_spec, None).unwrap();
    assert_eq!(
        driver.job_waiting(merge).as_deref(),
        Some("waiting for 2 of 2 jobs matching encode* to succeed: 2 (encode1), 3 (encode2)")
    );
    driver.run_until_idle(&mut ()).unwrap();
    let store = driver.store();
    assert_eq!(state(store, merge), JobState::Succeeded);
    let order = runs(&rig);
    assert_eq!(order.first().map(String::as_str), Some("split"));
    assert_eq!(order.last().map(String::as_str), Some("merge"));
    // What is stored is what the selectors matched, beside what was written.
    let head = store.job_spec(merge).unwrap().unwrap();
    assert_eq!(
        head.after[0].job,
        JobSelector::Name("encode*".parse().unwrap())
    );
    assert_eq!(head.after[0].resolved, vec![e1, e2]);
    let split_end = attempts_of(store, split, "split")[0].ended_at.unwrap();
    let merge_start = attempts_of(store, merge, "merge")[0].started_at;
    assert!(merge_start >= split_end);
}

#[test]
fn selectors_that_match_nothing_are_refused_and_leave_nothing_behind() {
    let rig = Rig::new();
    let mut driver = rig.in_process(2);
    let (video, other) = projects(&rig);
    let theirs = driver
        .submit_in(Some(other), &logged(&rig, "split"), None)
        .unwrap();
    let loose = driver.submit(&logged(&rig, "encode1"), None).unwrap();
    driver
        .submit_in(Some(video), &logged(&rig, "probe"), None)
        .unwrap();
    let before = driver.store().job_names(Some(video), None).unwrap();
    let mut given = on(theirs);
    given.resolved = vec![theirs];
    for (dep, says) in [
        (
            on(theirs),
            "job dependency \"1\" matches no job of this project",
        ),
        (
            on(loose),
            "job dependency \"2\" matches no job of this project",
        ),
        (
            on(JobId(999)),
            "job dependency \"999\" matches no job of this project",
        ),
        (
            named("split"),
            "job dependency \"split\" matches no job of this project",
        ),
        (
            named("encode*"),
            "job dependency \"encode*\" matches no job",
        ),
        (
            named("re:^enc"),
            "job dependency \"re:^enc\" matches no job",
        ),
        (named("re:("), "job dependency \"re:(\": invalid regex"),
        (given, "carries `resolved`, which the scheduler writes"),
    ] {
        let spec = logged(&rig, "merge")
            .after_job(named("probe"))
            .after_job(dep);
        let err = driver.submit_in(Some(video), &spec, None).unwrap_err();
        assert!(matches!(err, DriverError::Spec(_)), "{err:?}");
        assert!(err.to_string().contains(says), "{says}: {err}");
    }
    let too_many = (0..=tessera_core::MAX_JOB_DEPS)
        .fold(logged(&rig, "m"), |s, _| s.after_job(named("probe")));
    let err = driver.submit_in(Some(video), &too_many, None).unwrap_err();
    assert!(
        matches!(err, DriverError::Spec(SpecError::TooManyJobDeps { .. })),
        "{err}"
    );
    assert_eq!(driver.store().job_names(Some(video), None).unwrap(), before);
    assert!(driver.scheduler().job_links() == 0);
}

#[test]
fn a_parent_that_ended_badly_before_submission_skips_the_child_at_once() {
    let rig = Rig::new();
    let mut driver = rig.local(2);
    let split = driver.submit(&failing("split"), None).unwrap();
    assert_eq!(
        driver.run_job(split, &mut ()).unwrap(),
        Exit::Finished(JobState::Failed)
    );
    // run_job let go of it: its end comes from the store.
    assert_eq!(driver.scheduler().job_state(split), None);
    let encode = driver
        .submit(&logged(&rig, "encode").after_job(on(split)), None)
        .unwrap();
    let handler = logged(&rig, "handler").after_job(on(split).with_condition(Condition::Failure));
    let handler = driver.submit(&handler, None).unwrap();
    driver.run_until_idle(&mut ()).unwrap();
    let store = driver.store();
    assert_eq!(state(store, encode), JobState::Cancelled);
    assert_eq!(
        task(store, encode),
        (
            TaskState::Skipped,
            Some("job 1 (split) ended failed and this job waits for it to succeed".into())
        )
    );
    assert_eq!(state(store, handler), JobState::Succeeded);
    assert_eq!(runs(&rig), ["handler"], "the skipped job ran nothing");
}

#[test]
fn children_wait_again_after_a_restart_and_hear_of_parents_that_ended_before() {
    let rig = Rig::new();
    let mut first = rig.local(2);
    let early = first.submit(&logged(&rig, "early"), None).unwrap();
    first.run_job(early, &mut ()).unwrap();
    let gate = wait_for_gate(&rig.file("started-slow"), &rig.file("gate"));
    let slow = JobSpec::new("slow", vec![TaskSpec::new("slow", sh(&gate))]);
    let slow = first.submit(&slow, None).unwrap();
    let late_spec = logged(&rig, "late")
        .after_job(on(slow))
        .after_job(on(early));
    let late = first.submit(&late_spec, None).unwrap();
    let watcher = interrupt_when(first.handle(), vec![rig.file("started-slow")]);
    first.run_until_idle(&mut ()).unwrap();
    assert!(watcher.join().unwrap(), "slow was running when interrupted");
    drop(first);

    let mut second = rig.local(2);
    assert_eq!(second.recover(None).unwrap(), 2);
    // `early` ended before this driver started: told from the store.
    assert_eq!(second.scheduler().job_state(early), None);
    assert_eq!(
        second.job_waiting(late).as_deref(),
        Some("waiting for job 2 (slow) to succeed")
    );
    let after_early = second
        .submit(&logged(&rig, "after-early").after_job(named("early")), None)
        .unwrap();
    assert_eq!(second.job_waiting(after_early), None, "released at once");
    std::fs::write(rig.file("gate"), "").unwrap();
    second.run_until_idle(&mut ()).unwrap();
    let store = second.store();
    assert_eq!(state(store, late), JobState::Succeeded);
    assert_eq!(state(store, after_early), JobState::Succeeded);
    let slow_end = attempts_of(store, slow, "slow")
        .last()
        .unwrap()
        .ended_at
        .unwrap();
    assert!(attempts_of(store, late, "late")[0].started_at >= slow_end);
    assert_eq!(second.scheduler().job_links(), 0);
}

#[test]
fn retries_across_a_restart_recheck_parents_and_skipped_children_stay_skipped() {
    let rig = Rig::new();
    let marker = rig.file("failed-once");
    let flaky = format!(
        "if [ ! -e {m} ]; then touch {m}; exit 3; fi",
        m = quote(&marker)
    );
    let mut first = rig.local(2);
    let split = JobSpec::new("split", vec![TaskSpec::new("split", sh(&flaky))]);
    let split = first.submit(&split, None).unwrap();
    let encode = first
        .submit(&logged(&rig, "encode").after_job(on(split)), None)
        .unwrap();
    first.run_until_idle(&mut ()).unwrap();
    assert_eq!(state(first.store(), encode), JobState::Cancelled);
    drop(first);

    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let served = scope.spawn(|| {
            let mut driver = rig.local(2);
            driver.recover(None).unwrap();
            tx.send(driver.handle()).unwrap();
            driver.serve(&mut ())
        });
        let handle = rx.recv().unwrap();
        let reader = SqliteStore::open_secondary(rig.db()).unwrap();
        let refused = handle.retry(encode).unwrap_err();
        assert!(
            matches!(
                &refused,
                DriverError::Control(ControlError::ParentRejects { .. })
            ),
            "{refused:?}"
        );
        assert_eq!(
            refused.to_string(),
            "job 2 cannot be retried: job 1 (split) ended failed and this job waits for it \
             to succeed; retry that job first"
        );
        handle.retry(split).unwrap();
        let ended = |job| {
            crate::eventually(Duration::from_secs(20), || {
                reader.job(job).unwrap().unwrap().state.is_terminal()
            })
        };
        assert!(ended(split));
        assert_eq!(state(&reader, split), JobState::Succeeded);
        assert_eq!(state(&reader, encode), JobState::Cancelled, "stays skipped");
        handle.retry(encode).unwrap();
        assert!(ended(encode));
        assert_eq!(state(&reader, encode), JobState::Succeeded);
        handle.interrupt();
        served.join().unwrap().unwrap();
    });
    assert_eq!(runs(&rig), ["encode"]);
}
