//! Attempts that run to their end: status, logs, progress, environment,
//! the mounted working directory, limits and the image's own programs.

use crate::harness::{docker, eventually, exists, harness, harness_with, result};
use std::collections::BTreeMap;
use std::time::Duration;
use tessera_exec::{ExecEvent, Executor};
use tessera_types::{Action, Progress};

#[test]
fn a_failing_command_reports_its_status_and_last_stderr_line_and_keeps_both_logs() {
    let Some(mut h) = harness("status") else {
        return;
    };
    let action = Action::command(["sh", "-c", "echo hi; echo err >&2; exit 3"]);
    h.exec.start(h.request(0, "fails", action));
    h.started();
    let events = h.until_exit();
    assert_eq!(result(&events), Err("exited with status 3: err".into()));
    assert_eq!(h.log("fails", "stdout"), "hi\n");
    assert_eq!(h.log("fails", "stderr"), "err\n");
    assert!(
        !exists(&h.container(0, 1)),
        "finished containers are removed"
    );
    assert_eq!(h.exec.running(), 0);
}

#[test]
fn progress_lines_become_events_in_order_before_the_exit() {
    let Some(mut h) = harness("progress") else {
        return;
    };
    let script = "echo '#tessera-progress 1 3'; echo middle; echo '#tessera-progress 3 3'";
    h.exec
        .start(h.request(0, "progress", Action::script(script)));
    h.started();
    let events = h.until_exit();
    let progress: Vec<Progress> = events
        .iter()
        .filter_map(|e| match e {
            ExecEvent::Progress { progress, .. } => Some(*progress),
            _ => None,
        })
        .collect();
    assert_eq!(
        progress,
        [
            Progress { done: 1, total: 3 },
            Progress { done: 3, total: 3 }
        ]
    );
    assert_eq!(result(&events), Ok(()));
    assert_eq!(h.log("progress", "stdout"), "middle\n");
}

#[test]
fn env_and_the_working_directory_are_the_same_inside_and_out() {
    let Some(mut h) = harness("env") else { return };
    let mut req = h.request(
        4,
        "env",
        Action::script("echo \"$GREETING $TESSERA_ATTEMPT\" > note.txt; pwd > where.txt"),
    );
    req.env = BTreeMap::from([("GREETING".to_string(), "hello".to_string())]);
    h.exec.start(req);
    assert_eq!(result(&h.until_exit()), Ok(()));
    let workdir = h.workdir("env");
    let note = std::fs::read_to_string(workdir.join("note.txt")).unwrap();
    assert_eq!(note, "hello 1.4.1\n", "request env plus the attempt marker");
    let inside = std::fs::read_to_string(workdir.join("where.txt")).unwrap();
    assert_eq!(inside.trim_end(), workdir.display().to_string());
}

#[test]
fn cpu_memory_user_and_labels_are_set_on_the_container() {
    let Some(mut h) = harness_with("limits", |c| c.user = "1234:1234".into()) else {
        return;
    };
    let mut req = h.request(
        2,
        "limits",
        Action::command(["sh", "-c", "id -u; id -g; sleep 30"]),
    );
    req.cpu = 2;
    req.memory_mb = 64;
    h.exec.start(req);
    let pid = h.started();
    let container = h.container(2, 1);
    let host_pid = docker(&["inspect", "-f", "{{.State.Pid}}", &container]);
    assert_eq!(
        pid.to_string(),
        host_pid,
        "Started carries the main process id on this host"
    );
    assert!(pid > 1);
    let ran_id = || h.log("limits", "stdout") == "1234\n1234\n";
    assert!(
        eventually(Duration::from_secs(20), ran_id),
        "as the configured user"
    );
    let format = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} \
                  {{.Config.User}} {{index .Config.Labels \"tessera.instance\"}} \
                  {{index .Config.Labels \"tessera.job\"}} {{index .Config.Labels \"tessera.task\"}} \
                  {{index .Config.Labels \"tessera.attempt\"}}";
    let seen = docker(&["inspect", "-f", format, &container]);
    let expected = format!(
        "67108864 67108864 2000000000 1234:1234 {} 1 2 1",
        h.instance
    );
    assert_eq!(seen, expected);
    h.exec.kill(req_task(2), 1);
    h.until_exit();
}

#[test]
fn the_memory_limit_is_enforced_with_a_clear_message() {
    let Some(mut h) = harness("oom") else { return };
    // The shell holds 200 MB of random bytes in a variable: far past 32 MiB.
    let mut req = h.request(
        0,
        "oom",
        Action::script("x=$(head -c 200000000 /dev/urandom); echo survived"),
    );
    req.memory_mb = 32;
    h.exec.start(req);
    let events = h.until_exit();
    let err = result(&events).unwrap_err();
    assert!(
        err.contains("out of memory") && err.contains("32 MiB"),
        "{err}"
    );
    assert!(!exists(&h.container(0, 1)));
}

#[test]
fn ffmpeg_in_the_image_writes_into_the_mounted_workdir_and_tessera_probes_it() {
    let Some(mut h) = harness("ffmpeg") else {
        return;
    };
    let encode = Action::command([
        "ffmpeg",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "out.mkv",
    ]);
    h.exec.start(h.request(0, "ffmpeg", encode));
    assert_eq!(
        result(&h.until_exit()),
        Ok(()),
        "{}",
        h.log("ffmpeg", "stderr")
    );
    let out = h.workdir("ffmpeg").join("out.mkv");
    let host_probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=nb_read_frames,width",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .expect("run ffprobe on this host");
    assert_eq!(String::from_utf8_lossy(&host_probe.stdout).trim(), "160,50");

    // The image's tessera (the op program) probes it with the image's ffprobe.
    let probe = Action::Op {
        op: "probe".into(),
        args: vec![out.display().to_string()],
    };
    let mut req = h.request(1, "probe", probe);
    req.workdir = h.workdir("ffmpeg");
    h.exec.start(req);
    assert_eq!(
        result(&h.until_exit()),
        Ok(()),
        "{}",
        h.log("probe", "stderr")
    );
    let json = h.log("probe", "stdout");
    assert!(json.contains("\"width\"") && json.contains("160"), "{json}");
}

fn req_task(index: u32) -> tessera_types::TaskRef {
    tessera_types::TaskRef::new(tessera_types::JobId(1), index)
}

#[test]
fn usage_is_sampled_from_the_engine() {
    let Some(mut h) = harness("usage") else {
        return;
    };
    // About three seconds of one core.
    let busy = "i=0; while [ $i -lt 3000000 ]; do i=$((i+1)); done";
    h.exec.start(h.request(0, "busy", Action::script(busy)));
    let events = h.until_exit();
    let Some(ExecEvent::Exited { result, usage, .. }) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(result, &Ok(()));
    assert!(usage.cpu_ms >= 1000, "{usage:?}");
    assert!(
        usage.cpu_ms <= usage.wall_ms + 100,
        "one core at most: {usage:?}"
    );
    assert!(usage.max_rss_kb > 0, "{usage:?}");
}

/// The executor reads a container's logs after starting it, from the
/// beginning: output written before the reader attached (a burst at once,
/// then an instant exit) is all there.
#[test]
fn output_written_before_the_logs_are_read_is_kept_whole() {
    let Some(mut h) = harness("early") else {
        return;
    };
    let action = Action::command([
        "sh",
        "-c",
        "i=1; while [ $i -le 20000 ]; do echo $i; i=$((i+1)); done; echo done >&2",
    ]);
    h.exec.start(h.request(0, "early", action));
    h.started();
    assert_eq!(result(&h.until_exit()), Ok(()));
    let expected: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    let out = h.log("early", "stdout");
    assert!(
        out == expected,
        "{} bytes of stdout; stderr: {}",
        out.len(),
        h.log("early", "stderr")
    );
    assert_eq!(h.log("early", "stderr"), "done\n");
}
