//! `/_ping`, `/version`, `/info`: what the docker CLI asks first, and the
//! cluster as a Swarm manager shows it.

use crate::http::{self, Answer, Body};
use crate::DockerApi;
use serde_json::json;
use tessera_service::{Need, ProjectAccess};

/// The API version this endpoint speaks; the CLI negotiates down to it.
pub const API_VERSION: &str = "1.41";

/// The oldest API version it accepts.
pub const MIN_API_VERSION: &str = "1.24";

/// What the cluster holds, for `docker info` (the server fills it in: its
/// own machine, or its workers).
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub nodes: u32,
    pub cpus: u32,
    pub memory_bytes: u64,
    /// Each node's name and a few words about it, for `docker info`.
    pub names: Vec<(String, String)>,
}

/// `GET|HEAD /_ping`: no key needed (the CLI asks it before anything, to
/// learn the API version).
pub fn ping() -> hyper::Response<Body> {
    let mut r = hyper::Response::new(http::full("OK"));
    let h = r.headers_mut();
    for (k, v) in [
        ("api-version", API_VERSION),
        ("docker-experimental", "false"),
        ("ostype", "linux"),
        ("swarm", "active/manager"),
        ("cache-control", "no-cache, no-store, must-revalidate"),
    ] {
        h.insert(k, hyper::header::HeaderValue::from_static(v));
    }
    r
}

fn version_fields() -> serde_json::Value {
    let version = format!("tessera-{}", env!("CARGO_PKG_VERSION"));
    json!({
        "Platform": {"Name": "Tessera"},
        "Components": [{
            "Name": "Engine",
            "Version": version,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": std::env::consts::ARCH,
                "GitCommit": "-",
                "GoVersion": "- (Rust)",
                "BuildTime": "-",
                "KernelVersion": "",
                "Experimental": "false",
            },
        }],
        "Version": version,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": std::env::consts::ARCH,
        "KernelVersion": "",
        "BuildTime": "",
    })
}

pub fn version() -> Answer {
    http::ok(&version_fields())
}

impl DockerApi {
    /// `GET /info`: the cluster's nodes, cpus and memory, and the
    /// project's containers by state.
    pub(crate) async fn info<R: Need>(&self, project: &ProjectAccess<R>) -> Answer {
        let cluster = (self.cluster)();
        let containers = self.list(project).await?;
        let count = |s: &str| containers.iter().filter(|c| c.status() == s).count();
        let (running, paused) = (count("running"), count("paused"));
        let status: Vec<[String; 2]> =
            std::iter::once(["Nodes".to_string(), cluster.nodes.to_string()])
                .chain(
                    cluster
                        .names
                        .iter()
                        .map(|(n, what)| [format!(" {n}"), what.clone()]),
                )
                .collect();
        http::ok(&json!({
            "ID": "tessera",
            "Containers": containers.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": containers.len() - running - paused,
            "Images": 0,
            "Driver": "tessera",
            "SystemStatus": status,
            "NCPU": cluster.cpus,
            "MemTotal": cluster.memory_bytes,
            "Name": format!("tessera (project {})", project.project().name),
            "ServerVersion": version_fields()["Version"],
            "OperatingSystem": "Tessera",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "Labels": [],
            "Swarm": {
                "NodeID": "tessera",
                "NodeAddr": "",
                "LocalNodeState": "active",
                "ControlAvailable": true,
                "Error": "",
                "RemoteManagers": [],
                "Nodes": cluster.nodes,
                "Managers": 1,
                "Cluster": {"ID": "tessera", "Spec": {}},
            },
            "Warnings": [],
        }))
    }
}
