//! Stopping an encode half way: SIGKILL (a crash) and SIGINT (Ctrl-C), then
//! running the same command again.

use crate::support::{
    argv, chunk_tasks, exists, listing, long_clip, only_job, processes_mentioning, survivors,
    tessera, tessera_run, Outcome, Running, HANG,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tessera_store::Store;
use tessera_types::{JobState, TaskState};

/// How long the chunk processes of a stopped run may take to die.
const GRACE: Duration = Duration::from_secs(5);

/// A 12 s source, slow enough to encode (one chunk at a time, preset slow,
/// 1 s chunks) that the run can be stopped with most chunks still to do.
struct Slow {
    dir: tempfile::TempDir,
    src: PathBuf,
}

impl Slow {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let src = long_clip(dir.path(), 12);
        Self { dir, src }
    }

    fn output(&self) -> PathBuf {
        self.dir.path().join("out").join("slow.mp4")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The same command every time (same command, same job).
    fn command(&self) -> Command {
        let mut cmd = tessera();
        cmd.args(argv![
            "encode",
            &self.src,
            "-o",
            self.output(),
            "--preset",
            "slow",
            "--jobs",
            "1",
            "--chunk-seconds",
            "1",
            "--plain",
            "--state-dir",
            self.state()
        ]);
        cmd
    }

    /// Starts the encode and returns once at least one chunk is done.
    fn start_and_wait_for_a_chunk(&self) -> Running {
        let mut run = Running::spawn(self.command());
        run.wait_for_line("done: encode-chunk-", Duration::from_secs(120));
        run
    }

    /// Waits until a chunk op of this run and its ffmpeg are running, so the
    /// scan for survivors is known to see them; returns the run's processes.
    fn ffmpeg_running(&self) -> Vec<(u32, String)> {
        let needle = self.state().to_string_lossy().into_owned();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let seen = processes_mentioning(&needle);
            let has = |what: &str| seen.iter().any(|(_, c)| c.contains(what));
            if has("op encode-chunk") && seen.iter().any(|(_, c)| c.starts_with("ffmpeg ")) {
                return seen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no ffmpeg of this run found in /proc: {seen:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Processes of this run (the ops and their ffmpeg) still alive after `GRACE`.
    fn survivors(&self) -> Vec<(u32, String)> {
        survivors(&self.state().to_string_lossy(), GRACE)
    }

    /// Runs the command again to the end; it must resume and produce a verified output.
    fn resume(&self, reused: usize) -> Outcome {
        let out = crate::support::run(&mut self.command());
        out.expect_code(0);
        let resuming = format!(": {reused} chunks already encoded");
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("resuming job ") && l.ends_with(&resuming)),
            "{}",
            out.stderr
        );
        assert!(
            out.stdout
                .contains(&format!("({reused} reused from an earlier run)")),
            "{}",
            out.stdout
        );
        assert!(self.output().is_file());
        let verify = tessera_run(argv!["verify", &self.src, self.output()]);
        verify.expect_code(0);
        out
    }
}

/// `(task index, name)` of every chunk task that has succeeded; asserts each did so on its first attempt.
fn succeeded_chunks(state: &Path) -> (Vec<(u32, String)>, usize) {
    let (_, tasks, _) = only_job(state);
    let chunks = chunk_tasks(&tasks);
    let done: Vec<(u32, String)> = chunks
        .iter()
        .filter(|t| t.state == TaskState::Succeeded)
        .map(|t| {
            assert_eq!(t.attempt, 1, "{} needed {} attempts", t.name, t.attempt);
            (t.task.index, t.name.clone())
        })
        .collect();
    (done, chunks.len())
}

#[test]
fn resume_after_sigkill_reuses_finished_chunks() {
    let slow = Slow::new();
    let mut run = slow.start_and_wait_for_a_chunk();
    slow.ffmpeg_running();
    run.child.kill().unwrap();
    let killed = run.finish(HANG);
    assert_eq!(killed.code, None, "tessera should have died by SIGKILL");

    let left = slow.survivors();
    assert!(
        left.is_empty(),
        "processes of the killed run outlived it by {GRACE:?}: {left:#?}"
    );
    assert!(!exists(&slow.output()));

    let (before, total) = succeeded_chunks(&slow.state());
    assert!(!before.is_empty(), "a chunk was reported done");
    assert!(
        before.len() < total,
        "all {total} chunks finished before the kill; nothing left to resume"
    );

    slow.resume(before.len());

    let (job, tasks, store) = only_job(&slow.state());
    assert_eq!(job.state, JobState::Succeeded);
    assert!(chunk_tasks(&tasks)
        .iter()
        .all(|t| t.state == TaskState::Succeeded));
    let attempts = store.attempts(job.id).unwrap();
    for (index, name) in &before {
        let t = &tasks[*index as usize];
        assert_eq!(&t.name, name);
        assert_eq!(t.attempt, 1, "{name} was encoded again after the resume");
        let runs = attempts.iter().filter(|a| a.task.index == *index).count();
        assert_eq!(runs, 1, "{name} has {runs} attempts");
    }
}

#[test]
fn ctrl_c_stops_cleanly_and_the_rerun_finishes() {
    let slow = Slow::new();
    let run = slow.start_and_wait_for_a_chunk();
    slow.ffmpeg_running();
    // SAFETY: kill(2) on our own child, which has not been waited for yet.
    let rc = unsafe { libc::kill(run.child.id() as i32, libc::SIGINT) };
    assert_eq!(rc, 0);
    let stopped = run.finish(Duration::from_secs(60));
    stopped.expect_code(130);

    let messages: Vec<&str> = stopped
        .stderr_lines()
        .into_iter()
        .filter(|l| l.starts_with("tessera: "))
        .collect();
    assert_eq!(messages.len(), 1, "{}", stopped.stderr);
    assert!(messages[0].contains("resume"), "{}", messages[0]);
    assert_eq!(
        stopped.stderr_lines().last().copied(),
        Some(messages[0]),
        "the error is the last thing printed"
    );
    assert!(!stopped.stderr.contains("panicked"));

    let left = slow.survivors();
    assert!(left.is_empty(), "processes outlived Ctrl-C: {left:#?}");
    assert!(!exists(&slow.output()));
    assert!(
        listing(&slow.dir.path().join("out")).is_empty(),
        "something was left in the output directory"
    );

    let (job, tasks, store) = only_job(&slow.state());
    assert!(!job.state.is_terminal(), "job {}: {}", job.id, job.state);
    let running: Vec<&str> = tasks
        .iter()
        .filter(|t| t.state == TaskState::Running)
        .map(|t| t.name.as_str())
        .collect();
    assert!(
        running.is_empty(),
        "still `running` after exit: {running:?}"
    );
    let open = store.open_attempts().unwrap();
    assert!(open.is_empty(), "attempts never closed: {open:?}");
    drop(store);

    let (before, total) = succeeded_chunks(&slow.state());
    assert!(
        !before.is_empty() && before.len() < total,
        "{before:?} of {total}"
    );
    slow.resume(before.len());
}
