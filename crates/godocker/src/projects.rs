//! Projects as Go-Docker shows them: Tessera's project, members and quota,
//! plus what Go-Docker keeps that Tessera does not (a description, a
//! priority, volumes with a mount point and an acl), in one small file per
//! project under `<data_dir>/godocker/projects/` (the [`Sidecar`]).

use crate::reply::{ok, parse, Refusal, Reply};
use crate::users::caller;
use crate::Gd;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tessera_service::{now_ms, AsOwner, AsViewer, Need, ProjectAccess};
use tessera_types::{Quota, Role};

/// Go-Docker's default project: the caller's only project.
pub(crate) const DEFAULT_PROJECT: &str = "default";
/// Volumes a project may declare, at most.
pub const MAX_VOLUMES: usize = 16;
/// The longest description kept, in bytes.
const MAX_DESCRIPTION: usize = 1000;
/// Members added or removed per update, at most.
const MAX_MEMBERS: usize = 1000;
/// Days of usage shown.
const USAGE_DAYS: u64 = 30;

/// A project volume: an operator volume (`--volume NAME=DIR`) mounted at
/// `mount` in the project's jobs, read-only unless `acl` is `rw` (and the
/// operator made it writable).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub mount: Option<String>,
    #[serde(default)]
    pub acl: Option<String>,
}

/// What Go-Docker keeps about a project that Tessera does not.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Extra {
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default = "fifty")]
    pub(crate) prio: i64,
    #[serde(default)]
    pub(crate) volumes: Vec<Volume>,
    /// Deleted with `godproject delete` (Tessera closed it).
    #[serde(default)]
    pub(crate) closed: bool,
    /// Usage is counted from then (ms; `godproject quota_reset`).
    #[serde(default)]
    pub(crate) usage_from: u64,
}

fn fifty() -> i64 {
    50
}

/// The files of [`Extra`]s, one per project id.
pub(crate) struct Sidecar {
    dir: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl Sidecar {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir: dir.join("projects"),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) async fn get(&self, project: i64) -> Extra {
        let path = self.dir.join(format!("{project}.json"));
        match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(_) => Extra {
                prio: 50,
                ..Extra::default()
            },
        }
    }

    pub(crate) async fn put(&self, project: i64, extra: &Extra) -> Reply<()> {
        let _one = self.lock.lock().await;
        let fail = |e: std::io::Error| {
            eprintln!("tessera-godocker: cannot write {}: {e}", self.dir.display());
            Refusal {
                status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                msg: "the server could not save the project's Go-Docker data; tell its operator"
                    .into(),
            }
        };
        tokio::fs::create_dir_all(&self.dir).await.map_err(fail)?;
        let tmp = self.dir.join(format!(".{project}.json.tmp"));
        let bytes = serde_json::to_vec(extra).unwrap_or_default();
        tokio::fs::write(&tmp, bytes).await.map_err(fail)?;
        tokio::fs::rename(&tmp, self.dir.join(format!("{project}.json")))
            .await
            .map_err(fail)
    }

    /// Every project's volumes (for `/config`), at most a few hundred.
    pub(crate) async fn all_volumes(&self) -> Vec<Volume> {
        let mut out: BTreeMap<String, Volume> = BTreeMap::new();
        let Ok(mut dir) = tokio::fs::read_dir(&self.dir).await else {
            return Vec::new();
        };
        let mut seen = 0;
        while let Ok(Some(entry)) = dir.next_entry().await {
            seen += 1;
            if seen > 1000 {
                break;
            }
            let Ok(bytes) = tokio::fs::read(entry.path()).await else {
                continue;
            };
            let extra: Extra = serde_json::from_slice(&bytes).unwrap_or_default();
            for v in extra.volumes {
                out.entry(v.name.clone()).or_insert(v);
            }
        }
        out.into_values().collect()
    }
}

/// A project as the client reads it.
pub(crate) async fn project_json<R: Need>(gd: &Gd, p: &ProjectAccess<R>) -> Reply<Value> {
    let members = gd.service.members(p).await?;
    let quota = gd.service.quota(p).await?;
    let extra = gd.projects.get(p.id().0).await;
    let volumes: Vec<Value> = extra
        .volumes
        .iter()
        .map(|v| json!({"name": v.name, "path": v.path, "mount": v.mount, "acl": v.acl}))
        .collect();
    Ok(json!({
        "id": p.project().name,
        "description": extra.description,
        "prio": extra.prio,
        "members": members.iter().map(|(u, _)| u.name.clone()).collect::<Vec<_>>(),
        "quota_cpu": quota.max_cpu.unwrap_or(0),
        "quota_ram": quota.max_memory_mb.map_or(0, |mb| mb / 1024),
        "quota_time": quota.cpu_ms_per_window.map_or(0, |ms| ms / 1000),
        "volumes": volumes,
    }))
}

/// The ms since the epoch [`USAGE_DAYS`] ago.
pub(crate) fn since() -> u64 {
    now_ms().saturating_sub(USAGE_DAYS * 86_400_000)
}

/// cpu-milliseconds charged, each with when, as Go-Docker's usage per day
/// (`time`: cpu seconds; `cpu`: attempts that ended; `ram`: not counted).
pub(crate) fn day_usage(charges: Vec<(u64, u64)>) -> Value {
    let mut days: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (ms, at) in charges {
        let day = days.entry(at / 86_400_000).or_default();
        day.0 += ms;
        day.1 += 1;
    }
    days.into_iter()
        .rev()
        .map(|(day, (ms, n))| json!({"date": day_name(day), "cpu": n, "ram": 0, "time": ms / 1000}))
        .collect::<Vec<_>>()
        .into()
}

/// `YYYY_MM_DD` of a day since the epoch (civil calendar, UTC).
fn day_name(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}_{m:02}_{d:02}")
}

/// `GET /project` (`godproject listall`): the caller's projects, every one
/// for an admin.
pub(crate) async fn list(State(gd): State<Gd>, headers: HeaderMap) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let mut out = Vec::new();
    for (project, _) in gd.service.projects(&caller).await? {
        let p = gd
            .service
            .project::<AsViewer>(&caller, &project.id.to_string())
            .await?;
        if gd.projects.get(p.id().0).await.closed {
            continue;
        }
        out.push(project_json(&gd, &p).await?);
    }
    ok(out.into())
}

/// `GET /project/{project}`.
pub(crate) async fn show(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let p = gd.service.project::<AsViewer>(&caller, &name).await?;
    if gd.projects.get(p.id().0).await.closed {
        return Err(Refusal::not_found(format!("project {name} was deleted")));
    }
    ok(project_json(&gd, &p).await?)
}

/// A project as `godproject create` and `update` send it.
#[derive(Deserialize)]
struct Sent {
    id: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    prio: Option<i64>,
    #[serde(default)]
    quota_cpu: Option<u64>,
    #[serde(default)]
    quota_ram: Option<u64>,
    #[serde(default)]
    quota_time: Option<u64>,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    volumes: Option<Vec<Volume>>,
}

/// `POST /project` (`godproject create`): the caller owns it; members are
/// added as members; quotas need an admin.
pub(crate) async fn create(
    State(gd): State<Gd>,
    headers: HeaderMap,
    body: crate::reply::Body,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let sent: Sent = parse(&body, "project")?;
    if sent.id == DEFAULT_PROJECT {
        return Err(Refusal::bad(
            "\"default\" is Go-Docker's name for your only project; choose another name",
        ));
    }
    let record = gd.service.create_project(&caller, sent.id.clone()).await?;
    let p = gd
        .service
        .project::<AsOwner>(&caller, &record.id.to_string())
        .await?;
    apply(&gd, &p, sent).await?;
    ok(json!({"msg": format!("project {} was created", record.name)}))
}

/// `POST /project/{project}` (`godproject update`, `volume`, `addmember`,
/// `deletemember`): the project as it should be.
pub(crate) async fn update(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: crate::reply::Body,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let p = gd.service.project::<AsOwner>(&caller, &name).await?;
    let sent: Sent = parse(&body, "project")?;
    if sent.id != p.project().name {
        return Err(Refusal::bad(format!(
            "projects cannot be renamed ({} to {})",
            p.project().name,
            sent.id
        )));
    }
    apply(&gd, &p, sent).await?;
    ok(json!({"msg": format!("project {name} was updated")}))
}

/// Makes the project as `sent` says: members, quota, description,
/// priority, volumes (each checked first, then applied).
async fn apply(gd: &Gd, p: &ProjectAccess<AsOwner>, sent: Sent) -> Reply<()> {
    let caller = p.caller();
    let mut extra = gd.projects.get(p.id().0).await;
    if let Some(d) = sent.description {
        extra.description = d.chars().take(MAX_DESCRIPTION).collect();
    }
    if let Some(prio) = sent.prio {
        extra.prio = prio.clamp(0, 100);
    }
    if let Some(volumes) = sent.volumes {
        extra.volumes = check_volumes(&gd.service.volume_names(caller), volumes)?;
    }
    // What the client sends back is what `project_json` showed (GB, s):
    // a value shown unchanged keeps the exact limit it was rounded from.
    let now = gd.service.quota(p).await?;
    let keep = |sent: Option<u64>, shown: u64, exact: Option<u64>, unit: u64| match sent {
        Some(v) if v == shown => exact,
        v => v.filter(|&v| v > 0).map(|v| v.saturating_mul(unit)),
    };
    let quota = Quota {
        max_cpu: sent
            .quota_cpu
            .filter(|&c| c > 0)
            .map(|c| c.min(u32::MAX as u64) as u32),
        max_memory_mb: keep(
            sent.quota_ram,
            now.max_memory_mb.map_or(0, |mb| mb / 1024),
            now.max_memory_mb,
            1024,
        ),
        cpu_ms_per_window: keep(
            sent.quota_time,
            now.cpu_ms_per_window.map_or(0, |ms| ms / 1000),
            now.cpu_ms_per_window,
            1000,
        ),
    };
    if quota != now {
        let admin = caller.admin().map_err(|_| {
            Refusal::bad(
                "only an admin sets quotas; leave --quota_cpu/--quota_ram/--quota_time out",
            )
        })?;
        gd.service
            .set_quota(&admin, p.id().to_string(), quota)
            .await?;
    }
    if sent.members.len() > MAX_MEMBERS {
        return Err(Refusal::bad(format!(
            "at most {MAX_MEMBERS} members at once"
        )));
    }
    let now: Vec<String> = gd
        .service
        .members(p)
        .await?
        .into_iter()
        .map(|(u, _)| u.name)
        .collect();
    for m in sent.members.iter().filter(|m| !now.contains(m)) {
        gd.service
            .set_member(p, m.clone(), Some(Role::Member))
            .await?;
    }
    let me = &caller.user().name;
    for m in now.iter().filter(|m| !sent.members.contains(m) && *m != me) {
        gd.service.set_member(p, m.clone(), None).await?;
    }
    gd.projects.put(p.id().0, &extra).await
}

/// Project volumes as sent, checked: an operator volume, an absolute mount
/// point without `..`, an acl of `ro` or `rw`.
fn check_volumes(operator: &[String], volumes: Vec<Volume>) -> Reply<Vec<Volume>> {
    if volumes.len() > MAX_VOLUMES {
        return Err(Refusal::bad(format!(
            "a project has at most {MAX_VOLUMES} volumes"
        )));
    }
    let mut out = Vec::with_capacity(volumes.len());
    for mut v in volumes {
        if !operator.contains(&v.name) {
            return Err(Refusal::bad(format!(
                "volume {:?} is not one of the server's volumes ({}); the operator adds one \
                 with `tessera server --volume NAME=DIR` (and --writable-volume NAME for rw)",
                v.name,
                operator.join(", ")
            )));
        }
        let mount = v
            .mount
            .clone()
            .or_else(|| v.path.clone())
            .unwrap_or_default();
        let plain = mount.starts_with('/') && mount.split('/').all(|s| s != ".." && s != ".");
        if !plain || mount.len() > 200 || mount == "/" {
            return Err(Refusal::bad(format!(
                "volume {:?}: mount point {mount:?} must be an absolute path in the container \
                 (not /), without . or .. (give -c /data)",
                v.name
            )));
        }
        let acl = v.acl.clone().unwrap_or_else(|| "ro".into());
        if acl != "ro" && acl != "rw" {
            return Err(Refusal::bad(format!(
                "volume {:?}: mode must be ro or rw, not {acl:?}",
                v.name
            )));
        }
        v.mount = Some(mount);
        v.acl = Some(acl);
        out.push(v);
    }
    Ok(out)
}

/// `GET /project/{project}/usage`.
pub(crate) async fn usage(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let p = gd.service.project::<AsViewer>(&caller, &name).await?;
    let from = since().max(gd.projects.get(p.id().0).await.usage_from);
    ok(day_usage(gd.service.charges(&p, from).await?))
}
