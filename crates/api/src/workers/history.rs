//! What the pool remembers of where attempts went: the nodes each task's
//! attempts ended badly on (its retries prefer others) and the nodes each
//! job's attempts were handed to (for placement rules that name jobs).

use super::pool::Inner;
use tessera_exec::StartRequest;
use tessera_types::{JobId, TaskRef};

/// Tasks remembered with the nodes their attempts ended badly on, at most.
const BAD_NODES_KEPT: usize = 100_000;
/// Jobs remembered with the nodes they ran on, at most.
const RAN_ON_KEPT: usize = 100_000;
/// Nodes remembered per job, at most (the latest ones).
const RAN_ON_PER_JOB: usize = 64;

/// Nodes remembered per task, at most (the latest ones).
const BAD_NODES_PER_TASK: usize = 8;

impl Inner {
    /// Notes that an attempt of `task` was lost or failed on the node
    /// named `node`: its next attempts prefer other nodes.
    pub fn ended_badly(&mut self, task: TaskRef, node: &str) {
        if self.bad_nodes.len() >= BAD_NODES_KEPT && !self.bad_nodes.contains_key(&task) {
            // Only the preference is forgotten for the oldest failures.
            self.bad_nodes.clear();
        }
        let names = self.bad_nodes.entry(task).or_default();
        names.retain(|n| n != node);
        names.push(node.to_string());
        if names.len() > BAD_NODES_PER_TASK {
            names.remove(0);
        }
    }

    /// Notes that an attempt of `job` went to the node named `node`.
    pub fn ran(&mut self, job: JobId, node: &str) {
        if self.ran_on.len() >= RAN_ON_KEPT && !self.ran_on.contains_key(&job) {
            // Forgotten here, still in the store for attempts queued later.
            self.ran_on.clear();
        }
        let names = self.ran_on.entry(job).or_default();
        if !names.iter().any(|n| n == node) {
            names.push(node.to_string());
            if names.len() > RAN_ON_PER_JOB {
                names.remove(0);
            }
        }
    }

    /// Takes in where the store says the jobs an attempt's rules name ran
    /// (`None`: the server's own node).
    pub fn seed_ran_on(&mut self, req: &StartRequest) {
        let local = self
            .workers
            .iter()
            .find(|w| w.local)
            .map(|w| w.info.name.clone());
        for (job, node) in &req.placement.ran_on {
            if let Some(name) = node.clone().or_else(|| local.clone()) {
                self.ran(*job, &name);
            }
        }
    }

    /// An attempt of `task` succeeded: it no longer avoids any node.
    pub fn ended_well(&mut self, task: TaskRef) {
        self.bad_nodes.remove(&task);
    }

    /// The nodes a new attempt of `task` should prefer not to run on.
    pub fn avoid(&self, task: TaskRef) -> Vec<String> {
        self.bad_nodes.get(&task).cloned().unwrap_or_default()
    }
}
