//! `docker create`/`run` (a job submitted through the service) and `docker
//! ps`.

use crate::containers::Mark;
use crate::create::{self, Bind};
use crate::http::{self, Answer, ApiError};
use crate::DockerApi;
use hyper::StatusCode;
use std::path::Path;
use tessera_service::{AsMember, Need, ProjectAccess};
use tessera_types::{JobDependency, JobSpec, Mount};

/// The longest container name.
const MAX_NAME: usize = 128;

impl DockerApi {
    /// `POST /containers/create?name=NAME`: the container becomes a job of
    /// the project, submitted at once. Its `waitfor`s hold it until the
    /// containers they match now have exited 0 (the job waits, durably); a
    /// selector that matches none is refused here.
    pub(crate) async fn create(
        &self,
        project: &ProjectAccess<AsMember>,
        name: Option<String>,
        body: &serde_json::Value,
    ) -> Answer {
        let request = create::parse(body)?;
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => checked_name(n.strip_prefix('/').unwrap_or(&n))?,
            None => format!("tessera_{:x}", tessera_service::now_ms()),
        };
        if let Ok((_, other)) = self.find(project, &name).await {
            return Err(ApiError::conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". \
                 You have to remove (or rename) that container to be able to reuse that name.",
                other.id()
            )));
        }
        let mounts = self.mounts(&request.mounts)?;
        let matched = self.resolve(project, &request.waitfor).await?;
        let defaults = self.engine.defaults(&request.image).await?;
        let rules = self.affinities(project, &request.affinities).await?;
        let mut task = request.task(defaults, mounts)?;
        task.resources.rules.extend(rules);
        let mut spec = JobSpec::new(&name, vec![task]);
        for ids in matched {
            for id in ids {
                if !spec
                    .after
                    .iter()
                    .any(|d| d.job == tessera_types::JobSelector::Id(id))
                {
                    spec.after.push(JobDependency::on_id(id));
                }
            }
        }
        let job = self.service.submit(project, spec).await?;
        if request.auto_remove {
            self.mark(job.id, Mark::AutoRemove)?;
        }
        Ok(http::json(
            StatusCode::CREATED,
            &serde_json::json!({"Id": job.id.to_string(), "Warnings": []}),
        ))
    }

    /// Binds and named volumes as mounts of the operator's volumes.
    fn mounts(&self, binds: &[Bind]) -> Result<Vec<Mount>, ApiError> {
        let volumes = self.service.volumes();
        let offered = || {
            let names: Vec<&str> = volumes.names().collect();
            if names.is_empty() {
                "this server offers no volumes".to_string()
            } else {
                format!("this server offers the volumes {}", names.join(", "))
            }
        };
        binds
            .iter()
            .map(|b| {
                let (volume, subpath) = if b.source.starts_with('/') {
                    let (v, sub) = volumes.locate(Path::new(&b.source)).ok_or_else(|| {
                        ApiError::bad(format!(
                            "bind mount {} is refused: it is not inside a volume the operator \
                             configured ({}); use -v VOLUME:{} or a folder inside a volume",
                            b.source,
                            offered(),
                            b.target
                        ))
                    })?;
                    (v.to_string(), sub)
                } else if volumes.names().any(|n| n == b.source) {
                    (b.source.clone(), None)
                } else {
                    return Err(ApiError::bad(format!(
                        "volume {:?} is not one the operator configured ({}); Tessera creates no \
                         volumes",
                        b.source,
                        offered()
                    )));
                };
                let mount = Mount {
                    volume,
                    subpath,
                    target: b.target.clone(),
                    read_only: b.read_only,
                };
                mount
                    .check()
                    .map_err(|e| ApiError::bad(format!("-v {}:{}: {e}", b.source, b.target)))?;
                Ok(mount)
            })
            .collect()
    }

    /// `GET /containers/json[?all=1]`: without `all`, the containers not
    /// yet ended (running, and created ones waiting for their `waitfor`s or
    /// a slot, which say so in their status).
    pub(crate) async fn ps<R: Need>(
        &self,
        project: &ProjectAccess<R>,
        all: bool,
        filters: Option<&str>,
    ) -> Answer {
        let filters = Filters::parse(filters)?;
        let now = tessera_service::now_ms();
        let rows: Vec<serde_json::Value> = self
            .list(project)
            .await?
            .iter()
            .filter(|c| all || c.is_live() || !filters.status.is_empty())
            .filter(|c| filters.keep(c))
            .map(|c| crate::views::summary(c, now))
            .collect();
        http::ok(&serde_json::Value::Array(rows))
    }
}

/// A container name as the engine allows them: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn checked_name(name: &str) -> Result<String, ApiError> {
    let ok = (2..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok || tessera_service::parse_id(name).is_some() {
        return Err(ApiError::bad(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at \
             most {MAX_NAME}, and not a number alone"
        )));
    }
    Ok(name.to_string())
}

/// `docker ps -f`: by name (a part of it), id (a prefix) and status; each
/// key any of its values, all keys together.
#[derive(Debug, Default)]
struct Filters {
    name: Vec<String>,
    id: Vec<String>,
    status: Vec<String>,
}

/// Filter values taken at most.
const MAX_FILTERS: usize = 100;

impl Filters {
    /// The `filters` parameter: `{"name": {"x": true}}` (or `{"name": ["x"]}`).
    fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        let mut f = Filters::default();
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return Ok(f);
        };
        let bad = || ApiError::bad("filters must be a JSON object of lists of values");
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|_| bad())?;
        for (key, values) in map {
            let values: Vec<String> = match values {
                serde_json::Value::Object(o) => o.into_iter().map(|(k, _)| k).collect(),
                serde_json::Value::Array(a) => a
                    .into_iter()
                    .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
                    .collect::<Result<_, _>>()?,
                _ => return Err(bad()),
            };
            let into = match key.as_str() {
                "name" => &mut f.name,
                "id" => &mut f.id,
                "status" => &mut f.status,
                other => {
                    return Err(ApiError::bad(format!(
                        "invalid filter '{other}'; Tessera's Docker endpoint filters by name, id \
                         and status"
                    )))
                }
            };
            into.extend(values);
        }
        if f.name.len() + f.id.len() + f.status.len() > MAX_FILTERS {
            return Err(ApiError::bad(format!(
                "at most {MAX_FILTERS} filter values"
            )));
        }
        Ok(f)
    }

    fn keep(&self, c: &crate::state::Container) -> bool {
        let any = |values: &[String], hit: &dyn Fn(&str) -> bool| {
            values.is_empty() || values.iter().any(|v| hit(v))
        };
        any(&self.name, &|v| {
            c.job.name.contains(v.trim_start_matches('/'))
        }) && any(&self.id, &|v| c.id().starts_with(v))
            && any(&self.status, &|v| c.status() == v)
    }
}
