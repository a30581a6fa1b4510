//! Tasks running as their project's own user (`task_uids`): the tasks of a
//! job share files through its directory, and cannot touch the driver's
//! own files.

use crate::{quote, sh, task_states, Rig};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use tessera_driver::Exit;
use tessera_exec::TaskUids;
use tessera_types::{JobSpec, JobState, TaskSpec, TaskState};

#[test]
fn tasks_running_as_another_user_share_the_job_directory_but_not_the_logs() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        tessera_testkit::env::skip(
            "running tasks as another user needs root",
            "run the tests as root (CI does)",
        );
        return;
    }
    let uids = TaskUids {
        first: 250_000,
        last: 250_010,
    };
    uids.check().unwrap();
    // A job of no project runs as the range's first uid.
    let nobody = uids.user_of(None).unwrap();
    let rig = Rig::new();
    let top = rig.db();
    let top = top.parent().unwrap();
    std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ids = rig.file("ids");
    std::fs::set_permissions(rig.file(""), std::fs::Permissions::from_mode(0o777)).unwrap();
    let write = format!(
        "id -u >> {ids}; echo part > \"$TESSERA_JOB_DIR/part\"",
        ids = quote(&ids)
    );
    let read = format!(
        "id -u >> {ids}; cat \"$TESSERA_JOB_DIR/part\" >> {ids}; \
         mv \"$TESSERA_JOB_DIR/logs\" \"$TESSERA_JOB_DIR/gone\" 2>/dev/null && echo moved >> {ids}; \
         touch {db} 2>/dev/null && echo touched >> {ids}; true",
        ids = quote(&ids),
        db = quote(&rig.db()),
    );
    let spec = JobSpec::new(
        "shared",
        vec![
            TaskSpec::new("write", sh(&write)),
            TaskSpec::new("read", sh(&read)).after("write"),
        ],
    );
    let mut driver = rig.local_as(2, Some(uids));
    let job = driver.submit(&spec, None).unwrap();
    assert_eq!(
        driver.run_job(job, &mut ()).unwrap(),
        Exit::Finished(JobState::Succeeded)
    );
    assert_eq!(
        task_states(driver.store(), job),
        [
            ("write".to_string(), TaskState::Succeeded),
            ("read".to_string(), TaskState::Succeeded)
        ]
    );
    let uid = nobody.uid;
    assert_eq!(
        std::fs::read_to_string(&ids).unwrap(),
        format!("{uid}\n{uid}\npart\n"),
        "both ran as the job's task user; the logs stayed; the database was not touched"
    );
    let job_dir = driver.job_dir(job);
    let meta = std::fs::metadata(&job_dir).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.gid()), (0o1770, nobody.gid));
    assert_eq!(std::fs::metadata(job_dir.join("logs")).unwrap().uid(), 0);
}
