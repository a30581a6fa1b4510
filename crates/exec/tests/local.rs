//! The executors against real processes.
//!
//! - `spawner`: the process that starts attempts; memory figures, its death,
//!   its end with the executor.
//! - `users`: attempts running as another user.

#[path = "local/confined.rs"]
mod confined;
#[path = "local/spawner.rs"]
mod spawner;
#[path = "local/users.rs"]
mod users;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tessera_exec::{
    attempt_marker, kill_orphan_group, EventSink, ExecError, ExecEvent, Executor,
    InProcessExecutor, LocalConfig, LocalExecutor, RunAs, Spawner, StartRequest, ATTEMPT_ENV,
};
use tessera_types::{Action, AttemptUsage, JobId, Progress, TaskRef};

const TIMEOUT: Duration = Duration::from_secs(30);

struct Rig {
    exec: LocalExecutor,
    events: mpsc::Receiver<ExecEvent>,
    dir: tempfile::TempDir,
    /// The user its requests run as.
    user: Option<RunAs>,
}

impl Rig {
    fn new() -> Self {
        Self::with(None)
    }

    /// A rig whose attempts run as `user`.
    fn with(user: Option<RunAs>) -> Self {
        Self::with_spawner(user, Spawner::start())
    }

    fn with_spawner(user: Option<RunAs>, spawner: Result<Spawner, ExecError>) -> Self {
        Self::with_program(user, spawner, "/bin/echo")
    }

    /// `op_program` runs built-in ops (`<program> op <name> <args>`).
    fn with_program(
        user: Option<RunAs>,
        spawner: Result<Spawner, ExecError>,
        op_program: &str,
    ) -> Self {
        let (tx, events) = mpsc::channel();
        let sink: EventSink = Arc::new(move |e| drop(tx.send(e)));
        let config = LocalConfig {
            op_program: op_program.into(),
            sink,
        };
        let exec = LocalExecutor::with_spawner(config, spawner);
        Self {
            exec,
            events,
            dir: tempfile::tempdir().unwrap(),
            user,
        }
    }

    fn request(&self, name: &str, action: Action) -> StartRequest {
        StartRequest {
            task: TaskRef::new(JobId(7), 3),
            attempt: 2,
            name: name.into(),
            action,
            env: BTreeMap::new(),
            workdir: self.dir.path().join("work").join(name),
            log_dir: self.dir.path().join("logs"),
            image: None,
            cpu: 1,
            memory_mb: 0,
            labels: Default::default(),
            placement: Default::default(),
            reach: Default::default(),
            user: self.user.clone(),
            mounts: Vec::new(),
        }
    }

    fn log(&self, name: &str, stream: &str) -> String {
        let path = self
            .dir
            .path()
            .join("logs")
            .join(format!("{name}.2.{stream}.log"));
        std::fs::read_to_string(path).unwrap()
    }

    /// Events until (and including) the `Exited` one.
    fn until_exit(&self) -> Vec<ExecEvent> {
        let mut out = Vec::new();
        loop {
            let e = self.events.recv_timeout(TIMEOUT).expect("an event in time");
            let last = matches!(e, ExecEvent::Exited { .. });
            out.push(e);
            if last {
                return out;
            }
        }
    }

    fn run(
        &mut self,
        name: &str,
        action: Action,
    ) -> (Result<(), String>, AttemptUsage, Vec<ExecEvent>) {
        let req = self.request(name, action);
        self.exec.start(req);
        let events = self.until_exit();
        match events.last() {
            Some(ExecEvent::Exited { result, usage, .. }) => (result.clone(), *usage, events),
            _ => unreachable!(),
        }
    }
}

fn sh(script: &str) -> Action {
    Action::command(["sh", "-c", script])
}

/// Whether a process is alive (a zombie waiting for a reaper is not).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 1..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// The states (`R`, `S`, `T`, `Z`...) of the processes in group `pgid`.
fn group_states(pgid: u32) -> Vec<char> {
    let mut states = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        // After the command: state, ppid, pgrp.
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if fields.get(2) == Some(&pgid.to_string().as_str()) {
            states.push(fields[0].chars().next().unwrap());
        }
    }
    states
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(path: &Path) -> u32 {
    wait_for("a pid file", || {
        std::fs::read_to_string(path).is_ok_and(|s| s.ends_with('\n'))
    });
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn exit_status_becomes_the_result_with_the_last_stderr_line() {
    let mut rig = Rig::new();
    assert_eq!(rig.run("ok", Action::command(["true"])).0, Ok(()));
    let (result, _, events) = rig.run(
        "bad",
        sh("echo first >&2; echo 'disk full' >&2; echo >&2; exit 3"),
    );
    assert_eq!(result, Err("exited with status 3: disk full".into()));
    assert!(matches!(events[0], ExecEvent::Started { pid, .. } if pid > 1));
    assert_eq!(rig.log("bad", "stderr"), "first\ndisk full\n\n");
    assert_eq!(
        rig.run("quiet", sh("exit 4")).0,
        Err("exited with status 4".into())
    );
    assert_eq!(
        rig.run("term", sh("kill -TERM $$")).0,
        Err("killed by signal 15 (SIGTERM)".into())
    );
}

#[test]
fn progress_lines_become_events_and_other_output_goes_to_the_log() {
    let mut rig = Rig::new();
    let script = "echo hello; echo '#tessera-progress 1 4'; echo world; echo '#tessera-progress 4 4'; echo err >&2";
    let (result, _, events) = rig.run("prog", sh(script));
    assert_eq!(result, Ok(()));
    let progress: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ExecEvent::Progress { progress, .. } => Some(*progress),
            _ => None,
        })
        .collect();
    assert_eq!(
        progress,
        [
            Progress { done: 1, total: 4 },
            Progress { done: 4, total: 4 }
        ]
    );
    assert!(matches!(events.first(), Some(ExecEvent::Started { .. })));
    assert!(events
        .iter()
        .all(|e| e.attempt() == (TaskRef::new(JobId(7), 3), 2)));
    assert_eq!(rig.log("prog", "stdout"), "hello\nworld\n");
    assert_eq!(rig.log("prog", "stderr"), "err\n");
}

#[test]
fn kill_takes_the_whole_process_group_including_grandchildren() {
    let mut rig = Rig::new();
    let req = rig.request("sleepy", sh("sleep 30 & echo $! > bg.pid; sleep 30"));
    let pid_file = req.workdir.join("bg.pid");
    let (task, attempt) = (req.task, req.attempt);
    rig.exec.start(req);
    let leader = match rig.events.recv_timeout(TIMEOUT).unwrap() {
        ExecEvent::Started { pid, .. } => pid,
        other => panic!("expected Started, got {other:?}"),
    };
    let grandchild = read_pid(&pid_file);
    assert!(alive(leader) && alive(grandchild));
    assert_eq!(rig.exec.running(), 1);
    rig.exec.kill(task, attempt);
    let events = rig.until_exit();
    let ExecEvent::Exited { result, usage, .. } = events.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(result, &Err("killed by signal 9 (SIGKILL)".to_string()));
    assert!(usage.wall_ms < 25_000, "{usage:?}");
    wait_for("the grandchild to die", || !alive(grandchild));
    assert!(!alive(leader));
    assert_eq!(rig.exec.running(), 0);
    rig.exec.kill(task, attempt); // already gone: nothing happens
}

#[test]
fn kill_all_ends_every_attempt_and_each_reports_its_exit() {
    let mut rig = Rig::new();
    for i in 0..3 {
        let mut req = rig.request(&format!("s{i}"), sh("sleep 30"));
        req.attempt = i + 1;
        rig.exec.start(req);
    }
    wait_for("three processes", || rig.exec.running() == 3);
    rig.exec.kill_all();
    let mut exited = Vec::new();
    while exited.len() < 3 {
        if let ExecEvent::Exited {
            attempt, result, ..
        } = rig.events.recv_timeout(TIMEOUT).unwrap()
        {
            assert!(result.unwrap_err().contains("SIGKILL"));
            exited.push(attempt);
        }
    }
    exited.sort();
    assert_eq!(exited, [1, 2, 3]);
}

#[test]
fn a_process_left_behind_by_a_finished_attempt_is_killed() {
    let mut rig = Rig::new();
    let req = rig.request("leaver", sh("sleep 30 > /dev/null 2>&1 & echo $! > bg.pid"));
    let pid_file = req.workdir.join("bg.pid");
    rig.exec.start(req);
    let (result, ..) = {
        let events = rig.until_exit();
        match events.last() {
            Some(ExecEvent::Exited { result, usage, .. }) => (result.clone(), *usage),
            _ => unreachable!(),
        }
    };
    assert_eq!(result, Ok(()));
    let straggler = read_pid(&pid_file);
    wait_for("the straggler to die", || !alive(straggler));
}

#[test]
fn cpu_time_and_memory_are_measured_including_reaped_descendants() {
    let mut rig = Rig::new();
    // The busy loop runs in a grandchild that its parent reaps.
    let busy = "sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'; true";
    let (result, usage, _) = rig.run("busy", sh(busy));
    assert_eq!(result, Ok(()));
    assert!(usage.cpu_ms > 0, "{usage:?}");
    assert!(usage.max_rss_kb > 0, "{usage:?}");
    assert!(usage.wall_ms >= usage.cpu_ms / 2, "{usage:?}");
}

#[test]
fn a_missing_program_fails_cleanly_without_a_started_event() {
    let mut rig = Rig::new();
    let (result, _, events) = rig.run("missing", Action::command(["/nonexistent/prog", "x"]));
    assert_eq!(
        result,
        Err("could not start `/nonexistent/prog`: No such file or directory".into())
    );
    assert_eq!(events.len(), 1);
    let (result, ..) = rig.run("empty", Action::Command { argv: vec![] });
    assert_eq!(result, Err("empty command: nothing to run".into()));
}

#[test]
fn env_vars_and_workdir_are_applied() {
    let mut rig = Rig::new();
    let mut req = rig.request(
        "env",
        sh(&format!(
            "printf '%s\\n' \"$FOO\" \"${ATTEMPT_ENV}\" \"$(pwd)\" > out.txt"
        )),
    );
    req.env.insert("FOO".into(), "bar baz".into());
    let workdir: PathBuf = req.workdir.clone();
    rig.exec.start(req);
    rig.until_exit();
    let out = std::fs::read_to_string(workdir.join("out.txt")).unwrap();
    let marker = attempt_marker(TaskRef::new(JobId(7), 3), 2);
    assert_eq!(
        out,
        format!(
            "bar baz\n{marker}\n{}\n",
            workdir.canonicalize().unwrap().display()
        )
    );
}

#[test]
fn scripts_run_through_the_shell_and_commands_never_do() {
    let mut rig = Rig::new();
    let mut req = rig.request(
        "script",
        Action::script("for i in 1 2; do echo \"$FOO-$i\"; done | tr a-z A-Z; exit 3"),
    );
    req.env.insert("FOO".into(), "x".into());
    rig.exec.start(req);
    let events = rig.until_exit();
    assert!(
        matches!(events.last(), Some(ExecEvent::Exited { result: Err(e), .. }) if e.contains('3')),
        "{events:?}"
    );
    assert_eq!(rig.log("script", "stdout"), "X-1\nX-2\n");

    let named = Action::Script {
        script: "echo \"$0\"".into(),
        shell: Some("sh".into()),
    };
    let (result, ..) = rig.run("named", named);
    assert_eq!(result, Ok(()));
    assert_eq!(rig.log("named", "stdout"), "sh\n");

    let missing = Action::Script {
        script: "true".into(),
        shell: Some("/nonexistent/shell".into()),
    };
    let (result, ..) = rig.run("missing-shell", missing);
    assert_eq!(
        result,
        Err("could not start `/nonexistent/shell`: No such file or directory".into())
    );

    let (result, ..) = rig.run("argv", Action::command(["echo", "$HOME", "a|b", "*"]));
    assert_eq!(result, Ok(()));
    assert_eq!(rig.log("argv", "stdout"), "$HOME a|b *\n");
}

#[test]
fn ops_run_through_the_op_program_and_noops_need_no_process() {
    let mut rig = Rig::new();
    let (result, ..) = rig.run("probe", Action::op("probe", ["in.mkv", "--json"]));
    assert_eq!(result, Ok(()));
    assert_eq!(rig.log("probe", "stdout"), "op probe in.mkv --json\n");
    let req = rig.request("nothing", Action::Noop);
    rig.exec.start(req);
    // Sent from inside start(): already waiting.
    let e = rig.events.try_recv().expect("Exited sent from start()");
    assert!(
        matches!(e, ExecEvent::Exited { result: Ok(()), .. }),
        "{e:?}"
    );
}

#[test]
fn the_in_process_executor_completes_noops_and_refuses_the_rest() {
    let (tx, rx) = mpsc::channel();
    let mut exec = InProcessExecutor::new(Arc::new(move |e| drop(tx.send(e))));
    let rig = Rig::new();
    exec.start(rig.request("n", Action::Noop));
    exec.start(rig.request("c", Action::command(["true"])));
    let results: Vec<_> = rx
        .try_iter()
        .map(|e| match e {
            ExecEvent::Exited { result, .. } => result,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        results,
        [
            Ok(()),
            Err("in-process executor runs only no-op tasks".into())
        ]
    );
}

#[test]
fn orphans_of_a_crashed_scheduler_are_found_by_their_marker_and_killed() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let (task, attempt) = (TaskRef::new(JobId(99), 1), 4);
    // What a crashed scheduler leaves: a group whose processes carry the marker.
    let mut leader = std::process::Command::new("sh")
        .args(["-c", "sleep 30 & echo $! > bg.pid; wait"])
        .current_dir(dir.path())
        .env(ATTEMPT_ENV, attempt_marker(task, attempt))
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = leader.id();
    let grandchild = read_pid(&dir.path().join("bg.pid"));
    assert_eq!(
        kill_orphan_group(pid, task, attempt + 1).unwrap(),
        0,
        "another attempt's marker"
    );
    assert_eq!(
        kill_orphan_group(pid, TaskRef::new(JobId(98), 1), attempt).unwrap(),
        0
    );
    assert!(alive(grandchild), "nothing killed on a mismatch");
    assert_eq!(kill_orphan_group(pid, task, attempt).unwrap(), 2);
    leader.wait().unwrap();
    wait_for("the orphan to die", || !alive(grandchild));
    assert_eq!(
        kill_orphan_group(pid, task, attempt).unwrap(),
        0,
        "nothing left"
    );
}

#[test]
fn suspend_stops_the_whole_group_until_resume_and_a_stopped_attempt_can_be_killed() {
    let mut rig = Rig::new();
    // A grandchild does the writing, so stopping only the leader would not do.
    let req = rig.request(
        "ticker",
        sh("(while true; do echo x >> ticks; sleep 0.02; done) & wait"),
    );
    let ticks = req.workdir.join("ticks");
    let (task, attempt) = (req.task, req.attempt);
    rig.exec.start(req);
    let started = rig.events.recv_timeout(TIMEOUT).unwrap();
    let ExecEvent::Started { pid: group, .. } = started else {
        panic!("{started:?}")
    };
    let len = || std::fs::metadata(&ticks).map_or(0, |m| m.len());
    wait_for("the ticker to tick", || len() > 0);
    rig.exec.suspend(task, attempt);
    // Every live process of the group stops (state T); a stopped process
    // is not inside a write, so the file's length is then final.
    wait_for("the whole group to stop", || {
        let group = group_states(group);
        group.len() >= 2 && group.iter().all(|s| matches!(s, 'T' | 'Z'))
    });
    let stopped_at = len();
    // A window for a write that should not happen (not a synchronisation:
    // the check above made the outcome certain).
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        len(),
        stopped_at,
        "the file grew while the attempt was stopped"
    );
    assert!(
        group_states(group).iter().all(|s| matches!(s, 'T' | 'Z')),
        "{:?}",
        group_states(group)
    );
    assert!(
        rig.events.try_recv().is_err(),
        "a stopped attempt has not exited"
    );
    rig.exec.resume(task, attempt);
    wait_for("the ticker to tick again", || len() > stopped_at);
    rig.exec.suspend(task, attempt);
    rig.exec.kill(task, attempt);
    let events = rig.until_exit();
    let ExecEvent::Exited { result, .. } = events.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(result, &Err("killed by signal 9 (SIGKILL)".to_string()));
}
