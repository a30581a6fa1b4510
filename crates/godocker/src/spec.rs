//! A Go-Docker job as `godjob create` sends it, and the Tessera job it
//! becomes: one image task (an array job: one per index) running the
//! command in the job's folder with Go-Docker's environment, waiting on
//! its parents, with what Go-Docker shows later kept in `meta`.

use crate::projects::Volume;
use serde::Deserialize;
use std::collections::BTreeMap;
use tessera_types::{
    Action, ArraySpec, JobDependency, JobId, JobSpec, Mount, TaskSpec, DEFAULT_SHELL,
};

/// Parents a job may name, at most.
pub const MAX_PARENTS: usize = 1000;
/// The longest job name, in bytes.
const MAX_NAME: usize = 200;
/// Elements of an array job, at most.
const MAX_ELEMENTS: u64 = 10_000;

pub(crate) const META_USER: &str = "godocker.user";
pub(crate) const META_DESCRIPTION: &str = "godocker.description";
pub(crate) const META_TAGS: &str = "godocker.tags";
pub(crate) const META_IMAGE: &str = "godocker.image";
pub(crate) const META_PARENTS: &str = "godocker.parents";
pub(crate) const META_ARRAY: &str = "godocker.array";
pub(crate) const META_VOLUMES: &str = "godocker.volumes";
pub(crate) const META_TMP: &str = "godocker.tmpstorage";
pub(crate) const META_REQ: &str = "godocker.requirements";

/// The env var that carries the user's command into the task (unset
/// before it runs).
const CMD_ENV: &str = "GODOCKER_CMD";

/// The body of `POST /api/1.0/task`. Fields the client sends that Tessera
/// decides itself (`date`, `status`, uid/gid) are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Create {
    pub user: User,
    pub meta: Meta,
    pub requirements: Requirements,
    pub container: Container,
    pub command: Command,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct User {
    pub project: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Meta {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Requirements {
    pub cpu: Option<u32>,
    pub ram: Option<u64>,
    pub gpus: Option<u32>,
    pub array: Option<ArrayValues>,
    pub label: Vec<String>,
    pub failure_policy: Option<u32>,
    /// The parents, as the client splits `--parent 12,13,` (empty pieces
    /// included).
    pub tasks: Vec<String>,
    pub tmpstorage: Option<TmpStorage>,
    pub executor: Option<String>,
    pub ports: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ArrayValues {
    pub values: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TmpStorage {
    pub size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Container {
    pub image: String,
    pub volumes: Vec<Volume>,
    pub root: bool,
    pub ports: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Command {
    pub interactive: bool,
    pub cmd: String,
}

impl Create {
    /// The parent job ids `--parent` named: `"12,13,14,"` gives 12, 13, 14
    /// (empty pieces, which a shell loop leaves, are skipped).
    pub fn parents(&self) -> Result<Vec<JobId>, String> {
        let mut out = Vec::new();
        for piece in self.requirements.tasks.iter().map(|p| p.trim()) {
            if piece.is_empty() {
                continue;
            }
            let id: i64 = tessera_service::parse_id(piece).ok_or_else(|| {
                format!("--parent {piece:?} is not a job id; give ids separated by commas (12,13)")
            })?;
            if !out.contains(&JobId(id)) {
                out.push(JobId(id));
            }
            if out.len() > MAX_PARENTS {
                return Err(format!("a job may name at most {MAX_PARENTS} parents"));
            }
        }
        Ok(out)
    }
}

/// `start:stop:step` (or `N`: 1 to N), checked.
fn array_bounds(values: &str) -> Result<(u64, u64, u64), String> {
    let bad = || {
        format!("--array {values:?} must be start:stop:step (e.g. 1:10:1) or N, with stop >= start")
    };
    let nums: Vec<u64> = values
        .split(':')
        .map(|n| n.trim().parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let (first, last, step) = match nums[..] {
        [n] => (1, n, 1),
        [a, b] => (a, b, 1),
        [a, b, s] => (a, b, s),
        _ => return Err(bad()),
    };
    if step == 0 || last < first {
        return Err(bad());
    }
    if (last - first) / step + 1 > MAX_ELEMENTS {
        return Err(format!(
            "--array {values:?} has more than {MAX_ELEMENTS} elements"
        ));
    }
    Ok((first, last, step))
}

/// The shell around the user's command: Go-Docker's environment, the job's
/// folder as working directory, the command written to a file there and
/// run by its own `#!` (else `/bin/sh`).
fn wrapper(array: Option<(u64, u64, u64)>, tmp: bool) -> String {
    let mut s = String::from(
        "export GODOCKER_JID=\"$TESSERA_JOB_ID\" GODOCKER_PWD=\"$TESSERA_JOB_DIR\" \
         GODOCKER_HOME=\"$TESSERA_JOB_DIR\"\n",
    );
    if let Some((first, last, step)) = array {
        s.push_str(&format!(
            "GOGOCKER_TASK_ID=$(({first} + ${{TESSERA_ARRAY_INDEX:-0}} * {step}))\n\
             export GOGOCKER_TASK_ID GOGOCKER_TASK_FIRST={first} GOGOCKER_TASK_LAST={last} \
             GOGOCKER_TASK_STEP={step}\n\
             export GODOCKER_TASK_ID=$GOGOCKER_TASK_ID\n"
        ));
    }
    s.push_str("cd \"$GODOCKER_PWD\" || exit 1\n");
    if tmp {
        s.push_str("mkdir -p tmp-data && export TMPDIR=\"$GODOCKER_PWD/tmp-data\"\n");
    }
    // The image may hold no chmod: a `#!` line names the interpreter, run
    // on the file; without one, /bin/sh runs it.
    s.push_str(&format!(
        "f=\"$GODOCKER_PWD/godocker-cmd${{GOGOCKER_TASK_ID:+.$GOGOCKER_TASK_ID}}.sh\"\n\
         printf '%s\\n' \"${CMD_ENV}\" > \"$f\" || exit 1\n\
         unset {CMD_ENV}\n\
         read -r first < \"$f\"\n\
         case \"$first\" in '#!'*) exec ${{first#??}} \"$f\" ;; *) exec /bin/sh \"$f\" ;; esac\n"
    ));
    s
}

/// The Tessera job `create` asks for, by `login`, with `volumes` (the
/// project's Go-Docker volumes) and its parents already checked; or why
/// not, in words the user can act on.
pub fn translate(
    create: &Create,
    login: &str,
    project_volumes: &[Volume],
    parents: &[JobId],
) -> Result<JobSpec, String> {
    let name = create.meta.name.trim();
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "a job needs a name of 1 to {MAX_NAME} bytes (-n NAME)"
        ));
    }
    if create.command.interactive {
        return Err(
            "interactive jobs (ssh into the container) are not offered by Tessera; run \
                    a command with --cmd or --script and read its output with godfile"
                .into(),
        );
    }
    if create.container.root {
        return Err(
            "Tessera runs every job as its project's user, never as root; drop --root".into(),
        );
    }
    if !create.container.ports.is_empty() || !create.requirements.ports.is_empty() {
        return Err("Tessera does not open ports to jobs; drop --ports".into());
    }
    match create.requirements.executor.as_deref() {
        None | Some("") | Some("docker") => {}
        Some(other) => {
            return Err(format!(
                "--placement {other:?}: Tessera runs Go-Docker jobs on its docker executor only; \
                 give --placement docker or leave it out"
            ))
        }
    }
    let image = create.container.image.trim();
    if image.is_empty() {
        return Err("a job needs an image (-i IMAGE)".into());
    }
    if create.command.cmd.trim().is_empty() {
        return Err("a job needs a command: --cmd 'COMMAND' or --script FILE".into());
    }
    let array = match create
        .requirements
        .array
        .as_ref()
        .and_then(|a| a.values.as_deref())
    {
        Some(v) if !v.trim().is_empty() => Some(array_bounds(v)?),
        _ => None,
    };
    let tmp = create
        .requirements
        .tmpstorage
        .as_ref()
        .and_then(|t| t.size.clone());
    let req = &create.requirements;
    let mut task = TaskSpec::new(
        if array.is_some() { "task" } else { "job" },
        Action::Script {
            script: wrapper(array, tmp.is_some()),
            shell: Some(DEFAULT_SHELL.into()),
        },
    )
    .with_image(image)
    .with_cpu(req.cpu.unwrap_or(1))
    .with_gpus(req.gpus.unwrap_or(0))
    .with_env(CMD_ENV, create.command.cmd.clone());
    task.resources.memory_mb = req.ram.unwrap_or(1).saturating_mul(1024);
    if let Some(n) = req.failure_policy.filter(|&n| n > 0) {
        task = task.with_retries(n, 1000);
    }
    if req.label.len() > 16 {
        return Err("a job takes at most 16 labels".into());
    }
    for label in &req.label {
        if label.len() > 100 {
            return Err(format!("label {label:?} is longer than 100 bytes"));
        }
        let (k, v) = label
            .split_once("==")
            .ok_or_else(|| format!("label {label:?} must be NAME==VALUE"))?;
        task = task.with_label(k.trim(), v.trim());
    }
    if let Some((first, last, step)) = array {
        task = task.with_array(ArraySpec {
            count: Some((last - first) / step + 1),
            ..ArraySpec::default()
        });
    }
    let mut shown = Vec::new();
    for v in &create.container.volumes {
        let declared = project_volumes
            .iter()
            .find(|p| p.name == v.name)
            .ok_or_else(|| {
                format!(
                    "volume {:?} is not a volume of project {}; an admin adds it with `godproject \
                 volume {} --add -n {} -p DIR -c /MOUNT -m rw`",
                    v.name, create.user.project, create.user.project, v.name
                )
            })?;
        let target = declared
            .mount
            .clone()
            .unwrap_or_else(|| format!("/mnt/{}", v.name));
        task.mounts.push(Mount {
            volume: v.name.clone(),
            subpath: None,
            target,
            read_only: declared.acl.as_deref() != Some("rw"),
        });
        shown.push(declared.clone());
    }
    let mut spec = JobSpec::new(name, vec![task]);
    for &p in parents {
        spec = spec.after_job(JobDependency::on_id(p));
    }
    let mut meta = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        meta.insert(k.to_string(), v);
    };
    put(META_USER, login.to_string());
    put(META_DESCRIPTION, cut(&create.meta.description, 1000));
    let tags: Vec<String> = create
        .meta
        .tags
        .iter()
        .take(32)
        .map(|t| cut(t, 64))
        .collect();
    put(META_TAGS, serde_json::to_string(&tags).unwrap_or_default());
    put(META_IMAGE, image.to_string());
    put(
        META_PARENTS,
        parents
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    if let Some(values) = create
        .requirements
        .array
        .as_ref()
        .and_then(|a| a.values.clone())
    {
        put(META_ARRAY, values);
    }
    put(
        META_VOLUMES,
        serde_json::to_string(&shown).unwrap_or_default(),
    );
    if let Some(size) = tmp {
        put(META_TMP, size);
    }
    let requirements = serde_json::json!({
        "cpu": req.cpu.unwrap_or(1), "ram": req.ram.unwrap_or(1), "gpus": req.gpus.unwrap_or(0),
        "label": req.label, "failure_policy": req.failure_policy.unwrap_or(0),
        "executor": req.executor,
    });
    put(META_REQ, requirements.to_string());
    spec.meta = meta;
    Ok(spec)
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests;
