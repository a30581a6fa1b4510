//! The executor itself: configuration, connection, the `Executor` calls
//! (which hand work to the runtime and return), and recovery after a restart.

use crate::attempt::{lock, Attempt, Control, Engine, Running};
use crate::container::{absolute, argv, container_name, create_body, labelled_attempt};
use crate::error::{is_not_found, reason};
use crate::{DockerError, LABEL_INSTANCE};
use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tessera_exec::{EventSink, ExecError, ExecEvent, Executor, StartRequest};
use tessera_types::{AttemptNo, AttemptUsage, NodeId, TaskRef};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// The image attempts run in when their request names none: the one
/// `deploy/image/build-rootfs.sh` builds.
pub const DEFAULT_IMAGE: &str = "tessera-local:dev";

/// Where the tessera binary is inside the images Tessera builds.
pub const IMAGE_TESSERA: &str = "/usr/local/bin/tessera";

/// How long a request that should answer at once may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests that last as long as a container (logs, wait, stats): a year.
const STREAM_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long connecting may take before the engine counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dropping the executor waits for its killed attempts to be reported.
const DROP_GRACE: Duration = Duration::from_secs(15);

/// How a [`DockerExecutor`] runs things. [`DockerConfig::new`] fills in the
/// defaults; change the fields before connecting.
pub struct DockerConfig {
    /// The engine's address: `unix:///var/run/docker.sock` or
    /// `tcp://host:2375`. Default: `$DOCKER_HOST`, else the local socket.
    pub host: String,
    /// The image for attempts whose request names none.
    pub image: String,
    /// `Action::Op { op, args }` runs `<op_program> op <op> <args...>`
    /// inside the container.
    pub op_program: String,
    /// Names the scheduler that owns the containers (label
    /// `tessera.instance`, and part of each container's name); recovery
    /// touches only this instance's containers.
    pub instance: String,
    /// The node the containers run for (label `tessera.node`).
    pub node: String,
    /// Who attempts run as (`uid:gid` or a name the image knows). Default:
    /// this process's uid and gid, so files in the mounted working
    /// directory belong to the scheduler's user.
    pub user: String,
    /// Host directories mounted at the same path inside every container
    /// (e.g. the workspace, so tasks see each other's outputs), besides
    /// each attempt's working directory.
    pub mounts: Vec<PathBuf>,
    /// The container network (`none`, `bridge`, ...); default: the engine's.
    pub network: Option<String>,
    pub sink: EventSink,
}

impl DockerConfig {
    pub fn new(instance: impl Into<String>, sink: EventSink) -> Self {
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Self {
            host: std::env::var("DOCKER_HOST")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "unix:///var/run/docker.sock".into()),
            image: DEFAULT_IMAGE.into(),
            op_program: IMAGE_TESSERA.into(),
            instance: instance.into(),
            node: NodeId::LOCAL.0.to_string(),
            user: format!("{uid}:{gid}"),
            mounts: Vec::new(),
            network: None,
            sink,
        }
    }
}

/// A container left by an earlier run of this scheduler instance, as
/// [`DockerExecutor::recover`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    pub container: String,
    /// The attempt its labels name (`None`: labels unreadable).
    pub attempt: Option<(TaskRef, AttemptNo)>,
    /// Whether it was still running (or paused).
    pub running: bool,
}

/// What [`DockerExecutor::recover`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Killed (if running) and removed.
    pub removed: Vec<Leftover>,
    /// Still running for an attempt the caller did not call lost; left alone.
    pub kept: Vec<Leftover>,
}

/// Runs each attempt in a container on a Docker engine.
///
/// The container (`tessera-<instance>-<job>-<task>-<attempt>`, labelled
/// with `tessera.instance`, `tessera.node`, `tessera.job`, `tessera.task`,
/// `tessera.attempt`) runs the request's image (or the configured one)
/// with the action's command line as its entrypoint, the request's `env`
/// plus [`ATTEMPT_ENV`](tessera_exec::ATTEMPT_ENV) (nothing of this
/// process's environment), the working directory bind-mounted at the same
/// path and used as the current directory, the configured user, and the
/// request's `cpu` (CPU time of that many cores) and `memory_mb` (no swap
/// beyond it) as limits. Output is followed from the engine: progress lines
/// become `Progress` events, the rest goes to the same log files as a local
/// attempt's ([`log_file`]). `Started` carries the container's main process
/// id on the engine's host (0 if unknown, or if it ended before it could
/// be asked).
///
/// A non-zero exit reads "exited with status N: <last stderr line>", like a
/// local process; a kill (`SIGKILL`) "killed by signal 9 (SIGKILL)"; the
/// kernel's out-of-memory kill says so. Suspend and resume pause and unpause
/// the container (the cgroup freezer). Every container is removed once its
/// output is collected; dropping the executor kills the running ones and
/// waits (briefly) for them to be reported.
///
/// Usage comes from the engine's stats, sampled about once a second:
/// `cpu_ms` and `max_rss_kb` miss what happened after the last sample, and
/// are 0 for an attempt shorter than a sample.
///
/// The [`Executor`] calls only hand work to the executor's own tokio
/// runtime and return; events arrive from its threads.
pub struct DockerExecutor {
    runtime: Option<Runtime>,
    engine: Engine,
    config: DockerConfig,
    running: Running,
}

impl DockerExecutor {
    /// Connects to the engine (agreeing on an API version) and starts the
    /// executor's runtime. Fails with a one-line reason when the engine
    /// cannot be reached.
    pub fn connect(config: DockerConfig) -> Result<Self, DockerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tessera-docker")
            .enable_all()
            .build()
            .map_err(|e| DockerError::Runtime {
                reason: e.to_string(),
            })?;
        let host = config.host.clone();
        let unreachable = |reason: String| DockerError::Unreachable {
            host: host.clone(),
            reason,
        };
        let connect = {
            let host = host.clone();
            async move {
                let docker = Docker::connect_with_host(&host).map_err(|e| reason(&e))?;
                match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
                    Ok(Ok(docker)) => Ok(docker),
                    Ok(Err(e)) => Err(reason(&e)),
                    Err(_) => Err(format!("no answer in {}s", CONNECT_TIMEOUT.as_secs())),
                }
            }
        };
        let docker = on(&runtime, connect).map_err(unreachable)?;
        let engine = Engine {
            calls: docker.clone().with_timeout(CALL_TIMEOUT),
            streams: docker.with_timeout(STREAM_TIMEOUT),
            host,
        };
        Ok(Self {
            runtime: Some(runtime),
            engine,
            config,
            running: Running::default(),
        })
    }

    /// How many attempts have a container right now.
    pub fn running(&self) -> usize {
        lock(&self.running).len()
    }

    /// Checks that `image` is on the engine (e.g. the default image, when a
    /// scheduler starts), with the same error an attempt would get.
    pub fn check_image(&self, image: &str) -> Result<(), DockerError> {
        let docker = self.engine.calls.clone();
        let name = image.to_string();
        match on(
            self.runtime(),
            async move { docker.inspect_image(&name).await },
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Err(DockerError::NoImage {
                image: image.into(),
                host: self.engine.host.clone(),
            }),
            Err(e) => Err(DockerError::engine(format!("inspect image {image}"), &e)),
        }
    }

    /// Cleans up after an earlier run of this scheduler instance: every
    /// container labelled with this instance that this executor is not
    /// running is killed and removed if its attempt is in `lost` or it has
    /// already stopped; the others (running, for attempts the caller still
    /// counts on) are reported as kept. Blocks until done.
    pub fn recover(&mut self, lost: &[(TaskRef, AttemptNo)]) -> Result<Recovery, DockerError> {
        let lost: HashSet<_> = lost.iter().copied().collect();
        let ours: HashSet<_> = lock(&self.running).keys().copied().collect();
        let docker = self.engine.calls.clone();
        let filter = format!("{LABEL_INSTANCE}={}", self.config.instance);
        let list = async move {
            let filters = HashMap::from([("label", vec![filter])]);
            let options = ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build();
            docker.list_containers(Some(options)).await
        };
        let found =
            on(self.runtime(), list).map_err(|e| DockerError::engine("list containers", &e))?;
        let mut recovery = Recovery::default();
        for summary in found {
            let attempt = summary.labels.as_ref().and_then(labelled_attempt);
            if attempt.is_some_and(|a| ours.contains(&a)) {
                continue;
            }
            let Some(container) = summary
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .or(summary.id.clone())
            else {
                continue;
            };
            let running = matches!(
                summary.state,
                Some(
                    ContainerSummaryStateEnum::RUNNING
                        | ContainerSummaryStateEnum::PAUSED
                        | ContainerSummaryStateEnum::RESTARTING
                )
            );
            let leftover = Leftover {
                container,
                attempt,
                running,
            };
            if running && attempt.is_some_and(|a| !lost.contains(&a)) {
                recovery.kept.push(leftover);
                continue;
            }
            let docker = self.engine.calls.clone();
            let name = leftover.container.clone();
            let remove = async move {
                let options = RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .v(true)
                    .build();
                docker.remove_container(&name, Some(options)).await
            };
            match on(self.runtime(), remove) {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    let what = format!("remove container {}", leftover.container);
                    return Err(DockerError::engine(what, &e));
                }
            }
            recovery.removed.push(leftover);
        }
        Ok(recovery)
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// Everything an attempt needs before its container can be created:
    /// its command line, directories and log files.
    fn prepare(&self, req: &StartRequest) -> Result<Option<Attempt>, ExecError> {
        let Some(argv) = argv(&req.action, &self.config.op_program)? else {
            return Ok(None);
        };
        let mut req = req.clone();
        req.workdir = absolute(&req.workdir);
        // The container runs as the attempt's user: its workdir is theirs.
        let files = tessera_exec::prepare_attempt(&req, req.user.as_ref())?;
        let (stdout_log, stderr_log, stderr_path) = (files.stdout, files.stderr, files.stderr_path);
        let image = req.image.as_deref().unwrap_or(&self.config.image);
        Ok(Some(Attempt {
            engine: self.engine.clone(),
            task: req.task,
            attempt: req.attempt,
            container: container_name(&self.config.instance, req.task, req.attempt),
            body: create_body(&self.config, &req, argv, image),
            stdout_log,
            stderr_log,
            stderr_path,
            memory_mb: req.memory_mb,
            started: Instant::now(),
            running: self.running.clone(),
            sink: self.config.sink.clone(),
        }))
    }

    fn order(&self, task: TaskRef, attempt: AttemptNo, order: Control) {
        if let Some(tx) = lock(&self.running).get(&(task, attempt)) {
            let _ = tx.send(order);
        }
    }
}

impl Executor for DockerExecutor {
    fn start(&mut self, req: StartRequest) {
        let (task, attempt) = (req.task, req.attempt);
        let result = match self.prepare(&req) {
            Ok(Some(run)) => {
                let (tx, rx) = mpsc::unbounded_channel();
                lock(&self.running).insert((task, attempt), tx);
                self.runtime().spawn(run.run(rx));
                return;
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        (self.config.sink)(ExecEvent::Exited {
            task,
            attempt,
            result,
            usage: AttemptUsage::default(),
        });
    }

    /// `SIGKILL` to the container (created but not started: never started);
    /// it is removed once its exit is collected.
    fn kill(&mut self, task: TaskRef, attempt: AttemptNo) {
        self.order(task, attempt, Control::Kill);
    }

    fn kill_all(&mut self) {
        for tx in lock(&self.running).values() {
            let _ = tx.send(Control::Kill);
        }
    }

    /// Pauses the container (all its processes, by the cgroup freezer).
    fn suspend(&mut self, task: TaskRef, attempt: AttemptNo) {
        self.order(task, attempt, Control::Pause);
    }

    /// Unpauses the container.
    fn resume(&mut self, task: TaskRef, attempt: AttemptNo) {
        self.order(task, attempt, Control::Unpause);
    }
}

impl Drop for DockerExecutor {
    fn drop(&mut self) {
        self.kill_all();
        let deadline = Instant::now() + DROP_GRACE;
        while self.running() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `fut` on the runtime and waits for its result. Unlike `block_on`,
/// this works from any thread, even one of another runtime.
fn on<T: Send + 'static>(runtime: &Runtime, fut: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(async move { drop(tx.send(fut.await)) });
    rx.recv().expect("the runtime runs the future to its end")
}
