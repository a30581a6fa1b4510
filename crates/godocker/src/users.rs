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
/// members), what the executor can do, and label constraints (none: the
/// client then refuses `-l`).
pub(crate) async fn config(State(gd): State<Gd>) -> Reply {
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
        "constraints": [],
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

/// `PUT /user/{login}` (`goduser update`): quotas are per project here.
pub(crate) async fn update(Path(login): Path<String>) -> Refusal {
    Refusal::bad(format!(
        "Tessera sets quotas per project, not per user ({login}); use `godproject update \
         PROJECT --quota_cpu N --quota_ram GB --quota_time S` (or `tessera admin`)"
    ))
}

/// `DELETE /user/{login}` (`goduser remove`).
pub(crate) async fn remove(Path(login): Path<String>) -> Refusal {
    Refusal::bad(format!(
        "users are not removed through the Go-Docker API; an admin revokes {login}'s keys with \
         the native API (DELETE /api/v1/keys/ID) instead"
    ))
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
        charges.extend(
            gd.service
                .charges(&access, crate::projects::since())
                .await?,
        );
    }
    ok(day_usage(charges))
}
