//! Job control across a restart: a job that failed under one driver is
//! retried through the next one, which never held it.

use crate::{attempts_of, eventually, quote, sh, Rig};
use std::sync::mpsc;
use std::time::Duration;
use tessera_core::ControlError;
use tessera_driver::{DriverError, Exit};
use tessera_store::{SqliteStore, Store};
use tessera_types::{JobId, JobSpec, JobState, TaskSpec};

/// A task that appends its name to `runs`.
fn logged(rig: &Rig, name: &str) -> TaskSpec {
    let script = format!("echo {name} >> {}", quote(&rig.file("runs")));
    TaskSpec::new(name, sh(&script))
}

fn outcomes(store: &impl Store, job: JobId, name: &str) -> Vec<(u32, &'static str)> {
    attempts_of(store, job, name)
        .iter()
        .map(|a| (a.number, a.outcome.as_ref().map_or("open", |o| o.kind())))
        .collect()
}

#[test]
fn a_job_that_failed_before_a_restart_is_retried_by_the_next_driver() {
    let rig = Rig::new();
    let marker = rig.file("failed-once");
    let flaky = format!(
        "if [ -e {m} ]; then echo b >> {runs}; else touch {m}; echo 'first run fails' >&2; exit 3; fi",
        m = quote(&marker),
        runs = quote(&rig.file("runs")),
    );
    let spec = JobSpec::new(
        "flaky",
        vec![
            logged(&rig, "a"),
            TaskSpec::new("b", sh(&flaky)).after("a"),
            logged(&rig, "c").after("b"),
        ],
    );
    let mut first = rig.local(2);
    let job = first.submit(&spec, None).unwrap();
    assert_eq!(
        first.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Failed)
    );
    drop(first);

    // The next driver serves on its own thread (its children die with it).
    let (tx, rx) = mpsc::channel();
    let served = std::thread::scope(|scope| {
        let driver = scope.spawn(|| {
            let mut driver = rig.local(2);
            let resumed = driver.recover(None).unwrap();
            tx.send(driver.handle()).unwrap();
            driver.serve(&mut ()).map(|()| resumed)
        });
        let handle = rx.recv().unwrap();
        let answers = (
            handle.suspend(job),
            handle.retry(JobId(job.0 + 100)),
            handle.retry(job),
        );
        let reader = SqliteStore::open_reader(rig.db()).unwrap();
        let succeeded = eventually(Duration::from_secs(60), || {
            reader.job(job).unwrap().unwrap().state == JobState::Succeeded
        });
        let again = handle.retry(job);
        handle.interrupt();
        (driver.join().unwrap(), answers, succeeded, again)
    });
    let (resumed, (suspend, missing, retry), succeeded, again) = served;
    assert_eq!(
        resumed.unwrap(),
        0,
        "the failed job is not among the unfinished"
    );
    assert!(
        matches!(
            suspend,
            Err(DriverError::Control(ControlError::Ended {
                state: JobState::Failed,
                ..
            }))
        ),
        "{suspend:?}"
    );
    assert!(
        matches!(missing, Err(DriverError::NoSuchJob(_))),
        "{missing:?}"
    );
    retry.expect("a retry of a job that failed before the restart");
    assert!(succeeded, "the retried job succeeded");
    let again = again.unwrap_err().to_string();
    assert_eq!(
        again,
        format!("job {job} succeeded; only a failed or cancelled job can be retried")
    );

    let store = SqliteStore::open_reader(rig.db()).unwrap();
    assert_eq!(outcomes(&store, job, "a"), [(1, "succeeded")]);
    assert_eq!(
        outcomes(&store, job, "b"),
        [(1, "failed"), (2, "succeeded")]
    );
    assert_eq!(outcomes(&store, job, "c"), [(1, "succeeded")]);
    let runs = std::fs::read_to_string(rig.file("runs")).unwrap();
    assert_eq!(runs, "a\nb\nc\n", "what succeeded before was kept");
}
