//! `godproject delete` and `godproject quota_reset`.
//!
//! - Delete: Tessera closes the project (`Service::close_project`): refused
//!   while any of its jobs has not ended; then every member is removed,
//!   and the Go-Docker API no longer lists or shows it. Its jobs, their
//!   history and files stay, for admins (native API, `tessera`); its name
//!   stays taken.
//! - Quota reset: Go-Docker zeroed the project's consumed usage. Tessera's
//!   limits are on what runs at once and on cpu time per sliding hour,
//!   which empties by itself; what it counts up is the usage history that
//!   `godproject show` and `goduser show` print: the reset starts that
//!   count afresh (kept with the project's Go-Docker data).

use crate::reply::{ok, Refusal, Reply};
use crate::users::caller;
use crate::Gd;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::json;
use tessera_service::{now_ms, AsOwner, AsViewer};

/// `DELETE /project/{project}` (`godproject delete`): its owner or an admin.
pub(crate) async fn remove(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let p = gd
        .service
        .project::<AsOwner>(&caller, &name)
        .await
        .map_err(|e| match e {
            tessera_service::ServiceError::Forbidden(_) => Refusal::bad(format!(
                "only an owner of project {name} or an admin deletes it"
            )),
            e => e.into(),
        })?;
    let mut extra = gd.projects.get(p.id().0).await;
    if extra.closed {
        return Err(Refusal::not_found(format!("project {name} was deleted")));
    }
    let members = gd.service.close_project(&p).await?;
    extra.closed = true;
    gd.projects.put(p.id().0, &extra).await?;
    ok(json!({
        "msg": format!(
            "project {name} deleted: its {members} members were removed; its ended jobs and \
             their files stay for admins"
        )
    }))
}

/// `DELETE /project/{project}/quota` (`godproject quota_reset`, admins):
/// the project's usage is counted from now.
pub(crate) async fn quota_reset(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    caller
        .admin()
        .map_err(|_| Refusal::bad(format!("only an admin resets the usage of project {name}")))?;
    let p = gd.service.project::<AsViewer>(&caller, &name).await?;
    let mut extra = gd.projects.get(p.id().0).await;
    extra.usage_from = now_ms();
    gd.projects.put(p.id().0, &extra).await?;
    ok(json!({
        "msg": format!(
            "project {name}'s usage is counted from now; its quota (what runs at once, cpu \
             time per sliding hour) is unchanged"
        )
    }))
}
