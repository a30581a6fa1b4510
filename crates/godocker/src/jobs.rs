//! `godjob`: create, show, list (active, over), kill, killall, suspend,
//! resume, update, archive.

use crate::reply::{ok, parse, Refusal, Reply};
use crate::spec::{translate, Create, META_TAGS, META_USER};
use crate::users::caller;
use crate::view::{job_json, Depth};
use crate::Gd;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_service::{
    AsMember, AsViewer, Caller, Control, JobAccess, ProjectAccess, ServiceError, MAX_LIST,
};

/// The project a job goes to: `default` is the caller's only project.
async fn target(gd: &Gd, caller: &Caller, name: &str) -> Reply<ProjectAccess<AsMember>> {
    let mine: Vec<_> = gd
        .service
        .projects(caller)
        .await?
        .into_iter()
        .filter(|(_, role)| role.is_some())
        .map(|(p, _)| p)
        .collect();
    let names = || {
        mine.iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let segment = if name == crate::projects::DEFAULT_PROJECT || name.is_empty() {
        match &mine[..] {
            [only] => only.id.to_string(),
            [] => {
                return Err(Refusal::bad(
                    "you are in no project; ask a project's owner to add you (godproject \
                     addmember PROJECT YOU)",
                ))
            }
            _ => {
                return Err(Refusal::bad(format!(
                    "you are in several projects ({}); choose one with -p PROJECT",
                    names()
                )))
            }
        }
    } else {
        name.to_string()
    };
    gd.service
        .project::<AsMember>(caller, &segment)
        .await
        .map_err(|e| match e {
            ServiceError::NotFound(_) | ServiceError::Forbidden(_) => Refusal::bad(format!(
                "you are not a member of project {name:?} (yours: {}); ask its owner to add \
                 you (godproject addmember {name} {})",
                names(),
                caller.user().name
            )),
            e => e.into(),
        })
}

/// `POST /task`: submits the job; `{"msg", "id"}`.
pub(crate) async fn create(
    State(gd): State<Gd>,
    headers: HeaderMap,
    body: crate::reply::Body,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let create: Create = parse(&body, "job")?;
    let project = target(&gd, &caller, &create.user.project).await?;
    let parents = create.parents().map_err(Refusal::bad)?;
    for &parent in &parents {
        let unknown = || {
            Refusal::bad(format!(
                "parent job {parent} does not exist in project {}; give the ids that godjob \
                 create printed (godjob list over --all lists them)",
                project.project().name
            ))
        };
        let job = gd
            .service
            .job_by_id::<AsViewer>(&caller, parent)
            .await
            .map_err(|_| unknown())?;
        if job.job().project != Some(project.id()) {
            return Err(unknown());
        }
    }
    let extra = gd.projects.get(project.id().0).await;
    if extra.closed {
        return Err(Refusal::bad(format!(
            "project {} was deleted; submit to another project (-p)",
            project.project().name
        )));
    }
    let spec =
        translate(&create, &caller.user().name, &extra.volumes, &parents).map_err(Refusal::bad)?;
    let job = gd.service.submit(&project, spec).await?;
    ok(json!({ "msg": "Job submitted", "id": job.id.0 }))
}

/// The job a path names, with the least role `R`.
async fn job<R: tessera_service::Need>(
    gd: &Gd,
    headers: &HeaderMap,
    id: &str,
) -> Reply<(Caller, JobAccess<R>)> {
    let caller = caller(gd, headers).await?;
    let job = gd.service.job::<R>(&caller, id).await?;
    Ok((caller, job))
}

/// `GET /task/{id}`.
pub(crate) async fn show(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let (caller, job) = job::<AsViewer>(&gd, &headers, &id).await?;
    let project = match job.job().project {
        Some(p) => gd
            .service
            .project::<AsViewer>(&caller, &p.to_string())
            .await?
            .project()
            .name
            .clone(),
        None => "-".into(),
    };
    ok(job_json(&gd, &job, &project, Depth::Show).await?)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Filter {
    project: Option<String>,
    tag: Option<String>,
}

/// The caller's jobs (with `project`: every job of that project; `all`:
/// every job, for admins), over or active, newest first, `skip` then at
/// most `limit` (0: up to [`MAX_LIST`]).
async fn listing(
    gd: &Gd,
    caller: &Caller,
    over: bool,
    (skip, limit): (usize, usize),
    filter: &Filter,
    all: bool,
) -> Reply<Vec<Value>> {
    if all {
        caller.admin()?;
    }
    let limit = if limit == 0 {
        MAX_LIST as usize
    } else {
        limit.min(MAX_LIST as usize)
    };
    let mut found = Vec::new();
    for (project, role, jobs) in gd.service.recent_jobs(caller, MAX_LIST).await? {
        if filter.project.as_ref().is_some_and(|p| *p != project.name) || (role.is_none() && !all) {
            continue;
        }
        for record in jobs.into_iter().filter(|j| j.state.is_terminal() == over) {
            let Ok(job) = gd.service.job_by_id::<AsViewer>(caller, record.id).await else {
                continue;
            };
            let spec = gd.service.job_spec(&job).await?;
            let user = spec.meta.get(META_USER);
            let mine = user.is_some_and(|u| *u == caller.user().name);
            if !(mine || all || filter.project.is_some() && user.is_some()) {
                continue;
            }
            if let Some(tag) = &filter.tag {
                let tags: Vec<String> = spec
                    .meta
                    .get(META_TAGS)
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default();
                if !tags.contains(tag) {
                    continue;
                }
            }
            found.push((job, project.name.clone()));
        }
    }
    found.sort_by_key(|(j, _)| std::cmp::Reverse(j.id()));
    let mut out = Vec::new();
    for (job, project) in found.into_iter().skip(skip).take(limit) {
        out.push(job_json(gd, &job, &project, Depth::List).await?);
    }
    Ok(out)
}

/// `skip` and `limit` of a listing's path, as numbers.
fn numbers((skip, limit): (String, String)) -> Reply<(usize, usize)> {
    let number = |s: &str| {
        s.parse::<usize>().map_err(|_| {
            Refusal::bad(format!(
                "{s:?} is not a number: give --skip and --limit as whole numbers"
            ))
        })
    };
    Ok((number(&skip)?, number(&limit)?))
}

/// `GET /task/active`.
pub(crate) async fn active(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    ok(listing(&gd, &caller, false, (0, 0), &filter, false)
        .await?
        .into())
}

/// `GET /task/active/all` (admins).
pub(crate) async fn active_all(State(gd): State<Gd>, headers: HeaderMap) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let filter = Filter::default();
    ok(listing(&gd, &caller, false, (0, 0), &filter, true)
        .await?
        .into())
}

/// `POST /task/over/{skip}/{limit}`.
pub(crate) async fn over(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(page): Path<(String, String)>,
    Query(filter): Query<Filter>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    ok(listing(&gd, &caller, true, numbers(page)?, &filter, false)
        .await?
        .into())
}

/// `POST /task/over/all/{skip}/{limit}` (admins).
pub(crate) async fn over_all(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(page): Path<(String, String)>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let filter = Filter::default();
    ok(listing(&gd, &caller, true, numbers(page)?, &filter, true)
        .await?
        .into())
}

/// `DELETE /task/{id}` (`godjob kill`).
pub(crate) async fn kill(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let (_, job) = job::<AsMember>(&gd, &headers, &id).await?;
    gd.service.cancel(&job)?;
    ok(json!({ "msg": format!("job {id} kill requested") }))
}

/// `DELETE /user/{login}/task[?tag=T]` (`godjob killall`): the caller's
/// active jobs (an admin: `login`'s), those with tag `T` only if given.
pub(crate) async fn kill_all(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(login): Path<String>,
    Query(filter): Query<Filter>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    if login != caller.user().name {
        return Err(Refusal::bad(format!(
            "you are {:?}: godjob killall kills your own jobs only",
            caller.user().name
        )));
    }
    let filter = Filter {
        project: None,
        tag: filter.tag,
    };
    let jobs = listing(&gd, &caller, false, (0, 0), &filter, false).await?;
    let mut killed = 0;
    for id in jobs.iter().filter_map(|j| j["id"].as_i64()) {
        let access = gd.service.job::<AsMember>(&caller, &id.to_string()).await?;
        if gd.service.cancel(&access).is_ok() {
            killed += 1;
        }
    }
    ok(json!({ "msg": format!("{killed} jobs kill requested") }))
}

async fn control(gd: &Gd, headers: &HeaderMap, id: &str, what: Control) -> Reply {
    let (_, job) = job::<AsMember>(gd, headers, id).await?;
    gd.service.control(&job, what).await?;
    ok(json!({ "msg": format!("job {id} updated") }))
}

/// `GET /task/{id}/suspend`.
pub(crate) async fn suspend(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    control(&gd, &headers, &id, Control::Suspend).await
}

/// `GET /task/{id}/resume`.
pub(crate) async fn resume(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    control(&gd, &headers, &id, Control::Resume).await
}

#[derive(Deserialize)]
struct Update {
    name: String,
    value: String,
}

/// `PUT /task/{id} {"name", "value"}` (`godjob update`): the priority only.
pub(crate) async fn update(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: crate::reply::Body,
) -> Reply {
    let update: Update = parse(&body, "update")?;
    if update.name != "priority" && update.name != "prio" {
        return Err(Refusal::bad(format!(
            "Tessera cannot change {:?} once a job is submitted; only its priority (-r \
             priority -v 0..100). Kill the job and create it again",
            update.name
        )));
    }
    let prio: i32 = update.value.trim().parse().map_err(|_| {
        Refusal::bad(format!(
            "priority {:?} is not a number (0..100)",
            update.value
        ))
    })?;
    control(&gd, &headers, &id, Control::Priority(prio)).await
}

/// `GET /task/{id}/archive` (`godjob archive -i ID`): the ended job's
/// files are removed from disk, its record stays and shows as archived.
pub(crate) async fn archive(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let (_, job) = job::<AsMember>(&gd, &headers, &id).await?;
    gd.service.archive_job(&job).await?;
    ok(json!({ "msg": format!("job {id} archived: its files were removed, its record kept") }))
}

/// `GET /archive/{days}` (`godjob archive -d DAYS`): the caller's jobs that
/// ended more than `days` days ago, archived (at most [`MAX_LIST`]).
pub(crate) async fn archive_old(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(days): Path<String>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let days: u64 = days.parse().map_err(|_| {
        Refusal::bad(format!(
            "{days:?} is not a number of days: give -d as a whole number"
        ))
    })?;
    let before = tessera_service::now_ms().saturating_sub(days.saturating_mul(86_400_000));
    let jobs = listing(&gd, &caller, true, (0, 0), &Filter::default(), false).await?;
    let mut archived = 0;
    for id in jobs.iter().filter_map(|j| j["id"].as_i64()) {
        let job = gd.service.job::<AsMember>(&caller, &id.to_string()).await?;
        let ended = job.job().finished_at.unwrap_or(u64::MAX);
        if ended <= before && gd.service.archived_at(&job).await.is_none() {
            gd.service.archive_job(&job).await?;
            archived += 1;
        }
    }
    ok(json!({ "msg": format!("{archived} jobs that ended over {days} days ago archived") }))
}

/// `godjob archive --purge`: Go-Docker deleted the job from its database.
pub(crate) async fn purge() -> Refusal {
    Refusal::bad(
        "Tessera keeps every job's record (its history, its dependents' reasons): --purge is \
         not offered. `godjob archive -i ID` (or -d DAYS) without --purge removes the files",
    )
}
