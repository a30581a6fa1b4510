//! Specs and events written to hurt: each test performs the attack through
//! the real driver and a real SQLite file, and checks it is refused or
//! bounded and that the job still runs (or ends) as it should.

use crate::{attempts_of, quote, sh, Rig};
use tessera_core::{SpecError, MAX_LOST};
use tessera_driver::{attempt_log_path, Driver, DriverError, Exit};
use tessera_exec::{EventSink, ExecEvent, Executor, StartRequest};
use tessera_store::{SqliteStore, Store};
use tessera_types::{
    Action, ArraySpec, AttemptNo, AttemptOutcome, JobSpec, JobState, TaskRef, TaskSpec, TaskState,
};

const N: u64 = 3000;

/// Two arrays of 3,000 no-ops, the second waiting for all of the first:
/// 9,000,000 edges (and a 381 MiB database) when each dependency was an
/// edge. Checked for both spellings of the dependency.
#[test]
fn array_on_array_fan_in_stays_linear_and_runs_every_task_once() {
    for dep in ["a", "a-*"] {
        let rig = Rig::new();
        let mut driver = rig.in_process(8);
        let spec = JobSpec::new(
            "attack",
            vec![
                TaskSpec::new("a", Action::Noop).with_array(ArraySpec::count(N)),
                TaskSpec::new("b", Action::Noop)
                    .with_array(ArraySpec::count(N))
                    .after(dep),
            ],
        );
        let job = driver.submit(&spec, None).unwrap();
        // One fan-in: 3,000 members, 3,000 waiters.
        let links = driver.scheduler().dependency_links(job);
        assert_eq!(links, Some(2 * N as usize), "{dep}: not N² = {}", N * N);
        assert_eq!(
            driver.run_job(job, &mut ()).unwrap(),
            Exit::Finished(JobState::Succeeded)
        );

        let store = driver.store();
        let tasks = store.tasks(job).unwrap();
        assert_eq!(tasks.len(), 2 * N as usize);
        let deps: usize = tasks.iter().map(|t| t.spec.deps.len()).sum();
        assert_eq!(
            deps, N as usize,
            "{dep}: one stored selector per element of b"
        );
        let attempts = store.attempts(job).unwrap();
        assert_eq!(attempts.len(), 2 * N as usize, "{dep}: each task ran once");
        let a_done = attempts
            .iter()
            .filter(|a| a.task.index < N as u32)
            .filter_map(|a| a.ended_at)
            .max()
            .unwrap();
        for a in attempts.iter().filter(|a| a.task.index >= N as u32) {
            assert_eq!(a.outcome, Some(AttemptOutcome::Succeeded));
            assert!(a.started_at >= a_done, "{dep}: b started before a ended");
        }
        let db = std::fs::metadata(rig.db()).unwrap().len();
        assert!(db < 32 << 20, "{dep}: the database holds {db} bytes");
    }
}

/// `a/b` and `a_b` (and `a b`) were one folder and one log (`a_b`); here
/// `a/b` comes from an expansion, after `a_b` and `a b` were submitted.
#[test]
fn task_names_that_sanitise_alike_get_their_own_folder_and_log() {
    let rig = Rig::new();
    let mut driver = rig.local(3);
    let script = "echo \"$TESSERA_TASK_NAME\" > mine && echo \"out of $TESSERA_TASK_NAME\"";
    let added = vec![TaskSpec::new("a/b", sh(script))];
    let expansion = rig.file("expansion.json");
    std::fs::write(&expansion, serde_json::to_vec(&added).unwrap()).unwrap();
    let plan = format!("cp {} \"$TESSERA_EXPAND\"", quote(&expansion));
    let tasks = vec![
        TaskSpec::new("a_b", sh(script)),
        TaskSpec::new("a b", sh(script)),
        TaskSpec::new("plan", sh(&plan)).expanding(),
    ];
    let job = driver.submit(&JobSpec::new("names", tasks), None).unwrap();
    assert_eq!(
        driver.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Succeeded)
    );
    let tasks_dir = rig
        .workspace()
        .join("jobs")
        .join(job.to_string())
        .join("tasks");
    let mut folders: Vec<String> = std::fs::read_dir(&tasks_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert_eq!(folders, ["a%20b", "a%2Fb", "a_b", "plan"]);
    for name in ["a/b", "a_b", "a b"] {
        let folder = tasks_dir.join(tessera_types::folder_name(name));
        let mine = std::fs::read_to_string(folder.join("mine")).unwrap();
        assert_eq!(mine.trim(), name, "{}", quote(&folder));
        let log = attempt_log_path(&rig.workspace(), job, name, 1, "stdout");
        let out = std::fs::read_to_string(&log).unwrap();
        assert_eq!(out.trim(), format!("out of {name}"), "{}", log.display());
    }
}

/// An executor whose every attempt is lost (its node went away).
struct Losing(EventSink);

impl Executor for Losing {
    fn start(&mut self, req: StartRequest) {
        (self.0)(ExecEvent::Lost {
            task: req.task,
            attempt: req.attempt,
            reason: "node gone".into(),
        });
    }
    fn kill(&mut self, _task: TaskRef, _attempt: AttemptNo) {}
    fn kill_all(&mut self) {}
}

/// A lost attempt costs no retry, but a task lost `MAX_LOST` times fails.
#[test]
fn a_task_lost_max_lost_times_fails_with_the_reason() {
    let rig = Rig::new();
    let mut driver = Driver::new(rig.store(), Losing, rig.config(2));
    let spec = JobSpec::new("lost", vec![TaskSpec::new("x", Action::Noop)]);
    let job = driver.submit(&spec, None).unwrap();
    assert_eq!(
        driver.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Failed)
    );
    let store = driver.store();
    let task = &store.tasks(job).unwrap()[0];
    assert_eq!(task.state, TaskState::Failed);
    assert_eq!(task.failures, 0, "losses are not failures");
    assert_eq!(
        task.reason.as_deref(),
        Some("lost: node gone (10 attempts lost; giving up)")
    );
    let attempts = attempts_of(store, job, "x");
    assert_eq!(attempts.len(), MAX_LOST as usize);
    assert!(attempts
        .iter()
        .all(|a| matches!(a.outcome, Some(AttemptOutcome::Lost { .. }))));
}

/// A move the task state machine refuses (none of the driver's events can
/// make one: a test hook asks for it as the core's own code would) stops
/// the job, which ends failed with the reason in the store, in debug and
/// release builds alike.
#[test]
fn an_illegal_state_move_fails_the_job_with_the_reason_in_the_store() {
    let rig = Rig::new();
    let mut driver = rig.in_process(1);
    let spec = JobSpec::new(
        "fault",
        vec![
            TaskSpec::new("a", Action::Noop),
            TaskSpec::new("b", Action::Noop).after("a"),
        ],
    );
    let job = driver.submit(&spec, None).unwrap();
    let other = driver
        .submit(
            &JobSpec::new("other", vec![TaskSpec::new("c", Action::Noop)]),
            None,
        )
        .unwrap();
    // b waits for a: waiting -> running is not a move the scheduler makes.
    driver
        .force_move_for_tests(TaskRef::new(job, 1), TaskState::Running)
        .unwrap();
    assert_eq!(
        driver.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Failed)
    );
    let store = driver.store();
    assert_eq!(store.job(job).unwrap().unwrap().state, JobState::Failed);
    let b = &store.tasks(job).unwrap()[1];
    assert_eq!(b.state, TaskState::Cancelled);
    let reason = b.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("stopped by an internal error of the scheduler (task \"b\"")
            && reason.contains("illegal transition from waiting to running")
            && reason.contains("this is a bug in Tessera"),
        "{reason}"
    );
    // The other job is not touched.
    assert_eq!(
        driver.run_job(other, &mut ()).unwrap(),
        Exit::Finished(JobState::Succeeded)
    );
}

/// `time_limit_ms: 0` killed every attempt at once; it is refused before
/// anything is stored.
#[test]
fn a_zero_time_limit_is_refused_before_anything_is_written() {
    let rig = Rig::new();
    let mut driver = rig.in_process(1);
    let task = TaskSpec::new("t", Action::Noop).with_time_limit_ms(0);
    let err = driver
        .submit(&JobSpec::new("zero", vec![task]), Some("zero"))
        .unwrap_err();
    assert!(
        matches!(err, DriverError::Spec(SpecError::ZeroTimeLimit(_))),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "invalid job: task \"t\": time_limit_ms must be at least 1 (omit it for no limit)"
    );
    let store: &SqliteStore = driver.store();
    assert!(store.recent_jobs(10).unwrap().is_empty());
    assert!(store.find_job_by_key("zero").unwrap().is_none());
}
