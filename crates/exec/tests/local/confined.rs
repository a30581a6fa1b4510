//! Attempts with a reach (every attempt a scheduler starts): their log and
//! working folders are made inside the job's folder through no link its
//! tasks could have left there, and their process is told its reach.

use crate::{sh, Rig};
use std::os::unix::fs::symlink;
use tessera_exec::{ExecEvent, Executor};
use tessera_types::{Grant, Reach, REACH_ENV};

fn confined(rig: &Rig, name: &str, script: &str) -> tessera_exec::StartRequest {
    let mut req = rig.request(name, sh(script));
    req.reach = Reach::new(vec![Grant::write(rig.dir.path()).folder()]);
    req
}

#[test]
fn a_confined_attempt_is_told_its_reach_and_runs_in_its_folders() {
    let mut rig = Rig::new();
    let req = confined(&rig, "env", &format!("printf '%s' \"${REACH_ENV}\""));
    let want = req.reach.to_env();
    rig.exec.start(req);
    let events = rig.until_exit();
    assert!(
        matches!(
            events.last(),
            Some(ExecEvent::Exited { result: Ok(()), .. })
        ),
        "{events:?}"
    );
    assert_eq!(rig.log("env", "stdout"), want);
}

#[test]
fn links_in_the_job_folder_never_lead_logs_or_workdirs_out() {
    let outside = tempfile::tempdir().unwrap();
    // The logs folder replaced by a link to somewhere else.
    let mut rig = Rig::new();
    symlink(outside.path(), rig.dir.path().join("logs")).unwrap();
    rig.exec.start(confined(&rig, "evil", "echo hi"));
    let events = rig.until_exit();
    let Some(ExecEvent::Exited { result: Err(e), .. }) = events.last() else {
        panic!("{events:?}")
    };
    assert!(
        e.contains("log directory") && e.contains("symbolic link"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written there"
    );

    // The folder above the workdir replaced by a link.
    let mut rig = Rig::new();
    symlink(outside.path(), rig.dir.path().join("work")).unwrap();
    rig.exec.start(confined(&rig, "evil", "echo hi"));
    let events = rig.until_exit();
    let Some(ExecEvent::Exited { result: Err(e), .. }) = events.last() else {
        panic!("{events:?}")
    };
    assert!(
        e.contains("working directory") && e.contains("symbolic link"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "no workdir made there"
    );

    // A log file replaced by a link to a file elsewhere: not truncated.
    let mut rig = Rig::new();
    let target = outside.path().join("precious");
    std::fs::write(&target, "keep me").unwrap();
    std::fs::create_dir_all(rig.dir.path().join("logs")).unwrap();
    symlink(&target, rig.dir.path().join("logs/evil.2.stdout.log")).unwrap();
    rig.exec.start(confined(&rig, "evil", "echo hi"));
    let events = rig.until_exit();
    assert!(
        matches!(
            events.last(),
            Some(ExecEvent::Exited { result: Err(_), .. })
        ),
        "{events:?}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
}
