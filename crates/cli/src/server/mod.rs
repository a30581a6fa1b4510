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

mod config;

use crate::fail::{Failure, Result};
pub use config::{Database, ServerArgs, ServerConfig};
use std::path::{Path, PathBuf};

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
