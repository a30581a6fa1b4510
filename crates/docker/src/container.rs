//! What a container for an attempt looks like: its name, labels, command
//! line and settings, as pure functions of the request and the executor's
//! configuration.

use crate::DockerConfig;
use bollard::models::{ContainerCreateBody, HostConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tessera_exec::{attempt_marker, ExecError, StartRequest, ATTEMPT_ENV};
use tessera_types::{Action, AttemptNo, JobId, TaskRef, DEFAULT_SHELL, REACH_ENV};

/// The label naming the scheduler instance that owns a container.
pub const LABEL_INSTANCE: &str = "tessera.instance";
/// The label naming the node (machine) the scheduler runs the container for.
pub const LABEL_NODE: &str = "tessera.node";
/// The label holding the container's job id.
pub const LABEL_JOB: &str = "tessera.job";
/// The label holding the container's task index within its job.
pub const LABEL_TASK: &str = "tessera.task";
/// The label holding the container's attempt number.
pub const LABEL_ATTEMPT: &str = "tessera.attempt";
/// The label holding the task's name (for people reading `docker ps`).
pub const LABEL_NAME: &str = "tessera.name";

/// The container name of an attempt:
/// `tessera-<instance>-<job>-<task index>-<attempt>`. The instance keeps
/// two schedulers sharing an engine (or two test runs) apart.
pub fn container_name(instance: &str, task: TaskRef, attempt: AttemptNo) -> String {
    format!(
        "tessera-{}-{}-{}-{attempt}",
        name_safe(instance),
        task.job,
        task.index
    )
}

/// A string as part of a container name, which Docker limits to
/// `[a-zA-Z0-9_.-]`.
fn name_safe(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// The attempt a container's labels name, if they name one.
pub(crate) fn labelled_attempt(labels: &HashMap<String, String>) -> Option<(TaskRef, AttemptNo)> {
    let job = labels.get(LABEL_JOB)?.parse().ok()?;
    let index = labels.get(LABEL_TASK)?.parse().ok()?;
    let attempt = labels.get(LABEL_ATTEMPT)?.parse().ok()?;
    Some((TaskRef::new(JobId(job), index), attempt))
}

/// The command line an action runs as, inside the container.
/// `Ok(None)` for a no-op, which runs no container at all.
pub(crate) fn argv(action: &Action, op_program: &str) -> Result<Option<Vec<String>>, ExecError> {
    Ok(Some(match action {
        Action::Noop => return Ok(None),
        Action::Op { op, args } => [op_program.to_string(), "op".into(), op.clone()]
            .into_iter()
            .chain(args.iter().cloned())
            .collect(),
        Action::Command { argv } => {
            if argv.is_empty() {
                return Err(ExecError::EmptyCommand);
            }
            argv.clone()
        }
        Action::Script { script, shell } => vec![
            shell.as_deref().unwrap_or(DEFAULT_SHELL).to_string(),
            "-c".into(),
            script.clone(),
        ],
    }))
}

/// The absolute form of a path (Docker binds only absolute paths).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Everything the engine needs to create the attempt's container, given its
/// command line and the image it runs in. The entrypoint is the program
/// itself, so an image's own `ENTRYPOINT` never wraps it.
pub(crate) fn create_body(
    config: &DockerConfig,
    req: &StartRequest,
    argv: Vec<String>,
    image: &str,
) -> ContainerCreateBody {
    let workdir = absolute(&req.workdir);
    let mut binds = vec![bind(&workdir)];
    // The job's shared folder (`TESSERA_JOB_DIR`, above the workdir), where
    // a job's tasks leave files for each other, is there too.
    if let Some(job_dir) = req.env.get("TESSERA_JOB_DIR") {
        let job_dir = absolute(std::path::Path::new(job_dir));
        if job_dir != workdir {
            binds.insert(0, bind(&job_dir));
        }
    }
    binds.extend(config.mounts.iter().map(|m| bind(&absolute(m))));
    // The task's volumes (resolved and granted by the driver).
    binds.extend(req.mounts.iter().map(|m| {
        let mode = if m.read_only { ":ro" } else { "" };
        format!("{}:{}{mode}", m.source.display(), m.target.display())
    }));
    let mut env: Vec<String> = req
        .env
        .iter()
        .filter(|(k, _)| k.as_str() != ATTEMPT_ENV)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.push(format!(
        "{ATTEMPT_ENV}={}",
        attempt_marker(req.task, req.attempt)
    ));
    if !req.reach.grants.is_empty() {
        env.push(format!("{REACH_ENV}={}", req.reach.to_env()));
    }
    let labels = HashMap::from([
        (LABEL_INSTANCE.to_string(), config.instance.clone()),
        (LABEL_NODE.to_string(), config.node.clone()),
        (LABEL_JOB.to_string(), req.task.job.to_string()),
        (LABEL_TASK.to_string(), req.task.index.to_string()),
        (LABEL_ATTEMPT.to_string(), req.attempt.to_string()),
        (LABEL_NAME.to_string(), req.name.clone()),
    ]);
    let (program, args) = argv.split_first().map_or((None, None), |(p, rest)| {
        (Some(vec![p.clone()]), Some(rest.to_vec()))
    });
    let memory = (req.memory_mb > 0).then(|| (req.memory_mb as i64).saturating_mul(1 << 20));
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: program,
        cmd: args,
        env: Some(env),
        working_dir: Some(workdir.display().to_string()),
        user: Some(
            req.user
                .as_ref()
                .map_or_else(|| config.user.clone(), |u| format!("{}:{}", u.uid, u.gid)),
        ),
        labels: Some(labels),
        attach_stdin: Some(false),
        attach_stdout: Some(false),
        attach_stderr: Some(false),
        tty: Some(false),
        open_stdin: Some(false),
        host_config: Some(HostConfig {
            binds: Some(binds),
            nano_cpus: (req.cpu > 0).then(|| i64::from(req.cpu) * 1_000_000_000),
            memory,
            // No swap beyond the memory limit: the limit is the limit.
            memory_swap: memory,
            network_mode: config.network.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A bind mount of `path` at the same path inside the container.
fn bind(path: &Path) -> String {
    format!("{0}:{0}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn request(action: Action) -> StartRequest {
        StartRequest {
            task: TaskRef::new(JobId(12), 3),
            attempt: 2,
            name: "encode-3".into(),
            action,
            env: BTreeMap::from([
                ("A".to_string(), "1".to_string()),
                (ATTEMPT_ENV.to_string(), "2".to_string()),
            ]),
            workdir: "/data/jobs/12/tasks/encode-3".into(),
            log_dir: "/data/jobs/12/logs".into(),
            image: None,
            cpu: 2,
            memory_mb: 512,
            labels: Default::default(),
            placement: Default::default(),
            reach: Default::default(),
            user: None,
            mounts: Vec::new(),
        }
    }

    fn config() -> DockerConfig {
        let mut config = DockerConfig::new("inst/1", Arc::new(|_| {}));
        config.user = "1000:1000".into();
        config.mounts = vec!["/data/media".into()];
        config
    }

    #[test]
    fn names_carry_instance_job_task_and_attempt_in_docker_characters() {
        let task = TaskRef::new(JobId(12), 3);
        assert_eq!(container_name("a b/c", task, 2), "tessera-a_b_c-12-3-2");
        assert_eq!(container_name("", task, 1), "tessera-_-12-3-1");
    }

    #[test]
    fn actions_become_argv_and_noops_run_nothing() {
        let op = Action::Op {
            op: "probe".into(),
            args: vec!["--in".into(), "x".into()],
        };
        assert_eq!(
            argv(&op, "/usr/local/bin/tessera").unwrap().unwrap(),
            ["/usr/local/bin/tessera", "op", "probe", "--in", "x"]
        );
        assert_eq!(
            argv(&Action::script("echo hi"), "t").unwrap().unwrap(),
            [DEFAULT_SHELL, "-c", "echo hi"]
        );
        assert_eq!(argv(&Action::Noop, "t").unwrap(), None);
        let empty = Action::Command { argv: vec![] };
        assert_eq!(argv(&empty, "t"), Err(ExecError::EmptyCommand));
    }

    #[test]
    fn create_body_mounts_limits_labels_and_marks_the_attempt() {
        let req = request(Action::command(["ffmpeg", "-version"]));
        let argv = argv(&req.action, "tessera").unwrap().unwrap();
        let body = create_body(&config(), &req, argv, "tessera-local:dev");
        assert_eq!(body.image.as_deref(), Some("tessera-local:dev"));
        assert_eq!(body.entrypoint, Some(vec!["ffmpeg".to_string()]));
        assert_eq!(body.cmd, Some(vec!["-version".to_string()]));
        assert_eq!(
            body.working_dir.as_deref(),
            Some("/data/jobs/12/tasks/encode-3")
        );
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        assert_eq!(
            body.env.unwrap(),
            ["A=1".to_string(), format!("{ATTEMPT_ENV}=12.3.2")]
        );
        let labels = body.labels.unwrap();
        assert_eq!(labels[LABEL_INSTANCE], "inst/1");
        assert_eq!(
            labelled_attempt(&labels),
            Some((TaskRef::new(JobId(12), 3), 2))
        );
        let host = body.host_config.unwrap();
        assert_eq!(
            host.binds.unwrap(),
            [
                "/data/jobs/12/tasks/encode-3:/data/jobs/12/tasks/encode-3",
                "/data/media:/data/media"
            ]
        );
        assert_eq!(host.nano_cpus, Some(2_000_000_000));
        assert_eq!(host.memory, Some(512 << 20));
        assert_eq!(host.memory_swap, Some(512 << 20));
    }

    #[test]
    fn volumes_are_bound_where_the_task_asked_read_only_when_marked() {
        let mut req = request(Action::command(["true"]));
        req.mounts = vec![
            tessera_exec::Bind {
                source: "/srv/storage/split".into(),
                target: "/uploads".into(),
                read_only: false,
            },
            tessera_exec::Bind {
                source: "/srv/media".into(),
                target: "/media".into(),
                read_only: true,
            },
        ];
        let binds = create_body(&config(), &req, vec!["true".into()], "img")
            .host_config
            .unwrap()
            .binds
            .unwrap();
        assert_eq!(
            binds[binds.len() - 2..],
            ["/srv/storage/split:/uploads", "/srv/media:/media:ro"]
        );
    }

    #[test]
    fn zero_cpu_and_memory_mean_no_limits() {
        let mut req = request(Action::command(["true"]));
        req.cpu = 0;
        req.memory_mb = 0;
        let body = create_body(&config(), &req, vec!["true".into()], "img");
        let host = body.host_config.unwrap();
        assert_eq!(
            (host.nano_cpus, host.memory, host.memory_swap),
            (None, None, None)
        );
        assert_eq!(body.cmd, Some(vec![]));
    }

    #[test]
    fn labels_that_are_not_ours_name_no_attempt() {
        let labels = HashMap::from([(LABEL_JOB.to_string(), "x".to_string())]);
        assert_eq!(labelled_attempt(&labels), None);
    }
}
