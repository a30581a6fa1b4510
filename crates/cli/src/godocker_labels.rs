//! The label constraints Go-Docker's API offers (`godjob create -l
//! NAME==VALUE`): the labels of the ready workers that run containers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Labels (name, values) of `pool`'s ready workers offering docker; none
/// without a pool.
pub(crate) fn offered(pool: Option<Arc<tessera_api::Pool>>) -> tessera_godocker::Labels {
    Arc::new(move || {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let Some(pool) = &pool else { return out };
        for node in pool.ready_nodes() {
            if !node.executors.iter().any(|e| e == "docker") {
                continue;
            }
            for (k, v) in node.labels {
                out.entry(k).or_default().insert(v);
            }
        }
        out
    })
}
