//! A running container's resource use, sampled from the engine's stats
//! stream (about once a second).

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use std::sync::{Arc, Mutex, PoisonError};

/// The most a container was seen using.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sampled {
    /// Total CPU time of the container's processes, in nanoseconds.
    pub cpu_ns: u64,
    /// Peak memory in use, in bytes, page cache left out (as `docker stats`
    /// counts it).
    pub peak_bytes: u64,
}

impl Sampled {
    /// Folds one sample in. Samples after the container ended read as
    /// zeros, so each figure keeps its maximum.
    pub(crate) fn add(&mut self, stats: &ContainerStatsResponse) {
        let cpu = stats
            .cpu_stats
            .as_ref()
            .and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0);
        self.cpu_ns = self.cpu_ns.max(cpu);
        if let Some(memory) = &stats.memory_stats {
            let usage = memory.usage.unwrap_or(0);
            // cgroup v1 reports "total_inactive_file" (older engines "cache"),
            // v2 "inactive_file": memory the kernel reclaims at will.
            let stat = |k: &str| memory.stats.as_ref().and_then(|s| s.get(k).copied());
            let reclaimable = stat("total_inactive_file")
                .or_else(|| stat("inactive_file"))
                .or_else(|| stat("cache"))
                .unwrap_or(0);
            self.peak_bytes = self.peak_bytes.max(usage.saturating_sub(reclaimable));
        }
    }
}

/// Follows the container's stats until the stream ends, keeping the
/// maxima in `into`. Errors end the sampling quietly: usage is best effort.
pub(crate) async fn sample(docker: Docker, container: String, into: Arc<Mutex<Sampled>>) {
    let options = StatsOptionsBuilder::new().stream(true).build();
    let mut stream = docker.stats(&container, Some(options));
    while let Some(Ok(stats)) = stream.next().await {
        into.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(&stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats};
    use std::collections::HashMap;

    fn stats(cpu: u64, usage: u64, inactive: u64) -> ContainerStatsResponse {
        ContainerStatsResponse {
            cpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage {
                    total_usage: Some(cpu),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(usage),
                stats: Some(HashMap::from([(
                    "total_inactive_file".to_string(),
                    inactive,
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_the_maxima_and_leaves_page_cache_out() {
        let mut s = Sampled::default();
        s.add(&stats(5_000_000, 10 << 20, 4 << 20));
        s.add(&stats(9_000_000, 8 << 20, 0));
        s.add(&stats(0, 0, 0));
        assert_eq!(
            s,
            Sampled {
                cpu_ns: 9_000_000,
                peak_bytes: 8 << 20
            }
        );
    }
}
