//! `tessera server --docker-api ADDR`: the Docker Engine API endpoint
//! (crates/dockerapi) on its own listener, beside the native API, over the
//! same service; it stops when the server starts shutting down.

use crate::fail::{Failure, Result};
use crate::server::ServerConfig;
use std::io::Write;
use tessera_dockerapi::{Bound, Cluster, DockerApi, Engine, Listen};

/// The `--docker-api` address (flag, env or file), checked.
pub(crate) fn address(given: Option<&String>) -> Result<Option<Listen>> {
    given.map(|s| s.parse().map_err(Failure::input)).transpose()
}

/// Binds and serves the endpoint when the configuration asks for it, and
/// says where; a port that cannot be bound stops the server.
pub(crate) async fn start(
    config: &ServerConfig,
    service: tessera_service::Service,
    pool: Option<std::sync::Arc<tessera_api::Pool>>,
) -> Result<()> {
    let Some(at) = &config.docker_api else {
        return Ok(());
    };
    let bound = Bound::bind(at)
        .await
        .map_err(|e| Failure::env(format!("--docker-api: cannot listen on {at}: {e}")))?;
    let engine = if config.docker {
        Engine::local()
    } else {
        Engine::none("the server runs without --docker")
    };
    let runs = match (config.docker, config.workers) {
        (true, _) => "containers run on the local Docker engine",
        (false, true) => "containers run on workers that offer docker",
        (false, false) => {
            "containers are refused: start the server with --docker, or with workers that offer docker"
        }
    };
    // A closed stdout is no reason to stop serving.
    let _ = writeln!(
        std::io::stdout().lock(),
        "docker API on {}  ({runs})",
        bound.address()
    );
    let host = crate::worker::host::hostname_or("tessera");
    let data = config.data_dir.clone();
    let local = move || Cluster {
        nodes: 1,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes: crate::worker::host::memory_mb().saturating_mul(1 << 20),
        names: vec![(
            host.clone(),
            format!("this server, data in {}", data.display()),
        )],
    };
    // Containers run on the server's engine with --docker, else on the
    // workers that offer docker. With both, every node counts (as a Swarm
    // manager counts its nodes): this machine and each ready worker (the
    // pool's node for the server's own slots is this machine already).
    let own = crate::worker::host::hostname_or(tessera_api::DEFAULT_NODE_NAME);
    let pool_for_ps = pool.clone();
    let cluster: Box<dyn Fn() -> Cluster + Send + Sync> = match pool {
        Some(pool) if !config.docker => {
            Box::new(move || workers(&pool.ready_nodes(), offers_docker))
        }
        Some(pool) => Box::new(move || {
            let mut all = local();
            let others = workers(&pool.ready_nodes(), |n| n.name != own);
            all.nodes += others.nodes;
            all.cpus += others.cpus;
            all.memory_bytes = all.memory_bytes.saturating_add(others.memory_bytes);
            all.names.extend(others.names);
            all
        }),
        None => Box::new(local),
    };
    let mut api = DockerApi::new(service.clone(), engine, cluster);
    if let Some(pool) = pool_for_ps {
        api = api.with_unplaced(move |job| pool.unplaceable(job));
    }
    let mut closing = service.closing();
    tokio::spawn(tessera_dockerapi::serve(bound, api, async move {
        let _ = closing.wait_for(|closed| *closed).await;
    }));
    Ok(())
}

fn offers_docker(node: &tessera_api::NodeInfo) -> bool {
    node.executors.iter().any(|e| e == "docker")
}

/// The ready workers `keep` keeps, as `docker info` shows a cluster.
fn workers(
    nodes: &[tessera_api::NodeInfo],
    keep: impl Fn(&tessera_api::NodeInfo) -> bool,
) -> Cluster {
    let docker: Vec<_> = nodes.iter().filter(|n| keep(n)).collect();
    Cluster {
        nodes: docker.len() as u32,
        cpus: docker.iter().map(|n| n.cpus).sum(),
        memory_bytes: docker
            .iter()
            .map(|n| n.memory_mb.saturating_mul(1 << 20))
            .sum(),
        names: docker
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    format!("{} slots, {} cpus", n.slots, n.cpus),
                )
            })
            .collect(),
    }
}
