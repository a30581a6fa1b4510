//! The spawner: attempts measured as themselves however big the program
//! is, a spawner that dies failing attempts instead of hanging them, and
//! one that ends with its executor.

use crate::{alive, read_pid, sh, wait_for, Rig, TIMEOUT};
use std::os::fd::AsRawFd;
use std::path::Path;
use tessera_exec::{ExecEvent, Executor, Spawner};

/// Peak memory is the attempt's own, not its parent's: a tiny shell run from
/// a process holding ~200 MB must report a few MB.
///
/// Linux folds the memory a process starts with into its `maxrss`: a child
/// forked from a big process starts with its resident set, and
/// `vfork`/`posix_spawn`/`clone(CLONE_VM)` children even with its *peak*
/// (measured on 6.18: all four report ~205 MB for `/bin/true` run directly
/// from this process holding 200 MB). Attempts are forked by a spawner that
/// was started while the program was small (as `tessera server` does first
/// thing), so they report their own figure however big the program grows.
#[test]
fn peak_memory_is_the_attempts_own_not_the_parents() {
    let spawner = Spawner::start().unwrap();
    let mut ballast = vec![0u8; 200 << 20];
    for page in ballast.chunks_mut(4096) {
        page[0] = 1;
    }
    let mut rig = Rig::with_spawner(None, Ok(spawner));
    let (result, usage, _) = rig.run("small", sh("true"));
    assert_eq!(result, Ok(()));
    assert!(
        usage.max_rss_kb < 50 << 10,
        "a shell running `true` peaked at {} KB",
        usage.max_rss_kb
    );
    // And a big attempt is measured as big.
    let big = "head -c 100000000 /dev/zero | tail -c 80000000 > /dev/null";
    let (result, usage, _) = rig.run("big", sh(big));
    assert_eq!(result, Ok(()));
    assert!(
        usage.max_rss_kb > 60 << 10,
        "holding 80 MB peaked at only {} KB",
        usage.max_rss_kb
    );
    std::hint::black_box(&ballast);
}

/// The pid in an `Exited` event's place: the one `Started` carried.
fn started_pid(rig: &Rig) -> u32 {
    match rig.events.recv_timeout(TIMEOUT).unwrap() {
        ExecEvent::Started { pid, .. } => pid,
        other => panic!("expected Started, got {other:?}"),
    }
}

#[test]
fn a_dead_spawner_fails_running_and_later_attempts_in_one_line() {
    let spawner = Spawner::start().unwrap();
    let spawner_pid = spawner.pid();
    let mut rig = Rig::with_spawner(None, Ok(spawner.clone()));
    let req = rig.request("sleepy", sh("sleep 30 & echo $! > bg.pid; wait"));
    let pid_file = req.workdir.join("bg.pid");
    rig.exec.start(req);
    let leader = started_pid(&rig);
    let grandchild = read_pid(&pid_file);

    // SAFETY: kill(2) on the spawner's pid; no memory is involved.
    unsafe { libc::kill(spawner_pid as i32, libc::SIGKILL) };
    let events = rig.until_exit();
    let want = format!(
        "the process spawner stopped (process {spawner_pid}: it was killed by signal 9 (SIGKILL)); \
         restart tessera to run tasks again"
    );
    assert!(
        matches!(events.last(), Some(ExecEvent::Exited { result: Err(e), .. }) if *e == want),
        "{events:?}"
    );
    wait_for("the attempt to die with the spawner", || !alive(leader));
    wait_for("what it started to be killed", || !alive(grandchild));
    assert_eq!(rig.exec.running(), 0);
    let how = format!("process {spawner_pid}: it was killed by signal 9 (SIGKILL)");
    assert_eq!(spawner.stopped(), Some(how));

    let (result, _, events) = rig.run("after", sh("true"));
    assert_eq!(result, Err(want));
    assert_eq!(events.len(), 1, "nothing started: {events:?}");
}

#[test]
fn the_spawner_ends_with_its_executor_and_takes_the_attempts_along() {
    let spawner = Spawner::start().unwrap();
    let spawner_pid = spawner.pid();
    let mut rig = Rig::with_spawner(None, Ok(spawner));
    let req = rig.request("sleepy", sh("sleep 30 & echo $! > bg.pid; wait"));
    let pid_file = req.workdir.join("bg.pid");
    rig.exec.start(req);
    let leader = started_pid(&rig);
    let grandchild = read_pid(&pid_file);
    drop(rig);
    for (what, pid) in [("attempt", leader), ("grandchild", grandchild)] {
        wait_for(what, || !alive(pid));
    }
    // Reaped, not left a zombie.
    wait_for("the spawner to be reaped", || {
        !Path::new(&format!("/proc/{spawner_pid}")).exists()
    });
}

/// The spawner is forked from the program with whatever it has open (a
/// database's lock file, say); holding on to any of it would keep locks
/// after the program let go of them.
#[test]
fn the_spawner_holds_none_of_the_programs_descriptors_and_leaves_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.lock");
    // Not the lowest descriptor, which the spawner's socket may take over.
    let _low: Vec<_> = (0..4)
        .map(|_| std::fs::File::open("/dev/null").unwrap())
        .collect();
    let lock = std::fs::File::create(&path).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let spawner = Spawner::start().unwrap();
    drop(lock);
    let again = std::fs::File::open(&path).unwrap();
    // A process another test forks at this moment holds a copy for an
    // instant (until it execs, or closes it); a spawner would hold it for
    // as long as it lives.
    wait_for(
        "the lock to be released with the program's descriptor",
        || {
            // SAFETY: as above.
            unsafe { libc::flock(again.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
        },
    );
    assert!(spawner.stopped().is_none());
    // Its own process group: a Ctrl-C at the terminal is not for it.
    // SAFETY: getpgid reads another process's group id.
    let group = unsafe { libc::getpgid(spawner.pid() as i32) };
    assert_eq!(group as u32, spawner.pid());
}
