//! Kill, suspend/resume, drop, recovery after a restart, and the errors a
//! person sees when something is missing.

use crate::harness::{docker, engine_present, eventually, exists, harness, instance, result};
use std::sync::Arc;
use std::time::Duration;
use tessera_docker::{DockerConfig, DockerExecutor, LABEL_INSTANCE};
use tessera_exec::{ExecEvent, Executor};
use tessera_types::{Action, JobId, TaskRef};

const KILLED: &str = "killed by signal 9 (SIGKILL)";

fn task(index: u32) -> TaskRef {
    TaskRef::new(JobId(1), index)
}

fn paused(container: &str) -> bool {
    docker(&["inspect", "-f", "{{.State.Paused}}", container]) == "true"
}

#[test]
fn kill_ends_a_sleeping_container_quickly_and_removes_it() {
    let Some(mut h) = harness("kill") else { return };
    // An hour's sleep: only the kill ends it within the test.
    h.exec
        .start(h.request(0, "sleep", Action::command(["sleep", "3600"])));
    h.started();
    h.exec.kill(task(0), 1);
    let events = h.until_exit();
    assert_eq!(result(&events), Err(KILLED.into()));
    assert!(!exists(&h.container(0, 1)));
}

#[test]
fn a_kill_right_after_start_still_ends_the_attempt_and_leaves_nothing() {
    let Some(mut h) = harness("killearly") else {
        return;
    };
    h.exec
        .start(h.request(0, "sleep", Action::command(["sleep", "3600"])));
    h.exec.kill(task(0), 1);
    let events = h.until_exit();
    assert_eq!(result(&events), Err(KILLED.into()));
    assert!(!exists(&h.container(0, 1)));
}

#[test]
fn suspend_pauses_and_resume_unpauses_the_container() {
    let Some(mut h) = harness("pause") else {
        return;
    };
    // It runs until `go` appears in its working directory.
    let go = h.workdir("pause").join("go");
    let action = Action::script("while [ ! -e go ]; do sleep 0.05; done; echo done");
    h.exec.start(h.request(0, "pause", action));
    h.started();
    let container = h.container(0, 1);
    h.exec.suspend(task(0), 1);
    assert!(eventually(Duration::from_secs(30), || paused(&container)));
    // Frozen: even with `go` there it cannot end (a window for what must
    // not happen; a slow machine only shortens it).
    std::fs::write(&go, "").unwrap();
    assert!(h.events.recv_timeout(Duration::from_secs(2)).is_err());
    assert!(paused(&container));
    h.exec.resume(task(0), 1);
    let events = h.until_exit();
    assert_eq!(result(&events), Ok(()));
    assert_eq!(h.log("pause", "stdout"), "done\n");
}

#[test]
fn a_suspended_attempt_can_still_be_killed() {
    let Some(mut h) = harness("pausekill") else {
        return;
    };
    h.exec
        .start(h.request(0, "sleep", Action::command(["sleep", "3600"])));
    h.started();
    h.exec.suspend(task(0), 1);
    let container = h.container(0, 1);
    assert!(eventually(Duration::from_secs(30), || paused(&container)));
    h.exec.kill(task(0), 1);
    let events = h.until_exit();
    assert_eq!(result(&events), Err(KILLED.into()));
    assert!(!exists(&container));
}

#[test]
fn dropping_the_executor_kills_and_reports_its_attempts() {
    let Some(mut h) = harness("drop") else { return };
    h.exec
        .start(h.request(0, "sleep", Action::command(["sleep", "3600"])));
    h.started();
    let container = h.container(0, 1);
    let (exec, events) = (h.exec, h.events);
    // The drop ends the attempt (killed) before it returns.
    drop(exec);
    match events.recv_timeout(Duration::from_secs(1)) {
        Ok(ExecEvent::Exited { result, .. }) => assert_eq!(result, Err(KILLED.into())),
        other => panic!("expected Exited, got {other:?}"),
    }
    assert!(!exists(&container));
}

#[test]
fn recover_removes_lost_and_stopped_leftovers_and_keeps_the_rest() {
    if !engine_present() {
        return;
    }
    let image = crate::harness::image();
    let ours = instance("recover");
    let theirs = instance("recover-other");
    let leftover = |name: &str, inst: &str, index: u32, cmd: &[&str]| {
        let name = format!("{ours}-{name}");
        let mut args = vec!["run", "-d", "--name", &name];
        let labels = [
            format!("{LABEL_INSTANCE}={inst}"),
            "tessera.job=5".to_string(),
            format!("tessera.task={index}"),
            "tessera.attempt=1".to_string(),
        ];
        for label in &labels {
            args.extend(["--label", label]);
        }
        args.push(image);
        args.extend(cmd);
        docker(&args);
        name
    };
    let lost = leftover("lost", &ours, 0, &["sleep", "60"]);
    let stopped = leftover("stopped", &ours, 1, &["true"]);
    let alive = leftover("alive", &ours, 2, &["sleep", "60"]);
    let other = leftover("other", &theirs, 0, &["sleep", "60"]);
    assert!(eventually(Duration::from_secs(10), || {
        docker(&["inspect", "-f", "{{.State.Status}}", &stopped]) == "exited"
    }));

    let config = DockerConfig::new(ours.clone(), Arc::new(|_| {}));
    let mut exec = DockerExecutor::connect(config).unwrap();
    let recovery = exec.recover(&[(TaskRef::new(JobId(5), 0), 1)]).unwrap();
    let mut removed: Vec<_> = recovery
        .removed
        .iter()
        .map(|l| l.container.clone())
        .collect();
    removed.sort();
    assert_eq!(removed, [lost.as_str(), stopped.as_str()]);
    let kept: Vec<_> = recovery.kept.iter().map(|l| l.container.clone()).collect();
    assert_eq!(kept, [alive.as_str()]);
    assert_eq!(
        recovery.kept[0].attempt,
        Some((TaskRef::new(JobId(5), 2), 1))
    );
    assert!(!exists(&lost) && !exists(&stopped));
    assert!(
        exists(&alive) && exists(&other),
        "others' containers are not touched"
    );
    docker(&["rm", "-f", &alive, &other]);
}

#[test]
fn a_missing_image_is_named_with_how_to_build_it() {
    let Some(mut h) = harness("noimage") else {
        return;
    };
    let mut req = h.request(0, "noimage", Action::command(["true"]));
    req.image = Some("tessera-missing:none".into());
    h.exec.start(req);
    let events = h.until_exit();
    assert_eq!(
        events.len(),
        1,
        "no Started without a container: {events:?}"
    );
    let err = result(&events).unwrap_err();
    assert!(
        err.starts_with("image tessera-missing:none is not on the Docker engine")
            && err.contains("deploy/image/build-rootfs.sh")
            && !err.contains('\n'),
        "{err}"
    );
    let err = h.exec.check_image("tessera-missing:none").unwrap_err();
    assert!(err.to_string().contains("build-rootfs.sh"), "{err}");
    h.exec.check_image(crate::harness::image()).unwrap();
}

#[test]
fn a_missing_program_fails_like_a_local_spawn() {
    let Some(mut h) = harness("noprogram") else {
        return;
    };
    h.exec
        .start(h.request(0, "missing", Action::command(["no-such-program", "x"])));
    let err = result(&h.until_exit()).unwrap_err();
    let expected = format!(
        "could not start `no-such-program`: executable file not found in $PATH (in image {})",
        crate::harness::image()
    );
    assert_eq!(err, expected);
    assert!(!exists(&h.container(0, 1)));
}

#[test]
fn a_noop_exits_at_once_without_a_container() {
    let Some(mut h) = harness("noop") else { return };
    h.exec.start(h.request(0, "noop", Action::Noop));
    let events = h.until_exit();
    assert_eq!(events.len(), 1);
    assert_eq!(result(&events), Ok(()));
}

#[test]
fn an_unreachable_engine_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    // A socket nobody listens on any more, and no socket at all.
    let dead = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    for (host, why) in [
        (format!("unix://{}", dead.display()), "Connection refused"),
        (
            format!("unix://{}/none.sock", dir.path().display()),
            "not found",
        ),
    ] {
        let mut config = DockerConfig::new("unreachable", Arc::new(|_| {}));
        config.host = host.clone();
        let err = DockerExecutor::connect(config)
            .err()
            .expect("no engine there")
            .to_string();
        assert!(
            err.starts_with(&format!("cannot reach the Docker engine at {host}: "))
                && err.contains(why)
                && !err.contains('\n'),
            "{err}"
        );
    }
}
