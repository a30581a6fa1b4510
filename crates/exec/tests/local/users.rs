//! Attempts running as another user (a project's task user): who they
//! are, what they may write, and what the server keeps.

use crate::{sh, Rig};
use std::path::Path;
use tessera_exec::{ExecEvent, Executor, RunAs, Spawner};
use tessera_types::Action;

/// `nobody`, when this process may run tasks as it (as root). Otherwise
/// `None` after saying why the test is skipped, or a failure under CI
/// (`tessera_testkit::env`), which runs as root.
fn nobody() -> Option<RunAs> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        tessera_testkit::env::skip(
            "running tasks as another user needs root",
            "run the tests as root (CI does)",
        );
        return None;
    }
    Some(RunAs::resolve("nobody").expect("the nobody user"))
}

#[test]
fn attempts_run_as_the_configured_user_in_a_workdir_of_their_own() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(user) = nobody() else {
        return;
    };
    assert_ne!(user.uid, 0);
    let mut rig = Rig::with(Some(user.clone()));
    // The rig's directory stands for the server's data directory: reachable
    // by everyone, writable by the server only, holding its database.
    let data = rig.dir.path().to_path_buf();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("state.db"), "server state").unwrap();
    let script = format!(
        "id -u; id -g; \
         if touch {data}/intruder 2>/dev/null; then echo wrote-data-dir; fi; \
         if echo x >> {data}/state.db 2>/dev/null; then echo wrote-database; fi; \
         touch mine && echo wrote-workdir; echo oops >&2; exit 2",
        data = data.display()
    );
    let req = rig.request("who", sh(&script));
    let workdir = req.workdir.clone();
    rig.exec.start(req);
    let events = rig.until_exit();
    assert!(
        matches!(events.last(), Some(ExecEvent::Exited { result: Err(e), .. }) if e == "exited with status 2: oops"),
        "{events:?}"
    );
    assert_eq!(
        rig.log("who", "stdout"),
        format!("{}\n{}\nwrote-workdir\n", user.uid, user.gid)
    );
    assert!(!data.join("intruder").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("state.db")).unwrap(),
        "server state"
    );
    let owner = |p: &Path| std::fs::metadata(p).unwrap().uid();
    assert_eq!(owner(&workdir), user.uid, "the workdir is the user's");
    assert_eq!(owner(&workdir.join("mine")), user.uid);
    let log = data.join("logs").join("who.2.stderr.log");
    assert_eq!(owner(&log), 0, "logs stay the server's");
}

#[test]
fn ops_run_as_the_configured_user_too() {
    use std::os::unix::fs::PermissionsExt;
    let Some(user) = nobody() else {
        return;
    };
    // `sh op <name>` runs the script `op` in the working directory.
    let mut rig = Rig::with_program(Some(user.clone()), Spawner::start(), "/bin/sh");
    let dir = rig.dir.path().to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let req = rig.request("probe", Action::op("probe", ["x"]));
    std::fs::create_dir_all(&req.workdir).unwrap();
    std::fs::write(req.workdir.join("op"), "echo \"$1 $2\"; id -u\n").unwrap();
    rig.exec.start(req);
    let events = rig.until_exit();
    assert!(
        matches!(
            events.last(),
            Some(ExecEvent::Exited { result: Ok(()), .. })
        ),
        "{events:?}"
    );
    assert_eq!(
        rig.log("probe", "stdout"),
        format!("probe x\n{}\n", user.uid)
    );
}

#[test]
fn a_workdir_the_user_cannot_reach_fails_the_start_in_one_line() {
    let Some(user) = nobody() else {
        return;
    };
    let mut rig = Rig::with(Some(user));
    let closed = std::os::unix::fs::PermissionsExt::from_mode(0o700);
    std::fs::set_permissions(rig.dir.path(), closed).unwrap();
    let req = rig.request("shut-out", sh("true"));
    let workdir = req.workdir.clone();
    rig.exec.start(req);
    let events = rig.until_exit();
    let want = format!(
        "could not start `sh`: cannot enter its working directory {}: Permission denied",
        workdir.display()
    );
    assert!(
        matches!(&events[..], [ExecEvent::Exited { result: Err(e), .. }] if *e == want),
        "{events:?}"
    );
    let err = user_check(&rig);
    assert!(err.contains("closed to it"), "{err}");
}

/// What the server's start-up check says of the rig's directory.
fn user_check(rig: &Rig) -> String {
    let user = RunAs::resolve("nobody").unwrap();
    user.check_reach(&rig.dir.path().join("work"))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_shared_directory_takes_the_users_files_but_keeps_the_servers() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(user) = nobody() else {
        return;
    };
    let mut rig = Rig::with(Some(user.clone()));
    let root = rig.dir.path().to_path_buf();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let job = root.join("jobs/1");
    user.share(&job).unwrap();
    let meta = std::fs::metadata(&job).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.gid()), (0o1770, user.gid));
    std::fs::create_dir(job.join("logs")).unwrap();
    let mut req = rig.request(
        "share",
        sh("echo part > \"$JOB/part\" && echo wrote-part; \
         if mv \"$JOB/logs\" \"$JOB/moved\" 2>/dev/null; then echo moved-logs; fi; \
         if rmdir \"$JOB/logs\" 2>/dev/null; then echo removed-logs; fi"),
    );
    req.env.insert("JOB".into(), job.display().to_string());
    rig.exec.start(req);
    let events = rig.until_exit();
    assert!(
        matches!(
            events.last(),
            Some(ExecEvent::Exited { result: Ok(()), .. })
        ),
        "{events:?}"
    );
    assert_eq!(rig.log("share", "stdout"), "wrote-part\n");
    assert!(job.join("logs").is_dir());
    assert_eq!(std::fs::metadata(job.join("part")).unwrap().uid(), user.uid);
}
