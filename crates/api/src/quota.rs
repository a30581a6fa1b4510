//! Project quotas and usage: the store keeps a quota, the driver enforces
//! it and counts what each project uses.

use crate::auth::find_project;
use crate::views::{QuotaView, UsageView};
use crate::{ApiError, AppState};
use tessera_store::ProjectRecord;
use tessera_types::Quota;

pub(crate) async fn get(state: &AppState, project: ProjectRecord) -> Result<QuotaView, ApiError> {
    let quota = state.db(move |db| Ok(db.quota(project.id)?)).await?;
    Ok(quota.into())
}

/// Stores `quota` for the project named by `segment` (id or name), then
/// hands it to the driver. Stored first: if the driver has stopped, the
/// next start loads it anyway.
pub(crate) async fn set(
    state: &AppState,
    segment: String,
    quota: Quota,
) -> Result<QuotaView, ApiError> {
    let project = state
        .db(move |db| {
            let project = find_project(db, &segment)?;
            db.set_quota(project.id, quota)?;
            Ok(project)
        })
        .await?;
    let driver = state.driver.clone();
    tokio::task::spawn_blocking(move || driver.set_quota(project.id, quota)).await??;
    Ok(quota.into())
}

pub(crate) async fn usage(state: &AppState, project: ProjectRecord) -> Result<UsageView, ApiError> {
    let id = project.id;
    let quota = state.db(move |db| Ok(db.quota(id)?)).await?;
    let driver = state.driver.clone();
    let u = tokio::task::spawn_blocking(move || driver.project_usage(Some(id))).await??;
    Ok(UsageView {
        running_cpu: u.running_cpu,
        running_memory_mb: u.running_memory_mb,
        decayed_cpu_seconds: u.decayed_cpu_ms / 1000.0,
        window_cpu_seconds: u.window_cpu_ms as f64 / 1000.0,
        quota: quota.into(),
    })
}
