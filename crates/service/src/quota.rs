//! Project quotas and usage: the store keeps a quota, the driver enforces
//! it and counts what each project uses.

use crate::access::{find_project, Admin, Need, ProjectAccess};
use crate::{Service, ServiceError};
use tessera_core::ProjectUsage;
use tessera_types::{Millis, Quota};

/// What a project uses now, as the running scheduler counts it, and its
/// quota.
#[derive(Clone, Debug)]
pub struct Usage {
    pub now: ProjectUsage,
    pub quota: Quota,
}

impl Service {
    pub async fn quota<R: Need>(&self, project: &ProjectAccess<R>) -> Result<Quota, ServiceError> {
        let id = project.id();
        self.db(move |db| Ok(db.quota(id)?)).await
    }

    /// Stores `quota` for the project named by `segment` (id or name),
    /// then hands it to the driver. Stored first: if the driver has
    /// stopped, the next start loads it anyway. Admins only, checked
    /// before the project is looked up.
    pub async fn set_quota(
        &self,
        _: &Admin,
        segment: String,
        quota: Quota,
    ) -> Result<Quota, ServiceError> {
        let id = self
            .db(move |db| {
                let project = find_project(db, &segment)?;
                db.set_quota(project.id, quota)?;
                Ok(project.id)
            })
            .await?;
        self.ask(move |d| d.set_quota(id, quota)).await?;
        Ok(quota)
    }

    pub async fn usage<R: Need>(&self, project: &ProjectAccess<R>) -> Result<Usage, ServiceError> {
        let id = project.id();
        let quota = self.db(move |db| Ok(db.quota(id)?)).await?;
        let now = self.ask(move |d| d.project_usage(Some(id))).await?;
        Ok(Usage { now, quota })
    }

    /// The cpu-milliseconds charged to the project by attempts that ended
    /// since `since`, each with when it ended.
    pub async fn charges<R: Need>(
        &self,
        project: &ProjectAccess<R>,
        since: Millis,
    ) -> Result<Vec<(u64, Millis)>, ServiceError> {
        let pid = project.id();
        self.db(move |db| {
            Ok(db
                .usage_since(since)?
                .into_iter()
                .filter(|(p, _, _)| *p == Some(pid))
                .map(|(_, ms, at)| (ms, at))
                .collect())
        })
        .await
    }
}
