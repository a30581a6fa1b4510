//! A job that outlives its driver: interrupted and resumed, left behind by a
//! crash, or grown by expansion before a restart.

use crate::{attempts_of, interrupt_when, quote, sh, task_states, wait_for_gate, Rig};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::time::Duration;
use tessera_driver::{Exit, SystemClock};
use tessera_exec::{attempt_marker, ATTEMPT_ENV};
use tessera_store::{SqliteStore, StartedAttempt, Store};
use tessera_types::{
    AttemptOutcome, Change, JobId, JobSpec, JobState, NodeId, TaskRef, TaskSpec, TaskState,
};

/// A safety net for tasks that wait on a gate: a broken test fails instead
/// of hanging.
const GATE_LIMIT_MS: u64 = 15_000;

/// A task that appends its name to `runs`, then waits for `gate`.
fn gated(rig: &Rig, name: &str) -> TaskSpec {
    let script = format!(
        "echo {name} >> {}; {}",
        quote(&rig.file("runs")),
        wait_for_gate(&rig.file(&format!("started-{name}")), &rig.file("gate"))
    );
    TaskSpec::new(name, sh(&script)).with_time_limit_ms(GATE_LIMIT_MS)
}

/// A task that appends its name to `runs`.
fn logged(rig: &Rig, name: &str) -> TaskSpec {
    let script = format!("echo {name} >> {}", quote(&rig.file("runs")));
    TaskSpec::new(name, sh(&script))
}

/// How many times each task's command ran, by the `runs` log.
fn runs(rig: &Rig, name: &str) -> usize {
    std::fs::read_to_string(rig.file("runs"))
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == name)
        .count()
}

fn outcomes(store: &impl Store, job: JobId, name: &str) -> Vec<&'static str> {
    attempts_of(store, job, name)
        .iter()
        .map(|a| a.outcome.as_ref().map_or("open", |o| o.kind()))
        .collect()
}

#[test]
fn interrupted_job_resumes_on_a_new_driver_without_rerunning_finished_tasks() {
    let rig = Rig::new();
    let spec = JobSpec::new(
        "resume",
        vec![
            logged(&rig, "a"),
            gated(&rig, "b").after("a"),
            gated(&rig, "c").after("a"),
            logged(&rig, "d").after("b").after("c"),
        ],
    );
    let mut first = rig.local(4);
    let job = first.submit(&spec, None).unwrap();
    let watcher = interrupt_when(
        first.handle(),
        vec![rig.file("started-b"), rig.file("started-c")],
    );
    assert_eq!(first.run_job(job, &mut ()).unwrap(), Exit::Interrupted);
    assert!(
        watcher.join().unwrap(),
        "b and c were running when interrupted"
    );

    let store = first.store();
    assert_eq!(store.job(job).unwrap().unwrap().state, JobState::Running);
    assert_eq!(
        task_states(store, job),
        [
            ("a".to_string(), TaskState::Succeeded),
            ("b".to_string(), TaskState::Ready),
            ("c".to_string(), TaskState::Ready),
            ("d".to_string(), TaskState::Waiting),
        ]
    );
    assert!(store.open_attempts().unwrap().is_empty());
    for name in ["b", "c"] {
        let attempts = attempts_of(store, job, name);
        assert_eq!(attempts.len(), 1);
        assert!(
            matches!(&attempts[0].outcome, Some(AttemptOutcome::Lost { reason }) if reason.contains("interrupted")),
            "{name}: {attempts:?}"
        );
    }
    drop(first);

    std::fs::write(rig.file("gate"), "").unwrap();
    let mut second = rig.local(4);
    assert_eq!(second.recover(Some(job)).unwrap(), 1);
    assert_eq!(
        second.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Succeeded)
    );
    let store = second.store();
    assert_eq!(outcomes(store, job, "a"), ["succeeded"]);
    assert_eq!(outcomes(store, job, "b"), ["lost", "succeeded"]);
    assert_eq!(outcomes(store, job, "c"), ["lost", "succeeded"]);
    assert_eq!(outcomes(store, job, "d"), ["succeeded"]);
    assert_eq!(
        (runs(&rig, "a"), runs(&rig, "b"), runs(&rig, "d")),
        (1, 2, 1)
    );
}

/// A `sleep 30` in its own process group carrying the marker a local
/// attempt's processes carry, as a crashed driver would leave it.
pub(crate) fn orphan(task: TaskRef, attempt: u32) -> std::process::Child {
    std::process::Command::new("sleep")
        .arg("30")
        .process_group(0)
        .env(ATTEMPT_ENV, attempt_marker(task, attempt))
        .spawn()
        .unwrap()
}

/// Writes the rows a driver leaves when it crashes while `task`'s first
/// attempt runs as `pid` (on this machine).
fn crashed_while_running(store: &mut SqliteStore, task: TaskRef, pid: u32) {
    crashed_while_running_on(store, task, pid, None)
}

/// The same, for an attempt that runs on `node` (`None`: this machine).
pub(crate) fn crashed_while_running_on(
    store: &mut SqliteStore,
    task: TaskRef,
    pid: u32,
    node: Option<&str>,
) {
    let now = SystemClock::now();
    let changes = [
        Change::JobState {
            job: task.job,
            state: JobState::Running,
        },
        Change::Task {
            task,
            state: TaskState::Running,
            attempt: 1,
            failures: 0,
            not_before: 0,
            reason: None,
        },
        Change::AttemptStarted {
            task,
            attempt: 1,
            node: NodeId::LOCAL,
            at: now,
        },
    ];
    store.apply(&changes, now).unwrap();
    store
        .set_attempts_started(&[StartedAttempt {
            task,
            attempt: 1,
            pid,
            node: node.map(str::to_string),
        }])
        .unwrap();
}

#[test]
fn recovery_kills_the_orphan_of_a_crashed_driver_and_reruns_its_task() {
    let rig = Rig::new();
    let mut store = rig.store();
    let spec = JobSpec::new("crashed", vec![logged(&rig, "t")]);
    let now = SystemClock::now();
    let job = store.create_job(None, &spec, None, now).unwrap();
    let other = store
        .create_job(
            None,
            &JobSpec::new("other", vec![logged(&rig, "u")]),
            None,
            now,
        )
        .unwrap();
    let task = TaskRef::new(job, 0);
    let other_task = TaskRef::new(other, 0);
    let mut ours = orphan(task, 1);
    let mut theirs = orphan(other_task, 1);
    crashed_while_running(&mut store, task, ours.id());
    crashed_while_running(&mut store, other_task, theirs.id());
    drop(store);

    let mut driver = rig.local(2);
    assert_eq!(driver.recover(Some(job)).unwrap(), 1);
    let mut status = None;
    let killed = crate::eventually(Duration::from_secs(30), || {
        status = ours.try_wait().unwrap();
        status.is_some()
    });
    assert!(killed, "recover() killed the orphan of job {job}");
    assert_eq!(status.unwrap().signal(), Some(9), "killed by SIGKILL");
    assert!(
        theirs.try_wait().unwrap().is_none(),
        "another job's orphan is left alone"
    );

    assert_eq!(
        driver.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Succeeded)
    );
    let store = driver.store();
    let attempts = attempts_of(store, job, "t");
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(
        attempts[0].outcome,
        Some(AttemptOutcome::Lost {
            reason: "tessera restarted while it ran".into()
        })
    );
    assert_eq!(attempts[1].outcome, Some(AttemptOutcome::Succeeded));
    assert_eq!(runs(&rig, "t"), 1);
    // The other job was not recovered: still running, its attempt still open.
    assert_eq!(store.job(other).unwrap().unwrap().state, JobState::Running);
    let open = store.open_attempts().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].task, other_task);
    assert_eq!(runs(&rig, "u"), 0);

    theirs.kill().unwrap();
    theirs.wait().unwrap();
}

/// The expansion file a planner task copies to `$TESSERA_EXPAND`.
fn expansion_file(rig: &Rig, tasks: &[TaskSpec]) -> TaskSpec {
    let path = rig.file("expansion.json");
    std::fs::write(&path, serde_json::to_vec(tasks).unwrap()).unwrap();
    let script = format!(
        "echo plan >> {}; cp {} \"$TESSERA_EXPAND\"",
        quote(&rig.file("runs")),
        quote(&path)
    );
    TaskSpec::new("plan", sh(&script)).expanding()
}

#[test]
fn expanding_task_adds_tasks_that_run() {
    let rig = Rig::new();
    let added = [
        logged(&rig, "part-0").after("plan"),
        logged(&rig, "part-1").after("plan"),
        logged(&rig, "merge").after("part-*"),
    ];
    let spec = JobSpec::new("expand", vec![expansion_file(&rig, &added)]);
    let mut driver = rig.local(4);
    let job = driver.submit(&spec, None).unwrap();
    assert_eq!(
        driver.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Succeeded)
    );
    let store = driver.store();
    let states = task_states(store, job);
    let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["plan", "part-0", "part-1", "merge"]);
    assert!(states.iter().all(|(_, s)| *s == TaskState::Succeeded));
    let log = std::fs::read_to_string(rig.file("runs")).unwrap();
    let log: Vec<&str> = log.lines().collect();
    assert_eq!((log.len(), log[0], log[3]), (4, "plan", "merge"));
}

/// `tally` depends on `part-*`, which matched only `part-orig` when the job
/// was submitted; `part-1`, added later by expansion, waits for `tally`. If
/// a restart resolved selectors over the whole task list (ignoring batch
/// boundaries), `tally` would also wait for `part-1`: a deadlock that ends
/// with `part-1` timing out and the job failing.
#[test]
fn expansion_survives_a_restart_with_its_batches() {
    let rig = Rig::new();
    let part_1 = format!(
        "echo part-1 >> {runs}; touch {started}; while [ ! -e {done} ]; do sleep 0.02; done",
        runs = quote(&rig.file("runs")),
        started = quote(&rig.file("started-part-1")),
        done = quote(&rig.file("tally-done")),
    );
    let added = [
        gated(&rig, "part-0").after("plan"),
        TaskSpec::new("part-1", sh(&part_1))
            .after("plan")
            .with_time_limit_ms(GATE_LIMIT_MS),
        logged(&rig, "merge").after("part-*"),
    ];
    let tally = format!(
        "echo tally >> {}; touch {}",
        quote(&rig.file("runs")),
        quote(&rig.file("tally-done"))
    );
    let spec = JobSpec::new(
        "expand-restart",
        vec![
            expansion_file(&rig, &added),
            gated(&rig, "part-orig"),
            TaskSpec::new("tally", sh(&tally)).after("part-*"),
        ],
    );

    let mut first = rig.local(4);
    let job = first.submit(&spec, None).unwrap();
    let watcher = interrupt_when(
        first.handle(),
        ["part-orig", "part-0", "part-1"]
            .iter()
            .map(|n| rig.file(&format!("started-{n}")))
            .collect(),
    );
    assert_eq!(first.run_job(job, &mut ()).unwrap(), Exit::Interrupted);
    assert!(watcher.join().unwrap(), "the parts were running");
    let snaps = first.store().load_unfinished().unwrap();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].batch_starts, [0, 3]);
    let names: Vec<&str> = snaps[0]
        .spec
        .tasks
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["plan", "part-orig", "tally", "part-0", "part-1", "merge"]
    );
    assert!(snaps[0].tasks.iter().all(|t| t.state != TaskState::Running));
    drop(first);

    std::fs::write(rig.file("gate"), "").unwrap();
    let mut second = rig.local(4);
    assert_eq!(second.recover(Some(job)).unwrap(), 1);
    assert_eq!(
        second.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Succeeded)
    );
    let store = second.store();
    assert_eq!(store.tasks(job).unwrap().len(), 6, "expanded exactly once");
    assert_eq!(outcomes(store, job, "plan"), ["succeeded"]);
    assert_eq!(runs(&rig, "plan"), 1);
    for name in ["part-orig", "part-0", "part-1"] {
        assert_eq!(outcomes(store, job, name), ["lost", "succeeded"], "{name}");
    }
    assert_eq!(outcomes(store, job, "tally"), ["succeeded"]);
    assert_eq!(outcomes(store, job, "merge"), ["succeeded"]);
}
