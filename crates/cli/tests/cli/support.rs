//! Running the binary and ffmpeg, and reading what they left behind.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tessera_store::{JobRecord, SqliteStore, Store, TaskRecord};

/// `argv!["-i", path, ...]`: mixed strings and paths as one argument list.
macro_rules! argv {
    ($($a:expr),* $(,)?) => {
        vec![$(std::ffi::OsString::from(AsRef::<std::ffi::OsStr>::as_ref(&$a))),*]
    };
}
pub(crate) use argv;

/// Longest any single command in these tests may take before it counts as hung.
pub const HANG: Duration = Duration::from_secs(180);

/// The `tessera` binary under test, with nothing inherited that would steer it.
pub fn tessera() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.env_remove("TESSERA_STATE_DIR").stdin(Stdio::null());
    cmd
}

/// What a finished command did.
#[derive(Debug)]
pub struct Outcome {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// Panics with everything printed unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `cmd` to the end (killing it after [`HANG`]), capturing its output.
pub fn run(cmd: &mut Command) -> Outcome {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_for(&mut child, HANG);
    Outcome {
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// `tessera ARGS...`, run to the end.
pub fn tessera_run<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(tessera().args(args))
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child`, killing it and failing the test after `limit`.
pub fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} still running after {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `tessera` whose stderr (or stdout: [`Running::spawn_stdout`])
/// is read line by line as it comes.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line seen so far.
    pub seen: Vec<String>,
    /// The other stream, read whole.
    other: Option<std::thread::JoinHandle<String>>,
    lines_are_stdout: bool,
}

impl Running {
    pub fn spawn(cmd: Command) -> Self {
        Self::spawn_reading(cmd, false)
    }

    /// Reads stdout line by line instead (stderr whole).
    pub fn spawn_stdout(cmd: Command) -> Self {
        Self::spawn_reading(cmd, true)
    }

    fn spawn_reading(mut cmd: Command, stdout: bool) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let (read, other): (Box<dyn Read + Send>, _) = if stdout {
            (Box::new(out), drain(err))
        } else {
            (Box::new(err), drain(out))
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(read).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
            other: Some(other),
            lines_are_stdout: stdout,
        }
    }

    /// Reads lines until one starts with `prefix`; kills the process and
    /// fails the test if it ends or takes longer than `limit` first.
    pub fn wait_for_line(&mut self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "no line starting with {prefix:?} ({e:?}); seen:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// Waits for the end and collects the rest of its output.
    pub fn finish(mut self, limit: Duration) -> Outcome {
        let status = wait_for(&mut self.child, limit);
        // The reader thread ends at EOF, once the process and its children are gone.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(30)) {
            self.seen.push(line);
        }
        let other = self.other.take().unwrap().join().unwrap();
        if self.lines_are_stdout {
            let stdout = self.seen.iter().map(|l| format!("{l}\n")).collect();
            Outcome {
                code: status.code(),
                stdout,
                stderr: other,
            }
        } else {
            Outcome {
                code: status.code(),
                stdout: other,
                stderr: self.seen.join("\n"),
            }
        }
    }
}

impl Drop for Running {
    /// A test that fails half way leaves nothing running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs ffmpeg (quiet, never asking) and fails the test if it fails.
pub fn ffmpeg<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    tool("ffmpeg", &["-nostdin", "-y", "-v", "error"], args)
}

pub fn ffprobe<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    tool("ffprobe", &["-v", "error"], args)
}

fn tool<I, S>(name: &str, first: &[&str], args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(name);
    cmd.args(first).args(args).stdin(Stdio::null());
    let out = run(&mut cmd);
    assert_eq!(out.code, Some(0), "{cmd:?} failed:\n{}", out.stderr);
    out.stdout
}

/// The per-frame MD5 of the decoded video (`-f framemd5`), header included.
pub fn framemd5(path: &Path) -> Vec<String> {
    let out = ffmpeg(argv!["-i", path, "-map", "0:v", "-f", "framemd5", "-"]);
    let lines: Vec<String> = out.lines().map(String::from).collect();
    assert!(
        lines.iter().filter(|l| !l.starts_with('#')).count() > 10,
        "framemd5 of {} has almost no frames",
        path.display()
    );
    lines
}

/// The type of every stream (`video`, `audio`, `subtitle`, ...), in order.
pub fn stream_types(path: &Path) -> Vec<String> {
    let out = ffprobe(argv![
        "-show_entries",
        "stream=codec_type",
        "-of",
        "csv=p=0",
        path,
    ]);
    out.lines().map(|l| l.trim().to_string()).collect()
}

/// Packets in the first video stream.
pub fn video_packets(path: &Path) -> u64 {
    let out = ffprobe(argv![
        "-select_streams",
        "v:0",
        "-count_packets",
        "-show_entries",
        "stream=nb_read_packets",
        "-of",
        "csv=p=0",
        path,
    ]);
    out.trim()
        .parse()
        .unwrap_or_else(|e| panic!("packet count of {}: {out:?}: {e}", path.display()))
}

/// The first video stream's presentation times in seconds, sorted, relative to the first.
pub fn video_pts(path: &Path) -> Vec<f64> {
    let out = ffprobe(argv![
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time",
        "-of",
        "csv=p=0",
        path,
    ]);
    let mut pts: Vec<f64> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_end_matches(',').parse().unwrap())
        .collect();
    pts.sort_by(f64::total_cmp);
    let first = pts.first().copied().unwrap_or(0.0);
    pts.iter().map(|p| p - first).collect()
}

/// `seconds` of 320x240 25 fps testsrc2 (H.264, a keyframe every second) + AAC, mp4.
pub fn long_clip(dir: &Path, seconds: u32) -> PathBuf {
    let out = dir.join(format!("long{seconds}.mp4"));
    let t = seconds.to_string();
    ffmpeg(argv![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        t,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
        "-c:a",
        "aac",
        out,
    ]);
    out
}

/// The names in `dir`, sorted (empty if it does not exist).
pub fn listing(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether anything (even a dangling symlink) is at `path`.
pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The one job in the state directory and its tasks, read without locking out a writer.
pub fn only_job(state: &Path) -> (JobRecord, Vec<TaskRecord>, SqliteStore) {
    let store = SqliteStore::open_reader(state.join("tessera.db")).unwrap();
    let mut jobs = store.recent_jobs(10).unwrap();
    assert_eq!(jobs.len(), 1, "expected one job, found {jobs:?}");
    let job = jobs.remove(0);
    let tasks = store.tasks(job.id).unwrap();
    (job, tasks, store)
}

/// Chunk tasks only.
pub fn chunk_tasks(tasks: &[TaskRecord]) -> Vec<&TaskRecord> {
    tasks
        .iter()
        .filter(|t| t.name.starts_with("encode-chunk-"))
        .collect()
}

/// Live (non-zombie) processes other than this one whose command line
/// mentions `needle`, as `(pid, command line)`.
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
            .unwrap_or(true);
        if !zombie && cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Waits up to `grace` for every process mentioning `needle` to go away;
/// returns the ones still alive then (after killing them, so a failing test
/// leaves nothing running).
pub fn survivors(needle: &str, grace: Duration) -> Vec<(u32, String)> {
    let deadline = Instant::now() + grace;
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() || Instant::now() > deadline {
            for (pid, _) in &left {
                // SAFETY: kill(2) on a pid we just saw; no memory involved.
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An admin key (user `ana`) for a fresh data directory with project `video`.
pub fn bootstrap(data: &std::path::Path) -> String {
    let mut boot = tessera();
    boot.args([
        "admin",
        "create-user",
        "ana",
        "--admin",
        "--project",
        "video",
    ])
    .arg("--data-dir")
    .arg(data);
    let created = run(&mut boot);
    created.expect_code(0);
    created.stdout.trim().to_string()
}

/// `tessera ARGS` as a client of the server at `url` with `key` (no saved
/// login is read).
pub fn client_of(url: &str, key: &str, args: &[&str]) -> Command {
    let mut cmd = tessera();
    cmd.env("TESSERA_SERVER", url)
        .env("TESSERA_KEY", key)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .args(args);
    cmd
}

/// Whether a Docker engine is there to test against; under CI its absence
/// fails the test.
pub fn docker_engine_present() -> bool {
    let present = Path::new("/var/run/docker.sock").exists();
    if !present {
        tessera_testkit::env::skip(
            "no Docker engine (/var/run/docker.sock is absent)",
            "install and start docker (.ci/run does)",
        );
    }
    present
}

/// The no-registry image (`tessera-local:dev`, or the tag in
/// `TESSERA_IMAGE`: builds of several checkouts on one engine should not
/// share a tag), built by deploy/image/build-rootfs.sh from this build's
/// binary once per test process (quick when it is up to date).
pub fn local_image() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let tag = std::env::var("TESSERA_IMAGE").unwrap_or_else(|_| "tessera-local:dev".into());
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/image/build-rootfs.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_tessera"))
            .env("TESSERA_IMAGE", &tag)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tag
    })
}

/// A job `boxed` of two tasks: `inside` runs `script` (YAML double-quoted)
/// in the [`local_image`]; `outside`, a host process after it, prints the
/// file `handoff` that `inside` left in the job's folder (it runs in
/// `$TESSERA_JOB_DIR/tasks/outside`).
pub fn image_flow(script: &str) -> String {
    format!(
        r#"
name: boxed
tasks:
  - name: inside
    image: {}
    action: {{ kind: script, script: "{script}" }}
  - name: outside
    action: {{ kind: command, argv: ["cat", "../../handoff"] }}
    deps: [{{ selector: inside }}]
"#,
        local_image()
    )
}

/// `docker ARGS`: its stdout, or a panic carrying its stderr.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `--user` for a container that writes files as this test's user.
pub fn docker_user() -> String {
    // SAFETY: getuid and getgid have no preconditions.
    unsafe { format!("{}:{}", libc::getuid(), libc::getgid()) }
}

/// `http://127.0.0.1:PORT` where `container`'s port 6543 is published on
/// loopback, once it is.
pub fn published_url(container: &str) -> Option<String> {
    let port = docker(&["port", container, "6543/tcp"]);
    let addr = port.lines().find(|l| l.starts_with("127.0.0.1:"))?;
    Some(format!("http://{addr}"))
}

/// The last `tail` lines each of `containers` logged, one block each.
pub fn docker_logs<'a>(containers: impl IntoIterator<Item = &'a str>, tail: &str) -> String {
    let mut logs = String::new();
    for name in containers {
        let out = Command::new("docker")
            .args(["logs", "--tail", tail, name])
            .output()
            .unwrap();
        logs += &format!(
            "--- docker logs {name}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    logs
}

/// Removes `containers` and then `network`, ignoring what is already gone.
pub fn docker_remove<'a>(containers: impl IntoIterator<Item = &'a str>, network: &str) {
    for name in containers {
        let _ = Command::new("docker").args(["rm", "-f", name]).output();
    }
    let _ = Command::new("docker")
        .args(["network", "rm", network])
        .output();
}
