//! Where attempts ran: the node of a `Started` report is stored, and a
//! restarted driver kills only this machine's orphans.

use crate::restart::{crashed_while_running_on, orphan};
use crate::Rig;
use std::sync::Arc;
use std::time::Duration;
use tessera_driver::{Driver, Exit, SystemClock};
use tessera_exec::{EventSink, ExecEvent, InProcessExecutor};
use tessera_store::Store;
use tessera_types::{Action, AttemptOutcome, JobSpec, JobState, TaskRef, TaskSpec};

/// The in-process executor, reporting each attempt as started on `node`
/// (pid 4000 + its task index) before it ends, as a worker's would.
fn on_node(node: &'static str) -> impl FnOnce(EventSink) -> InProcessExecutor {
    move |sink: EventSink| {
        InProcessExecutor::new(Arc::new(move |e| {
            if let ExecEvent::Exited { task, attempt, .. } = &e {
                sink(ExecEvent::Started {
                    task: *task,
                    attempt: *attempt,
                    pid: 4000 + task.index,
                    node: Some(node.to_string()),
                });
            }
            sink(e)
        }))
    }
}

#[test]
fn a_started_report_with_a_node_is_stored_on_the_attempt() {
    let rig = Rig::new();
    let config = tessera_driver::DriverConfig::new(4, rig.workspace());
    let mut driver = Driver::new(rig.store(), on_node("worker-7"), config);
    let spec = JobSpec::new(
        "placed",
        (0..6)
            .map(|i| TaskSpec::new(format!("t{i}"), Action::Noop))
            .collect(),
    );
    let job = driver.submit(&spec, None).unwrap();
    assert_eq!(
        driver.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Succeeded)
    );
    let attempts = driver.store().attempts(job).unwrap();
    let got: Vec<_> = attempts
        .iter()
        .map(|a| (a.task.index, a.node.as_deref(), a.pid, a.outcome.clone()))
        .collect();
    let want: Vec<_> = (0..6)
        .map(|i| {
            (
                i,
                Some("worker-7"),
                Some(4000 + i),
                Some(AttemptOutcome::Succeeded),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn recovery_leaves_a_workers_pid_alone() {
    let rig = Rig::new();
    let mut store = rig.store();
    let spec = JobSpec::new("remote", vec![TaskSpec::new("t", Action::Noop)]);
    let job = store
        .create_job(None, &spec, None, SystemClock::now())
        .unwrap();
    let task = TaskRef::new(job, 0);
    // A process of this machine carries the attempt's marker, but the
    // attempt ran on a worker: its pid names a process over there.
    let mut here = orphan(task, 1);
    crashed_while_running_on(&mut store, task, here.id(), Some("worker-1"));
    drop(store);

    let mut driver = rig.in_process(2);
    assert_eq!(driver.recover(Some(job)).unwrap(), 1);
    // A window for a kill that must not come (a slow machine only shortens
    // it; recover() sends its kills before it returns).
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        here.try_wait().unwrap().is_none(),
        "a worker's attempt's pid is not killed on this machine"
    );
    here.kill().unwrap();
    here.wait().unwrap();
    assert_eq!(
        driver.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Succeeded)
    );
    let attempts = driver.store().attempts(job).unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].node.as_deref(), Some("worker-1"));
    assert!(matches!(
        attempts[0].outcome,
        Some(AttemptOutcome::Lost { .. })
    ));
}
