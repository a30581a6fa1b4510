//! `tessera server`: the scheduler as a service. One process runs the driver
//! (on its own thread, with its own store connection) and the HTTP API.
//!
//! Configuration comes from, in increasing precedence: built-in defaults, a
//! TOML file (`--config`, or `TESSERA_CONFIG`), environment variables
//! (`TESSERA_LISTEN`, `TESSERA_DATA_DIR`, `TESSERA_DATABASE`,
//! `TESSERA_SLOTS`, `TESSERA_WORKERS`, `TESSERA_LABELS`,
//! `TESSERA_MAX_UPLOAD_BYTES`, `TESSERA_VOLUMES`, `TESSERA_TASK_UIDS`,
//! `TESSERA_HTTP_*`), and flags.
//! `tessera.sample.toml` documents every field.

use crate::fail::{Failure, Result};
use clap::Args;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:6543";

#[derive(Args, Debug, Default)]
pub struct ServerArgs {
    /// Address to listen on [default: 127.0.0.1:6543].
    #[arg(long, env = "TESSERA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where the database (SQLite), job workspaces and logs live
    /// [default: $XDG_STATE_HOME/tessera/server or ~/.local/state/tessera/server].
    #[arg(long, env = "TESSERA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite:PATH` or `postgres://user:pass@host/db`
    /// [default: SQLite in the data directory].
    #[arg(long, env = "TESSERA_DATABASE")]
    pub database: Option<String>,
    /// CPU slots for tasks on this machine [default: one per core]; 0 runs
    /// every task on workers (`tessera worker`) that share the data
    /// directory at the same path.
    #[arg(long, env = "TESSERA_SLOTS")]
    pub slots: Option<u32>,
    /// Take workers (`tessera worker`) beside this machine's slots: the
    /// server's slots become one node among the workers, and placement
    /// (resources, labels, locality, spread) chooses among them all
    /// [default: off; --slots 0 implies it].
    #[arg(long, env = "TESSERA_WORKERS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub workers: Option<bool>,
    /// Labels of this server's own node (with --workers), as k=v,k=v:
    /// tasks that name labels in `resources.labels` run only on nodes that
    /// carry them all.
    #[arg(
        long,
        env = "TESSERA_LABELS",
        value_delimiter = ',',
        value_name = "K=V"
    )]
    pub labels: Vec<String>,
    /// How long a worker's lease on an attempt lasts without a heartbeat,
    /// in milliseconds; then the attempt is lost and retried elsewhere
    /// [default: 10000].
    #[arg(long, env = "TESSERA_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// The largest upload the API accepts, in bytes [default: 8 GiB].
    #[arg(long, env = "TESSERA_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// A directory encodes may read files from in place, as NAME=DIR
    /// (repeatable; TESSERA_VOLUMES takes NAME=DIR,NAME=DIR). Adds to the
    /// file's [volumes], replacing a volume of the same name.
    #[arg(
        long = "volume",
        value_name = "NAME=DIR",
        env = "TESSERA_VOLUMES",
        value_delimiter = ','
    )]
    pub volumes: Vec<String>,
    /// A volume tasks may also write in (mounted into their containers
    /// read-write), as NAME=DIR (repeatable; TESSERA_WRITABLE_VOLUMES takes
    /// NAME=DIR,NAME=DIR). Adds to the file's [writable_volumes].
    #[arg(
        long = "writable-volume",
        value_name = "NAME=DIR",
        env = "TESSERA_WRITABLE_VOLUMES",
        value_delimiter = ','
    )]
    pub writable_volumes: Vec<String>,
    /// The uids projects' tasks run as, FIRST-LAST: project N's tasks run
    /// as uid FIRST+N (group the same), so no project reads another's
    /// files. Needs a server running as root, which uses them always
    /// [default: 200000-299999].
    #[arg(long, value_name = "FIRST-LAST", env = "TESSERA_TASK_UIDS")]
    pub task_uids: Option<String>,
    /// Run tasks that name a container image on this machine's Docker
    /// engine (DOCKER_HOST or /var/run/docker.sock); the server refuses to
    /// start if the engine does not answer [default: off; such tasks are
    /// refused at submission].
    #[arg(long, env = "TESSERA_DOCKER", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub docker: Option<bool>,
    /// Also serve the Docker Engine API (the docker CLI, Swarm-classic
    /// `waitfor`s) on HOST:PORT or unix:PATH; containers need --docker or
    /// workers offering docker [default: off].
    #[arg(long, env = "TESSERA_DOCKER_API", value_name = "ADDR")]
    pub docker_api: Option<String>,
    /// A TOML configuration file (see tessera.sample.toml).
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub http: crate::http_limits::HttpArgs,
}

/// The same fields, as the configuration file spells them.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database: Option<String>,
    slots: Option<u32>,
    workers: Option<bool>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    lease_ms: Option<u64>,
    max_upload_bytes: Option<u64>,
    #[serde(default)]
    volumes: BTreeMap<String, PathBuf>,
    #[serde(default)]
    writable_volumes: BTreeMap<String, PathBuf>,
    task_uids: Option<String>,
    /// Replaced by `task_uids`; refused with a message saying so.
    run_as: Option<String>,
    docker: Option<bool>,
    docker_api: Option<String>,
    #[serde(default)]
    http: crate::http_limits::HttpFile,
}

/// The settled configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Database,
    /// 0: tasks run on workers only.
    pub slots: u32,
    /// Whether workers take part (always with 0 slots).
    pub workers: bool,
    /// The labels of the server's own node (with workers).
    pub labels: BTreeMap<String, String>,
    /// A worker's lease on an attempt without a heartbeat.
    pub lease: std::time::Duration,
    pub max_upload_bytes: u64,
    /// Volumes by name; relative directories are taken from the working
    /// directory.
    pub volumes: BTreeMap<String, PathBuf>,
    /// The names of the volumes tasks may write in (among `volumes`).
    pub writable: std::collections::BTreeSet<String>,
    /// The uids projects' tasks run as, as given (checked by
    /// [`task_users`](Self::task_users) when the server starts, not here:
    /// `tessera admin` reads the same configuration).
    pub task_uids: Option<String>,
    /// Whether container tasks run on the local Docker engine.
    pub docker: bool,
    /// Where the Docker Engine API listens, if anywhere.
    pub docker_api: Option<tessera_dockerapi::Listen>,
    /// Connection and request limits (`[http]`).
    pub http: tessera_api::HttpLimits,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl ServerConfig {
    /// Flags and environment (already merged by clap) over the file over defaults.
    pub fn resolve(args: &ServerArgs) -> Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = match args.listen.or(file.listen) {
            Some(l) => l,
            None => DEFAULT_LISTEN.parse().expect("valid default"),
        };
        let data_dir = match args.data_dir.clone().or(file.data_dir) {
            Some(d) => d,
            None => default_data_dir()?,
        };
        let data_dir = std::path::absolute(&data_dir)
            .map_err(|e| Failure::env(format!("{}: {e}", data_dir.display())))?;
        let database = match args.database.clone().or(file.database) {
            Some(url) => parse_database(&url)?,
            None => Database::Sqlite(data_dir.join("tessera.db")),
        };
        let slots = args
            .slots
            .or(file.slots)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
        let workers = slots == 0 || args.workers.or(file.workers).unwrap_or(false);
        let mut labels = file.labels;
        for spec in &args.labels {
            match spec.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    labels.insert(k.to_string(), v.to_string());
                }
                _ => {
                    return Err(Failure::input(format!(
                        "--labels {spec:?}: give labels as k=v,k=v, e.g. --labels gpu=yes,zone=a"
                    )))
                }
            }
        }
        let lease_ms = args.lease_ms.or(file.lease_ms).unwrap_or(10_000);
        if lease_ms < 100 {
            return Err(Failure::input(format!(
                "lease_ms {lease_ms} is too short; give at least 100"
            )));
        }
        let max_upload_bytes = args
            .max_upload_bytes
            .or(file.max_upload_bytes)
            .unwrap_or(tessera_api::DEFAULT_MAX_UPLOAD);
        let mut volumes = file.volumes;
        for spec in &args.volumes {
            let (name, dir) = parse_volume(spec)?;
            volumes.insert(name, dir);
        }
        let mut writable = std::collections::BTreeSet::new();
        let flags = args.writable_volumes.iter().map(|s| parse_volume(s));
        for entry in file.writable_volumes.into_iter().map(Ok).chain(flags) {
            let (name, dir) = entry?;
            writable.insert(name.clone());
            volumes.insert(name, dir);
        }
        if file.run_as.is_some() {
            return Err(Failure::input(
                "run_as is gone: as root, each project's tasks now run as a uid of its own \
                 (task_uids, default 200000-299999); remove run_as from the config file",
            ));
        }
        let task_uids = args.task_uids.clone().or(file.task_uids);
        let docker = args.docker.or(file.docker).unwrap_or(false);
        let http = crate::http_limits::resolve(&args.http, &file.http)?;
        Ok(Self {
            listen,
            data_dir,
            database,
            slots,
            workers,
            labels,
            lease: std::time::Duration::from_millis(lease_ms),
            max_upload_bytes,
            volumes,
            writable,
            task_uids,
            docker,
            docker_api: crate::docker_api::address(
                args.docker_api.as_ref().or(file.docker_api.as_ref()),
            )?,
            http,
        })
    }
}

/// `NAME=DIR` of `--volume`.
fn parse_volume(spec: &str) -> Result<(String, PathBuf)> {
    match spec.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(Failure::input(format!(
            "--volume {spec:?}: give it as NAME=DIR, e.g. --volume media=/srv/media"
        ))),
    }
}

impl ServerConfig {
    /// The uids projects' tasks run as: as root, the configured range (or
    /// the default), checked; otherwise none (tasks run as this process's
    /// user), and a range given anyway is refused, since it cannot be used.
    pub fn task_users(&self) -> Result<Option<tessera_exec::TaskUids>> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        match (&self.task_uids, root) {
            (Some(range), true) => tessera_exec::TaskUids::parse(range)
                .map(Some)
                .map_err(Failure::input),
            (None, true) => {
                let uids = tessera_exec::TaskUids::DEFAULT;
                uids.check().map_err(|e| {
                    Failure::input(format!("{e}; set another range with --task-uids"))
                })?;
                Ok(Some(uids))
            }
            (Some(range), false) => Err(Failure::input(format!(
                "--task-uids {range}: switching tasks to other uids needs a server running \
                 as root; start it as root, or leave task uids out"
            ))),
            (None, false) => Ok(None),
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::input(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        let at = line.map_or(String::new(), |l| format!(" (line {l})"));
        Failure::input(format!(
            "config file {}: {}{at}",
            path.display(),
            e.message()
        ))
    })
}

pub fn parse_database(url: &str) -> Result<Database> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(Failure::input(
                "--database sqlite: needs a file path, e.g. sqlite:/var/lib/tessera/tessera.db",
            ));
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url.to_string()));
    }
    Err(Failure::input(format!(
        "unsupported database URL {url:?}: use sqlite:PATH or postgres://user:password@host/database"
    )))
}

pub fn default_data_dir() -> Result<PathBuf> {
    crate::dirs::state_home()
        .map(|d| d.join("tessera/server"))
        .ok_or_else(|| Failure::env("cannot choose a data directory: set --data-dir or HOME"))
}

/// Opens the driver's connection (which takes the one-scheduler lock) and a
/// second one for the API (reads and account writes).
fn open_stores(db: &Database) -> Result<(Box<DriverStore>, Box<dyn tessera_api::ApiStore>)> {
    match db {
        Database::Sqlite(path) => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Failure::env(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let driver = tessera_store::SqliteStore::open(path)?;
            let api = tessera_store::SqliteStore::open_secondary(path)?;
            Ok((Box::new(driver), Box::new(api)))
        }
        Database::Postgres(url) => {
            let driver = tessera_store::PostgresStore::connect(url)?;
            let api = tessera_store::PostgresStore::connect_secondary(url)?;
            Ok((Box::new(driver), Box::new(api)))
        }
    }
}

/// The store the driver needs, boxed (`tessera_store` implements `Store`
/// for boxes).
pub type DriverStore = dyn tessera_store::Store + Send;

/// Runs the server; `spawner` starts its tasks (see
/// [`Spawner::start`](tessera_exec::Spawner::start): started first thing).
pub fn run(
    args: ServerArgs,
    spawner: std::result::Result<tessera_exec::Spawner, tessera_exec::ExecError>,
) -> Result<()> {
    let spawner = spawner.map_err(Failure::env)?;
    let mut config = ServerConfig::resolve(&args)?;
    let task_uids = config.task_users()?;
    let volumes = tessera_api::Volumes::new(config.volumes.clone()).map_err(Failure::input)?;
    config.data_dir = crate::tenancy::prepare_data_dir(&config.data_dir, task_uids.is_some())?;
    if let Some(uids) = task_uids {
        // Task workspaces live under the data directory: every project's
        // user must be able to pass the folders above it.
        let sample = uids.user_of(None).map_err(Failure::internal)?;
        sample.check_reach(&config.data_dir).map_err(|e| {
            Failure::env(format!(
                "the projects' task users (uids {}-{}): {e}",
                uids.first, uids.last
            ))
        })?;
    }
    let (driver_store, api_store) = open_stores(&config.database)?;
    crate::tenancy::close_secrets(&config)?;
    let op_program = std::env::current_exe()
        .map_err(|e| Failure::env(format!("cannot find the tessera executable: {e}")))?;
    let mut driver_config = tessera_driver::DriverConfig::new(config.slots, &config.data_dir);
    driver_config.task_uids = task_uids;
    driver_config.volumes = driver_volumes(&config)?;
    let tasks_as = crate::tenancy::isolation_line(task_uids);
    // Workers may offer docker: with them an image task is accepted and
    // waits (listed `unplaceable`, with the reason) until one that does
    // registers.
    driver_config.images = config.docker || config.workers;
    let mut docker_failed = None;
    // Containers left by an earlier run of this server (same data
    // directory) belong to attempts that are lost now: removed at start.
    let leftovers: Vec<_> = if config.docker {
        driver_store
            .open_attempts()?
            .iter()
            .map(|a| (a.task, a.number))
            .collect()
    } else {
        Vec::new()
    };
    let instance = docker_instance(&config.data_dir);
    // With workers, host attempts are placed among them (and the server's
    // own slots, unless there are none); without, they run here directly.
    let workers = config.workers.then(|| tessera_api::Pool::new(config.lease));
    if let Some(pool) = &workers {
        pool.on_input(op_input);
    }
    let remote = workers.clone();
    let node_name = crate::worker::host::hostname_or(tessera_api::DEFAULT_NODE_NAME);
    let local_node = tessera_api::NodeInfo {
        name: node_name.clone(),
        slots: config.slots,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_mb: crate::worker::host::memory_mb(),
        disk_free_mb: crate::worker::host::disk_free_mb(&config.data_dir),
        labels: config.labels.clone(),
        executors: vec!["local".into()],
        gpus: crate::worker::host::gpus(),
        data: "shared".into(),
    };
    // Image attempts: on the server's own engine first (`--docker`, through
    // `Split`); else, with workers, placement gives them to workers that
    // offer docker; else they fail at once, saying so (the core refuses
    // them at submission, but a job from a run with --docker may remain).
    let mut driver = tessera_driver::Driver::new(
        driver_store,
        |sink| -> Box<dyn tessera_exec::Executor> {
            let host = |sink| -> Box<dyn tessera_exec::Executor> {
                let local = move |sink| -> Box<dyn tessera_exec::Executor> {
                    let config = tessera_exec::LocalConfig { op_program, sink };
                    Box::new(tessera_exec::LocalExecutor::with_spawner(
                        config,
                        Ok(spawner),
                    ))
                };
                match remote {
                    None => local(sink),
                    Some(pool) if local_node.slots == 0 => {
                        Box::new(tessera_api::Placed::remote(pool, sink))
                    }
                    Some(pool) => Box::new(tessera_api::Placed::with_local(
                        pool, sink, local_node, local,
                    )),
                }
            };
            if config.workers && !config.docker {
                return host(sink);
            }
            Box::new(tessera_exec::Split::new(sink, host, |sink| {
                if !config.docker {
                    return None;
                }
                let docker = tessera_docker::DockerConfig::new(instance, sink);
                let connected = tessera_docker::DockerExecutor::connect(docker)
                    .and_then(|mut d| d.recover(&leftovers).map(|_| d));
                connected.map_err(|e| docker_failed = Some(e)).ok()
            }))
        },
        driver_config,
    );
    if let Some(e) = docker_failed {
        return Err(Failure::env(format!(
            "--docker: {e}; start the Docker engine, or run without --docker"
        )));
    }
    // Quotas live with the accounts (the API's store, where they are set);
    // the driver enforces them, so it gets each one before it starts anything.
    for project in api_store.projects()? {
        let quota = api_store.quota(project.id)?;
        if !quota.is_unlimited() {
            driver.set_quota(project.id, quota)?;
        }
    }
    let resumed = driver.recover(None)?;
    let handle = driver.handle();
    if let Some(pool) = &workers {
        let handle = handle.clone();
        pool.on_capacity(move |slots| handle.set_capacity(slots));
    }
    let driver_thread = std::thread::Builder::new()
        .name("tessera-driver".into())
        .spawn(move || driver.serve(&mut ()))
        .map_err(|e| Failure::internal(format!("cannot start the scheduler thread: {e}")))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))?;
    let mut http = config.http.clone();
    if let Some(line) = crate::http_limits::fit_to_descriptors(&mut http) {
        eprintln!("tessera server: {line}");
    }
    let state = tessera_api::AppState::new(api_store, handle.clone(), config.data_dir.clone())
        .with_http_limits(http)
        .with_max_upload_bytes(config.max_upload_bytes)
        .with_volumes(volumes)
        .with_task_uids(task_uids)
        .with_node_name(&node_name);
    let pool = workers.clone();
    let state = match workers {
        Some(pool) => state.with_workers(pool),
        None => state,
    };
    // Go-Docker's REST API (godocker-cli), over the same service; its label
    // constraints are those of the ready workers that run containers
    // (with --docker, containers run here, where labels place nothing).
    let godocker = tessera_godocker::router_with_labels(
        state.service().clone(),
        crate::godocker_labels::offered(pool.clone().filter(|_| !config.docker)),
    );
    let state = state.with_nested(tessera_godocker::PREFIX, godocker);
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                Failure::env(format!(
                    "cannot listen on {}: {e} (is another server running? try --listen)",
                    config.listen
                ))
            })?;
        let addr = listener.local_addr().map_err(Failure::internal)?;
        let db = match &config.database {
            Database::Sqlite(p) => format!("sqlite:{}", p.display()),
            Database::Postgres(_) => "postgres".into(),
        };
        // Status lines must never take the server down (a closed stdout is
        // not a reason to stop serving), so write errors are ignored.
        let slots = match (config.slots, config.workers) {
            (0, _) => format!(
                "tasks run on workers, leases of {} ms",
                config.lease.as_millis()
            ),
            (n, true) => format!(
                "{n} slots and workers, leases of {} ms",
                config.lease.as_millis()
            ),
            (n, false) => format!("{n} slots"),
        };
        status(&format!(
            "tessera server listening on http://{addr}  (data {}, database {db}, {slots})",
            config.data_dir.display(),
        ));
        status(&tasks_as);
        if config.docker {
            status("container tasks (`image:`) run on the local Docker engine");
        } else if config.workers {
            status("container tasks (`image:`) run on workers that offer docker (tessera worker --docker)");
        }
        if resumed > 0 {
            status(&format!("resumed {resumed} unfinished jobs"));
        }

        crate::docker_api::start(&config, state.service().clone(), pool).await?;
        tessera_api::serve(listener, state, shutdown_signal())
            .await
            .map_err(Failure::internal)
    });
    // Stop the scheduler: running attempts are killed and go back to the
    // queue; the next start resumes them.
    handle.interrupt();
    match driver_thread.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(Failure::internal("the scheduler thread panicked")),
    }
    served
}

/// The volumes tasks may mount, by name: canonical folders (the API's
/// [`Volumes`](tessera_api::Volumes) checked they exist) and whether tasks
/// may write in them.
fn driver_volumes(config: &ServerConfig) -> Result<tessera_driver::Volumes> {
    config
        .volumes
        .iter()
        .map(|(name, dir)| {
            let dir = std::fs::canonicalize(dir)
                .map_err(|e| Failure::input(format!("volume {name}: {}: {e}", dir.display())))?;
            let writable = config.writable.contains(name);
            Ok((name.clone(), tessera_driver::Volume { dir, writable }))
        })
        .collect()
}

/// The file a built-in op's attempt reads (the source its encode request
/// names), for placement by locality; `None` for anything else.
fn op_input(req: &tessera_exec::StartRequest) -> Option<PathBuf> {
    let tessera_types::Action::Op { args, .. } = &req.action else {
        return None;
    };
    let at = args.iter().position(|a| a == "--workdir")?;
    let request = Path::new(args.get(at + 1)?).join(tessera_media::REQUEST_FILE);
    // A member may have written it: read inside the attempt's reach only.
    let bytes = tessera_confine::read(&req.reach, &request).ok()?;
    let req: tessera_media::EncodeRequest = serde_json::from_slice(&bytes).ok()?;
    Some(req.input)
}

/// Names this server's containers on a shared engine: a hash of its data
/// directory, so two servers never touch each other's containers.
fn docker_instance(data_dir: &std::path::Path) -> String {
    // FNV-1a: stable across runs and builds (the std hasher is not).
    let hash = data_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("srv{:08x}", hash as u32)
}

fn status(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!(
        "shutting down: finishing requests, stopping running tasks (they resume on the next start)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:7000\"\nslots = 3\ndata_dir = \"/srv/t\"\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(file.clone()),
            slots: Some(5),
            ..Default::default()
        };
        let c = ServerConfig::resolve(&args).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.slots, 5);
        assert_eq!(c.max_upload_bytes, tessera_api::DEFAULT_MAX_UPLOAD);
        assert_eq!(c.data_dir, PathBuf::from("/srv/t"));
        assert_eq!(
            c.database,
            Database::Sqlite(PathBuf::from("/srv/t/tessera.db"))
        );
    }

    #[test]
    fn volume_flags_add_to_and_replace_the_files_volumes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(
            &file,
            "[volumes]\nmedia = \"/srv/media\"\narchive = \"/mnt/archive\"\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(file),
            volumes: vec!["media=/data/media".into(), "inbox=/in".into()],
            ..Default::default()
        };
        let c = ServerConfig::resolve(&args).unwrap();
        let got: Vec<(&str, &str)> = c
            .volumes
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("archive", "/mnt/archive"),
                ("inbox", "/in"),
                ("media", "/data/media")
            ]
        );
        let err = ServerConfig::resolve(&ServerArgs {
            volumes: vec!["nodir".into()],
            data_dir: Some(dir.path().into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.message.contains("NAME=DIR"), "{}", err.message);
        let err =
            tessera_api::Volumes::new([("media".into(), dir.path().join("none"))]).unwrap_err();
        assert!(err.starts_with("volume media: "), "{err}");
    }

    #[test]
    fn task_uids_are_used_as_root_refused_otherwise_and_run_as_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "run_as = \"nobody\"\n").unwrap();
        let args = ServerArgs {
            config: Some(file.clone()),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let err = ServerConfig::resolve(&args).unwrap_err();
        assert!(err.message.starts_with("run_as is gone"), "{}", err.message);
        std::fs::write(&file, "task_uids = \"300000-300099\"\n").unwrap();
        let config = ServerConfig::resolve(&args).unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        match config.task_users() {
            Ok(Some(u)) => assert!(root && (u.first, u.last) == (300_000, 300_099)),
            Err(e) => assert!(!root && e.message.contains("needs a server running as root")),
            Ok(None) => panic!("a range given was ignored"),
        }
        // The flag beats the file; a bad range is one line.
        let bad = ServerArgs {
            task_uids: Some("10-5".into()),
            ..args
        };
        let err = ServerConfig::resolve(&bad)
            .unwrap()
            .task_users()
            .unwrap_err();
        assert!(
            err.message.starts_with("task uids") || !root,
            "{}",
            err.message
        );
        let default = ServerConfig::resolve(&ServerArgs::default()).unwrap();
        assert_eq!(
            default.task_users().unwrap(),
            root.then_some(tessera_exec::TaskUids::DEFAULT)
        );
    }

    #[test]
    fn bad_config_is_named_precisely() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "listne = \"x\"\n").unwrap();
        let err = ServerConfig::resolve(&ServerArgs {
            config: Some(file),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.message.contains("unknown field `listne`"),
            "{}",
            err.message
        );
        let err = parse_database("mysql://x").unwrap_err();
        assert!(
            err.message.starts_with("unsupported database URL"),
            "{}",
            err.message
        );
        assert_eq!(
            parse_database("sqlite:/a/b.db").unwrap(),
            Database::Sqlite("/a/b.db".into())
        );
    }
}
