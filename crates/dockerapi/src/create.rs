//! `POST /containers/create`: the body the docker CLI sends, turned into a
//! job of one image task, or refused with a message.
//!
//! - `-e waitfor:container==NAME` (Swarm classic's syntax: `NAME` exact,
//!   with `*`/`?`/`[...]` a glob, `/.../` a regex) becomes a job dependency
//!   on the project's containers it matches now (see
//!   [`crate::Containers::resolve`]); these entries, and `constraint:`/
//!   `affinity:` ones, never reach the container's environment.
//! - `constraint:LABEL==VALUE` and `constraint:node==NAME` become labels the
//!   node must carry (`node` is a label like any other: a worker started
//!   with `--labels node=NAME`); `constraint:LABEL!=VALUE` a label it must
//!   not carry. `affinity:container==NAME` (exact, glob or `/regex/`, as
//!   `waitfor`) asks for the node the matched containers ran on,
//!   `affinity:container!=NAME` for any other; resolved to those
//!   containers' jobs at create (see [`crate::DockerApi::affinities`]).
//!   All become placement rules among workers; `==~`/`!=~` are soft rules
//!   (preferred, never waited for long).
//! - `-v /host/dir:/path` only inside a configured volume, `-v NAME:/path`
//!   a configured volume by name; privileged mode, host namespaces,
//!   capabilities, devices, ports, other users and working directories are
//!   refused: a member never gets more than a Tessera task.

use crate::http::ApiError;
use serde_json::Value;
use std::collections::BTreeMap;
use tessera_types::{Action, Mount, Near, PlaceRule, TaskSpec, MAX_RULES};

/// Entries of `Env`, `Cmd`, binds... taken at most (each a list).
pub const MAX_ITEMS: usize = 1000;

/// `waitfor` entries per container at most.
pub const MAX_WAITFOR: usize = 100;

/// A container affinity as written: the containers it names are resolved
/// to jobs at create.
#[derive(Debug, PartialEq)]
pub struct Affinity {
    /// Tessera's selector of the containers (as `waitfor`'s).
    pub selector: String,
    /// The `-e` entry, for messages.
    pub entry: String,
    /// `!=`: not the node they ran on.
    pub not: bool,
    /// `~`: a preference.
    pub soft: bool,
}

/// What a create request asks for.
#[derive(Debug, Default, PartialEq)]
pub struct Request {
    pub image: String,
    /// The program and its arguments, once the image's defaults are known.
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    /// Selectors of the containers it waits for (Tessera's syntax).
    pub waitfor: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Label rules beyond `labels`: `!=` and soft constraints.
    pub rules: Vec<PlaceRule>,
    pub affinities: Vec<Affinity>,
    pub mounts: Vec<Bind>,
    pub cpu: u32,
    pub memory_mb: u64,
    /// `--rm`: the container is removed once it has ended.
    pub auto_remove: bool,
}

/// A volume as the request wrote it: a host path or a volume name.
#[derive(Debug, PartialEq)]
pub struct Bind {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

impl Request {
    /// The task: the image's entrypoint and command unless the request
    /// gave its own (`image` is the image's `(Entrypoint, Cmd)`).
    pub fn task(
        &self,
        image: (Vec<String>, Vec<String>),
        mounts: Vec<Mount>,
    ) -> Result<TaskSpec, ApiError> {
        let (entry, cmd) = match (&self.entrypoint, &self.cmd) {
            (Some(e), c) => (e.clone(), c.clone().unwrap_or_default()),
            (None, Some(c)) => (image.0, c.clone()),
            (None, None) => image,
        };
        let argv: Vec<String> = entry.into_iter().chain(cmd).collect();
        if argv.is_empty() {
            return Err(ApiError::bad(format!(
                "image {} names no command; give one after the image name",
                self.image
            )));
        }
        let mut task = TaskSpec::new("container", Action::Command { argv }).with_image(&self.image);
        task.env = self.env.clone();
        task.mounts = mounts;
        task.resources.cpu = self.cpu;
        task.resources.memory_mb = self.memory_mb;
        task.resources.labels = self.labels.clone();
        task.resources.rules = self.rules.clone();
        Ok(task)
    }
}

/// Reads the create body, refusing what this endpoint never grants.
pub fn parse(body: &Value) -> Result<Request, ApiError> {
    let mut r = Request {
        image: str_of(body, "Image")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad("give an image to run"))?,
        entrypoint: strings(body.get("Entrypoint"), "Entrypoint")?.filter(|v| !v.is_empty()),
        cmd: strings(body.get("Cmd"), "Cmd")?,
        cpu: 1,
        ..Request::default()
    };
    refuse_config(body)?;
    for entry in strings(body.get("Env"), "Env")?.unwrap_or_default() {
        env_entry(&mut r, &entry)?;
    }
    if r.waitfor.len() > MAX_WAITFOR {
        return Err(ApiError::bad(format!(
            "{} waitfor entries; a container may wait for at most {MAX_WAITFOR}",
            r.waitfor.len()
        )));
    }
    if r.rules.len() + r.affinities.len() > MAX_RULES {
        return Err(ApiError::bad(format!(
            "{} constraint and affinity entries; a container may have at most {MAX_RULES}",
            r.rules.len() + r.affinities.len()
        )));
    }
    let host = body.get("HostConfig").cloned().unwrap_or(Value::Null);
    refuse_host(&host)?;
    for bind in strings(host.get("Binds"), "Binds")?.unwrap_or_default() {
        r.mounts.push(bind_entry(&bind)?);
    }
    for m in host
        .get("Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(MAX_ITEMS)
    {
        let kind = str_of(m, "Type").unwrap_or_default();
        if kind != "bind" && kind != "volume" {
            return Err(ApiError::bad(format!(
                "--mount type={kind} is not offered; use type=bind inside a configured volume or \
                 type=volume with a configured volume's name"
            )));
        }
        r.mounts.push(Bind {
            source: str_of(m, "Source").unwrap_or_default(),
            target: str_of(m, "Target").unwrap_or_default(),
            read_only: m.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    r.auto_remove = host.get("AutoRemove").and_then(Value::as_bool) == Some(true);
    let nano = host.get("NanoCpus").and_then(Value::as_i64).unwrap_or(0);
    if nano > 0 {
        r.cpu = u32::try_from((nano + 999_999_999) / 1_000_000_000).unwrap_or(u32::MAX);
    }
    let memory = host.get("Memory").and_then(Value::as_i64).unwrap_or(0);
    if memory > 0 {
        r.memory_mb = (memory as u64).div_ceil(1 << 20);
    }
    Ok(r)
}

/// An `-e` entry: Swarm classic's `waitfor:`, `constraint:`, `affinity:`
/// filters, or a variable for the container.
fn env_entry(r: &mut Request, entry: &str) -> Result<(), ApiError> {
    if let Some(rest) = entry.strip_prefix("waitfor:") {
        let value = rest.strip_prefix("container==").ok_or_else(|| {
            ApiError::bad(format!(
                "-e {entry}: write waitfor:container==NAME (NAME exact, a glob like encode*, or \
                 /regex/)"
            ))
        })?;
        r.waitfor.push(selector(value, entry)?);
    } else if let Some(rest) = entry.strip_prefix("constraint:") {
        let (key, value, not, soft) = filter(rest, entry)?;
        if value.is_empty() || value.starts_with('/') || value.contains(['*', '?', '[']) {
            return Err(ApiError::bad(format!(
                "-e {entry}: a constraint names a label and one exact value (no pattern)"
            )));
        }
        if !not && !soft {
            r.labels.insert(key, value);
        } else {
            let near = Near::Label { key, value };
            r.rules.push(PlaceRule { near, not, soft });
        }
    } else if let Some(rest) = entry.strip_prefix("affinity:") {
        let (key, value, not, soft) = filter(rest, entry)?;
        if key != "container" {
            return Err(ApiError::bad(format!(
                "-e {entry}: only container affinities are offered \
                 (affinity:container==NAME or !=NAME); pick nodes by label with \
                 -e constraint:LABEL==VALUE"
            )));
        }
        r.affinities.push(Affinity {
            selector: selector(&value, entry)?,
            entry: entry.to_string(),
            not,
            soft,
        });
    } else if let Some((k, v)) = entry.split_once('=') {
        if k.is_empty() {
            return Err(ApiError::bad(format!(
                "-e {entry}: the variable has no name"
            )));
        }
        r.env.insert(k.to_string(), v.to_string());
    }
    Ok(())
}

/// `KEY==VALUE` or `KEY!=VALUE` of a constraint or an affinity, with `~`
/// after the operator for a soft one: (key, value, not, soft).
fn filter(rest: &str, entry: &str) -> Result<(String, String, bool, bool), ApiError> {
    let at = |op: &str| rest.find(op);
    let (at, not) = match (at("=="), at("!=")) {
        (Some(e), Some(n)) if n < e => (n, true),
        (Some(e), _) => (e, false),
        (None, Some(n)) => (n, true),
        (None, None) => {
            return Err(ApiError::bad(format!(
                "-e {entry}: write KEY==VALUE or KEY!=VALUE (with ~ after the operator for a \
                 preference)"
            )))
        }
    };
    let (key, value) = (&rest[..at], &rest[at + 2..]);
    let (value, soft) = match value.strip_prefix('~') {
        Some(v) => (v, true),
        None => (value, false),
    };
    if key.is_empty() || value.is_empty() {
        return Err(ApiError::bad(format!(
            "-e {entry}: name what to match on both sides of the operator"
        )));
    }
    Ok((key.to_string(), value.to_string(), not, soft))
}

/// A Swarm-classic name filter as a Tessera selector: `/re/` -> `re:re`.
fn selector(value: &str, entry: &str) -> Result<String, ApiError> {
    let selector = match value.strip_prefix('/').and_then(|v| v.strip_suffix('/')) {
        Some(re) if !re.is_empty() => format!("re:{re}"),
        _ => value.to_string(),
    };
    if value.is_empty() || value.starts_with('~') {
        return Err(ApiError::bad(format!(
            "-e {entry}: name the container to wait for (waitfor:container==NAME)"
        )));
    }
    let parsed = selector
        .parse::<tessera_types::Selector>()
        .map_err(|e| ApiError::bad(format!("-e {entry}: {e}")))?;
    // A regex is compiled (and so checked) even against no job.
    tessera_core::match_jobs(&[&parsed], &[])
        .map_err(|e| ApiError::bad(format!("-e {entry}: {e}")))?;
    Ok(selector)
}

/// `SOURCE:TARGET[:ro|rw]` of `-v`.
fn bind_entry(bind: &str) -> Result<Bind, ApiError> {
    let parts: Vec<&str> = bind.split(':').collect();
    let (source, target, opts) = match parts[..] {
        [s, t] => (s, t, ""),
        [s, t, o] => (s, t, o),
        _ => {
            return Err(ApiError::bad(format!(
                "-v {bind}: write -v VOLUME:/path or -v /dir/in/a/volume:/path[:ro]"
            )))
        }
    };
    let read_only = opts.split(',').any(|o| o == "ro");
    Ok(Bind {
        source: source.to_string(),
        target: target.to_string(),
        read_only,
    })
}

/// Container settings that would run it otherwise than a task runs.
fn refuse_config(body: &Value) -> Result<(), ApiError> {
    let set = |k: &str| match body.get(k) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    };
    let refusals = [
        ("Tty", "-t (a terminal) is not offered; run without -t"),
        (
            "OpenStdin",
            "-i (standard input) is not offered; run without -i",
        ),
        (
            "User",
            "-u: containers run as their project's user; run without -u",
        ),
        (
            "WorkingDir",
            "-w: containers run in their job's folder; run without -w",
        ),
    ];
    for (key, why) in refusals {
        if set(key) {
            return Err(ApiError::bad(why));
        }
    }
    Ok(())
}

/// Host settings that would hand the container more than a task gets.
fn refuse_host(host: &Value) -> Result<(), ApiError> {
    let tail = "this endpoint runs containers as Tessera tasks, never with rights on the host";
    if host.get("Privileged").and_then(Value::as_bool) == Some(true) {
        return Err(ApiError::bad(format!("--privileged is refused: {tail}")));
    }
    for (key, flag) in [
        ("NetworkMode", "--network"),
        ("PidMode", "--pid"),
        ("IpcMode", "--ipc"),
        ("UTSMode", "--uts"),
        ("UsernsMode", "--userns"),
        ("CgroupnsMode", "--cgroupns"),
    ] {
        let v = str_of(host, key).unwrap_or_default();
        if v == "host" || v.starts_with("container:") {
            return Err(ApiError::bad(format!("{flag}={v} is refused: {tail}")));
        }
    }
    let non_empty = |k: &str| match host.get(k) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        _ => false,
    };
    for (key, flag) in [
        ("CapAdd", "--cap-add"),
        ("Devices", "--device"),
        ("DeviceRequests", "--gpus"),
        ("DeviceCgroupRules", "--device-cgroup-rule"),
        ("SecurityOpt", "--security-opt"),
        ("VolumesFrom", "--volumes-from"),
        ("PortBindings", "-p"),
        ("Sysctls", "--sysctl"),
        ("ExtraHosts", "--add-host"),
    ] {
        if non_empty(key) {
            return Err(ApiError::bad(format!("{flag} is refused: {tail}")));
        }
    }
    if host.get("PublishAllPorts").and_then(Value::as_bool) == Some(true) {
        return Err(ApiError::bad(format!("-P is refused: {tail}")));
    }
    Ok(())
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A list of strings (or one string, as `Cmd` may be), at most
/// [`MAX_ITEMS`]; `None` when absent or null.
fn strings(v: Option<&Value>, what: &str) -> Result<Option<Vec<String>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(a)) if a.len() <= MAX_ITEMS => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::bad(format!("{what} must be a list of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::Array(_)) => Err(ApiError::bad(format!(
            "{what} has more than {MAX_ITEMS} entries"
        ))),
        Some(_) => Err(ApiError::bad(format!("{what} must be a list of strings"))),
    }
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
