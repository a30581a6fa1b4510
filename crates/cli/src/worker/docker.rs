//! `tessera worker --docker`: attempts whose assignment names an image run
//! in containers on this machine's Docker engine (DOCKER_HOST or
//! /var/run/docker.sock), beside the host processes, behind
//! [`tessera_exec::Split`] as in the server.
//!
//! Each worker owns the containers of its own *instance* (a hash of its
//! name), so two workers on one engine never touch each other's. A worker
//! that starts again holds no attempt (the server lost them when it
//! registered again), so every container of its instance left from an
//! earlier run is killed and removed at start.

use tessera_docker::{DockerConfig, DockerError, DockerExecutor};
use tessera_exec::EventSink;

/// The instance name of worker `name`'s containers: `wk` and a hash of
/// the name (container names allow only a few characters).
pub(super) fn instance(name: &str) -> String {
    // FNV-1a: stable across runs and builds (the std hasher is not).
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("wk{:08x}", hash as u32)
}

/// Connects to the engine for worker `name` and removes what an earlier
/// run of it left; how many containers that was.
pub(super) fn connect(name: &str, sink: EventSink) -> Result<(DockerExecutor, usize), DockerError> {
    let mut config = DockerConfig::new(instance(name), sink);
    config.node = name.to_string();
    let mut docker = DockerExecutor::connect(config)?;
    // Stopped ones and those of unreadable attempts go at once; running
    // ones are kept unless named lost, and none of them is still ours.
    let first = docker.recover(&[])?;
    let running: Vec<_> = first.kept.iter().filter_map(|l| l.attempt).collect();
    let second = if running.is_empty() {
        Default::default()
    } else {
        docker.recover(&running)?
    };
    Ok((docker, first.removed.len() + second.removed.len()))
}

#[cfg(test)]
mod tests {
    use super::instance;

    #[test]
    fn instance_names_are_stable_short_and_differ_by_worker() {
        assert_eq!(instance("a"), instance("a"));
        assert_ne!(instance("a"), instance("b"));
        let i = instance("rack 1/ü");
        assert_eq!(i.len(), 10);
        assert!(i.chars().all(|c| c.is_ascii_alphanumeric()), "{i}");
    }
}
