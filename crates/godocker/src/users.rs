//! Authentication, the server's configuration as the client reads it,
//! users and their projects and usage.

use crate::projects::{day_usage, project_json, DEFAULT_PROJECT};
use crate::reply::{bearer, ok, parse, Refusal, Reply};
use crate::Gd;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_service::auth::parse_key;
use tessera_service::{AsViewer, Caller};

/// The caller of a request: its bearer token, issued by `/authenticate`.
pub(crate) async fn caller(gd: &Gd, headers: &HeaderMap) -> Reply<Caller> {
    let token = bearer(headers).ok_or_else(|| {
        Refusal::unauthorized(
            "no token: run godlogin (with the login and key `tessera admin create-user` printed)",
        )
    })?;
    gd.tokens.caller(&gd.service, token).await
}

#[derive(Deserialize)]
struct Login {
    user: String,
    apikey: String,
}

/// `POST /authenticate {"user", "apikey"}`: a token, if the key is the
/// user's.
pub(crate) async fn authenticate(State(gd): State<Gd>, body: crate::reply::Body) -> Reply {
    let login: Login = parse(&body, "login")?;
    let caller = gd.service.authenticate(&login.apikey).await.map_err(|e| {
        Refusal::unauthorized(format!(
            "{e}; use the key `tessera admin create-user` printed for {:?}",
            login.user
        ))
    })?;
    if caller.user().name != login.user {
        return Err(Refusal::unauthorized(format!(
            "this API key is not {:?}'s; log in with the user the key was created for",
            login.user
        )));
    }
    let prefix = parse_key(&login.apikey).unwrap_or_default();
    let token = gd.tokens.issue(&caller, prefix);
    ok(json!({ "token": token }))
}

/// `GET /config` (asked without a token): images, volumes (the projects'
/// Go-Docker volumes, by name and acl only: where they are is shown to
/// members), what the executor can do, and label constraints: the labels
/// the nodes carry now, each with its values (`-l NAME==VALUE`).
pub(crate) async fn config(State(gd): State<Gd>) -> Reply {
    let constraints: Vec<Value> = (gd.labels)()
        .into_iter()
        .map(|(name, values)| json!({ "name": name, "value": values }))
        .collect();
    let volumes: Vec<Value> = gd
        .projects
        .all_volumes()
        .await
        .into_iter()
        .map(|v| json!({ "name": v.name, "acl": v.acl }))
        .collect();
    ok(json!({
        "images": [],
        "volumes": volumes,
        "executor_features": ["pause"],
        "constraints": constraints,
    }))
}

/// `GET /image`: the images the caller's projects' jobs used (usable
/// without `--external_image`).
pub(crate) async fn images(State(gd): State<Gd>, headers: HeaderMap) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let mut images = std::collections::BTreeSet::new();
    for (_, _, jobs) in gd.service.recent_jobs(&caller, 100).await? {
        for job in jobs {
            let Ok(access) = gd.service.job_by_id::<AsViewer>(&caller, job.id).await else {
                continue;
            };
            if let Ok(spec) = gd.service.job_spec(&access).await {
                if let Some(image) = spec.meta.get(crate::spec::META_IMAGE) {
                    images.insert(image.clone());
                }
            }
        }
    }
    ok(json!(images))
}

/// A user as `goduser show` reads it. Tessera keeps only a hash of each
/// key, so the key itself is never shown.
fn user_json(name: &str, admin: bool) -> Value {
    json!({
        "id": name,
        "email": "",
        "admin": admin,
        "homeDirectory": "",
        "uid": 0,
        "gid": 0,
        "credentials": {
            "apikey": "(Tessera keeps only a hash of each key)",
            "public": "",
        },
        "usage": { "prio": 50, "quota_cpu": 0, "quota_ram": 0, "quota_time": 0 },
    })
}

/// The login a request names must be the caller's, unless an admin asks.
fn same_user(caller: &Caller, login: &str) -> Reply<()> {
    if caller.user().name == login || caller.is_admin() {
        return Ok(());
    }
    Err(Refusal::forbidden(format!(
        "you are {:?}: you may see only your own account",
        caller.user().name
    )))
}

/// `GET /user` (admins): every user.
pub(crate) async fn list(State(gd): State<Gd>, headers: HeaderMap) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let users = gd.service.users(&caller.admin()?).await?;
    ok(users
        .iter()
        .map(|u| user_json(&u.name, u.admin))
        .collect::<Vec<_>>()
        .into())
}

/// `GET /user/{login}`.
pub(crate) async fn show(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(login): Path<String>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    same_user(&caller, &login)?;
    if caller.user().name == login {
        return ok(user_json(&login, caller.is_admin()));
    }
    let users = gd.service.users(&caller.admin()?).await?;
    let user = users
        .iter()
        .find(|u| u.name == login)
        .ok_or_else(|| Refusal::not_found(format!("no user {login:?}")))?;
    ok(user_json(&user.name, user.admin))
}

/// What `goduser update` sends back: the user as `goduser show` read it,
/// with the changed quotas and priority.
#[derive(Deserialize)]
struct SentUser {
    usage: SentUsage,
}

#[derive(Deserialize)]
struct SentUsage {
    prio: Option<f64>,
    quota_cpu: Option<f64>,
    quota_ram: Option<f64>,
    quota_time: Option<f64>,
}

/// `PUT /user/{login}` (`goduser update`, admins). Tessera sets quotas and
/// priority per project, not per user: the user as shown (no quota,
/// priority 50) is accepted unchanged; a change is refused, saying where
/// it goes instead.
pub(crate) async fn update(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(login): Path<String>,
    body: crate::reply::Body,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let admin = caller
        .admin()
        .map_err(|_| Refusal::bad("only an admin updates users (goduser update)"))?;
    if !gd
        .service
        .users(&admin)
        .await?
        .iter()
        .any(|u| u.name == login)
    {
        return Err(Refusal::bad(format!("there is no user {login:?}")));
    }
    let sent: SentUser = parse(&body, "user")?;
    let u = sent.usage;
    let unchanged = u.prio.unwrap_or(50.0) == 50.0
        && [u.quota_cpu, u.quota_ram, u.quota_time]
            .iter()
            .all(|q| q.unwrap_or(0.0) == 0.0);
    if !unchanged {
        return Err(Refusal::bad(format!(
            "Tessera sets quotas and priority per project, not per user ({login}): use \
             `godproject update PROJECT --quota_cpu N --quota_ram GB --quota_time S -p PRIO` \
             on each of their projects"
        )));
    }
    ok(json!({ "msg": format!("user {login}: nothing to change") }))
}

/// `DELETE /user/{login}` (`goduser remove --force`, admins): Tessera keeps
/// the user's record and jobs, but shuts them out: every key revoked,
/// every membership removed (except where they are a project's last
/// owner, which is said).
pub(crate) async fn remove(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(login): Path<String>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    caller
        .admin()
        .map_err(|_| Refusal::bad("only an admin removes users (goduser remove)"))?;
    let out = gd.service.shut_out_user(&caller, login.clone()).await?;
    if !out.kept_as_last_owner.is_empty() {
        return Err(Refusal::bad(format!(
            "{login}'s {} keys were revoked and they left {} projects, but they are the last \
             owner of {}: give those another owner (godproject addmember, then tessera) or \
             delete them (godproject delete), then run goduser remove again",
            out.keys,
            out.projects_left,
            out.kept_as_last_owner.join(", ")
        )));
    }
    ok(json!({
        "msg": format!(
            "{login} removed: {} keys revoked, {} memberships removed; their jobs stay",
            out.keys, out.projects_left
        )
    }))
}

/// `GET /user/{login}/project`: the caller's projects (an admin: all), and
/// Go-Docker's `default` (the caller's only project).
pub(crate) async fn projects(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(login): Path<String>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    if caller.user().name != login {
        return Err(Refusal::forbidden(format!(
            "you are {:?}: list your own projects",
            caller.user().name
        )));
    }
    let mut out = vec![json!({
        "id": DEFAULT_PROJECT, "description": "", "prio": 50, "members": [],
        "quota_cpu": 0, "quota_ram": 0, "quota_time": 0, "volumes": [],
    })];
    for (project, role) in gd.service.projects(&caller).await? {
        if role.is_none() {
            continue;
        }
        let access = gd
            .service
            .project::<AsViewer>(&caller, &project.id.to_string())
            .await?;
        if gd.projects.get(access.id().0).await.closed {
            continue;
        }
        out.push(project_json(&gd, &access).await?);
    }
    ok(out.into())
}

/// `GET /user/{login}/usage`: what the caller's projects used per day.
pub(crate) async fn usage(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(login): Path<String>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    same_user(&caller, &login)?;
    let mut charges = Vec::new();
    for (project, role) in gd.service.projects(&caller).await? {
        if role.is_none() {
            continue;
        }
        let access = gd
            .service
            .project::<AsViewer>(&caller, &project.id.to_string())
            .await?;
        let from = crate::projects::since().max(gd.projects.get(access.id().0).await.usage_from);
        charges.extend(gd.service.charges(&access, from).await?);
    }
    ok(day_usage(charges))
}
