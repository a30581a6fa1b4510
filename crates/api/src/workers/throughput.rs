//! What each node got done lately: attempts ended and cpu-seconds in the
//! last [`WINDOW_MS`], from the store (so it survives a restart and counts
//! attempts of workers that have since gone), for `GET /api/v1/nodes` and
//! the nodes page.

use crate::ApiError;
use serde_json::{json, Value};
use tessera_service::{now_ms, Admin, Service};
use tessera_store::NodeUsage;

/// The window node throughput is counted over: 10 minutes.
pub(crate) const WINDOW_MS: u64 = 10 * 60 * 1000;

/// Every node's usage over the last [`WINDOW_MS`] (one `GROUP BY`).
pub(crate) async fn recent(service: &Service, admin: &Admin) -> Result<Vec<NodeUsage>, ApiError> {
    let since = now_ms().saturating_sub(WINDOW_MS);
    Ok(service.node_usage(admin, since).await?)
}

/// The `recent` object of a node's view: zeros for a node that ended
/// nothing in the window. The server's own node (`local`) is credited with
/// the attempts the store records without a node: they ran on its slots.
pub(crate) fn view(name: &str, local: bool, usage: &[NodeUsage]) -> Value {
    let u = usage
        .iter()
        .find(|u| u.node.as_deref() == Some(name) || (local && u.node.is_none()))
        .cloned()
        .unwrap_or_default();
    json!({
        "window_ms": WINDOW_MS,
        "attempts": u.attempts,
        "cpu_ms": u.cpu_ms,
        "transfer_ms": u.transfer_ms,
        "transfer_bytes": u.transfer_bytes,
    })
}
