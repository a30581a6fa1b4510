//! One driver, one job: what runs, in what order, and what the store says.

use crate::{attempts_of, eventually, process_exists, quote, sh, task_states, Rig};
use std::time::{Duration, Instant};
use tessera_core::SpecError;
use tessera_driver::{DriverError, Exit};
use tessera_store::Store;
use tessera_types::{AttemptOutcome, JobSpec, JobState, TaskSpec, TaskState};

/// A script that logs its task's name to `order` and its environment to
/// `env.txt` in its working directory.
fn reporting(rig: &Rig, busy: bool) -> String {
    let spin = if busy {
        // About 0.1 s of CPU in dash.
        "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; "
    } else {
        ""
    };
    format!(
        "{spin}printf '%s\\n' \"$TESSERA_JOB_ID\" \"$TESSERA_TASK_NAME\" \"$TESSERA_WORKDIR\" \
         \"$(pwd -P)\" > env.txt && echo \"$TESSERA_TASK_NAME\" >> {}",
        quote(&rig.file("order"))
    )
}

#[test]
fn dag_of_commands_runs_in_dependency_order_with_usage_and_env() {
    let rig = Rig::new();
    let mut driver = rig.local(4);
    let spec = JobSpec::new(
        "dag",
        vec![
            TaskSpec::new("a", sh(&reporting(&rig, true))),
            TaskSpec::new("b", sh(&reporting(&rig, false))).after("a"),
            TaskSpec::new("c", sh(&reporting(&rig, false))).after("a"),
            TaskSpec::new("d", sh(&reporting(&rig, false)))
                .after("b*")
                .after("c"),
        ],
    );
    let job = driver.submit(&spec, None).unwrap();
    assert_eq!(
        driver.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Succeeded)
    );

    let store = driver.store();
    let record = store.job(job).unwrap().unwrap();
    assert_eq!(record.state, JobState::Succeeded);
    assert!(record.finished_at.is_some());
    for (name, state) in task_states(store, job) {
        assert_eq!(state, TaskState::Succeeded, "task {name}");
        let attempts = attempts_of(store, job, &name);
        assert_eq!(attempts.len(), 1, "task {name}: {attempts:?}");
        assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Succeeded));
        assert!(attempts[0].ended_at.is_some());
        assert!(attempts[0].pid.is_some_and(|p| p > 1), "pid recorded");

        let workdir = rig
            .workspace()
            .join("jobs")
            .join(job.to_string())
            .join("tasks")
            .join(&name);
        let env = std::fs::read_to_string(workdir.join("env.txt")).unwrap();
        let lines: Vec<&str> = env.lines().collect();
        let real = workdir.canonicalize().unwrap();
        assert_eq!(
            lines,
            [
                job.to_string().as_str(),
                name.as_str(),
                workdir.to_str().unwrap(),
                real.to_str().unwrap()
            ],
            "task {name}'s environment and working directory"
        );
    }
    let busy = attempts_of(store, job, "a")[0].usage.unwrap();
    assert!(busy.cpu_ms > 0, "a busy command used cpu: {busy:?}");
    assert!(busy.wall_ms > 0, "{busy:?}");

    let order = std::fs::read_to_string(rig.file("order")).unwrap();
    let order: Vec<&str> = order.lines().collect();
    assert_eq!(order.len(), 4, "{order:?}");
    assert_eq!(order[0], "a");
    assert_eq!(order[3], "d");
    let mut middle = order[1..3].to_vec();
    middle.sort_unstable();
    assert_eq!(middle, ["b", "c"]);
}

#[test]
fn failed_attempt_is_retried_and_its_exit_status_recorded() {
    let rig = Rig::new();
    let mut driver = rig.local(2);
    let marker = quote(&rig.file("tried"));
    let script =
        format!("if [ -e {marker} ]; then exit 0; fi; touch {marker}; echo boom >&2; exit 3");
    let spec = JobSpec::new(
        "retry",
        vec![TaskSpec::new("flaky", sh(&script)).with_retries(1, 10)],
    );
    let job = driver.submit(&spec, None).unwrap();
    assert_eq!(
        driver.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Succeeded)
    );

    let store = driver.store();
    let task = &store.tasks(job).unwrap()[0];
    assert_eq!(
        (task.state, task.attempt, task.failures),
        (TaskState::Succeeded, 2, 1)
    );
    let attempts = attempts_of(store, job, "flaky");
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    match &attempts[0].outcome {
        Some(AttemptOutcome::Failed { message }) => {
            assert_eq!(message, "exited with status 3: boom")
        }
        other => panic!("first attempt should have failed: {other:?}"),
    }
    assert_eq!(attempts[1].outcome, Some(AttemptOutcome::Succeeded));
    assert!(attempts[1].started_at >= attempts[0].ended_at.unwrap() + 10);
}

#[test]
fn failure_without_retries_fails_the_job_and_skips_dependents() {
    let rig = Rig::new();
    let mut driver = rig.local(2);
    let spec = JobSpec::new(
        "fails",
        vec![
            TaskSpec::new("bad", sh("exit 7")),
            TaskSpec::new("next", sh(&format!("touch {}", quote(&rig.file("ran"))))).after("bad"),
        ],
    );
    let job = driver.submit(&spec, None).unwrap();
    assert_eq!(
        driver.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Failed)
    );
    let store = driver.store();
    assert_eq!(
        task_states(store, job),
        [
            ("bad".to_string(), TaskState::Failed),
            ("next".to_string(), TaskState::Skipped)
        ]
    );
    assert!(attempts_of(store, job, "next").is_empty());
    assert!(!rig.file("ran").exists());
    let bad = &store.tasks(job).unwrap()[0];
    assert_eq!(bad.reason.as_deref(), Some("failed: exited with status 7"));
}

#[test]
fn time_limit_kills_a_long_command() {
    let rig = Rig::new();
    let mut driver = rig.local(2);
    let pidfile = rig.file("pid");
    // Far longer than any test run: only the time limit ends it.
    let script = format!("echo $$ > {}; exec sleep 3600", quote(&pidfile));
    let spec = JobSpec::new(
        "slow",
        vec![TaskSpec::new("sleeper", sh(&script)).with_time_limit_ms(300)],
    );
    let job = driver.submit(&spec, None).unwrap();
    let exit = driver.run_job(job, &mut ()).unwrap();
    assert_eq!(exit, Exit::Finished(JobState::Failed));

    let store = driver.store();
    let task = &store.tasks(job).unwrap()[0];
    assert_eq!(task.state, TaskState::Failed);
    assert_eq!(task.reason.as_deref(), Some("killed: time limit reached"));
    let attempts = attempts_of(store, job, "sleeper");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, Some(AttemptOutcome::TimedOut));
    let wall = attempts[0].usage.unwrap().wall_ms;
    // The deadline counts from the turn that started the attempt (in whole
    // milliseconds), the wall time from the spawn: a little under the limit
    // at least (the kill never comes early); at most, far from the sleep's
    // own end (a bound on a hang, not a speed requirement).
    assert!((250..600_000).contains(&wall), "wall_ms {wall}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !process_exists(pid),
        "the sleep {pid} was killed and reaped"
    );
}

#[test]
fn cancel_from_another_thread_kills_the_running_command() {
    let rig = Rig::new();
    let mut driver = rig.local(2);
    let pidfile = rig.file("pid");
    // Far longer than any test run: only the cancel ends it.
    let script = format!("echo $$ > {}; exec sleep 3600", quote(&pidfile));
    let spec = JobSpec::new(
        "cancel",
        vec![
            TaskSpec::new("long", sh(&script)),
            TaskSpec::new("after", sh("true")).after("long"),
        ],
    );
    let job = driver.submit(&spec, None).unwrap();
    let handle = driver.handle();
    let watched = pidfile.clone();
    let canceller = std::thread::spawn(move || {
        let mut pid = None;
        eventually(Duration::from_secs(60), || {
            pid = std::fs::read_to_string(&watched)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            pid.is_some()
        });
        handle.cancel(job);
        (pid, Instant::now())
    });
    let exit = driver.run_job(job, &mut ()).unwrap();
    let (pid, cancelled_at) = canceller.join().unwrap();
    let pid = pid.expect("the command started");
    assert_eq!(exit, Exit::Finished(JobState::Cancelled));
    // A bound on a hang, far from the sleep's own end.
    let took = cancelled_at.elapsed();
    assert!(took < Duration::from_secs(600), "cancel took {took:?}");
    assert!(
        !process_exists(pid),
        "the sleep {pid} was killed and reaped"
    );

    let store = driver.store();
    assert_eq!(store.job(job).unwrap().unwrap().state, JobState::Cancelled);
    assert_eq!(
        task_states(store, job),
        [
            ("long".to_string(), TaskState::Cancelled),
            ("after".to_string(), TaskState::Cancelled)
        ]
    );
    let attempts = attempts_of(store, job, "long");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Cancelled));
    assert!(store.open_attempts().unwrap().is_empty());
}

#[test]
fn selector_matching_nothing_is_refused_before_anything_is_written() {
    let rig = Rig::new();
    let mut driver = rig.in_process(2);
    let spec = JobSpec::new(
        "typo",
        vec![
            TaskSpec::new("encode-1", tessera_types::Action::Noop),
            TaskSpec::new("merge", tessera_types::Action::Noop).after("enocde-*"),
        ],
    );
    let err = driver.submit(&spec, Some("typo-key")).unwrap_err();
    assert!(
        matches!(err, DriverError::Spec(SpecError::NoMatch { .. })),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "invalid job: task \"merge\": dependency \"enocde-*\" matches no task"
    );
    let store = driver.store();
    assert!(store.recent_jobs(10).unwrap().is_empty());
    assert!(store.find_job_by_key("typo-key").unwrap().is_none());
    assert!(store.load_unfinished().unwrap().is_empty());
    assert!(driver.scheduler().is_idle());
}
