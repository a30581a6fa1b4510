//! The shared set-up: the engine check, the image (built once per run from
//! this machine's binaries by deploy/image/build-rootfs.sh), and an
//! executor per test with its own instance name, events and directories.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tessera_docker::{container_name, DockerConfig, DockerExecutor, DEFAULT_IMAGE};
use tessera_exec::{EventSink, ExecEvent, StartRequest};
use tessera_types::{Action, AttemptNo, JobId, TaskRef};

/// How long any one attempt in these tests may take to be reported.
pub const EXIT_WITHIN: Duration = Duration::from_secs(60);

pub struct Harness {
    pub exec: DockerExecutor,
    pub events: Receiver<ExecEvent>,
    pub dir: tempfile::TempDir,
    pub instance: String,
}

/// A harness for `test`, or `None` (with the reason printed) when this
/// machine has no Docker engine and this is not CI.
pub fn harness(test: &str) -> Option<Harness> {
    harness_with(test, |_| {})
}

pub fn harness_with(test: &str, adjust: impl FnOnce(&mut DockerConfig)) -> Option<Harness> {
    if !engine_present() {
        return None;
    }
    image();
    let instance = instance(test);
    let (tx, events) = mpsc::channel();
    let sink: EventSink = Arc::new(move |e| drop(tx.send(e)));
    let mut config = DockerConfig::new(instance.clone(), sink);
    adjust(&mut config);
    let exec = DockerExecutor::connect(config).expect("connect to the Docker engine");
    Some(Harness {
        exec,
        events,
        dir: tempfile::tempdir().unwrap(),
        instance,
    })
}

/// A scheduler instance name no other test (or test run) uses.
pub fn instance(test: &str) -> String {
    format!("test{}-{test}", std::process::id())
}

/// Whether an engine is there to test against; under CI its absence fails.
pub fn engine_present() -> bool {
    let present =
        std::env::var_os("DOCKER_HOST").is_some() || Path::new("/var/run/docker.sock").exists();
    if !present {
        tessera_testkit::env::skip(
            "no Docker engine (/var/run/docker.sock is absent, DOCKER_HOST unset)",
            "install and start docker (.ci/run does)",
        );
    }
    present
}

/// Builds the test image once per run (quick when it is up to date).
pub fn image() -> &'static str {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let tessera = tessera_binary()?;
        let script = repo().join("deploy/image/build-rootfs.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&tessera)
            .env("TESSERA_IMAGE", DEFAULT_IMAGE)
            .output()
            .map_err(|e| format!("could not run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    DEFAULT_IMAGE
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The tessera binary of this build (target/debug/tessera beside this test
/// binary's deps/), built first if it is not there.
fn tessera_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("test binary has no target directory")?;
    let tessera = profile_dir.join("tessera");
    if !tessera.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "tessera-cli"])
            .current_dir(repo())
            .status()
            .map_err(|e| format!("could not run cargo: {e}"))?;
        if !status.success() || !tessera.exists() {
            return Err(format!(
                "cargo build -p tessera-cli did not make {}",
                tessera.display()
            ));
        }
    }
    Ok(tessera)
}

impl Harness {
    pub fn request(&self, index: u32, name: &str, action: Action) -> StartRequest {
        StartRequest {
            task: TaskRef::new(JobId(1), index),
            attempt: 1,
            name: name.into(),
            action,
            env: Default::default(),
            workdir: self.workdir(name),
            log_dir: self.dir.path().join("logs"),
            image: None,
            cpu: 1,
            memory_mb: 0,
            labels: Default::default(),
            placement: Default::default(),
            reach: Default::default(),
            user: None,
            mounts: Vec::new(),
        }
    }

    pub fn workdir(&self, name: &str) -> PathBuf {
        self.dir.path().join("work").join(name)
    }

    /// The next event, failing the test if none comes in time.
    pub fn next(&self, within: Duration) -> ExecEvent {
        self.events
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("no event within {within:?}: {e}"))
    }

    /// Every event up to and including the attempt's `Exited`.
    pub fn until_exit(&self) -> Vec<ExecEvent> {
        let deadline = Instant::now() + EXIT_WITHIN;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.next(left);
            let done = matches!(event, ExecEvent::Exited { .. });
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    /// Waits for the attempt's `Started` and returns its pid.
    pub fn started(&self) -> u32 {
        match self.next(EXIT_WITHIN) {
            ExecEvent::Started { pid, .. } => pid,
            other => panic!("expected Started, got {other:?}"),
        }
    }

    pub fn container(&self, index: u32, attempt: AttemptNo) -> String {
        container_name(&self.instance, TaskRef::new(JobId(1), index), attempt)
    }

    pub fn log(&self, name: &str, stream: &str) -> String {
        let path = tessera_exec::log_file(&self.dir.path().join("logs"), name, 1, stream);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// The result of an attempt's `Exited` (the last of `events`).
pub fn result(events: &[ExecEvent]) -> Result<(), String> {
    match events.last() {
        Some(ExecEvent::Exited { result, .. }) => result.clone(),
        other => panic!("expected Exited last, got {other:?}"),
    }
}

/// Runs the docker CLI and returns its standard output, trimmed.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether a container of that name exists (in any state).
pub fn exists(container: &str) -> bool {
    let filter = format!("name=^{container}$");
    !docker(&["ps", "-a", "-q", "--filter", &filter]).is_empty()
}

/// Polls `check` until it holds or `within` passes.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
